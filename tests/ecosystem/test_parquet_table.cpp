// ParquetTable against files written by pyarrow (the venv's python3): every window [begin, end)
// of the concatenated files reads the same rows as the whole table (resume by row position,
// across row groups and files), types survive, and bad schemas are errors naming file and key.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "shard/parquet_table.h"

namespace flam::shard {
namespace {

namespace fs = std::filesystem;

class ParquetTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("flam_parquet_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // a.parquet: 7 rows in row groups of 3 (3, 3, 1); b.parquet: 4 rows in groups of 2. Row 4
    // has a null URL, row 5 a null caption and a NaN score.
    const std::string script = R"(
import sys, pyarrow as pa, pyarrow.parquet as pq
d = sys.argv[1]
def rows(lo, hi):
    return pa.table({
        "key": pa.array(range(lo, hi), pa.int64()),
        "URL": pa.array([None if i == 4 else "http://127.0.0.1/%d.jpg" % i for i in range(lo, hi)]),
        "TEXT": pa.array([None if i == 5 else "caption %d" % i for i in range(lo, hi)]),
        "score": pa.array([float("nan") if i == 5 else i / 4 for i in range(lo, hi)], pa.float32()),
        "tags": pa.array([["a", str(i)] for i in range(lo, hi)]),
        "ok": pa.array([i % 2 == 0 for i in range(lo, hi)]),
    })
pq.write_table(rows(0, 7), d + "/a.parquet", row_group_size=3, compression="snappy")
pq.write_table(rows(7, 11), d + "/b.parquet", row_group_size=2, compression="zstd")
pq.write_table(pa.table({"URL": pa.array([1, 2])}), d + "/int_url.parquet")
)";
    const std::string py = (dir_ / "make.py").string();
    FILE* f = std::fopen(py.c_str(), "w");
    std::fputs(script.c_str(), f);
    std::fclose(f);
    ASSERT_EQ(std::system(("python3 " + py + " " + dir_.string()).c_str()), 0);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const char* name) const { return (dir_ / name).string(); }
  TableColumns columns() const {
    TableColumns c;
    c.save_cols = {"key", "score", "tags", "ok"};
    return c;
  }
  fs::path dir_;
};

TEST_F(ParquetTableTest, ReadsLaionNamesAndKeepsTypes) {
  ParquetTable table({path("a.parquet"), path("b.parquet")}, columns());
  ASSERT_EQ(table.row_count(), 11);
  std::vector<InputRow> rows;
  table.read(0, table.row_count(), &rows);
  ASSERT_EQ(rows.size(), 11u);
  EXPECT_EQ(rows[7].url, "http://127.0.0.1/7.jpg");  // the first row of b.parquet
  EXPECT_EQ(rows[7].caption, "caption 7");
  EXPECT_TRUE(rows[7].extra[0].is_number_integer());
  EXPECT_EQ(rows[7].extra[0], 7);
  EXPECT_TRUE(rows[7].extra[1].is_number_float());
  EXPECT_DOUBLE_EQ(rows[7].extra[1].get<double>(), 1.75);
  EXPECT_EQ(rows[7].extra[2], nlohmann::json::array({"a", "7"}));
  EXPECT_EQ(rows[7].extra[3], false);
  EXPECT_EQ(rows[4].error, "null URL");
  EXPECT_TRUE(rows[3].error.empty());
  EXPECT_EQ(rows[5].caption, "");
  EXPECT_TRUE(rows[5].extra[1].is_null());  // NaN
}

TEST_F(ParquetTableTest, EveryWindowReadsTheSameRowsAsTheWhole) {
  ParquetTable whole({path("a.parquet"), path("b.parquet")}, columns());
  std::vector<InputRow> all;
  whole.read(0, 11, &all);
  for (int64_t begin = 0; begin <= 11; ++begin) {
    for (int64_t end = begin; end <= 12; ++end) {
      ParquetTable table({path("a.parquet"), path("b.parquet")}, columns());
      std::vector<InputRow> got;
      table.read(begin, end, &got);
      ASSERT_EQ(static_cast<int64_t>(got.size()), std::min<int64_t>(end, 11) - begin);
      for (size_t i = 0; i < got.size(); ++i) {
        const InputRow& want = all[static_cast<size_t>(begin) + i];
        ASSERT_EQ(got[i].url, want.url) << begin << ".." << end;
        ASSERT_EQ(got[i].caption, want.caption);
        ASSERT_EQ(got[i].extra, want.extra);
      }
    }
  }
}

TEST_F(ParquetTableTest, SchemaMistakesNameTheFileAndKey) {
  TableColumns missing = columns();
  missing.save_cols.push_back("AESTHETIC");
  try {
    ParquetTable table({path("a.parquet")}, missing);
    FAIL() << "a missing column was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.context().key, "shard.save_cols");
    EXPECT_EQ(e.context().file, path("a.parquet"));
    EXPECT_NE(std::string(e.what()).find("key, URL, TEXT, score, tags, ok"), std::string::npos)
        << e.what();
  }
  try {
    ParquetTable table({path("int_url.parquet")}, TableColumns{"auto", "url", "", {}});
    FAIL() << "an integer URL column was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.context().key, "shard.url_col");
    EXPECT_EQ(e.kind(), ErrorKind::kData);
  }
}

TEST_F(ParquetTableTest, MissingOrNonParquetFilesAreIoErrors) {
  EXPECT_THROW(ParquetTable({path("none.parquet")}, columns()), Error);
  try {
    ParquetTable table({path("make.py")}, columns());
    FAIL() << "a Python file was read as parquet";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_EQ(e.context().file, path("make.py"));
  }
}

}  // namespace
}  // namespace flam::shard
