#include "shard/mmc4_reader.h"

#include <archive.h>
#include <archive_entry.h>

#include <cstring>
#include <memory>

#include "core/error.h"

namespace flam::shard {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct ArchiveFree {
  void operator()(archive* a) const { archive_read_free(a); }
};

[[noreturn]] void fail(archive* a, const std::string& path, const std::string& what) {
  const char* why = archive_error_string(a);
  throw Error(ErrorKind::kIo, what + (why ? std::string(": ") + why : std::string()),
              ErrorContext{path, -1, "shard.inputs", "", -1});
}

// Appends one row per non-empty line of the current entry of `a`.
void read_lines(archive* a, const std::string& path, const std::string& where,
                std::vector<InputRow>* rows) {
  std::string line;
  int64_t line_no = 0;
  auto finish_line = [&] {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) return;
    InputRow row;
    nlohmann::json doc = nlohmann::json::parse(line, nullptr, false);
    std::string why = mmc4_document_error(doc);
    if (!why.empty()) row.error = where + ":" + std::to_string(line_no) + ": " + why;
    row.document = std::move(line);
    rows->push_back(std::move(row));
    line.clear();
  };
  char buf[1 << 16];
  while (true) {
    la_ssize_t n = archive_read_data(a, buf, sizeof(buf));
    if (n < 0) fail(a, path, "cannot read " + where);
    if (n == 0) break;
    const char* p = buf;
    const char* end = buf + n;
    while (p < end) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      line.append(p, nl ? nl : end);
      if (!nl) break;
      finish_line();
      p = nl + 1;
    }
  }
  finish_line();
}

void read_file(const std::string& path, std::vector<InputRow>* rows) {
  std::unique_ptr<archive, ArchiveFree> a(archive_read_new());
  const bool zip = ends_with(path, ".zip");
  if (zip) {
    archive_read_support_format_zip(a.get());
  } else {
    archive_read_support_filter_all(a.get());
    archive_read_support_format_raw(a.get());
  }
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK) {
    fail(a.get(), path, zip ? "cannot open the zip archive" : "cannot open input");
  }
  const std::string name = path.substr(path.find_last_of('/') + 1);
  archive_entry* entry = nullptr;
  while (true) {
    int rc = archive_read_next_header(a.get(), &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      fail(a.get(), path, zip ? "not a readable zip archive" : "cannot read input");
    }
    if (zip && archive_entry_filetype(entry) != AE_IFREG) continue;
    read_lines(a.get(), path, zip ? name + ":" + archive_entry_pathname(entry) : name, rows);
  }
}

}  // namespace

std::string mmc4_document_error(const nlohmann::json& doc) {
  if (doc.is_discarded() || !doc.is_object()) return "not a JSON object";
  auto text = doc.find("text_list");
  if (text == doc.end() || !text->is_array()) return "no text_list list";
  for (const auto& t : *text) {
    if (!t.is_string()) return "text_list holds a " + std::string(t.type_name()) + ", not strings";
  }
  auto info = doc.find("image_info");
  if (info == doc.end() || !info->is_array()) return "no image_info list";
  for (size_t i = 0; i < info->size(); ++i) {
    const auto& entry = (*info)[i];
    auto url = entry.is_object() ? entry.find("raw_url") : entry.end();
    if (!entry.is_object() || url == entry.end() || !url->is_string()) {
      return "image_info[" + std::to_string(i) + "] has no string raw_url";
    }
  }
  return "";
}

std::vector<InputRow> read_mmc4_documents(const std::vector<std::string>& paths) {
  std::vector<InputRow> rows;
  for (const auto& path : paths) read_file(path, &rows);
  return rows;
}

}  // namespace flam::shard
