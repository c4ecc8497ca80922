// ByteSource implementations: FileSource (read(2) on a descriptor), HttpSource (one libcurl easy
// handle driven by a private multi handle in pull fashion: the write callback fills a bounded
// buffer and pauses the transfer when it is full; read() drains it and resumes), ZstdSource
// (ZSTD_decompressStream over another source).
#include "pipeline/byte_source.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "pipeline/curl_check.h"
#include "pipeline/s3.h"

namespace flam::pipeline {
namespace {

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

std::string format_seconds(double s) {
  std::ostringstream out;
  out << s;
  return out.str();
}

ErrorContext context_for(const std::string& name, int64_t offset) {
  ErrorContext context;
  if (is_url(name)) {
    context.url = name;
  } else {
    context.file = name;
  }
  context.offset = offset;
  return context;
}

// ---------------------------------------------------------------------------------------------
class FileSource final : public ByteSource {
 public:
  explicit FileSource(std::string path) : name_(std::move(path)) {
    fd_ = ::open(name_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      throw Error(ErrorKind::kIo, std::string("cannot open: ") + std::strerror(errno),
                  context_for(name_, -1));
    }
    ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
  }
  ~FileSource() override { ::close(fd_); }

  size_t read(void* buf, size_t n) override {
    while (true) {
      ssize_t got = ::read(fd_, buf, n);
      if (got >= 0) {
        offset_ += got;
        return static_cast<size_t>(got);
      }
      if (errno == EINTR) continue;
      throw Error(ErrorKind::kIo, std::string("read failed: ") + std::strerror(errno),
                  context_for(name_, offset_));
    }
  }
  const std::string& name() const override { return name_; }
  int64_t offset() const override { return offset_; }

 private:
  std::string name_;
  int fd_ = -1;
  int64_t offset_ = 0;
};

// ---------------------------------------------------------------------------------------------
class HttpSource final : public ByteSource {
 public:
  HttpSource(std::string url, const SourceOptions& options,
             const std::vector<std::string>& headers = {}, HttpFailure* failure = nullptr)
      : name_(std::move(url)),
        options_(options),
        capacity_(std::max<size_t>(options.buffer_bytes, 64 << 10)),
        failure_(failure) {
    curl_init_once();
    easy_ = curl_easy_init();
    multi_ = curl_multi_init();
    if (easy_ == nullptr || multi_ == nullptr) {
      cleanup();
      throw Error(ErrorKind::kInternal, "curl init failed", context_for(name_, -1));
    }
    try {
      CURL_CHECK(curl_easy_setopt(easy_, CURLOPT_URL, name_.c_str()));
      CURL_CHECK(curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &HttpSource::on_write));
      CURL_CHECK(curl_easy_setopt(easy_, CURLOPT_WRITEDATA, this));
      CURL_CHECK(curl_easy_setopt(easy_, CURLOPT_ERRORBUFFER, error_buffer_));
      CURL_CHECK(curl_easy_setopt(easy_, CURLOPT_FAILONERROR, failure_ == nullptr ? 1L : 0L));
      if (failure_ != nullptr) {
        CURL_CHECK(curl_easy_setopt(easy_, CURLOPT_HEADERFUNCTION, &HttpSource::on_header));
        CURL_CHECK(curl_easy_setopt(easy_, CURLOPT_HEADERDATA, this));
      }
      for (const auto& h : headers) headers_ = curl_slist_append(headers_, h.c_str());
      if (headers_ != nullptr) CURL_CHECK(curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, headers_));
      CURL_CHECK(curl_easy_setopt(easy_, CURLOPT_FOLLOWLOCATION, 1L));
      CURL_CHECK(curl_easy_setopt(easy_, CURLOPT_MAXREDIRS, 5L));
      CURL_CHECK(curl_easy_setopt(easy_, CURLOPT_PROTOCOLS_STR, "http,https"));
      CURL_CHECK(curl_easy_setopt(easy_, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"));
      CURL_CHECK(curl_easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L));
      CURL_CHECK(curl_easy_setopt(easy_, CURLOPT_CONNECTTIMEOUT_MS,
                                  static_cast<long>(options.connect_timeout_seconds * 1000)));
      CURL_CHECK(curl_easy_setopt(easy_, CURLOPT_LOW_SPEED_LIMIT, 1L));
      CURL_CHECK(curl_easy_setopt(easy_, CURLOPT_LOW_SPEED_TIME,
                                  std::max(1L, static_cast<long>(options.low_speed_seconds))));
      CURL_CHECK(curl_easy_setopt(easy_, CURLOPT_USERAGENT, "flamboyance/0.1"));
      CURL_CHECK(curl_multi_add_handle(multi_, easy_));
    } catch (...) {
      cleanup();
      throw;
    }
  }
  ~HttpSource() override { cleanup(); }

