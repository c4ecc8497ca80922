// MMC4 documents as they ship: JSON lines in `docs_shard_N_v2.jsonl.zip` (every member of the zip
// read as JSON lines, in archive order), or plain `.jsonl`, `.jsonl.gz`, `.jsonl.zst`; all read
// through libarchive. Every non-empty line becomes one InputRow whose `document` is the line
// as written; a line that is not an MMC4 document (not a JSON object, no `text_list` list of
// strings, no `image_info` list of objects with a string `raw_url`) keeps its index and gets
// InputRow::error naming the file, the member and the line, so that check_bad_rows() can stop a
// run fed the wrong files at once (shard/table_check.h).
//
// Thread safety: pure functions; call from any thread.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "shard/url_reader.h"

namespace flam::shard {

// Reads every document of every file, in order. Throws flam::Error(kIo) naming a file that cannot
// be opened, is not the archive its name says, or whose compressed stream is corrupt or cut.
std::vector<InputRow> read_mmc4_documents(const std::vector<std::string>& paths);

// Why `doc` is not an MMC4 document, or "" when it is one.
std::string mmc4_document_error(const nlohmann::json& doc);

}  // namespace flam::shard
