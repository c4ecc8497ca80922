// check_bad_rows: the guard between reading a run's input and downloading anything. Rows that are
// not what their format says (InputRow::error with reason "bad_row"; "invalid_utf8" rows are
// well-formed and only dropped) are counted per shard as "bad_row"; when more than
// `max_fraction` of all rows are bad, the input is not what the config says it is (an MMC4 run fed
// a LAION table, a zip of something else, a TSV read as CSV) and the run stops before it starts.
//
// Thread safety: pure function.
#pragma once

#include <vector>

#include "shard/url_reader.h"

namespace flam::shard {

// Logs the first bad row (index and reason) as a warning when there is one. Throws
// flam::Error(kConfig, exit 2: never retried) with the count, the first bad row and the config
// keys to check when bad rows exceed max_fraction of `rows`, or when `rows` is empty.
void check_bad_rows(const std::vector<InputRow>& rows, double max_fraction,
                    const std::string& input_kind);

}  // namespace flam::shard
