// ParquetTable: URL tables stored as parquet (LAION's metadata parts, img2dataset's inputs), read
// through Arrow C++ one row group at a time and only for the columns asked for (projection), so
// a 2 GB part never sits in memory whole. Several files read as one table, in order; a row's
// position in that table is its global index (its shard and key follow from it), and read()
// starts at any position without decoding the row groups before it (resume by row position).
//
// Columns are found as users name them: the configured name exactly, else the one column that
// matches it ignoring case (LAION's `URL` for `url`), and for the default caption column `caption`
// also LAION's `TEXT`. save_cols keep their parquet types in InputRow::extra (integers stay
// integers, floats floats, NaN and nulls become null).
//
// Built against Arrow under FLAM_WITH_PARQUET (shard/parquet/parquet_table_arrow.cpp); without it
// the constructor throws flam::Error(kConfig) saying how to build it in.
//
// Thread safety: one thread per ParquetTable.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "shard/url_reader.h"

namespace flam::shard {

class ParquetTable {
 public:
  // Reads the footers of `paths` (metadata only) and resolves the columns of `columns` in each.
  // Throws flam::Error: kIo naming a file that cannot be opened or is not parquet; kData naming
  // the file and config key when a column is missing (listing the columns it has) or the URL
  // column is not a string column.
  ParquetTable(const std::vector<std::string>& paths, const TableColumns& columns);
  ~ParquetTable();
  ParquetTable(const ParquetTable&) = delete;
  ParquetTable& operator=(const ParquetTable&) = delete;

  // Rows in all files, from the footers.
  int64_t row_count() const;
  // Appends rows [begin, end) (clamped to row_count()) to `out`, decoding only the row groups
  // that overlap them. A row whose URL is null gets InputRow::error. Throws flam::Error(kIo)
  // naming the file and row group when a row group cannot be decoded.
  void read(int64_t begin, int64_t end, std::vector<InputRow>* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flam::shard
