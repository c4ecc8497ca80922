// read_mmc4_documents on MMC4 as it ships: a zip written by Python's zipfile (deflate, with a
// directory entry), lines longer than libarchive's read blocks, CRLF and a last line without a
// newline; every malformed line keeps its index and names file, member and line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "shard/mmc4_reader.h"

namespace flam::shard {
namespace {

namespace fs = std::filesystem;

class Mmc4ReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("flam_mmc4_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const char* name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

std::string doc(int i, size_t text_bytes = 10) {
  return "{\"text_list\": [\"" + std::string(text_bytes, 'a' + i % 26) +
         "\"], \"image_info\": [{\"raw_url\": \"http://127.0.0.1/" + std::to_string(i) +
         ".jpg\"}]}";
}

TEST_F(Mmc4ReaderTest, ZipMembersInOrderWithLongAndMalformedLines) {
  const std::string a = doc(0) + "\r\n" + doc(1, 200000) + "\n[1, 2]\n\n" + doc(2);
  const std::string b = doc(3) + "\n{\"text_list\": [], \"image_info\": [{\"url\": \"x\"}]}\n";
  std::ofstream(path("a.jsonl")) << a;
  std::ofstream(path("b.jsonl")) << b;
  const std::string script =
      "import zipfile, sys; d = sys.argv[1]\n"
      "with zipfile.ZipFile(d + '/docs_shard_7_v2.jsonl.zip', 'w',"
      " zipfile.ZIP_DEFLATED) as z:\n"
      "    z.writestr('docs/', '')\n"
      "    z.write(d + '/a.jsonl', 'docs/a.jsonl')\n"
      "    z.write(d + '/b.jsonl', 'docs/b.jsonl')\n";
  std::ofstream(path("zip.py")) << script;
  ASSERT_EQ(std::system(("python3 " + path("zip.py") + " " + dir_.string()).c_str()), 0);

  std::vector<InputRow> rows = read_mmc4_documents({path("docs_shard_7_v2.jsonl.zip")});
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows[0].document, doc(0));  // the CR dropped
  EXPECT_EQ(rows[1].document, doc(1, 200000));
  EXPECT_TRUE(rows[1].error.empty());
  EXPECT_EQ(rows[2].error, "docs_shard_7_v2.jsonl.zip:docs/a.jsonl:3: not a JSON object");
  EXPECT_EQ(rows[3].document, doc(2));  // the last line, no newline; the empty line skipped
  EXPECT_EQ(rows[4].document, doc(3));
  EXPECT_EQ(rows[5].error,
            "docs_shard_7_v2.jsonl.zip:docs/b.jsonl:2: image_info[0] has no string raw_url");

  // The same lines as plain JSON lines read the same, with the file's name in errors.
  std::vector<InputRow> plain = read_mmc4_documents({path("a.jsonl")});
  ASSERT_EQ(plain.size(), 4u);
  EXPECT_EQ(plain[1].document, rows[1].document);
  EXPECT_EQ(plain[2].error, "a.jsonl:3: not a JSON object");
}

TEST_F(Mmc4ReaderTest, ReasonsForDocumentsThatAreNotMmc4) {
  auto why = [](const char* text) {
    return mmc4_document_error(nlohmann::json::parse(text, nullptr, false));
  };
  EXPECT_EQ(why(doc(0).c_str()), "");
  EXPECT_EQ(why("{not json"), "not a JSON object");
  EXPECT_EQ(why("{\"url\": \"http://a/b.jpg\", \"caption\": \"x\"}"), "no text_list list");
  EXPECT_EQ(why("{\"text_list\": [1], \"image_info\": []}"),
            "text_list holds a number, not strings");
  EXPECT_EQ(why("{\"text_list\": [\"a\"]}"), "no image_info list");
  EXPECT_EQ(why("{\"text_list\": [\"a\"], \"image_info\": [\"http://a/b.jpg\"]}"),
            "image_info[0] has no string raw_url");
}

TEST_F(Mmc4ReaderTest, AFileThatIsNotAZipIsAnIoError) {
  std::ofstream(path("fake.jsonl.zip")) << doc(0) << "\n";
  try {
    read_mmc4_documents({path("fake.jsonl.zip")});
    FAIL() << "a text file was read as a zip";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_EQ(e.context().file, path("fake.jsonl.zip"));
  }
  EXPECT_THROW(read_mmc4_documents({path("missing.jsonl.zip")}), Error);
}

}  // namespace
}  // namespace flam::shard
