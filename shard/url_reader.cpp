#include "shard/url_reader.h"

#include <glob.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "core/error.h"
#include "pipeline/byte_source.h"
#include "pipeline/packer.h"
#include "pipeline/s3.h"
#include "pipeline/shard_list.h"
#include "pipeline/text.h"
#include "shard/mmc4_reader.h"
#include "shard/options.h"
#include "shard/parquet_table.h"

namespace flam::shard {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Records of a text file (decompressed by pipeline::open_source when it ends in .gz or .zst):
// lines, or (quote_aware, CSV) records that may span lines inside quotes. A trailing '\r' is
// dropped; empty records are skipped. line() is the 1-based line where the last record began.
class RecordReader {
 public:
  RecordReader(const std::string& path, bool quote_aware)
      : source_(pipeline::open_source(path)), quote_aware_(quote_aware) {}

  bool next(std::string* record) {
    record->clear();
    bool in_quotes = false;
    line_ = next_line_;
    while (true) {
      if (pos_ == chunk_.size()) {
        pos_ = 0;
        chunk_.resize(1 << 17);
        chunk_.resize(source_->read(chunk_.data(), chunk_.size()));
        if (chunk_.empty()) return strip(record);
      }
      size_t start = pos_;
      while (pos_ < chunk_.size()) {
        char c = chunk_[pos_];
        if (c == '"' && quote_aware_) in_quotes = !in_quotes;
        if (c == '\n') {
          ++next_line_;
          if (!in_quotes) break;
        }
        ++pos_;
      }
      record->append(chunk_, start, pos_ - start);
      if (pos_ < chunk_.size()) {
        ++pos_;  // the newline
        if (strip(record)) return true;
        in_quotes = false;
        line_ = next_line_;
      }
    }
  }
  int64_t line() const { return line_; }

 private:
  static bool strip(std::string* record) {
    if (!record->empty() && record->back() == '\r') record->pop_back();
    return !record->empty();
  }

