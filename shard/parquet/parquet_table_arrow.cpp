// ParquetTable over Arrow C++ (parquet::arrow::FileReader): footers at open, then one row group
// of the projected columns at a time.
#include <arrow/api.h>
#include <arrow/io/file.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/schema.h>
#include <parquet/exception.h>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "core/error.h"
#include "shard/parquet_table.h"

namespace flam::shard {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Index of the top-level field `name` as users spell it (see parquet_table.h), or -1.
int find_field(const std::vector<std::string>& names, const std::string& name,
               bool default_caption) {
  auto exact = std::find(names.begin(), names.end(), name);
  if (exact != names.end()) return static_cast<int>(exact - names.begin());
  std::vector<std::string> wanted{lower(name)};
  if (default_caption) wanted.push_back("text");
  for (const auto& w : wanted) {
    int found = -1, matches = 0;
    for (size_t i = 0; i < names.size(); ++i) {
      if (lower(names[i]) == w) {
        found = static_cast<int>(i);
        ++matches;
      }
    }
    if (matches == 1) return found;
  }
  return -1;
}

void collect_leaves(const parquet::arrow::SchemaField& field, std::vector<int>* leaves) {
  if (field.column_index >= 0) leaves->push_back(field.column_index);
  for (const auto& child : field.children) collect_leaves(child, leaves);
}

bool is_string_type(const arrow::DataType& type) {
  return type.id() == arrow::Type::STRING || type.id() == arrow::Type::LARGE_STRING ||
         type.id() == arrow::Type::STRING_VIEW;
}

std::string string_at(const arrow::Array& a, int64_t i) {
  switch (a.type_id()) {
    case arrow::Type::STRING:
      return std::string(static_cast<const arrow::StringArray&>(a).GetView(i));
    case arrow::Type::LARGE_STRING:
      return std::string(static_cast<const arrow::LargeStringArray&>(a).GetView(i));
    default:
      return std::string(static_cast<const arrow::StringViewArray&>(a).GetView(i));
  }
}

template <class ArrayType>
nlohmann::json number_at(const arrow::Array& a, int64_t i) {
  return nlohmann::json(static_cast<const ArrayType&>(a).Value(i));
}

nlohmann::json value_at(const arrow::Array& a, int64_t i);

template <class ListType>
nlohmann::json list_at(const ListType& list, int64_t i) {
  nlohmann::json items = nlohmann::json::array();
  const auto& values = *list.values();
  for (auto k = list.value_offset(i); k < list.value_offset(i + 1); ++k) {
    items.push_back(value_at(values, k));
  }
  return items;
}

// One cell as JSON, keeping its type: null, bool, integer, float (NaN and infinities: null, as
// JSON has no spelling for them), string, lists as arrays, structs as objects; other types
// (timestamps, binary, dictionaries) as Arrow prints them.
nlohmann::json value_at(const arrow::Array& a, int64_t i) {
  if (a.IsNull(i)) return nullptr;
  switch (a.type_id()) {
    case arrow::Type::BOOL:
      return number_at<arrow::BooleanArray>(a, i);
    case arrow::Type::INT8:
      return number_at<arrow::Int8Array>(a, i);
    case arrow::Type::INT16:
      return number_at<arrow::Int16Array>(a, i);
    case arrow::Type::INT32:
      return number_at<arrow::Int32Array>(a, i);
    case arrow::Type::INT64:
      return number_at<arrow::Int64Array>(a, i);
    case arrow::Type::UINT8:
      return number_at<arrow::UInt8Array>(a, i);
    case arrow::Type::UINT16:
      return number_at<arrow::UInt16Array>(a, i);
    case arrow::Type::UINT32:
      return number_at<arrow::UInt32Array>(a, i);
    case arrow::Type::UINT64:
      return number_at<arrow::UInt64Array>(a, i);
    case arrow::Type::FLOAT:
    case arrow::Type::DOUBLE: {
      double v = a.type_id() == arrow::Type::FLOAT
                     ? static_cast<double>(static_cast<const arrow::FloatArray&>(a).Value(i))
                     : static_cast<const arrow::DoubleArray&>(a).Value(i);
      return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
    }
    case arrow::Type::STRING:
    case arrow::Type::LARGE_STRING:
    case arrow::Type::STRING_VIEW:
      return string_at(a, i);
    case arrow::Type::LIST:
      return list_at(static_cast<const arrow::ListArray&>(a), i);
    case arrow::Type::LARGE_LIST:
      return list_at(static_cast<const arrow::LargeListArray&>(a), i);
    case arrow::Type::STRUCT: {
      const auto& st = static_cast<const arrow::StructArray&>(a);
      nlohmann::json object = nlohmann::json::object();
      for (int f = 0; f < st.num_fields(); ++f) {
        object[st.struct_type()->field(f)->name()] = value_at(*st.field(f), i);
      }
      return object;
    }
    default: {
      auto scalar = a.GetScalar(i);
      return scalar.ok() ? nlohmann::json((*scalar)->ToString()) : nlohmann::json();
    }
  }
}

struct FileInfo {
  std::string path;
  int64_t first_row = 0;            // global index of the file's first row
  std::vector<int64_t> group_rows;  // rows per row group
  std::vector<int> leaves;          // leaf columns to read: url, caption, save_cols (in order)
  // Position of each wanted column among the projected table's fields: url, caption (-1: none),
  // then one per save_col.
  std::vector<int> fields;
};

std::unique_ptr<parquet::arrow::FileReader> open_reader(const std::string& path) {
  auto file = arrow::io::ReadableFile::Open(path);
  if (!file.ok()) {
    throw Error(ErrorKind::kIo, "cannot open input: " + file.status().ToString(),
                ErrorContext{path, -1, "shard.inputs", "", -1});
  }
  try {
    auto reader = parquet::arrow::OpenFile(*file, arrow::default_memory_pool());
    if (!reader.ok()) {
      throw Error(ErrorKind::kIo, "not a readable parquet file: " + reader.status().ToString(),
                  ErrorContext{path, -1, "shard.inputs", "", -1});
    }
    return std::move(*reader);
  } catch (const parquet::ParquetException& e) {
    throw Error(ErrorKind::kIo, std::string("not a readable parquet file: ") + e.what(),
                ErrorContext{path, -1, "shard.inputs", "", -1});
  }
}

}  // namespace

