// Downloader: fetches many URLs at once on libcurl's multi interface, for `flam shard`.
// Per transfer: connect and total timeouts, a low-speed limit, a minimum average rate, any
// Content-Encoding libcurl decodes (gzip, deflate), at most max_redirects redirects,
// http/https only (also after a redirect: file:// and the rest are refused), the body size capped
// while streaming, X-Robots-Tag opt-outs honoured. Per downloader: at most `concurrency`
// transfers in flight, at most `per_host_connections` of them to one host, one DNS cache shared
// by all transfers. Timeouts, 5xx and 429 are retried after a backoff (429/503 honour a numeric
// Retry-After, capped). Every submitted URL comes back exactly once, as a value: a body, or a
// failure reason (see FetchResult).
//
// Thread safety: one thread owns a Downloader (submit/poll from that thread only). Result
// messages are libcurl's fixed texts, never timings, so they are reproducible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "shard/options.h"

namespace flam::shard {

struct FetchResult {
  uint64_t tag = 0;  // the caller's tag from submit()
  std::string body;  // the response body when ok()
  // "" on success, else one of: bad_url, bad_scheme, bad_response (the reply is not HTTP), dns,
  // connect, timeout (connect or total deadline, or the low-speed limit), too_slow (average
  // rate under the minimum), http_404, http_429, http_4xx, http_5xx, http_other, too_large,
  // redirect_loop, opted_out, truncated, network.
  std::string reason;
  std::string message;  // short detail ("HTTP 503", libcurl's error text)
  int http_status = 0;  // of the last response, 0 if none
  int attempts = 0;     // requests made (1 + retries used)

  bool ok() const { return reason.empty(); }
};

// True when an X-Robots-Tag header value forbids keeping the content for AI training: one of
// noai, noimageai, noindex, noimageindex, either for all agents or for an agent named like
// `agent` (directives "agent: noai, noindex" apply to that agent only). Case-insensitive.
bool robots_tag_opts_out(const std::string& value, const std::string& agent);

class Downloader {
 public:
  // Throws flam::Error(kInternal) if libcurl cannot be set up.
  explicit Downloader(const DownloadOptions& options);
  ~Downloader();
  Downloader(const Downloader&) = delete;
  Downloader& operator=(const Downloader&) = delete;

  // Queues `url`; its FetchResult carries `tag`. Transfers start inside poll().
  void submit(uint64_t tag, std::string url);
  // Drives transfers for up to `timeout_ms` (less when something finishes) and appends the
  // finished results to *done, in completion order.
  void poll(int timeout_ms, std::vector<FetchResult>* done);
  // Submitted URLs whose result has not been returned yet (queued, in flight, or waiting to retry).
  size_t pending() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flam::shard
