#include "shard/sample_format.h"

#include "core/base64.h"
#include "pipeline/drop_reason.h"
#include "pipeline/text.h"
#include "shard/rows_parquet.h"

namespace flam::shard {

using ojson = nlohmann::ordered_json;

void plan_row(const InputRow& in, bool mmc4, int row, RowState* state,
              std::vector<ImageSlot>* slots) {
  auto add = [&](std::string url) {
    state->slots.push_back(static_cast<int>(slots->size()));
    ImageSlot s;
    s.row = row;
    s.url = std::move(url);
    slots->push_back(std::move(s));
  };
  if (!in.error.empty()) {
    state->error = in.error;
    state->reason = in.reason.empty() ? pipeline::drop::kBadRow : in.reason;
  } else if (!mmc4) {
    add(in.url);
  } else {
    state->document = ojson::parse(in.document, nullptr, false);
    state->reason = pipeline::drop::kBadRow;
    if (!pipeline::valid_utf8(in.document)) {
      state->error = "the document is not UTF-8";
      state->reason = pipeline::drop::kInvalidUtf8;
    } else if (state->document.is_discarded() || !state->document.is_object()) {
      state->error = "not a JSON object";
    } else if (!state->document.contains("image_info") ||
               !state->document["image_info"].is_array()) {
      state->error = "no image_info list";
    } else {
      for (const auto& info : state->document["image_info"]) {
        std::string url;
        if (info.is_object() && info.contains("raw_url") && info["raw_url"].is_string()) {
          url = info["raw_url"].get<std::string>();
        }
        add(std::move(url));
      }
    }
  }
  state->pending = static_cast<int>(state->slots.size());
}

ojson format_row(const InputRow& in, const ShardOptions& options, bool mmc4, const std::string& key,
                 RowState& state, std::vector<ImageSlot>& slots, pipeline::TarWriter& tar,
                 ShardStats& stats, std::vector<ojson>* records) {
  ojson line;
  line["key"] = key;
  std::string status;
  if (!state.error.empty()) {
    status = "bad_row";
    stats.reasons[state.reason] += 1;
    line["status"] = status;
    line["reason"] = state.reason;
    line["message"] = state.error;
    if (!mmc4) records->push_back(failed_row_record(in, options, key, status, state.error));
  } else if (!mmc4) {
    ImageSlot& s = slots[state.slots[0]];
    stats.images += 1;
    stats.attempts += s.attempts;
    line["url"] = s.url;
    if (s.reason.empty()) {
      status = "success";
      stats.images_ok += 1;
      stats.bytes_downloaded += s.bytes_downloaded;
      ojson j;
      j["url"] = s.url;
      j["caption"] = options.caption_col.empty() ? ojson() : ojson(in.caption);
      j["key"] = key;
      j["status"] = "success";
      j["error_message"] = nullptr;
      j["width"] = s.image.width;
      j["height"] = s.image.height;
      j["original_width"] = s.image.original_width;
      j["original_height"] = s.image.original_height;
      j["exif"] = s.exif;
      j["sha256"] = s.sha256;
      for (size_t c = 0; c < options.save_cols.size(); ++c) {
        j[options.save_cols[c]] = in.extra[c];
      }
      tar.add(key + "." + s.image.extension, s.image.encoded);
      if (!options.caption_col.empty()) tar.add(key + ".txt", in.caption);
      tar.add(key + ".json", j.dump());
      records->push_back(std::move(j));
    } else {
      status = s.download_failed ? "failed_to_download" : "failed_to_resize";
      stats.reasons[s.reason] += 1;
      line["reason"] = s.reason;
      line["message"] = s.message;
      records->push_back(failed_row_record(in, options, key, status, s.message));
    }
    line["status"] = status;
    s.image.encoded.clear();
    s.image.encoded.shrink_to_fit();
  } else {
    ojson kept_info = ojson::array();
    ojson kept_sim = ojson::array();
    const ojson& info = state.document["image_info"];
    const ojson* sim = state.document.contains("similarity_matrix") &&
                               state.document["similarity_matrix"].is_array() &&
                               state.document["similarity_matrix"].size() == info.size()
                           ? &state.document["similarity_matrix"]
                           : nullptr;
    std::vector<std::pair<std::string, const std::string*>> members;
    ojson reasons = ojson::object();
    for (size_t k = 0; k < state.slots.size(); ++k) {
      ImageSlot& s = slots[state.slots[k]];
      stats.images += 1;
      stats.attempts += s.attempts;
      if (!s.reason.empty()) {
        stats.reasons[s.reason] += 1;
        reasons[s.reason] = reasons.value(s.reason, 0) + 1;
        continue;
      }
      stats.images_ok += 1;
      stats.bytes_downloaded += s.bytes_downloaded;
      ojson entry = info[k];
      entry["width"] = s.image.width;
      entry["height"] = s.image.height;
      entry["original_width"] = s.image.original_width;
      entry["original_height"] = s.image.original_height;
      entry["sha256"] = s.sha256;
      if (options.mmc4_layout == "members") {
        std::string member = std::to_string(kept_info.size()) + "." + s.image.extension;
        entry["image_member"] = member;
        members.emplace_back(key + "." + member, &s.image.encoded);
      } else {
        entry["image_base64"] = base64_encode(s.image.encoded);
      }
      kept_info.push_back(std::move(entry));
      if (sim) kept_sim.push_back((*sim)[k]);
    }
    line["images"] = state.slots.size();
    line["images_ok"] = kept_info.size();
    if (!reasons.empty()) line["reasons"] = reasons;
    if (kept_info.empty()) {
      status = "no_images";
    } else {
      status = "success";
      ojson doc = state.document;
      doc["image_info"] = std::move(kept_info);
      if (sim) doc["similarity_matrix"] = std::move(kept_sim);
      doc["key"] = key;
      tar.add(key + ".json", doc.dump());
      for (const auto& [name, bytes] : members) tar.add(name, *bytes);
    }
    line["status"] = status;
    for (int k : state.slots) {
      slots[k].image.encoded.clear();
      slots[k].image.encoded.shrink_to_fit();
    }
    state.document = ojson();
  }
  stats.samples += 1;
  stats.status[status] += 1;
  if (status == "success") stats.successes += 1;
  return line;
}

}  // namespace flam::shard
