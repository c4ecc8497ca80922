#include "pipeline/tar_writer.h"

#include <fcntl.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "core/atomic_file.h"
#include "core/check.h"
#include "core/error.h"

namespace flam::pipeline {
namespace {

constexpr size_t kBlock = 512;
constexpr size_t kBufferBytes = 1 << 20;
constexpr uint64_t kMaxOctalSize = (uint64_t{1} << 33) - 1;  // 11 octal digits

void put_octal(char* field, size_t width, uint64_t value) {
  // width - 1 zero-padded octal digits and a NUL, as GNU tar writes ustar fields.
  for (size_t i = width - 1; i-- > 0;) {
    field[i] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
  field[width - 1] = '\0';
}

// One pax record "LEN key=value\n", LEN counting itself.
std::string pax_record(const std::string& key, std::string_view value) {
  size_t body = key.size() + value.size() + 3;  // ' ', '=', '\n'
  size_t len = body + 1;
  while (std::to_string(len).size() + body != len) ++len;
  return std::to_string(len) + " " + key + "=" + std::string(value) + "\n";
}

void ustar_header(char* h, std::string_view name, uint64_t size, char type) {
  std::memset(h, 0, kBlock);
  std::memcpy(h, name.data(), std::min<size_t>(name.size(), 100));
  put_octal(h + 100, 8, 0644);
  put_octal(h + 108, 8, 0);
  put_octal(h + 116, 8, 0);
  put_octal(h + 124, 12, std::min<uint64_t>(size, kMaxOctalSize));
  put_octal(h + 136, 12, 0);  // mtime
  h[156] = type;
  std::memcpy(h + 257, "ustar", 6);  // magic with its NUL
  // NOLINTNEXTLINE(bugprone-not-null-terminated-result): the version field has no NUL
  std::memcpy(h + 263, "00", 2);  // version
  put_octal(h + 329, 8, 0);       // devmajor
  put_octal(h + 337, 8, 0);       // devminor
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (size_t i = 0; i < kBlock; ++i) sum += static_cast<unsigned char>(h[i]);
  put_octal(h + 148, 7, sum);  // six digits, NUL, then the space kept from above
  h[155] = ' ';
}

}  // namespace

struct TarWriter::Impl {
  std::string tmp_path;
  TarWriterOptions options;
  int fd = -1;
  bool closed = false;
  std::vector<char> buffer;  // pending file bytes (compressed when zstd is on)
  ZSTD_CCtx* zstd = nullptr;
  std::vector<char> out;  // zstd output staging
  int64_t written = 0;    // bytes handed to write(2)

  [[noreturn]] void io_error(const std::string& what) {
    ErrorContext context;
    context.file = tmp_path;
    context.offset = written;
    throw Error(ErrorKind::kIo, what + ": " + std::strerror(errno), context);
  }

  void write_fd(const char* p, size_t n) {
    while (n > 0) {
      ssize_t k = ::write(fd, p, n);
      if (k < 0) {
        if (errno == EINTR) continue;
        io_error("write failed");
      }
      p += k;
      n -= static_cast<size_t>(k);
      written += k;
    }
  }

  void flush_buffer() {
    write_fd(buffer.data(), buffer.size());
    buffer.clear();
  }

  void append_file_bytes(const char* p, size_t n) {
    if (buffer.size() + n > kBufferBytes) flush_buffer();
    if (n >= kBufferBytes) {
      write_fd(p, n);
    } else {
      buffer.insert(buffer.end(), p, p + n);
    }
  }

  // Archive bytes go through zstd when on, else straight to the file buffer.
  void emit(const char* p, size_t n, ZSTD_EndDirective mode = ZSTD_e_continue) {
    if (zstd == nullptr) {
      append_file_bytes(p, n);
      return;
    }
    if (n == 0 && mode == ZSTD_e_continue) return;
    ZSTD_inBuffer in{p, n, 0};
    out.resize(ZSTD_CStreamOutSize());
    while (true) {
      ZSTD_outBuffer o{out.data(), out.size(), 0};
      size_t remaining = ZSTD_compressStream2(zstd, &o, &in, mode);
      if (ZSTD_isError(remaining)) {
        throw Error(ErrorKind::kInternal,
                    std::string("zstd compression failed: ") + ZSTD_getErrorName(remaining),
                    ErrorContext{tmp_path, -1, "", "", written});
      }
      append_file_bytes(out.data(), o.pos);
      bool finished = mode == ZSTD_e_continue ? in.pos == in.size : remaining == 0;
      if (finished) break;
    }
  }
};

TarWriter::TarWriter(std::string path, TarWriterOptions options)
    : path_(std::move(path)), impl_(std::make_unique<Impl>()) {
  impl_->tmp_path = path_ + ".tmp";
  impl_->options = options;
  impl_->buffer.reserve(kBufferBytes);
  impl_->fd = ::open(impl_->tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (impl_->fd < 0) impl_->io_error("cannot create");
  if (options.zstd) {
    impl_->zstd = ZSTD_createCCtx();
    FLAM_CHECK(impl_->zstd != nullptr) << "ZSTD_createCCtx";
    int level = std::clamp(options.zstd_level, 1, ZSTD_maxCLevel());
    ZSTD_CCtx_setParameter(impl_->zstd, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(impl_->zstd, ZSTD_c_checksumFlag, 1);
  }
}

TarWriter::~TarWriter() {
  if (!impl_->closed) {
    if (impl_->fd >= 0) ::close(impl_->fd);
    ::unlink(impl_->tmp_path.c_str());
  }
  if (impl_->zstd != nullptr) ZSTD_freeCCtx(impl_->zstd);
}

void TarWriter::add(std::string_view member_name, std::string_view data) {
  FLAM_CHECK(!impl_->closed) << "TarWriter::add after close: " << path_;
  FLAM_CHECK(!member_name.empty() && member_name.find('\0') == std::string_view::npos)
      << "bad member name for " << path_;
  char h[kBlock];
  std::string pax;
  if (member_name.size() > 100) pax += pax_record("path", member_name);
  if (data.size() > kMaxOctalSize) pax += pax_record("size", std::to_string(data.size()));
  static const char zeros[kBlock] = {};
  if (!pax.empty()) {
    // Deterministic name for the extended header (GNU tar puts its pid here).
    std::string pax_name = "PaxHeaders/" + std::string(member_name.substr(0, 88));
    ustar_header(h, pax_name, pax.size(), 'x');
    impl_->emit(h, kBlock);
    impl_->emit(pax.data(), pax.size());
    impl_->emit(zeros, (kBlock - pax.size() % kBlock) % kBlock);
  }
  ustar_header(h, member_name, data.size(), '0');
  impl_->emit(h, kBlock);
  impl_->emit(data.data(), data.size());
  impl_->emit(zeros, (kBlock - data.size() % kBlock) % kBlock);
}

void TarWriter::close() {
  if (impl_->closed) return;
  static const char zeros[2 * kBlock] = {};
  impl_->emit(zeros, sizeof(zeros));
  if (impl_->zstd != nullptr) impl_->emit(nullptr, 0, ZSTD_e_end);
  impl_->flush_buffer();
  if (::fsync(impl_->fd) != 0) impl_->io_error("fsync failed");
  int fd = impl_->fd;
  impl_->fd = -1;
  if (::close(fd) != 0) impl_->io_error("close failed");
  rename_durable(impl_->tmp_path, path_);
  impl_->closed = true;
}

int64_t TarWriter::bytes_written() const {
  return impl_->written + static_cast<int64_t>(impl_->buffer.size());
}

}  // namespace flam::pipeline
