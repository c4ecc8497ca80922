// Loader in one process: batch contents, independence from the thread count, exact resume from
// state(), repartition 2 -> 3 -> 1 with every sample of an epoch read exactly once, bad data
// skipped and counted by reason (corrupt image, invalid UTF-8, bad JSON, truncated shard,
// missing file, HTTP 404 from a real server), a slow shard skipped while the others feed the
// batches (and its decision replayed by restore), flip modes, and state validation.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/error.h"
#include "pipeline/image.h"
#include "pipeline/loader.h"
#include "pipeline/tar_writer.h"
#include "pipeline_fixture.h"

namespace flam::pipeline {
namespace {

constexpr int kShards = 5;
constexpr int kPerShard = 12;

// Five LAION shards of 12 samples each, made once per process.
const std::vector<std::string>& laion_shards() {
  static std::vector<std::string> shards = [] {
    const std::string dir = testing::make_temp_dir("laion");
    std::vector<std::string> out;
    for (int s = 0; s < kShards; ++s) out.push_back(testing::write_laion_shard(dir, s, kPerShard));
    return out;
  }();
  return shards;
}

DataOptions laion_options(int threads = 2) {
  DataOptions o = testing::small_options();
  o.laion.shards = laion_shards();
  o.loader.threads = threads;
  return o;
}

void expect_same(const Batch& a, const Batch& b, const std::string& what) {
  EXPECT_EQ(a.keys, b.keys) << what;
  EXPECT_EQ(a.epochs, b.epochs) << what;
  EXPECT_EQ(a.input_ids, b.input_ids) << what;
  EXPECT_EQ(a.attention_mask, b.attention_mask) << what;
  EXPECT_EQ(a.labels, b.labels) << what;
  EXPECT_EQ(a.image_present, b.image_present) << what;
  EXPECT_TRUE(a.images == b.images) << what;
  EXPECT_EQ(a.dropped, b.dropped) << what;
}

class LoaderTest : public ::testing::Test {
 protected:
  LoaderTest() : tok_(testing::tiny_tokenizer_path()) {}
  Tokenizer tok_;
};

TEST_F(LoaderTest, BatchShapesAndContents) {
  DataOptions o = laion_options();
  o.loader.shuffle_buffer = 1;  // no shuffling: the first shard of the permutation, in tar order
  Loader loader(dataset_spec(o, DatasetKind::kLaion, tok_), 0, 1, 7);
  const Batch b = loader.next();
  EXPECT_EQ(b.kind, DatasetKind::kLaion);
  EXPECT_EQ(b.batch_size, 4);
  EXPECT_EQ(b.max_images, 1);
  EXPECT_EQ(b.images.size(), 4u * 1 * 3 * 16 * 16);
  EXPECT_EQ(b.input_ids.size(), 64u);
  EXPECT_EQ(b.image_present, std::vector<uint8_t>(4, 1));
  ASSERT_EQ(b.keys.size(), 4u);
  const std::string shard = b.keys[0].substr(0, b.keys[0].find('#'));
  const int shard_index = std::stoi(shard.substr(shard.size() - 9, 5));
  const std::vector<std::string> jpegs = testing::photo_jpegs(kPerShard + shard_index, 24, 20);
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(b.keys[r], shard + "#" + testing::sample_key(shard_index, r));
    EXPECT_EQ(b.epochs[r], 0);
    const std::vector<int64_t> row(b.input_ids.begin() + r * 16, b.input_ids.begin() + r * 16 + 16);
    std::string caption = testing::laion_caption(shard_index, r);
    caption = caption.substr(2, caption.size() - 3);  // strip()
    const std::string text = tok_.decode(row);
    EXPECT_TRUE(text.starts_with("<s><image>" + caption.substr(0, 4))) << text;
    EXPECT_EQ(b.labels[r * 16], -100);
    EXPECT_EQ(b.labels[r * 16 + 1], -100);
    // The image plane equals CLIP preprocessing of the sample's JPEG, in CHW order.
    const Image expected = clip_preprocess(decode_image(jpegs[shard_index + r]).image, 16);
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 256; ++p)
        ASSERT_EQ(b.images[b.image_offset(r, 0) + c * 256 + p], expected.pixels[p * 3 + c]);
  }
  // The shuffle buffer (8 samples by default) holds raw bytes while the loader runs.
  Loader buffered(dataset_spec(laion_options(), DatasetKind::kLaion, tok_), 0, 1, 7);
  buffered.next();
  EXPECT_GT(buffered.queued_bytes(), 0);
}

