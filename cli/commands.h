// The `flam` subcommands. Each takes the arguments after its name and returns a process exit
// code (core/exit_codes.h); flam::Error escaping one is turned into a message and an exit code
// by main.cpp. Commands are thin: parse, load config, call a module.
#pragma once

#include <string>
#include <vector>

namespace flam::cli {

using Argv = std::vector<std::string>;

int cmd_config(const Argv& args);
int cmd_shard(const Argv& args);
int cmd_inspect_shard(const Argv& args);
int cmd_inspect_model(const Argv& args);
int cmd_inspect_batch(const Argv& args);
int cmd_inspect_checkpoint(const Argv& args);
int cmd_train(const Argv& args);
int cmd_submit(const Argv& args);
int cmd_status(const Argv& args);
int cmd_watch(const Argv& args);
int cmd_cancel(const Argv& args);
int cmd_export(const Argv& args);
int cmd_parity(const Argv& args);
int cmd_plan(const Argv& args);
int cmd_eval(const Argv& args);
int cmd_generate(const Argv& args);

// For subcommands not built yet: says so on stderr and returns kExitUsage.
int not_built(const std::string& name);

}  // namespace flam::cli