struct ParquetTable::Impl {
  TableColumns columns;
  std::vector<FileInfo> files;
  int64_t rows = 0;
  size_t open_index = static_cast<size_t>(-1);  // the file `reader` has open
  std::unique_ptr<parquet::arrow::FileReader> reader;

  void add_file(const std::string& path) {
    std::unique_ptr<parquet::arrow::FileReader> r = open_reader(path);
    FileInfo info;
    info.path = path;
    info.first_row = rows;
    const auto& meta = *r->parquet_reader()->metadata();
    for (int g = 0; g < meta.num_row_groups(); ++g) {
      info.group_rows.push_back(meta.RowGroup(g)->num_rows());
    }
    const auto& fields = r->manifest().schema_fields;
    std::vector<std::string> names;
    names.reserve(fields.size());
    for (const auto& f : fields) names.push_back(f.field->name());
    // Wanted columns, in InputRow order; -1 for "no caption column".
    std::vector<int> wanted;
    auto need = [&](const std::string& name, const std::string& key, bool default_caption) {
      int i = find_field(names, name, default_caption);
      if (i < 0) {
        std::string have;
        for (const auto& n : names) have += (have.empty() ? "" : ", ") + n;
        throw Error(ErrorKind::kData,
                    "the parquet schema has no column '" + name + "' (it has: " + have + ")",
                    ErrorContext{path, -1, key, "", -1});
      }
      wanted.push_back(i);
    };
    need(columns.url_col, "shard.url_col", false);
    if (!is_string_type(*fields[static_cast<size_t>(wanted[0])].field->type())) {
      throw Error(ErrorKind::kData,
                  "column '" + names[static_cast<size_t>(wanted[0])] + "' is " +
                      fields[static_cast<size_t>(wanted[0])].field->type()->ToString() +
                      ", not a string column of URLs",
                  ErrorContext{path, -1, "shard.url_col", "", -1});
    }
    if (columns.caption_col.empty()) {
      wanted.push_back(-1);
    } else {
      need(columns.caption_col, "shard.caption_col", columns.caption_col == "caption");
    }
    for (const auto& col : columns.save_cols) need(col, "shard.save_cols", false);
    // The projected table holds the distinct wanted fields in schema order.
    std::vector<int> distinct;
    for (int i : wanted) {
      if (i >= 0) distinct.push_back(i);
    }
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    for (int i : distinct) collect_leaves(fields[static_cast<size_t>(i)], &info.leaves);
    for (int i : wanted) {
      info.fields.push_back(
          i < 0 ? -1
                : static_cast<int>(std::lower_bound(distinct.begin(), distinct.end(), i) -
                                   distinct.begin()));
    }
    for (int64_t n : info.group_rows) rows += n;
    files.push_back(std::move(info));
  }

