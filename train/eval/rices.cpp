#include "train/eval/rices.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>

#include "core/atomic_file.h"
#include "core/check.h"
#include "core/comm.h"
#include "core/error.h"
#include "train/eval/model_loader.h"
#include "train/model/flamingo.h"
#include "train/model/layers.h"

namespace flam::eval {
namespace {

constexpr char kMagic[8] = {'F', 'L', 'A', 'M', 'R', 'I', 'C', 'E'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 8 + 4 + 4 + 8 + 8 + 8;
constexpr int64_t kChunk = 16;

struct Fnv {
  uint64_t h = 1469598103934665603ull;
  void add(const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  }
};

uint64_t cache_key(model::FlamingoImpl& model, const std::vector<std::string>& images) {
  Fnv f;
  for (const at::Tensor& p : model.vision_encoder().parameters()) {
    const at::Tensor c = p.detach().to(torch::kCPU).contiguous();
    f.add(c.data_ptr(), c.numel() * c.element_size());
  }
  const int64_t size = model.options().vision.image_size;
  f.add(&size, sizeof size);
  for (const std::string& path : images) f.add(path.data(), path.size() + 1);
  return f.h;
}

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

template <typename T>
T get(const std::string& in, size_t offset) {
  T v;
  std::memcpy(&v, in.data() + offset, sizeof v);
  return v;
}

// The cached features, or an undefined tensor when the file is absent or holds another key.
at::Tensor read_cache(const std::string& path, uint64_t key, const std::vector<std::string>& images,
                      int64_t d) {
  const int64_t n = static_cast<int64_t>(images.size());
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < kHeaderBytes || std::memcmp(bytes.data(), kMagic, 8) != 0 ||
      get<uint32_t>(bytes, 8) != kVersion)
    throw Error(ErrorKind::kData, "not a RICES feature file (bad magic or version)", at_file(path));
  if (get<uint64_t>(bytes, 16) != key) return {};
  const auto bad = [&](const std::string& what) {
    return Error(ErrorKind::kData, "RICES feature file " + what, at_file(path));
  };
  if (get<int64_t>(bytes, 24) != n || get<int64_t>(bytes, 32) != d) throw bad("has another shape");
  size_t offset = kHeaderBytes;
  for (const std::string& image : images) {
    if (bytes.size() < offset + 4) throw bad("is truncated");
    const uint32_t len = get<uint32_t>(bytes, offset);
    if (bytes.size() < offset + 4 + len || bytes.compare(offset + 4, len, image) != 0)
      throw bad("lists other images (hash collision or corruption)");
    offset += 4 + len;
  }
  if (bytes.size() != offset + static_cast<size_t>(n * d) * 4) throw bad("is truncated");
  at::Tensor t = torch::empty({n, d}, torch::kFloat32);
  std::memcpy(t.data_ptr<float>(), bytes.data() + offset, bytes.size() - offset);
  return t;
}

void write_cache(const std::string& path, uint64_t key, const std::vector<std::string>& images,
                 const at::Tensor& features) {
  std::string out(kMagic, sizeof kMagic);
  put<uint32_t>(out, kVersion);
  put<uint32_t>(out, 0);
  put<uint64_t>(out, key);
  put<int64_t>(out, features.size(0));
  put<int64_t>(out, features.size(1));
  for (const std::string& image : images) {
    put<uint32_t>(out, static_cast<uint32_t>(image.size()));
    out += image;
  }
  out.append(reinterpret_cast<const char*>(features.data_ptr<float>()), features.numel() * 4);
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  write_file_atomic(path, out);
}

at::Tensor compute(model::FlamingoImpl& model, const std::vector<std::string>& images, Comm& comm) {
  torch::NoGradGuard no_grad;
  const auto param = model.parameters().front();
  const int size = model.options().vision.image_size;
  const int64_t n = static_cast<int64_t>(images.size());
  const int64_t d = model.options().vision.width;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const int64_t per_rank = (chunks + comm.size() - 1) / comm.size();
  at::Tensor mine = torch::zeros({per_rank, kChunk, d}, torch::kFloat32);
  for (int64_t c = comm.rank(), slot = 0; c < chunks; c += comm.size(), ++slot) {
    std::vector<at::Tensor> pixels;
    for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i)
      pixels.push_back(load_image(images[i], size));
    at::Tensor batch = torch::stack(pixels).to(param.device(), param.scalar_type());
    at::Tensor f = model.vision_encoder().forward(batch).to(torch::kFloat32).mean(1);  // [b, D]
    f = f / f.norm(2, -1, true);
    mine[slot].narrow(0, 0, f.size(0)).copy_(f.to(torch::kCPU));
  }
  at::Tensor all = torch::empty({comm.size(), per_rank, kChunk, d}, torch::kFloat32);
  comm.all_gather(mine.data_ptr<float>(), all.data_ptr<float>(), mine.numel(), DType::kFloat32);
  // chunk c was rank c % size's slot c / size
  at::Tensor ordered = all.transpose(0, 1).reshape({per_rank * comm.size() * kChunk, d});
  return ordered.narrow(0, 0, n).contiguous();
}

}  // namespace

std::string feature_cache_path(model::FlamingoImpl& model, const std::vector<std::string>& images,
                               const std::string& cache_dir) {
  char name[48];
  std::snprintf(name, sizeof name, "rices_%016llx.feat",
                static_cast<unsigned long long>(cache_key(model, images)));
  return (std::filesystem::path(cache_dir) / name).string();
}

at::Tensor image_features(model::FlamingoImpl& model, const std::vector<std::string>& images,
                          const std::string& cache_dir, Comm& comm) {
  const int64_t d = model.options().vision.width;
  if (cache_dir.empty()) return compute(model, images, comm);
  const uint64_t key = cache_key(model, images);
  const std::string path = feature_cache_path(model, images, cache_dir);
  // Rank 0 decides, so every rank takes the same branch (and issues the same collectives).
  at::Tensor cached = comm.rank() == 0 ? read_cache(path, key, images, d) : at::Tensor();
  int64_t hit = cached.defined() ? 1 : 0;
  comm.broadcast(&hit, 1, DType::kInt64, 0);
  if (hit) {
    if (comm.rank() != 0) cached = read_cache(path, key, images, d);
    if (!cached.defined())
      throw Error(ErrorKind::kIo,
                  "rank 0 found the RICES feature cache but this rank cannot "
                  "read it (is eval.rices_cache_dir on a shared filesystem?)",
                  at_file(path));
    return cached;
  }
  at::Tensor features = compute(model, images, comm);
  if (comm.rank() == 0) write_cache(path, key, images, features);
  comm.barrier();
  return features;
}

std::vector<std::vector<size_t>> rices_select(const at::Tensor& queries, const at::Tensor& pool,
                                              size_t k) {
  FLAM_CHECK(k <= static_cast<size_t>(pool.size(0)))
      << "RICES: " << k << " demos from a pool of " << pool.size(0);
  const at::Tensor sim = torch::matmul(queries.to(torch::kFloat32), pool.to(torch::kFloat32).t())
                             .contiguous();  // [Q, N]
  std::vector<std::vector<size_t>> out;
  const int64_t n = pool.size(0);
  for (int64_t q = 0; q < sim.size(0); ++q) {
    const float* row = sim[q].data_ptr<float>();
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return row[a] > row[b]; });
    order.resize(k);
    std::reverse(order.begin(), order.end());  // most similar last
    out.push_back(std::move(order));
  }
  return out;
}

}  // namespace flam::eval
