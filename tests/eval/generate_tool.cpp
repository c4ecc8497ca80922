// generate_tool: our generation on a model and prompts written by generate_oracle.py.
// usage: generate_tool CASE.json
// CASE.json: {"model": {vision, lang, every_n_layers}, "weights": path (.safetensors, our
// parameter names), "inputs": path (.safetensors: images_K, input_ids_K, attention_mask_K),
// "batches": N, "max_new_tokens", "num_beams": [..], "stop_tokens", "suppress_tokens"}
// "dtype": "float64" (default) | "float32". Prints {"<num_beams>": [[tokens of batch 0 row 0],
// ...], "seconds_<num_beams>": wall time of the generate calls} (rows of all batches in order).
#include <torch/torch.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "train/eval/generate.h"
#include "train/model/flamingo.h"
#include "train/weights/model_weights.h"
#include "train/weights/safetensors.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: generate_tool CASE.json\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  auto c = nlohmann::json::parse(in);
  flam::model::ModelOptions o;
  const auto& m = c["model"];
  o.vision.image_size = m["image_size"];
  o.vision.patch_size = m["patch_size"];
  o.vision.width = m["vision_width"];
  o.vision.layers = m["vision_layers"];
  o.vision.heads = m["vision_heads"];
  o.vision.mlp_dim = m["vision_mlp"];
  o.vision.tokens_after_ln_post = true;  // open_clip today
  o.lang.vocab_size = m["vocab"];
  o.lang.dim = m["dim"];
  o.lang.layers = m["layers"];
  o.lang.heads = m["heads"];
  o.lang.ffn_dim = m["ffn"];
  o.lang.max_seq_len = 256;
  o.xattn.every_n_layers = m["every_n_layers"];
  flam::model::Flamingo model(o);
  flam::weights::TensorSource weights(c["weights"].get<std::string>());
  std::map<std::string, at::Tensor> tensors;
  for (const auto& name : weights.names()) tensors[name] = weights.load(name);
  flam::weights::load_into(*model, tensors, weights.path(), /*require_all=*/true);
  const auto dtype = c.value("dtype", "float64") == "float32" ? torch::kFloat32 : torch::kFloat64;
  model->to(dtype);
  model->eval();

  flam::weights::TensorSource inputs(c["inputs"].get<std::string>());
  nlohmann::json out;
  for (int beams : c["num_beams"].get<std::vector<int>>()) {
    flam::eval::GenerateOptions g;
    g.max_new_tokens = c["max_new_tokens"];
    g.num_beams = beams;
    g.length_penalty = 0.0;
    g.stop_tokens = c["stop_tokens"].get<std::vector<int64_t>>();
    g.suppress_tokens = c["suppress_tokens"].get<std::vector<int64_t>>();
    auto& rows = out[std::to_string(beams)] = nlohmann::json::array();
    auto t0 = std::chrono::steady_clock::now();
    for (int k = 0; k < c["batches"].get<int>(); ++k) {
      auto id = std::to_string(k);
      auto res = flam::eval::generate(*model, inputs.load("images_" + id).to(dtype),
                                      inputs.load("input_ids_" + id),
                                      inputs.load("attention_mask_" + id), g);
      for (const auto& r : res) rows.push_back(r);
    }
    out["seconds_" + std::to_string(beams)] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  std::cout << out.dump() << "\n";
  return 0;
}
