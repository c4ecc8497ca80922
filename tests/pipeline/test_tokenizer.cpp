// Tokenizer on a SentencePiece model trained at test time: added ids, special tokens matched
// literally and never split, BOS only on request, decode round trip, concurrent encode.
#include <gtest/gtest.h>

#include <thread>

#include "core/error.h"
#include "pipeline/tokenizer.h"
#include "pipeline_fixture.h"

namespace flam::pipeline {
namespace {

TEST(Tokenizer, AddedTokensFollowTheBaseVocabulary) {
  Tokenizer tok(testing::tiny_tokenizer_path());
  EXPECT_EQ(tok.base_vocab_size(), 320);
  EXPECT_EQ(tok.vocab_size(), 323);
  EXPECT_EQ(tok.endofchunk_id(), 320);
  EXPECT_EQ(tok.image_id(), 321);
  EXPECT_EQ(tok.pad_id(), 322);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.piece(321), "<image>");
}

TEST(Tokenizer, SpecialTokensAreNeverSplit) {
  Tokenizer tok(testing::tiny_tokenizer_path());
  const auto ids = tok.encode("<image>a red cat<|endofchunk|><image>dog<|endofchunk|></s>");
  ASSERT_GE(ids.size(), 6u);
  EXPECT_EQ(ids.front(), tok.image_id());
  EXPECT_EQ(ids.back(), tok.eos_id());
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok.image_id()), 2);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok.endofchunk_id()), 2);
  // The text between specials is encoded as if alone.
  const auto cat = tok.encode("a red cat");
  EXPECT_TRUE(std::equal(cat.begin(), cat.end(), ids.begin() + 1));
  // A partial special string is ordinary text.
  const auto partial = tok.encode("<imag");
  EXPECT_EQ(std::count(partial.begin(), partial.end(), tok.image_id()), 0);
}

TEST(Tokenizer, EncodePlainNeverMakesSpecialTokens) {
  Tokenizer tok(testing::tiny_tokenizer_path());
  const std::string text = "x <image>y<|endofchunk|><PAD><s>z</s>";
  const auto ids = tok.encode_plain(text);
  ASSERT_FALSE(ids.empty());
  for (const int64_t id : ids) {
    EXPECT_GE(id, 0);
    EXPECT_LT(id, tok.base_vocab_size());
    EXPECT_NE(id, tok.bos_id());
    EXPECT_NE(id, tok.eos_id());
  }
  // The tiny model has no byte fallback ('<' decodes as unknown); LLaMA's round-trips.
  EXPECT_NE(tok.decode(ids).find("endofchunk"), std::string::npos);
  EXPECT_EQ(tok.encode_plain("a red cat"), tok.encode("a red cat"));
  EXPECT_TRUE(tok.encode_plain("").empty());
}

TEST(Tokenizer, BosOnlyWhenAsked) {
  Tokenizer tok(testing::tiny_tokenizer_path());
  EXPECT_NE(tok.encode("the cat").front(), tok.bos_id());
  EXPECT_EQ(tok.encode("the cat", true).front(), tok.bos_id());
  EXPECT_EQ(tok.encode("", true), std::vector<int64_t>{tok.bos_id()});
}

TEST(Tokenizer, DecodeRoundTrips) {
  Tokenizer tok(testing::tiny_tokenizer_path());
  const std::string text =
      "<image>the green grass<|endofchunk|><image>a blue sky<|endofchunk|></s>";
  EXPECT_EQ(tok.decode(tok.encode(text)), text);
  EXPECT_EQ(tok.decode({tok.bos_id(), tok.pad_id(), 99999}), "<s><PAD><unk:99999>");
}

TEST(Tokenizer, ConcurrentEncodeMatchesSerial) {
  Tokenizer tok(testing::tiny_tokenizer_path());
  std::vector<std::string> texts;
  for (int i = 0; i < 64; ++i) texts.push_back(testing::laion_caption(i, i) + "<|endofchunk|>");
  std::vector<std::vector<int64_t>> serial, parallel(texts.size());
  for (const auto& t : texts) serial.push_back(tok.encode(t));
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      for (size_t i = k; i < texts.size(); i += 4) parallel[i] = tok.encode(texts[i]);
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(serial, parallel);
}

TEST(Tokenizer, MissingModelIsAConfigError) {
  try {
    Tokenizer tok("/nonexistent/tokenizer.model");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_EQ(e.context().key, "data.tokenizer");
  }
}

}  // namespace
}  // namespace flam::pipeline
