#include "shard/downloader.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <deque>
#include <map>
#include <thread>

#include "core/check.h"
#include "core/clock.h"
#include "core/error.h"
#include "pipeline/curl_check.h"

namespace flam::shard {
namespace {

using Clock = SteadyClock;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

bool has_http_scheme(const std::string& url) {
  std::string head = lower(url.substr(0, 8));
  return head.rfind("http://", 0) == 0 || head.rfind("https://", 0) == 0;
}

// The host part of an http(s) URL, lower-cased (for the per-host cap; "" if unparsable).
std::string host_of(const std::string& url) {
  size_t start = url.find("://");
  if (start == std::string::npos) return "";
  start += 3;
  size_t end = url.find_first_of("/?#", start);
  std::string authority = url.substr(start, end == std::string::npos ? end : end - start);
  size_t at = authority.rfind('@');
  if (at != std::string::npos) authority = authority.substr(at + 1);
  return lower(authority);
}

struct Job {
  uint64_t tag = 0;
  std::string url;
  std::string host;
  int attempts = 0;
  Clock::time_point not_before{};
  // Per attempt:
  std::string body;
  bool robots_opt_out = false;  // of the current (last) response
  double retry_after = -1;      // seconds, from the current response
  bool aborted_too_large = false;
  bool aborted_opt_out = false;
  bool aborted_too_slow = false;
  Clock::time_point started{};
  CURL* easy = nullptr;
  const DownloadOptions* options = nullptr;  // the owning downloader's
  const std::string* agent = nullptr;        // its user agent's product name
};

}  // namespace

bool robots_tag_opts_out(const std::string& value, const std::string& agent) {
  static const char* kTokens[] = {"noai", "noimageai", "noindex", "noimageindex"};
  std::string v = lower(value);
  std::string me = lower(agent);
  // Directives are comma-separated; "name: a, b" scopes the following directives to `name`.
  bool applies = true;
  size_t pos = 0;
  while (pos <= v.size()) {
    size_t comma = v.find(',', pos);
    std::string part = trim(v.substr(pos, comma == std::string::npos ? comma : comma - pos));
    size_t colon = part.find(':');
    if (colon != std::string::npos) {
      std::string name = trim(part.substr(0, colon));
      applies = name.empty() || (!me.empty() && me.find(name) != std::string::npos);
      part = trim(part.substr(colon + 1));
    }
    if (applies) {
      for (const char* t : kTokens) {
        if (part == t) return true;
      }
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return false;
}

struct Downloader::Impl {
  DownloadOptions options;
  std::string agent_name;  // the user agent's product token, for scoped X-Robots-Tag directives
  CURLM* multi = nullptr;
  CURLSH* share = nullptr;
  std::deque<std::unique_ptr<Job>> queue;     // waiting for a slot
  std::vector<std::unique_ptr<Job>> waiting;  // waiting for their retry time
  std::map<CURL*, std::unique_ptr<Job>> active;
  std::map<std::string, int> per_host;
  std::vector<CURL*> idle_handles;
  std::vector<FetchResult> ready;  // finished without a transfer (bad URL)
  size_t pending = 0;

  static size_t on_header(char* data, size_t size, size_t n, void* user) {
    Job* job = static_cast<Job*>(user);
    std::string line(data, size * n);
    if (line.rfind("HTTP/", 0) == 0) {  // a new response (after a redirect or 1xx)
      job->robots_opt_out = false;
      job->retry_after = -1;
      return size * n;
    }
    size_t colon = line.find(':');
    if (colon == std::string::npos) return size * n;
    std::string name = lower(trim(line.substr(0, colon)));
    std::string value = trim(line.substr(colon + 1));
    if (name == "x-robots-tag") {
      job->robots_opt_out = job->robots_opt_out || robots_tag_opts_out(value, *job->agent);
    } else if (name == "retry-after") {
      char* end = nullptr;
      double seconds = std::strtod(value.c_str(), &end);
      if (end != value.c_str() && *end == '\0' && seconds >= 0) job->retry_after = seconds;
    }
    return size * n;
  }

  static size_t on_body(char* data, size_t size, size_t n, void* user) {
    Job* job = static_cast<Job*>(user);
    size_t bytes = size * n;
    if (job->robots_opt_out && job->options->respect_opt_out) {
      job->aborted_opt_out = true;
      return 0;  // abort: CURLE_WRITE_ERROR
    }
    if (static_cast<int64_t>(job->body.size() + bytes) > job->options->max_body_bytes) {
      job->aborted_too_large = true;
      return 0;
    }
    if (job->body.empty()) {
      curl_off_t length = -1;
      if (curl_easy_getinfo(job->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) == CURLE_OK &&
          length > 0 && length <= job->options->max_body_bytes) {
        job->body.reserve(static_cast<size_t>(length));
      }
    }
    job->body.append(data, bytes);
    return bytes;
  }

  // Aborts a transfer whose average rate, after the grace time, is under the configured minimum.
  static int on_progress(void* user, curl_off_t, curl_off_t now_bytes, curl_off_t, curl_off_t) {
    Job* job = static_cast<Job*>(user);
    const double minimum = job->options->min_average_bytes_per_second;
    const double elapsed = seconds_since(job->started);
    if (minimum > 0 && elapsed > job->options->min_average_grace_seconds &&
        static_cast<double>(now_bytes) < minimum * elapsed) {
      job->aborted_too_slow = true;
      return 1;  // abort: CURLE_ABORTED_BY_CALLBACK
    }
    return 0;
  }

  CURL* take_handle() {
    if (!idle_handles.empty()) {
      CURL* h = idle_handles.back();
      idle_handles.pop_back();
      curl_easy_reset(h);
      return h;
    }
    CURL* h = curl_easy_init();
    if (!h) throw Error(ErrorKind::kInternal, "curl_easy_init failed");
    return h;
  }

  void start(std::unique_ptr<Job> job) {
    CURL* h = take_handle();
    job->easy = h;
    job->body.clear();
    job->robots_opt_out = false;
    job->retry_after = -1;
    job->aborted_too_large = job->aborted_opt_out = job->aborted_too_slow = false;
    job->started = Clock::now();
    ++job->attempts;
    const auto ms = [](double s) { return static_cast<long>(s * 1000.0); };
    CURL_CHECK(curl_easy_setopt(h, CURLOPT_URL, job->url.c_str()));
    CURL_CHECK(curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https"));
    CURL_CHECK(curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"));
    CURL_CHECK(curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L));
    CURL_CHECK(curl_easy_setopt(h, CURLOPT_MAXREDIRS, static_cast<long>(options.max_redirects)));
    CURL_CHECK(curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ms(options.connect_timeout_seconds)));
    CURL_CHECK(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms(options.total_timeout_seconds)));
    if (options.low_speed_bytes_per_second > 0) {
      CURL_CHECK(curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT,
                                  static_cast<long>(options.low_speed_bytes_per_second)));
      CURL_CHECK(curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                                  static_cast<long>(std::max(1.0, options.low_speed_seconds))));
    }
    CURL_CHECK(curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
                                static_cast<curl_off_t>(options.max_body_bytes)));
    CURL_CHECK(curl_easy_setopt(h, CURLOPT_USERAGENT, options.user_agent.c_str()));
    // "": every encoding this libcurl decodes (gzip, deflate, ...); the body arrives decoded.
    CURL_CHECK(curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""));
    CURL_CHECK(curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &Impl::on_progress));
    CURL_CHECK(curl_easy_setopt(h, CURLOPT_XFERINFODATA, job.get()));
    CURL_CHECK(curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L));
    CURL_CHECK(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L));
    CURL_CHECK(curl_easy_setopt(h, CURLOPT_SHARE, share));
    CURL_CHECK(curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &Impl::on_header));
    CURL_CHECK(curl_easy_setopt(h, CURLOPT_HEADERDATA, job.get()));
    CURL_CHECK(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Impl::on_body));
    CURL_CHECK(curl_easy_setopt(h, CURLOPT_WRITEDATA, job.get()));
    CURL_CHECK(curl_easy_setopt(h, CURLOPT_PRIVATE, job.get()));
    CURL_CHECK(curl_multi_add_handle(multi, h));
    ++per_host[job->host];
    active.emplace(h, std::move(job));
  }

  // Moves due retries to the front of the queue and starts what the caps allow.
  void schedule() {
    Clock::time_point now = Clock::now();
    for (auto it = waiting.begin(); it != waiting.end();) {
      if ((*it)->not_before <= now) {
        queue.push_front(std::move(*it));
        it = waiting.erase(it);
      } else {
        ++it;
      }
    }
    const size_t cap = static_cast<size_t>(options.concurrency);
    for (auto it = queue.begin(); it != queue.end() && active.size() < cap;) {
      if (per_host[(*it)->host] < options.per_host_connections) {
        std::unique_ptr<Job> job = std::move(*it);
        it = queue.erase(it);
        start(std::move(job));
      } else {
        ++it;
      }
    }
  }

  // Classifies a finished attempt. Returns true when it should be retried.
  bool classify(Job& job, CURLcode rc, FetchResult* r) {
    long status = 0;
    curl_easy_getinfo(job.easy, CURLINFO_RESPONSE_CODE, &status);
    r->http_status = static_cast<int>(status);
    if (job.aborted_opt_out || (rc == CURLE_OK && job.robots_opt_out && options.respect_opt_out)) {
      r->reason = "opted_out";
      r->message = "X-Robots-Tag forbids AI use";
      return false;
    }
    if (job.aborted_too_slow) {
      r->reason = "too_slow";
      r->message = "average rate under " +
                   std::to_string(static_cast<int64_t>(options.min_average_bytes_per_second)) +
                   " bytes/s (shard.download.min_average_bytes_per_second)";
      return false;
    }
    if (job.aborted_too_large || rc == CURLE_FILESIZE_EXCEEDED) {
      r->reason = "too_large";
      r->message = "body over " + std::to_string(options.max_body_bytes) + " bytes";
      return false;
    }
    if (rc == CURLE_OK) {
      if (status >= 200 && status < 300) return false;
      r->message = "HTTP " + std::to_string(status);
      if (status == 404) {
        r->reason = "http_404";
      } else if (status == 429) {
        r->reason = "http_429";
        return true;
      } else if (status >= 500 && status < 600) {
        r->reason = "http_5xx";
        return true;
      } else if (status >= 400 && status < 500) {
        r->reason = "http_4xx";
      } else {
        r->reason = "http_other";
      }
      return false;
    }
    r->message = curl_easy_strerror(rc);
    switch (rc) {
      case CURLE_OPERATION_TIMEDOUT:
        r->reason = "timeout";
        r->message += " (shard.download.total_timeout_seconds or low_speed_*)";
        return true;
      case CURLE_COULDNT_RESOLVE_HOST:
        r->reason = "dns";
        break;
      case CURLE_COULDNT_CONNECT:
        r->reason = "connect";
        break;
      case CURLE_TOO_MANY_REDIRECTS:
        r->reason = "redirect_loop";
        break;
      case CURLE_UNSUPPORTED_PROTOCOL:
        // Without any HTTP status the server's reply was not HTTP (curl refuses HTTP/0.9);
        // with one, a redirect pointed at a scheme other than http(s).
        r->reason = status == 0 ? "bad_response" : "bad_scheme";
        break;
      case CURLE_WEIRD_SERVER_REPLY:
        r->reason = "bad_response";
        break;
      case CURLE_URL_MALFORMAT:
        r->reason = "bad_url";
        break;
      case CURLE_PARTIAL_FILE:
      case CURLE_GOT_NOTHING:
      case CURLE_RECV_ERROR:
        r->reason = "truncated";
        break;
      default:
        r->reason = "network";
        break;
    }
    return false;
  }

  void finish(CURL* h, CURLcode rc, std::vector<FetchResult>* done) {
    auto it = active.find(h);
    FLAM_CHECK(it != active.end()) << "a finished transfer we did not start";
    std::unique_ptr<Job> job = std::move(it->second);
    active.erase(it);
    CURL_CHECK(curl_multi_remove_handle(multi, h));
    --per_host[job->host];
    FetchResult r;
    r.tag = job->tag;
    bool retry = classify(*job, rc, &r);
    job->easy = nullptr;
    idle_handles.push_back(h);
    if (retry && job->attempts <= options.retries) {
      double wait = options.retry_backoff_seconds * static_cast<double>(1 << (job->attempts - 1));
      if (job->retry_after >= 0 && (r.http_status == 429 || r.http_status == 503)) {
        wait = std::min(job->retry_after, options.max_retry_after_seconds);
      }
      job->not_before = Clock::now() + std::chrono::microseconds(static_cast<int64_t>(wait * 1e6));
      waiting.push_back(std::move(job));
      return;
    }
    r.attempts = job->attempts;
    if (r.ok()) r.body = std::move(job->body);
    done->push_back(std::move(r));
    --pending;
  }

  int wait_budget_ms(int timeout_ms) const {
    if (waiting.empty()) return timeout_ms;
    Clock::time_point next = Clock::time_point::max();
    for (const auto& j : waiting) next = std::min(next, j->not_before);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()).count();
    return static_cast<int>(std::clamp<int64_t>(ms + 1, 0, timeout_ms));
  }
};

