// TarReader: a hand-written streaming reader (chosen over libarchive by bench/tar: see
// docs/formats.md). Headers are parsed from an internal buffer; member data larger than the
// buffer is read straight from the source into the caller's Bytes.
#include "pipeline/tar_reader.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <map>
#include <vector>

#include "core/check.h"
#include "core/error.h"

namespace flam::pipeline {
namespace {

constexpr size_t kBlock = 512;
// Headers and small members come through a buffer that stays in cache; the rest of a member
// of kDirectBytes or more is read by the source straight into the caller's Bytes (one copy, as
// `cat` does).
constexpr size_t kBufferBytes = 32 << 10;
constexpr size_t kDirectBytes = 4 << 10;
constexpr int64_t kMaxMetaBytes = 1 << 20;             // long names and pax records
constexpr int64_t kMaxMemberBytes = int64_t{1} << 33;  // 8 GiB: larger is corruption
constexpr size_t kGrowBytes = 64 << 20;                // data is allocated as it arrives

// ustar header field offsets and sizes.
struct Field {
  size_t offset, size;
};
constexpr Field kName{0, 100}, kSize{124, 12}, kChecksum{148, 8}, kType{156, 1}, kMagic{257, 6},
    kPrefix{345, 155};

std::string field_string(const char* header, Field f) {
  const char* begin = header + f.offset;
  return std::string(begin, strnlen(begin, f.size));
}

// Parses an octal numeric field (leading spaces, then digits, then NUL/space), or GNU base-256
// when the high bit of the first byte is set. Returns false on anything else.
bool parse_number(const char* header, Field f, int64_t& value) {
  const auto* p = reinterpret_cast<const unsigned char*>(header + f.offset);
  if (p[0] & 0x80) {
    if (p[0] & 0x40) return false;  // negative
    uint64_t v = p[0] & 0x3f;
    for (size_t i = 1; i < f.size; ++i) {
      if (v >> 55) return false;  // overflow
      v = (v << 8) | p[i];
    }
    value = static_cast<int64_t>(v);
    return true;
  }
  size_t i = 0;
  while (i < f.size && p[i] == ' ') ++i;
  uint64_t v = 0;
  size_t digits = 0;
  for (; i < f.size && p[i] >= '0' && p[i] <= '7'; ++i, ++digits) v = v * 8 + (p[i] - '0');
  for (; i < f.size; ++i) {
    if (p[i] != ' ' && p[i] != '\0') return false;
  }
  if (digits == 0 || digits > 21) return false;
  value = static_cast<int64_t>(v);
  return true;
}

bool all_zero(const char* block) {
  for (size_t i = 0; i < kBlock; ++i) {
    if (block[i] != 0) return false;
  }
  return true;
}

// Pax extended header records: "LEN key=value\n" with LEN counting the whole record.
struct PaxRecords {
  bool has_path = false, has_size = false;
  std::string path;
  int64_t size = 0;
};

}  // namespace

struct TarReader::Impl {
  std::unique_ptr<ByteSource> source;
  std::vector<char> buffer = std::vector<char>(kBufferBytes);
  size_t pos = 0, len = 0;
  int64_t offset = 0;  // stream offset of buffer[pos]
  bool done = false;
  std::exception_ptr failure;  // the first error; rethrown by every later next()

  // Throws kData; what() reads "NAME: offset AT: WHAT".
  [[noreturn]] void fail(int64_t at, const std::string& what) {
    ErrorContext context;
    if (is_url(source->name())) {
      context.url = source->name();
    } else {
      context.file = source->name();
    }
    context.offset = at;
    throw Error(ErrorKind::kData, what, context);
  }

  // Refills the buffer; returns false at end of stream.
  bool refill() {
    pos = 0;
    len = source->read(buffer.data(), buffer.size());
    return len > 0;
  }

  // Copies exactly n bytes (or throws "truncated ... <what>"). Large reads bypass the buffer.
  void read_exact(char* dst, size_t n, const char* what) {
    while (n > 0) {
      if (pos == len) {
        if (n >= kDirectBytes) {
          size_t got = source->read(dst, n);
          if (got == 0) truncated(n, what);
          dst += got;
          n -= got;
          offset += static_cast<int64_t>(got);
          continue;
        }
        if (!refill()) truncated(n, what);
      }
      size_t k = std::min(n, len - pos);
      std::memcpy(dst, buffer.data() + pos, k);
      pos += k;
      n -= k;
      dst += k;
      offset += static_cast<int64_t>(k);
    }
  }

