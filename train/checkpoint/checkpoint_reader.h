// CheckpointReader: reads one committed checkpoint directory (step_N/) for resume, inspection and
// export: verifies rank files against the manifest and reads any range of a unit's flat buffer
// whatever world size wrote it (the concatenate-and-split of resharding happens here). A
// checkpoint in a bucket is read from a local download of its step (download_checkpoint).
//
// Thread safety: none (rank file headers are cached lazily); one reader per thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "train/checkpoint/manifest.h"
#include "train/checkpoint/rank_file.h"

namespace flam::train {

// The three fp32 buffers every unit has, and the section names they are stored under.
inline constexpr const char* kStateKinds[] = {"master", "exp_avg", "exp_avg_sq"};
std::string unit_section_name(const std::string& kind, size_t unit);  // "master/3"

class CheckpointReader {
 public:
  // Reads step_dir/manifest.json. Throws flam::Error(kIo) if unreadable, kData if invalid.
  explicit CheckpointReader(std::string step_dir);

  const Manifest& manifest() const { return manifest_; }
  const std::string& dir() const { return dir_; }
  std::string file_path(int rank) const;

  // Checks rank file `rank` against the manifest: size, header CRC, every section's CRC.
  // Throws flam::Error(kData) (or kIo) naming the file, section and offset.
  void verify_file(int rank);

  // out[end - begin] <- elements [begin, end) of unit `unit`'s flat `kind` buffer, as if the
  // slices of every old rank were concatenated; elements at or past the unit's numel (padding)
  // are zeros, so any world size's slices can be cut from it. Unchecked bytes: verify first.
  void read_flat(const std::string& kind, size_t unit, int64_t begin, int64_t end, float* out);

  // A whole section of one rank's file, CRC-checked.
  std::string read_section(int rank, const std::string& name);

 private:
  const RankFileHeader& header(int rank);

  std::string dir_;
  Manifest manifest_;
  std::vector<std::optional<RankFileHeader>> headers_;
};

// A committed checkpoint in a bucket (train.checkpoint.dir = s3://...), downloaded for reading:
// `url` is its step ("s3://bucket/prefix/step_N") or the checkpoints prefix itself (then its
// newest committed step). A step counts as committed once its manifest.json object exists, as
// the Checkpointer commits it. Every object of the step is written into `local_dir` (created),
// which a CheckpointReader then opens. Throws flam::Error(kIo) naming the URL when there is no
// committed step, kData when the named step has no manifest (a save that did not commit), and
// pipeline/s3.h's errors for the transfers.
struct RemoteCheckpoint {
  std::string url;                 // s3://.../step_N, the step downloaded
  std::vector<int64_t> committed;  // every committed step under the prefix, oldest first
};
RemoteCheckpoint download_checkpoint(const std::string& url, const std::string& local_dir);

}  // namespace flam::train
