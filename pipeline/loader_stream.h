// SampleStream: the ordered, shuffled, resumable sequence of raw samples one rank reads (see
// loader.h for the order it defines). It owns the open shard reader and the shuffle buffer, and
// can describe its position as a StreamState made of ids only (no sample bytes), cheap enough
// to take after every sample. Internal to the loader; tests use it through Loader.
//
// Read-ahead (http/s3 shards): each remote shard of the current task and of the next
// read_ahead_shards tasks of the plan is read on its own thread into memory, at most
// read_ahead_bytes of samples per shard ahead of the reader (then its transfer pauses, which does
// not count against data.stream's deadline). The samples still enter the shuffle buffer in plan
// order, so the stream does not depend on timing; a slow shard costs at most its deadline, while
// the next ones are fetched. A remote shard past data.stream.deadline_seconds or under
// min_average_bytes_per_second fails ("slow_shard"): the samples it gave before stay in, the
// rest is skipped, and the decision (epoch, shard, samples kept) is part of every later state, so
// a restore from such a state skips the same samples however fast the shard is then.
//
// Thread safety: one thread at a time (the loader's producer thread), but cancel() may be called
// from any thread; the read-ahead threads are internal and joined by load() and the destructor.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "pipeline/batch.h"
#include "pipeline/byte_source.h"
#include "pipeline/sample_grouper.h"
#include "pipeline/tar_reader.h"

namespace flam::pipeline {

struct SampleId {
  int64_t epoch = 0;
  int64_t shard = 0;    // index into the expanded shard list
  int64_t ordinal = 0;  // position of the sample in its shard (0-based, in tar order)
};

// A piece of work: the samples of one shard in one epoch with ordinal >= start, and, when `only`
// is not empty, only those ordinals (sorted).
struct ShardTask {
  int64_t epoch = 0;
  int64_t shard = 0;
  int64_t start = 0;
  std::vector<int64_t> only;
};

// Where a stream stands. `tasks` is shared and immutable; tasks[task_pos] is the task being read,
// with its start replaced by front_start.
struct StreamState {
  std::shared_ptr<const std::vector<ShardTask>> tasks;
  size_t task_pos = 0;
  int64_t front_start = 0;
  int64_t next_epoch = 0;  // the epoch whose standard share is appended when tasks run out
  // >= 0 when tasks is exactly standard_share(share_epoch, rank, world_size): then the serialised
  // form names the share instead of listing its tasks, which keeps states small.
  int64_t share_epoch = -1;
  std::vector<SampleId> buffer;
  uint64_t rng = 0;
  int rank = 0;
  int world_size = 1;
  // Remote shards failed as slow_shard: (epoch, shard) -> samples read before the failure (only
  // ordinals below it are read). Serialised only when not empty (older states have none).
  std::map<std::pair<int64_t, int64_t>, int64_t> failed;
};

// Identity of a stream's configuration, written into every serialised state and checked on
// restore.
struct StreamIdentity {
  DatasetKind kind = DatasetKind::kLaion;
  uint64_t seed = 0;
  int64_t num_shards = 0;
  uint64_t shards_hash = 0;
};

std::string serialize_state(const StreamState& state, const StreamIdentity& identity);
// Throws flam::Error(kData) when the text is malformed or its identity differs.
StreamState parse_state(const std::string& text, const StreamIdentity& identity);

// Rank r's share of epoch e under world size W (see loader.h).
std::vector<ShardTask> standard_share(const StreamIdentity& identity, int64_t epoch, int rank,
                                      int world_size);

// The states of new ranks 0..new_world-1 that continue the work left by `old_states` (all ranks
// of the earlier run, in rank order) with nothing lost or doubled within any epoch.
std::vector<StreamState> repartition(const std::vector<StreamState>& old_states,
                                     const StreamIdentity& identity, int new_world);

struct StreamItem {
  SampleId id;
  Sample sample;
  std::shared_ptr<const StreamState> after;  // the stream's state right after this item
};

// How a stream reads: the shuffle buffer, the read-ahead window and the http options.
struct StreamOptions {
  int buffer_capacity = 1000;             // samples (data.loader.shuffle_buffer)
  int read_ahead_shards = 2;              // remote shards read ahead of the current one
  int64_t read_ahead_bytes = 64LL << 20;  // samples held per remote shard being read
  SourceOptions source;                   // data.stream
};

class SampleStream {
 public:
  SampleStream(std::vector<std::string> shards, const StreamIdentity& identity, int rank,
               int world_size, const StreamOptions& options);
  ~SampleStream();

