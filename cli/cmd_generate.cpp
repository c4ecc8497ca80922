// flam generate --config F --checkpoint DIR --image a.jpg [--image b.jpg ...]
//               --prompt "<image>Output:" [--max-new-tokens N] [--beams N] [--set k=v ...]:
// prints the generation for one prompt whose i-th <image> stands for the i-th --image, with
// OpenFlamingo's evaluation settings (beam search, stop at <|endofchunk|>).
#include <torch/torch.h>

#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "core/error.h"
#include "core/exit_codes.h"
#include "pipeline/tokenizer.h"
#include "train/eval/evaluator.h"
#include "train/eval/generate.h"
#include "train/eval/model_loader.h"
#include "train/model/flamingo.h"

namespace flam::cli {

int cmd_generate(const Argv& argv) {
  Args args(argv, {"config", "checkpoint", "image", "prompt", "max-new-tokens", "beams", "set"},
            {});
  const Config config = load_config(args.require("config"), args.all("set"));
  const std::string prompt = args.require("prompt");
  const auto paths = args.all("image");
  pipeline::Tokenizer tokenizer(config.data.tokenizer);
  auto ids = tokenizer.encode(prompt, /*add_bos=*/true);
  int64_t markers = 0;
  for (int64_t id : ids) markers += id == tokenizer.image_id();
  if (markers != static_cast<int64_t>(paths.size()))
    throw Error(ErrorKind::kUsage, "the prompt has " + std::to_string(markers) +
                                       " <image> markers but " + std::to_string(paths.size()) +
                                       " --image files were given");
  auto model = eval::load_eval_model(config.model, config.run.seed, args.require("checkpoint"),
                                     config.train.device);
  const auto param = model->parameters().front();
  torch::Tensor images;
  if (!paths.empty()) {
    std::vector<torch::Tensor> list;
    for (const auto& p : paths) list.push_back(eval::load_image(p, config.model.vision.image_size));
    images = torch::stack(list).unsqueeze(1).unsqueeze(0).to(param.device(), param.scalar_type());
  }
  eval::GenerateOptions g;
  g.num_beams = std::stoi(args.get_or("beams", "3"));
  g.max_new_tokens = std::stoi(args.get_or("max-new-tokens", "20"));
  g.stop_tokens = {tokenizer.endofchunk_id()};
  auto input = torch::tensor(ids, torch::kLong).unsqueeze(0).to(param.device());
  auto out = eval::generate(*model, images, input, torch::ones_like(input), g);
  std::printf("%s\n", eval::decode_generation(tokenizer, out[0]).c_str());
  return kExitOk;
}

}  // namespace flam::cli
