// Flamingo model behaviour: gates at 0 leave the decoder unchanged, gradients reach exactly the
// trained parameters, blocks are called through the UnitRunner in order (also without images),
// parameter counts match the analytic ones, and a tiny model overfits one batch.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <set>

#include "tests/model/tiny_model.h"
#include "train/model/flamingo.h"
#include "train/model/layers.h"
#include "train/model/param_count.h"

namespace flam::model {
namespace {

using testing::tiny_options;

struct Batch {
  torch::Tensor images, input_ids, attention_mask, labels;
};

// Two rows: row 0 "<image> a b c <|endofchunk|> <image> d e f <|endofchunk|>" with text before
// the first image; row 1 one image and right padding.
Batch make_batch(const ModelOptions& o) {
  const auto sp = special_tokens(o);
  Batch b;
  b.images = torch::randn({2, 2, 1, 3, o.vision.image_size, o.vision.image_size});
  const std::vector<int64_t> ids = {5,
                                    sp.image,
                                    7,
                                    8,
                                    9,
                                    sp.endofchunk,
                                    sp.image,
                                    10,
                                    11,
                                    12,
                                    sp.endofchunk,
                                    13,
                                    sp.image,
                                    3,
                                    4,
                                    6,
                                    2,
                                    1,
                                    sp.endofchunk,
                                    sp.pad,
                                    sp.pad,
                                    sp.pad,
                                    sp.pad,
                                    sp.pad};
  b.input_ids = torch::tensor(ids).view({2, 12});
  b.attention_mask = b.input_ids.ne(sp.pad).to(torch::kLong);
  b.labels = b.input_ids.clone();
  b.labels.masked_fill_(b.input_ids.eq(sp.pad).logical_or(b.input_ids.eq(sp.image)), -100);
  return b;
}

// The decoder alone: embed, decoder layers, head; no cross-attention.
torch::Tensor bare_decoder(FlamingoImpl& m, const Batch& b) {
  auto& lang = m.lang_encoder();
  const auto& o = m.options().lang;
  auto h = lang.embed(b.input_ids);
  auto [cos, sin] = rotary_tables(torch::arange(b.input_ids.size(1)), o.dim / o.heads, o.rope_theta,
                                  torch::kFloat32);
  auto mask = causal_mask(b.attention_mask, b.input_ids.size(1), torch::kFloat32);
  for (size_t i = 0; i < lang.num_layers(); ++i)
    h = lang.decoder_layer(i).forward(h, cos, sin, mask);
  return lang.head(h);
}

void set_gates(FlamingoImpl& m, double attn, double ff) {
  torch::NoGradGuard no_grad;
  for (auto& item : m.named_parameters()) {
    const auto& k = item.key();
    const auto dot = k.rfind('.');
    const std::string leaf = k.substr(dot + 1);
    if (leaf == "attn_gate") item.value().fill_(attn);
    if (leaf == "ff_gate") item.value().fill_(ff);
  }
}

void set_gates(FlamingoImpl& m, double value) { set_gates(m, value, value); }

// The fused SDPA path the ViT and LLaMA layers use equals attention written out by hand (fp32),
// with no mask and with the causal + padding mask the decoder builds.
TEST(Attention, SdpaEqualsTheManualPath) {
  torch::manual_seed(11);
  const int64_t B = 2, H = 3, T = 7, d = 16;
  auto q = torch::randn({B, H, T, d}), k = torch::randn({B, H, T, d}),
       v = torch::randn({B, H, T, d});
  auto attention_mask = torch::ones({B, T}, torch::kLong);
  attention_mask.index_put_({1, torch::indexing::Slice(5)}, 0);  // row 1: two padding tokens
  for (const auto& mask : {torch::Tensor(), causal_mask(attention_mask, T, torch::kFloat32)}) {
    auto scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(d));
    if (mask.defined()) scores = scores + mask;
    const auto manual = torch::matmul(scores.softmax(-1), v);
    const auto fused = attention(q, k, v, mask);
    EXPECT_TRUE(torch::allclose(fused, manual, 1e-5, 1e-5))
        << (fused - manual).abs().max().item<float>();
  }
}

TEST(Flamingo, ZeroGatesGiveTheBareDecoder) {
  torch::manual_seed(1);
  Flamingo m(tiny_options());
  auto b = make_batch(m->options());
  auto logits = m->forward(b.images, b.input_ids, b.attention_mask);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 12, 43}));
  EXPECT_TRUE(torch::equal(logits, bare_decoder(*m, b)));
  set_gates(*m, 0.5);
  EXPECT_FALSE(
      torch::allclose(m->forward(b.images, b.input_ids, b.attention_mask), bare_decoder(*m, b)));
}

