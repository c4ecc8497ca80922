// Shard lists as webdataset writes them: brace ranges and list files, expanded into one name per
// shard (a local path or an http(s) URL). Pure function; any thread.
#pragma once

#include <string>
#include <vector>

namespace flam::pipeline {

// Expands each spec in order and concatenates the results:
//  - brace ranges "laion-{000000..000099}.tar" (zero-padded widths kept; several ranges in one
//    spec give their cartesian product, left to right) and brace lists "{a,b,c}";
//  - "@list.txt", or a local path ending in ".txt": one shard per line, blank lines and lines
//    starting with '#' skipped, each line itself expanded;
//  - anything else as is.
// Throws flam::Error(kConfig) on a malformed range ("{9..1}", "{a..b}", unbalanced braces) and
// kIo when a list file cannot be read.
std::vector<std::string> expand_shard_list(const std::vector<std::string>& specs);

}  // namespace flam::pipeline