  std::unique_ptr<pipeline::ByteSource> source_;
  bool quote_aware_;
  std::string chunk_;
  size_t pos_ = 0;
  int64_t line_ = 1;
  int64_t next_line_ = 1;
};

std::string strip_compression(const std::string& path) {
  for (const char* ext : {".gz", ".zst"}) {
    if (ends_with(path, ext))
      return path.substr(0, path.size() - std::char_traits<char>::length(ext));
  }
  return path;
}

std::string table_format(const std::string& path, const std::string& configured) {
  if (configured != "auto") return configured;
  std::string base = strip_compression(path);
  if (ends_with(base, ".tsv") || ends_with(base, ".txt")) return "tsv";
  if (ends_with(base, ".csv")) return "csv";
  if (ends_with(base, ".jsonl") || ends_with(base, ".json")) return "jsonl";
  if (ends_with(path, ".parquet")) return "parquet";
  throw Error(ErrorKind::kConfig,
              "cannot tell the table format from the file name; set shard.input_format to tsv, "
              "csv, jsonl or parquet (MMC4's .jsonl.zip needs shard.input_kind: mmc4)",
              ErrorContext{path, -1, "shard.input_format", "", -1});
}

std::string json_text(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "";
  return value.dump();
}

void read_jsonl_table(const std::string& path, const TableColumns& columns,
                      std::vector<InputRow>* rows) {
  RecordReader reader(path, false);
  std::string line;
  while (reader.next(&line)) {
    InputRow row;
    nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
    if (!pipeline::valid_utf8(line)) {
      row.reason = "invalid_utf8";
      row.error = "line " + std::to_string(reader.line()) + ": not UTF-8";
    } else if (record.is_discarded() || !record.is_object()) {
      row.error = "line " + std::to_string(reader.line()) + ": not a JSON object";
    } else {
      auto url = record.find(columns.url_col);
      if (url == record.end() || !url->is_string()) {
        row.error = "no string column '" + columns.url_col + "'";
      } else {
        row.url = url->get<std::string>();
      }
      if (!columns.caption_col.empty()) {
        auto caption = record.find(columns.caption_col);
        if (caption != record.end()) row.caption = json_text(*caption);
      }
      for (const auto& col : columns.save_cols) {
        auto it = record.find(col);
        row.extra.push_back(it == record.end() ? nlohmann::json() : *it);
      }
    }
    if (!row.error.empty()) {
      if (row.reason.empty()) row.reason = "bad_row";
      row.extra.assign(columns.save_cols.size(), nlohmann::json());
    }
    rows->push_back(std::move(row));
  }
}

int column_index(const std::vector<std::string>& header, const std::string& name,
                 const std::string& path, const std::string& key) {
  auto it = std::find(header.begin(), header.end(), name);
  if (it == header.end()) {
    std::string have;
    for (const auto& h : header) have += (have.empty() ? "" : ", ") + h;
    throw Error(ErrorKind::kData, "the header has no column '" + name + "' (it has: " + have + ")",
                ErrorContext{path, 1, key, "", -1});
  }
  return static_cast<int>(it - header.begin());
}

// TSV records are lines (an unterminated quote spoils that line only); CSV records follow RFC
// 4180 and may span lines inside quotes.
void read_delimited_table(const std::string& path, char delimiter, const TableColumns& columns,
                          std::vector<InputRow>* rows) {
  RecordReader reader(path, delimiter == ',');
  std::string record;
  std::vector<std::string> header;
  if (!reader.next(&record)) return;
  if (!split_record(record, delimiter, &header)) {
    throw Error(ErrorKind::kData, "unterminated quote in the header",
                ErrorContext{path, reader.line(), "", "", -1});
  }
  if (!header.empty() && header[0].rfind("\xEF\xBB\xBF", 0) == 0) header[0].erase(0, 3);
  int url = column_index(header, columns.url_col, path, "shard.url_col");
  int caption = columns.caption_col.empty()
                    ? -1
                    : column_index(header, columns.caption_col, path, "shard.caption_col");
  std::vector<int> extra;
  for (const auto& col : columns.save_cols) {
    extra.push_back(column_index(header, col, path, "shard.save_cols"));
  }
  std::vector<std::string> fields;
  while (reader.next(&record)) {
    InputRow row;
    const std::string at = "line " + std::to_string(reader.line()) + ": ";
    if (!split_record(record, delimiter, &fields)) {
      row.error = at + "unterminated quote";
    } else if (fields.size() != header.size()) {
      row.error = at + "has " + std::to_string(fields.size()) + " fields, the header " +
                  std::to_string(header.size());
    } else if (caption >= 0 && !pipeline::valid_utf8(fields[caption])) {
      row.error = at + "the caption is not UTF-8";
      row.reason = "invalid_utf8";
    }
    if (row.error.empty()) {
      row.url = fields[url];
      if (caption >= 0) row.caption = fields[caption];
      for (int i : extra) row.extra.emplace_back(fields[i]);
    } else {
      if (row.reason.empty()) row.reason = "bad_row";
      row.extra.assign(columns.save_cols.size(), nlohmann::json());
    }
    rows->push_back(std::move(row));
  }
}

// Readers that need a seekable local file (parquet, MMC4's libarchive) get an s3:// input as a
// local copy; the copy lives as long as this object.
class StagedInputs {
 public:
  StagedInputs() = default;
  StagedInputs(const StagedInputs&) = delete;
  StagedInputs& operator=(const StagedInputs&) = delete;
  ~StagedInputs() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  // `name` itself when local; else the path of a local copy keeping its file name.
  std::string local(const std::string& name) {
    if (!pipeline::is_s3_url(name)) return name;
    if (dir_.empty()) {
      dir_ = (std::filesystem::temp_directory_path() /
              ("flam-inputs-" + std::to_string(::getpid()) + "-" +
               std::to_string(reinterpret_cast<uintptr_t>(this))))
                 .string();
      std::filesystem::create_directories(dir_);
    }
    // One folder per copy: the file keeps its name, which messages quote.
    const std::string folder = dir_ + "/" + std::to_string(files_++);
    std::filesystem::create_directories(folder);
    std::string path = folder + "/" + name.substr(name.rfind('/') + 1);
    // Raw bytes: the reader decompresses by the name's extension itself.
    std::unique_ptr<pipeline::ByteSource> source = pipeline::default_s3_client().open(name);
    std::ofstream out(path, std::ios::binary);
    std::string buf(1 << 20, '\0');
    while (size_t n = source->read(buf.data(), buf.size())) out.write(buf.data(), n);
    if (!out.flush()) throw Error(ErrorKind::kIo, "cannot stage " + name, at_file(path));
    names_.emplace_back(path, name);
    return path;
  }

