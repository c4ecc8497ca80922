#include "core/tfevents.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>

#include "core/error.h"

namespace flam {
namespace {

constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();

uint32_t masked_crc(const void* data, size_t size) {
  const uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Protocol buffer wire format, the four field kinds an Event needs.
void put_varint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
void put_tag(std::string* out, int field, int wire_type) {
  put_varint(out, static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(wire_type));
}
template <class T>
void put_fixed(std::string* out, int field, T value) {  // double: wire type 1, float: 5
  put_tag(out, field, sizeof(T) == 8 ? 1 : 5);
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));  // little-endian host (x86-64, aarch64)
  out->append(bytes, sizeof(T));
}
void put_bytes(std::string* out, int field, std::string_view bytes) {
  put_tag(out, field, 2);
  put_varint(out, bytes.size());
  out->append(bytes);
}

// tensorflow.Event: wall_time = 1 (double), step = 2 (int64), file_version = 3 (string),
// summary = 5 (Summary { repeated Value value = 1 { string tag = 1; float simple_value = 2 } }).
std::string event(double wall_time, int64_t step) {
  std::string e;
  put_fixed(&e, 1, wall_time);
  if (step != 0) {
    put_tag(&e, 2, 0);
    put_varint(&e, static_cast<uint64_t>(step));
  }
  return e;
}

void flatten(const std::string& prefix, const nlohmann::json& value, int64_t step, double wall_time,
             TfEventsWriter* writer) {
  if (value.is_object()) {
    for (const auto& [k, v] : value.items()) {
      if (prefix.empty() && (k == "step" || k == "wall_time")) continue;
      flatten(prefix.empty() ? k : prefix + "/" + k, v, step, wall_time, writer);
    }
  } else if (value.is_number()) {
    writer->add_scalar(prefix, step, value.get<double>(), wall_time);
  }
}

}  // namespace

uint32_t crc32c(const void* data, size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) c = kCrcTable[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

TfEventsWriter::~TfEventsWriter() {
  if (file_) std::fclose(file_);
}

void TfEventsWriter::open(const std::string& run_dir) {
  char host[256] = "localhost";
  gethostname(host, sizeof(host) - 1);
  const double t = now_seconds();
  path_ = run_dir + "/events.out.tfevents." + std::to_string(static_cast<int64_t>(t)) + "." + host +
          "." + std::to_string(getpid()) + ".flam";
  file_ = std::fopen(path_.c_str(), "wb");
  if (!file_) {
    throw Error(ErrorKind::kIo, "cannot create the TensorBoard event file",
                ErrorContext{path_, -1, "", "", -1});
  }
  std::string e = event(t, 0);
  put_bytes(&e, 3, "brain.Event:2");
  write_record(e);
}

void TfEventsWriter::add_scalar(std::string_view tag, int64_t step, double value,
                                double wall_time) {
  if (!file_) return;
  std::string v;
  put_bytes(&v, 1, tag);
  put_fixed(&v, 2, static_cast<float>(value));
  std::string summary;
  put_bytes(&summary, 1, v);
  std::string e = event(wall_time < 0 ? now_seconds() : wall_time, step);
  put_bytes(&e, 5, summary);
  write_record(e);
}

void TfEventsWriter::add_metrics(int64_t step, const nlohmann::json& line, double wall_time) {
  if (!file_) return;
  auto stamp = line.find("wall_time");
  if (stamp != line.end() && stamp->is_number()) wall_time = stamp->get<double>();
  flatten("", line, step, wall_time < 0 ? now_seconds() : wall_time, this);
}

void TfEventsWriter::write_record(const std::string& data) {
  char header[12];
  const uint64_t length = data.size();
  std::memcpy(header, &length, 8);
  const uint32_t length_crc = masked_crc(header, 8);
  std::memcpy(header + 8, &length_crc, 4);
  const uint32_t data_crc = masked_crc(data.data(), data.size());
  if (std::fwrite(header, 1, 12, file_) != 12 ||
      std::fwrite(data.data(), 1, data.size(), file_) != data.size() ||
      std::fwrite(&data_crc, 1, 4, file_) != 4 || std::fflush(file_) != 0) {
    throw Error(ErrorKind::kIo, "cannot write the TensorBoard event file",
                ErrorContext{path_, -1, "", "", -1});
  }
}

}  // namespace flam
