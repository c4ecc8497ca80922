#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace flam {
namespace {

[[noreturn]] void throw_io(const std::string& what, const std::string& path) {
  ErrorContext ctx;
  ctx.file = path;
  throw Error(ErrorKind::kIo, what + ": " + std::strerror(errno), ctx);
}

std::string parent_of(const std::string& path) {
  std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

}  // namespace

void fsync_directory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) throw_io("open directory", dir);
  if (::fsync(fd) != 0 && errno != EINVAL) {
    int saved = errno;
    ::close(fd);
    errno = saved;
    throw_io("fsync directory", dir);
  }
  ::close(fd);
}

void rename_durable(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0) throw_io("rename from " + from, to);
  fsync_directory(parent_of(to));
}

void write_file_atomic(const std::string& path, std::string_view content) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_io("open for writing", tmp);
  const char* p = content.data();
  size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      errno = saved;
      throw_io("write", tmp);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int saved = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    errno = saved;
    throw_io("fsync", tmp);
  }
  if (::close(fd) != 0) throw_io("close", tmp);
  rename_durable(tmp, path);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_io("cannot open", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace flam
