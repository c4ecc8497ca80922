#include "pipeline/packer.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/base64.h"
#include "pipeline/drop_reason.h"
#include "pipeline/hungarian.h"
#include "pipeline/text.h"

namespace flam::pipeline {
namespace {

PackResult fail(std::string reason, std::string message = {}) {
  PackResult r;
  r.reason = std::move(reason);
  r.message = std::move(message);
  return r;
}

// [BOS] + ids truncated to seq_len, padded with <PAD>; fills input_ids and attention_mask.
void pad_row(std::vector<int64_t> ids, const Tokenizer& tokenizer, int seq_len, Sequence& seq) {
  ids.insert(ids.begin(), tokenizer.bos_id());
  if (static_cast<int>(ids.size()) > seq_len) ids.resize(seq_len);
  seq.attention_mask.assign(seq_len, 0);
  std::fill(seq.attention_mask.begin(), seq.attention_mask.begin() + ids.size(), 1);
  ids.resize(seq_len, tokenizer.pad_id());
  seq.input_ids = std::move(ids);
}

// Decodes and CLIP-preprocesses into *out; flips with its own coin in "image" mode (drawn only
// for an image that decoded). The decode and resize buffers are the decode thread's, reused from
// image to image; *out's pixels become the sequence's.
bool load_image(std::string_view bytes, const DataOptions& options, Rng& rng, Image* out,
                PackResult* failure) {
  DecodeOptions decode_options;
  decode_options.max_pixels = options.image.max_pixels;
  decode_options.target_short_side = options.image.fast_downscale ? options.image.size : 0;
  const DecodeResult decoded =
      decode_clip_preprocess(bytes, options.image.size, decode_options, out);
  if (!decoded.ok()) {
    *failure = fail(decoded.reason == "too_large" ? drop::kImageTooLarge : decoded.reason,
                    decoded.message);
    return false;
  }
  if (options.image.flip == "image" && rng.uniform() < 0.5) flip_horizontal_in_place(out);
  return true;
}

int count_token(const std::vector<int64_t>& ids, int64_t token) {
  return static_cast<int>(std::count(ids.begin(), ids.end(), token));
}

// The bytes of MMC4 image `info`: base64 inside the JSON, else a member of the sample.
bool mmc4_image_bytes(const nlohmann::json& info, const Sample& sample, std::string* bytes) {
  const auto b64 = info.find("image_base64");
  if (b64 != info.end() && b64->is_string()) {
    return base64_decode(b64->get_ref<const std::string&>(), bytes);
  }
  auto lower = [](std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
  };
  // Our shard writer names the member's extension in "image_member" ("0.jpg" for KEY.0.jpg).
  const auto member_it = info.find("image_member");
  if (member_it != info.end() && member_it->is_string()) {
    const auto member = sample.members.find(lower(member_it->get<std::string>()));
    if (member == sample.members.end()) return false;
    *bytes = member->second.view();
    return true;
  }
  const auto name_it = info.find("image_name");
  if (name_it == info.end() || !name_it->is_string()) return false;
  const std::string name = lower(name_it->get<std::string>());
  const std::string key = lower(sample.key);
  const size_t slash = key.rfind('/');
  const std::string base = slash == std::string::npos ? key : key.substr(slash + 1);
  for (const std::string& candidate :
       {name, name.rfind(base + ".", 0) == 0 ? name.substr(base.size() + 1) : std::string()}) {
    if (candidate.empty() || candidate == "json") continue;
    const auto member = sample.members.find(candidate);
    if (member != sample.members.end()) {
      *bytes = member->second.view();
      return true;
    }
  }
  return false;
}

}  // namespace

std::vector<int64_t> laion_labels(const std::vector<int64_t>& ids, const Tokenizer& tokenizer) {
  std::vector<int64_t> labels = ids;
  for (int64_t& l : labels)
    if (l == tokenizer.pad_id() || l == tokenizer.image_id()) l = -100;
  if (!labels.empty()) labels[0] = -100;
  return labels;
}

std::vector<int64_t> mmc4_labels(const std::vector<int64_t>& ids, const Tokenizer& tokenizer) {
  const int64_t image = tokenizer.image_id();
  std::vector<int64_t> labels = ids;
  const size_t n = labels.size();
  for (int64_t& l : labels)
    if (l == tokenizer.pad_id()) l = -100;
  if (n > 0) labels[0] = -100;
  // Before the first <image>.
  for (size_t i = 0; i < n && ids[i] != image; ++i) labels[i] = -100;
  // After each <|endofchunk|>, up to the next <image>.
  for (size_t e = 0; e < n; ++e) {
    if (ids[e] != tokenizer.endofchunk_id()) continue;
    for (size_t i = e + 1; i < n && ids[i] != image; ++i) labels[i] = -100;
  }
  for (int64_t& l : labels)
    if (l == image) l = -100;
  return labels;
}

std::string mmc4_text(std::vector<std::string> sentences, const std::vector<int>& sentence_ixs,
                      std::vector<int>* image_order) {
  const std::string prefix = std::string(Tokenizer::kEndOfChunk) + std::string(Tokenizer::kImage);
  for (const int ix : sentence_ixs) sentences[ix] = prefix + sentences[ix];
  if (image_order != nullptr) {
    // Tokens appear in sentence order; within one sentence the image prefixed last comes first.
    image_order->resize(sentence_ixs.size());
    std::iota(image_order->begin(), image_order->end(), 0);
    std::stable_sort(image_order->begin(), image_order->end(), [&](int a, int b) {
      if (sentence_ixs[a] != sentence_ixs[b]) return sentence_ixs[a] < sentence_ixs[b];
      return a > b;
    });
  }
  std::string text;
  for (size_t i = 0; i < sentences.size(); ++i) {
    if (i > 0) text += ' ';
    text += sentences[i];
  }
  const size_t first = text.find(Tokenizer::kEndOfChunk);
  if (first != std::string::npos) text.erase(first, Tokenizer::kEndOfChunk.size());
  replace_all(text, " <|endofchunk|>", "<|endofchunk|>");
  replace_all(text, "<image> ", "<image>");
  replace_all(text, " <image>", "<image>");
  return text;
}

std::vector<int64_t> mmc4_tokens(const std::vector<std::string>& sentences,
                                 const std::vector<int>& sentence_ixs, const Tokenizer& tokenizer,
                                 std::vector<int>* image_of_token) {
  // The steps of mmc4_text on a list of pieces (user text, or a special token the packer
  // inserts), so that no user text is ever read as a special token.
  struct Piece {
    int64_t special = -1;  // a token id, or -1 for text
    int image = -1;        // for <image>: its index into sentence_ixs
    std::string text;
  };
  const int64_t eoc = tokenizer.endofchunk_id(), img = tokenizer.image_id();
  std::vector<Piece> pieces;
  auto add_text = [&](std::string_view text) {
    if (pieces.empty() || pieces.back().special >= 0) pieces.push_back({});
    pieces.back().text += text;
  };
  for (size_t s = 0; s < sentences.size(); ++s) {
    if (s > 0) add_text(" ");
    // The image prefixed last comes first (OpenFlamingo prefixes in sentence_ixs order).
    for (int i = static_cast<int>(sentence_ixs.size()) - 1; i >= 0; --i) {
      if (sentence_ixs[i] != static_cast<int>(s)) continue;
      pieces.push_back({eoc, -1, {}});
      pieces.push_back({img, i, {}});
    }
    add_text(sentences[s]);
  }
  const auto first_eoc =
      std::find_if(pieces.begin(), pieces.end(), [&](const Piece& p) { return p.special == eoc; });
  if (first_eoc != pieces.end()) pieces.erase(first_eoc);
  // Whitespace clean-up, one pass per replace() of OpenFlamingo's: " <|endofchunk|>",
  // "<image> ", " <image>". Only text next to a special piece can change.
  auto text_at = [&](size_t k) -> std::string* {
    return k < pieces.size() && pieces[k].special < 0 ? &pieces[k].text : nullptr;
  };
  auto drop_space_before = [&](int64_t special) {
    for (size_t k = 1; k < pieces.size(); ++k) {
      std::string* prev = text_at(k - 1);
      if (pieces[k].special == special && prev != nullptr && prev->ends_with(' ')) prev->pop_back();
    }
  };
  drop_space_before(eoc);
  for (size_t k = 0; k + 1 < pieces.size(); ++k) {
    std::string* next = text_at(k + 1);
    if (pieces[k].special == img && next != nullptr && next->starts_with(' ')) next->erase(0, 1);
  }
  drop_space_before(img);

  std::vector<int64_t> ids;
  image_of_token->clear();
  for (const Piece& p : pieces) {
    if (p.special >= 0) {
      ids.push_back(p.special);
      image_of_token->push_back(p.image);
      continue;
    }
    const std::vector<int64_t> text_ids = tokenizer.encode_plain(p.text);
    ids.insert(ids.end(), text_ids.begin(), text_ids.end());
    image_of_token->resize(ids.size(), -1);
  }
  for (const int64_t id : {eoc, tokenizer.eos_id()}) {
    ids.push_back(id);
    image_of_token->push_back(-1);
  }
  return ids;
}

PackResult pack_laion(const Sample& sample, const Tokenizer& tokenizer, const DataOptions& options,
                      Rng& rng) {
  const Bytes* image_bytes = nullptr;
  for (const char* ext : {"jpg", "jpeg", "png", "webp"}) {
    const auto it = sample.members.find(ext);
    if (it != sample.members.end()) {
      image_bytes = &it->second;
      break;
    }
  }
  if (image_bytes == nullptr) return fail(drop::kNoImage, "no jpg|jpeg|png|webp member");
  const auto txt = sample.members.find("txt");
  if (txt == sample.members.end()) return fail(drop::kNoCaption, "no txt member");
  if (!valid_utf8(txt->second)) return fail(drop::kInvalidUtf8, "caption is not UTF-8");

  PackResult result;
  Image image;
  if (!load_image(*image_bytes, options, rng, &image, &result)) return result;
  const std::string caption = strip_text(txt->second);
  Sequence& seq = result.sequence;
  std::vector<int64_t> ids;
  if (options.special_strings == "special") {
    ids = tokenizer.encode(std::string(Tokenizer::kImage) + caption +
                           std::string(Tokenizer::kEndOfChunk) + "</s>");
  } else {
    ids = tokenizer.encode_plain(caption);
    ids.insert(ids.begin(), tokenizer.image_id());
    ids.push_back(tokenizer.endofchunk_id());
    ids.push_back(tokenizer.eos_id());
  }
  pad_row(std::move(ids), tokenizer, options.laion.seq_len, seq);
  seq.labels = laion_labels(seq.input_ids, tokenizer);
  seq.images.push_back(std::move(image));
  seq.image_sources.push_back(0);
  return result;
}

PackResult pack_mmc4(const Sample& sample, const Tokenizer& tokenizer, const DataOptions& options,
                     Rng& rng) {
  const Mmc4Options& mo = options.mmc4;
  const auto json_it = sample.members.find("json");
  if (json_it == sample.members.end()) return fail(drop::kNoJson, "no json member");
  if (!valid_utf8(json_it->second)) return fail(drop::kInvalidUtf8, "document is not UTF-8");
  nlohmann::json doc =
      nlohmann::json::parse(json_it->second.view(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return fail(drop::kBadJson, "not a JSON object");

  std::vector<std::string> sentences;
  std::vector<std::string> image_bytes;
  std::vector<int> valid;  // image_info index of each valid image
  std::vector<double> sims;
  int n_sent = 0;
  try {
    for (const auto& s : doc.at("text_list")) sentences.push_back(s.get<std::string>());
    n_sent = static_cast<int>(sentences.size());
    const auto& infos = doc.at("image_info");
    const auto& matrix = doc.at("similarity_matrix");
    for (size_t i = 0; i < infos.size(); ++i) {
      std::string bytes;
      if (!mmc4_image_bytes(infos[i], sample, &bytes)) continue;
      if (static_cast<int64_t>(bytes.size()) <= mo.min_image_bytes) continue;
      if (mo.matching == "argmax" && infos[i].contains("matched_text_index")) {
        const int ix = infos[i].at("matched_text_index").get<int>();
        if (ix < 0 || ix >= n_sent) return fail(drop::kBadJson, "matched_text_index out of range");
        std::vector<double> row(n_sent, -std::numeric_limits<double>::infinity());
        row[ix] = infos[i].at("matched_sim").get<double>();
        sims.insert(sims.end(), row.begin(), row.end());
      } else {
        if (i >= matrix.size()) return fail(drop::kBadJson, "similarity_matrix has too few rows");
        const auto& row = matrix[i];
        if (static_cast<int>(row.size()) != n_sent)
          return fail(drop::kBadJson, "similarity_matrix row length != len(text_list)");
        for (const auto& v : row) {
          const double d = v.get<double>();
          if (!std::isfinite(d)) return fail(drop::kBadJson, "non-finite similarity");
          sims.push_back(d);
        }
      }
      valid.push_back(static_cast<int>(i));
      image_bytes.push_back(std::move(bytes));
    }
  } catch (const nlohmann::json::exception& e) {
    return fail(drop::kBadJson, e.what());
  }
  const int n_img = static_cast<int>(valid.size());
  if (n_img == 0 || n_sent == 0) return fail(drop::kNoImages, "no usable image");

  std::vector<std::pair<int, int>> matches;
  if (mo.matching == "hungarian") {
    std::vector<double> cost(sims.size());
    std::transform(sims.begin(), sims.end(), cost.begin(), [](double s) { return -s; });
    matches = linear_sum_assignment(cost, n_img, n_sent);
  } else {
    matches = argmax_assignment(sims, n_img, n_sent);
  }
  std::vector<int> chosen, sentence_ixs;  // chosen: index into valid/image_bytes
  for (const auto& [img, sent] : matches) {
    if (sims[static_cast<size_t>(img) * n_sent + sent] < mo.sim_threshold) continue;
    if (static_cast<int>(chosen.size()) == mo.max_images) break;
    chosen.push_back(img);
    sentence_ixs.push_back(sent);
  }
  if (chosen.empty()) return fail(drop::kNoImages, "no image above the similarity threshold");

  // slots[t]: the index into `chosen` of the image filling slot t (the t-th <image> token).
  std::vector<int> slots;
  PackResult result;
  Sequence& seq = result.sequence;
  if (options.special_strings == "special") {
    std::vector<int> order;
    const std::string text = mmc4_text(std::move(sentences), sentence_ixs, &order) +
                             std::string(Tokenizer::kEndOfChunk) + "</s>";
    pad_row(tokenizer.encode(text), tokenizer, mo.seq_len, seq);
    // A literal "<image>" in a sentence is a media token too here (as in OpenFlamingo), so there
    // may be more <image> tokens than chosen images: the extra tokens get no slot.
    const int n = std::min<int>(count_token(seq.input_ids, tokenizer.image_id()), order.size());
    slots.assign(order.begin(), order.begin() + n);
  } else {
    std::vector<int> image_of_token;
    pad_row(mmc4_tokens(sentences, sentence_ixs, tokenizer, &image_of_token), tokenizer, mo.seq_len,
            seq);
    const size_t kept =  // the tokens that fit after BOS
        std::min(image_of_token.size(), static_cast<size_t>(mo.seq_len - 1));
    for (size_t t = 0; t < kept; ++t)
      if (image_of_token[t] >= 0) slots.push_back(image_of_token[t]);
  }
  const int n_tokens = count_token(seq.input_ids, tokenizer.image_id());
  if (n_tokens < mo.min_images || n_tokens == 0)
    return fail(drop::kTooFewImages, std::to_string(n_tokens) + " <image> tokens after truncation");
  if (n_tokens == 1 && rng.uniform() >= mo.single_image_keep_prob)
    return fail(drop::kSingleImage, "single-image document not kept (seeded coin)");
  if (n_tokens == 1 && seq.input_ids.back() == tokenizer.image_id())
    return fail(drop::kImageAtEnd, "the only <image> is the last token");

  for (const int slot : slots) {
    Image image;
    if (!load_image(image_bytes[chosen[slot]], options, rng, &image, &result)) {
      result.sequence = {};
      return result;
    }
    seq.images.push_back(std::move(image));
    seq.image_sources.push_back(valid[chosen[slot]]);
  }
  seq.labels = mmc4_labels(seq.input_ids, tokenizer);
  return result;
}

}  // namespace flam::pipeline
