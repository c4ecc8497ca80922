// TfEventsWriter: TensorBoard event files, written without TensorFlow or protobuf, so that
// `tensorboard --logdir RUN` shows the scalars of metrics.jsonl. The file is
// RUN/events.out.tfevents.{seconds}.{host}.{pid}.flam (TensorBoard reads every file whose name
// holds "tfevents"), a sequence of records
//   uint64 length (little-endian) | uint32 masked CRC32C of those 8 bytes |
//   length bytes of a serialized tensorflow.Event | uint32 masked CRC32C of them
// (masked: ((crc >> 15) | (crc << 17)) + 0xa282ead8). The first Event carries
// file_version "brain.Event:2"; each add_scalar() one Event {wall_time, step, summary {value
// {tag, simple_value}}}, encoded by hand (docs/formats.md). Records are flushed as written, so
// a reader sees every complete one and a crash leaves at most a torn last record, which
// TensorBoard skips.
//
// Thread safety: one thread per writer. A writer that was never opened ignores add_scalar(), so
// non-lead ranks can hold one without branching.
#pragma once

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace flam {

class TfEventsWriter {
 public:
  TfEventsWriter() = default;
  ~TfEventsWriter();
  TfEventsWriter(const TfEventsWriter&) = delete;
  TfEventsWriter& operator=(const TfEventsWriter&) = delete;

  // Creates a new event file in `run_dir` (which must exist) and writes its version record.
  // Throws flam::Error(kIo) naming the file when it cannot be created.
  void open(const std::string& run_dir);
  bool is_open() const { return file_ != nullptr; }
  const std::string& path() const { return path_; }

  // One scalar at `step`; `wall_time` in seconds since the epoch (negative: now).
  // Throws flam::Error(kIo) when the write fails (disk full).
  void add_scalar(std::string_view tag, int64_t step, double value, double wall_time = -1);
  // Every number of a metrics.jsonl line except "step" and "wall_time", nested objects as
  // "outer/inner" tags ("memory/master_bytes"); strings, booleans and nulls are skipped. The
  // line's "wall_time" (seconds since the epoch), when present, stamps the events instead of
  // `wall_time`.
  void add_metrics(int64_t step, const nlohmann::json& line, double wall_time = -1);

 private:
  void write_record(const std::string& data);

  std::FILE* file_ = nullptr;
  std::string path_;
};

// CRC-32C (Castagnoli), as TFRecord files use it. Exposed for tests.
uint32_t crc32c(const void* data, size_t size);

}  // namespace flam
