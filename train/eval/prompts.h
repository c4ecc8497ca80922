// Few-shot prompts as OpenFlamingo's evaluation builds them (open_flamingo/eval/evaluate.py and
// its eval model), the post-processing of generated text, and demo selection.
//   caption demo  "<image>Output:{first caption, stripped}<|endofchunk|>"   query "<image>Output:"
//   VQA demo      "<image>Question:{question} Short answer:{first answer}<|endofchunk|>"
//   VQA query     "<image>Question:{question} Short answer:"
// Each demo is followed by "\n"; at 0 shots two demos are still shown, as text only (their
// <image> removed, no images), following Flamingo.
// Demo selection (random, seeded): a query set of query_set_size training items drawn once with
// the seed, then per query `shots` distinct demos drawn with a generator seeded by (seed, trial,
// the query's index in the evaluation set). Nothing depends on the rank or the number of ranks
// (OpenFlamingo seeds with seed + rank, so its numbers change with the GPU count).
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace flam::eval {

enum class Task { kCaptioning, kVqa };

// One evaluation item: an image and either its reference captions or a question and its human
// answers (`answers` holds the captions for captioning).
struct EvalItem {
  std::string id;        // COCO image id or VQA question id, as text
  std::string image;     // path of the image file
  std::string question;  // VQA only
  std::vector<std::string> answers;
};

inline constexpr std::string_view kImageMarker = "<image>";
inline constexpr std::string_view kEndOfChunkMarker = "<|endofchunk|>";

// A demo with its answer, or a query without (answer == nullptr).
std::string item_prompt(Task task, const EvalItem& item, bool with_answer);
// The whole text of one query: its demos (each + "\n"; with `text_only_demos` their <image>
// markers removed) then the query prompt.
std::string build_prompt(Task task, const std::vector<const EvalItem*>& demos,
                         const EvalItem& query, bool text_only_demos);

// OpenFlamingo's post-processing of decoded generations (special tokens already dropped):
// captions: the text before the first "Output", with every '"' removed;
// VQA: the text before the first "Question", "Answer" or "Short", then before the first ", ".
std::string postprocess_caption(std::string_view generated);
std::string postprocess_vqa(std::string_view generated);

// The demos a query with `shots` shots is shown: 2 text-only demos at 0 shots (Flamingo's rule).
int effective_shots(int shots);

// k distinct indices of [0, n) drawn with a generator seeded by `seed` (partial Fisher-Yates on
// splitmix64; the same on every platform). REQUIRES: k <= n.
std::vector<size_t> sample_indices(size_t n, size_t k, uint64_t seed);
// A seed from (seed, a, b), for one trial's and one query's draw.
uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b);

}  // namespace flam::eval
