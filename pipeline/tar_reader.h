// TarReader: streams the regular-file members of one tar archive from a ByteSource, without
// seeking. Accepts ustar (with its 155-byte prefix), GNU long names/links ("././@LongLink", types
// 'L'/'K'), GNU base-256 sizes, and pax extended headers ('x' per entry, 'g' global; "path" and
// "size" honoured). Directories, links, devices and FIFOs are skipped. Every header checksum is
// verified.
//
// Errors: truncation, a bad checksum, a malformed header or pax record throw
// flam::Error(kData) whose what() reads "NAME: offset N: <what>" (context.file or context.url =
// the shard, context.offset = N, the byte offset of the bad header or of the point where the
// data ran out; message() is <what>). Errors of the source (kIo, kNetwork, kData for zstd)
// propagate unchanged. After an error the reader is finished: next() throws the same error
// again. The caller decides whether to skip the rest of the shard.
//
// Thread safety: one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "pipeline/byte_source.h"
#include "pipeline/bytes.h"

namespace flam::pipeline {

struct TarEntry {
  std::string path;           // member path as stored (pax/GNU long names resolved)
  int64_t size = 0;           // bytes of data
  int64_t header_offset = 0;  // offset of the member's first header block (incl. long-name/pax)
};

class TarReader {
 public:
  // Takes ownership of the source. REQUIRES: source != nullptr.
  explicit TarReader(std::unique_ptr<ByteSource> source);
  ~TarReader();

  // Reads the next regular file into entry and data (data is resized to entry.size; its
  // storage is reused across calls). Returns
  // false at a clean end (two zero blocks, or end of stream exactly at a block boundary after
  // at least the end-of-archive marker or between members).
  bool next(TarEntry& entry, Bytes& data);

  // The source's name (path or URL).
  const std::string& name() const;
  // Bytes consumed from the source so far.
  int64_t offset() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flam::pipeline
