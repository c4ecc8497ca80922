#include "train/weights/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "pipeline/s3.h"

namespace flam::weights {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

[[noreturn]] void data_error(const std::string& path, const std::string& key,
                             const std::string& message, int64_t offset = -1) {
  ErrorContext context;
  context.file = path;
  context.key = key;
  context.offset = offset;
  throw Error(ErrorKind::kData, message, context);
}

[[noreturn]] void io_error(const std::string& path, const std::string& what) {
  ErrorContext context;
  context.file = path;
  throw Error(ErrorKind::kIo, what + ": " + std::strerror(errno), context);
}

// numel * item size, or nullopt on overflow.
std::optional<uint64_t> byte_size(const std::vector<int64_t>& shape, c10::ScalarType dtype) {
  uint64_t n = c10::elementSize(dtype);
  for (int64_t d : shape) {
    if (d != 0 && n > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d)) {
      return std::nullopt;
    }
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

class FileWriter {
 public:
  explicit FileWriter(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) io_error(path_, "cannot create");
  }
  ~FileWriter() {
    if (fd_ >= 0) ::close(fd_);
  }
  void write(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) io_error(path_, "write failed");
      p += w;
      n -= static_cast<size_t>(w);
    }
  }
  void sync_and_close() {
    if (::fsync(fd_) != 0) io_error(path_, "fsync failed");
    if (::close(fd_) != 0) io_error(path_, "close failed");
    fd_ = -1;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace

c10::ScalarType dtype_from_name(const std::string& name) {
  static const std::map<std::string, c10::ScalarType> kTypes = {
      {"F64", torch::kFloat64},   {"F32", torch::kFloat32}, {"F16", torch::kFloat16},
      {"BF16", torch::kBFloat16}, {"I64", torch::kInt64},   {"I32", torch::kInt32},
      {"I16", torch::kInt16},     {"I8", torch::kInt8},     {"U8", torch::kUInt8},
      {"BOOL", torch::kBool}};
  auto it = kTypes.find(name);
  if (it == kTypes.end()) data_error("", "", "unknown safetensors dtype '" + name + "'");
  return it->second;
}

const char* dtype_name(c10::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat64:
      return "F64";
    case torch::kFloat32:
      return "F32";
    case torch::kFloat16:
      return "F16";
    case torch::kBFloat16:
      return "BF16";
    case torch::kInt64:
      return "I64";
    case torch::kInt32:
      return "I32";
    case torch::kInt16:
      return "I16";
    case torch::kInt8:
      return "I8";
    case torch::kUInt8:
      return "U8";
    case torch::kBool:
      return "BOOL";
    default:
      throw Error(ErrorKind::kData,
                  std::string("dtype not storable in safetensors: ") + c10::toString(dtype));
  }
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) io_error(path, "cannot open safetensors file");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    io_error(path, "cannot stat");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ < 8) {
    ::close(fd);
    data_error(path, "",
               "file too short for a safetensors header (" + std::to_string(size_) + " bytes)");
  }
  void* m = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) io_error(path, "mmap failed");
  map_ = static_cast<const uint8_t*>(m);
  try {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | map_[i];
    if (n > kMaxHeaderBytes || n > size_ - 8) {
      data_error(path, "",
                 "header length " + std::to_string(n) + " exceeds the file (" +
                     std::to_string(size_) + " bytes) or the 100 MB limit",
                 0);
    }
    data_start_ = 8 + n;
    const uint64_t data_size = size_ - data_start_;
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(map_ + 8, map_ + 8 + n);
    } catch (const nlohmann::json::exception& e) {
      data_error(path, "", std::string("header is not valid JSON: ") + e.what(), 8);
    }
    if (!header.is_object()) data_error(path, "", "header is not a JSON object", 8);
    std::vector<std::pair<uint64_t, uint64_t>> spans;
    for (auto it = header.begin(); it != header.end(); ++it) {
      const std::string& name = it.key();
      const auto& e = it.value();
      if (name == "__metadata__") {
        if (!e.is_object()) data_error(path, name, "__metadata__ must be an object");
        for (auto m2 = e.begin(); m2 != e.end(); ++m2) {
          if (!m2.value().is_string()) data_error(path, name, "metadata values must be strings");
          metadata_[m2.key()] = m2.value().get<std::string>();
        }
        continue;
      }
      if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") ||
          !e.contains("data_offsets") || !e["dtype"].is_string() || !e["shape"].is_array() ||
          !e["data_offsets"].is_array() || e["data_offsets"].size() != 2) {
        data_error(path, name, "entry needs dtype, shape and data_offsets [begin, end]");
      }
      TensorInfo info;
      try {
        info.dtype = dtype_from_name(e["dtype"].get<std::string>());
      } catch (const Error& err) {
        data_error(path, name, err.message());
      }
      for (const auto& d : e["shape"]) {
        if (!d.is_number_integer() || d.get<int64_t>() < 0) {
          data_error(path, name, "shape entries must be non-negative integers");
        }
        info.shape.push_back(d.get<int64_t>());
      }
      for (int k = 0; k < 2; ++k) {
        if (!e["data_offsets"][k].is_number_unsigned()) {
          data_error(path, name, "data_offsets must be non-negative integers");
        }
      }
      info.begin = e["data_offsets"][0].get<uint64_t>();
      info.end = e["data_offsets"][1].get<uint64_t>();
      if (info.begin > info.end || info.end > data_size) {
        data_error(path, name,
                   "data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) +
                       "] outside the data section of " + std::to_string(data_size) + " bytes",
                   static_cast<int64_t>(data_start_));
      }
      auto bytes = byte_size(info.shape, info.dtype);
      if (!bytes || *bytes != info.end - info.begin) {
        data_error(path, name,
                   "data_offsets span " + std::to_string(info.end - info.begin) +
                       " bytes but dtype and shape need " +
                       (bytes ? std::to_string(*bytes) : std::string("more than 2^64")));
      }
      spans.emplace_back(info.begin, info.end);
      tensors_.emplace(name, std::move(info));
    }
    std::sort(spans.begin(), spans.end());
    for (size_t i = 1; i < spans.size(); ++i) {
      if (spans[i].first < spans[i - 1].second) {
        data_error(path, "",
                   "tensor data ranges overlap at byte " + std::to_string(spans[i].first));
      }
    }
  } catch (...) {
    ::munmap(const_cast<uint8_t*>(map_), size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(const_cast<uint8_t*>(map_), size_);
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& [name, info] : tensors_) out.push_back(name);
  return out;
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) data_error(path_, name, "no such tensor in the file");
  return it->second;
}

