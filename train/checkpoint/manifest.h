// Manifest: the committed description of one checkpoint (step_N/manifest.json; the names of a
// run's files and folders are core/run_layout.h's). A checkpoint exists once its manifest does;
// readers trust nothing else in a step directory before checking it against the manifest
// (docs/formats.md).
//
// Thread safety: pure functions and plain data.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "train/zero3/flat_layout.h"

namespace flam::train {

inline constexpr int kManifestVersion = 1;

struct ManifestFile {
  std::string name;  // rank_00000.bin
  uint64_t bytes = 0;
  uint32_t header_crc = 0;  // CRC32C of the rank file's header (covers every section CRC)
};

struct Manifest {
  int format_version = kManifestVersion;
  int64_t step = 0;
  int world_size = 1;
  std::string config_hash;
  std::string created;                    // UTC, ISO 8601
  FlatLayout layout;                      // of the saving world size
  std::vector<ManifestFile> files;        // one per rank, in rank order
  std::map<std::string, double> scalars;  // rank 0's counters, for inspection
};

std::string manifest_to_json(const Manifest& manifest);
// Throws flam::Error(kData) naming `path` if the text is not a valid manifest.
Manifest parse_manifest(const std::string& text, const std::string& path);
// Reads STEP_DIR/manifest.json. Throws flam::Error(kIo) if unreadable, kData if invalid.
Manifest read_manifest(const std::string& step_dir);

}  // namespace flam::train
