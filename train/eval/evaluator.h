// run_eval: few-shot evaluation of a Flamingo as OpenFlamingo's evaluate.py measures it (COCO /
// Flickr30k CIDEr, VQAv2-style accuracy), on every rank of `comm` together.
//
// Demos come from a query set of query_set_size training items drawn with the seed: random per
// query (prompts.h) or by RICES (rices.h; eval.demo_selection), whose image features are
// computed here on every rank together (and cached under eval.rices_cache_dir).
//
// Queries (the test split, or num_samples of it drawn with the seed) are cut into batches of
// batch_size in query order; batch k runs on rank k % size, so every batch has the same
// composition (and the same numbers) whatever the rank count, and no query is run twice (no
// padding by repetition, unlike DistributedSampler). Predictions are gathered exactly once onto
// every rank, which scores them; every rank returns the same report.
//
// Collective: every rank of comm must call run_eval with the same options. Model code is
// single-device: the caller owns device placement and the UnitRunner (ZeRO-3) installed on the
// model, which generation calls through like forward(). Runs under NoGradGuard.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "train/eval/options.h"

namespace flam {
class Comm;
}
namespace flam::pipeline {
class Tokenizer;
}
namespace flam::model {
class FlamingoImpl;
}

namespace flam::eval {

struct ShotResult {
  int shots = 0;
  std::vector<double> scores;       // per trial: CIDEr x 100 or VQA accuracy x 100
  double mean = 0.0, stddev = 0.0;  // over trials (population std, numpy's default)
  std::vector<std::map<std::string, std::string>> predictions;  // per trial: id -> prediction
  // Per trial: query id -> the ids of its demos in prompt order (RICES: most similar last).
  std::vector<std::map<std::string, std::vector<std::string>>> demos;
};

struct EvalReport {
  std::string task;
  std::string metric;  // "CIDEr" | "VQA accuracy"
  int queries = 0;
  std::vector<ShotResult> results;  // in options.shots order
};

EvalReport run_eval(model::FlamingoImpl& model, const pipeline::Tokenizer& tokenizer,
                    const EvalOptions& options, Comm& comm);

// The text of generated ids with the special tokens dropped (<|endofchunk|>, <image>, <PAD>,
// BOS, EOS), as OpenFlamingo's batch_decode(skip_special_tokens=True).
std::string decode_generation(const pipeline::Tokenizer& tokenizer,
                              const std::vector<int64_t>& ids);

// The report as JSON text ({"task", "metric", "queries", "results": [{"shots", "scores", "mean",
// "std", "predictions", "demos"}]}), keys sorted, so equal reports are equal bytes.
std::string report_json(const EvalReport& report);
// A table like OpenFlamingo's model card: one row per shot count, mean and std over trials.
std::string report_table(const EvalReport& report);

}  // namespace flam::eval
