// EvalOptions: the `eval:` section (flam eval, and the trainer's in-training evaluation).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config_map.h"

namespace flam::eval {

struct EvalOptions {
  std::string task = "coco";  // coco | flickr30k | vqav2 | ok_vqa | vizwiz | textvqa
  std::vector<int> shots = {0, 4, 8, 16, 32};
  int trials = 1;
  int64_t seed = 42;
  int num_samples = 0;        // queries evaluated; 0 = the whole test split
  int query_set_size = 2048;  // training items the demos are chosen from
  // random: drawn per query with the seed | rices: the most similar items of the query set by
  // image feature (train/eval/rices.h), the same for every trial.
  std::string demo_selection = "random";
  std::string rices_cache_dir;  // where RICES features are cached; empty: not cached
  int batch_size = 8;
  int num_beams = 3;
  double length_penalty = 0.0;
  int max_new_tokens = 0;  // 0: 20 for captions, 5 for VQA (OpenFlamingo's)
  std::string vqa_gt_normalization = "openflamingo";  // openflamingo | official
  // Captioning: Karpathy split file and the folder of images (filepath/filename under it).
  std::string karpathy_json;
  std::string image_dir;
  // VQA: questions/annotations of the demo (train) and query (test) splits and their images.
  std::string train_questions, train_annotations, train_image_dir;
  std::string test_questions, test_annotations, test_image_dir;
};

inline void describe(ConfigMap& m, EvalOptions& o) {
  m.field("task", o.task);
  std::vector<double> shots(o.shots.begin(), o.shots.end());
  m.field("shots", shots);
  if (m.reading()) {
    o.shots.clear();
    for (double s : shots) {
      if (s < 0 || s != static_cast<int>(s)) m.fail("shots", "shots are counts >= 0");
      o.shots.push_back(static_cast<int>(s));
    }
  }
  m.field("trials", o.trials, Bounds::at_least(1));
  m.field("seed", o.seed);
  m.field("num_samples", o.num_samples, Bounds::at_least(0));
  m.field("query_set_size", o.query_set_size, Bounds::at_least(1));
  m.choice("demo_selection", o.demo_selection, {"random", "rices"});
  m.field("rices_cache_dir", o.rices_cache_dir);
  m.field("batch_size", o.batch_size, Bounds::at_least(1));
  m.field("num_beams", o.num_beams, Bounds::at_least(1));
  m.field("length_penalty", o.length_penalty);
  m.field("max_new_tokens", o.max_new_tokens, Bounds::at_least(0));
  m.field("vqa_gt_normalization", o.vqa_gt_normalization);
  m.field("karpathy_json", o.karpathy_json);
  m.field("image_dir", o.image_dir);
  m.field("train_questions", o.train_questions);
  m.field("train_annotations", o.train_annotations);
  m.field("train_image_dir", o.train_image_dir);
  m.field("test_questions", o.test_questions);
  m.field("test_annotations", o.test_annotations);
  m.field("test_image_dir", o.test_image_dir);
  if (m.reading() && o.vqa_gt_normalization != "openflamingo" &&
      o.vqa_gt_normalization != "official")
    m.fail("vqa_gt_normalization", "must be openflamingo or official");
}

}  // namespace flam::eval
