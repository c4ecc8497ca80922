// Our packers against OpenFlamingo's own preprocess_laion_text / preprocess_interleaved (data.py)
// and the label code of its train_one_epoch (train_utils.py), run by of_packer_oracle.py on the
// same generated documents with a Hugging Face LlamaTokenizer over the same SentencePiece model.
// The documents cover ties, non-monotonic matchings, truncation at 256 tokens, more than 6 images,
// images under the 10 KB threshold and under the similarity threshold, and literal special strings
// in the text. Every mismatch must be a declared difference (docs/fidelity.md); the exact-match
// counts are printed.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/base64.h"
#include "pipeline/packer.h"
#include "pipeline_fixture.h"

namespace flam::pipeline {
namespace {

nlohmann::json packed(const PackResult& r) {
  if (!r.ok()) return {{"reason", r.reason}};
  return {{"reason", ""},
          {"input_ids", r.sequence.input_ids},
          {"attention_mask", r.sequence.attention_mask},
          {"labels", r.sequence.labels},
          {"image_sources", r.sequence.image_sources}};
}

TEST(PackerOracle, MatchesOpenFlamingoOrDeclaredDifference) {
  Tokenizer tok(testing::tiny_tokenizer_path());
  DataOptions options = testing::small_options();
  options.mmc4.seq_len = 256;
  options.mmc4.max_images = 6;
  options.mmc4.min_image_bytes = 10999;  // OpenFlamingo's len(bytes) // 1000 <= 10
  options.mmc4.matching = "argmax";      // open-flamingo 2.0.1's preprocess_interleaved
  options.mmc4.sim_threshold = 0.24;
  options.mmc4.single_image_keep_prob = 1.0;  // the oracle's random.random() never rejects
  options.laion.seq_len = 32;

  std::mt19937 gen(215);
  const std::vector<std::string> large = testing::photo_jpegs(12, 256, 224);
  const std::vector<std::string> small = testing::photo_jpegs(4, 24, 20);
  int n_large = 0;
  for (const auto& j : large) n_large += j.size() > 10999;
  ASSERT_GE(n_large, 10) << "the large JPEGs must pass the 10 KB filter";
  const std::vector<std::string> words = {"the",  "red",   "cat",   "sat",  "on",
                                          "a",    "green", "mat",   "blue", "sky",
                                          "over", "old",   "house", "7",    "dog,"};
  const std::vector<std::string> literals = {"<image>", "<|endofchunk|>", "<PAD>", "<s>", "</s>"};
  auto sentence = [&](int max_words, bool with_literal) {
    std::string s;
    const int n = 1 + static_cast<int>(gen() % max_words);
    for (int w = 0; w < n; ++w) {
      if (w > 0) s += gen() % 5 == 0 ? "  " : " ";
      if (with_literal && gen() % 4 == 0) s += literals[gen() % literals.size()];
      s += words[gen() % words.size()];
    }
    if (gen() % 3 == 0) s += ".";
    if (gen() % 6 == 0) s = " " + s;
    return s;
  };

  nlohmann::json cases;
  cases["tokenizer"] = testing::tiny_tokenizer_path();
  cases["mmc4"] = nlohmann::json::array();
  cases["laion"] = nlohmann::json::array();
  for (int d = 0; d < 240; ++d) {
    const bool with_literal = d % 4 == 3;
    const int n_sent = 1 + static_cast<int>(gen() % 9);
    const bool long_doc = d % 5 == 0;  // truncated at 256 tokens
    std::vector<std::string> sentences;
    for (int s = 0; s < n_sent; ++s) sentences.push_back(sentence(long_doc ? 60 : 8, with_literal));
    const int n_img = static_cast<int>(gen() % (d % 7 == 0 ? 10 : 5));  // > 6 images sometimes
    nlohmann::json infos = nlohmann::json::array();
    nlohmann::json matrix = nlohmann::json::array();
    for (int i = 0; i < n_img; ++i) {
      const bool tiny = gen() % 6 == 0;  // under the 10 KB threshold
      const std::string& jpeg = tiny ? small[gen() % small.size()] : large[gen() % large.size()];
      infos.push_back(
          {{"image_name", std::to_string(i) + ".jpg"}, {"image_base64", base64_encode(jpeg)}});
      std::vector<double> row(n_sent);
      for (double& v : row) v = static_cast<double>(gen() % 40) / 100.0;  // 0.00..0.39: ties
      if (gen() % 3 == 0) row[gen() % n_sent] = row[gen() % n_sent];      // more ties
      matrix.push_back(row);
    }
    nlohmann::json doc = {
        {"text_list", sentences}, {"image_info", infos}, {"similarity_matrix", matrix}};
    Sample sample;
    sample.key = "doc" + std::to_string(d);
    sample.members["json"] = doc.dump();
    nlohmann::json c = {{"doc", doc}, {"literal", with_literal}};
    for (const std::string mode : {"special", "text"}) {
      options.special_strings = mode;
      Rng rng(1);
      c["ours_" + mode] = packed(pack_mmc4(sample, tok, options, rng));
    }
    cases["mmc4"].push_back(c);

    const bool caption_literal = d % 3 == 2;
    const std::string caption = (d % 4 == 0 ? "  " : "") +
                                sentence(d % 6 == 0 ? 40 : 10, caption_literal) +
                                (d % 5 == 0 ? "\n" : "");
    Sample laion;
    laion.key = "cap" + std::to_string(d);
    laion.members["jpg"] = small[d % small.size()];
    laion.members["txt"] = caption;
    nlohmann::json l = {{"caption", caption}, {"literal", caption_literal}};
    for (const std::string mode : {"special", "text"}) {
      options.special_strings = mode;
      Rng rng(1);
      l["ours_" + mode] = packed(pack_laion(laion, tok, options, rng));
    }
    cases["laion"].push_back(l);
  }
  const std::string path = testing::make_temp_dir("packer_oracle") + "/cases.json";
  std::ofstream(path) << cases.dump();
  bool ok = false;
  const std::string out = testing::run_python_oracle("of_packer_oracle.py", path, &ok);
  ASSERT_TRUE(ok) << out;
  std::printf("%s", out.c_str());
  const size_t at = out.rfind("REPORT\n");
  ASSERT_NE(at, std::string::npos) << out;
  const nlohmann::json report = nlohmann::json::parse(out.substr(at + 7));
  EXPECT_EQ(report["undeclared"].get<int>(), 0) << report.dump(1);
  EXPECT_GE(report["mmc4"]["documents"].get<int>(), 200);
  EXPECT_GE(report["mmc4"]["accepted_by_openflamingo"].get<int>(), 100);
  EXPECT_GE(report["laion"]["documents"].get<int>(), 200);
  EXPECT_GT(report["cover"]["truncated"].get<int>(), 0);
  EXPECT_GT(report["cover"]["over_6_images"].get<int>(), 0);
  EXPECT_GT(report["cover"]["non_monotonic"].get<int>(), 0);
  EXPECT_GT(report["cover"]["ties"].get<int>(), 0);
  EXPECT_GT(report["cover"]["under_10kb"].get<int>(), 0);
  EXPECT_GT(report["cover"]["literal_special"].get<int>(), 0);
}

}  // namespace
}  // namespace flam::pipeline
