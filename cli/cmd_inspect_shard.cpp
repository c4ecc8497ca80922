// flam inspect shard PATH_OR_URL [--json] [--config F] [--set k=v ...]: lists the samples of one
// shard (key and member sizes), then a summary. A URL is streamed under the config's data.stream
// timeouts, deadline and minimum rate. A shard that cannot be read to its end prints what it
// could, the error on stderr, and exits with kExitDataError.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "core/error.h"
#include "core/exit_codes.h"
#include "pipeline/byte_source.h"
#include "pipeline/sample_grouper.h"
#include "pipeline/tar_reader.h"

namespace flam::cli {

int cmd_inspect_shard(const Argv& argv) {
  Args args(argv, {"config", "set"}, {"json"});
  if (args.positionals().size() != 1) {
    throw Error(ErrorKind::kUsage,
                "usage: flam inspect shard PATH_OR_URL [--json] [--config F] [--set k=v ...]");
  }
  const pipeline::SourceOptions stream =
      load_config(args.get_or("config", ""), args.all("set")).data.stream;
  const std::string& name = args.positionals()[0];
  const bool json = args.flag("json");
  auto dump = [](const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };

  int64_t samples = 0, members = 0, bytes = 0, errors = 0;
  int64_t duplicate_keys = 0, dropped_members = 0;
  std::string error_text;
  try {
    pipeline::TarReader reader(pipeline::open_source(name, stream));
    pipeline::SampleGrouper grouper(reader);
    pipeline::Sample sample;
    try {
      while (grouper.next(sample)) {
        ++samples;
        nlohmann::json sizes = nlohmann::json::object();
        std::string line = sample.key;
        for (const auto& [extension, data] : sample.members) {
          ++members;
          bytes += static_cast<int64_t>(data.size());
          sizes[extension] = data.size();
          line += " " + extension + ":" + std::to_string(data.size());
        }
        if (json) {
          std::cout << dump({{"key", sample.key}, {"members", sizes}}) << "\n";
        } else {
          std::cout << line << "\n";
        }
      }
    } catch (...) {
      duplicate_keys = grouper.duplicate_keys();
      dropped_members = grouper.dropped_members();
      throw;
    }
    duplicate_keys = grouper.duplicate_keys();
    dropped_members = grouper.dropped_members();
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kUsage || e.kind() == ErrorKind::kConfig) throw;
    ++errors;
    error_text = e.what();
    std::cerr << "flam inspect shard: " << error_text << "\n";
  }

  if (json) {
    nlohmann::json summary = {{"shard", name},
                              {"samples", samples},
                              {"members", members},
                              {"bytes", bytes},
                              {"errors", errors},
                              {"duplicate_keys", duplicate_keys},
                              {"dropped_members", dropped_members}};
    if (!error_text.empty()) summary["error"] = error_text;
    std::cout << dump({{"summary", summary}}) << "\n";
  } else {
    std::cout << "summary: samples " << samples << " members " << members << " bytes " << bytes
              << " errors " << errors << " duplicate_keys " << duplicate_keys << " dropped_members "
              << dropped_members << "\n";
  }
  std::cout.flush();
  return errors > 0 ? kExitDataError : kExitOk;
}

}  // namespace flam::cli
