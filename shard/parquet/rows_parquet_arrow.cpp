// write_rows_parquet over Arrow C++ (parquet::arrow::WriteTable, snappy, one row group).
#include <arrow/api.h>
#include <arrow/io/file.h>
#include <parquet/arrow/writer.h>
#include <parquet/exception.h>

#include <cstdio>

#include "core/error.h"
#include "shard/rows_parquet.h"

namespace flam::shard {
namespace {

using ojson = nlohmann::ordered_json;

[[noreturn]] void fail(const std::string& path, const std::string& why) {
  throw Error(ErrorKind::kIo, "cannot write the rows parquet: " + why,
              ErrorContext{path, -1, "", "", -1});
}

void check(const arrow::Status& st, const std::string& path) {
  if (!st.ok()) fail(path, st.ToString());
}

enum class Kind { kString, kInt, kDouble, kBool };

// The narrowest type holding every value of column `name` (nulls fit any).
Kind column_kind(const std::vector<ojson>& records, const std::string& name) {
  bool any = false, all_int = true, all_number = true, all_bool = true;
  for (const auto& r : records) {
    auto it = r.find(name);
    if (it == r.end() || it->is_null()) continue;
    any = true;
    all_int = all_int && it->is_number_integer();
    all_number = all_number && it->is_number();
    all_bool = all_bool && it->is_boolean();
  }
  if (!any) return Kind::kString;
  if (all_int) return Kind::kInt;
  if (all_number) return Kind::kDouble;
  if (all_bool) return Kind::kBool;
  return Kind::kString;
}

std::shared_ptr<arrow::Array> build(const std::vector<ojson>& records, const std::string& name,
                                    Kind kind, const std::string& path) {
  std::shared_ptr<arrow::Array> out;
  auto value = [&](const ojson& r) -> const ojson* {
    auto it = r.find(name);
    return it == r.end() || it->is_null() ? nullptr : &*it;
  };
  if (kind == Kind::kInt) {
    arrow::Int64Builder b;
    for (const auto& r : records) {
      const ojson* v = value(r);
      check(v ? b.Append(v->get<int64_t>()) : b.AppendNull(), path);
    }
    check(b.Finish(&out), path);
  } else if (kind == Kind::kDouble) {
    arrow::DoubleBuilder b;
    for (const auto& r : records) {
      const ojson* v = value(r);
      check(v ? b.Append(v->get<double>()) : b.AppendNull(), path);
    }
    check(b.Finish(&out), path);
  } else if (kind == Kind::kBool) {
    arrow::BooleanBuilder b;
    for (const auto& r : records) {
      const ojson* v = value(r);
      check(v ? b.Append(v->get<bool>()) : b.AppendNull(), path);
    }
    check(b.Finish(&out), path);
  } else {
    arrow::StringBuilder b;
    for (const auto& r : records) {
      const ojson* v = value(r);
      check(v ? b.Append(v->is_string() ? v->get<std::string>() : v->dump()) : b.AppendNull(),
            path);
    }
    check(b.Finish(&out), path);
  }
  return out;
}

}  // namespace

void write_rows_parquet(const std::string& path, const std::vector<ojson>& records,
                        const ShardOptions& options) {
  std::vector<std::pair<std::string, Kind>> columns;
  for (const auto& c : options.save_cols) columns.emplace_back(c, column_kind(records, c));
  for (const char* c : {"caption", "url", "key", "status", "error_message"}) {
    columns.emplace_back(c, Kind::kString);
  }
  for (const char* c : {"width", "height", "original_width", "original_height"}) {
    columns.emplace_back(c, Kind::kInt);
  }
  columns.emplace_back("exif", Kind::kString);
  columns.emplace_back("sha256", Kind::kString);

  arrow::FieldVector fields;
  arrow::ArrayVector arrays;
  for (const auto& [name, kind] : columns) {
    arrays.push_back(build(records, name, kind, path));
    fields.push_back(arrow::field(name, arrays.back()->type()));
  }
  auto table = arrow::Table::Make(arrow::schema(fields), arrays);
  const std::string tmp = path + ".tmp";
  try {
    auto file = arrow::io::FileOutputStream::Open(tmp);
    if (!file.ok()) fail(tmp, file.status().ToString());
    auto props =
        parquet::WriterProperties::Builder().compression(arrow::Compression::SNAPPY)->build();
    check(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), *file,
                                     std::max<int64_t>(1, table->num_rows()), props),
          tmp);
    check((*file)->Close(), tmp);
  } catch (const parquet::ParquetException& e) {
    fail(tmp, e.what());
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail(path, "rename failed");
}

}  // namespace flam::shard
