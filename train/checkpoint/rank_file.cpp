#include "train/checkpoint/rank_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <utility>

#include "core/error.h"
#include "train/checkpoint/crc32c.h"

namespace flam::train {
namespace {

static_assert(std::endian::native == std::endian::little, "rank files are little-endian");

constexpr char kMagic[8] = {'F', 'L', 'A', 'M', 'C', 'K', 'P', 'T'};
constexpr uint64_t kHeaderAlign = 4096;
constexpr uint64_t kSectionAlign = 64;
constexpr size_t kMaxChunk = size_t{64} << 20;  // bytes per write() / pread() call
constexpr uint32_t kMaxSections = 1u << 20;
constexpr uint32_t kMaxNameLen = 4096;

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

[[noreturn]] void throw_io(const std::string& what, const std::string& path, int err,
                           int64_t offset = -1) {
  ErrorContext ctx;
  ctx.file = path;
  ctx.offset = offset;
  throw Error(ErrorKind::kIo, what + ": " + std::strerror(err), ctx);
}

[[noreturn]] void throw_corrupt(const std::string& what, const std::string& path,
                                int64_t offset = -1) {
  ErrorContext ctx;
  ctx.file = path;
  ctx.offset = offset;
  throw Error(ErrorKind::kData, "corrupt checkpoint file: " + what, ctx);
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

void write_all(int fd, const void* data, size_t size, const std::string& path, uint64_t& at) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, std::min(size, kMaxChunk));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_io("write", path, errno, static_cast<int64_t>(at));
    }
    p += n;
    size -= static_cast<size_t>(n);
    at += static_cast<uint64_t>(n);
  }
}

void pread_all(int fd, void* out, size_t size, uint64_t offset, const std::string& path) {
  char* p = static_cast<char*>(out);
  while (size > 0) {
    ssize_t n = ::pread(fd, p, std::min(size, kMaxChunk), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_io("read", path, errno, static_cast<int64_t>(offset));
    }
    if (n == 0) throw_corrupt("truncated", path, static_cast<int64_t>(offset));
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
}

template <class T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(v));
}

