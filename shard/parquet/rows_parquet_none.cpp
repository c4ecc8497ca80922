// write_rows_parquet in a build without Arrow: img2dataset's per-shard parquet is not written.
#include "shard/rows_parquet.h"

namespace flam::shard {

void write_rows_parquet(const std::string&, const std::vector<nlohmann::ordered_json>&,
                        const ShardOptions&) {}

}  // namespace flam::shard