TEST_F(LoaderTest, OrderDoesNotDependOnThreads) {
  std::vector<std::vector<Batch>> runs;
  for (const int threads : {1, 2, 8}) {
    DataOptions o = laion_options(threads);
    o.image.flip = "image";
    Loader loader(dataset_spec(o, DatasetKind::kLaion, tok_), 1, 2, 11);
    std::vector<Batch> batches;
    for (int i = 0; i < 20; ++i) batches.push_back(loader.next());  // crosses epochs
    runs.push_back(std::move(batches));
  }
  for (size_t run = 1; run < runs.size(); ++run)
    for (size_t i = 0; i < runs[0].size(); ++i)
      expect_same(runs[0][i], runs[run][i],
                  "run " + std::to_string(run) + " batch " + std::to_string(i));
  std::set<int64_t> epochs(runs[0].back().epochs.begin(), runs[0].back().epochs.end());
  EXPECT_GE(*epochs.rbegin(), 1) << "20 batches of 4 cross the epoch of 24-36 samples";
}

TEST_F(LoaderTest, RestoreContinuesByteIdentical) {
  for (const int world : {1, 2}) {
    DataOptions o = laion_options();
    o.image.flip = "image";
    Loader first(dataset_spec(o, DatasetKind::kLaion, tok_), world - 1, world, 5);
    for (int i = 0; i < 7; ++i) first.next();
    const std::string state = first.state();
    std::vector<Batch> expected;
    for (int i = 0; i < 12; ++i) expected.push_back(first.next());

    Loader second(dataset_spec(o, DatasetKind::kLaion, tok_), world - 1, world, 5);
    std::vector<std::string> states(world, state);
    if (world == 2) {
      Loader other(dataset_spec(o, DatasetKind::kLaion, tok_), 0, 2, 5);
      states[0] = other.state();
    }
    second.restore(states);
    EXPECT_EQ(second.state(), state);
    for (int i = 0; i < 12; ++i) {
      Batch b = second.next();
      b.dropped.clear();
      expected[i].dropped.clear();
      expect_same(expected[i], b, "world " + std::to_string(world) + " batch " + std::to_string(i));
    }
  }
}

// Runs `loaders` for `steps` batches each, recording (epoch, key) of every row.
void take(std::vector<std::unique_ptr<Loader>>& loaders, int steps,
          std::multiset<std::pair<int64_t, std::string>>& seen) {
  for (int s = 0; s < steps; ++s)
    for (auto& l : loaders) {
      const Batch b = l->next();
      for (size_t r = 0; r < b.keys.size(); ++r) seen.insert({b.epochs[r], b.keys[r]});
    }
}

std::vector<std::string> states_of(const std::vector<std::unique_ptr<Loader>>& loaders) {
  std::vector<std::string> out;
  for (const auto& l : loaders) out.push_back(l->state());
  return out;
}

