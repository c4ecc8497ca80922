// Test data made at test time, shared by the pipeline tests: a tiny SentencePiece model trained
// with the SentencePiece trainer, small JPEG crops of the real photos in tests/data/photos, and
// LAION / MMC4 shards written with TarWriter. Everything lives under a fresh temp directory.
#pragma once

#include <string>
#include <vector>

#include "pipeline/options.h"

namespace flam::pipeline::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it when the test process
// exits normally (FLAM_KEEP_TMP set: kept, to look at).
std::string make_temp_dir(const std::string& name);

// Trains (once per process) a 320-piece BPE SentencePiece model on generated English-like text;
// returns the model path.
const std::string& tiny_tokenizer_path();

// n distinct JPEGs (quality 90) of width x height, crops of the six photos at varied offsets.
std::vector<std::string> photo_jpegs(int n, int width, int height);

// The caption of LAION sample `index` of shard `shard` ("a photo number 17 of the red cat ...").
std::string laion_caption(int shard, int index);
// The key of sample `index` of shard `shard`: "%05d%04d" as our shard writer names them.
std::string sample_key(int shard, int index);

// Writes `count` LAION samples (KEY.jpg, KEY.txt, KEY.json) to dir/laion-%05d.tar; returns the
// path.
std::string write_laion_shard(const std::string& dir, int shard, int count);

// Writes `count` MMC4 documents to dir/mmc4-%05d.tar: each has 4 sentences and 2 images (as
// image_base64, or as tar members KEY.img0.jpg when `images_as_members`) matched to sentences
// 1 and 3 with similarity 0.3. Returns the path.
std::string write_mmc4_shard(const std::string& dir, int shard, int count,
                             bool images_as_members = false);

// Runs `FLAM_PYTHON tests/pipeline/SCRIPT INPUT_PATH` (the venv's Python, the script from
// FLAM_SOURCE_DIR) and returns its stdout; *ok is whether it started and exited 0.
std::string run_python_oracle(const std::string& script, const std::string& input_path, bool* ok);

// Small, fast options for tests: image size 16, LAION seq_len 16 / batch 4, MMC4 seq_len 48 /
// batch 2 / max_images 3 / min_image_bytes 0 / single_image_keep_prob 1, 2 threads, prefetch 2,
// shuffle buffer 8, flip none, the tiny tokenizer.
DataOptions small_options();

}  // namespace flam::pipeline::testing
