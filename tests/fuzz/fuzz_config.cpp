// The whole config tree from YAML text: parse, duplicate/depth checks, typed reading with bounds
// and unknown keys. Lines after a line "--set" are applied as --set arguments first.
#include <sstream>

#include "cli/config.h"
#include "core/config_file.h"
#include "core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> sets;
  const size_t split = text.find("\n--set\n");
  if (split != std::string::npos) {
    std::stringstream lines(text.substr(split + 7));
    for (std::string line; std::getline(lines, line);) sets.push_back(line);
    text.resize(split);
  }
  try {
    flam::ConfigDocument doc = flam::ConfigDocument::parse(text, "fuzz.yaml");
    for (const std::string& s : sets) doc.set(s);
    flam::Config config = flam::read_config<flam::Config>(doc);
    flam::dump_config(config);
  } catch (const flam::Error&) {
  }
  return 0;
}