  // `text` (a row's error message) with every local copy's path replaced by its s3:// name.
  std::string original_names(std::string text) const {
    for (const auto& [local, remote] : names_) {
      for (size_t at = text.find(local); at != std::string::npos;
           at = text.find(local, at + remote.size())) {
        text.replace(at, local.size(), remote);
      }
    }
    return text;
  }

 private:
  std::vector<std::pair<std::string, std::string>> names_;  // (local copy, s3:// name)
  std::string dir_;
  int files_ = 0;
};

}  // namespace

bool split_record(const std::string& record, char delimiter, std::vector<std::string>* fields) {
  fields->clear();
  std::string field;
  bool in_quotes = false;
  bool quoted = false;  // the current field opened with a quote
  for (size_t i = 0; i < record.size(); ++i) {
    char c = record[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < record.size() && record[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        field += c;
      }
    } else if (c == delimiter) {
      fields->push_back(std::move(field));
      field.clear();
      quoted = false;
    } else if (c == '"' && field.empty() && !quoted) {
      in_quotes = quoted = true;
    } else {
      field += c;
    }
  }
  fields->push_back(std::move(field));
  return !in_quotes;
}

std::vector<std::string> expand_inputs(const std::vector<std::string>& patterns) {
  std::vector<std::string> out;
  for (const auto& pattern : patterns) {
    if (pipeline::is_s3_url(pattern)) {
      if (pattern.back() == '/') {
        for (const auto& object : pipeline::default_s3_client().list(pattern)) {
          out.push_back(object.url);
        }
      } else {
        for (auto& name : pipeline::expand_shard_list({pattern})) out.push_back(std::move(name));
      }
      continue;
    }
    glob_t g{};
    if (glob(pattern.c_str(), 0, nullptr, &g) == 0) {
      std::vector<std::string> found(g.gl_pathv, g.gl_pathv + g.gl_pathc);
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
      globfree(&g);
      continue;
    }
    globfree(&g);
    std::error_code ec;
    if (!std::filesystem::exists(pattern, ec) && !ec) {
      throw Error(ErrorKind::kConfig, "no input file matches " + pattern,
                  ErrorContext{pattern, -1, "shard.inputs", "", -1});
    }
    out.push_back(pattern);
  }
  return out;
}

std::vector<InputRow> read_url_table(const std::vector<std::string>& paths,
                                     const TableColumns& columns) {
  std::vector<InputRow> rows;
  for (const auto& path : paths) {
    std::string format = table_format(path, columns.format);
    if (format == "parquet") {
      StagedInputs staged;
      ParquetTable table({staged.local(path)}, columns);
      const size_t first = rows.size();
      table.read(0, table.row_count(), &rows);
      for (size_t i = first; i < rows.size(); ++i) {
        rows[i].error = staged.original_names(std::move(rows[i].error));
      }
    } else if (format == "jsonl") {
      read_jsonl_table(path, columns, &rows);
    } else {
      read_delimited_table(path, format == "csv" ? ',' : '\t', columns, &rows);
    }
  }
  return rows;
}

std::vector<InputRow> read_inputs(const ShardOptions& options) {
  if (options.inputs.empty()) {
    throw Error(ErrorKind::kConfig, "no input files", ErrorContext{"", -1, "shard.inputs", "", -1});
  }
  std::vector<std::string> paths = expand_inputs(options.inputs);
  if (options.input_kind == "mmc4") {
    StagedInputs staged;
    for (auto& path : paths) path = staged.local(path);
    std::vector<InputRow> rows = read_mmc4_documents(paths);
    for (auto& row : rows) row.error = staged.original_names(std::move(row.error));
    return rows;
  }
  TableColumns columns{options.input_format, options.url_col, options.caption_col,
                       options.save_cols};
  return read_url_table(paths, columns);
}

}  // namespace flam::shard
