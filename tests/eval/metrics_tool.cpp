// metrics_tool: runs our metrics on cases from a JSON file, for tests/eval/metrics_oracle.py.
// Input  {"captions": [raw], "cider": [{"candidate": tokens, "refs": [tokens]}],
//         "vqa": [{"prediction": raw, "answers": [raw]}]}
// Output {"tokens": [joined], "cider": {"score", "per_item"},
//         "vqa_openflamingo": [acc], "vqa_official": [acc], "vqa_normalized": [pred]}
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/eval/metrics/cider.h"
#include "train/eval/metrics/ptb_tokenizer.h"
#include "train/eval/metrics/vqa_accuracy.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: metrics_tool CASES.json\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  nlohmann::json cases = nlohmann::json::parse(in);
  nlohmann::json out;
  out["tokens"] = nlohmann::json::array();
  for (const auto& c : cases["captions"])
    out["tokens"].push_back(flam::eval::ptb_tokenize_joined(c.get<std::string>()));
  std::vector<std::string> cands;
  std::vector<std::vector<std::string>> refs;
  for (const auto& item : cases["cider"]) {
    cands.push_back(item["candidate"]);
    refs.push_back(item["refs"].get<std::vector<std::string>>());
  }
  if (!cands.empty()) {
    auto r = flam::eval::cider_d(cands, refs);
    out["cider"] = {{"score", r.score}, {"per_item", r.per_item}};
  }
  using flam::eval::VqaGtNormalization;
  out["vqa_openflamingo"] = nlohmann::json::array();
  out["vqa_official"] = nlohmann::json::array();
  out["vqa_normalized"] = nlohmann::json::array();
  for (const auto& q : cases["vqa"]) {
    std::string pred = q["prediction"];
    auto answers = q["answers"].get<std::vector<std::string>>();
    out["vqa_openflamingo"].push_back(
        flam::eval::vqa_accuracy(pred, answers, VqaGtNormalization::kOpenFlamingo));
    out["vqa_official"].push_back(
        flam::eval::vqa_accuracy(pred, answers, VqaGtNormalization::kOfficial));
    out["vqa_normalized"].push_back(flam::eval::vqa_normalize(pred));
  }
  std::cout << out.dump() << "\n";
  return 0;
}
