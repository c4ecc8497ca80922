// bench_tar_read: makes a webdataset-like shard and reads it back, for bench/tar/run.sh.
//   bench_tar_read make PATH BYTES      write a shard of about BYTES (jpg/txt/json samples)
//   bench_tar_read read PATH            all members through TarReader (ours)
//   bench_tar_read libarchive PATH      all members through libarchive over the same ByteSource
// read modes print "seconds S bytes B members M cpu_seconds C" (wall and process CPU time of the
// read alone, without process start).
#include <archive.h>
#include <archive_entry.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "pipeline/byte_source.h"
#include "pipeline/tar_reader.h"
#include "pipeline/tar_writer.h"

using namespace flam::pipeline;

namespace {

int make(const std::string& path, int64_t bytes) {
  std::mt19937 rng(7);
  std::string blob(400 << 10, '\0');
  for (auto& c : blob) c = static_cast<char>(rng());
  TarWriter writer(path);
  for (int64_t i = 0; writer.bytes_written() < bytes; ++i) {
    char key[32];
    std::snprintf(key, sizeof(key), "%05d%04d", static_cast<int>(i / 10000),
                  static_cast<int>(i % 10000));
    size_t jpg = 20000 + rng() % 180000;
    writer.add(std::string(key) + ".jpg", std::string_view(blob).substr(rng() % 1000, jpg));
    writer.add(std::string(key) + ".txt", std::string_view(blob).substr(0, 40 + rng() % 100));
    writer.add(std::string(key) + ".json", std::string_view(blob).substr(0, 200 + rng() % 200));
  }
  writer.close();
  return 0;
}

struct LibarchiveInput {
  std::unique_ptr<ByteSource> source;
  std::vector<char> buffer = std::vector<char>(1 << 20);
};

la_ssize_t libarchive_read(struct archive*, void* user, const void** out) {
  auto* in = static_cast<LibarchiveInput*>(user);
  *out = in->buffer.data();
  return static_cast<la_ssize_t>(in->source->read(in->buffer.data(), in->buffer.size()));
}

int read_libarchive(const std::string& path, int64_t& bytes, int64_t& members) {
  LibarchiveInput input{open_source(path)};
  struct archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  archive_read_support_format_gnutar(a);
  if (archive_read_open(a, &input, nullptr, libarchive_read, nullptr) != ARCHIVE_OK) return 1;
  struct archive_entry* entry;
  Bytes data;
  int rc;
  while ((rc = archive_read_next_header(a, &entry)) == ARCHIVE_OK) {
    if (archive_entry_filetype(entry) != AE_IFREG) continue;
    data.clear();
    data.resize(static_cast<size_t>(archive_entry_size(entry)));
    if (archive_read_data(a, data.data(), data.size()) != static_cast<la_ssize_t>(data.size())) {
      return 1;
    }
    bytes += static_cast<int64_t>(data.size());
    ++members;
  }
  archive_read_free(a);
  return rc == ARCHIVE_EOF ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_tar_read make PATH BYTES | read PATH | libarchive PATH\n");
    return 2;
  }
  std::string mode = argv[1], path = argv[2];
  if (mode == "make") return make(path, argc > 3 ? std::atoll(argv[3]) : int64_t{1} << 30);
  auto start = std::chrono::steady_clock::now();
  std::clock_t cpu_start = std::clock();
  int64_t bytes = 0, members = 0;
  if (mode == "read") {
    TarReader reader(open_source(path));
    TarEntry entry;
    Bytes data;
    while (reader.next(entry, data)) {
      bytes += static_cast<int64_t>(data.size());
      ++members;
    }
  } else if (mode == "libarchive") {
    if (read_libarchive(path, bytes, members) != 0) {
      std::fprintf(stderr, "libarchive read failed\n");
      return 1;
    }
  } else {
    return 2;
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  std::printf("seconds %.4f bytes %lld members %lld cpu_seconds %.4f\n", seconds,
              static_cast<long long>(bytes), static_cast<long long>(members), cpu_seconds);
  return 0;
}
