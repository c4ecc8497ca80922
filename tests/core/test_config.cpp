// Typed config: defaults, overrides, and errors that name file, line and key path.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "cli/config.h"
#include "core/config_file.h"
#include "core/error.h"

namespace flam {
namespace {

std::string write_temp(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + name;
  std::ofstream(path) << text;
  return path;
}

std::string error_of(const std::string& path, const std::vector<std::string>& sets = {}) {
  try {
    load_config(path, sets);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Config, DefaultsAreOpenFlamingo9B) {
  Config c = load_config("");
  EXPECT_EQ(c.model.lang.layers, 32);
  EXPECT_EQ(c.model.vision.width, 1024);
  EXPECT_EQ(c.model.xattn.every_n_layers, 4);
  EXPECT_DOUBLE_EQ(c.train.optimizer.lr, 1e-4);
  EXPECT_DOUBLE_EQ(c.data.mmc4.sim_threshold, 0.24);
}

TEST(Config, FileAndOverrides) {
  std::string path = write_temp("ok.yaml",
                                "train:\n"
                                "  steps: 7\n"
                                "  optimizer:\n"
                                "    lr: 0.001\n");
  Config c = load_config(path, {"train.optimizer.lr=3e-4", "run.seed=9"});
  EXPECT_EQ(c.train.steps, 7);
  EXPECT_DOUBLE_EQ(c.train.optimizer.lr, 3e-4);
  EXPECT_EQ(c.run.seed, 9);
}

TEST(Config, MisspelledKeyNamesFileLineAndPath) {
  std::string path = write_temp("typo.yaml",
                                "train:\n"
                                "  optimizer:\n"
                                "    lr: 0.001\n"
                                "    wieght_decay: 0.1\n");
  EXPECT_EQ(error_of(path).rfind(path + ":4: train.optimizer.wieght_decay: unknown key", 0), 0u)
      << error_of(path);
}

TEST(Config, StringWhereNumberBelongs) {
  std::string path = write_temp("type.yaml",
                                "train:\n"
                                "  steps: many\n");
  EXPECT_EQ(error_of(path), path + ":2: train.steps: expected an integer, got 'many'");
}

TEST(Config, NegativeLearningRate) {
  std::string path = write_temp("neg.yaml",
                                "train:\n"
                                "  optimizer:\n"
                                "    lr: -0.1\n");
  EXPECT_EQ(error_of(path), path + ":3: train.optimizer.lr: must be > 0 (got -0.1)");
}

TEST(Config, BadChoiceAndBadOverride) {
  std::string path = write_temp("choice.yaml", "train:\n  schedule:\n    kind: sawtooth\n");
  EXPECT_NE(error_of(path).find("train.schedule.kind: must be one of constant, linear, cosine"),
            std::string::npos);
  EXPECT_NE(error_of("", {"train.nope=1"}).find("train.nope: unknown key"), std::string::npos);
  EXPECT_NE(error_of("", {"noequals"}).find("expected --set key.path=value"), std::string::npos);
}

TEST(Config, YamlSyntaxErrorNamesLine) {
  std::string path = write_temp("syntax.yaml", "train:\n  steps: [1, 2\n  lr: 3\n");
  std::string err = error_of(path);
  EXPECT_EQ(err.rfind(path + ":", 0), 0u) << err;
  EXPECT_NE(err.find("YAML syntax error"), std::string::npos) << err;
}

TEST(Config, DumpRoundTrips) {
  Config c = load_config("", {"train.optimizer.lr=0.0003", "data.laion.shards=[a.tar, b.tar]"});
  std::string yaml = dump_config(c);
  EXPECT_NE(yaml.find("lr: 0.0003"), std::string::npos) << yaml;
  ConfigDocument doc = ConfigDocument::parse(yaml, "dump");
  Config again = read_config<Config>(doc);
  EXPECT_EQ(dump_config(again), yaml);
  EXPECT_EQ(config_hash(again), config_hash(c));
  EXPECT_EQ(again.data.laion.shards.size(), 2u);
}

TEST(Config, ShippedConfigsLoad) {
  std::string root = std::getenv("FLAM_SOURCE_DIR") ? std::getenv("FLAM_SOURCE_DIR") : ".";
  Config of9b = load_config(root + "/configs/of-9b.yaml");
  EXPECT_EQ(of9b.model.lang.ffn_dim, 11008);
  EXPECT_EQ(of9b.model.perceiver.num_latents, 64);
  EXPECT_EQ(of9b.data.mmc4.max_images, 6);
  EXPECT_EQ(of9b.train.schedule.warmup_steps, 5000);
  Config tiny = load_config(root + "/configs/tiny.yaml");
  EXPECT_LT(tiny.model.lang.dim, 256);
}

// Issue #17: the silent and unclear config cases each end in an error naming what to fix.
TEST(Config, DuplicateKeyNamesFileAndLine) {
  std::string path = write_temp("dup.yaml", "train:\n  steps: 1\n  steps: 2\n");
  EXPECT_EQ(error_of(path), path + ":3: train.steps: duplicate key (first at line 2)");
  std::string top = write_temp("dup_top.yaml", "data: {}\ntrain: {}\ndata: {}\n");
  EXPECT_EQ(error_of(top), top + ":3: data: duplicate key (first at line 1)");
}

// Found by fuzz_config (regression seed corpus/fuzz_config/regress-complex-key): a complex key
// ended the process in std::terminate from yaml-cpp's conversion.
TEST(Config, ComplexKeyIsAnErrorNotACrash) {
  std::string path = write_temp("complex.yaml", "train:\n  ? steps: 12\n  : 3\n");
  EXPECT_EQ(error_of(path), path + ":2: train: a key must be a plain name, not a list or mapping");
}

TEST(Config, DirectoryIsNotAConfig) {
  try {
    load_config(::testing::TempDir());
    FAIL() << "a directory loaded as a config";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_EQ(e.context().file, ::testing::TempDir());
    EXPECT_NE(e.message().find("is a directory"), std::string::npos) << e.what();
  }
}

TEST(Config, DeepNestingSaysTheLimitAndTheLine) {
  std::string text = "train:\n";
  for (int i = 0; i < 80; ++i)
    text += std::string(2 * (i + 1), ' ') + "k" + std::to_string(i) + ":\n";
  text += std::string(164, ' ') + "leaf: 1\n";
  std::string path = write_temp("deep.yaml", text);
  std::string err = error_of(path);
  EXPECT_NE(err.find("nesting deeper than 64 levels"), std::string::npos) << err;
  EXPECT_EQ(err.rfind(path + ":66: train.k0.k1.", 0), 0u) << err;  // k63's value, level 65
  // Deeper than the parser's own guard: still the limit and a line, not "bad file".
  std::string flow = write_temp("deeper.yaml", "train: " + std::string(5000, '[') + "\n");
  err = error_of(flow);
  EXPECT_NE(err.find("nesting deeper than the YAML parser's limit"), std::string::npos) << err;
  EXPECT_EQ(err.rfind(flow + ":2:", 0), 0u) << err;  // where the parser stopped: the line's end
}

TEST(Config, SetAcceptsBracePatternsInLists) {
  Config c = load_config("", {"data.laion.shards=[/data/laion2b/{00000..23134}.tar]",
                              "data.mmc4.shards=['/m/{a,b}.tar', /m/{000..009}.tar]"});
  EXPECT_EQ(c.data.laion.shards, std::vector<std::string>{"/data/laion2b/{00000..23134}.tar"});
  EXPECT_EQ(c.data.mmc4.shards, (std::vector<std::string>{"/m/{a,b}.tar", "/m/{000..009}.tar"}));
}

TEST(Config, SetErrorsNameTheSetArgument) {
  std::string path = write_temp("base.yaml", "train:\n  steps: 10\n");
  EXPECT_EQ(error_of(path, {"data.image.size=100000"}),
            "--set data.image.size=100000: data.image.size: must be in [1, 4096] (got 100000)");
  EXPECT_EQ(error_of(path, {"train.steps=many"}),
            "--set train.steps=many: train.steps: expected an integer, got 'many'");
  EXPECT_NE(error_of(path, {"data.laion.nope=1"})
                .find("--set data.laion.nope=1: data.laion.nope: unknown key"),
            std::string::npos);
  EXPECT_NE(error_of(path, {"data.laion.shards=[a, {b"}).find("--set data.laion.shards=[a, {b"),
            std::string::npos);
  // A value from the file still names the file's line.
  EXPECT_EQ(error_of(write_temp("size.yaml", "data:\n  image:\n    size: 0\n"))
                .find(":3: data.image.size"),
            ::testing::TempDir().size() + std::string("size.yaml").size());
}

TEST(Config, SizeLikeKeysHaveUpperBounds) {
  for (const char* set :
       {"data.laion.batch_size=1000000", "data.mmc4.seq_len=100000000",
        "data.mmc4.max_images=100000", "data.loader.threads=100000",
        "data.loader.prefetch_batches=100000", "shard.transform.image_size=100000",
        "shard.download.concurrency=1000000"}) {
    std::string err = error_of("", {set});
    EXPECT_NE(err.find("must be in ["), std::string::npos) << set << ": " << err;
  }
}

}  // namespace
}  // namespace flam
