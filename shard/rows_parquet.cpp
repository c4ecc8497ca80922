#include "shard/rows_parquet.h"

#include "shard/shard_worker.h"

namespace flam::shard {

std::string shard_parquet_path(const ShardOptions& options, int64_t shard) {
  return options.output_dir + "/" + shard_stem(shard) + ".parquet";
}

nlohmann::ordered_json failed_row_record(const InputRow& row, const ShardOptions& options,
                                         const std::string& key, const std::string& status,
                                         const std::string& message) {
  nlohmann::ordered_json j;
  j["url"] = row.url;
  j["caption"] =
      options.caption_col.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(row.caption);
  j["key"] = key;
  j["status"] = status;
  j["error_message"] = message;
  for (size_t c = 0; c < options.save_cols.size() && c < row.extra.size(); ++c) {
    j[options.save_cols[c]] = row.extra[c];
  }
  return j;
}

}  // namespace flam::shard