  // Appends rows [from, to) of row group `g` of file `f` (row numbers within the group).
  void read_group(size_t f, int g, int64_t from, int64_t to, std::vector<InputRow>* out) {
    const FileInfo& info = files[f];
    if (open_index != f) {
      reader = open_reader(info.path);
      open_index = f;
    }
    std::shared_ptr<arrow::Table> table;
    try {
      auto got = reader->ReadRowGroup(g, info.leaves);
      if (!got.ok()) {
        throw Error(ErrorKind::kIo,
                    "cannot decode row group " + std::to_string(g) + ": " + got.status().ToString(),
                    ErrorContext{info.path, -1, "", "", -1});
      }
      auto combined = (*got)->CombineChunks();
      if (!combined.ok()) {
        throw Error(
            ErrorKind::kIo,
            "cannot decode row group " + std::to_string(g) + ": " + combined.status().ToString(),
            ErrorContext{info.path, -1, "", "", -1});
      }
      table = *combined;
    } catch (const parquet::ParquetException& e) {
      throw Error(ErrorKind::kIo,
                  "cannot decode row group " + std::to_string(g) + ": " + std::string(e.what()),
                  ErrorContext{info.path, -1, "", "", -1});
    }
    auto column = [&](int field) -> const arrow::Array* {
      if (field < 0) return nullptr;
      const auto& chunks = table->column(field)->chunks();
      return chunks.empty() ? nullptr : chunks[0].get();
    };
    const arrow::Array* url = column(info.fields[0]);
    const arrow::Array* caption = column(info.fields[1]);
    std::vector<const arrow::Array*> extra;
    for (size_t c = 2; c < info.fields.size(); ++c) extra.push_back(column(info.fields[c]));
    for (int64_t i = from; i < to; ++i) {
      InputRow row;
      if (!url || url->IsNull(i)) {
        row.error = "null URL";
      } else {
        row.url = string_at(*url, i);
      }
      if (caption && !caption->IsNull(i)) {
        nlohmann::json v = value_at(*caption, i);
        row.caption = v.is_string() ? v.get<std::string>() : v.dump();
      }
      for (const arrow::Array* a : extra) row.extra.push_back(a ? value_at(*a, i) : nullptr);
      out->push_back(std::move(row));
    }
  }
};

ParquetTable::ParquetTable(const std::vector<std::string>& paths, const TableColumns& columns)
    : impl_(std::make_unique<Impl>()) {
  impl_->columns = columns;
  for (const auto& path : paths) impl_->add_file(path);
}

ParquetTable::~ParquetTable() = default;

int64_t ParquetTable::row_count() const { return impl_->rows; }

void ParquetTable::read(int64_t begin, int64_t end, std::vector<InputRow>* out) {
  end = std::min(end, impl_->rows);
  for (size_t f = 0; f < impl_->files.size() && begin < end; ++f) {
    int64_t group_first = impl_->files[f].first_row;
    const auto& groups = impl_->files[f].group_rows;
    for (size_t g = 0; g < groups.size() && begin < end; ++g) {
      const int64_t group_end = group_first + groups[g];
      if (begin < group_end) {
        const int64_t stop = std::min(end, group_end);
        impl_->read_group(f, static_cast<int>(g), begin - group_first, stop - group_first, out);
        begin = stop;
      }
      group_first = group_end;
    }
  }
}

}  // namespace flam::shard
