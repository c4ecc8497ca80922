#include "shard/shard_job.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <set>
#include <system_error>
#include <thread>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/world.h"
#include "pipeline/s3.h"
#include "shard/rows_parquet.h"
#include "shard/shard_queue.h"
#include "shard/shard_worker.h"
#include "shard/table_check.h"
#include "shard/url_reader.h"

namespace flam::shard {
namespace {

namespace fs = std::filesystem;

int transform_threads(const ShardOptions& options, const WorldInfo& world) {
  if (options.transform_threads > 0) return options.transform_threads;
  int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, world.local_size));
}

// An s3:// output_dir: shards are made in a local staging folder (one shard at a time) and
// uploaded when finished, the tar and the rows files first and the stats object last, so that, as
// on disk, a shard whose stats exist is complete. Removes the staging folder at the end.
class S3Output {
 public:
  explicit S3Output(const ShardOptions& options, int rank) : remote_(options) {
    staged_ = options;
    staged_.output_dir = (fs::temp_directory_path() /
                          ("flam-shard-" + std::to_string(::getpid()) + "-" + std::to_string(rank)))
                             .string();
    std::error_code ec;
    fs::create_directories(staged_.output_dir, ec);
    if (ec) {
      throw Error(ErrorKind::kIo, "cannot create the staging directory: " + ec.message(),
                  at_file(staged_.output_dir));
    }
  }
  ~S3Output() {
    std::error_code ec;
    fs::remove_all(staged_.output_dir, ec);
  }
  S3Output(const S3Output&) = delete;
  S3Output& operator=(const S3Output&) = delete;

  // Where the worker writes.
  const ShardOptions& staged() const { return staged_; }

  void upload(int64_t shard) const {
    const pipeline::S3Client& s3 = pipeline::default_s3_client();
    std::vector<std::pair<std::string, std::string>> files{
        {shard_tar_path(staged_, shard), shard_tar_path(remote_, shard)},
        {shard_rows_path(staged_, shard), shard_rows_path(remote_, shard)},
        {shard_parquet_path(staged_, shard), shard_parquet_path(remote_, shard)},
        {shard_stats_path(staged_, shard), shard_stats_path(remote_, shard)}};
    for (const auto& [local, remote] : files) {
      if (!fs::exists(local)) continue;  // parquet: LAION only
      s3.put_file(remote, local);
      std::error_code ec;
      fs::remove(local, ec);
    }
  }

 private:
  ShardOptions remote_;
  ShardOptions staged_;
};

bool is_s3(const ShardOptions& options) { return pipeline::is_s3_url(options.output_dir); }

std::string read_output(const ShardOptions& options, const std::string& name) {
  return is_s3(options) ? pipeline::default_s3_client().get(name) : read_file(name);
}

void write_output(const ShardOptions& options, const std::string& name, const std::string& text) {
  if (is_s3(options)) {
    pipeline::default_s3_client().put(name, text);
  } else {
    write_file_atomic(name, text);
  }
}

// The shards whose stats file exists (one listing for s3://, not a request per shard).
std::set<int64_t> done_shards(const ShardOptions& options, int64_t shards) {
  std::set<int64_t> done;
  if (is_s3(options)) {
    std::set<std::string> names;
    for (const auto& object : pipeline::default_s3_client().list(options.output_dir + "/")) {
      names.insert(object.url);
    }
    for (int64_t s = 0; s < shards; ++s) {
      if (names.count(shard_stats_path(options, s)) != 0) done.insert(s);
    }
    return done;
  }
  for (int64_t s = 0; s < shards; ++s) {
    if (fs::exists(shard_stats_path(options, s))) done.insert(s);
  }
  return done;
}

// Rank 0, after every shard is done: sizes.json and summary.json from the stats files.
ShardStats write_index(const ShardOptions& options, int64_t shards) {
  ShardStats totals;
  nlohmann::ordered_json sizes = nlohmann::ordered_json::object();
  for (int64_t s = 0; s < shards; ++s) {
    const std::string path = shard_stats_path(options, s);
    nlohmann::json j = nlohmann::json::parse(read_output(options, path), nullptr, false);
    ShardStats st = ShardStats::from_json(j, path);
    totals.add(st);
    sizes[fs::path(shard_tar_path(options, s)).filename().string()] = st.successes;
  }
  write_output(options, options.output_dir + "/sizes.json", sizes.dump(2) + "\n");
  nlohmann::ordered_json summary = totals.to_json();
  summary["format"] = "flam-shard-summary";
  summary["shards"] = shards;
  write_output(options, options.output_dir + "/summary.json", summary.dump(2) + "\n");
  return totals;
}

}  // namespace

ShardJobResult run_shard_job(const ShardOptions& requested) {
  const WorldInfo& world = World::info();
  ShardOptions options = requested;
  while (is_s3(options) && !options.output_dir.empty() && options.output_dir.back() == '/') {
    options.output_dir.pop_back();
  }
  std::vector<InputRow> rows = read_inputs(options);
  check_bad_rows(rows, options.max_bad_row_fraction, options.input_kind);
  std::unique_ptr<S3Output> s3_output;
  if (is_s3(options)) {
    pipeline::parse_s3_url(options.output_dir);
    s3_output = std::make_unique<S3Output>(options, world.rank);
  } else {
    std::error_code ec;
    fs::create_directories(options.output_dir, ec);
    if (ec) {
      throw Error(ErrorKind::kIo, "cannot create the output directory: " + ec.message(),
                  ErrorContext{options.output_dir, -1, "shard.output_dir", "", -1});
    }
  }
  ShardWorker worker(s3_output ? s3_output->staged() : options, rows,
                     transform_threads(options, world));
  ShardJobResult result;
  result.shards_total = worker.shard_count();

  std::vector<int64_t> todo;
  if (world.rank == 0) {
    const std::set<int64_t> done = done_shards(options, result.shards_total);
    for (int64_t s = 0; s < result.shards_total; ++s) {
      if (done.count(s) != 0) {
        ++result.shards_skipped;
      } else {
        todo.push_back(s);
      }
    }
    FLAM_LOG(INFO) << rows.size() << " input rows, " << result.shards_total << " shards ("
                   << result.shards_skipped << " done before), " << world.size << " ranks";
  }
  ShardQueue queue(std::move(todo),
                   {options.progress_seconds, result.shards_total, result.shards_skipped});
  ShardStats last;
  bool have_last = false;
  while (true) {
    int64_t id = queue.next(have_last ? &last : nullptr);
    if (id < 0) break;
    last = worker.process(id);
    if (s3_output) s3_output->upload(id);
    have_last = true;
    result.totals.add(last);
    ++result.shards_made;
    FLAM_LOG(DEBUG) << "shard " << id << ": " << last.successes << "/" << last.samples
                    << " samples in " << last.duration_seconds << " s";
  }
  queue.finish();
  if (world.rank == 0) {
    result.totals = write_index(options, result.shards_total);
    FLAM_LOG(INFO) << "done: " << result.shards_total << " shards, " << result.totals.successes
                   << "/" << result.totals.samples << " samples, " << result.totals.images_ok << "/"
                   << result.totals.images << " images; summary in " << options.output_dir
                   << "/summary.json";
  }
  return result;
}

}  // namespace flam::shard
