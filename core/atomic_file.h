// Atomic file writes: data goes to "PATH.tmp", is fsynced, renamed over PATH, and the directory
// is fsynced, so after a crash PATH holds either the old or the new content, never a mix.
// Errors throw flam::Error(kIo) naming the path and the failing system call (ENOSPC included).
//
// Thread safety: functions are reentrant; two writers of the same PATH race (last rename wins).
#pragma once

#include <string>
#include <string_view>

namespace flam {

void write_file_atomic(const std::string& path, std::string_view content);
// fsync of a directory, so that a rename or a new entry in it is durable.
void fsync_directory(const std::string& dir);
// rename(from, to) then fsync of to's directory.
void rename_durable(const std::string& from, const std::string& to);
// Reads a whole file; throws flam::Error(kIo) naming the path.
std::string read_file(const std::string& path);

}  // namespace flam