  size_t read(void* out, size_t n) override {
    if (n == 0) return 0;
    while (available() == 0 && !finished_) {
      throw_if_cancelled();
      const SteadyClock::time_point start = SteadyClock::now();
      pump();
      waited_seconds_ += seconds_since(start);
      check_pace();
    }
    size_t k = std::min(n, available());
    if (k == 0) {
      finish_or_throw();
      return 0;
    }
    std::memcpy(out, buffer_.data() + head_, k);
    head_ += k;
    offset_ += k;
    if (head_ == buffer_.size()) {
      buffer_.clear();
      head_ = 0;
    }
    return k;
  }
  const std::string& name() const override { return name_; }
  int64_t offset() const override { return offset_; }

 private:
  size_t available() const { return buffer_.size() - head_; }

  static size_t on_header(char* data, size_t size, size_t count, void* user) {
    auto* self = static_cast<HttpSource*>(user);
    std::string_view line(data, size * count);
    constexpr std::string_view kRetryAfter = "retry-after:";
    if (line.size() > kRetryAfter.size()) {
      std::string lower(line.substr(0, kRetryAfter.size()));
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lower == kRetryAfter) {
        std::string_view value = line.substr(kRetryAfter.size());
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
          value.remove_prefix(1);
        }
        while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) {
          value.remove_suffix(1);
        }
        self->failure_->retry_after = std::string(value);
      }
    }
    return size * count;
  }

  static size_t on_write(char* data, size_t size, size_t count, void* user) {
    auto* self = static_cast<HttpSource*>(user);
    size_t bytes = size * count;
    if (self->failure_ != nullptr) {
      long status = 0;
      curl_easy_getinfo(self->easy_, CURLINFO_RESPONSE_CODE, &status);
      if (status >= 400) {
        self->failure_->status = status;
        const size_t room = (64u << 10) - std::min<size_t>(self->failure_->body.size(), 64u << 10);
        self->failure_->body.append(data, std::min(bytes, room));
        return bytes;
      }
    }
    // Accept a chunk into an empty buffer whatever its size (curl's chunks are bounded), else
    // only while under capacity; otherwise pause and get the same chunk again after resume.
    if (self->available() > 0 && self->available() + bytes > self->capacity_) {
      self->paused_ = true;
      return CURL_WRITEFUNC_PAUSE;
    }
    if (self->head_ > 0) {
      self->buffer_.erase(0, self->head_);
      self->head_ = 0;
    }
    self->buffer_.append(data, bytes);
    return bytes;
  }

  // Runs the transfer until some bytes arrived or it finished.
  void pump() {
    if (paused_) {
      paused_ = false;
      CURL_CHECK(curl_easy_pause(easy_, CURLPAUSE_CONT));
    }
    int running = 0;
    CURL_CHECK(curl_multi_perform(multi_, &running));
    if (available() > 0) return;
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &queued)) {
      if (msg->msg == CURLMSG_DONE) {
        finished_ = true;
        result_ = msg->data.result;
      }
    }
    if (finished_ || running == 0) {
      finished_ = true;
      return;
    }
    // Wait for the socket or curl's next timeout (bounded so pause/resume and a cancel stay
    // responsive).
    CURL_CHECK(curl_multi_poll(multi_, nullptr, 0, options_.cancelled ? 200 : 1000, nullptr));
  }

  void throw_if_cancelled() const {
    if (!options_.cancelled || !options_.cancelled()) return;
    throw Error(ErrorKind::kNetwork,
                "transfer cancelled after " + std::to_string(offset_ + available()) + " bytes",
                context_for(name_, offset_));
  }

  // The deadline and the average rate count only the time read() waited for the network, not
  // the time the consumer spent elsewhere while the transfer was paused.
  void check_pace() const {
    const int64_t received = offset_ + static_cast<int64_t>(available());
    if (options_.deadline_seconds > 0 && waited_seconds_ > options_.deadline_seconds) {
      ErrorContext context = context_for(name_, offset_);
      context.key = "data.stream.deadline_seconds";
      throw Error(ErrorKind::kNetwork,
                  "transfer deadline of " + format_seconds(options_.deadline_seconds) +
                      " s passed after " + std::to_string(received) + " bytes",
                  context);
    }
    if (options_.min_average_bytes_per_second > 0 &&
        waited_seconds_ > options_.min_average_grace_seconds &&
        static_cast<double>(received) < options_.min_average_bytes_per_second * waited_seconds_) {
      ErrorContext context = context_for(name_, offset_);
      context.key = "data.stream.min_average_bytes_per_second";
      throw Error(ErrorKind::kNetwork,
                  "average rate " +
                      std::to_string(
                          static_cast<int64_t>(static_cast<double>(received) / waited_seconds_)) +
                      " bytes/s is below the minimum of " +
                      std::to_string(static_cast<int64_t>(options_.min_average_bytes_per_second)) +
                      " bytes/s",
                  context);
    }
  }

  void finish_or_throw() {
    long status = 0;
    curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &status);
    if (result_ == CURLE_OK && failure_ != nullptr && status >= 400) {
      failure_->status = status;
      throw Error(ErrorKind::kNetwork, "http status " + std::to_string(status),
                  context_for(name_, offset_));
    }
    if (result_ == CURLE_OK) return;
    std::string what;
    ErrorKind kind = ErrorKind::kNetwork;
    if (result_ == CURLE_HTTP_RETURNED_ERROR) {
      what = "http status " + std::to_string(status);
    } else {
      what = std::string(curl_easy_strerror(result_));
      if (error_buffer_[0] != '\0') what += " (" + std::string(error_buffer_) + ")";
      if (status > 0) what += ", http status " + std::to_string(status);
      if (result_ == CURLE_PARTIAL_FILE) what = "connection closed early: " + what;
    }
    throw Error(kind, what, context_for(name_, offset_));
  }

  void cleanup() {
    if (multi_ != nullptr && easy_ != nullptr) curl_multi_remove_handle(multi_, easy_);
    if (easy_ != nullptr) curl_easy_cleanup(easy_);
    if (multi_ != nullptr) curl_multi_cleanup(multi_);
    if (headers_ != nullptr) curl_slist_free_all(headers_);
    easy_ = nullptr;
    multi_ = nullptr;
    headers_ = nullptr;
  }

  std::string name_;
  SourceOptions options_;
  size_t capacity_;
  double waited_seconds_ = 0;  // inside read(), waiting for bytes
  CURL* easy_ = nullptr;
  CURLM* multi_ = nullptr;
  curl_slist* headers_ = nullptr;
  HttpFailure* failure_ = nullptr;  // not owned; set: keep error bodies instead of failing early
  std::string buffer_;              // bytes received, not yet read, from head_ on
  size_t head_ = 0;
  bool paused_ = false;
  bool finished_ = false;
  CURLcode result_ = CURLE_OK;
  int64_t offset_ = 0;
  char error_buffer_[CURL_ERROR_SIZE] = {};
};

