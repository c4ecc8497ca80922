// run_shard_job: the whole of `flam shard` on one rank of an MPI job (or alone). Every rank reads
// the inputs; rank 0 lists the shards without a stats file (resume: those with one are done) and
// hands them out one at a time (ShardQueue); each rank makes the shards it is given
// (ShardWorker). At the end rank 0 writes `sizes.json` (samples per shard, for webdataset and
// OpenFlamingo) and `summary.json` (the stats of all shards summed) under output_dir.
// An output_dir "s3://bucket/prefix" holds the same objects: each shard is made in a local staging
// folder (the temp directory; one shard per rank at a time) and uploaded when finished (multipart
// for large tars), its stats object last; resume lists the prefix once.
//
// Collective: every rank of MPI_COMM_WORLD calls it. REQUIRES: World::init() was called.
#pragma once

#include <cstdint>

#include "shard/options.h"
#include "shard/shard_stats.h"

namespace flam::shard {

struct ShardJobResult {
  int64_t shards_total = 0;    // shards the input makes
  int64_t shards_skipped = 0;  // already done before this run
  int64_t shards_made = 0;     // made by this rank in this run
  ShardStats totals;           // rank 0: every shard's stats summed; other ranks: their own
};

// Throws flam::Error: kConfig/kData/kIo for unusable inputs or an unwritable output_dir, kComm
// when MPI fails; pipeline/s3.h's errors for an s3:// output_dir that cannot be written.
ShardJobResult run_shard_job(const ShardOptions& options);

}  // namespace flam::shard