class Cursor {
 public:
  Cursor(const std::string& buf, const std::string& path) : buf_(buf), path_(path) {}
  template <class T>
  T get() {
    T v;
    need(sizeof(T));
    std::memcpy(&v, buf_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string bytes(size_t n) {
    need(n);
    std::string s = buf_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  size_t pos() const { return pos_; }

 private:
  void need(size_t n) {
    if (pos_ + n > buf_.size()) throw_corrupt("header truncated", path_, pos_);
  }
  const std::string& buf_;
  const std::string& path_;
  size_t pos_ = 0;
};

int open_read(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_io("open", path, errno);
  return fd;
}

uint64_t file_size(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) throw_io("fstat", path, errno);
  return static_cast<uint64_t>(st.st_size);
}

RankFileHeader parse_header(int fd, const std::string& path, uint64_t size) {
  // The fixed part, then the whole header once data_offset is known.
  constexpr size_t kFixed = 8 + 4 + 4 + 8;
  if (size < kFixed) throw_corrupt("shorter than its header", path, 0);
  std::string fixed(kFixed, '\0');
  pread_all(fd, fixed.data(), kFixed, 0, path);
  if (std::memcmp(fixed.data(), kMagic, 8) != 0) throw_corrupt("bad magic", path, 0);
  RankFileHeader h;
  std::memcpy(&h.version, fixed.data() + 8, 4);
  uint32_t count;
  std::memcpy(&count, fixed.data() + 12, 4);
  std::memcpy(&h.data_offset, fixed.data() + 16, 8);
  if (h.version != kRankFileVersion) {
    throw_corrupt("unsupported version " + std::to_string(h.version), path, 8);
  }
  if (count > kMaxSections || h.data_offset > size || h.data_offset < kFixed) {
    throw_corrupt("bad section count or data offset", path, 12);
  }
  std::string buf(h.data_offset, '\0');
  pread_all(fd, buf.data(), buf.size(), 0, path);
  Cursor c(buf, path);
  c.bytes(kFixed);
  for (uint32_t i = 0; i < count; ++i) {
    SectionEntry e;
    uint32_t len = c.get<uint32_t>();
    if (len > kMaxNameLen) throw_corrupt("section name too long", path, c.pos());
    e.name = c.bytes(len);
    e.offset = c.get<uint64_t>();
    e.size = c.get<uint64_t>();
    e.crc = c.get<uint32_t>();
    h.sections.push_back(std::move(e));
  }
  const size_t crc_at = c.pos();
  h.header_crc = c.get<uint32_t>();
  h.header_end = c.pos();
  if (crc32c(buf.data(), crc_at) != h.header_crc) {
    throw_corrupt("header checksum mismatch", path, static_cast<int64_t>(crc_at));
  }
  for (const SectionEntry& e : h.sections) {
    if (e.offset < h.data_offset || e.offset > size || e.size > size - e.offset) {
      throw_corrupt("section '" + e.name + "' lies outside the file", path,
                    static_cast<int64_t>(e.offset));
    }
  }
  return h;
}

}  // namespace

const SectionEntry* RankFileHeader::find(const std::string& name) const {
  for (const SectionEntry& e : sections) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

RankFileSummary write_rank_file(const std::string& path, const std::vector<SectionData>& sections) {
  // One pass over the data: each chunk is checksummed and written while it is in cache, and
  // writeback is started behind us (sync_file_range) so the disk works while we copy; the header,
  // which holds the section CRCs, is written last into the space reserved for it.
  uint64_t header_len = 8 + 4 + 4 + 8 + 4;
  for (const SectionData& s : sections) header_len += 4 + s.name.size() + 8 + 8 + 4;
  const uint64_t data_offset = align_up(header_len, kHeaderAlign);

  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) throw_io("open for writing", path, errno);
  if (::lseek(fd.get(), static_cast<off_t>(data_offset), SEEK_SET) < 0) {
    throw_io("lseek", path, errno);
  }
  uint64_t written = data_offset;
  uint64_t flushed = data_offset;
  constexpr uint64_t kWritebackEvery = uint64_t{32} << 20;
  constexpr size_t kChunk = size_t{4} << 20;
  static const char kZeros[kSectionAlign] = {};
  std::vector<uint64_t> offsets;
  std::vector<uint32_t> crcs;
  for (const SectionData& s : sections) {
    write_all(fd.get(), kZeros, align_up(written, kSectionAlign) - written, path, written);
    offsets.push_back(written);
    uint32_t crc = 0;
    const char* p = static_cast<const char*>(s.data);
    for (size_t done = 0; done < s.size;) {
      const size_t n = std::min(kChunk, s.size - done);
      crc = crc32c_extend(crc, p + done, n);
      write_all(fd.get(), p + done, n, path, written);
      done += n;
      if (written - flushed >= kWritebackEvery) {
        // Best effort: a file system without it still gets the fsync below.
        ::sync_file_range(fd.get(), static_cast<off_t>(flushed),
                          static_cast<off_t>(written - flushed), SYNC_FILE_RANGE_WRITE);
        flushed = written;
      }
    }
    crcs.push_back(crc);
  }

  std::string header(kMagic, 8);
  put<uint32_t>(header, kRankFileVersion);
  put<uint32_t>(header, static_cast<uint32_t>(sections.size()));
  put<uint64_t>(header, data_offset);
  for (size_t i = 0; i < sections.size(); ++i) {
    put<uint32_t>(header, static_cast<uint32_t>(sections[i].name.size()));
    header += sections[i].name;
    put<uint64_t>(header, offsets[i]);
    put<uint64_t>(header, sections[i].size);
    put<uint32_t>(header, crcs[i]);
  }
  RankFileSummary summary;
  summary.header_crc = crc32c(header.data(), header.size());
  put<uint32_t>(header, summary.header_crc);
  header.resize(data_offset, '\0');
  for (uint64_t done = 0; done < header.size();) {
    ssize_t n =
        ::pwrite(fd.get(), header.data() + done, header.size() - done, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_io("write", path, errno, static_cast<int64_t>(done));
    }
    done += static_cast<uint64_t>(n);
  }
  if (::fsync(fd.get()) != 0) throw_io("fsync", path, errno);
  if (::close(fd.release()) != 0) throw_io("close", path, errno);
  summary.bytes = written;
  return summary;
}

RankFileHeader read_rank_file_header(const std::string& path) {
  Fd fd(open_read(path));
  return parse_header(fd.get(), path, file_size(fd.get(), path));
}

void verify_rank_file(const std::string& path, uint64_t expected_bytes,
                      uint32_t expected_header_crc) {
  Fd fd(open_read(path));
  const uint64_t size = file_size(fd.get(), path);
  if (size != expected_bytes) {
    throw_corrupt("size " + std::to_string(size) + " != " + std::to_string(expected_bytes) +
                      " in the manifest",
                  path);
  }
  RankFileHeader h = parse_header(fd.get(), path, size);
  if (h.header_crc != expected_header_crc) {
    throw_corrupt("header checksum differs from the manifest's", path);
  }
  std::vector<char> buf(std::min<size_t>(kMaxChunk, 8u << 20));
  // The gaps between header, sections and the end of the file hold zeros.
  std::vector<std::pair<uint64_t, uint64_t>> used = {{0, h.header_end}};
  for (const SectionEntry& e : h.sections) used.emplace_back(e.offset, e.offset + e.size);
  std::sort(used.begin(), used.end());
  used.emplace_back(size, size);
  for (size_t i = 0; i + 1 < used.size(); ++i) {
    for (uint64_t at = used[i].second; at < used[i + 1].first;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), used[i + 1].first - at));
      pread_all(fd.get(), buf.data(), n, at, path);
      for (size_t j = 0; j < n; ++j) {
        if (buf[j] != 0) throw_corrupt("non-zero padding", path, static_cast<int64_t>(at + j));
      }
      at += n;
    }
  }
  for (const SectionEntry& e : h.sections) {
    uint32_t crc = 0;
    for (uint64_t done = 0; done < e.size;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), e.size - done));
      pread_all(fd.get(), buf.data(), n, e.offset + done, path);
      crc = crc32c_extend(crc, buf.data(), n);
      done += n;
    }
    if (crc != e.crc) {
      throw_corrupt("section '" + e.name + "' checksum mismatch", path,
                    static_cast<int64_t>(e.offset));
    }
  }
}

