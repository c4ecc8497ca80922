#include "pipeline/text.h"

#include <cstdint>

#include "core/check.h"

namespace flam::pipeline {

bool valid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    int extra;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    for (int k = 1; k <= extra; ++k) {
      if (i + k >= n || (s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    static constexpr uint32_t kMin[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

std::string strip_text(std::string_view text) {
  // Python's str.isspace(): ASCII whitespace, \x1c-\x1f, and Unicode spaces (as UTF-8).
  static constexpr std::string_view kUnicodeSpaces[] = {
      "\xc2\x85",     "\xc2\xa0",     "\xe1\x9a\x80", "\xe2\x80\x80", "\xe2\x80\x81",
      "\xe2\x80\x82", "\xe2\x80\x83", "\xe2\x80\x84", "\xe2\x80\x85", "\xe2\x80\x86",
      "\xe2\x80\x87", "\xe2\x80\x88", "\xe2\x80\x89", "\xe2\x80\x8a", "\xe2\x80\xa8",
      "\xe2\x80\xa9", "\xe2\x80\xaf", "\xe2\x81\x9f", "\xe3\x80\x80"};
  auto ascii_space = [](char c) {
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
  };
  bool changed = true;
  while (changed && !text.empty()) {
    changed = false;
    if (ascii_space(text.front())) {
      text.remove_prefix(1);
      changed = true;
      continue;
    }
    if (ascii_space(text.back())) {
      text.remove_suffix(1);
      changed = true;
      continue;
    }
    for (const std::string_view sp : kUnicodeSpaces) {
      if (text.starts_with(sp)) {
        text.remove_prefix(sp.size());
        changed = true;
        break;
      }
      if (text.ends_with(sp)) {
        text.remove_suffix(sp.size());
        changed = true;
        break;
      }
    }
  }
  return std::string(text);
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  FLAM_CHECK(!from.empty()) << "replace_all: empty pattern";
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (true) {
    const size_t at = text.find(from, pos);
    if (at == std::string::npos) break;
    out.append(text, pos, at - pos);
    out.append(to);
    pos = at + from.size();
  }
  out.append(text, pos, std::string::npos);
  text = std::move(out);
}

}  // namespace flam::pipeline