TEST(Flamingo, GradientsReachExactlyTheTrainedParameters) {
  torch::manual_seed(2);
  Flamingo m(tiny_options());
  set_gates(*m, 0.5);
  auto b = make_batch(m->options());
  auto loss = FlamingoImpl::loss(m->forward(b.images, b.input_ids, b.attention_mask), b.labels);
  loss.backward();
  int trained = 0;
  for (const auto& item : m->named_parameters()) {
    const auto& k = item.key();
    const bool expect_trained = k.rfind("perceiver.", 0) == 0 ||
                                k.rfind("lang_encoder.gated_cross_attn_layers.", 0) == 0 ||
                                k == "lang_encoder.special_token_embeddings";
    EXPECT_EQ(item.value().requires_grad(), expect_trained) << k;
    if (expect_trained) {
      ++trained;
      ASSERT_TRUE(item.value().grad().defined()) << k;
      EXPECT_GT(item.value().grad().abs().sum().item<double>(), 0.0) << k;
    } else {
      EXPECT_FALSE(item.value().grad().defined()) << k;
    }
  }
  EXPECT_GT(trained, 10);
  // Both special rows are used by the batch, so both get gradient.
  auto g = m->lang_encoder().special_token_embeddings().grad();
  EXPECT_EQ(g.sizes(), (std::vector<int64_t>{2, 32}));
  EXPECT_GT(g[0].abs().sum().item<double>(), 0.0);
  EXPECT_GT(g[1].abs().sum().item<double>(), 0.0);
  EXPECT_TRUE(m->weight_decay("lang_encoder.gated_cross_attn_layers.1.ff.1.weight"));
  EXPECT_FALSE(m->weight_decay("perceiver.layers.0.0.to_q.weight"));
}

