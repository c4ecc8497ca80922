// Shard lists as webdataset writes them: brace ranges and list files, expanded into one name per
// shard (a local path, an http(s) URL or an s3:// name). Any thread; an s3:// prefix is listed
// through pipeline/s3.h's default client.
#pragma once

#include <string>
#include <vector>

namespace flam::pipeline {

// Expands each spec in order and concatenates the results:
//  - brace ranges "laion-{000000..000099}.tar" (zero-padded widths kept; several ranges in one
//    spec give their cartesian product, left to right) and brace lists "{a,b,c}";
//  - "@list.txt", or a local path or s3:// name ending in ".txt" ("@s3://..." too): one shard
//    per line, blank lines and lines starting with '#' skipped, each line itself expanded;
//  - "s3://bucket/prefix/" (ending in '/'): every object under the prefix whose name ends in
//    ".tar" or ".tar.zst", sorted by key (S3Client::list);
//  - anything else as is.
// Throws flam::Error(kConfig) on a malformed range ("{9..1}", "{a..b}", unbalanced braces) and
// kIo when a list file cannot be read; S3Client's errors (naming the s3:// URL) for a prefix that
// cannot be listed or a list object that cannot be read.
std::vector<std::string> expand_shard_list(const std::vector<std::string>& specs);

}  // namespace flam::pipeline