at::Tensor SafetensorsFile::load(const std::string& name,
                                 std::optional<c10::ScalarType> dtype) const {
  const TensorInfo& i = info(name);
  auto t = torch::empty(i.shape, torch::TensorOptions().dtype(i.dtype));
  if (i.end > i.begin) std::memcpy(t.data_ptr(), map_ + data_start_ + i.begin, i.end - i.begin);
  return dtype && *dtype != i.dtype ? t.to(*dtype) : t;
}

TensorSource::TensorSource(const std::string& path) : path_(path) {
  const bool is_index = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  if (!is_index) {
    files_.push_back(std::make_unique<SafetensorsFile>(pipeline::local_path_for(path)));
    for (const auto& name : files_[0]->names()) where_[name] = 0;
    return;
  }
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(read_file(pipeline::local_path_for(path)));
  } catch (const nlohmann::json::exception& e) {
    data_error(path, "", std::string("index is not valid JSON: ") + e.what());
  }
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    data_error(path, "weight_map", "index needs a \"weight_map\" object {tensor: file}");
  }
  // Shard names are relative to the index's folder, also in a bucket (each shard its own object).
  const bool remote = pipeline::is_s3_url(path);
  const auto dir = std::filesystem::path(path).parent_path();
  const std::string remote_dir = remote ? path.substr(0, path.rfind('/')) : std::string();
  std::map<std::string, size_t> file_index;
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
    if (!it.value().is_string()) data_error(path, it.key(), "weight_map values must be file names");
    const std::string file = it.value().get<std::string>();
    auto f = file_index.find(file);
    if (f == file_index.end()) {
      files_.push_back(std::make_unique<SafetensorsFile>(
          remote ? pipeline::local_path_for(remote_dir + "/" + file) : (dir / file).string()));
      f = file_index.emplace(file, files_.size() - 1).first;
    }
    if (!files_[f->second]->contains(it.key())) {
      data_error(path, it.key(), "the weight map names shard " + file + ", which lacks it");
    }
    where_[it.key()] = f->second;
  }
}

