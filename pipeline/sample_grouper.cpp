#include "pipeline/sample_grouper.h"

#include <cctype>

#include "core/log.h"

namespace flam::pipeline {

bool split_member_path(const std::string& path, std::string& key, std::string& extension) {
  size_t slash = path.rfind('/');
  size_t base = slash == std::string::npos ? 0 : slash + 1;
  size_t dot = path.find('.', base);
  if (dot == std::string::npos || dot == base || dot + 1 == path.size()) return false;
  key = path.substr(0, dot);
  extension = path.substr(dot + 1);
  for (char& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return true;
}

SampleGrouper::SampleGrouper(TarReader& reader) : reader_(reader) {}

bool SampleGrouper::next(Sample& sample) {
  sample.key.clear();
  sample.url = reader_.name();
  sample.members.clear();
  std::string key, extension;
  while (true) {
    if (!have_pending_) {
      if (done_ || !reader_.next(pending_entry_, pending_data_)) {
        done_ = true;
        break;
      }
      have_pending_ = true;
    }
    if (!split_member_path(pending_entry_.path, key, extension)) {
      ++dropped_members_;
      FLAM_LOG(DEBUG) << reader_.name() << ": member '" << pending_entry_.path
                      << "' has no extension; dropped";
      have_pending_ = false;
      continue;
    }
    if (!sample.key.empty() && key != sample.key) break;  // the next sample starts here
    if (sample.key.empty()) {
      sample.key = key;
      if (!seen_keys_.insert(key).second) {
        ++duplicate_keys_;
        if (reported_keys_.insert(key).second) {
          FLAM_LOG(WARN) << reader_.name() << ": key '" << key
                         << "' reappears after other keys (offset " << pending_entry_.header_offset
                         << "); kept as a separate sample";
        }
      }
    }
    auto [it, inserted] = sample.members.try_emplace(extension);
    if (inserted) {
      it->second.swap(pending_data_);
    } else {
      ++dropped_members_;
      FLAM_LOG(DEBUG) << reader_.name() << ": duplicate member '" << pending_entry_.path
                      << "' in one sample; dropped";
    }
    have_pending_ = false;
  }
  return !sample.key.empty();
}

}  // namespace flam::pipeline
