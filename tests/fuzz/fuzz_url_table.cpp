// URL tables (TSV, CSV with RFC 4180 quoting, JSON lines) and MMC4 document lines: the first
// byte picks the format, the rest is the file.
#include "core/error.h"
#include "shard/mmc4_reader.h"
#include "shard/url_reader.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* kSuffix[] = {".tsv", ".csv", ".jsonl", ".mmc4.jsonl"};
  const int kind = data[0] % 4;
  const std::string path = flam::fuzz::write_input(data + 1, size - 1, kSuffix[kind]);
  try {
    if (kind == 3) {
      flam::shard::read_mmc4_documents({path});
    } else {
      flam::shard::TableColumns columns;
      columns.save_cols = {"width"};
      flam::shard::read_url_table({path}, columns);
    }
  } catch (const flam::Error&) {
  }
  return 0;
}