TEST_F(LoaderTest, RepartitionTwoThreeOneReadsEachSampleOncePerEpoch) {
  const DataOptions o = laion_options();
  std::multiset<std::pair<int64_t, std::string>> seen;
  std::vector<std::unique_ptr<Loader>> two, three, one;
  for (int r = 0; r < 2; ++r)
    two.push_back(std::make_unique<Loader>(dataset_spec(o, DatasetKind::kLaion, tok_), r, 2, 9));
  take(two, 3, seen);
  const auto states2 = states_of(two);
  for (int r = 0; r < 3; ++r) {
    three.push_back(std::make_unique<Loader>(dataset_spec(o, DatasetKind::kLaion, tok_), r, 3, 9));
    three.back()->restore(states2);
  }
  take(three, 2, seen);
  const auto states3 = states_of(three);
  one.push_back(std::make_unique<Loader>(dataset_spec(o, DatasetKind::kLaion, tok_), 0, 1, 9));
  one.back()->restore(states3);
  auto epoch0 = [&] {
    int n = 0;
    for (const auto& [e, k] : seen) n += e == 0;
    return n;
  };
  for (int i = 0; i < 60 && epoch0() < kShards * kPerShard; ++i) take(one, 1, seen);
  // Run on into epoch 1 and 2 too.
  take(one, 30, seen);
  std::map<int64_t, std::map<std::string, int>> count;
  for (const auto& [e, k] : seen) ++count[e][k];
  for (int64_t e = 0; e <= 1; ++e) {
    EXPECT_EQ(count[e].size(), static_cast<size_t>(kShards * kPerShard)) << "epoch " << e;
    for (const auto& [k, n] : count[e]) EXPECT_EQ(n, 1) << "epoch " << e << " " << k;
  }
  for (const auto& [k, n] : count[2]) EXPECT_EQ(n, 1) << "epoch 2 " << k;
}

