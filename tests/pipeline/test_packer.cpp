// Packers: LAION and MMC4 rows as OpenFlamingo's data.py builds them, labels as its
// train_utils.py masks them, image order by <image> token position (non-monotonic matching),
// and every per-item failure as a reason.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/base64.h"
#include "pipeline/packer.h"
#include "pipeline_fixture.h"

namespace flam::pipeline {
namespace {

class PackerTest : public ::testing::Test {
 protected:
  PackerTest() : tok_(testing::tiny_tokenizer_path()), options_(testing::small_options()) {
    jpegs_ = testing::photo_jpegs(4, 24, 20);
  }
  Image expected_image(const std::string& jpeg) const {
    return clip_preprocess(decode_image(jpeg).image, options_.image.size);
  }
  // A document with the given sentences, one image per row of `sim` (jpegs_[i]).
  Sample mmc4_doc(const std::vector<std::string>& sentences,
                  const std::vector<std::vector<double>>& sim, bool as_members = false) const {
    Sample s;
    s.key = "doc";
    nlohmann::json doc;
    doc["text_list"] = sentences;
    doc["similarity_matrix"] = sim;
    nlohmann::json infos = nlohmann::json::array();
    for (size_t i = 0; i < sim.size(); ++i) {
      nlohmann::json info;
      info["image_name"] = "im" + std::to_string(i) + ".jpg";
      int best = 0;
      for (size_t c = 1; c < sim[i].size(); ++c)
        if (sim[i][c] > sim[i][best]) best = static_cast<int>(c);
      info["matched_text_index"] = best;
      info["matched_sim"] = sim[i][best];
      if (as_members) {
        s.members["im" + std::to_string(i) + ".jpg"] = jpegs_[i];
      } else {
        info["image_base64"] = base64_encode(jpegs_[i]);
      }
      infos.push_back(info);
    }
    doc["image_info"] = infos;
    s.members["json"] = doc.dump();
    return s;
  }
  Tokenizer tok_;
  DataOptions options_;
  std::vector<std::string> jpegs_;
};

TEST_F(PackerTest, LaionRowAsOpenFlamingo) {
  Sample s;
  s.key = "k";
  s.members["jpg"] = jpegs_[0];
  s.members["txt"] = "  a red cat 7\n";
  Rng rng(1);
  const PackResult r = pack_laion(s, tok_, options_, rng);
  ASSERT_TRUE(r.ok()) << r.reason << " " << r.message;
  std::vector<int64_t> expected = {tok_.bos_id(), tok_.image_id()};
  const auto words = tok_.encode("a red cat 7");
  expected.insert(expected.end(), words.begin(), words.end());
  expected.push_back(tok_.endofchunk_id());
  expected.push_back(tok_.eos_id());
  const size_t real = expected.size();
  ASSERT_LE(real, 16u);
  expected.resize(16, tok_.pad_id());
  EXPECT_EQ(r.sequence.input_ids, expected);
  for (size_t i = 0; i < 16; ++i) {
    EXPECT_EQ(r.sequence.attention_mask[i], i < real ? 1 : 0);
    const bool masked = i == 0 || i == 1 || i >= real;
    EXPECT_EQ(r.sequence.labels[i], masked ? -100 : expected[i]) << i;
  }
  ASSERT_EQ(r.sequence.images.size(), 1u);
  EXPECT_EQ(r.sequence.images[0].pixels, expected_image(jpegs_[0]).pixels);
}

TEST_F(PackerTest, LaionTruncatesToSeqLen) {
  options_.laion.seq_len = 5;
  Sample s;
  s.members["png"] = jpegs_[1];  // the format is sniffed, not taken from the extension
  s.members["txt"] = "the green grass near the old house in the city at night";
  Rng rng(1);
  const PackResult r = pack_laion(s, tok_, options_, rng);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.sequence.input_ids.size(), 5u);
  EXPECT_EQ(r.sequence.attention_mask, std::vector<int64_t>(5, 1));
  EXPECT_EQ(std::count(r.sequence.input_ids.begin(), r.sequence.input_ids.end(), tok_.eos_id()), 0);
}

TEST_F(PackerTest, LaionFailuresAreReasons) {
  Rng rng(1);
  Sample no_image;
  no_image.members["txt"] = "a cat";
  EXPECT_EQ(pack_laion(no_image, tok_, options_, rng).reason, "no_image");
  Sample no_caption;
  no_caption.members["jpg"] = jpegs_[0];
  EXPECT_EQ(pack_laion(no_caption, tok_, options_, rng).reason, "no_caption");
  Sample bad_utf8;
  bad_utf8.members["jpg"] = jpegs_[0];
  bad_utf8.members["txt"] = "caf\xc3";
  EXPECT_EQ(pack_laion(bad_utf8, tok_, options_, rng).reason, "invalid_utf8");
  Sample truncated;
  truncated.members["jpg"] = jpegs_[0].substr(0, jpegs_[0].size() / 3);
  truncated.members["txt"] = "a cat";
  EXPECT_EQ(pack_laion(truncated, tok_, options_, rng).reason, "decode_error");
  Sample html;
  html.members["jpg"] = "<html>not found</html>";
  html.members["txt"] = "a cat";
  EXPECT_EQ(pack_laion(html, tok_, options_, rng).reason, "not_an_image");
}

// data.image.fast_downscale. Off (the default): the packer's images are decode_image +
// clip_preprocess's bytes, as before the region decode, flipped by the same coin. On: a JPEG whose
// shorter side is >= 2 x 224 decodes DCT-scaled and stays within 6 levels mean absolute
// difference of the exact image (measured 0.9-3.9); a 256-pixel JPEG (under 2 x 224: no DCT
// scaling) is unchanged.
TEST_F(PackerTest, FastDownscaleOffIsExactAndOnIsClose) {
  EXPECT_FALSE(DataOptions().image.fast_downscale);
  options_.image.size = 224;
  auto packed = [&](const std::string& jpeg, uint64_t seed) {
    Sample s;
    s.members["jpg"] = jpeg;
    s.members["txt"] = "a red cat";
    Rng rng(seed);
    PackResult r = pack_laion(s, tok_, options_, rng);
    EXPECT_TRUE(r.ok()) << r.reason << " " << r.message;
    return r.ok() ? std::move(r.sequence.images.at(0)) : Image{};
  };
  const std::vector<std::string> large = testing::photo_jpegs(6, 600, 460);
  const std::vector<std::string> shard_size = testing::photo_jpegs(6, 341, 256);
  for (size_t i = 0; i < large.size(); ++i) {
    SCOPED_TRACE(i);
    options_.image.fast_downscale = false;
    options_.image.flip = "none";
    EXPECT_EQ(packed(large[i], i).pixels, expected_image(large[i]).pixels);
    EXPECT_EQ(packed(shard_size[i], i).pixels, expected_image(shard_size[i]).pixels);
    options_.image.flip = "image";
    Rng coin(i);
    const Image exact = expected_image(shard_size[i]);
    EXPECT_EQ(packed(shard_size[i], i).pixels,
              coin.uniform() < 0.5 ? flip_horizontal(exact).pixels : exact.pixels);

    options_.image.fast_downscale = true;
    options_.image.flip = "none";
    const Image fast = packed(large[i], i);
    const Image reference = expected_image(large[i]);
    ASSERT_EQ(fast.pixels.size(), reference.pixels.size());
    double sum = 0;
    for (size_t p = 0; p < fast.pixels.size(); ++p)
      sum += std::abs(fast.pixels[p] - reference.pixels[p]);
    const double mean = sum / fast.pixels.size();
    std::cout << "  fast_downscale, 600x460 source " << i << ": mean abs diff " << mean << "\n";
    EXPECT_GT(mean, 0.0);  // DCT-scaled: not the exact bytes
    EXPECT_LT(mean, 6.0);
    EXPECT_EQ(packed(shard_size[i], i).pixels, expected_image(shard_size[i]).pixels);
  }
}

TEST(Mmc4Text, AsPreprocessInterleaved) {
  std::vector<int> order;
  EXPECT_EQ(mmc4_text({"A", "B", "C", "D"}, {1, 3}, &order), "A<image>B C<|endofchunk|><image>D");
  EXPECT_EQ(order, (std::vector<int>{0, 1}));
  // The first sentence carries an image: its <|endofchunk|> is the one removed.
  EXPECT_EQ(mmc4_text({"A", "B"}, {0, 1}, &order), "<image>A<|endofchunk|><image>B");
  // Non-monotonic matching: image 0 -> sentence 2, image 1 -> sentence 0. Tokens come in
  // sentence order, so slot 0 holds image 1.
  EXPECT_EQ(mmc4_text({"A", "B", "C"}, {2, 0}, &order), "<image>A B<|endofchunk|><image>C");
  EXPECT_EQ(order, (std::vector<int>{1, 0}));
  // Two images before one sentence (argmax matching): the one prefixed last comes first.
  EXPECT_EQ(mmc4_text({"A", "B"}, {1, 1}, &order), "A<image><|endofchunk|><image>B");
  EXPECT_EQ(order, (std::vector<int>{1, 0}));
}

TEST_F(PackerTest, Mmc4LabelsAsTrainUtils) {
  const int64_t B = tok_.bos_id(), I = tok_.image_id(), E = tok_.endofchunk_id(), S = tok_.eos_id(),
                P = tok_.pad_id();
  const std::vector<int64_t> ids = {B, 10, I, 11, E, 12, I, 13, E, S, P};
  const std::vector<int64_t> expected = {-100, -100, -100, 11, E, -100, -100, 13, E, -100, -100};
  EXPECT_EQ(mmc4_labels(ids, tok_), expected);
  const std::vector<int64_t> laion = {B, I, 10, 11, E, S, P};
  EXPECT_EQ(laion_labels(laion, tok_), (std::vector<int64_t>{-100, -100, 10, 11, E, S, -100}));
}

TEST_F(PackerTest, Mmc4OrdersImagesByTokenPosition) {
  // Hungarian: image 0 -> sentence 2, image 1 -> sentence 0 (0.9 + 0.9 beats any other).
  for (const bool as_members : {false, true}) {
    const Sample doc = mmc4_doc({"the red cat", "a dog", "blue sky"},
                                {{0.1, 0.1, 0.9}, {0.9, 0.1, 0.1}}, as_members);
    Rng rng(3);
    const PackResult r = pack_mmc4(doc, tok_, options_, rng);
    ASSERT_TRUE(r.ok()) << r.reason << " " << r.message;
    const auto& ids = r.sequence.input_ids;
    EXPECT_TRUE(tok_.decode(ids).starts_with(
        "<s><image>the red cat a dog<|endofchunk|><image>blue sky<|endofchunk|></s><PAD>"))
        << tok_.decode(ids);
    ASSERT_EQ(r.sequence.images.size(), 2u);
    EXPECT_EQ(r.sequence.images[0].pixels, expected_image(jpegs_[1]).pixels) << as_members;
    EXPECT_EQ(r.sequence.images[1].pixels, expected_image(jpegs_[0]).pixels) << as_members;
    EXPECT_EQ(r.sequence.labels, mmc4_labels(ids, tok_));
  }
}

TEST_F(PackerTest, Mmc4ImagesAsMembersNamedByImageMember) {
  // Our shard writer's "members" layout: KEY.0.jpg, named in the JSON by image_member "0.jpg".
  Sample doc = mmc4_doc({"the red cat", "a dog"}, {{0.1, 0.9}, {0.9, 0.1}}, true);
  auto json = nlohmann::json::parse(doc.members["json"].view());
  doc.members.clear();
  for (int i = 0; i < 2; ++i) {
    json["image_info"][i]["image_member"] = std::to_string(i) + ".JPG";
    doc.members[std::to_string(i) + ".jpg"] = jpegs_[i];
  }
  doc.members["json"] = json.dump();
  Rng rng(3);
  const PackResult r = pack_mmc4(doc, tok_, options_, rng);
  ASSERT_TRUE(r.ok()) << r.reason << " " << r.message;
  ASSERT_EQ(r.sequence.images.size(), 2u);
  EXPECT_EQ(r.sequence.images[0].pixels, expected_image(jpegs_[1]).pixels);
  EXPECT_EQ(r.sequence.images[1].pixels, expected_image(jpegs_[0]).pixels);
}

TEST_F(PackerTest, Mmc4HungarianBeatsArgmaxAndArgmaxIsAvailable) {
  // Both images prefer sentence 0; Hungarian sends image 1 to sentence 1.
  const Sample doc = mmc4_doc({"the cat", "a dog"}, {{0.9, 0.3}, {0.8, 0.7}});
  Rng rng(3);
  PackResult r = pack_mmc4(doc, tok_, options_, rng);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_TRUE(tok_.decode(r.sequence.input_ids)
                  .starts_with("<s><image>the cat<|endofchunk|><image>a dog<|endofchunk|></s>"))
      << tok_.decode(r.sequence.input_ids);
  options_.mmc4.matching = "argmax";
  r = pack_mmc4(doc, tok_, options_, rng);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_TRUE(tok_.decode(r.sequence.input_ids)
                  .starts_with("<s><image><|endofchunk|><image>the cat a dog<|endofchunk|></s>"))
      << tok_.decode(r.sequence.input_ids);
}

TEST_F(PackerTest, Mmc4Rejections) {
  Rng rng(5);
  const std::vector<std::string> text = {"the red cat on the grass", "a dog", "blue sky"};
  // Below the similarity threshold.
  EXPECT_EQ(pack_mmc4(mmc4_doc(text, {{0.1, 0.2, 0.1}}), tok_, options_, rng).reason, "no_images");
  // Images of min_image_bytes or less are dropped.
  options_.mmc4.min_image_bytes = 1 << 20;
  EXPECT_EQ(pack_mmc4(mmc4_doc(text, {{0.1, 0.9, 0.1}}), tok_, options_, rng).reason, "no_images");
  options_.mmc4.min_image_bytes = 0;
  // A single image kept with probability single_image_keep_prob.
  options_.mmc4.single_image_keep_prob = 0.0;
  EXPECT_EQ(pack_mmc4(mmc4_doc(text, {{0.1, 0.9, 0.1}}), tok_, options_, rng).reason,
            "single_image");
  options_.mmc4.single_image_keep_prob = 1.0;
  EXPECT_TRUE(pack_mmc4(mmc4_doc(text, {{0.1, 0.9, 0.1}}), tok_, options_, rng).ok());
  // Fewer than min_images.
  options_.mmc4.min_images = 2;
  EXPECT_EQ(pack_mmc4(mmc4_doc(text, {{0.1, 0.9, 0.1}}), tok_, options_, rng).reason,
            "too_few_images");
  options_.mmc4.min_images = 1;
  // The only <image> as the very last token after truncation.
  options_.mmc4.seq_len = static_cast<int>(tok_.encode(text[0]).size()) + 2;
  EXPECT_EQ(pack_mmc4(mmc4_doc(text, {{0.1, 0.9, 0.1}}), tok_, options_, rng).reason,
            "image_at_end");
  // Truncated before the image: no <image> left.
  options_.mmc4.seq_len = 3;
  EXPECT_EQ(pack_mmc4(mmc4_doc(text, {{0.1, 0.9, 0.1}}), tok_, options_, rng).reason,
            "too_few_images");
}

// Issue #16 item 1: a literal "<image>" in a sentence once made pack_mmc4 read past its image
// list (three <image> tokens, two images). Under "text" it is plain text; under "special" it is a
// media token as in OpenFlamingo, with no slot of its own.
TEST_F(PackerTest, Mmc4LiteralImageInSentence) {
  const Sample doc = mmc4_doc({"a <image> b.", "c.", "d."}, {{0, 0.3, 0}, {0, 0, 0.3}});
  for (const std::string mode : {"text", "special"}) {
    options_.special_strings = mode;
    Rng rng(3);
    const PackResult r = pack_mmc4(doc, tok_, options_, rng);
    ASSERT_TRUE(r.ok()) << mode << ": " << r.reason << " " << r.message;
    const auto& ids = r.sequence.input_ids;
    const auto n_tokens = std::count(ids.begin(), ids.end(), tok_.image_id());
    EXPECT_EQ(n_tokens, mode == "text" ? 2 : 3) << mode;
    ASSERT_EQ(r.sequence.images.size(), 2u) << mode;
    EXPECT_EQ(r.sequence.image_sources, (std::vector<int>{0, 1})) << mode;
    EXPECT_EQ(r.sequence.images[0].pixels, expected_image(jpegs_[0]).pixels) << mode;
    EXPECT_EQ(r.sequence.images[1].pixels, expected_image(jpegs_[1]).pixels) << mode;
  }
  options_.special_strings = "text";
  Rng rng(3);
  const PackResult r = pack_mmc4(doc, tok_, options_, rng);
  // "a <image> b.<image>c.<|endofchunk|><image>d.<|endofchunk|></s>", the first <image> text.
  std::vector<int64_t> expected = {tok_.bos_id()};
  auto add = [&](std::vector<int64_t> ids) {
    expected.insert(expected.end(), ids.begin(), ids.end());
  };
  add(tok_.encode_plain("a <image> b."));
  add({tok_.image_id()});
  add(tok_.encode_plain("c."));
  add({tok_.endofchunk_id(), tok_.image_id()});
  add(tok_.encode_plain("d."));
  add({tok_.endofchunk_id(), tok_.eos_id()});
  expected.resize(options_.mmc4.seq_len, tok_.pad_id());
  EXPECT_EQ(r.sequence.input_ids, expected);
}

// Issue #16 item 2: special strings in user text are plain text by default; only the packer
// inserts special tokens. data.special_strings: special reproduces OpenFlamingo.
TEST_F(PackerTest, SpecialStringsInCaptionsArePlainText) {
  Sample s;
  s.key = "k";
  s.members["jpg"] = jpegs_[0];
  const std::string caption = "a <image>cat<|endofchunk|> <PAD> <s></s>";
  s.members["txt"] = caption;
  options_.laion.seq_len = 64;
  Rng rng(1);
  PackResult r = pack_laion(s, tok_, options_, rng);
  ASSERT_TRUE(r.ok()) << r.reason;
  std::vector<int64_t> expected = {tok_.bos_id(), tok_.image_id()};
  const auto plain = tok_.encode_plain(caption);
  for (const int64_t id : plain) {
    EXPECT_LT(id, tok_.base_vocab_size());
    EXPECT_NE(id, tok_.bos_id());
    EXPECT_NE(id, tok_.eos_id());
  }
  expected.insert(expected.end(), plain.begin(), plain.end());
  expected.push_back(tok_.endofchunk_id());
  expected.push_back(tok_.eos_id());
  const size_t real = expected.size();
  expected.resize(64, tok_.pad_id());
  EXPECT_EQ(r.sequence.input_ids, expected);
  const auto& ids = r.sequence.input_ids;
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok_.image_id()), 1);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok_.endofchunk_id()), 1);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok_.eos_id()), 1);
  EXPECT_EQ(std::count(ids.begin(), ids.begin() + real, tok_.pad_id()), 0);

  options_.special_strings = "special";
  r = pack_laion(s, tok_, options_, rng);
  ASSERT_TRUE(r.ok()) << r.reason;
  expected = tok_.encode("<image>" + caption + "<|endofchunk|></s>", /*add_bos=*/true);
  expected.resize(64, tok_.pad_id());
  EXPECT_EQ(r.sequence.input_ids, expected);
  EXPECT_EQ(std::count(r.sequence.input_ids.begin(), r.sequence.input_ids.end(), tok_.image_id()),
            2);
}