Downloader::Downloader(const DownloadOptions& options) : impl_(std::make_unique<Impl>()) {
  pipeline::curl_init_once();
  impl_->options = options;
  impl_->agent_name = options.user_agent.substr(0, options.user_agent.find_first_of("/ "));
  impl_->multi = curl_multi_init();
  impl_->share = curl_share_init();
  if (!impl_->multi || !impl_->share) throw Error(ErrorKind::kInternal, "libcurl init failed");
  if (curl_share_setopt(impl_->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK) {
    throw Error(ErrorKind::kInternal, "curl_share_setopt(CURL_LOCK_DATA_DNS) failed");
  }
  CURL_CHECK(curl_multi_setopt(impl_->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                               static_cast<long>(options.per_host_connections)));
  CURL_CHECK(curl_multi_setopt(impl_->multi, CURLMOPT_MAXCONNECTS,
                               static_cast<long>(options.concurrency)));
}

Downloader::~Downloader() {
  for (auto& [h, job] : impl_->active) {
    curl_multi_remove_handle(impl_->multi, h);
    curl_easy_cleanup(h);
  }
  for (CURL* h : impl_->idle_handles) curl_easy_cleanup(h);
  curl_multi_cleanup(impl_->multi);
  curl_share_cleanup(impl_->share);
}

void Downloader::submit(uint64_t tag, std::string url) {
  ++impl_->pending;
  auto job = std::make_unique<Job>();
  job->tag = tag;
  if (url.empty() || !has_http_scheme(url)) {
    FetchResult r;
    r.tag = tag;
    r.reason = url.empty() ? "bad_url" : "bad_scheme";
    r.message = url.empty() ? "empty URL" : "only http and https URLs are fetched";
    impl_->ready.push_back(std::move(r));
    return;
  }
  job->host = host_of(url);
  job->options = &impl_->options;
  job->agent = &impl_->agent_name;
  job->url = std::move(url);
  impl_->queue.push_back(std::move(job));
}

void Downloader::poll(int timeout_ms, std::vector<FetchResult>* done) {
  Impl& m = *impl_;
  if (!m.ready.empty()) {
    m.pending -= m.ready.size();
    for (auto& r : m.ready) done->push_back(std::move(r));
    m.ready.clear();
    timeout_ms = 0;
  }
  m.schedule();
  if (m.active.empty()) {
    int wait = m.wait_budget_ms(timeout_ms);
    if (!m.waiting.empty() && wait > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(wait));
    m.schedule();
    if (m.active.empty()) return;
    timeout_ms = 0;
  }
  int running = 0;
  CURL_CHECK(curl_multi_perform(m.multi, &running));
  CURL_CHECK(curl_multi_poll(m.multi, nullptr, 0, m.wait_budget_ms(timeout_ms), nullptr));
  CURL_CHECK(curl_multi_perform(m.multi, &running));
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(m.multi, &left)) {
    if (msg->msg == CURLMSG_DONE) m.finish(msg->easy_handle, msg->data.result, done);
  }
  m.schedule();
}

size_t Downloader::pending() const { return impl_->pending; }

}  // namespace flam::shard
