#include "core/base64.h"

#include <openssl/evp.h>

namespace flam {

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

bool base64_decode(std::string_view text, std::string* out) {
  // EVP_DecodeBlock wants whole quads without whitespace: strip it, check where padding stands,
  // and restore the padding a writer left off.
  std::string clean;
  clean.reserve(text.size() + 2);
  size_t padding = 0;
  for (const char ch : text) {
    if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') continue;
    const bool alphabet = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                          (ch >= '0' && ch <= '9') || ch == '+' || ch == '/';
    if (ch == '=') {
      ++padding;
    } else if (!alphabet || padding > 0) {
      return false;  // a foreign character, or data after '='
    }
    clean.push_back(ch);
  }
  const size_t data = clean.size() - padding;
  if (data % 4 == 1 || padding > 2) return false;
  clean.resize(data);
  while (clean.size() % 4 != 0) clean.push_back('=');
  const size_t trailing = (4 - data % 4) % 4;
  out->assign(clean.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out->data()),
                                reinterpret_cast<const unsigned char*>(clean.data()),
                                static_cast<int>(clean.size()));
  if (n < 0) return false;
  out->resize(static_cast<size_t>(n) - trailing);
  return true;
}

}  // namespace flam