  // Copies up to n bytes; fewer only at the end of the stream.
  size_t read_upto(char* dst, size_t n) {
    size_t done_bytes = 0;
    while (done_bytes < n && (pos < len || refill())) {
      size_t k = std::min(n - done_bytes, len - pos);
      std::memcpy(dst + done_bytes, buffer.data() + pos, k);
      pos += k;
      done_bytes += k;
      offset += static_cast<int64_t>(k);
    }
    return done_bytes;
  }

  void skip(int64_t n, const char* what) {
    while (n > 0) {
      if (pos == len && !refill()) truncated(static_cast<size_t>(n), what);
      size_t k = static_cast<size_t>(std::min<int64_t>(n, static_cast<int64_t>(len - pos)));
      pos += k;
      n -= static_cast<int64_t>(k);
      offset += static_cast<int64_t>(k);
    }
  }

  [[noreturn]] void truncated(size_t missing, const char* what) {
    fail(offset, "truncated: stream ended " + std::to_string(missing) + " bytes short in " + what);
  }

  // Reads one header block. Returns false when the stream ends exactly here.
  bool read_block(char* block) {
    if (pos == len && !refill()) return false;
    read_exact(block, kBlock, "a header block");
    return true;
  }

  static int64_t padding(int64_t size) {
    return (static_cast<int64_t>(kBlock) - size % static_cast<int64_t>(kBlock)) %
           static_cast<int64_t>(kBlock);
  }

  // Reads a metadata member's data (long name, pax records), bounded.
  std::string read_meta(int64_t size, int64_t header_at, const char* what) {
    if (size > kMaxMetaBytes) {
      fail(header_at, std::string(what) + " of " + std::to_string(size) + " bytes (limit " +
                          std::to_string(kMaxMetaBytes) + ")");
    }
    std::string data(static_cast<size_t>(size), '\0');
    read_exact(data.data(), data.size(), what);
    skip(padding(size), what);
    return data;
  }

  void parse_pax(const std::string& data, int64_t header_at, PaxRecords& out) {
    size_t i = 0;
    while (i < data.size()) {
      if (data[i] == '\0') break;  // some writers pad with NULs
      size_t space = data.find(' ', i);
      uint64_t record_len = 0;
      bool ok = space != std::string::npos && space > i && space - i <= 19;
      for (size_t j = i; ok && j < space; ++j) {
        ok = data[j] >= '0' && data[j] <= '9';
        record_len = record_len * 10 + static_cast<uint64_t>(data[j] - '0');
      }
      ok = ok && record_len > space - i + 1 && record_len <= data.size() - i &&
           data[i + record_len - 1] == '\n';
      if (!ok) fail(header_at, "malformed pax record at byte " + std::to_string(i));
      std::string record = data.substr(space + 1, i + record_len - space - 2);
      size_t eq = record.find('=');
      if (eq == std::string::npos) fail(header_at, "pax record without '='");
      std::string key = record.substr(0, eq);
      std::string value = record.substr(eq + 1);
      if (key == "path") {
        out.has_path = true;
        out.path = value;
      } else if (key == "size") {
        int64_t size = 0;
        bool digits = !value.empty() && value.size() <= 18;
        for (char c : value) {
          digits = digits && c >= '0' && c <= '9';
          if (digits) size = size * 10 + (c - '0');
        }
        if (!digits) fail(header_at, "bad pax size '" + value + "'");
        out.has_size = true;
        out.size = size;
      }
      i += record_len;
    }
  }

  // Validates one header block read at `at`.
  void check_header(const char* h, int64_t at) {
    int64_t stored = 0;
    if (!parse_number(h, kChecksum, stored)) fail(at, "bad header: unreadable checksum field");
    // The checksum counts its own field as eight spaces. Unsigned sum first (a loop the
    // compiler vectorises); the signed sum some old tars wrote only when that does not match.
    const auto* u = reinterpret_cast<const unsigned char*>(h);
    uint32_t field = 0;
    for (size_t i = kChecksum.offset; i < kChecksum.offset + kChecksum.size; ++i) field += u[i];
    uint32_t total = 0;
    for (size_t i = 0; i < kBlock; ++i) total += u[i];
    const int64_t unsigned_sum = int64_t{total} - field + 8 * ' ';
    int64_t signed_sum = unsigned_sum;
    if (stored != unsigned_sum) {
      signed_sum = 8 * ' ';
      for (size_t i = 0; i < kBlock; ++i) {
        bool in_field = i >= kChecksum.offset && i < kChecksum.offset + kChecksum.size;
        if (!in_field) signed_sum += static_cast<signed char>(h[i]);
      }
    }
    if (stored != unsigned_sum && stored != signed_sum) {
      fail(at, "bad header checksum (stored " + std::to_string(stored) + ", computed " +
                   std::to_string(unsigned_sum) + ")");
    }
  }