// ---------------------------------------------------------------------------------------------
class ZstdSource final : public ByteSource {
 public:
  explicit ZstdSource(std::unique_ptr<ByteSource> inner)
      : inner_(std::move(inner)), in_buffer_(ZSTD_DStreamInSize()) {
    stream_ = ZSTD_createDStream();
    if (stream_ == nullptr) {
      throw Error(ErrorKind::kInternal, "ZSTD_createDStream failed", context_for(name(), -1));
    }
    ZSTD_initDStream(stream_);
  }
  ~ZstdSource() override { ZSTD_freeDStream(stream_); }

  size_t read(void* buf, size_t n) override {
    if (n == 0 || done_) return 0;
    ZSTD_outBuffer out{buf, n, 0};
    while (out.pos == 0) {
      if (in_.pos == in_.size) {
        size_t got = inner_->read(in_buffer_.data(), in_buffer_.size());
        if (got == 0) {
          if (frame_open_) {
            throw Error(ErrorKind::kData,
                        "zstd stream truncated (ends inside a frame at compressed offset " +
                            std::to_string(inner_->offset()) + ")",
                        context_for(name(), offset_));
          }
          done_ = true;
          return 0;
        }
        in_ = ZSTD_inBuffer{in_buffer_.data(), got, 0};
      }
      size_t ret = ZSTD_decompressStream(stream_, &out, &in_);
      if (ZSTD_isError(ret)) {
        throw Error(ErrorKind::kData,
                    std::string("zstd: ") + ZSTD_getErrorName(ret) + " (compressed offset " +
                        std::to_string(inner_->offset() - static_cast<int64_t>(in_.size) +
                                       static_cast<int64_t>(in_.pos)) +
                        ")",
                    context_for(name(), offset_ + static_cast<int64_t>(out.pos)));
      }
      frame_open_ = ret != 0;
    }
    offset_ += static_cast<int64_t>(out.pos);
    return out.pos;
  }
  const std::string& name() const override { return inner_->name(); }
  int64_t offset() const override { return offset_; }