TEST(Flamingo, LossIsShiftedMeanOverLabelledTokens) {
  auto logits = torch::randn({2, 5, 7});
  auto labels = torch::tensor({{1, 2, -100, 4, 5}, {-100, -100, -100, -100, 6}}, torch::kLong);
  auto expected = torch::nn::functional::cross_entropy(
      logits.narrow(1, 0, 4).reshape({-1, 7}), labels.narrow(1, 1, 4).reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
  EXPECT_NEAR(FlamingoImpl::loss(logits, labels).item<double>(), expected.item<double>(), 1e-6);
  auto none = torch::full({1, 5}, -100, torch::kLong);
  EXPECT_EQ(FlamingoImpl::loss(logits.narrow(0, 0, 1), none).item<double>(), 0.0);
}

class RecordingRunner : public UnitRunner {
 public:
  torch::Tensor run(size_t block,
                    const std::function<torch::Tensor(const std::vector<torch::Tensor>&)>& fn,
                    const std::vector<torch::Tensor>& inputs) override {
    calls.push_back(block);
    return fn(inputs);
  }
  std::vector<size_t> calls;
};

TEST(Flamingo, ParamUnitsAndRunnerOrder) {
  torch::manual_seed(3);
  Flamingo m(tiny_options());
  set_gates(*m, 0.3);
  auto blocks = m->trained_units();
  std::vector<std::string> names;
  std::set<std::string> seen;
  int64_t numel = 0;
  for (const auto& b : blocks) {
    names.push_back(b.name);
    for (const auto& [name, t] : b.params) {
      EXPECT_TRUE(seen.insert(name).second) << name << " in two blocks";
      numel += t.numel();
    }
  }
  EXPECT_EQ(names, (std::vector<std::string>{"perceiver.layers.0", "perceiver.layers.1",
                                             "lang_encoder.gated_cross_attn_layers.1",
                                             "lang_encoder.gated_cross_attn_layers.3", "rest"}));
  int64_t trainable = 0;
  for (const auto& p : m->parameters())
    if (p.requires_grad()) trainable += p.numel();
  EXPECT_EQ(numel, trainable);
  std::set<std::string> rest;
  for (const auto& [name, t] : blocks.back().params) rest.insert(name);
  EXPECT_EQ(rest, (std::set<std::string>{"perceiver.latents", "perceiver.norm.weight",
                                         "perceiver.norm.bias",
                                         "lang_encoder.special_token_embeddings"}));

  auto b = make_batch(m->options());
  RecordingRunner runner;
  auto direct = m->forward(b.images, b.input_ids, b.attention_mask);
  m->set_unit_runner(&runner);
  auto routed = m->forward(b.images, b.input_ids, b.attention_mask);
  EXPECT_TRUE(torch::equal(direct, routed));
  EXPECT_EQ(runner.calls, (std::vector<size_t>{0, 1, 2, 3}));

  // A batch without images and without <image> tokens still calls every block; its text
  // attends to nothing, so with the feed-forward gates shut the logits are the bare decoder's.
  runner.calls.clear();
  Batch text = b;
  text.input_ids = torch::randint(0, 40, {2, 12}, torch::kLong);
  text.attention_mask = torch::ones({2, 12}, torch::kLong);
  set_gates(*m, 0.9, 0.0);
  auto logits = m->forward(torch::Tensor(), text.input_ids, text.attention_mask);
  EXPECT_EQ(runner.calls, (std::vector<size_t>{0, 1, 2, 3}));
  EXPECT_TRUE(torch::equal(logits, bare_decoder(*m, text)));
}

TEST(Flamingo, TextBeforeTheFirstImageIgnoresImages) {
  torch::manual_seed(4);
  Flamingo m(tiny_options());
  set_gates(*m, 0.7);
  auto b = make_batch(m->options());
  auto a = m->forward(b.images, b.input_ids, b.attention_mask);
  auto other = b.images + torch::randn(b.images.sizes());
  auto c = m->forward(other, b.input_ids, b.attention_mask);
  // Row 0, position 0 precedes every <image>: its logits do not depend on the images.
  EXPECT_TRUE(torch::allclose(a[0][0], c[0][0], 1e-6, 1e-6));
  EXPECT_FALSE(torch::allclose(a[0][3], c[0][3], 1e-4, 1e-4));
}

TEST(Flamingo, ParameterCountsMatchTheModule) {
  auto o = tiny_options();
  o.perceiver.max_num_media = 3;
  o.perceiver.max_num_frames = 2;
  Flamingo m(o);
  std::map<std::string, int64_t> actual;
  int64_t trainable = 0;
  for (const auto& item : m->named_parameters()) {
    const auto& k = item.key();
    std::string c = k.rfind("vision_encoder.", 0) == 0              ? "vision_encoder"
                    : k.rfind("perceiver.", 0) == 0                 ? "perceiver"
                    : k == "lang_encoder.model.embed_tokens.weight" ? "lang_encoder.embed_tokens"
                    : k == "lang_encoder.special_token_embeddings"
                        ? "lang_encoder.special_token_embeddings"
                    : k == "lang_encoder.lm_head.weight" ? "lang_encoder.lm_head"
                    : k.rfind("lang_encoder.gated_cross_attn_layers.", 0) == 0
                        ? "lang_encoder.gated_cross_attn_layers"
                        : "lang_encoder.decoder";
    actual[c] += item.value().numel();
    if (item.value().requires_grad()) trainable += item.value().numel();
  }
  int64_t counted_trainable = 0;
  for (const auto& c : count_parameters(o)) {
    EXPECT_EQ(c.params, actual[c.name]) << c.name;
    counted_trainable += c.trainable;
  }
  EXPECT_EQ(counted_trainable, trainable);
}

TEST(Flamingo, FrozenEmbeddingsTrainNoRows) {
  auto o = tiny_options();
  o.freeze_lm_embeddings = true;
  Flamingo m(o);
  set_gates(*m, 0.5);
  auto b = make_batch(o);
  FlamingoImpl::loss(m->forward(b.images, b.input_ids, b.attention_mask), b.labels).backward();
  EXPECT_FALSE(m->lang_encoder().special_token_embeddings().requires_grad());
  EXPECT_FALSE(m->lang_encoder().special_token_embeddings().grad().defined());
  for (const auto& [name, t] : m->trained_units().back().params)
    EXPECT_NE(name, "lang_encoder.special_token_embeddings");
  int64_t counted = 0;
  for (const auto& c : count_parameters(o)) counted += c.trainable;
  int64_t trainable = 0;
  for (const auto& p : m->parameters())
    if (p.requires_grad()) trainable += p.numel();
  EXPECT_EQ(counted, trainable);
}

TEST(Flamingo, TinyModelOverfitsOneBatch) {
  torch::set_num_threads(1);  // tiny tensors: threads only contend on a busy CI machine
  torch::manual_seed(5);
  Flamingo m(tiny_options());
  {
    // A frozen "pretrained" head with enough scale to express a confident prediction.
    torch::NoGradGuard no_grad;
    auto head = m->named_parameters()["lang_encoder.lm_head.weight"];
    head.normal_(0.0, 1.0);
  }
  auto b = make_batch(m->options());
  std::vector<torch::Tensor> params;
  for (const auto& p : m->parameters())
    if (p.requires_grad()) params.push_back(p);
  torch::optim::Adam opt(params, torch::optim::AdamOptions(3e-3));
  double first = 0.0, last = 0.0;
  for (int step = 0; step < 150; ++step) {
    opt.zero_grad();
    auto loss = FlamingoImpl::loss(m->forward(b.images, b.input_ids, b.attention_mask), b.labels);
    loss.backward();
    opt.step();
    if (step == 0) first = loss.item<double>();
    last = loss.item<double>();
  }
  EXPECT_LT(last, first / 10.0) << "first " << first << " last " << last;
}

}  // namespace
}  // namespace flam::model
