// Rank file: one rank's part of a checkpoint, a little-endian container of named sections, each
// with its own CRC32C, behind a header that carries its own CRC32C (docs/formats.md):
//
//   "FLAMCKPT" u32 version u32 section_count u64 data_offset
//   section_count x { u32 name_len, name, u64 offset, u64 size, u32 crc32c }
//   u32 header_crc32c        (over every header byte before it)
//   zeros up to data_offset, then the sections, each starting on a 64-byte boundary.
//
// The header CRC covers every section CRC, so (file size, header CRC), which the manifest
// records, identifies the whole content. Writers fsync; readers verify before trusting bytes and
// report corruption as flam::Error(kData) naming the file, section and byte offset.
//
// Thread safety: free functions on distinct files may run on any threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace flam::train {

inline constexpr uint32_t kRankFileVersion = 1;

// A section to write: borrowed bytes that must stay alive during write_rank_file().
struct SectionData {
  std::string name;
  const void* data = nullptr;
  size_t size = 0;
};

struct SectionEntry {
  std::string name;
  uint64_t offset = 0;  // bytes from the start of the file
  uint64_t size = 0;
  uint32_t crc = 0;
};

struct RankFileHeader {
  uint32_t version = 0;
  uint64_t data_offset = 0;
  uint32_t header_crc = 0;
  uint64_t header_end = 0;  // first byte after the header CRC; zeros follow up to data_offset
  std::vector<SectionEntry> sections;
  // nullptr when absent.
  const SectionEntry* find(const std::string& name) const;
};

struct RankFileSummary {
  uint64_t bytes = 0;       // file size
  uint32_t header_crc = 0;  // the file's digest
};

// Writes `sections` to `path` (created or truncated) and fsyncs it. Throws flam::Error(kIo)
// naming the path and the failing call (ENOSPC, EROFS, ...); a partial file may remain.
RankFileSummary write_rank_file(const std::string& path, const std::vector<SectionData>& sections);

// Reads and checks the header (magic, version, header CRC, section bounds within the file).
// Throws flam::Error(kIo) if unreadable, flam::Error(kData) if corrupt.
RankFileHeader read_rank_file_header(const std::string& path);

// Verifies the whole file: size and header CRC equal the expected values (the manifest's),
// every section's CRC matches, and every padding byte is zero, so that no byte goes unchecked.
// Throws flam::Error(kData) naming what differs.
void verify_rank_file(const std::string& path, uint64_t expected_bytes,
                      uint32_t expected_header_crc);

// A whole section's bytes, CRC-checked. Throws flam::Error(kData) if missing or corrupt.
std::string read_section(const std::string& path, const RankFileHeader& header,
                         const std::string& name);

// bytes [offset, offset + size) of a section into `out`, unchecked (verify the file first).
void read_section_range(const std::string& path, const RankFileHeader& header,
                        const std::string& name, uint64_t offset, uint64_t size, void* out);

// The "scalars" section: named counters, u32 count, then per counter { u32 name_len, name, f64
// bits } in name order; exact, NaN included.
std::string encode_scalars(const std::map<std::string, double>& scalars);
// Throws flam::Error(kData) naming `path` if `bytes` is truncated.
std::map<std::string, double> decode_scalars(const std::string& bytes, const std::string& path);

}  // namespace flam::train
