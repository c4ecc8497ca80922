// Loader: one dataset stream (LAION or MMC4) for this rank: shards -> samples -> packed
// sequences -> batches. The trainer holds one Loader per dataset and calls next() once per
// micro-step on each; every call yields a full batch (streams roll over epochs on their own).
//
// The Loader knows one dataset only, through its DatasetSpec (below): it never looks at the other
// dataset's keys and never switches on the kind, which only names the stream (seeds, state,
// messages).
//
// Order. Epoch e's shards are permuted with a generator seeded by (seed, kind, e); rank r of W
// takes permuted positions r, r + W, r + 2W, ... (disjoint, and together complete; with fewer
// shards than ranks rank r reads position r mod N, a warned-about repeat). A rank reads its
// shards in that order, each sample numbered by its ordinal in the shard, into a shuffle buffer
// of data.loader.shuffle_buffer samples drawn from a generator seeded by (seed, kind, rank, W).
// Samples leave the buffer in that order; each is decoded and packed on a thread pool, and its
// random choices (flip coins, the single-image keep coin) come from a generator seeded by
// (seed, epoch, shard, ordinal). A batch is the next batch_size samples that pack successfully,
// in buffer order. So the batches depend only on the config, the seed, the epoch, the rank and
// the world size: never on the number of threads or on timing, with one exception below.
//
// Bad data never stops the loader: a sample that fails (corrupt image, bad JSON, invalid UTF-8,
// too few images, ...) is skipped and counted in Batch::dropped by reason (pipeline/drop_reason.h);
// a shard that is truncated, corrupt or unreachable ends there ("corrupt_shard" /
// "unreachable_shard"), the samples read before the fault stay in. Each is logged once with the
// shard and key. Only an epoch in which no shard of this rank yields a single usable sample
// throws flam::Error(kData) from next().
//
// Slow shards. Remote shards are read ahead (data.loader.read_ahead_shards, each on its own
// thread), so one slow shard holds the loader for at most its data.stream deadline while the
// next ones arrive. A remote shard past data.stream.deadline_seconds or under
// min_average_bytes_per_second ends there ("slow_shard", logged with its URL): the exception
// to "never on timing" is which of its samples are cut off. The decision is part of state(), so
// a restore from a state taken after it reproduces the same batches (loader_stream.h).
//
// State and resume. state() names where the NEXT batch starts: per rank, the epoch after the
// queued work, the queue of shard tasks still to read (a task is (epoch, shard, first ordinal),
// optionally with the exact ordinals to read), the (epoch, shard, ordinal) ids held in the
// shuffle buffer, the shuffle generator's state and the slow_shard decisions still to apply.
// A rank's own share of an epoch is named, not listed, so the size is O(buffer + tasks left
// over from a repartition).
// restore(states) takes the states of ALL ranks of the earlier run, in rank order:
//  - same world size: rank r continues from states[r] exactly: the next batches are
//    byte-identical to those the uninterrupted run would have produced (buffered samples are
//    re-read from their shards; nothing is decoded twice except those).
//  - another world size W': the work left by all old ranks (their buffered samples, their
//    unread tasks, and, for an old rank behind the others, its shares of the epochs up to the
//    most advanced old rank's) is listed in old-rank order and dealt round-robin to the W' new
//    ranks; afterwards each new rank continues with its own share of the following epochs.
//    Within every epoch each sample is thus read exactly once over the whole run, across any
//    number of restores (2 -> 3 -> 1 is tested on real MPI ranks).
//
// Thread safety: one thread calls next(), state(), restore() (the trainer's); the loader's own
// threads (one reader/packer, data.loader.threads decoders) live inside it and are joined by the
// destructor. What spec.pack refers to (the tokenizer) must outlive the loader.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/batch.h"
#include "pipeline/options.h"
#include "pipeline/packer.h"
#include "pipeline/tokenizer.h"

namespace flam::pipeline {

// What a training job would check on start, cheaply, before anything is queued or created: the
// tokenizer (data.tokenizer) is a readable file; each dataset's shard list expands to at least one
// shard and, for local paths, its first and last shards exist; the batches fit the machine (see
// Loader). Throws flam::Error(kConfig) naming the key and the file.
void check_data_inputs(const DataOptions& options);

// One dataset's part of the data config: all the Loader reads.
struct DatasetSpec {
  DatasetKind kind = DatasetKind::kLaion;  // names the stream: seeds, state, log lines
  std::string section;                     // "data.laion": its config section, for messages
  std::vector<std::string> shards;         // as configured (paths, URLs, brace ranges, lists)
  int batch_size = 1;                      // B
  int seq_len = 2;                         // T
  int max_images = 1;                      // T_img: image slots per row
  ImageOptions image;                      // S = image.size; image.flip == "batch" flips here
  LoaderOptions loader;
  SourceOptions stream;
  // One sample -> one sequence of seq_len tokens with at most max_images images of image.size;
  // `rng` is the sample's own generator. Called from the decode threads at once.
  std::function<PackResult(const Sample&, Rng&)> pack;
};

// The spec of dataset `kind` in `options`, packing with pack_laion or pack_mmc4 (a copy of
// `options` is captured). The tokenizer must outlive the spec and every Loader made from it.
DatasetSpec dataset_spec(const DataOptions& options, DatasetKind kind, const Tokenizer& tokenizer);

class Loader {
 public:
  // Expands spec.shards and starts the background threads. Throws flam::Error(kConfig) when the
  // list is empty or a spec is malformed, or when the batches it would hold need over half the
  // machine's memory (naming the keys to lower). REQUIRES: 0 <= rank < world_size, spec.pack set.
  Loader(DatasetSpec spec, int rank, int world_size, uint64_t seed);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // The next batch (blocks until it is ready). Throws flam::Error(kData) only when a whole
  // epoch of this rank's shards yields no usable sample.
  Batch next();

  // Where the next batch starts; a short text value (JSON) to keep in a checkpoint manifest.
  std::string state() const;

  // Continues from the states of all ranks of an earlier run (see above). Drops any prefetched
  // batches. Throws flam::Error(kData) on a malformed state or one from another dataset kind,
  // shard list or seed.
  void restore(const std::vector<std::string>& states);

  // Bytes held by prefetched batches not yet returned (at most data.loader.prefetch_batches)
  // plus the raw samples in the shuffle buffer (at most data.loader.shuffle_buffer).
  int64_t queued_bytes() const;

  DatasetKind kind() const;

  // Samples dropped by reason over all batches next() returned from this Loader (including the
  // drops a restore() reported with its first batch): the cumulative counts for metrics and the
  // end-of-run summary. Valid until the next call to next() or restore().
  const std::map<std::string, int64_t>& dropped_total() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flam::pipeline