  // The state of a fresh stream (epoch 0, nothing read).
  StreamState fresh_state() const;
  // Continues from `state`; the samples it holds in its buffer are read again from their shards
  // (failures there are counted in `dropped`).
  void load(const StreamState& state, std::map<std::string, int64_t>& dropped);

  // The next sample in shuffled order. Shard failures met on the way are counted in `dropped`
  // and logged. Throws flam::Error(kData) when a whole epoch of this rank yields nothing.
  StreamItem next(std::map<std::string, int64_t>& dropped);

  // Thrown by next() once cancel() was called.
  struct Cancelled {};
  // Any thread: every read-ahead transfer stops within 0.2 s (a silent server is not waited
  // out), and next(), now or later, throws Cancelled instead of reading on. load() clears it.
  void cancel();

  // Raw bytes held by the shuffle buffer (not the read-ahead, bounded by the options).
  int64_t buffered_bytes() const { return buffered_bytes_; }
  const std::string& shard_name(int64_t shard) const { return shards_[shard]; }

 private:
  struct Buffered {
    SampleId id;
    Sample sample;
  };
  struct Fetch;  // one remote shard read on its own thread (loader_stream.cpp)
  bool read_one(Buffered* out, std::map<std::string, int64_t>& dropped);
  // Reads the current task through its Fetch; false when the task is finished (advanced past).
  bool read_fetched(Buffered* out, std::map<std::string, int64_t>& dropped);
  void advance_unit();
  void close_reader();
  void stop_fetches();
  // Starts the fetches of the current task and the read-ahead window that are not running.
  void start_fetches();
  // Moves the slow_shard decisions the fetch threads made so far into failed_.
  void absorb_fetch_failures();
  void shard_failed(const std::string& reason, const std::string& name, const std::string& what,
                    std::map<std::string, int64_t>& dropped);
  StreamState current_state() const;

  std::vector<std::string> shards_;
  StreamIdentity identity_;
  int rank_;
  int world_size_;
  size_t capacity_;
  StreamOptions options_;

  std::shared_ptr<const std::vector<ShardTask>> tasks_;
  size_t unit_pos_ = 0;
  int64_t front_start_ = 0;
  int64_t next_epoch_ = 0;
  int64_t share_epoch_ = -1;
  bool plan_is_standard_ = false;
  int64_t read_since_plan_ = 0;
  uint64_t rng_state_ = 0;
  std::vector<Buffered> buffer_;
  int64_t buffered_bytes_ = 0;

  // Shards failed so far, per reason, for a log that stays short however many fail.
  static constexpr int64_t kLoggedShardFailures = 5;
  struct FailedShards {
    int64_t count = 0;
    std::vector<std::string> first;  // the first kLoggedShardFailures names
    int64_t next_summary = 10;
  };
  std::map<std::string, FailedShards> failed_shards_;

  std::unique_ptr<TarReader> reader_;
  std::unique_ptr<SampleGrouper> grouper_;
  int64_t reader_ordinal_ = 0;

  std::map<std::pair<int64_t, int64_t>, int64_t> failed_;  // see StreamState::failed
  // Running fetches by position in *tasks_ (cleared when the plan changes). Changed by the
  // stream's thread under fetches_mu_, which cancel() holds to reach every fetch.
  std::map<size_t, std::shared_ptr<Fetch>> fetches_;
  std::mutex fetches_mu_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace flam::pipeline
