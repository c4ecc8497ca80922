// The seconds this process has spent blocked in Work::wait() of host (MPI) collectives: where a
// rank waits for its peers or for a slow link, as opposed to computing or reading data. The
// trainer reports its per-step difference per rank (metrics.jsonl collective_wait_per_rank).
// Device backends (NCCL) do not add to it: their waits are on the stream.
//
// Thread safety: any thread may call either function.
#pragma once

namespace flam {

double comm_wait_seconds();

// For the backends: adds `seconds` of waiting.
void add_comm_wait_seconds(double seconds);

}  // namespace flam
