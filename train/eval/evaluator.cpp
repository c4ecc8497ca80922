#include "train/eval/evaluator.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/check.h"
#include "core/comm.h"
#include "core/error.h"
#include "pipeline/tokenizer.h"
#include "train/eval/datasets.h"
#include "train/eval/generate.h"
#include "train/eval/metrics/cider.h"
#include "train/eval/metrics/ptb_tokenizer.h"
#include "train/eval/metrics/vqa_accuracy.h"
#include "train/eval/model_loader.h"
#include "train/eval/prompts.h"
#include "train/eval/rices.h"
#include "train/model/flamingo.h"

namespace flam::eval {
namespace {

bool is_captioning(const std::string& task) { return task == "coco" || task == "flickr30k"; }

struct Splits {
  std::vector<EvalItem> demos, queries;
};

Splits load_splits(const EvalOptions& o) {
  Splits s;
  if (is_captioning(o.task)) {
    if (o.karpathy_json.empty())
      throw Error(ErrorKind::kConfig, "captioning needs eval.karpathy_json",
                  at_key("eval.karpathy_json"));
    s.demos = load_karpathy_captions(o.karpathy_json, o.image_dir, "train");
    s.queries = load_karpathy_captions(o.karpathy_json, o.image_dir, "test");
  } else if (o.task == "vqav2" || o.task == "ok_vqa" || o.task == "vizwiz" || o.task == "textvqa") {
    const bool coco = o.task == "vqav2" || o.task == "ok_vqa";
    s.demos = load_vqa(o.train_questions, o.train_annotations, o.train_image_dir, coco);
    s.queries = load_vqa(o.test_questions, o.test_annotations, o.test_image_dir, coco);
  } else {
    throw Error(
        ErrorKind::kConfig,
        "unknown task '" + o.task + "' (coco | flickr30k | vqav2 | ok_vqa | vizwiz | textvqa)",
        at_key("eval.task"));
  }
  if (s.demos.empty() || s.queries.empty())
    throw Error(ErrorKind::kData, "task '" + o.task + "' has an empty demo or query split");
  if (o.num_samples > 0 && static_cast<size_t>(o.num_samples) < s.queries.size()) {
    std::vector<EvalItem> picked;
    for (size_t i : sample_indices(s.queries.size(), o.num_samples, mix_seed(o.seed, 1, 0)))
      picked.push_back(s.queries[i]);
    s.queries = std::move(picked);
  }
  return s;
}

// Every rank's string, in rank order, on every rank (lengths, then the bytes padded to the
// longest, as int64 words).
std::vector<std::string> all_gather_strings(Comm& comm, const std::string& mine) {
  const int n = comm.size();
  int64_t len = static_cast<int64_t>(mine.size());
  std::vector<int64_t> lens(n);
  comm.all_gather(&len, lens.data(), 1, DType::kInt64);
  int64_t longest = 0;
  for (int64_t l : lens) longest = std::max(longest, l);
  const size_t words = static_cast<size_t>((longest + 7) / 8);
  std::vector<int64_t> send(std::max<size_t>(words, 1), 0), recv(send.size() * n);
  std::memcpy(send.data(), mine.data(), mine.size());
  comm.all_gather(send.data(), recv.data(), send.size(), DType::kInt64);
  std::vector<std::string> out;
  for (int r = 0; r < n; ++r)
    out.emplace_back(reinterpret_cast<const char*>(recv.data() + r * send.size()), lens[r]);
  return out;
}

// The demos of every query (indices into s.demos, in prompt order) for one trial at one shot
// count: random draws from the query set, or RICES over `pool`/`queries` features.
std::vector<std::vector<size_t>> choose_demos(const Splits& s, const std::vector<size_t>& query_set,
                                              int shots, int trial, const EvalOptions& o,
                                              const at::Tensor& pool, const at::Tensor& queries) {
  const size_t n_demos = static_cast<size_t>(effective_shots(shots));
  if (n_demos > query_set.size())
    throw Error(ErrorKind::kConfig, "more shots than the query set holds", at_key("eval.shots"));
  std::vector<std::vector<size_t>> out;
  if (o.demo_selection == "rices") {
    for (auto& row : rices_select(queries, pool, n_demos)) {
      for (size_t& d : row) d = query_set[d];
      out.push_back(std::move(row));
    }
    return out;
  }
  for (size_t q = 0; q < s.queries.size(); ++q) {
    out.emplace_back();
    for (size_t d : sample_indices(query_set.size(), n_demos, mix_seed(o.seed, trial + 2, q)))
      out.back().push_back(query_set[d]);
  }
  return out;
}

// Predictions (query index -> text) at one shot count with the given demos, for this rank's
// batches.
std::map<size_t, std::string> predict(model::FlamingoImpl& model,
                                      const pipeline::Tokenizer& tokenizer, const Splits& s,
                                      const std::vector<std::vector<size_t>>& chosen, Task task,
                                      int shots, const EvalOptions& o, const Comm& comm) {
  const auto param = model.parameters().front();
  const int size = model.options().vision.image_size;
  GenerateOptions g;
  g.num_beams = o.num_beams;
  g.length_penalty = o.length_penalty;
  g.max_new_tokens = o.max_new_tokens > 0 ? o.max_new_tokens : task == Task::kVqa ? 5 : 20;
  g.stop_tokens = {tokenizer.endofchunk_id()};

  std::map<size_t, std::string> out;
  const size_t B = static_cast<size_t>(o.batch_size);
  for (size_t start = 0, batch = 0; start < s.queries.size(); start += B, ++batch) {
    if (static_cast<int>(batch % comm.size()) != comm.rank()) continue;
    const size_t end = std::min(start + B, s.queries.size());
    std::vector<std::vector<int64_t>> ids;
    std::vector<torch::Tensor> images;
    for (size_t q = start; q < end; ++q) {
      std::vector<const EvalItem*> demos;
      for (size_t d : chosen[q]) demos.push_back(&s.demos[d]);
      std::vector<torch::Tensor> row;
      if (shots > 0)
        for (const EvalItem* d : demos) row.push_back(load_image(d->image, size));
      row.push_back(load_image(s.queries[q].image, size));
      images.push_back(torch::stack(row).unsqueeze(1));  // [T_img, 1, 3, S, S]
      ids.push_back(tokenizer.encode(build_prompt(task, demos, s.queries[q], shots == 0), true));
    }
    size_t T = 0;
    for (const auto& r : ids) T = std::max(T, r.size());
    auto input_ids = torch::full({static_cast<int64_t>(ids.size()), static_cast<int64_t>(T)},
                                 tokenizer.pad_id(), torch::kLong);
    auto mask = torch::zeros_like(input_ids);
    for (size_t r = 0; r < ids.size(); ++r) {  // left padding, as OpenFlamingo's evaluation
      const int64_t n = static_cast<int64_t>(ids[r].size()), off = static_cast<int64_t>(T) - n;
      input_ids[r].narrow(0, off, n).copy_(torch::tensor(ids[r], torch::kLong));
      mask[r].narrow(0, off, n).fill_(1);
    }
    auto pixels = torch::stack(images).to(param.device(), param.scalar_type());
    auto gen = generate(model, pixels, input_ids.to(param.device()), mask.to(param.device()), g);
    for (size_t r = 0; r < gen.size(); ++r) {
      std::string text = decode_generation(tokenizer, gen[r]);
      out[start + r] = task == Task::kVqa ? postprocess_vqa(text) : postprocess_caption(text);
    }
  }
  return out;
}

double score(Task task, const Splits& s, const std::vector<std::string>& predictions,
             VqaGtNormalization mode) {
  if (task == Task::kCaptioning) {
    std::vector<std::string> cands;
    std::vector<std::vector<std::string>> refs;
    for (size_t i = 0; i < predictions.size(); ++i) {
      cands.push_back(ptb_tokenize_joined(predictions[i]));
      refs.emplace_back();
      for (const auto& r : s.queries[i].answers) refs.back().push_back(ptb_tokenize_joined(r));
    }
    return cider_d(cands, refs).score * 100.0;
  }
  double total = 0.0;
  for (size_t i = 0; i < predictions.size(); ++i)
    total += vqa_accuracy(predictions[i], s.queries[i].answers, mode);
  return 100.0 * total / static_cast<double>(predictions.size());
}

}  // namespace

std::string decode_generation(const pipeline::Tokenizer& tok, const std::vector<int64_t>& ids) {
  std::vector<int64_t> text;
  for (int64_t id : ids)
    if (id < tok.base_vocab_size() && id != tok.bos_id() && id != tok.eos_id()) text.push_back(id);
  return tok.decode(text);  // skip_special_tokens, as OpenFlamingo's batch_decode
}

EvalReport run_eval(model::FlamingoImpl& model, const pipeline::Tokenizer& tokenizer,
                    const EvalOptions& options, Comm& comm) {
  torch::NoGradGuard no_grad;
  if (tokenizer.base_vocab_size() != model.options().lang.vocab_size)
    throw Error(ErrorKind::kConfig,
                "the tokenizer has " + std::to_string(tokenizer.base_vocab_size()) +
                    " tokens but model.lang.vocab_size is " +
                    std::to_string(model.options().lang.vocab_size),
                at_key("model.lang.vocab_size"));
  const Task task = is_captioning(options.task) ? Task::kCaptioning : Task::kVqa;
  const auto mode =
      parse_vqa_gt_normalization(options.vqa_gt_normalization, "eval.vqa_gt_normalization");
  Splits s = load_splits(options);
  const auto query_set =
      sample_indices(s.demos.size(), std::min<size_t>(options.query_set_size, s.demos.size()),
                     mix_seed(options.seed, 0, 0));
  at::Tensor pool, queries;  // RICES features [|query set|, D], [|queries|, D]
  if (options.demo_selection == "rices") {
    std::vector<std::string> pool_images, query_images;
    for (size_t i : query_set) pool_images.push_back(s.demos[i].image);
    for (const EvalItem& q : s.queries) query_images.push_back(q.image);
    pool = image_features(model, pool_images, options.rices_cache_dir, comm);
    queries = image_features(model, query_images, options.rices_cache_dir, comm);
  }
  EvalReport report;
  report.task = options.task;
  report.metric = task == Task::kCaptioning ? "CIDEr" : "VQA accuracy";
  report.queries = static_cast<int>(s.queries.size());
  for (int shots : options.shots) {
    ShotResult r;
    r.shots = shots;
    for (int trial = 0; trial < options.trials; ++trial) {
      const auto chosen = choose_demos(s, query_set, shots, trial, options, pool, queries);
      auto mine = predict(model, tokenizer, s, chosen, task, shots, options, comm);
      nlohmann::json j = nlohmann::json::array();
      for (const auto& [i, text] : mine) j.push_back({i, text});
      std::vector<std::string> all(s.queries.size());
      std::vector<bool> seen(s.queries.size(), false);
      for (const auto& part : all_gather_strings(comm, j.dump())) {
        for (const auto& e : nlohmann::json::parse(part)) {
          size_t i = e[0].get<size_t>();
          FLAM_CHECK(i < all.size() && !seen[i]) << "query " << i << " predicted twice";
          all[i] = e[1].get<std::string>();
          seen[i] = true;
        }
      }
      for (bool b : seen) FLAM_CHECK(b) << "a query has no prediction";
      r.scores.push_back(score(task, s, all, mode));
      std::map<std::string, std::string> by_id;
      for (size_t i = 0; i < all.size(); ++i) by_id[s.queries[i].id] = all[i];
      r.predictions.push_back(std::move(by_id));
      std::map<std::string, std::vector<std::string>> demo_ids;
      for (size_t i = 0; i < all.size(); ++i) {
        auto& ids = demo_ids[s.queries[i].id];
        for (size_t d : chosen[i]) ids.push_back(s.demos[d].id);
      }
      r.demos.push_back(std::move(demo_ids));
    }
    for (double v : r.scores) r.mean += v / r.scores.size();
    for (double v : r.scores) r.stddev += (v - r.mean) * (v - r.mean) / r.scores.size();
    r.stddev = std::sqrt(r.stddev);
    report.results.push_back(std::move(r));
  }
  return report;
}

std::string report_json(const EvalReport& report) {
  nlohmann::json j;
  j["task"] = report.task;
  j["metric"] = report.metric;
  j["queries"] = report.queries;
  j["results"] = nlohmann::json::array();
  for (const auto& r : report.results) {
    j["results"].push_back({{"shots", r.shots},
                            {"scores", r.scores},
                            {"mean", r.mean},
                            {"std", r.stddev},
                            {"predictions", r.predictions},
                            {"demos", r.demos}});
  }
  return j.dump(2) + "\n";
}

std::string report_table(const EvalReport& report) {
  std::ostringstream out;
  out << report.task << " (" << report.queries << " queries), " << report.metric << "\n";
  out << "| shots | mean | std | trials |\n| --- | --- | --- | --- |\n";
  char line[128];
  for (const auto& r : report.results) {
    std::snprintf(line, sizeof line, "| %d | %.2f | %.2f | %zu |\n", r.shots, r.mean, r.stddev,
                  r.scores.size());
    out << line;
  }
  return out.str();
}

}  // namespace flam::eval
