#include "pipeline/loader_stream.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>
#include <thread>

#include "core/check.h"
#include "core/error.h"
#include "core/log.h"
#include "pipeline/byte_source.h"
#include "pipeline/drop_reason.h"
#include "pipeline/loader_rng.h"

namespace flam::pipeline {
namespace {

constexpr int kStateVersion = 1;
constexpr uint64_t kSaltPermutation = 0x7065726d;  // "perm"
constexpr uint64_t kSaltShuffle = 0x73687566;      // "shuf"

uint64_t shuffle_seed(const StreamIdentity& id, int rank, int world, int64_t epoch) {
  return mix_seed({id.seed, static_cast<uint64_t>(id.kind), kSaltShuffle,
                   static_cast<uint64_t>(rank), static_cast<uint64_t>(world),
                   static_cast<uint64_t>(epoch)});
}

[[noreturn]] void bad_state(const std::string& what) {
  throw Error(ErrorKind::kData,
              "loader state: " + what + " (was it written by this version, for this data config?)");
}

int64_t sample_bytes(const Sample& s) {
  int64_t n = static_cast<int64_t>(s.key.size());
  for (const auto& [ext, bytes] : s.members) n += static_cast<int64_t>(ext.size() + bytes.size());
  return n;
}

// A stream failed for its pace (byte_source.h names the data.stream key), not its bytes.
bool is_too_slow(const Error& e) {
  return e.kind() == ErrorKind::kNetwork &&
         (e.context().key == "data.stream.deadline_seconds" ||
          e.context().key == "data.stream.min_average_bytes_per_second");
}

}  // namespace

// One remote shard of one task, read by its own thread into `ready` (the samples the task wants,
// in tar order), at most `cap` bytes ahead of the consumer.
struct SampleStream::Fetch {
  int64_t epoch = 0;
  int64_t shard = 0;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<int64_t, Sample>> ready;  // (ordinal, sample)
  int64_t ready_bytes = 0;
  bool done = false;
  std::unique_ptr<Error> error;  // why it ended early, if it did
  int64_t read = 0;              // ordinals read so far (at an error: the samples the shard gave)
  bool absorbed = false;         // a slow_shard decision moved into failed_ (consumer only)
  std::atomic<bool> cancel{false};                   // this fetch only (its task is done)
  const std::atomic<bool>* stream_cancel = nullptr;  // the stream's cancel(); not owned
  std::thread thread;

  bool stopping() const { return cancel.load() || stream_cancel->load(); }

  void run(const std::string& name, const SourceOptions& source, const ShardTask& task,
           int64_t start, int64_t limit, int64_t cap) {
    try {
      SourceOptions cancellable = source;
      cancellable.cancelled = [this] { return stopping(); };
      TarReader reader(open_source(name, cancellable));
      SampleGrouper grouper(reader);
      Sample sample;
      while (read < limit && grouper.next(sample)) {
        const int64_t ordinal = read;
        std::unique_lock<std::mutex> lock(mu);
        read = ordinal + 1;
        if (ordinal < start || (!task.only.empty() &&
                                !std::binary_search(task.only.begin(), task.only.end(), ordinal)))
          continue;
        ready_bytes += sample_bytes(sample);
        ready.emplace_back(ordinal, std::move(sample));
        cv.notify_all();
        cv.wait(lock, [&] { return stopping() || ready_bytes < cap; });
        if (stopping()) break;
      }
    } catch (const Error& e) {
      std::lock_guard<std::mutex> lock(mu);
      error = std::make_unique<Error>(e);
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mu);
      ErrorContext context;
      context.url = name;
      error = std::make_unique<Error>(ErrorKind::kInternal, e.what(), context);
    }
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    cv.notify_all();
  }
};

std::vector<ShardTask> standard_share(const StreamIdentity& identity, int64_t epoch, int rank,
                                      int world_size) {
  const int64_t n = identity.num_shards;
  FLAM_CHECK(n > 0 && rank >= 0 && rank < world_size) << "bad share request";
  std::vector<int64_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  Rng rng(mix_seed({identity.seed, static_cast<uint64_t>(identity.kind), kSaltPermutation,
                    static_cast<uint64_t>(epoch)}));
  for (int64_t i = n - 1; i > 0; --i) {
    std::swap(perm[i], perm[rng.below(static_cast<uint64_t>(i + 1))]);
  }
  std::vector<ShardTask> tasks;
  if (n < world_size) {
    tasks.push_back(ShardTask{epoch, perm[rank % n], 0, {}});
  } else {
    for (int64_t p = rank; p < n; p += world_size)
      tasks.push_back(ShardTask{epoch, perm[p], 0, {}});
  }
  return tasks;
}

