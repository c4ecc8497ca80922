// flam inspect checkpoint DIR [--json]: a checkpoint's manifest, a verification of every rank
// file against it, and whether training can resume from it. DIR is a step directory, or a run
// directory / checkpoints folder (then every committed checkpoint in it is listed and the newest
// is inspected). DIR may be in a bucket: "s3://bucket/prefix/step_N" or the checkpoints prefix
// (train.checkpoint.dir); the step is downloaded into a temporary folder, removed at the end.
// Exit code 0 if resumable, 5 (data error) if not.
#include <cinttypes>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/exit_codes.h"
#include "core/run_layout.h"
#include "train/checkpoint/checkpoint_reader.h"
#include "train/checkpoint/export.h"
#include "train/checkpoint/manifest.h"

namespace flam::cli {

int cmd_inspect_checkpoint(const Argv& argv) {
  Args args(argv, {}, {"json"});
  if (args.positionals().size() != 1) {
    throw Error(ErrorKind::kUsage, "inspect checkpoint takes one directory");
  }
  const train::LocalCheckpoint checkpoint(args.positionals()[0]);
  const std::string& dir = checkpoint.dir();
  const std::string& shown = checkpoint.name();
  const std::string parent = shown.substr(0, shown.rfind('/'));
  const std::vector<int64_t>& all = checkpoint.committed();
  train::CheckpointReader reader(dir);
  const train::Manifest& m = reader.manifest();

  nlohmann::json files = nlohmann::json::array();
  std::string broken;
  for (int r = 0; r < m.world_size; ++r) {
    std::string status = "ok";
    try {
      reader.verify_file(r);
    } catch (const Error& e) {
      // A bucket checkpoint's messages name its objects, not the temporary download.
      status = checkpoint.named(e.what());
      if (broken.empty()) broken = status;
    }
    files.push_back({{"name", m.files[r].name}, {"bytes", m.files[r].bytes}, {"status", status}});
  }
  const bool resumable = broken.empty();

  if (args.flag("json")) {
    nlohmann::json j = nlohmann::json::parse(read_file(run_layout::manifest_file(dir)));
    j["path"] = shown;
    j["verification"] = files;
    j["resumable"] = resumable;
    std::printf("%s\n", j.dump(1).c_str());
    return resumable ? kExitOk : kExitDataError;
  }
  if (all.size() > 1) {
    std::printf("checkpoints in %s:", parent.c_str());
    for (int64_t s : all) std::printf(" %" PRId64, s);
    std::printf("\n");
  }
  std::printf("checkpoint  %s\nstep        %" PRId64
              "\nworld size  %d\ncreated     %s\n"
              "config hash %s\n",
              shown.c_str(), m.step, m.world_size, m.created.c_str(), m.config_hash.c_str());
  int64_t params = 0;
  for (const auto& b : m.layout.units) params += b.numel;
  std::printf("units       %zu, %" PRId64 " trained parameters\n", m.layout.units.size(), params);
  for (const auto& b : m.layout.units) {
    std::printf("  %-40s %12" PRId64 " (padded %" PRId64 ", %zu tensors)\n", b.name.c_str(),
                b.numel, b.padded_numel, b.params.size());
  }
  for (const auto& [k, v] : m.scalars) std::printf("scalar      %s = %g\n", k.c_str(), v);
  for (const auto& f : files) {
    std::printf("file        %s %12" PRIu64 " bytes  %s\n", f["name"].get<std::string>().c_str(),
                f["bytes"].get<uint64_t>(), f["status"].get<std::string>().c_str());
  }
  std::printf("resumable   %s\n", resumable ? "yes" : ("no: " + broken).c_str());
  return resumable ? kExitOk : kExitDataError;
}

}  // namespace flam::cli
