// VQA accuracy as the VQA evaluation code computes it (OpenFlamingo's eval/vqa_metric.py, from
// the official VQA API): answers are normalised (newlines and tabs to spaces, trimmed; the
// official punctuation rule; lower case; number words to digits; articles dropped; contractions
// restored), and a prediction scores min(1, matches / 3) against each leave-one-out subset of the
// human answers, averaged over the subsets.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace flam::eval {

// eval.vqa_gt_normalization:
//   kOpenFlamingo: every ground-truth answer is fully normalised, like the prediction
//                  (open_flamingo/eval/vqa_metric.py);
//   kOfficial:     the official VQA API: ground-truth answers get only the punctuation rule, and
//                  only when the answers of a question are not all identical (raw strings).
enum class VqaGtNormalization { kOpenFlamingo, kOfficial };

// "openflamingo" | "official"; flam::Error (kConfig) naming `key` otherwise.
VqaGtNormalization parse_vqa_gt_normalization(const std::string& value, const std::string& key);

// processPunctuation of the VQA API: each of ; / [ ] " { } ( ) = + \ _ - > < @ ` , ? ! is
// removed when it touches a space in the input (or the input has a digit,digit), else replaced
// by a space; then at most 32 periods not followed by a digit are removed (the API passes
// re.UNICODE as re.sub's count).
std::string vqa_process_punctuation(std::string_view text);
// processDigitArticle: lower case, split on whitespace, number words -> digits, articles
// dropped, contractions restored, joined with single spaces.
std::string vqa_process_digit_article(std::string_view text);
// Both, after newlines/tabs -> spaces and trimming: what the prediction always gets.
std::string vqa_normalize(std::string_view text);

// One question's accuracy in [0, 1]: prediction (raw model answer after OpenFlamingo's
// post-processing) against the human answers (VQAv2 has ten). REQUIRES: answers not empty.
double vqa_accuracy(std::string_view prediction, const std::vector<std::string>& answers,
                    VqaGtNormalization mode);

}  // namespace flam::eval
