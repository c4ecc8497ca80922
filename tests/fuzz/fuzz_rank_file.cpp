// The checkpoint rank-file header (train/checkpoint/rank_file.h, torch-free): magic, version,
// section table, header CRC and bounds; then every section it names is read and verified.
#include "core/error.h"
#include "tests/fuzz/fuzz_util.h"
#include "train/checkpoint/rank_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = flam::fuzz::write_input(data, size, ".bin");
  try {
    flam::train::RankFileHeader header = flam::train::read_rank_file_header(path);
    for (const auto& section : header.sections) {
      if (section.size <= (1 << 20)) flam::train::read_section(path, header, section.name);
    }
  } catch (const flam::Error&) {
  }
  return 0;
}
