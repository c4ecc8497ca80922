// ByteSource implementations: FileSource (read(2) on a descriptor), HttpSource (one libcurl easy
// handle driven by a private multi handle in pull fashion: the write callback fills a bounded
// buffer and pauses the transfer when it is full; read() drains it and resumes), ZstdSource
// (ZSTD_decompressStream over another source).
#include "pipeline/byte_source.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace flam::pipeline {
namespace {

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
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
// The one checking wrapper for curl's setup calls: a failure there is a bug or a libcurl
// without a needed feature, reported with the option's name.
void curl_check(CURLcode code, const char* what) {
  if (code != CURLE_OK) {
    throw Error(ErrorKind::kInternal,
                std::string("curl ") + what + " failed: " + curl_easy_strerror(code));
  }
}
void curl_check(CURLMcode code, const char* what) {
  if (code != CURLM_OK) {
    throw Error(ErrorKind::kInternal,
                std::string("curl ") + what + " failed: " + curl_multi_strerror(code));
  }
}

class HttpSource final : public ByteSource {
 public:
  HttpSource(std::string url, const SourceOptions& options)
      : name_(std::move(url)), capacity_(std::max<size_t>(options.buffer_bytes, 64 << 10)) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    easy_ = curl_easy_init();
    multi_ = curl_multi_init();
    if (easy_ == nullptr || multi_ == nullptr) {
      cleanup();
      throw Error(ErrorKind::kInternal, "curl init failed", context_for(name_, -1));
    }
    try {
      curl_check(curl_easy_setopt(easy_, CURLOPT_URL, name_.c_str()), "URL");
      curl_check(curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &HttpSource::on_write),
                 "WRITEFUNCTION");
      curl_check(curl_easy_setopt(easy_, CURLOPT_WRITEDATA, this), "WRITEDATA");
      curl_check(curl_easy_setopt(easy_, CURLOPT_ERRORBUFFER, error_buffer_), "ERRORBUFFER");
      curl_check(curl_easy_setopt(easy_, CURLOPT_FAILONERROR, 1L), "FAILONERROR");
      curl_check(curl_easy_setopt(easy_, CURLOPT_FOLLOWLOCATION, 1L), "FOLLOWLOCATION");
      curl_check(curl_easy_setopt(easy_, CURLOPT_MAXREDIRS, 5L), "MAXREDIRS");
      curl_check(curl_easy_setopt(easy_, CURLOPT_PROTOCOLS_STR, "http,https"), "PROTOCOLS_STR");
      curl_check(curl_easy_setopt(easy_, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"),
                 "REDIR_PROTOCOLS_STR");
      curl_check(curl_easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L), "NOSIGNAL");
      curl_check(curl_easy_setopt(easy_, CURLOPT_CONNECTTIMEOUT_MS,
                                  static_cast<long>(options.connect_timeout_seconds * 1000)),
                 "CONNECTTIMEOUT_MS");
      curl_check(curl_easy_setopt(easy_, CURLOPT_LOW_SPEED_LIMIT, 1L), "LOW_SPEED_LIMIT");
      curl_check(curl_easy_setopt(easy_, CURLOPT_LOW_SPEED_TIME,
                                  std::max(1L, static_cast<long>(options.low_speed_seconds))),
                 "LOW_SPEED_TIME");
      curl_check(curl_easy_setopt(easy_, CURLOPT_USERAGENT, "flamboyance/0.1"), "USERAGENT");
      curl_check(curl_multi_add_handle(multi_, easy_), "multi_add_handle");
    } catch (...) {
      cleanup();
      throw;
    }
  }
  ~HttpSource() override { cleanup(); }

  size_t read(void* out, size_t n) override {
    if (n == 0) return 0;
    while (available() == 0 && !finished_) pump();
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

  static size_t on_write(char* data, size_t size, size_t count, void* user) {
    auto* self = static_cast<HttpSource*>(user);
    size_t bytes = size * count;
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
      curl_check(curl_easy_pause(easy_, CURLPAUSE_CONT), "easy_pause");
    }
    int running = 0;
    curl_check(curl_multi_perform(multi_, &running), "multi_perform");
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
    // Wait for the socket or curl's next timeout (bounded so pause/resume stays responsive).
    curl_check(curl_multi_poll(multi_, nullptr, 0, 1000, nullptr), "multi_poll");
  }

  void finish_or_throw() {
    if (result_ == CURLE_OK) return;
    long status = 0;
    curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &status);
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
    easy_ = nullptr;
    multi_ = nullptr;
  }

  std::string name_;
  size_t capacity_;
  CURL* easy_ = nullptr;
  CURLM* multi_ = nullptr;
  std::string buffer_;  // bytes received, not yet read, from head_ on
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

bool ends_with_zst(const std::string& name) {
  std::string_view base(name);
  if (is_url(name)) base = base.substr(0, base.find_first_of("?#"));
  return base.size() >= 4 && base.substr(base.size() - 4) == ".zst";
}

}  // namespace

bool is_url(const std::string& name) {
  return starts_with(name, "http://") || starts_with(name, "https://");
}

std::unique_ptr<ByteSource> open_source(const std::string& path_or_url,
                                        const SourceOptions& options) {
  std::unique_ptr<ByteSource> source;
  if (is_url(path_or_url)) {
    source = std::make_unique<HttpSource>(path_or_url, options);
  } else if (starts_with(path_or_url, "file://")) {
    source = std::make_unique<FileSource>(path_or_url.substr(7));
  } else {
    source = std::make_unique<FileSource>(path_or_url);
  }
  if (ends_with_zst(path_or_url)) source = std::make_unique<ZstdSource>(std::move(source));
  return source;
}

}  // namespace flam::pipeline