std::string serialize_state(const StreamState& s, const StreamIdentity& id) {
  nlohmann::json j;
  j["version"] = kStateVersion;
  j["kind"] = to_string(id.kind);
  j["seed"] = id.seed;
  j["num_shards"] = id.num_shards;
  j["shards_hash"] = id.shards_hash;
  j["rank"] = s.rank;
  j["world_size"] = s.world_size;
  j["next_epoch"] = s.next_epoch;
  j["rng"] = s.rng;
  nlohmann::json tasks = nlohmann::json::array();
  if (s.tasks && s.share_epoch >= 0) {
    j["share"] = {s.share_epoch, s.task_pos, s.front_start};
  } else if (s.tasks) {
    for (size_t i = s.task_pos; i < s.tasks->size(); ++i) {
      const ShardTask& u = (*s.tasks)[i];
      nlohmann::json ju = {u.epoch, u.shard, i == s.task_pos ? s.front_start : u.start};
      if (!u.only.empty()) ju.push_back(u.only);
      tasks.push_back(std::move(ju));
    }
  }
  j["units"] = std::move(tasks);
  nlohmann::json buffer = nlohmann::json::array();
  for (const SampleId& b : s.buffer) buffer.push_back({b.epoch, b.shard, b.ordinal});
  j["buffer"] = std::move(buffer);
  if (!s.failed.empty()) {
    nlohmann::json failed = nlohmann::json::array();
    for (const auto& [key, kept] : s.failed) failed.push_back({key.first, key.second, kept});
    j["failed"] = std::move(failed);
  }
  return j.dump();
}

StreamState parse_state(const std::string& text, const StreamIdentity& id) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) bad_state("not a JSON object");
  StreamState s;
  try {
    if (j.at("version").get<int>() != kStateVersion) bad_state("unknown version");
    if (j.at("kind").get<std::string>() != to_string(id.kind))
      bad_state("it is for dataset " + j.at("kind").get<std::string>() + ", not " +
                to_string(id.kind));
    if (j.at("seed").get<uint64_t>() != id.seed) bad_state("it was made with another seed");
    if (j.at("num_shards").get<int64_t>() != id.num_shards ||
        j.at("shards_hash").get<uint64_t>() != id.shards_hash)
      bad_state("the shard list differs from the one it was made with");
    s.rank = j.at("rank").get<int>();
    s.world_size = j.at("world_size").get<int>();
    s.next_epoch = j.at("next_epoch").get<int64_t>();
    s.rng = j.at("rng").get<uint64_t>();
    auto tasks = std::make_shared<std::vector<ShardTask>>();
    for (const auto& ju : j.at("units")) {
      ShardTask u{ju.at(0).get<int64_t>(), ju.at(1).get<int64_t>(), ju.at(2).get<int64_t>(), {}};
      if (ju.size() > 3) u.only = ju.at(3).get<std::vector<int64_t>>();
      if (u.shard < 0 || u.shard >= id.num_shards || u.start < 0)
        bad_state("shard task out of range");
      if (!std::is_sorted(u.only.begin(), u.only.end())) bad_state("unsorted unit");
      tasks->push_back(std::move(u));
    }
    s.front_start = tasks->empty() ? 0 : tasks->front().start;
    if (j.contains("share")) {
      if (s.world_size < 1 || s.rank < 0 || s.rank >= s.world_size) bad_state("bad rank");
      s.share_epoch = j["share"].at(0).get<int64_t>();
      *tasks = standard_share(id, s.share_epoch, s.rank, s.world_size);
      s.task_pos = j["share"].at(1).get<size_t>();
      s.front_start = j["share"].at(2).get<int64_t>();
      if (s.share_epoch < 0 || s.task_pos > tasks->size() || s.front_start < 0)
        bad_state("share out of range");
    }
    s.tasks = std::move(tasks);
    for (const auto& jb : j.at("buffer")) {
      SampleId b{jb.at(0).get<int64_t>(), jb.at(1).get<int64_t>(), jb.at(2).get<int64_t>()};
      if (b.shard < 0 || b.shard >= id.num_shards) bad_state("buffered sample out of range");
      s.buffer.push_back(b);
    }
    if (j.contains("failed")) {
      for (const auto& jf : j.at("failed")) {
        const int64_t shard = jf.at(1).get<int64_t>(), kept = jf.at(2).get<int64_t>();
        if (shard < 0 || shard >= id.num_shards || kept < 0) bad_state("failed shard out of range");
        s.failed[{jf.at(0).get<int64_t>(), shard}] = kept;
      }
    }
  } catch (const nlohmann::json::exception& e) {
    bad_state(std::string("malformed: ") + e.what());
  }
  if (s.world_size < 1 || s.rank < 0 || s.rank >= s.world_size) bad_state("bad rank/world_size");
  return s;
}

