#include "train/eval/datasets.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"

namespace flam::eval {
namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(ErrorKind::kIo, "cannot open evaluation file", at_file(path));
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::kData, std::string("invalid JSON: ") + e.what(), at_file(path));
  }
}

template <typename T>
T field(const nlohmann::json& j, const char* key, const std::string& path, size_t index) {
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::kData,
                "entry " + std::to_string(index) + ": field '" + key + "': " + e.what(),
                at_file(path));
  }
}

std::string id_text(const nlohmann::json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace

std::vector<EvalItem> load_karpathy_captions(const std::string& json_path,
                                             const std::string& image_dir,
                                             const std::string& split) {
  auto j = read_json(json_path);
  if (!j.contains("images") || !j["images"].is_array())
    throw Error(ErrorKind::kData, "no 'images' array (Karpathy split file expected)",
                at_file(json_path));
  std::vector<EvalItem> items;
  size_t index = 0;
  for (const auto& img : j["images"]) {
    const size_t i = index++;
    if (field<std::string>(img, "split", json_path, i) != split) continue;
    EvalItem item;
    auto filename = field<std::string>(img, "filename", json_path, i);
    item.id =
        img.contains("cocoid") ? id_text(img["cocoid"]) : filename.substr(0, filename.find('.'));
    std::filesystem::path nested =
        std::filesystem::path(image_dir) /
        (img.contains("filepath") ? img["filepath"].get<std::string>() : std::string()) / filename;
    item.image = img.contains("filepath") && std::filesystem::exists(nested)
                     ? nested.string()
                     : (std::filesystem::path(image_dir) / filename).string();
    for (const auto& s : field<nlohmann::json>(img, "sentences", json_path, i))
      item.answers.push_back(field<std::string>(s, "raw", json_path, i));
    if (item.answers.empty())
      throw Error(ErrorKind::kData, "entry " + std::to_string(i) + " has no sentences",
                  at_file(json_path));
    items.push_back(std::move(item));
  }
  return items;
}

std::vector<EvalItem> load_vqa(const std::string& questions_path,
                               const std::string& annotations_path, const std::string& image_dir,
                               bool coco_images) {
  auto q = read_json(questions_path);
  auto a = read_json(annotations_path);
  std::map<std::string, std::vector<std::string>> answers;
  size_t index = 0;
  for (const auto& ann : field<nlohmann::json>(a, "annotations", annotations_path, 0)) {
    const size_t i = index++;
    auto& list = answers[id_text(field<nlohmann::json>(ann, "question_id", annotations_path, i))];
    for (const auto& ans : field<nlohmann::json>(ann, "answers", annotations_path, i))
      list.push_back(field<std::string>(ans, "answer", annotations_path, i));
  }
  std::string split = std::filesystem::path(image_dir).filename().string();
  if (split.empty()) split = std::filesystem::path(image_dir).parent_path().filename().string();
  std::vector<EvalItem> items;
  index = 0;
  for (const auto& qu : field<nlohmann::json>(q, "questions", questions_path, 0)) {
    const size_t i = index++;
    EvalItem item;
    item.id = id_text(field<nlohmann::json>(qu, "question_id", questions_path, i));
    item.question = field<std::string>(qu, "question", questions_path, i);
    auto image_id = field<nlohmann::json>(qu, "image_id", questions_path, i);
    std::string name;
    if (coco_images) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "_%012lld.jpg",
                    static_cast<long long>(image_id.get<int64_t>()));
      name = "COCO_" + split + buf;
    } else {
      name = id_text(image_id) + ".jpg";
    }
    item.image = (std::filesystem::path(image_dir) / name).string();
    auto it = answers.find(item.id);
    if (it == answers.end() || it->second.empty())
      throw Error(ErrorKind::kData, "question " + item.id + " has no annotated answers",
                  at_file(annotations_path));
    item.answers = it->second;
    items.push_back(std::move(item));
  }
  return items;
}

}  // namespace flam::eval