// Without literal special strings the piecewise MMC4 tokens are the tokens of the text
// OpenFlamingo builds (mmc4_text, itself checked against its Python below).
TEST_F(PackerTest, Mmc4TokensEqualTokensOfOpenFlamingoText) {
  std::mt19937 gen(7);
  const std::vector<std::string> words = {"a", "cat", " ", "", "dog ", " sky", "x  y", "  "};
  for (int c = 0; c < 300; ++c) {
    const int n = 1 + gen() % 6;
    std::vector<std::string> sentences;
    for (int i = 0; i < n; ++i) {
      std::string s;
      for (int k = gen() % 4; k >= 0; --k) s += words[gen() % words.size()];
      sentences.push_back(s);
    }
    std::vector<int> ixs;
    for (int k = gen() % (n + 2); k > 0; --k) ixs.push_back(gen() % n);
    std::vector<int> order, image_of_token;
    auto expected = tok_.encode(mmc4_text(sentences, ixs, &order) + "<|endofchunk|></s>");
    EXPECT_EQ(mmc4_tokens(sentences, ixs, tok_, &image_of_token), expected) << c;
    ASSERT_EQ(image_of_token.size(), expected.size());
    std::vector<int> images;
    for (const int i : image_of_token)
      if (i >= 0) images.push_back(i);
    EXPECT_EQ(images, order) << c;
  }
}

