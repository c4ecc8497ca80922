#include "pipeline_fixture.h"

#include <gtest/gtest.h>
#include <sentencepiece_trainer.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/base64.h"
#include "pipeline/image.h"
#include "pipeline/tar_writer.h"

namespace flam::pipeline::testing {
namespace {

const char* kWords[] = {"the",   "a",     "photo", "of",    "red",   "cat",    "dog",   "on",
                        "green", "grass", "blue",  "sky",   "with",  "coffee", "cup",   "rocket",
                        "man",   "woman", "in",    "space", "small", "large",  "house", "near",
                        "river", "old",   "new",   "city",  "night", "day",    "and",   "is"};
constexpr int kNumWords = sizeof(kWords) / sizeof(kWords[0]);

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string sentence(int seed, int words) {
  std::string s;
  for (int w = 0; w < words; ++w) {
    if (w) s += ' ';
    s += kWords[(seed * 7 + w * 13 + w * w) % kNumWords];
  }
  return s;
}

}  // namespace

std::string run_python_oracle(const std::string& script, const std::string& input_path, bool* ok) {
  const char* src = std::getenv("FLAM_SOURCE_DIR");
  const std::string cmd = std::string(FLAM_PIPELINE_PYTHON) + " " + std::string(src ? src : ".") +
                          "/tests/pipeline/" + script + " " + input_path;
  FILE* pipe = popen(cmd.c_str(), "r");
  *ok = false;
  if (pipe == nullptr) return "";
  std::string out;
  char buf[4096];
  size_t got;
  while ((got = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, got);
  *ok = pclose(pipe) == 0;
  return out;
}

namespace {

// The directories make_temp_dir made, removed at exit.
class TempDirs {
 public:
  ~TempDirs() {
    if (std::getenv("FLAM_KEEP_TMP") != nullptr) return;
    for (const std::string& dir : dirs_) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  }
  void add(const std::string& dir) {
    std::lock_guard<std::mutex> lock(mu_);
    dirs_.push_back(dir);
  }

 private:
  std::mutex mu_;
  std::vector<std::string> dirs_;
};

TempDirs& temp_dirs() {
  static TempDirs dirs;
  return dirs;
}

}  // namespace

std::string make_temp_dir(const std::string& name) {
  static std::atomic<int> counter{0};
  const char* tmp = std::getenv("TMPDIR");
  std::filesystem::path dir =
      std::filesystem::path(tmp ? tmp : "/tmp") /
      ("flam-" + name + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  temp_dirs().add(dir.string());
  return dir.string();
}

const std::string& tiny_tokenizer_path() {
  static std::once_flag once;
  static std::string path;
  std::call_once(once, [] {
    const std::string dir = make_temp_dir("spm");
    const std::string corpus = dir + "/corpus.txt";
    {
      std::ofstream out(corpus);
      for (int i = 0; i < 600; ++i) out << sentence(i, 6 + i % 9) << " " << i << "\n";
    }
    const std::string prefix = dir + "/tiny";
    const auto status = sentencepiece::SentencePieceTrainer::Train(
        "--input=" + corpus + " --model_prefix=" + prefix +
        " --vocab_size=320 --model_type=bpe --character_coverage=1.0 --minloglevel=2"
        " --num_threads=1");
    if (!status.ok()) {
      ADD_FAILURE() << "SentencePiece training failed: " << status.ToString();
    }
    path = prefix + ".model";
  });
  return path;
}

std::vector<std::string> photo_jpegs(int n, int width, int height) {
  static const char* kPhotos[] = {"astronaut.png", "camera.png", "chelsea.png",
                                  "coffee.png",    "grass.png",  "rocket.jpg"};
  static std::vector<Image> photos;
  static std::once_flag once;
  std::call_once(once, [] {
    const char* src = std::getenv("FLAM_SOURCE_DIR");
    const std::string root = std::string(src ? src : ".") + "/tests/data/photos/";
    for (const char* p : kPhotos) {
      DecodeResult r = decode_image(read_all(root + p));
      if (!r.ok()) ADD_FAILURE() << "cannot decode " << root << p << ": " << r.message;
      photos.push_back(std::move(r.image));
    }
  });
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    const Image& photo = photos[i % photos.size()];
    // Crop a region 4x the target and shrink it, at an offset that differs per image.
    const int cw = std::min(photo.width, width * 4), ch = std::min(photo.height, height * 4);
    const int left = (i * 37) % (photo.width - cw + 1);
    const int top = (i * 53) % (photo.height - ch + 1);
    const Image small = resize_bicubic(crop(photo, left, top, cw, ch), width, height);
    out.push_back(encode_jpeg(small, 90));
  }
  return out;
}

std::string laion_caption(int shard, int index) {
  return "  " + sentence(shard * 100 + index, 3 + index % 5) + " " + std::to_string(index) + "\n";
}

std::string sample_key(int shard, int index) {
  char key[32];
  std::snprintf(key, sizeof(key), "%05d%04d", shard, index);
  return key;
}

std::string write_laion_shard(const std::string& dir, int shard, int count) {
  char name[64];
  std::snprintf(name, sizeof(name), "/laion-%05d.tar", shard);
  const std::string path = dir + name;
  const std::vector<std::string> jpegs = photo_jpegs(count + shard, 24, 20);
  TarWriter writer(path);
  for (int i = 0; i < count; ++i) {
    const std::string key = sample_key(shard, i);
    writer.add(key + ".jpg", jpegs[shard + i]);
    writer.add(key + ".txt", laion_caption(shard, i));
    writer.add(key + ".json", "{\"key\": \"" + key + "\"}");
  }
  writer.close();
  return path;
}

std::string write_mmc4_shard(const std::string& dir, int shard, int count, bool images_as_members) {
  char name[64];
  std::snprintf(name, sizeof(name), "/mmc4-%05d.tar", shard);
  const std::string path = dir + name;
  const std::vector<std::string> jpegs = photo_jpegs(2 * count + shard, 24, 20);
  TarWriter writer(path);
  for (int i = 0; i < count; ++i) {
    const std::string key = sample_key(shard, i);
    nlohmann::json doc;
    std::vector<std::string> text;
    for (int s = 0; s < 4; ++s) text.push_back(sentence(shard * 1000 + i * 10 + s, 4));
    doc["text_list"] = text;
    nlohmann::json infos = nlohmann::json::array();
    for (int j = 0; j < 2; ++j) {
      nlohmann::json info;
      info["image_name"] = "img" + std::to_string(j) + ".jpg";
      info["raw_url"] = "http://example.invalid/" + key + "/" + std::to_string(j);
      info["matched_text_index"] = 1 + 2 * j;
      info["matched_sim"] = 0.3;
      if (!images_as_members) info["image_base64"] = base64_encode(jpegs[shard + 2 * i + j]);
      infos.push_back(info);
    }
    doc["image_info"] = infos;
    doc["similarity_matrix"] = {{0.1, 0.3, 0.2, 0.1}, {0.1, 0.2, 0.1, 0.3}};
    writer.add(key + ".json", doc.dump());
    if (images_as_members) {
      for (int j = 0; j < 2; ++j)
        writer.add(key + ".img" + std::to_string(j) + ".jpg", jpegs[shard + 2 * i + j]);
    }
  }
  writer.close();
  return path;
}

DataOptions small_options() {
  DataOptions o;
  o.tokenizer = tiny_tokenizer_path();
  o.image.size = 16;
  o.image.flip = "none";
  o.laion.batch_size = 4;
  o.laion.seq_len = 16;
  o.mmc4.batch_size = 2;
  o.mmc4.seq_len = 48;
  o.mmc4.max_images = 3;
  o.mmc4.min_image_bytes = 0;
  o.mmc4.single_image_keep_prob = 1.0;
  o.loader.threads = 2;
  o.loader.prefetch_batches = 2;
  o.loader.shuffle_buffer = 8;
  return o;
}

}  // namespace flam::pipeline::testing
