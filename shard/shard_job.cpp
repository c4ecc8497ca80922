#include "shard/shard_job.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <thread>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/world.h"
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

// Rank 0, after every shard is done: sizes.json and summary.json from the stats files.
ShardStats write_index(const ShardOptions& options, int64_t shards) {
  ShardStats totals;
  nlohmann::ordered_json sizes = nlohmann::ordered_json::object();
  for (int64_t s = 0; s < shards; ++s) {
    const std::string path = shard_stats_path(options, s);
    nlohmann::json j = nlohmann::json::parse(read_file(path), nullptr, false);
    ShardStats st = ShardStats::from_json(j, path);
    totals.add(st);
    sizes[fs::path(shard_tar_path(options, s)).filename().string()] = st.successes;
  }
  write_file_atomic(options.output_dir + "/sizes.json", sizes.dump(2) + "\n");
  nlohmann::ordered_json summary = totals.to_json();
  summary["format"] = "flam-shard-summary";
  summary["shards"] = shards;
  write_file_atomic(options.output_dir + "/summary.json", summary.dump(2) + "\n");
  return totals;
}

}  // namespace

ShardJobResult run_shard_job(const ShardOptions& options) {
  const WorldInfo& world = World::info();
  std::vector<InputRow> rows = read_inputs(options);
  check_bad_rows(rows, options.max_bad_row_fraction, options.input_kind);
  std::error_code ec;
  fs::create_directories(options.output_dir, ec);
  if (ec) {
    throw Error(ErrorKind::kIo, "cannot create the output directory: " + ec.message(),
                ErrorContext{options.output_dir, -1, "shard.output_dir", "", -1});
  }
  ShardWorker worker(options, rows, transform_threads(options, world));
  ShardJobResult result;
  result.shards_total = worker.shard_count();

  std::vector<int64_t> todo;
  if (world.rank == 0) {
    for (int64_t s = 0; s < result.shards_total; ++s) {
      if (fs::exists(shard_stats_path(options, s))) {
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