std::vector<StreamState> repartition(const std::vector<StreamState>& old_states,
                                     const StreamIdentity& identity, int new_world) {
  FLAM_CHECK(new_world >= 1) << "new world size " << new_world;
  const int old_world = static_cast<int>(old_states.size());
  int64_t last_epoch = 0;
  for (int r = 0; r < old_world; ++r) {
    if (old_states[r].world_size != old_world || old_states[r].rank != r) {
      bad_state("restore needs the states of all " + std::to_string(old_world) +
                " ranks in rank order; state " + std::to_string(r) + " says rank " +
                std::to_string(old_states[r].rank) + " of " +
                std::to_string(old_states[r].world_size));
    }
    last_epoch = std::max(last_epoch, old_states[r].next_epoch);
  }
  std::vector<ShardTask> left;
  for (int r = 0; r < old_world; ++r) {
    const StreamState& s = old_states[r];
    // Buffered samples: one task per (epoch, shard), in order of first appearance.
    std::vector<std::pair<int64_t, int64_t>> order;
    std::map<std::pair<int64_t, int64_t>, std::vector<int64_t>> groups;
    for (const SampleId& b : s.buffer) {
      auto key = std::make_pair(b.epoch, b.shard);
      if (!groups.count(key)) order.push_back(key);
      groups[key].push_back(b.ordinal);
    }
    for (const auto& key : order) {
      std::vector<int64_t> only = groups[key];
      std::sort(only.begin(), only.end());
      left.push_back(ShardTask{key.first, key.second, 0, std::move(only)});
    }
    if (s.tasks) {
      for (size_t i = s.task_pos; i < s.tasks->size(); ++i) {
        ShardTask u = (*s.tasks)[i];
        if (i == s.task_pos) u.start = s.front_start;
        if (!u.only.empty() && u.only.back() < u.start) continue;
        left.push_back(std::move(u));
      }
    }
    for (int64_t e = s.next_epoch; e < last_epoch; ++e) {
      for (ShardTask& u : standard_share(identity, e, r, old_world)) left.push_back(std::move(u));
    }
  }
  std::map<std::pair<int64_t, int64_t>, int64_t> failed;
  for (const StreamState& s : old_states) failed.insert(s.failed.begin(), s.failed.end());
  std::vector<StreamState> out(new_world);
  for (int r = 0; r < new_world; ++r) {
    auto tasks = std::make_shared<std::vector<ShardTask>>();
    for (size_t j = r; j < left.size(); j += new_world) tasks->push_back(left[j]);
    StreamState& s = out[r];
    s.front_start = tasks->empty() ? 0 : tasks->front().start;
    s.tasks = std::move(tasks);
    s.next_epoch = last_epoch;
    s.rng = shuffle_seed(identity, r, new_world, last_epoch);
    s.rank = r;
    s.world_size = new_world;
    s.failed = failed;
  }
  return out;
}

SampleStream::SampleStream(std::vector<std::string> shards, const StreamIdentity& identity,
                           int rank, int world_size, const StreamOptions& options)
    : shards_(std::move(shards)),
      identity_(identity),
      rank_(rank),
      world_size_(world_size),
      capacity_(static_cast<size_t>(std::max(1, options.buffer_capacity))),
      options_(options) {
  std::map<std::string, int64_t> none;
  load(fresh_state(), none);
}

SampleStream::~SampleStream() { stop_fetches(); }

