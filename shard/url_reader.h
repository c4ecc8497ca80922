// Input readers of `flam shard`: LAION-style URL tables (TSV, CSV with RFC 4180 quoting, JSON
// lines, each optionally `.gz` (zlib) or `.zst` (zstd); parquet through shard/parquet_table.h)
// and MMC4 documents (shard/mmc4_reader.h), read in
// file order into one row list whose position is the row's global index (its key and shard follow
// from it). Every input record becomes exactly one row, so a malformed record keeps its index and
// shows up in the rows file as "bad_row" instead of shifting every later key.
//
// Thread safety: pure functions; call from any thread.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace flam::shard {

struct ShardOptions;

// One input record.
struct InputRow {
  std::string url;                    // LAION: the image URL
  std::string caption;                // LAION: the caption ("" when absent or null)
  std::vector<nlohmann::json> extra;  // LAION: one value per save_cols entry (null when absent)
  std::string document;               // MMC4: the document's JSON text, parsed when processed
  std::string error;                  // non-empty: the record is malformed ("line N: why")
  std::string reason;  // with an error: "bad_row", or "invalid_utf8" for a caption not UTF-8
};

// Where each column of a LAION table is. An empty caption_col means "no caption column".
struct TableColumns {
  std::string format = "auto";  // auto (from the extension) | tsv | csv | jsonl | parquet
  std::string url_col = "url";
  std::string caption_col = "caption";
  std::vector<std::string> save_cols;
};

// Expands shell globs in `patterns` (sorted per pattern). A local pattern that matches no file is
// a config error (flam::Error(kConfig) naming it and shard.inputs: exit 2, not retried); one that
// exists but does not glob (a name with brackets, an unreadable directory) is kept as is, so that
// opening it names the file. An s3:// pattern expands its brace ranges
// (pipeline/shard_list.h), or, ending in '/', lists every object under the prefix, sorted; s3://
// inputs are streamed (text tables) or read from a local copy (parquet, MMC4 documents).
std::vector<std::string> expand_inputs(const std::vector<std::string>& patterns);

// Reads every record of every file, in order. TSV records are lines: an unterminated quote makes
// that line a bad row and the next line is read afresh; CSV records may span lines inside quotes.
// Throws flam::Error: kIo naming a file that cannot be opened or read, kData for a corrupt or cut
// .gz/.zst stream (with its offset) or a header that lacks a configured column; kConfig when
// format is "auto" and the extension says nothing.
std::vector<InputRow> read_url_table(const std::vector<std::string>& paths,
                                     const TableColumns& columns);

// The whole input of a run, as `options` describes it (input_kind, inputs, columns).
std::vector<InputRow> read_inputs(const ShardOptions& options);

// Splits one CSV/TSV record per RFC 4180 (quoted fields, "" inside quotes, delimiter and newlines
// inside quotes). Exposed for tests. Returns false when a quote is left open.
bool split_record(const std::string& record, char delimiter, std::vector<std::string>* fields);

}  // namespace flam::shard
