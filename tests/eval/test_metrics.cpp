// Metrics on hand-checked cases; the oracle comparison is tests/eval/metrics_oracle.py.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "train/eval/metrics/cider.h"
#include "train/eval/metrics/ptb_tokenizer.h"
#include "train/eval/metrics/vqa_accuracy.h"

namespace flam::eval {
namespace {

TEST(PtbTokenizer, LowerCasesSplitsCliticsAndDropsPunctuation) {
  EXPECT_EQ(ptb_tokenize_joined("A man's dog isn't running."), "a man 's dog is n't running");
  EXPECT_EQ(ptb_tokenize_joined("\"Look!\" she said (twice)."), "look she said -lrb- twice -rrb-");
  EXPECT_EQ(ptb_tokenize_joined("Mr. Smith paid $5,000.00 in the U.S."),
            "mr. smith paid $ 5,000.00 in the u.s.");
  EXPECT_EQ(ptb_tokenize_joined("I cannot; you can't"), "i can not you ca n't");
  EXPECT_EQ(ptb_tokenize_joined(""), "");
}

TEST(Cider, IdenticalCandidatesScoreHigherThanUnrelatedOnes) {
  std::vector<std::vector<std::string>> refs = {{"a dog on a bench", "a dog sits on a bench"},
                                                {"a red bus in the street", "a bus on a road"}};
  CiderResult same = cider_d({"a dog on a bench", "a red bus in the street"}, refs);
  CiderResult other = cider_d({"a plate of food", "two cats"}, refs);
  EXPECT_GT(same.score, 1.0);
  EXPECT_EQ(other.score, 0.0);
  ASSERT_EQ(same.per_item.size(), 2u);
  EXPECT_DOUBLE_EQ(same.score, (same.per_item[0] + same.per_item[1]) / 2);
}

TEST(Cider, EmptyCandidateScoresZeroAndBadShapesThrow) {
  CiderResult r = cider_d({"", "a cat"}, {{"a cat"}, {"a cat"}});
  EXPECT_EQ(r.per_item[0], 0.0);
  EXPECT_THROW(cider_d({"a"}, {}), Error);
  EXPECT_THROW(cider_d({"a"}, {{}}), Error);
}

TEST(VqaAccuracy, NormalisesAndAveragesLeaveOneOut) {
  std::vector<std::string> answers(10, "2");
  answers[9] = "yes";
  EXPECT_DOUBLE_EQ(vqa_accuracy("Two.", answers, VqaGtNormalization::kOpenFlamingo), 1.0);
  // Three matching answers: the subsets leaving one of them out have two matches (2/3).
  std::vector<std::string> three = {"dog", "the dog", "Dog", "cat", "cat",
                                    "cat", "cat",     "cat", "cat", "cat"};
  EXPECT_DOUBLE_EQ(vqa_accuracy("a dog", three, VqaGtNormalization::kOpenFlamingo),
                   (7 * 1.0 + 3 * 2.0 / 3) / 10);
  // The official rule leaves "the dog" and "Dog" as they are: only "dog" matches.
  EXPECT_DOUBLE_EQ(vqa_accuracy("a dog", three, VqaGtNormalization::kOfficial), (9 * 1.0 / 3) / 10);
  EXPECT_EQ(vqa_normalize(" Isnt it the ONE?\n"), "isn't it 1");
  EXPECT_THROW(vqa_accuracy("x", {}, VqaGtNormalization::kOfficial), Error);
  EXPECT_THROW(parse_vqa_gt_normalization("strict", "eval.vqa_gt_normalization"), Error);
}

}  // namespace
}  // namespace flam::eval
