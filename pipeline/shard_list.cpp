#include "pipeline/shard_list.h"

#include <fstream>
#include <sstream>

#include "core/error.h"
#include "pipeline/byte_source.h"
#include "pipeline/s3.h"

namespace flam::pipeline {
namespace {

constexpr size_t kMaxShards = 10'000'000;

[[noreturn]] void malformed(const std::string& spec, const std::string& why) {
  throw Error(ErrorKind::kConfig, "shard list: " + why + " in '" + spec + "'");
}

bool parse_index(const std::string& text, int64_t& value) {
  if (text.empty() || text.size() > 18) return false;
  value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  return true;
}

// The alternatives of one brace group's body: "a,b,c" or "000..099".
std::vector<std::string> alternatives(const std::string& body, const std::string& spec) {
  std::vector<std::string> out;
  size_t dots = body.find("..");
  if (dots != std::string::npos) {
    std::string lo_text = body.substr(0, dots), hi_text = body.substr(dots + 2);
    int64_t lo = 0, hi = 0;
    if (!parse_index(lo_text, lo) || !parse_index(hi_text, hi)) {
      malformed(spec, "range '{" + body + "}' is not two non-negative integers");
    }
    if (lo > hi) malformed(spec, "descending range '{" + body + "}'");
    if (static_cast<uint64_t>(hi - lo) >= kMaxShards) malformed(spec, "range too large");
    // Zero padding as braceexpand: a leading zero in either bound pads to the widest bound.
    bool padded =
        (lo_text.size() > 1 && lo_text[0] == '0') || (hi_text.size() > 1 && hi_text[0] == '0');
    size_t width = padded ? std::max(lo_text.size(), hi_text.size()) : 0;
    for (int64_t i = lo; i <= hi; ++i) {
      std::string s = std::to_string(i);
      if (s.size() < width) s.insert(0, width - s.size(), '0');
      out.push_back(std::move(s));
    }
    return out;
  }
  if (body.find(',') == std::string::npos) malformed(spec, "brace group '{" + body + "}'");
  size_t start = 0;
  while (true) {
    size_t comma = body.find(',', start);
    out.push_back(body.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

void expand_braces(const std::string& spec, std::vector<std::string>& out) {
  std::vector<std::string> partial{""};
  size_t i = 0;
  while (i < spec.size()) {
    size_t open = spec.find_first_of("{}", i);
    if (open == std::string::npos) {
      for (auto& p : partial) p += spec.substr(i);
      break;
    }
    if (spec[open] == '}') malformed(spec, "unbalanced '}'");
    size_t close = spec.find_first_of("{}", open + 1);
    if (close == std::string::npos || spec[close] == '{') {
      malformed(spec, close == std::string::npos ? "unbalanced '{'" : "nested braces");
    }
    std::string literal = spec.substr(i, open - i);
    std::vector<std::string> alts = alternatives(spec.substr(open + 1, close - open - 1), spec);
    if (partial.size() * alts.size() > kMaxShards) malformed(spec, "expansion too large");
    std::vector<std::string> next;
    next.reserve(partial.size() * alts.size());
    for (const auto& p : partial) {
      for (const auto& a : alts) next.push_back(p + literal + a);
    }
    partial.swap(next);
    i = close + 1;
  }
  for (auto& p : partial) out.push_back(std::move(p));
}

bool is_list_file(const std::string& spec) {
  return (!is_url(spec) || is_s3_url(spec)) && spec.size() > 4 &&
         spec.compare(spec.size() - 4, 4, ".txt") == 0;
}

// One shard per line, blank lines and '#' comments skipped, each line itself expanded.
void expand_lines(std::istream& in, std::vector<std::string>& out) {
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.pop_back();
    }
    size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    expand_braces(line.substr(first), out);
  }
}

}  // namespace

std::vector<std::string> expand_shard_list(const std::vector<std::string>& specs) {
  std::vector<std::string> out;
  for (const auto& spec : specs) {
    if (spec.empty()) malformed(spec, "empty shard spec");
    if (is_s3_url(spec) && spec.back() == '/') {
      for (const S3Object& object : default_s3_client().list(spec)) {
        const std::string& u = object.url;
        const bool tar = (u.size() > 4 && u.compare(u.size() - 4, 4, ".tar") == 0) ||
                         (u.size() > 8 && u.compare(u.size() - 8, 8, ".tar.zst") == 0);
        if (tar) out.push_back(u);
      }
      continue;
    }
    if (spec[0] != '@' && !is_list_file(spec)) {
      expand_braces(spec, out);
      continue;
    }
    std::string path = spec[0] == '@' ? spec.substr(1) : spec;
    if (is_s3_url(path)) {
      std::istringstream in(default_s3_client().get(path));
      expand_lines(in, out);
      continue;
    }
    std::ifstream in(path);
    if (!in) {
      ErrorContext context;
      context.file = path;
      throw Error(ErrorKind::kIo, "cannot read shard list file", context);
    }
    expand_lines(in, out);
  }
  return out;
}

}  // namespace flam::pipeline
