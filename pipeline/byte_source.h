// ByteSource: the sequential bytes of one shard or input table, from a local file, an http(s) URL
// streamed with libcurl, or either of those with zstd (name ends in ".zst") or gzip (".gz")
// decompression on top. Memory is bounded by SourceOptions::buffer_bytes (plus the zstd window);
// nothing is buffered whole.
//
// Thread safety: a ByteSource is used by one thread at a time (not thread-safe); distinct
// sources are independent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace flam::pipeline {

// The `data.stream:` section for shard streams. The deadline and the average rate count the time
// read() waits for the network (a paused transfer whose consumer is busy does not count), so a
// trickling server fails the shard instead of holding the loader.
struct SourceOptions {
  double connect_timeout_seconds = 10;
  double low_speed_seconds = 30;   // abort an http transfer if < 1 byte/s for this long
  double deadline_seconds = 3600;  // total wait for one http stream; 0: none
  // After min_average_grace_seconds of waiting, fail a stream averaging less than this; 0: none.
  double min_average_bytes_per_second = 16384;
  double min_average_grace_seconds = 30;
  size_t buffer_bytes = 1 << 20;  // read buffer for files, bound of the http ring buffer
  // Asked by the reading thread at least every 0.2 s while an http or s3 read() waits; once it
  // returns true the read throws flam::Error(kNetwork, "transfer cancelled ...") without
  // retrying, so the owner of a read-ahead thread can stop it instead of waiting out a silent
  // server's low-speed limit. Empty: never cancelled.
  std::function<bool()> cancelled;
};

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Copies up to n bytes into buf; returns the count, 0 only at the end of the stream.
  // Throws flam::Error (kIo for files, kNetwork for http, kData for a corrupt zstd or gzip stream
  // or one that ends early) naming the file or URL, the byte offset and, for http, the status;
  // for a stream past its deadline or below its minimum average rate, kNetwork whose context
  // key names the data.stream key ("data.stream.deadline_seconds", ...).
  virtual size_t read(void* buf, size_t n) = 0;
  // The path or URL, for messages and a sample's __url__.
  virtual const std::string& name() const = 0;
  // Bytes delivered so far by read() (decompressed bytes for .zst).
  virtual int64_t offset() const = 0;
};

// Opens a local path (or "file://" URL), or an http:// / https:// URL; a name ending in ".zst" or
// ".gz" (before any '?' of a URL) is decompressed on the fly. Throws flam::Error(kIo) when a file
// cannot be opened; http errors (status >= 400, refused connection) surface at the first read.
std::unique_ptr<ByteSource> open_source(const std::string& path_or_url,
                                        const SourceOptions& options = {});

// True for remote names: "http://", "https://" and "s3://" (pipeline/s3.h).
bool is_url(const std::string& name);

// What an http server said when it refused a stream (status >= 400).
struct HttpFailure {
  long status = 0;
  std::string body;         // the start of the response body (at most 64 KiB): S3's XML error
  std::string retry_after;  // the Retry-After header, if any
};

// For pipeline/s3.cpp: a streamed GET of an http(s) `url` with extra request headers
// ("Name: value"). A status >= 400 fails the stream at read() (kNetwork, "http status N") after
// filling *failure. REQUIRES: failure outlives the source.
std::unique_ptr<ByteSource> open_http(const std::string& url,
                                      const std::vector<std::string>& headers,
                                      const SourceOptions& options, HttpFailure* failure);

}  // namespace flam::pipeline
