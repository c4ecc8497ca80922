#include "train/eval/generate.h"

#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "core/check.h"
#include "train/model/flamingo.h"

namespace flam::eval {
namespace {

// True for every entry of ids [...] that is one of `tokens`.
torch::Tensor is_one_of(const torch::Tensor& ids, const std::vector<int64_t>& tokens) {
  auto hit = torch::zeros_like(ids, torch::kBool);
  for (int64_t t : tokens) hit = hit.logical_or(ids.eq(t));
  return hit;
}

// Scores [R, V] fp32 with the suppressed tokens at -inf.
torch::Tensor suppress(torch::Tensor scores, const std::vector<int64_t>& tokens) {
  for (int64_t t : tokens) scores.select(1, t).fill_(-std::numeric_limits<float>::infinity());
  return scores;
}

// Gathers along dim 1: x [B, K, ...], index [B, K'] -> [B, K', ...] (HF's _gather_beams).
torch::Tensor gather_beams(const torch::Tensor& x, const torch::Tensor& index) {
  auto idx = index;
  while (idx.dim() < x.dim()) idx = idx.unsqueeze(-1);
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape[1] = index.size(1);
  return x.gather(1, idx.expand(shape));
}

std::vector<std::vector<int64_t>> greedy(model::FlamingoImpl& model, model::DecodeState& state,
                                         torch::Tensor logits, const GenerateOptions& o) {
  const int64_t B = logits.size(0);
  std::vector<std::vector<int64_t>> out(B);
  std::vector<int64_t> rows(B);  // the query of each row still decoding (finished rows leave)
  for (int64_t b = 0; b < B; ++b) rows[b] = b;
  for (int step = 0; step < o.max_new_tokens; ++step) {
    auto scores = suppress(logits.to(torch::kCPU, torch::kFloat32), o.suppress_tokens);
    auto next = scores.argmax(-1);  // [rows]
    auto hit = is_one_of(next, o.stop_tokens);
    auto next_a = next.accessor<int64_t, 1>();
    auto hit_a = hit.accessor<bool, 1>();
    std::vector<int64_t> keep, still_open;
    for (size_t r = 0; r < rows.size(); ++r) {
      out[rows[r]].push_back(next_a[r]);
      if (!hit_a[r] && step + 1 < o.max_new_tokens) {
        keep.push_back(static_cast<int64_t>(r));
        still_open.push_back(rows[r]);
      }
    }
    if (keep.empty()) break;
    if (keep.size() < rows.size()) {
      auto index = torch::tensor(keep, torch::kLong);
      model::FlamingoImpl::select_rows(state, index.to(state.attention_mask.device()));
      next = next.index_select(0, index);
      rows = std::move(still_open);
    }
    logits = model.decode_step(state, next.to(state.attention_mask.device()));
  }
  return out;
}

std::vector<std::vector<int64_t>> beam_search(model::FlamingoImpl& model, model::DecodeState& state,
                                              torch::Tensor logits, const GenerateOptions& o) {
  const int64_t B = logits.size(0), nb = o.num_beams, V = logits.size(1);
  const int64_t L = o.max_new_tokens;
  const int64_t keep = std::max<int64_t>(2, 1 + static_cast<int64_t>(o.stop_tokens.size())) * nb;
  const auto i64 = torch::TensorOptions().dtype(torch::kLong);
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  // One row per beam, each query's prompt computed once.
  auto expand = torch::arange(B, i64).repeat_interleave(nb);
  model::FlamingoImpl::select_rows(state, expand.to(state.attention_mask.device()));
  logits = logits.to(torch::kCPU, torch::kFloat32).index_select(0, expand);

  auto running_seq = torch::full({B, nb, L}, model.special().pad, i64);
  auto running_scores = torch::zeros({B, nb}, f32);
  running_scores.narrow(1, 1, nb - 1).fill_(-1e9);
  auto seq = running_seq.clone();
  auto seq_len = torch::zeros({B, nb}, i64);
  auto beam_scores = torch::full({B, nb}, -1e9, f32);
  auto finished = torch::zeros({B, nb}, torch::kBool);
  auto improvable = torch::ones({B, 1}, torch::kBool);
  auto top_nb = torch::arange(keep, i64).lt(nb).view({1, keep});
  auto offset = (torch::arange(B, i64) * nb).view({B, 1});

  for (int64_t cur = 0;; ++cur) {
    auto log_probs = suppress(torch::log_softmax(logits, -1), o.suppress_tokens);
    auto acc = (log_probs.view({B, nb, V}) + running_scores.unsqueeze(-1)).view({B, nb * V});
    auto [topk_scores, topk_index] = acc.topk(keep);  // [B, keep]
    auto src_beam = topk_index.div(V, "floor");
    auto tok = topk_index.remainder(V);
    auto topk_seq = gather_beams(running_seq, src_beam);  // [B, keep, L]
    topk_seq.select(2, cur).copy_(tok);
    auto hits = is_one_of(tok, o.stop_tokens);
    if (cur + 1 >= L) hits.fill_(true);

    // Running beams for the next step: the best num_beams that did not finish.
    auto run_scores = topk_scores + hits.to(torch::kFloat32) * -1e9;
    auto next = std::get<1>(run_scores.topk(nb));
    running_seq = gather_beams(topk_seq, next);
    running_scores = gather_beams(run_scores, next);
    auto running_src = gather_beams(src_beam, next);

    // Finished hypotheses: merge the new ones among the first num_beams continuations.
    auto just = hits.logical_and(top_nb);
    auto norm = topk_scores / std::pow(static_cast<double>(cur + 1), o.length_penalty);
    norm = norm + improvable.logical_not().to(torch::kFloat32) * -1e9;
    norm = norm + just.logical_not().to(torch::kFloat32) * -1e9;
    auto merged_scores = torch::cat({beam_scores, norm}, 1);
    auto merged_seq = torch::cat({seq, topk_seq}, 1);
    auto merged_len = torch::cat({seq_len, torch::full({B, keep}, cur + 1, i64)}, 1);
    auto merged_finished = torch::cat({finished, just}, 1);
    auto best = std::get<1>(merged_scores.topk(nb));
    seq = gather_beams(merged_seq, best);
    beam_scores = gather_beams(merged_scores, best);
    seq_len = gather_beams(merged_len, best);
    finished = gather_beams(merged_finished, best);

    // Early-stop heuristic (early_stopping = False): the best running beam at the current length
    // against the worst finished hypothesis.
    auto best_running =
        running_scores.narrow(1, 0, 1) / std::pow(static_cast<double>(cur + 1), o.length_penalty);
    auto worst = torch::where(finished, std::get<0>(beam_scores.min(1, true)),
                              torch::full_like(beam_scores, -1e9));
    improvable = improvable.logical_and(best_running.gt(worst).any(-1, true));
    if (!improvable.any().item<bool>() || hits.all().item<bool>()) break;

    auto rows = (running_src + offset).view({B * nb});
    model::FlamingoImpl::select_rows(state, rows.to(state.attention_mask.device()));
    auto last = running_seq.select(2, cur).reshape({B * nb});
    logits = model.decode_step(state, last.to(state.attention_mask.device()))
                 .to(torch::kCPU, torch::kFloat32);
  }

  std::vector<std::vector<int64_t>> out(B);
  auto seq_a = seq.accessor<int64_t, 3>();
  auto len_a = seq_len.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < len_a[b][0]; ++t) out[b].push_back(seq_a[b][0][t]);
  return out;
}

}  // namespace

std::vector<std::vector<int64_t>> generate(model::FlamingoImpl& model, const at::Tensor& images,
                                           const at::Tensor& input_ids,
                                           const at::Tensor& attention_mask,
                                           const GenerateOptions& options) {
  FLAM_CHECK(options.num_beams >= 1 && options.max_new_tokens >= 1)
      << "generate: num_beams and max_new_tokens must be >= 1";
  torch::NoGradGuard no_grad;
  model::DecodeState state;
  auto logits = model.start_decoding(images, input_ids, attention_mask,
                                     input_ids.size(1) + options.max_new_tokens, state);
  if (options.num_beams == 1) return greedy(model, state, logits, options);
  return beam_search(model, state, logits, options);
}

}  // namespace flam::eval
