// Text generation with a Flamingo (train/model/flamingo.h): greedy and beam search with the
// semantics of Hugging Face's generate() (transformers 4.57 _sample / _beam_search), which
// OpenFlamingo's Flamingo.generate calls, over the model's incremental decoding caches: CLIP and
// the Perceiver run once per query (not once per beam), cross-attention keys/values over the
// latents once per prompt, and the decoder's self-attention reads a KV cache.
//
// Beam search as HF: per step the top 2 * num_beams continuations of all beams by accumulated
// log-probability (fp32 log_softmax); those ending in a stop token among the first num_beams
// become finished hypotheses scored sum(log p) / (generated length ^ length_penalty), the best
// num_beams unfinished ones continue; at max_new_tokens every top continuation finishes; a query
// is done when num_beams hypotheses are finished and the best running beam cannot beat the worst
// (early_stopping = False). Output: the best finished hypothesis.
//
// Thread safety: uses the model; one thread at a time (see FlamingoImpl).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace flam::model {
class FlamingoImpl;
}

namespace flam::eval {

struct GenerateOptions {
  int max_new_tokens = 20;
  int num_beams = 3;                 // 1: greedy
  double length_penalty = 0.0;       // OpenFlamingo's evaluation uses 0 (the plain sum of log p)
  std::vector<int64_t> stop_tokens;  // a row ends on one of these; it is part of its output
  // Never generated (HF's suppress_tokens: -inf after log_softmax). OpenFlamingo's evaluation
  // suppresses nothing.
  std::vector<int64_t> suppress_tokens;
};

// images [B, T_img, F, 3, H, W] (CLIP-normalised; undefined or T_img = 0: no images);
// input_ids [B, T] int64, padded on the LEFT; attention_mask [B, T] (1 = token) or undefined.
// Returns the generated tokens of each row: at most max_new_tokens, ending at the first stop
// token (included). Runs under NoGradGuard on the model's device and dtype.
std::vector<std::vector<int64_t>> generate(model::FlamingoImpl& model, const at::Tensor& images,
                                           const at::Tensor& input_ids,
                                           const at::Tensor& attention_mask,
                                           const GenerateOptions& options);

}  // namespace flam::eval
