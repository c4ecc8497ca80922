// URL table and MMC4 readers: RFC 4180 quoting, TSV, JSON lines, .gz and .zst, bad rows kept in
// place, missing columns reported with the file.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "shard/mmc4_reader.h"
#include "shard/url_reader.h"

namespace flam::shard {
namespace {

class ReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("flam_ur_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  std::string write_gz(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, text.data(), static_cast<unsigned>(text.size()));
    gzclose(f);
    return path;
  }
  std::string write_zst(const std::string& name, const std::string& text) {
    std::string out(ZSTD_compressBound(text.size()), '\0');
    out.resize(ZSTD_compress(out.data(), out.size(), text.data(), text.size(), 3));
    return write(name, out);
  }

  std::filesystem::path dir_;
};

TEST(SplitRecord, Rfc4180) {
  std::vector<std::string> f;
  ASSERT_TRUE(split_record("a,\"b,c\",\"say \"\"hi\"\"\",,\"line\nbreak\"", ',', &f));
  EXPECT_EQ(f, (std::vector<std::string>{"a", "b,c", "say \"hi\"", "", "line\nbreak"}));
  ASSERT_TRUE(split_record("x\ty\t", '\t', &f));
  EXPECT_EQ(f, (std::vector<std::string>{"x", "y", ""}));
  EXPECT_FALSE(split_record("\"open,", ',', &f));
}

TEST_F(ReaderTest, AnInputThatMatchesNothingIsAConfigError) {
  const std::string table = write("part-0.tsv", "url\tcaption\nhttp://a/1.jpg\tone\n");
  EXPECT_EQ(expand_inputs({(dir_ / "part-*.tsv").string()}), std::vector<std::string>{table});
  for (const std::string& missing :
       {(dir_ / "gone.tsv").string(), (dir_ / "gone-*.tsv").string()}) {
    try {
      expand_inputs({table, missing});
      ADD_FAILURE() << missing;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kConfig) << missing;
      EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("shard.inputs"), std::string::npos) << e.what();
    }
  }
}

TEST_F(ReaderTest, CsvWithQuotesAndCarriedColumns) {
  std::string csv =
      "\xEF\xBB\xBFurl,caption,width\r\n"
      "http://a/1.jpg,\"a cat, sitting\",640\r\n"
      "http://a/2.jpg,\"two\nlines\",480\r\n"
      "http://a/3.jpg,too,many,fields\r\n"
      "\r\n"
      "http://a/4.jpg,\"quote \"\"q\"\"\",1\n";
  TableColumns cols;
  cols.save_cols = {"width"};
  auto rows = read_url_table({write("t.csv", csv)}, cols);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].url, "http://a/1.jpg");
  EXPECT_EQ(rows[0].caption, "a cat, sitting");
  EXPECT_EQ(rows[0].extra[0], "640");
  EXPECT_EQ(rows[1].caption, "two\nlines");
  EXPECT_FALSE(rows[2].error.empty());
  EXPECT_EQ(rows[2].extra.size(), 1u);
  EXPECT_EQ(rows[3].caption, "quote \"q\"");
}

TEST_F(ReaderTest, TsvGzAndJsonlZstInOneRun) {
  std::string tsv = "caption\turl\tscore\nfirst\thttp://a/1.jpg\t1\nsecond\thttp://a/2.jpg\t2\n";
  std::string jsonl =
      "{\"url\": \"http://b/1.jpg\", \"caption\": \"j\", \"score\": 0.5}\n"
      "not json\n"
      "{\"caption\": \"no url\"}\n"
      "{\"url\": \"http://b/4.jpg\", \"caption\": null}\n";
  TableColumns cols;
  cols.save_cols = {"score"};
  auto rows = read_url_table({write_gz("a.tsv.gz", tsv), write_zst("b.jsonl.zst", jsonl)}, cols);
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows[0].url, "http://a/1.jpg");
  EXPECT_EQ(rows[1].caption, "second");
  EXPECT_EQ(rows[1].extra[0], "2");
  EXPECT_EQ(rows[2].url, "http://b/1.jpg");
  EXPECT_EQ(rows[2].extra[0], 0.5);
  EXPECT_FALSE(rows[3].error.empty());
  EXPECT_FALSE(rows[4].error.empty());
  EXPECT_EQ(rows[5].caption, "");
  EXPECT_TRUE(rows[5].extra[0].is_null());
}

TEST_F(ReaderTest, MissingColumnNamesTheFile) {
  std::string path = write("t.tsv", "link\ttext\nhttp://a\tb\n");
  try {
    read_url_table({path}, TableColumns{});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kData);
    EXPECT_EQ(e.context().file, path);
    EXPECT_NE(e.message().find("'url'"), std::string::npos);
  }
}

TEST_F(ReaderTest, CorruptCompressedInputIsAnIoError) {
  std::string good(ZSTD_compressBound(1000), '\0');
  std::string text(1000, 'x');
  good.resize(ZSTD_compress(good.data(), good.size(), text.data(), text.size(), 3));
  std::string cut = write("cut.jsonl.zst", good.substr(0, good.size() / 2));
  EXPECT_THROW(read_mmc4_documents({cut}), Error);
  EXPECT_THROW(read_url_table({(dir_ / "missing.tsv").string()}, TableColumns{}), Error);
}

// Issue #17: an unterminated quote in a TSV spoils its own line only (named by number), and a
// caption that is not UTF-8 is a row counted invalid_utf8 instead of a success.
TEST_F(ReaderTest, TsvUnterminatedQuoteResyncsAtTheNextLine) {
  std::string tsv =
      "url\tcaption\n"
      "http://a/1.jpg\tfine\n"
      "http://a/2.jpg\t\"open quote\n"
      "http://a/3.jpg\tafter\n"
      "http://a/4.jpg\tbad \xff\xfe bytes\n";
  auto rows = read_url_table({write("q.tsv", tsv)}, TableColumns{});
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_TRUE(rows[0].error.empty());
  EXPECT_EQ(rows[1].error, "line 3: unterminated quote");
  EXPECT_EQ(rows[1].reason, "bad_row");
  EXPECT_TRUE(rows[2].error.empty()) << rows[2].error;
  EXPECT_EQ(rows[2].url, "http://a/3.jpg");
  EXPECT_EQ(rows[2].caption, "after");
  EXPECT_EQ(rows[3].reason, "invalid_utf8");
  EXPECT_EQ(rows[3].error, "line 5: the caption is not UTF-8");
  auto jsonl =
      read_url_table({write("u.jsonl",
                            "{\"url\": \"http://a\", \"caption\": \"ok\"}\n{\"url\": \"http://b\", "
                            "\"caption\": \"\xc3\x28\"}\n")},
                     TableColumns{});
  ASSERT_EQ(jsonl.size(), 2u);
  EXPECT_TRUE(jsonl[0].error.empty());
  EXPECT_EQ(jsonl[1].reason, "invalid_utf8");
}

TEST_F(ReaderTest, Mmc4LinesAreKeptWhole) {
  auto rows = read_mmc4_documents({write("d.jsonl", "{\"text_list\": []}\n\n{\"a\": 1}\n")});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].document, "{\"a\": 1}");
}

}  // namespace
}  // namespace flam::shard
