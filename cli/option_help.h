// The text `flam SUBCOMMAND --help` shows for each option. Which options a subcommand has comes
// from its own Args table (cli/args.h, collected as `flam completion bash` does), so the list
// cannot drift from the parser; this table adds the words: what the value looks like and what
// the option does, with its default. tests/cli/test_help.sh checks that every option the parser
// accepts is described here.
#pragma once

#include <string>

namespace flam::cli {

struct OptionHelp {
  const char* value;    // the value's form ("F", "N", "key=value"); "" for a flag
  const char* meaning;  // one line, ending with the default where there is one
};

// The help of `--option` of `command` ("train", "inspect batch"); nullptr when there is none.
const OptionHelp* option_help(const std::string& command, const std::string& option);

// One option's entry in `--help`: "  HEAD  MEANING" with MEANING starting in column 34 (or after
// a longer HEAD) and wrapped at word boundaries so that no line exceeds kHelpColumns; the
// continuation lines are indented to column 34. A single word longer than the space left stays
// whole. Ends with a newline.
inline constexpr int kHelpColumns = 100;
std::string format_option_help(const std::string& head, const std::string& meaning);

}  // namespace flam::cli