void SampleStream::stop_fetches() {
  std::map<size_t, std::shared_ptr<Fetch>> stopping;
  {
    std::lock_guard<std::mutex> lock(fetches_mu_);
    stopping.swap(fetches_);
  }
  for (auto& [pos, fetch] : stopping) {
    {
      std::lock_guard<std::mutex> lock(fetch->mu);
      fetch->cancel = true;
    }
    fetch->cv.notify_all();
  }
  for (auto& [pos, fetch] : stopping)
    if (fetch->thread.joinable()) fetch->thread.join();
}

void SampleStream::cancel() {
  cancelled_ = true;
  std::lock_guard<std::mutex> lock(fetches_mu_);
  for (auto& [pos, fetch] : fetches_) {
    { std::lock_guard<std::mutex> wake(fetch->mu); }  // a waiter sees the flag or the notify
    fetch->cv.notify_all();
  }
}

void SampleStream::start_fetches() {
  const size_t end =
      std::min(tasks_->size(), unit_pos_ + 1 + static_cast<size_t>(options_.read_ahead_shards));
  for (size_t pos = unit_pos_; pos < end; ++pos) {
    const ShardTask& task = (*tasks_)[pos];
    if (!is_url(shards_[task.shard]) || fetches_.count(pos)) continue;
    const int64_t start = pos == unit_pos_ ? front_start_ : task.start;
    const auto failed = failed_.find({task.epoch, task.shard});
    const int64_t limit = failed == failed_.end() ? INT64_MAX : failed->second;
    auto fetch = std::make_shared<Fetch>();
    fetch->epoch = task.epoch;
    fetch->shard = task.shard;
    fetch->stream_cancel = &cancelled_;
    Fetch* f = fetch.get();
    fetch->thread = std::thread(
        [f, name = shards_[task.shard], source = options_.source, task, start, limit,
         cap = options_.read_ahead_bytes] { f->run(name, source, task, start, limit, cap); });
    std::lock_guard<std::mutex> lock(fetches_mu_);
    fetches_[pos] = std::move(fetch);
  }
}

void SampleStream::absorb_fetch_failures() {
  for (auto& [pos, fetch] : fetches_) {
    if (fetch->absorbed) continue;
    std::lock_guard<std::mutex> lock(fetch->mu);
    if (fetch->error && is_too_slow(*fetch->error)) {
      failed_.emplace(std::make_pair(fetch->epoch, fetch->shard), fetch->read);
      fetch->absorbed = true;
    }
  }
}

StreamState SampleStream::fresh_state() const {
  StreamState s;
  s.tasks = std::make_shared<std::vector<ShardTask>>();
  s.rng = shuffle_seed(identity_, rank_, world_size_, 0);
  s.rank = rank_;
  s.world_size = world_size_;
  return s;
}

StreamState SampleStream::current_state() const {
  StreamState s;
  s.tasks = tasks_;
  s.task_pos = unit_pos_;
  s.front_start = front_start_;
  s.next_epoch = next_epoch_;
  s.share_epoch = share_epoch_;
  s.buffer.reserve(buffer_.size());
  for (const Buffered& b : buffer_) s.buffer.push_back(b.id);
  s.rng = rng_state_;
  s.rank = rank_;
  s.world_size = world_size_;
  s.failed = failed_;
  return s;
}

void SampleStream::close_reader() {
  grouper_.reset();
  reader_.reset();
  reader_ordinal_ = 0;
}

void SampleStream::shard_failed(const std::string& reason, const std::string& name,
                                const std::string& what, std::map<std::string, int64_t>& dropped) {
  ++dropped[reason];
  // A huge brace range of missing shards must not log one line each: the first few in full,
  // then a summary at each power of ten with the count and the first names.
  FailedShards& failed = failed_shards_[reason];
  ++failed.count;
  if (failed.count <= kLoggedShardFailures) {
    failed.first.push_back(name);
    FLAM_LOG(WARN) << "loader: " << reason << ": skipping the rest of the shard: " << what;
    return;
  }
  if (failed.count == failed.next_summary) {
    failed.next_summary *= 10;
    std::string names;
    for (const std::string& n : failed.first) names += (names.empty() ? "" : ", ") + n;
    FLAM_LOG(WARN) << "loader: " << reason << ": " << failed.count
                   << " shards skipped so far on this rank (the first: " << names
                   << "); only counted from here, summarised again at " << failed.next_summary;
  }
}