 private:
  std::unique_ptr<ByteSource> inner_;
  std::vector<char> in_buffer_;
  ZSTD_inBuffer in_{nullptr, 0, 0};
  ZSTD_DStream* stream_ = nullptr;
  bool frame_open_ = false;
  bool done_ = false;
  int64_t offset_ = 0;
};

// ---------------------------------------------------------------------------------------------
// gzip (or zlib) over another source; concatenated gzip members read as one stream, as gzip(1)
// does. The stream must end at the end of a member.
class GzipSource final : public ByteSource {
 public:
  explicit GzipSource(std::unique_ptr<ByteSource> inner)
      : inner_(std::move(inner)), in_buffer_(1 << 16) {
    if (inflateInit2(&stream_, 15 + 32) != Z_OK) {
      throw Error(ErrorKind::kInternal, "inflateInit2 failed", context_for(name(), -1));
    }
  }
  ~GzipSource() override { inflateEnd(&stream_); }

  size_t read(void* buf, size_t n) override {
    if (n == 0 || done_) return 0;
    const uInt want = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    stream_.next_out = static_cast<Bytef*>(buf);
    stream_.avail_out = want;
    while (stream_.avail_out == want) {
      if (stream_.avail_in == 0) {
        const size_t got = inner_->read(in_buffer_.data(), in_buffer_.size());
        if (got == 0) {
          if (member_open_) {
            throw Error(ErrorKind::kData,
                        "gzip stream truncated (ends inside a member at compressed offset " +
                            std::to_string(inner_->offset()) + ")",
                        context_for(name(), offset_));
          }
          done_ = true;
          return 0;
        }
        stream_.next_in = reinterpret_cast<Bytef*>(in_buffer_.data());
        stream_.avail_in = static_cast<uInt>(got);
      }
      if (!member_open_) {
        inflateReset(&stream_);
        member_open_ = true;
      }
      const int rc = inflate(&stream_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        member_open_ = false;
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        throw Error(ErrorKind::kData,
                    std::string("gzip: ") + (stream_.msg ? stream_.msg : "corrupt stream") +
                        " (compressed offset " +
                        std::to_string(inner_->offset() - static_cast<int64_t>(stream_.avail_in)) +
                        ")",
                    context_for(name(), offset_));
      }
    }
    const size_t produced = want - stream_.avail_out;
    offset_ += static_cast<int64_t>(produced);
    return produced;
  }
  const std::string& name() const override { return inner_->name(); }
  int64_t offset() const override { return offset_; }

 private:
  std::unique_ptr<ByteSource> inner_;
  std::vector<char> in_buffer_;
  z_stream stream_{};
  bool member_open_ = false;
  bool done_ = false;
  int64_t offset_ = 0;
};

bool name_ends_with(const std::string& name, std::string_view suffix) {
  std::string_view base(name);
  if (is_url(name)) base = base.substr(0, base.find_first_of("?#"));
  return base.size() >= suffix.size() && base.substr(base.size() - suffix.size()) == suffix;
}

}  // namespace

bool is_url(const std::string& name) {
  return starts_with(name, "http://") || starts_with(name, "https://") || is_s3_url(name);
}

std::unique_ptr<ByteSource> open_http(const std::string& url,
                                      const std::vector<std::string>& headers,
                                      const SourceOptions& options, HttpFailure* failure) {
  return std::make_unique<HttpSource>(url, options, headers, failure);
}

std::unique_ptr<ByteSource> open_source(const std::string& path_or_url,
                                        const SourceOptions& options) {
  std::unique_ptr<ByteSource> source;
  if (is_s3_url(path_or_url)) {
    source = open_s3_source(path_or_url, options);
  } else if (is_url(path_or_url)) {
    source = std::make_unique<HttpSource>(path_or_url, options);
  } else if (starts_with(path_or_url, "file://")) {
    source = std::make_unique<FileSource>(path_or_url.substr(7));
  } else {
    source = std::make_unique<FileSource>(path_or_url);
  }
  if (name_ends_with(path_or_url, ".zst")) {
    source = std::make_unique<ZstdSource>(std::move(source));
  } else if (name_ends_with(path_or_url, ".gz")) {
    source = std::make_unique<GzipSource>(std::move(source));
  }
  return source;
}

}  // namespace flam::pipeline
