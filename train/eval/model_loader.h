// What `flam eval` and `flam generate` evaluate: a run's model with a checkpoint's trained
// weights, and images read from files as the model sees them.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "train/model/options.h"

namespace flam::model {
class Flamingo;
}

namespace flam::eval {

// The model rebuilt as the trainer builds it (weights::build_pretrained with `seed`: random
// init, then the configured pretrained files), then the trained weights of `checkpoint` loaded:
// a step directory, a run directory (its newest checkpoint, consolidated from every rank's
// slices and verified) or an exported .safetensors, locally or in a bucket (s3://: a step or
// the checkpoints prefix is downloaded into a temporary folder by each calling rank and removed
// after loading, train::LocalCheckpoint; a .safetensors goes through the S3 cache). Moved to
// `device` ("cpu" | "cuda"), eval mode. Throws flam::Error (kIo, kData) naming the checkpoint.
model::Flamingo load_eval_model(const model::ModelOptions& options, int64_t seed,
                                const std::string& checkpoint, const std::string& device);

// An image file (JPEG, PNG, WebP) -> [3, size, size] fp32, CLIP-preprocessed (shorter side to
// `size`, bicubic, center crop) and CLIP mean/std normalised. flam::Error naming the file.
at::Tensor load_image(const std::string& path, int size);

}  // namespace flam::eval
