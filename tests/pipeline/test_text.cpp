// Text utilities of the packers (pipeline/text.h).
#include <gtest/gtest.h>

#include "pipeline/text.h"

namespace flam::pipeline {
namespace {

TEST(Text, Utf8Strip) {
  EXPECT_TRUE(valid_utf8("plain \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
  EXPECT_FALSE(valid_utf8("\xc3"));
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_EQ(strip_text(" \t a b \n"), "a b");
  EXPECT_EQ(strip_text("\xc2\xa0x\xe3\x80\x80"), "x");
  EXPECT_EQ(strip_text("   "), "");
}

TEST(Text, ReplaceAllAsPython) {
  std::string s = "a  <b> <b>  c";
  replace_all(s, " <b>", "<b>");
  EXPECT_EQ(s, "a <b><b>  c");
  s = "aaa";
  replace_all(s, "aa", "b");  // non-overlapping, left to right: "ba"
  EXPECT_EQ(s, "ba");
}

}  // namespace
}  // namespace flam::pipeline