// The real HTTP test server on 127.0.0.1, serving `dir`.
class HttpServer {
 public:
  explicit HttpServer(const std::string& dir) {
    port_file_ = dir + "/port";
    const char* src = std::getenv("FLAM_SOURCE_DIR");
    const std::string script = std::string(src ? src : ".") + "/tests/common/http_server.py";
    pid_ = fork();
    if (pid_ == 0) {
      execlp("python3", "python3", script.c_str(), "--root", dir.c_str(), "--port-file",
             port_file_.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 200 && port_ == 0; ++i) {
      std::ifstream in(port_file_);
      in >> port_;
      if (port_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~HttpServer() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/f/" + path;
  }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string port_file_;
};

TEST_F(LoaderTest, BadDataIsSkippedAndCounted) {
  const std::string dir = testing::make_temp_dir("bad");
  const std::vector<std::string> jpegs = testing::photo_jpegs(8, 24, 20);
  {
    TarWriter w(dir + "/bad.tar");
    for (int i = 0; i < 8; ++i) {
      const std::string key = testing::sample_key(9, i);
      std::string jpg = jpegs[i];
      std::string txt = "a good caption " + std::to_string(i);
      if (i == 1) jpg = jpg.substr(0, jpg.size() / 4);  // corrupt image
      if (i == 3) txt = "bad \xff utf8";                // invalid UTF-8
      if (i != 5) w.add(key + ".jpg", jpg);             // 5: no image at all
      w.add(key + ".txt", txt);
    }
    w.close();
  }
  // A shard cut in the middle of sample 6's data: samples 0..5 stay, the rest is lost.
  const std::string good = testing::write_laion_shard(dir, 3, 10);
  std::filesystem::copy_file(good, dir + "/cut.tar");
  std::filesystem::resize_file(dir + "/cut.tar", std::filesystem::file_size(good) * 6 / 10);
  HttpServer server(dir);
  ASSERT_GT(server.port(), 0) << "test HTTP server did not start";

  DataOptions o = laion_options();
  o.laion.shards = {dir + "/bad.tar", dir + "/cut.tar", dir + "/missing.tar",
                    server.url("nothere.tar"), server.url("bad.tar")};
  Loader loader(dataset_spec(o, DatasetKind::kLaion, tok_), 0, 1, 3);
  std::map<std::string, int64_t> dropped;
  std::multiset<std::string> keys;
  for (int i = 0; i < 6; ++i) {  // 24 rows; one epoch has 2 x 5 good + some of cut.tar
    const Batch b = loader.next();
    for (const auto& [reason, n] : b.dropped) dropped[reason] += n;
    for (size_t r = 0; r < b.keys.size(); ++r)
      if (b.epochs[r] == 0) keys.insert(b.keys[r]);
  }
  EXPECT_GE(dropped["decode_error"], 2);  // bad.tar from disk and over HTTP
  EXPECT_GE(dropped["invalid_utf8"], 2);
  EXPECT_GE(dropped["no_image"], 2);
  EXPECT_GE(dropped["corrupt_shard"], 1);
  EXPECT_GE(dropped["unreachable_shard"], 2);  // missing file, HTTP 404
  for (const std::string& k : keys) {
    EXPECT_EQ(k.find("#000090001"), std::string::npos) << k;
    EXPECT_EQ(k.find("#000090003"), std::string::npos) << k;
    EXPECT_EQ(k.find("#000090005"), std::string::npos) << k;
  }
  // cut.tar's first samples are read before the truncation point.
  EXPECT_EQ(keys.count(dir + "/cut.tar#" + testing::sample_key(3, 0)), 1u);
  EXPECT_EQ(keys.count(server.url("bad.tar") + "#" + testing::sample_key(9, 0)), 1u);
}

// Issue #17: a shard streamed from a server that trickles above curl's low-speed limit fails on
// data.stream's minimum average rate (counted slow_shard) instead of holding the loader, and
// dropped_total() adds up every batch's drops.
TEST_F(LoaderTest, TricklingShardIsCountedAndDropsAccumulate) {
  const std::string dir = testing::make_temp_dir("trickle");
  const std::string shard = testing::write_laion_shard(dir, 4, 10);
  HttpServer server(dir);
  ASSERT_GT(server.port(), 0) << "test HTTP server did not start";
  DataOptions o = laion_options();
  const std::string trickle = "http://127.0.0.1:" + std::to_string(server.port()) +
                              "/x/trickle=50/f/" + std::filesystem::path(shard).filename().string();
  o.laion.shards = {laion_shards()[1], trickle};
  o.stream.min_average_bytes_per_second = 1000;
  o.stream.min_average_grace_seconds = 1;
  Loader loader(dataset_spec(o, DatasetKind::kLaion, tok_), 0, 1, 5);
  std::map<std::string, int64_t> sum;
  for (int i = 0; i < 8; ++i) {  // 32 rows: several epochs of the one good shard
    const Batch b = loader.next();
    for (const auto& [reason, n] : b.dropped) sum[reason] += n;
  }
  EXPECT_GE(sum["slow_shard"], 2);
  EXPECT_EQ(loader.dropped_total(), sum);
}

// Four LAION shards on the test server, of which shard 2 trickles at 50 bytes/s (one sample is
// kilobytes: none arrives before the one-second deadline).
struct FourHttpShards {
  std::string dir = testing::make_temp_dir("four");
  std::vector<std::string> urls;
  std::unique_ptr<HttpServer> server;
  FourHttpShards() {
    std::vector<std::string> names;
    for (int s = 0; s < 4; ++s)
      names.push_back(std::filesystem::path(testing::write_laion_shard(dir, s, 10)).filename());
    server = std::make_unique<HttpServer>(dir);
    for (int s = 0; s < 4; ++s) {
      urls.push_back(s == 2 ? "http://127.0.0.1:" + std::to_string(server->port()) +
                                  "/x/trickle=50/f/" + names[s]
                            : server->url(names[s]));
    }
  }
  DataOptions options() const {
    DataOptions o = laion_options();
    o.laion.shards = urls;
    o.stream.deadline_seconds = 1;
    o.stream.min_average_bytes_per_second = 0;
    return o;
  }
};

// Issue #17: one slow shard does not stall the loader: the other three feed the batches, the slow
// one is counted (slow_shard) and named with its URL in the log, and a restore from a state taken
// after the failure continues byte-identical.
TEST_F(LoaderTest, SlowShardIsSkippedWhileTheOthersFeedBatches) {
  const FourHttpShards shards;
  ASSERT_GT(shards.server->port(), 0) << "test HTTP server did not start";
  const DataOptions o = shards.options();
  Loader loader(dataset_spec(o, DatasetKind::kLaion, tok_), 0, 1, 13);
  ::testing::internal::CaptureStderr();
  int batches = 0;
  while (loader.dropped_total().count("slow_shard") == 0 && batches < 40) {
    const Batch b = loader.next();
    ++batches;
    for (const std::string& key : b.keys)
      EXPECT_EQ(key.rfind(shards.urls[2], 0), std::string::npos);
  }
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(loader.dropped_total().count("slow_shard"), 1u) << "after " << batches << " batches";
  EXPECT_NE(log.find("slow_shard"), std::string::npos) << log;
  EXPECT_NE(log.find(shards.urls[2]), std::string::npos) << log;
  EXPECT_GE(batches, 1);

  const std::string state = loader.state();
  std::vector<Batch> expected;
  for (int i = 0; i < 12; ++i) expected.push_back(loader.next());  // into the next epochs
  Loader resumed(dataset_spec(o, DatasetKind::kLaion, tok_), 0, 1, 13);
  resumed.restore({state});
  for (int i = 0; i < 12; ++i) {
    const Batch b = resumed.next();
    for (const std::string& key : b.keys)
      EXPECT_EQ(key.rfind(shards.urls[2], 0), std::string::npos);
    expect_same(expected[i], b, "batch " + std::to_string(i) + " after the restore");
  }
}

// A loader whose read-ahead is waiting on a server that never answers is destroyed without
// waiting out the stream's limits (600 s here: without cancellation the destructor would block
// that long and ctest's timeout would fail the test).
TEST_F(LoaderTest, DestroyedWhileReadingAheadFromASilentServer) {
  const std::string dir = testing::make_temp_dir("silent");
  const std::string shard = testing::write_laion_shard(dir, 5, 200);
  HttpServer server(dir);
  ASSERT_GT(server.port(), 0) << "test HTTP server did not start";
  DataOptions o = laion_options();
  const std::string silent = "http://127.0.0.1:" + std::to_string(server.port()) +
                             "/x/hang=600/f/" + std::filesystem::path(shard).filename().string();
  o.laion.shards = {server.url(std::filesystem::path(shard).filename()), silent};
  o.stream.low_speed_seconds = 600;
  o.stream.deadline_seconds = 0;
  o.stream.min_average_bytes_per_second = 0;
  o.loader.shuffle_buffer = 1;
  {
    Loader loader(dataset_spec(o, DatasetKind::kLaion, tok_), 0, 1, 3);
    const Batch b = loader.next();  // rows of the good shard (more than the loader reads ahead)
    EXPECT_FALSE(b.keys.empty());
  }
  SUCCEED();
}

// The slow_shard decision is part of the state: a restore from a state that says "shard S of
// epoch 0 gave 3 samples" reads only those 3 of it, even with every shard fast now, and two
// restores from it give the same batches.
TEST_F(LoaderTest, RestoreReplaysARecordedSlowShardDecision) {
  const FourHttpShards shards;
  ASSERT_GT(shards.server->port(), 0) << "test HTTP server did not start";
  DataOptions o = shards.options();
  o.laion.shards[2] = shards.server->url(std::filesystem::path(shards.urls[2]).filename());
  Loader fresh(dataset_spec(o, DatasetKind::kLaion, tok_), 0, 1, 17);
  nlohmann::json state = nlohmann::json::parse(fresh.state());
  ASSERT_FALSE(state.contains("failed"));  // states without failures keep their old form
  state["failed"] = {{0, 2, 3}};
  std::vector<std::vector<Batch>> runs(2);
  for (auto& run : runs) {
    Loader loader(dataset_spec(o, DatasetKind::kLaion, tok_), 0, 1, 17);
    loader.restore({state.dump()});
    std::set<std::string> from_two;
    for (int i = 0; i < 20; ++i) {  // 80 rows: all of epoch 0 (33 samples) and most of epoch 1
      run.push_back(loader.next());
      const Batch& b = run.back();
      for (size_t r = 0; r < b.keys.size(); ++r)
        if (b.epochs[r] == 0 && b.keys[r].rfind(o.laion.shards[2], 0) == 0)
          from_two.insert(b.keys[r]);
    }
    EXPECT_EQ(from_two,
              (std::set<std::string>{o.laion.shards[2] + "#" + testing::sample_key(2, 0),
                                     o.laion.shards[2] + "#" + testing::sample_key(2, 1),
                                     o.laion.shards[2] + "#" + testing::sample_key(2, 2)}));
    EXPECT_EQ(loader.dropped_total().at("slow_shard"), 1);
  }
  for (size_t i = 0; i < runs[0].size(); ++i)
    expect_same(runs[0][i], runs[1][i], "batch " + std::to_string(i));
}

// A huge range of missing shards logs a few in full and then summaries, not one line each.
TEST_F(LoaderTest, ManyMissingShardsAreSummarised) {
  const std::string dir = testing::make_temp_dir("missing");
  DataOptions o = laion_options();
  o.laion.shards = {laion_shards()[0], dir + "/missing-{000..199}.tar"};
  ::testing::internal::CaptureStderr();
  {
    Loader loader(dataset_spec(o, DatasetKind::kLaion, tok_), 0, 1, 5);
    for (int i = 0; i < 4; ++i) loader.next();  // 16 rows: past epoch 0 (12 good samples)
    EXPECT_GE(loader.dropped_total().at("unreachable_shard"), 200);
  }
  const std::string log = ::testing::internal::GetCapturedStderr();
  size_t full = 0;
  for (size_t at = log.find("skipping the rest of the shard"); at != std::string::npos;
       at = log.find("skipping the rest of the shard", at + 1)) {
    ++full;
  }
  EXPECT_EQ(full, 5u) << log;
  EXPECT_NE(log.find("unreachable_shard: 100 shards skipped so far on this rank (the first: "),
            std::string::npos)
      << log;
}

// Settings whose batches cannot fit the machine fail before any allocation, naming the keys.
TEST_F(LoaderTest, BatchesLargerThanTheMachineAreAConfigError) {
  DataOptions o = laion_options();
  o.image.size = 4096;
  o.laion.batch_size = 65536;
  try {
    Loader loader(dataset_spec(o, DatasetKind::kLaion, tok_), 0, 1, 5);
    FAIL() << "a loader for " << o.laion.batch_size << " images of 4096^2 started";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_EQ(e.context().key, "data.laion.batch_size");
    EXPECT_NE(e.message().find("lower data.laion.batch_size, data.image.size"), std::string::npos)
        << e.what();
  }
}

// What `flam submit` checks before queueing: the tokenizer, the shard lists' first and last shards.
TEST_F(LoaderTest, DataInputsAreCheckedBeforeTheQueue) {
  DataOptions o = laion_options();
  o.mmc4.shards = laion_shards();
  check_data_inputs(o);
  const std::string dir = testing::make_temp_dir("inputs");
  auto expect_error = [](const DataOptions& bad, const std::string& key, const std::string& file,
                         const std::string& text) {
    try {
      check_data_inputs(bad);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kConfig) << e.what();
      EXPECT_EQ(e.context().key, key) << e.what();
      EXPECT_EQ(e.context().file, file) << e.what();
      EXPECT_NE(e.message().find(text), std::string::npos) << e.what();
    }
  };
  DataOptions no_tokenizer = o;
  no_tokenizer.tokenizer = dir;
  expect_error(no_tokenizer, "data.tokenizer", dir, "is a directory");
  DataOptions missing_last = o;
  missing_last.mmc4.shards = {laion_shards()[0], dir + "/s-{000..999}.tar"};
  expect_error(missing_last, "data.mmc4.shards", dir + "/s-999.tar", "shard does not exist");
}

TEST_F(LoaderTest, Mmc4BatchesWithImagesAsBase64AndAsMembers) {
  const std::string dir = testing::make_temp_dir("mmc4");
  DataOptions o = testing::small_options();
  o.mmc4.shards = {testing::write_mmc4_shard(dir, 0, 6, false),
                   testing::write_mmc4_shard(dir, 1, 6, true)};
  Loader loader(dataset_spec(o, DatasetKind::kMmc4, tok_), 0, 1, 1);
  int rows = 0;
  for (int i = 0; i < 6; ++i) {
    const Batch b = loader.next();
    EXPECT_EQ(b.kind, DatasetKind::kMmc4);
    EXPECT_EQ(b.max_images, 3);
    ASSERT_EQ(b.image_present.size(), 6u);
    for (int r = 0; r < 2; ++r) {
      EXPECT_EQ(b.image_present[r * 3], 1);
      EXPECT_EQ(b.image_present[r * 3 + 1], 1);
      EXPECT_EQ(b.image_present[r * 3 + 2], 0);
      const std::vector<int64_t> row(b.input_ids.begin() + r * 48,
                                     b.input_ids.begin() + r * 48 + 48);
      EXPECT_EQ(std::count(row.begin(), row.end(), tok_.image_id()), 2);
      ++rows;
    }
    EXPECT_TRUE(b.dropped.empty());
  }
  EXPECT_EQ(rows, 12);
}

TEST_F(LoaderTest, BatchFlipFlipsAllImagesOfABatchTogether) {
  DataOptions plain = laion_options();
  DataOptions flipped = laion_options();
  flipped.image.flip = "batch";
  Loader a(dataset_spec(plain, DatasetKind::kLaion, tok_), 0, 1, 21);
  Loader b(dataset_spec(flipped, DatasetKind::kLaion, tok_), 0, 1, 21);
  int flips = 0;
  for (int i = 0; i < 10; ++i) {
    const Batch x = a.next(), y = b.next();
    ASSERT_EQ(x.keys, y.keys);
    const bool same = x.images == y.images;
    if (!same) {
      ++flips;
      for (int r = 0; r < 4; ++r)
        for (int row = 0; row < 3 * 16; ++row)
          for (int col = 0; col < 16; ++col)
            ASSERT_EQ(x.images[x.image_offset(r, 0) + row * 16 + col],
                      y.images[y.image_offset(r, 0) + row * 16 + 15 - col]);
    }
  }
  EXPECT_GT(flips, 0);
  EXPECT_LT(flips, 10);
}

TEST_F(LoaderTest, RejectsForeignOrBrokenStates) {
  const DataOptions o = laion_options();
  Loader loader(dataset_spec(o, DatasetKind::kLaion, tok_), 0, 1, 1);
  const std::string state = loader.state();
  Loader other_seed(dataset_spec(o, DatasetKind::kLaion, tok_), 0, 1, 2);
  EXPECT_THROW(other_seed.restore({state}), Error);
  EXPECT_THROW(loader.restore({"{not json"}), Error);
  DataOptions fewer = o;
  fewer.laion.shards.pop_back();
  Loader other_shards(dataset_spec(fewer, DatasetKind::kLaion, tok_), 0, 1, 1);
  EXPECT_THROW(other_shards.restore({state}), Error);
  DataOptions none = o;
  none.laion.shards.clear();
  EXPECT_THROW(Loader(dataset_spec(none, DatasetKind::kLaion, tok_), 0, 1, 1), Error);
}

}  // namespace
}  // namespace flam::pipeline
