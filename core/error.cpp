#include "core/error.h"

namespace flam {

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kUsage:
      return "usage";
    case ErrorKind::kConfig:
      return "config";
    case ErrorKind::kData:
      return "data";
    case ErrorKind::kIo:
      return "io";
    case ErrorKind::kNetwork:
      return "network";
    case ErrorKind::kComm:
      return "comm";
    case ErrorKind::kInternal:
      return "internal";
  }
  return "unknown";
}

ErrorContext at_file(const std::string& file, int64_t line) {
  ErrorContext c;
  c.file = file;
  c.line = line;
  return c;
}

ErrorContext at_key(const std::string& key) {
  ErrorContext c;
  c.key = key;
  return c;
}

std::string format_error(const std::string& message, const ErrorContext& c) {
  std::string out;
  if (!c.file.empty()) {
    out += c.file;
    if (c.line >= 0) out += ":" + std::to_string(c.line);
    out += ": ";
  }
  if (!c.key.empty()) out += c.key + ": ";
  if (!c.url.empty()) out += c.url + ": ";
  if (c.offset >= 0) out += "offset " + std::to_string(c.offset) + ": ";
  return out + message;
}

Error::Error(ErrorKind kind, const std::string& message, ErrorContext context)
    : std::runtime_error(format_error(message, context)),
      kind_(kind),
      context_(std::move(context)),
      message_(message) {}

}  // namespace flam
