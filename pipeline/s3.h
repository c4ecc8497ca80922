// S3Client: objects in an S3-compatible store (AWS, MinIO, moto, ...) named "s3://bucket/key",
// over libcurl with AWS Signature V4 (HMAC-SHA256 from OpenSSL). Used wherever a shard, a URL
// table, an MMC4 document file, a tokenizer, weights or a checkpoint lives in a bucket.
//
// Where it connects and as whom comes from the environment only, never from a config file, and
// the secret never appears in a message or a log line:
//   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (optional), or the profile
//   AWS_PROFILE (default "default") of AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials);
//   AWS_REGION (or AWS_DEFAULT_REGION; default us-east-1);
//   AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (default https://s3.REGION.amazonaws.com);
//   AWS_S3_ADDRESSING_STYLE: "path" (http://endpoint/bucket/key, the default with an endpoint)
//   or "virtual" (http://bucket.endpoint/key, the default for AWS);
//   FLAM_S3_CACHE: the folder of local_copy()'s cache (default $XDG_CACHE_HOME/flamboyance/s3,
//   else ~/.cache/flamboyance/s3).
//
// Every request is retried with exponential backoff (Retry-After honoured) on a connection error
// (refused, reset), 500, 502, 503 and 504 and on the S3 codes SlowDown, RequestTimeout and
// InternalError; a streamed GET that fails mid-object resumes with a Range request at the byte it
// had reached. Failures that remain throw flam::Error whose context URL is the s3:// name and whose
// message carries the HTTP status and the S3 error code:
//   kConfig: bad credentials (InvalidAccessKeyId, SignatureDoesNotMatch, ExpiredToken,
//            AccessDenied; a hint names the variables to check), a bucket that does not exist
//            (NoSuchBucket), a malformed s3:// name;
//   kIo:     a missing key (NoSuchKey) and any other refusal by the store;
//   kNetwork: retries exhausted, or a deadline / minimum rate of SourceOptions missed.
//
// Thread safety: an S3Client is immutable after construction; its methods may be called from any
// number of threads at once (each request has its own curl handle).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/byte_source.h"

namespace flam::pipeline {

// "s3://bucket/key" split; key may be empty ("s3://bucket" or "s3://bucket/").
struct S3Url {
  std::string bucket;
  std::string key;
};

// True for names starting "s3://".
bool is_s3_url(const std::string& name);
// Throws flam::Error(kConfig) naming `url` when it is not "s3://BUCKET[/KEY]".
S3Url parse_s3_url(const std::string& url);

struct S3Object {
  std::string url;  // s3://bucket/key
  int64_t size = 0;
  std::string etag;  // as the store gives it (quotes included); changes with the content
};

struct S3Options {
  int max_attempts = 8;          // per request, the first included
  double backoff_seconds = 0.1;  // before the second attempt; doubles after each, capped at 5 s
  // Multipart upload above this size, in parts of this size (S3: at least 5 MiB but the last).
  size_t part_bytes = 8 << 20;
  int list_page_keys = 1000;                 // ListObjectsV2 max-keys per page
  int64_t max_get_bytes = int64_t{1} << 32;  // get(): refuse a larger object (byte limit)
  // Connect timeout, low-speed limit, total deadline and minimum average rate of each transfer;
  // the deadline and the minimum average rate count every attempt of a streamed GET together.
  SourceOptions stream;
  // Where local_copy() keeps objects; empty: FLAM_S3_CACHE or the default above.
  std::string cache_dir;
};

class S3Client {
 public:
  // Reads the environment (above). Throws flam::Error(kConfig) when no credentials are found or
  // the endpoint is malformed; the message names the variables, never their values.
  explicit S3Client(S3Options options = {});
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  // A streamed GET; nothing is buffered beyond options.stream.buffer_bytes. Errors surface at
  // read() as described above.
  std::unique_ptr<ByteSource> open(const std::string& url) const;
  // The same with other deadlines, rates and buffer size.
  std::unique_ptr<ByteSource> open(const std::string& url, const SourceOptions& stream) const;
  // The whole object (at most max_get_bytes).
  std::string get(const std::string& url) const;
  // The object's size, or nullopt when the key does not exist.
  std::optional<int64_t> head(const std::string& url) const;
  // The object's size and ETag, or nullopt when the key does not exist.
  std::optional<S3Object> stat(const std::string& url) const;
  // Streams the object into the local file `path` (parent folders created) through a temporary
  // name unique to this process and thread, renamed into place once complete, so concurrent
  // downloads of one object (ranks sharing a node) never see a partial file. Throws as open()
  // does, kIo naming `path` when it cannot be written.
  void download(const std::string& url, const std::string& path) const;
  // A local file for readers that need one (mmap, torch's pickle loader, a folder walk):
  //   "s3://bucket/key"     -> CACHE/bucket/key, the object's bytes;
  //   "s3://bucket/prefix/" -> CACHE/bucket/prefix/, every object under the prefix at its
  //                            relative path (kIo naming the URL when there is none).
  // An object already in the cache with the same size and ETag (recorded in CACHE/.etag/) is not
  // fetched again. Throws kIo naming the URL for a missing key, kData for a key that cannot be a
  // local path (an empty, "." or ".." segment).
  std::string local_copy(const std::string& url) const;
  // Stores `body` under `url`: one PUT up to part_bytes, a multipart upload above (aborted on
  // failure, so no partial object is ever visible).
  void put(const std::string& url, std::string_view body) const;
  // Stores the local file `path` (multipart, read part by part: memory is one part).
  void put_file(const std::string& url, const std::string& path) const;
  // Every object whose key starts with the key of `url_prefix`, sorted by key; follows
  // ListObjectsV2 continuation tokens to the end.
  std::vector<S3Object> list(const std::string& url_prefix) const;
  // Deletes the object (no error when it does not exist).
  void remove(const std::string& url) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The process's client, made from the environment on first use with default options (thread-safe
// initialisation). Throws like S3Client's constructor.
const S3Client& default_s3_client();

// `name` itself when it is not an s3:// name, else default_s3_client().local_copy(name): the
// way a reader of local files (weights, a checkpoint.pt, an HF folder) accepts s3:// names.
std::string local_path_for(const std::string& name);

// open_source() for s3:// names: default_s3_client() with `options` as the stream options.
std::unique_ptr<ByteSource> open_s3_source(const std::string& url, const SourceOptions& options);

}  // namespace flam::pipeline