namespace {

// The reason a shard that threw `error` counts under, and the name to log.
std::string failure_reason(const Error& error) {
  const bool network = error.kind() == ErrorKind::kIo || error.kind() == ErrorKind::kNetwork;
  return network ? drop::kUnreachableShard : drop::kCorruptShard;
}

std::string failure_name(const Error& error) {
  return error.context().url.empty() ? error.context().file : error.context().url;
}

}  // namespace

void SampleStream::load(const StreamState& state, std::map<std::string, int64_t>& dropped) {
  stop_fetches();
  cancelled_ = false;
  close_reader();
  failed_ = state.failed;
  tasks_ = state.tasks ? state.tasks : std::make_shared<std::vector<ShardTask>>();
  unit_pos_ = state.task_pos;
  front_start_ = state.front_start;
  next_epoch_ = state.next_epoch;
  share_epoch_ = state.share_epoch;
  rng_state_ = state.rng;
  plan_is_standard_ = false;
  read_since_plan_ = 0;
  buffer_.clear();
  buffered_bytes_ = 0;

  // Re-read the buffered samples, one pass per (epoch, shard).
  std::map<std::pair<int64_t, int64_t>, std::set<int64_t>> wanted;
  for (const SampleId& b : state.buffer) wanted[{b.epoch, b.shard}].insert(b.ordinal);
  std::map<std::tuple<int64_t, int64_t, int64_t>, Sample> found;
  for (auto& [key, ordinals] : wanted) {
    const std::string& name = shards_[key.second];
    try {
      TarReader reader(open_source(name, options_.source));
      SampleGrouper grouper(reader);
      Sample sample;
      int64_t ordinal = 0;
      const int64_t last = *ordinals.rbegin();
      while (ordinal <= last && grouper.next(sample)) {
        if (ordinals.count(ordinal)) found[{key.first, key.second, ordinal}] = std::move(sample);
        ++ordinal;
      }
    } catch (const Error& e) {
      shard_failed(failure_reason(e), failure_name(e), e.what(), dropped);
    }
  }
  for (const SampleId& b : state.buffer) {
    auto it = found.find({b.epoch, b.shard, b.ordinal});
    if (it == found.end()) {
      ++dropped[drop::kLostOnRestore];
      continue;
    }
    buffered_bytes_ += sample_bytes(it->second);
    buffer_.push_back(Buffered{b, std::move(it->second)});
  }
}

void SampleStream::advance_unit() {
  close_reader();
  std::shared_ptr<Fetch> done;
  {
    std::lock_guard<std::mutex> lock(fetches_mu_);
    const auto fetch = fetches_.find(unit_pos_);
    if (fetch != fetches_.end()) {
      done = std::move(fetch->second);
      fetches_.erase(fetch);
    }
  }
  if (done) {
    {
      std::lock_guard<std::mutex> lock(done->mu);
      done->cancel = true;
    }
    done->cv.notify_all();
    if (done->thread.joinable()) done->thread.join();
  }
  ++unit_pos_;
  front_start_ = unit_pos_ < tasks_->size() ? (*tasks_)[unit_pos_].start : 0;
}

bool SampleStream::read_fetched(Buffered* out, std::map<std::string, int64_t>& dropped) {
  const ShardTask& task = (*tasks_)[unit_pos_];
  Fetch& f = *fetches_.at(unit_pos_);
  std::unique_lock<std::mutex> lock(f.mu);
  while (true) {
    f.cv.wait(lock, [&] { return !f.ready.empty() || f.done; });
    if (f.ready.empty()) break;
    auto [ordinal, sample] = std::move(f.ready.front());
    f.ready.pop_front();
    f.ready_bytes -= sample_bytes(sample);
    f.cv.notify_all();
    if (ordinal < front_start_) continue;
    front_start_ = ordinal + 1;
    out->id = SampleId{task.epoch, task.shard, ordinal};
    out->sample = std::move(sample);
    ++read_since_plan_;
    return true;
  }
  lock.unlock();
  f.thread.join();
  if (cancelled_) throw Cancelled{};  // f ended for the cancel, not for its shard
  const std::string& name = shards_[task.shard];
  const auto key = std::make_pair(task.epoch, task.shard);
  if (f.error && is_too_slow(*f.error)) failed_.emplace(key, f.read);
  const auto failed = failed_.find(key);
  if (failed != failed_.end()) {
    shard_failed(drop::kSlowShard, name,
                 name + " (epoch " + std::to_string(task.epoch) + ") after " +
                     std::to_string(failed->second) + " samples: " +
                     (f.error ? std::string(f.error->what()) : "as decided before the restore"),
                 dropped);
    // Once no later task reads this shard in this epoch, the decision has done its work.
    bool again = false;
    for (size_t i = unit_pos_ + 1; i < tasks_->size() && !again; ++i)
      again = (*tasks_)[i].epoch == task.epoch && (*tasks_)[i].shard == task.shard;
    if (!again) failed_.erase(failed);
  } else if (f.error) {
    shard_failed(failure_reason(*f.error), failure_name(*f.error), f.error->what(), dropped);
  }
  advance_unit();
  return false;
}