std::vector<std::string> TensorSource::names() const {
  std::vector<std::string> out;
  for (const auto& [name, file] : where_) out.push_back(name);
  return out;
}

const SafetensorsFile& TensorSource::file_of(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) data_error(path_, name, "no such tensor");
  return *files_[it->second];
}

const TensorInfo& TensorSource::info(const std::string& name) const {
  return file_of(name).info(name);
}

at::Tensor TensorSource::load(const std::string& name, std::optional<c10::ScalarType> dtype) const {
  return file_of(name).load(name, dtype);
}

uint64_t TensorSpec::bytes() const {
  uint64_t n = c10::elementSize(dtype);
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

std::vector<TensorSpec> specs_of(const NamedTensors& tensors,
                                 std::optional<c10::ScalarType> dtype) {
  std::vector<TensorSpec> specs;
  specs.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    specs.push_back({name, dtype ? *dtype : t.scalar_type(), t.sizes().vec()});
  }
  return specs;
}

void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata,
                       std::optional<c10::ScalarType> dtype) {
  write_safetensors(
      path, specs_of(tensors, dtype), [&](size_t i) { return tensors[i].second; }, metadata);
}

void write_safetensors(const std::string& path, const std::vector<TensorSpec>& specs,
                       const TensorFetch& fetch,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const TensorSpec& spec : specs) {
    if (header.contains(spec.name)) data_error(path, spec.name, "duplicate tensor name");
    const uint64_t bytes = spec.bytes();
    header[spec.name] = {{"dtype", dtype_name(spec.dtype)},
                         {"shape", spec.shape},
                         {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>((text.size() >> (8 * i)) & 0xff);
  const std::string tmp = path + ".tmp";
  FileWriter w(tmp);
  w.write(len, 8);
  w.write(text.data(), text.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    const at::Tensor t = fetch(i).detach().to(torch::kCPU, specs[i].dtype).contiguous();
    if (!t.sizes().equals(specs[i].shape)) {
      data_error(path, specs[i].name, "tensor shape differs from the one in the header");
    }
    w.write(t.data_ptr(), t.numel() * t.element_size());
  }
  w.sync_and_close();
  rename_durable(tmp, path);
}

std::string write_sharded_safetensors(const std::string& dir, const NamedTensors& tensors,
                                      uint64_t max_shard_bytes,
                                      std::optional<c10::ScalarType> dtype) {
  return write_sharded_safetensors(
      dir, specs_of(tensors, dtype), [&](size_t i) { return tensors[i].second; }, max_shard_bytes);
}

std::string write_sharded_safetensors(const std::string& dir, const std::vector<TensorSpec>& specs,
                                      const TensorFetch& fetch, uint64_t max_shard_bytes) {
  std::vector<size_t> first(1, 0);  // shard k holds specs [first[k], first[k + 1])
  uint64_t in_shard = 0, total = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const uint64_t bytes = specs[i].bytes();
    if (i > first.back() && in_shard + bytes > max_shard_bytes) {
      first.push_back(i);
      in_shard = 0;
    }
    in_shard += bytes;
    total += bytes;
  }
  first.push_back(specs.size());
  std::filesystem::create_directories(dir);
  nlohmann::json weight_map = nlohmann::json::object();
  const size_t n = first.size() - 1;
  for (size_t k = 0; k < n; ++k) {
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", k + 1, n);
    const std::vector<TensorSpec> shard(specs.begin() + first[k], specs.begin() + first[k + 1]);
    write_safetensors((std::filesystem::path(dir) / name).string(), shard,
                      [&](size_t i) { return fetch(first[k] + i); });
    for (const TensorSpec& spec : shard) weight_map[spec.name] = name;
  }
  nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  const std::string path = (std::filesystem::path(dir) / "model.safetensors.index.json").string();
  write_file_atomic(path, index.dump(2) + "\n");
  return path;
}

}  // namespace flam::weights
