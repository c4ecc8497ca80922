// TarWriter: writes one shard as a ustar archive (optionally zstd-compressed) to PATH.tmp and
// renames it to PATH on close(), so a crash never leaves a partial shard under the final name.
// Metadata is fixed (mtime 0, uid/gid 0, uname/gname empty, mode 0644, type '0'), so identical
// input gives byte-identical output. Names longer than 100 bytes get a pax "path" record.
//
// Thread safety: one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace flam::pipeline {

struct TarWriterOptions {
  bool zstd = false;   // compress the whole archive as one zstd stream
  int zstd_level = 3;  // 1..19 (ZSTD_maxCLevel())
};

class TarWriter {
 public:
  // Opens PATH.tmp for writing (truncating it). Throws flam::Error(kIo) naming the path.
  TarWriter(std::string path, TarWriterOptions options = {});
  // Without close(), removes PATH.tmp (the shard is abandoned).
  ~TarWriter();
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  // Appends one regular file. REQUIRES: not closed; member_name non-empty, without NUL.
  // Throws flam::Error(kIo) on a write failure.
  void add(std::string_view member_name, std::string_view data);
  // Writes the end-of-archive marker (two zero blocks), flushes zstd, fsyncs, renames
  // PATH.tmp -> PATH and fsyncs the directory. Throws flam::Error(kIo). Idempotent.
  void close();

  // Bytes written to the file so far (compressed bytes when zstd is on).
  int64_t bytes_written() const;
  const std::string& path() const { return path_; }

 private:
  struct Impl;
  std::string path_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flam::pipeline
