#include "shard/table_check.h"

#include "core/error.h"
#include "core/log.h"

namespace flam::shard {

void check_bad_rows(const std::vector<InputRow>& rows, double max_fraction,
                    const std::string& input_kind) {
  if (rows.empty()) {
    throw Error(ErrorKind::kConfig, "the inputs hold no rows",
                ErrorContext{"", -1, "shard.inputs", "", -1});
  }
  int64_t bad = 0;
  int64_t first = -1;
  for (size_t i = 0; i < rows.size(); ++i) {
    // A well-formed row with bad content (a caption that is not UTF-8) is a per-item drop.
    if (rows[i].error.empty() || rows[i].reason == "invalid_utf8") continue;
    if (first < 0) first = static_cast<int64_t>(i);
    ++bad;
  }
  if (bad == 0) return;
  const std::string what =
      std::to_string(bad) + " of " + std::to_string(rows.size()) + " input rows are not " +
      (input_kind == "mmc4" ? "MMC4 documents" : "URL table rows") + "; the first, row " +
      std::to_string(first) + ": " + rows[static_cast<size_t>(first)].error;
  if (static_cast<double>(bad) > max_fraction * static_cast<double>(rows.size())) {
    throw Error(ErrorKind::kConfig,
                what + " (more than shard.max_bad_row_fraction = " + std::to_string(max_fraction) +
                    "; check shard.input_kind, shard.input_format and the column names)",
                ErrorContext{"", -1, "shard.inputs", "", -1});
  }
  FLAM_LOG(WARN) << what << " (counted as bad_row)";
}

}  // namespace flam::shard
