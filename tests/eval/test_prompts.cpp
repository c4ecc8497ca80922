// Prompts, post-processing and demo selection against OpenFlamingo's evaluate.py behaviour.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "train/eval/prompts.h"

namespace flam::eval {
namespace {

TEST(Prompts, CaptionAndVqaPromptsAreOpenFlamingos) {
  EvalItem cap{"1", "a.jpg", "", {" A dog on a bench. ", "second"}};
  EvalItem q{"2", "b.jpg", "", {"x"}};
  EXPECT_EQ(build_prompt(Task::kCaptioning, {&cap, &cap}, q, false),
            "<image>Output:A dog on a bench.<|endofchunk|>\n"
            "<image>Output:A dog on a bench.<|endofchunk|>\n<image>Output:");
  // 0 shots: the demos stay, as text only.
  EXPECT_EQ(build_prompt(Task::kCaptioning, {&cap}, q, true),
            "Output:A dog on a bench.<|endofchunk|>\n<image>Output:");
  EvalItem vqa{"3", "c.jpg", "What color?", {"red", "blue"}};
  EvalItem vq{"4", "d.jpg", "How many?", {"2"}};
  EXPECT_EQ(build_prompt(Task::kVqa, {&vqa}, vq, false),
            "<image>Question:What color? Short answer:red<|endofchunk|>\n"
            "<image>Question:How many? Short answer:");
}

TEST(Prompts, PostProcessingCutsAsOpenFlamingo) {
  EXPECT_EQ(postprocess_caption("a \"red\" bus Output: more"), "a red bus ");
  EXPECT_EQ(postprocess_caption("no cut"), "no cut");
  EXPECT_EQ(postprocess_vqa("yes, it is Question: x"), "yes");
  EXPECT_EQ(postprocess_vqa("two Short answer"), "two ");
  EXPECT_EQ(postprocess_vqa("blue Answer: red, green"), "blue ");
  EXPECT_EQ(postprocess_vqa("a,b"), "a,b");
}

TEST(Demos, ZeroShotsShowTwoAndDrawsAreSeededAndDistinct) {
  EXPECT_EQ(effective_shots(0), 2);
  EXPECT_EQ(effective_shots(4), 4);
  auto a = sample_indices(100, 32, mix_seed(42, 3, 17));
  EXPECT_EQ(a, sample_indices(100, 32, mix_seed(42, 3, 17)));
  EXPECT_NE(a, sample_indices(100, 32, mix_seed(42, 3, 18)));
  EXPECT_NE(a, sample_indices(100, 32, mix_seed(42, 4, 17)));
  EXPECT_EQ(std::set<size_t>(a.begin(), a.end()).size(), 32u);
  for (size_t i : a) EXPECT_LT(i, 100u);
  auto all = sample_indices(5, 5, 9);
  EXPECT_EQ(std::set<size_t>(all.begin(), all.end()).size(), 5u);
}

}  // namespace
}  // namespace flam::eval
