// DataOptions: the `data:` section: which shards feed training and how they become batches
// (pipeline/loader.h). Defaults follow OpenFlamingo's train.py for the 9B run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config_map.h"
#include "pipeline/byte_source.h"

namespace flam::pipeline {

struct ImageOptions {
  int size = 224;                 // CLIP input: shorter side resized, then center crop
  std::string flip = "image";     // none | image (own coin per image) | batch
  int64_t max_pixels = 89478485;  // PIL's decompression-bomb guard
  // JPEGs with a shorter side >= 2 x size decode at a DCT scale-down (DecodeOptions::
  // target_short_side): faster, not PIL-exact.
  bool fast_downscale = false;
};

struct LaionOptions {
  std::vector<std::string> shards;  // paths, URLs, brace ranges, or a file listing them
  int batch_size = 32;
  int seq_len = 32;
  double loss_multiplier = 1.0;
};

struct Mmc4Options {
  std::vector<std::string> shards;
  int batch_size = 16;
  int seq_len = 256;
  int max_images = 6;
  int min_images = 1;
  double sim_threshold = 0.24;
  std::string matching = "hungarian";  // hungarian | argmax (the first release's)
  // Images of this many bytes or less are dropped: OpenFlamingo's `len(bytes) // 1000 <= 10`.
  int64_t min_image_bytes = 10999;
  double single_image_keep_prob = 0.5;
  double loss_multiplier = 1.0;
};

struct LoaderOptions {
  int threads = 4;            // decode threads per rank
  int prefetch_batches = 4;   // bounded queue of ready batches
  int shuffle_buffer = 1000;  // samples
  // Remote shards read ahead of the one being read (each on its own thread), so that a slow one
  // costs at most its data.stream deadline; each holds at most read_ahead_bytes of samples.
  int read_ahead_shards = 2;
  int64_t read_ahead_bytes = 64LL << 20;
};

struct DataOptions {
  std::string tokenizer;  // SentencePiece model (LLaMA's tokenizer.model)
  // How "<image>", "<|endofchunk|>", "<PAD>", "<s>", "</s>" inside captions and sentences are
  // tokenized: "text" as ordinary text (only the packer inserts special tokens), "special" as the
  // special tokens, as OpenFlamingo does (a caption can then add media tokens: its #215).
  std::string special_strings = "text";
  ImageOptions image;
  LaionOptions laion;
  Mmc4Options mmc4;
  LoaderOptions loader;
  SourceOptions stream;  // data.stream: timeouts, deadline and minimum rate of http shards
};

inline void describe(ConfigMap& m, ImageOptions& o) {
  m.field("size", o.size, Bounds::between(1, 4096));
  m.choice("flip", o.flip, {"none", "image", "batch"});
  m.field("max_pixels", o.max_pixels, Bounds::at_least(1));
  m.field("fast_downscale", o.fast_downscale);
}

// Upper bounds on size-like keys: far above any real run, low enough that a typo fails here
// instead of as a terabyte allocation.
inline void describe(ConfigMap& m, LaionOptions& o) {
  m.field("shards", o.shards);
  m.field("batch_size", o.batch_size, Bounds::between(1, 65536));
  m.field("seq_len", o.seq_len, Bounds::between(2, 1 << 20));
  m.field("loss_multiplier", o.loss_multiplier, Bounds::non_negative());
}

inline void describe(ConfigMap& m, Mmc4Options& o) {
  m.field("shards", o.shards);
  m.field("batch_size", o.batch_size, Bounds::between(1, 65536));
  m.field("seq_len", o.seq_len, Bounds::between(2, 1 << 20));
  m.field("max_images", o.max_images, Bounds::between(1, 256));
  m.field("min_images", o.min_images, Bounds::between(0, 256));
  m.field("sim_threshold", o.sim_threshold, Bounds::between(-1.0, 1.0));
  m.choice("matching", o.matching, {"hungarian", "argmax"});
  m.field("min_image_bytes", o.min_image_bytes, Bounds::non_negative());
  m.field("single_image_keep_prob", o.single_image_keep_prob, Bounds::between(0.0, 1.0));
  m.field("loss_multiplier", o.loss_multiplier, Bounds::non_negative());
}

inline void describe(ConfigMap& m, LoaderOptions& o) {
  m.field("threads", o.threads, Bounds::between(1, 1024));
  m.field("prefetch_batches", o.prefetch_batches, Bounds::between(1, 1024));
  m.field("shuffle_buffer", o.shuffle_buffer, Bounds::between(1, 10000000));
  m.field("read_ahead_shards", o.read_ahead_shards, Bounds::between(0, 64));
  m.field("read_ahead_bytes", o.read_ahead_bytes, Bounds::between(1 << 16, 1LL << 36));
}

inline void describe(ConfigMap& m, SourceOptions& o) {
  m.field("connect_timeout_seconds", o.connect_timeout_seconds, Bounds::positive());
  m.field("low_speed_seconds", o.low_speed_seconds, Bounds::positive());
  m.field("deadline_seconds", o.deadline_seconds, Bounds::non_negative());
  m.field("min_average_bytes_per_second", o.min_average_bytes_per_second, Bounds::non_negative());
  m.field("min_average_grace_seconds", o.min_average_grace_seconds, Bounds::non_negative());
}

inline void describe(ConfigMap& m, DataOptions& o) {
  m.field("tokenizer", o.tokenizer);
  m.choice("special_strings", o.special_strings, {"text", "special"});
  m.section("image", o.image);
  m.section("laion", o.laion);
  m.section("mmc4", o.mmc4);
  m.section("loader", o.loader);
  m.section("stream", o.stream);
}

}  // namespace flam::pipeline
