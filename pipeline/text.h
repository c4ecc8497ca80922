// Text utilities of the packers (pipeline/packer.h): UTF-8 validation, Python's str.strip()
// and str.replace() (base64 is core/base64.h). Pure functions; any thread.
#pragma once

#include <string>
#include <string_view>

namespace flam::pipeline {

// True when `text` is valid UTF-8: no overlong forms, surrogates or code points > U+10FFFF.
bool valid_utf8(std::string_view text);

// Python's str.strip() without arguments: removes leading and trailing characters for which
// str.isspace() is true (ASCII whitespace, \x1c-\x1f and the Unicode spaces, as UTF-8).
std::string strip_text(std::string_view text);

// Python's text.replace(from, to): every non-overlapping occurrence, scanning left to right.
// REQUIRES: !from.empty().
void replace_all(std::string& text, std::string_view from, std::string_view to);

}  // namespace flam::pipeline
