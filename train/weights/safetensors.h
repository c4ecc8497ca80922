// safetensors: Hugging Face's tensor file format (8-byte little-endian header length N, N bytes
// of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then
// the data; offsets are relative to the end of the header), and sharded checkpoints described by
// `model.safetensors.index.json` ({"weight_map": {name: file}}).
//
// The reader maps the file read-only and validates the whole header before any tensor is read:
// header length within the file and at most 100 MB, valid JSON, known dtypes, non-negative
// shapes, offsets inside the data section, byte size = numel x element size, no overlaps. Any
// violation throws flam::Error(kData) naming the file and the tensor, so no read goes out of
// bounds. Missing or unreadable files throw flam::Error(kIo).
//
// Thread safety: a SafetensorsFile / TensorSource is immutable after construction; concurrent
// load() calls are safe. Loaded tensors are CPU copies and outlive the file.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace flam::weights {

struct TensorInfo {
  c10::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets in the data section
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const { return tensors_.count(name) > 0; }
  // REQUIRES: contains(name) (else flam::Error(kData) naming it).
  const TensorInfo& info(const std::string& name) const;
  // A CPU copy of tensor `name`, converted to `dtype` when given.
  at::Tensor load(const std::string& name, std::optional<c10::ScalarType> dtype = {}) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::string path_;
  const uint8_t* map_ = nullptr;
  size_t size_ = 0;
  uint64_t data_start_ = 0;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Named tensors from one `.safetensors` file or from a sharded checkpoint's `*.index.json`
// (shard paths relative to the index's folder; every shard is opened and every name in the
// weight map is checked to exist in its shard). `path` may be an s3:// object: it and the
// shards its index names are fetched into pipeline/s3.h's local cache (S3Client::local_copy) and
// mapped from there; fetch errors name the s3:// URL, path() stays the s3:// name.
class TensorSource {
 public:
  explicit TensorSource(const std::string& path);
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const { return where_.count(name) > 0; }
  const TensorInfo& info(const std::string& name) const;
  at::Tensor load(const std::string& name, std::optional<c10::ScalarType> dtype = {}) const;
  const std::string& path() const { return path_; }

 private:
  const SafetensorsFile& file_of(const std::string& name) const;
  std::string path_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // name -> index in files_
};

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// A tensor to write, known before its bytes (for the streamed writers below).
struct TensorSpec {
  std::string name;
  c10::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t bytes() const;  // numel x element size
};
// Tensor `i` of the specs being written: any device and dtype (converted to the spec's), the
// spec's shape (else flam::Error(kData) naming it). Called once per spec, in order; the writer
// drops each tensor once its bytes are written, so one tensor is in memory at a time.
using TensorFetch = std::function<at::Tensor(size_t i)>;
std::vector<TensorSpec> specs_of(const NamedTensors& tensors,
                                 std::optional<c10::ScalarType> dtype = {});

// Writes `tensors` (any device; names unique) to `path` as safetensors, converted to `dtype`
// when given, via PATH.tmp + fsync + rename. Throws flam::Error(kIo) naming the path.
void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata = {},
                       std::optional<c10::ScalarType> dtype = {});

// As above, streamed: the header from `specs`, then each tensor's bytes as fetch(i) returns it.
void write_safetensors(const std::string& path, const std::vector<TensorSpec>& specs,
                       const TensorFetch& fetch,
                       const std::map<std::string, std::string>& metadata = {});

// Writes a sharded checkpoint into `dir`: model-0000K-of-0000N.safetensors files of at most
// `max_shard_bytes` each (a larger tensor gets a shard of its own) and
// model.safetensors.index.json. Returns the index path.
std::string write_sharded_safetensors(const std::string& dir, const NamedTensors& tensors,
                                      uint64_t max_shard_bytes,
                                      std::optional<c10::ScalarType> dtype = {});
// As above, streamed: shards in the specs' order, each written (fetching its tensors in order)
// as it fills, the index last.
std::string write_sharded_safetensors(const std::string& dir, const std::vector<TensorSpec>& specs,
                                      const TensorFetch& fetch, uint64_t max_shard_bytes);

// "F32" <-> kFloat etc. Unknown names throw flam::Error(kData).
c10::ScalarType dtype_from_name(const std::string& name);
const char* dtype_name(c10::ScalarType dtype);

}  // namespace flam::weights