TEST_F(PackerTest, Mmc4BadDocuments) {
  Rng rng(5);
  Sample s;
  EXPECT_EQ(pack_mmc4(s, tok_, options_, rng).reason, "no_json");
  s.members["json"] = "{\"text_list\": [";
  EXPECT_EQ(pack_mmc4(s, tok_, options_, rng).reason, "bad_json");
  s.members["json"] = "{\"text_list\": [\"caf\xc3\"]}";
  EXPECT_EQ(pack_mmc4(s, tok_, options_, rng).reason, "invalid_utf8");
  s.members["json"] = "{\"text_list\": [\"a\"], \"image_info\": 3}";
  EXPECT_EQ(pack_mmc4(s, tok_, options_, rng).reason, "bad_json");
  Sample short_row = mmc4_doc({"a", "b"}, {{0.9, 0.1}});
  auto doc = nlohmann::json::parse(short_row.members["json"].view());
  doc["similarity_matrix"] = {{0.9}};
  short_row.members["json"] = doc.dump();
  EXPECT_EQ(pack_mmc4(short_row, tok_, options_, rng).reason, "bad_json");
  Sample corrupt = mmc4_doc({"a cat", "b"}, {{0.9, 0.1}});
  doc = nlohmann::json::parse(corrupt.members["json"].view());
  doc["image_info"][0]["image_base64"] = base64_encode(jpegs_[0].substr(0, 200));
  corrupt.members["json"] = doc.dump();
  EXPECT_EQ(pack_mmc4(corrupt, tok_, options_, rng).reason, "decode_error");
}

