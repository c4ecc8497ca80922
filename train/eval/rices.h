// RICES demo selection (Retrieval-based In-Context Example Selection), as OpenFlamingo's
// eval/rices.py: every item gets a unit-norm image feature; a query's demos are the k items of
// the demo pool whose features have the largest cosine similarity with the query's, the most
// similar LAST in the prompt.
//
// Features come from the evaluated model's own vision encoder: the mean of its patch tokens
// (the tokens the Perceiver reads), L2-normalised. OpenFlamingo uses open_clip's encode_image
// (the projected CLS token) of a separate CLIP; our encoder does not keep the projection
// (flamingo.h), so the same model's pooled tokens stand in (docs/fidelity.md).
//
// Feature cache (when cache_dir is set): {cache_dir}/rices_{key:016x}.feat, key = FNV-1a 64 of
// the vision encoder's parameter bytes, the image size and the image paths in order, so a
// change of weights or items misses the cache. Layout (little-endian):
//   "FLAMRICE" | uint32 version = 1 | uint32 0 | uint64 key | int64 N | int64 D |
//   N x (uint32 byte length | the image path) | N*D float32 (row i: the i-th path's feature)
// written by rank 0 to a temp file, fsynced and renamed (core/atomic_file.h).
//
// Thread safety: uses the model; one thread at a time.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstddef>
#include <string>
#include <vector>

namespace flam {
class Comm;
}
namespace flam::model {
class FlamingoImpl;
}

namespace flam::eval {

// Collective over `comm`: [N, D] fp32 CPU unit-norm features of the image files `images`
// (D = model.vision.width), the same on every rank and for any rank count (images go through
// the encoder in fixed chunks of 16 by index, chunk c on rank c % size, then all-gathered).
// Read from the cache when it holds this key. Throws flam::Error (kIo, kData) naming the image
// or the cache file.
at::Tensor image_features(model::FlamingoImpl& model, const std::vector<std::string>& images,
                          const std::string& cache_dir, Comm& comm);

// The cache file features of `images` would be read from / written to.
std::string feature_cache_path(model::FlamingoImpl& model, const std::vector<std::string>& images,
                               const std::string& cache_dir);

// For each row of `queries` [Q, D]: the indices of the k rows of `pool` [N, D] with the largest
// dot product (cosine similarity of unit vectors), most similar LAST; among equal similarities
// the lower index is more similar. REQUIRES: k <= N.
std::vector<std::vector<size_t>> rices_select(const at::Tensor& queries, const at::Tensor& pool,
                                              size_t k);

}  // namespace flam::eval
