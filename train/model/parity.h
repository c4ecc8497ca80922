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
//   flamingo:      the whole model (train/model/flamingo.h) with the shapes of `model`; weights
//                  an OpenFlamingo Flamingo state dict saved by torch.save (.pt, every tensor, as
//                  flam::weights::load_openflamingo_checkpoint reads it); inputs images
//                  [B, T_img, F, 3, H, W] float (CLIP-normalised), input_ids, attention_mask and
//                  labels [B, T] int64. Runs forward, the loss and one backward; writes logits
//                  [B, T, V + 3], loss [] and "grad.NAME" for every trained parameter (our names:
//                  the <|endofchunk|> and <image> rows of the input embedding are
//                  "grad.lang_encoder.special_token_embeddings" [2, D]).
// Shapes come from the weights; heads / head width / flags from ParityOptions. Everything runs
// in fp32 on the CPU. Errors (unknown module, missing or mis-shaped tensors) throw flam::Error.
#pragma once

#include <string>

#include "train/model/options.h"

namespace flam::model {

struct ParityOptions {
  std::string module;   // perceiver | xattn | vision | decoder_layer | flamingo
  std::string weights;  // .safetensors
  std::string inputs;   // .safetensors
  std::string out;      // .safetensors, one tensor "out"
  int heads = 0;        // 0: derived (dim_head 64 for perceiver/xattn; required otherwise)
  int dim_head = 0;     // 0: derived from heads
  bool only_attend_immediate_media = true;
  bool tokens_after_ln_post = false;
  double norm_eps = 1e-6;
  double rope_theta = 10000.0;
  ModelOptions model;  // flamingo only: the network's shapes and flags
};

void run_parity(const ParityOptions& options);

}  // namespace flam::model
