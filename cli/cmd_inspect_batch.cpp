// `flam inspect batch --config F [--steps N] [--json] [--png OUT.png] [--set k=v ...]`: makes the
// first N steps' batches of every configured dataset (rank 0 of 1, the run's seed) and prints
// each sequence's text with its special tokens, its image count and a label mask summary
// ('+' a token in the loss, '.' one masked to -100). --json prints one object per batch and adds,
// per row, exactly what trains: input_ids, attention_mask and labels (all T positions, -100 where
// no loss) and, per image slot, the image filling it ({"key": "SHARD#KEY", "image": index in the
// sample: MMC4 image_info index, 0 for LAION}, or null for an empty slot). --png writes a grid of
// the batch images: one row per sequence (LAION rows first, then MMC4), one column per image slot;
// there is no font, so captions are not drawn: the rows follow the printed order.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/exit_codes.h"
#include "pipeline/image.h"
#include "pipeline/loader.h"
#include "pipeline/tokenizer.h"

namespace flam::cli {
namespace {

using pipeline::Batch;

struct RowView {
  std::string text;  // decoded real tokens
  int tokens = 0;    // attention_mask ones
  int loss_tokens = 0;
  int images = 0;
  std::string mask;
};

RowView view_row(const Batch& b, int r, const pipeline::Tokenizer& tok) {
  RowView v;
  const size_t T = b.seq_len;
  std::vector<int64_t> ids;
  for (size_t t = 0; t < T; ++t) {
    const size_t i = r * T + t;
    if (b.attention_mask[i] == 0) continue;
    ids.push_back(b.input_ids[i]);
    ++v.tokens;
    const bool in_loss = b.labels[i] != -100;
    v.loss_tokens += in_loss;
    v.mask += in_loss ? '+' : '.';
  }
  v.text = tok.decode(ids);
  for (int j = 0; j < b.max_images; ++j) v.images += b.image_present[r * b.max_images + j];
  return v;
}

// Appends the batch's rows to a grid of HWC pixels `width` wide (slots x size), 2-pixel gaps.
void add_to_grid(const Batch& b, int columns, std::vector<uint8_t>& grid, int& height) {
  const int s = b.image_size, cell = s + 2, width = columns * cell;
  for (int r = 0; r < b.batch_size; ++r) {
    grid.resize(static_cast<size_t>(height + cell) * width * 3, 255);
    for (int j = 0; j < b.max_images; ++j) {
      const uint8_t* planes = b.images.data() + b.image_offset(r, j);
      for (int y = 0; y < s; ++y)
        for (int x = 0; x < s; ++x)
          for (int c = 0; c < 3; ++c)
            grid[(static_cast<size_t>(height + 1 + y) * width + j * cell + 1 + x) * 3 + c] =
                planes[(static_cast<size_t>(c) * s + y) * s + x];
    }
    height += cell;
  }
}

}  // namespace

int cmd_inspect_batch(const Argv& argv) {
  Args args(argv, {"config", "set", "steps", "png"}, {"json"});
  const Config config = load_config(args.require("config"), args.all("set"));
  const int64_t steps = args.get_int("steps", 1);
  if (steps < 1) throw Error(ErrorKind::kUsage, "--steps must be at least 1");
  const bool json = args.flag("json");
  const pipeline::Tokenizer tok(config.data.tokenizer);

  std::vector<std::unique_ptr<pipeline::Loader>> loaders;
  if (!config.data.laion.shards.empty())
    loaders.push_back(std::make_unique<pipeline::Loader>(
        pipeline::dataset_spec(config.data, pipeline::DatasetKind::kLaion, tok), 0, 1,
        config.run.seed));
  if (!config.data.mmc4.shards.empty())
    loaders.push_back(std::make_unique<pipeline::Loader>(
        pipeline::dataset_spec(config.data, pipeline::DatasetKind::kMmc4, tok), 0, 1,
        config.run.seed));
  if (loaders.empty()) {
    throw Error(ErrorKind::kConfig,
                "no dataset configured: set data.laion.shards or "
                "data.mmc4.shards");
  }

  int columns = 1;
  for (const auto& l : loaders)
    if (l->kind() == pipeline::DatasetKind::kMmc4) columns = config.data.mmc4.max_images;
  std::vector<uint8_t> grid;
  int grid_height = 0;

  for (int64_t step = 0; step < steps; ++step) {
    for (const auto& loader : loaders) {
      const Batch b = loader->next();
      if (step == 0) add_to_grid(b, columns, grid, grid_height);
      if (json) {
        nlohmann::json j;
        j["step"] = step;
        j["dataset"] = pipeline::to_string(b.kind);
        j["batch_size"] = b.batch_size;
        j["seq_len"] = b.seq_len;
        j["max_images"] = b.max_images;
        j["dropped"] = b.dropped;
        j["rows"] = nlohmann::json::array();
        for (int r = 0; r < b.batch_size; ++r) {
          const RowView v = view_row(b, r, tok);
          const auto row = [&](const auto& buffer) {
            const auto first = buffer.begin() + static_cast<ptrdiff_t>(r) * b.seq_len;
            return std::vector<int64_t>(first, first + b.seq_len);
          };
          nlohmann::json slots = nlohmann::json::array();
          for (int s = 0; s < b.max_images; ++s) {
            const size_t slot = static_cast<size_t>(r) * b.max_images + s;
            if (b.image_present[slot] == 0) {
              slots.push_back(nullptr);
            } else {
              slots.push_back({{"key", b.keys[r]}, {"image", b.image_sources[slot]}});
            }
          }
          j["rows"].push_back({{"key", b.keys[r]},
                               {"epoch", b.epochs[r]},
                               {"text", v.text},
                               {"images", v.images},
                               {"tokens", v.tokens},
                               {"loss_tokens", v.loss_tokens},
                               {"mask", v.mask},
                               {"input_ids", row(b.input_ids)},
                               {"attention_mask", row(b.attention_mask)},
                               {"labels", row(b.labels)},
                               {"slots", slots}});
        }
        std::printf("%s\n", j.dump().c_str());
        continue;
      }
      std::printf("step %lld %s: %d sequences x %d tokens, up to %d images each",
                  static_cast<long long>(step), pipeline::to_string(b.kind), b.batch_size,
                  b.seq_len, b.max_images);
      if (!b.dropped.empty()) {
        std::printf("; dropped:");
        for (const auto& [reason, n] : b.dropped)
          std::printf(" %s=%lld", reason.c_str(), static_cast<long long>(n));
      }
      std::printf("\n");
      for (int r = 0; r < b.batch_size; ++r) {
        const RowView v = view_row(b, r, tok);
        std::printf(
            "  [%d] %s (epoch %lld)\n      images %d, tokens %d, in loss %d: %s\n      %s\n", r,
            b.keys[r].c_str(), static_cast<long long>(b.epochs[r]), v.images, v.tokens,
            v.loss_tokens, v.mask.c_str(), v.text.c_str());
      }
    }
  }
  if (const auto png = args.get("png")) {
    pipeline::Image image;
    image.width = columns * (config.data.image.size + 2);
    image.height = grid_height;
    image.pixels = std::move(grid);
    write_file_atomic(*png, pipeline::encode_png(image));
    if (!json) {
      std::printf(
          "wrote %s: step 0's images, one row per sequence in the order above "
          "(captions are not drawn: no font)\n",
          png->c_str());
    }
  }
  return kExitOk;
}

}  // namespace flam::cli