bool SampleStream::read_one(Buffered* out, std::map<std::string, int64_t>& dropped) {
  while (true) {
    if (unit_pos_ >= tasks_->size()) {
      if (plan_is_standard_ && read_since_plan_ == 0) {
        plan_is_standard_ = false;
        return false;  // a whole epoch's share yielded nothing
      }
      stop_fetches();
      tasks_ = std::make_shared<std::vector<ShardTask>>(
          standard_share(identity_, next_epoch_, rank_, world_size_));
      unit_pos_ = 0;
      front_start_ = 0;
      share_epoch_ = next_epoch_;
      ++next_epoch_;
      plan_is_standard_ = true;
      read_since_plan_ = 0;
      // Every task of earlier epochs is read: their decisions are spent.
      for (auto it = failed_.begin(); it != failed_.end();)
        it = it->first.first < share_epoch_ ? failed_.erase(it) : std::next(it);
      continue;
    }
    const ShardTask& task = (*tasks_)[unit_pos_];
    if (!task.only.empty() && front_start_ > task.only.back()) {
      advance_unit();
      continue;
    }
    const std::string& name = shards_[task.shard];
    start_fetches();
    if (is_url(name)) {
      if (read_fetched(out, dropped)) return true;
      continue;
    }
    bool got = false;
    try {
      if (!reader_) {
        reader_ = std::make_unique<TarReader>(open_source(name, options_.source));
        grouper_ = std::make_unique<SampleGrouper>(*reader_);
        reader_ordinal_ = 0;
      }
      got = grouper_->next(out->sample);
    } catch (const Error& e) {
      shard_failed(failure_reason(e), failure_name(e), e.what(), dropped);
      advance_unit();
      continue;
    }
    if (!got) {
      advance_unit();
      continue;
    }
    const int64_t ordinal = reader_ordinal_++;
    if (ordinal < front_start_) continue;
    front_start_ = ordinal + 1;
    if (!task.only.empty() && !std::binary_search(task.only.begin(), task.only.end(), ordinal))
      continue;
    out->id = SampleId{task.epoch, task.shard, ordinal};
    ++read_since_plan_;
    return true;
  }
}

StreamItem SampleStream::next(std::map<std::string, int64_t>& dropped) {
  while (buffer_.size() < capacity_) {
    Buffered b;
    if (!read_one(&b, dropped)) break;
    buffered_bytes_ += sample_bytes(b.sample);
    buffer_.push_back(std::move(b));
  }
  if (buffer_.empty()) {
    throw Error(ErrorKind::kData, std::string("loader: a whole epoch of this rank's ") +
                                      to_string(identity_.kind) +
                                      " shards yielded no sample (rank " + std::to_string(rank_) +
                                      " of " + std::to_string(world_size_) +
                                      "); check the shard list and the logged shard errors");
  }
  Rng rng(rng_state_);
  const size_t j = rng.below(buffer_.size());
  rng_state_ = rng.state();
  StreamItem item;
  item.id = buffer_[j].id;
  item.sample = std::move(buffer_[j].sample);
  buffered_bytes_ -= sample_bytes(item.sample);
  if (j + 1 != buffer_.size()) buffer_[j] = std::move(buffer_.back());
  buffer_.pop_back();
  absorb_fetch_failures();
  item.after = std::make_shared<const StreamState>(current_state());
  return item;
}

}  // namespace flam::pipeline
