#!/usr/bin/env bash
# The shard work queue's assignment rate on 64 oversubscribed ranks, against the bare MPI
# request/reply transport measured in the same processes (bench_queue.cpp). Goal: >= 10,000
# assignments per second.
#   bash bench/queue/run.sh BUILD_DIR [RANKS] [ASSIGNMENTS_PER_RANK]
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
RANKS=${2:-64}
PER_RANK=${3:-200}
[ -x "$BUILD/bench/queue/bench_shard_queue" ] ||
  cmake --build "$BUILD" --target bench_shard_queue >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
mpirun -np "$RANKS" --oversubscribe --bind-to none "$BUILD/bench/queue/bench_shard_queue" \
  "$PER_RANK"
