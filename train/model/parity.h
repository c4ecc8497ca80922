// Parity harness: runs one Flamingo building block (train/model/layers.h) on tensors read from a
// safetensors file, with weights named as in that block's own reference state dict, and writes
// the output; `flam parity` is its command line. Used to check our numerics against PyTorch
// references (tests/model/reference.py) and, by users, against OpenFlamingo / Hugging Face.
//   perceiver:     weights of helpers.PerceiverResampler; inputs x [b, T, F, v, D]
//   xattn:         weights of helpers.GatedCrossAttentionBlock; inputs x [B, T_txt, D],
//                  media [B, T_img, n, D_v], media_locations [B, T_txt] (bool or integer)
//   vision:        weights of open_clip's VisionTransformer (conv1.weight, ...); inputs pixels
//                  [N, 3, H, W]
//   decoder_layer: weights of HF LlamaDecoderLayer; inputs x [B, T, D], positions [T] or [B, T]
// Shapes come from the weights; heads / head width / flags from ParityOptions. Everything runs
// in fp32 on the CPU. Errors (unknown module, missing or mis-shaped tensors) throw flam::Error.
#pragma once

#include <string>

namespace flam::model {

struct ParityOptions {
  std::string module;   // perceiver | xattn | vision | decoder_layer
  std::string weights;  // .safetensors
  std::string inputs;   // .safetensors
  std::string out;      // .safetensors, one tensor "out"
  int heads = 0;        // 0: derived (dim_head 64 for perceiver/xattn; required otherwise)
  int dim_head = 0;     // 0: derived from heads
  bool only_attend_immediate_media = true;
  bool tokens_after_ln_post = false;
  double norm_eps = 1e-6;
  double rope_theta = 10000.0;
};

void run_parity(const ParityOptions& options);

}  // namespace flam::model
