// ParquetTable in a build without Arrow (FLAM_WITH_PARQUET off): every use is a config error.
#include "core/error.h"
#include "shard/parquet_table.h"

namespace flam::shard {

struct ParquetTable::Impl {};

ParquetTable::ParquetTable(const std::vector<std::string>& paths, const TableColumns&) {
  throw Error(ErrorKind::kConfig,
              "this flam was built without parquet input: CMake did not find pyarrow (Arrow C++ "
              "headers and libraries) in FLAM_PYTHON's environment; run scripts/setup.sh and "
              "reconfigure, or convert the table to tsv, csv or jsonl",
              ErrorContext{paths.empty() ? "" : paths[0], -1, "shard.inputs", "", -1});
}

ParquetTable::~ParquetTable() = default;

int64_t ParquetTable::row_count() const { return 0; }

void ParquetTable::read(int64_t, int64_t, std::vector<InputRow>*) {}

}  // namespace flam::shard
