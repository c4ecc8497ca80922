// flam::Error: the one exception type for fatal failures at a boundary (bad config, unreadable
// file, failed collective). It carries where the failure is (file, line, key path, URL, byte
// offset) so that the message a user sees names the thing to fix. Per-item failures (a broken
// image, a 404) are values, not exceptions; bugs are FLAM_CHECK (core/check.h).
//
// Thread safety: an Error is an immutable value once thrown; any thread may throw one.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace flam {

// What the caller should do about a failure; cli/ maps these onto exit codes (core/exit_codes.h).
enum class ErrorKind {
  kUsage,     // bad command line: never retry
  kConfig,    // bad configuration: never retry
  kData,      // input data unusable beyond tolerance
  kIo,        // file system: missing, unreadable, disk full
  kNetwork,   // HTTP / socket failure
  kComm,      // a peer rank or collective failed: restart from the last checkpoint
  kInternal,  // anything else
};

const char* to_string(ErrorKind kind);

// Where a failure is. Empty strings and negative numbers mean "not known".
struct ErrorContext {
  std::string file;
  int64_t line = -1;  // 1-based
  std::string key;    // full key path, e.g. "train.optimizer.lr"
  std::string url;
  int64_t offset = -1;  // byte offset in the file or stream
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message, ErrorContext context = {});

  ErrorKind kind() const { return kind_; }
  const ErrorContext& context() const { return context_; }
  // The bare message, without the context prefix that what() carries.
  const std::string& message() const { return message_; }

 private:
  ErrorKind kind_;
  ErrorContext context_;
  std::string message_;
};

// Contexts with one known part, the common case at call sites.
ErrorContext at_file(const std::string& file, int64_t line = -1);
ErrorContext at_key(const std::string& key);

// Formats "file:line: key: url: offset N: message" with the parts that are known.
std::string format_error(const std::string& message, const ErrorContext& context);

}  // namespace flam