std::string read_section(const std::string& path, const RankFileHeader& header,
                         const std::string& name) {
  const SectionEntry* e = header.find(name);
  if (!e) throw_corrupt("no section '" + name + "'", path);
  std::string out(e->size, '\0');
  Fd fd(open_read(path));
  pread_all(fd.get(), out.data(), out.size(), e->offset, path);
  if (crc32c(out.data(), out.size()) != e->crc) {
    throw_corrupt("section '" + name + "' checksum mismatch", path,
                  static_cast<int64_t>(e->offset));
  }
  return out;
}

void read_section_range(const std::string& path, const RankFileHeader& header,
                        const std::string& name, uint64_t offset, uint64_t size, void* out) {
  const SectionEntry* e = header.find(name);
  if (!e) throw_corrupt("no section '" + name + "'", path);
  if (offset > e->size || size > e->size - offset) {
    throw_corrupt("section '" + name + "' is shorter than expected", path,
                  static_cast<int64_t>(e->offset));
  }
  Fd fd(open_read(path));
  pread_all(fd.get(), out, size, e->offset + offset, path);
}

std::string encode_scalars(const std::map<std::string, double>& scalars) {
  std::string out;
  auto put32 = [&](uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  put32(static_cast<uint32_t>(scalars.size()));
  for (const auto& [name, value] : scalars) {
    put32(static_cast<uint32_t>(name.size()));
    out += name;
    out.append(reinterpret_cast<const char*>(&value), 8);
  }
  return out;
}

std::map<std::string, double> decode_scalars(const std::string& in, const std::string& path) {
  std::map<std::string, double> scalars;
  size_t pos = 0;
  auto need = [&](size_t n) {
    if (pos + n > in.size()) {
      ErrorContext ctx;
      ctx.file = path;
      throw Error(ErrorKind::kData, "corrupt checkpoint file: scalars section truncated", ctx);
    }
  };
  auto get32 = [&] {
    need(4);
    uint32_t v;
    std::memcpy(&v, in.data() + pos, 4);
    pos += 4;
    return v;
  };
  const uint32_t count = get32();
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t len = get32();
    need(len);
    std::string name = in.substr(pos, len);
    pos += len;
    need(8);
    double value;
    std::memcpy(&value, in.data() + pos, 8);
    pos += 8;
    scalars[name] = value;
  }
  return scalars;
}

}  // namespace flam::train