  bool next(TarEntry& entry, Bytes& data) {
    if (failure) std::rethrow_exception(failure);
    if (done) return false;
    try {
      return next_entry(entry, data);
    } catch (...) {
      failure = std::current_exception();
      throw;
    }
  }

  bool next_entry(TarEntry& entry, Bytes& data) {
    char h[kBlock];
    std::string long_name;
    bool has_long_name = false;
    PaxRecords pax;
    int64_t first_header = -1;
    while (true) {
      int64_t at = offset;
      if (!read_block(h)) {
        if (first_header >= 0) fail(at, "truncated: stream ended after an extended header");
        done = true;  // end of stream on a member boundary, without the end marker
        return false;
      }
      if (first_header < 0) first_header = at;
      if (all_zero(h)) {
        if (first_header != at) fail(at, "zero block after an extended header");
        // End of archive: a second zero block should follow (a stream that ends instead is
        // accepted: no member is lost); data after the two is ignored.
        if (read_upto(h, kBlock) == kBlock && !all_zero(h)) {
          fail(at, "lone zero block followed by a header");
        }
        // Read the source to its end, so that a compressed stream checks its frame end and
        // checksum: a .tar.zst cut inside its checksum must not read as clean.
        while (pos < len || refill()) {
          offset += static_cast<int64_t>(len - pos);
          pos = len;
        }
        done = true;
        return false;
      }
      check_header(h, at);
      int64_t size = 0;
      if (!parse_number(h, kSize, size) || size > kMaxMemberBytes) {
        fail(at, "bad header: size field '" + field_string(h, kSize) + "'");
      }
      char type = h[kType.offset];
      if (type == 'L' || type == 'K') {
        std::string value = read_meta(size, at, "a GNU long name");
        if (type == 'L') {
          long_name = value.substr(0, strnlen(value.data(), value.size()));
          has_long_name = true;
        }
        continue;
      }
      if (type == 'x' || type == 'g') {
        std::string records = read_meta(size, at, "a pax header");
        PaxRecords parsed;
        parse_pax(records, at, parsed);
        if (type == 'x') {
          if (parsed.has_path) pax.has_path = true, pax.path = parsed.path;
          if (parsed.has_size) pax.has_size = true, pax.size = parsed.size;
        } else {
          first_header = -1;  // a global header is an entry of its own
        }
        continue;
      }
      if (pax.has_size) {
        if (pax.size > kMaxMemberBytes) fail(at, "pax size too large");
        size = pax.size;
      }
      std::string path;
      if (pax.has_path) {
        path = pax.path;
      } else if (has_long_name) {
        path = long_name;
      } else {
        path = field_string(h, kName);
        std::string prefix = field_string(h, kPrefix);
        if (std::memcmp(h + kMagic.offset, "ustar\0", 6) == 0 && !prefix.empty()) {
          path = prefix + "/" + path;
        }
      }
      bool regular = type == '0' || type == '\0' || type == '7';
      if (type == '\0' && !path.empty() && path.back() == '/') regular = false;  // old dirs
      if (!regular) {
        skip(size + padding(size), "the data of a skipped entry");
        first_header = -1;
        long_name.clear();
        has_long_name = false;
        pax = PaxRecords{};
        continue;
      }
      if (path.empty()) fail(at, "bad header: empty member name");
      entry.path = std::move(path);
      entry.size = size;
      entry.header_offset = first_header;
      read_data(data, size);
      skip(padding(size), "member padding");
      return true;
    }
  }

  // Members up to kGrowBytes are sized at once; larger ones grow as their data arrives, so a
  // corrupt size field costs no more memory than the data actually present.
  void read_data(Bytes& data, int64_t size) {
    size_t total = static_cast<size_t>(size);
    data.clear();
    size_t got = 0;
    while (got < total) {
      size_t chunk = std::min(total - got, kGrowBytes);
      data.resize(got + chunk);
      read_exact(data.data() + got, chunk, "member data");
      got += chunk;
    }
  }
};

TarReader::TarReader(std::unique_ptr<ByteSource> source) : impl_(std::make_unique<Impl>()) {
  FLAM_CHECK(source != nullptr) << "TarReader needs a source";
  impl_->source = std::move(source);
}

TarReader::~TarReader() = default;

bool TarReader::next(TarEntry& entry, Bytes& data) { return impl_->next(entry, data); }

const std::string& TarReader::name() const { return impl_->source->name(); }

int64_t TarReader::offset() const { return impl_->offset; }

}  // namespace flam::pipeline
