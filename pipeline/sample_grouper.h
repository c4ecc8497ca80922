// SampleGrouper: webdataset grouping of tar members into samples. A member path "dir/abc.jpg"
// has key "dir/abc" (the path up to the first dot of its basename) and extension "jpg" (the rest
// after that dot, lower-cased, e.g. "seg.png"). Consecutive members with one key form a sample.
// A key that reappears after another key is reported (FLAM_LOG(WARN), counted) and starts a new
// sample; it is never merged with the earlier one. Members without a dot in the basename, and a
// second member with the same extension in one sample, are counted and dropped.
//
// Thread safety: one thread at a time; the reader must outlive the grouper.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_set>

#include "pipeline/tar_reader.h"

namespace flam::pipeline {

struct Sample {
  std::string key;                       // __key__
  std::string url;                       // __url__: the shard's path or URL
  std::map<std::string, Bytes> members;  // lower-cased extension -> bytes
};

class SampleGrouper {
 public:
  explicit SampleGrouper(TarReader& reader);

  // Fills the next sample. Returns false at the clean end of the shard. Errors of the reader
  // (kData corruption, kIo, kNetwork) propagate; the sample being assembled is lost.
  bool next(Sample& sample);

  // Keys that reappeared non-consecutively (each reported once via FLAM_LOG(WARN)).
  int64_t duplicate_keys() const { return duplicate_keys_; }
  // Members dropped: no extension, or an extension repeated within one sample.
  int64_t dropped_members() const { return dropped_members_; }

 private:
  TarReader& reader_;
  bool have_pending_ = false;
  bool done_ = false;
  TarEntry pending_entry_;
  Bytes pending_data_;
  std::unordered_set<std::string> seen_keys_;
  std::unordered_set<std::string> reported_keys_;
  int64_t duplicate_keys_ = 0;
  int64_t dropped_members_ = 0;
};

// Splits a member path into key and lower-cased extension; false if the basename has no dot.
bool split_member_path(const std::string& path, std::string& key, std::string& extension);

}  // namespace flam::pipeline
