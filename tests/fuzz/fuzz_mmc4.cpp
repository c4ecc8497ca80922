// MMC4 documents as the loader packs them (pipeline::pack_mmc4): the JSON, its image_info and
// similarity matrix, base64 images, matching and tokenization, with a tokenizer trained at start.
#include <sentencepiece_trainer.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "core/error.h"
#include "pipeline/packer.h"

namespace {

flam::pipeline::Tokenizer* g_tokenizer = nullptr;
flam::pipeline::DataOptions g_options;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string prefix = "/tmp/fuzz-spm-" + std::to_string(::getpid());
  {
    std::ofstream corpus(prefix + ".txt");
    for (int i = 0; i < 300; ++i) {
      corpus << "a photo of the cat number " << i << " sitting on a red mat near a window\n";
    }
  }
  const auto status = sentencepiece::SentencePieceTrainer::Train(
      "--input=" + prefix + ".txt --model_prefix=" + prefix +
      " --vocab_size=200 --model_type=bpe --character_coverage=1.0 --minloglevel=2"
      " --num_threads=1");
  if (!status.ok()) {
    std::fprintf(stderr, "SentencePiece training failed: %s\n", status.ToString().c_str());
    std::abort();
  }
  g_tokenizer = new flam::pipeline::Tokenizer(prefix + ".model");
  g_options.image.size = 16;
  g_options.mmc4.seq_len = 64;
  g_options.mmc4.max_images = 3;
  g_options.mmc4.min_image_bytes = 0;
  g_options.mmc4.single_image_keep_prob = 1.0;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  flam::pipeline::Sample sample;
  sample.key = "000000000";
  sample.members["json"] =
      flam::pipeline::Bytes(std::string_view(reinterpret_cast<const char*>(data), size));
  flam::pipeline::Rng rng(size);
  try {
    flam::pipeline::pack_mmc4(sample, *g_tokenizer, g_options, rng);
  } catch (const flam::Error&) {
  }
  return 0;
}
