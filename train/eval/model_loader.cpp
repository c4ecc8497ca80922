#include "train/eval/model_loader.h"

#include <torch/torch.h>

#include <fstream>
#include <iterator>
#include <map>

#include "core/error.h"
#include "pipeline/image.h"
#include "train/checkpoint/export.h"
#include "train/model/flamingo.h"
#include "train/weights/model_weights.h"

namespace flam::eval {

model::Flamingo load_eval_model(const model::ModelOptions& options, int64_t seed,
                                const std::string& checkpoint, const std::string& device) {
  model::Flamingo model = weights::build_pretrained(options, seed);
  std::map<std::string, at::Tensor> tensors;
  std::string source = checkpoint;
  if (checkpoint.size() > 12 && checkpoint.ends_with(".safetensors")) {
    weights::TensorSource file(checkpoint);  // an s3:// one through the S3 cache
    for (const auto& name : file.names()) tensors[name] = file.load(name);
  } else {
    const train::LocalCheckpoint local(checkpoint);
    source = local.name();
    local.named_errors([&] {
      for (auto& [name, t] : train::consolidate_checkpoint(local.dir())) tensors[name] = t;
    });
  }
  weights::load_into(*model, tensors, source, /*require_all=*/false);
  model->to(torch::Device(device));
  model->eval();
  return model;
}

at::Tensor load_image(const std::string& path, int size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::kIo, "cannot open image", at_file(path));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  pipeline::Image img;
  auto r = pipeline::decode_clip_preprocess(bytes, size, {}, &img);
  if (!r.ok()) throw Error(ErrorKind::kData, "image " + r.reason + ": " + r.message, at_file(path));
  auto t = torch::from_blob(img.pixels.data(), {size, size, 3}, torch::kUInt8)
               .permute({2, 0, 1})
               .to(torch::kFloat32) /
           255.0;
  auto mean = torch::tensor({0.48145466f, 0.4578275f, 0.40821073f}).view({3, 1, 1});
  auto std = torch::tensor({0.26862954f, 0.26130258f, 0.27577711f}).view({3, 1, 1});
  return (t - mean) / std;
}

}  // namespace flam::eval
