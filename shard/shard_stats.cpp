#include "shard/shard_stats.h"

#include <algorithm>

#include "core/error.h"

namespace flam::shard {

void ShardStats::add(const ShardStats& o) {
  samples += o.samples;
  successes += o.successes;
  images += o.images;
  images_ok += o.images_ok;
  for (const auto& [k, v] : o.status) status[k] += v;
  for (const auto& [k, v] : o.reasons) reasons[k] += v;
  attempts += o.attempts;
  bytes_downloaded += o.bytes_downloaded;
  bytes_written += o.bytes_written;
  duration_seconds += o.duration_seconds;
  transform_seconds += o.transform_seconds;
  if (o.start_time > 0 && (start_time == 0 || o.start_time < start_time)) start_time = o.start_time;
  end_time = std::max(end_time, o.end_time);
}

nlohmann::ordered_json ShardStats::to_json() const {
  nlohmann::ordered_json j;
  j["format"] = "flam-shard-stats";
  j["version"] = 1;
  if (shard >= 0) j["shard"] = shard;
  j["samples"] = samples;
  j["successes"] = successes;
  j["failures"] = samples - successes;
  j["images"] = images;
  j["images_ok"] = images_ok;
  j["status"] = nlohmann::ordered_json::object();
  for (const auto& [k, v] : status) j["status"][k] = v;
  j["reasons"] = nlohmann::ordered_json::object();
  for (const auto& [k, v] : reasons) j["reasons"][k] = v;
  j["attempts"] = attempts;
  j["bytes_downloaded"] = bytes_downloaded;
  j["bytes_written"] = bytes_written;
  j["duration_seconds"] = duration_seconds;
  j["transform_seconds"] = transform_seconds;
  // img2dataset's fields; status_dict counts "success" and each failure reason, as its
  // CappedCounter counts "success" and each error message.
  j["count"] = samples;
  j["failed_to_download"] =
      status.count("failed_to_download") ? status.at("failed_to_download") : 0;
  j["failed_to_resize"] = status.count("failed_to_resize") ? status.at("failed_to_resize") : 0;
  j["duration"] = duration_seconds;
  j["start_time"] = start_time;
  j["end_time"] = end_time;
  j["status_dict"] = nlohmann::ordered_json::object();
  if (successes > 0) j["status_dict"]["success"] = successes;
  for (const auto& [k, v] : reasons) j["status_dict"][k] = v;
  return j;
}

ShardStats ShardStats::from_json(const nlohmann::json& j, const std::string& file) {
  if (!j.is_object() || j.value("format", "") != "flam-shard-stats") {
    throw Error(ErrorKind::kData, "not a shard stats file", ErrorContext{file, -1, "", "", -1});
  }
  try {
    ShardStats s;
    s.shard = j.value("shard", int64_t{-1});
    s.samples = j.at("samples").get<int64_t>();
    s.successes = j.at("successes").get<int64_t>();
    s.images = j.at("images").get<int64_t>();
    s.images_ok = j.at("images_ok").get<int64_t>();
    for (const auto& [k, v] : j.at("status").items()) s.status[k] = v.get<int64_t>();
    for (const auto& [k, v] : j.at("reasons").items()) s.reasons[k] = v.get<int64_t>();
    s.attempts = j.at("attempts").get<int64_t>();
    s.bytes_downloaded = j.at("bytes_downloaded").get<int64_t>();
    s.bytes_written = j.at("bytes_written").get<int64_t>();
    s.duration_seconds = j.at("duration_seconds").get<double>();
    s.transform_seconds = j.at("transform_seconds").get<double>();
    s.start_time = j.value("start_time", 0.0);
    s.end_time = j.value("end_time", 0.0);
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::kData, std::string("bad shard stats: ") + e.what(),
                ErrorContext{file, -1, "", "", -1});
  }
}

}  // namespace flam::shard