// OpenFlamingo's own Python (string steps of preprocess_interleaved, label loop of
// train_utils on torch tensors) as the oracle, on random cases.
TEST_F(PackerTest, Mmc4TextAndLabelsMatchOpenFlamingoPython) {
  std::mt19937 gen(99);
  const std::vector<std::string> pieces = {"a", "cat", " ", "", "dog ", " sky", "<image>", "x y"};
  nlohmann::json cases;
  std::vector<std::pair<std::vector<std::string>, std::vector<int>>> text_cases;
  for (int c = 0; c < 200; ++c) {
    const int n = 1 + gen() % 6;
    std::vector<std::string> sentences;
    for (int i = 0; i < n; ++i) {
      std::string s;
      for (int k = gen() % 3; k >= 0; --k) s += pieces[gen() % pieces.size()];
      sentences.push_back(s);
    }
    std::vector<int> ixs;
    for (int k = gen() % (n + 1); k > 0; --k) ixs.push_back(gen() % n);
    text_cases.emplace_back(sentences, ixs);
    cases["texts"].push_back({{"sentences", sentences}, {"ixs", ixs}});
  }
  const int64_t I = tok_.image_id(), E = tok_.endofchunk_id(), P = tok_.pad_id();
  const std::vector<int64_t> alphabet = {5, 6, 7, I, E, tok_.eos_id()};
  std::vector<std::vector<int64_t>> rows;
  for (int r = 0; r < 100; ++r) {
    std::vector<int64_t> row = {tok_.bos_id()};
    const int real = 1 + gen() % 19;
    for (int t = 1; t < 20; ++t) row.push_back(t < real ? alphabet[gen() % alphabet.size()] : P);
    rows.push_back(row);
  }
  cases["labels"] = {{"ids", rows}, {"pad", P}, {"media", I}, {"eoc", E}};
  const std::string path = testing::make_temp_dir("oracle") + "/cases.json";
  std::ofstream(path) << cases.dump();
  bool ok = false;
  const std::string out = testing::run_python_oracle("of_oracle.py", path, &ok);
  ASSERT_TRUE(ok) << out;
  const nlohmann::json expected = nlohmann::json::parse(out);
  for (size_t c = 0; c < text_cases.size(); ++c) {
    EXPECT_EQ(mmc4_text(text_cases[c].first, text_cases[c].second, nullptr),
              expected["texts"][c].get<std::string>())
        << cases["texts"][c].dump();
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    EXPECT_EQ(mmc4_labels(rows[r], tok_), expected["labels"][r].get<std::vector<int64_t>>())
        << nlohmann::json(rows[r]).dump();
  }
}

}  // namespace
}  // namespace flam::pipeline
