#include "cli/config.h"

#include <openssl/evp.h>

#include <cstdio>

#include "core/config_file.h"

namespace flam {

void describe(ConfigMap& m, Config& c) {
  m.section("run", c.run);
  m.section("model", c.model);
  m.section("data", c.data);
  m.section("train", c.train);
  m.section("shard", c.shard);
  m.section("slurm", c.slurm);
  m.section("eval", c.eval);
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  ConfigDocument doc =
      path.empty() ? ConfigDocument::parse("", "<defaults>") : ConfigDocument::load(path);
  for (const auto& o : overrides) doc.set(o);
  return read_config<Config>(doc);
}

std::string dump_config(const Config& config) { return write_config(config); }

std::string config_hash(const Config& config) {
  std::string text = dump_config(config);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr);
  std::string hex;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof(buf), "%02x", digest[i]);
    hex += buf;
  }
  return hex;
}

}  // namespace flam
