#include "pipeline/packer.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>

#include "pipeline/hungarian.h"

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

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (true) {
    const size_t at = text.find(from, pos);
    if (at == std::string::npos) break;
    out.append(text, pos, at - pos);
    out.append(to);
    pos = at + from.size();
  }
  out.append(text, pos, std::string::npos);
  text = std::move(out);
}

// Decodes and CLIP-preprocesses; flips with its own coin in "image" mode.
bool load_image(std::string_view bytes, const DataOptions& options, Rng& rng, Image* out,
                PackResult* failure) {
  DecodeOptions decode_options;
  decode_options.max_pixels = options.image.max_pixels;
  DecodeResult decoded = decode_image(bytes, decode_options);
  if (!decoded.ok()) {
    *failure = fail(decoded.reason, decoded.message);
    return false;
  }
  *out = clip_preprocess(decoded.image, options.image.size);
  if (options.image.flip == "image" && rng.uniform() < 0.5) *out = flip_horizontal(*out);
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

bool valid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    int extra;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    for (int k = 1; k <= extra; ++k) {
      if (i + k >= n || (s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    static constexpr uint32_t kMin[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

bool base64_decode(std::string_view text, std::string* out) {
  out->clear();
  out->reserve(text.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  bool padding = false;
  for (const char ch : text) {
    int v;
    if (ch >= 'A' && ch <= 'Z') {
      v = ch - 'A';
    } else if (ch >= 'a' && ch <= 'z') {
      v = ch - 'a' + 26;
    } else if (ch >= '0' && ch <= '9') {
      v = ch - '0' + 52;
    } else if (ch == '+') {
      v = 62;
    } else if (ch == '/') {
      v = 63;
    } else if (ch == '=') {
      padding = true;
      continue;
    } else if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') {
      continue;
    } else {
      return false;
    }
    if (padding) return false;  // data after '='
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return true;
}

std::string strip_text(std::string_view text) {
  // Python's str.isspace(): ASCII whitespace, \x1c-\x1f, and Unicode spaces (as UTF-8).
  static constexpr std::string_view kUnicodeSpaces[] = {
      "\xc2\x85",     "\xc2\xa0",     "\xe1\x9a\x80", "\xe2\x80\x80", "\xe2\x80\x81",
      "\xe2\x80\x82", "\xe2\x80\x83", "\xe2\x80\x84", "\xe2\x80\x85", "\xe2\x80\x86",
      "\xe2\x80\x87", "\xe2\x80\x88", "\xe2\x80\x89", "\xe2\x80\x8a", "\xe2\x80\xa8",
      "\xe2\x80\xa9", "\xe2\x80\xaf", "\xe2\x81\x9f", "\xe3\x80\x80"};
  auto ascii_space = [](char c) {
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
  };
  bool changed = true;
  while (changed && !text.empty()) {
    changed = false;
    if (ascii_space(text.front())) {
      text.remove_prefix(1);
      changed = true;
      continue;
    }
    if (ascii_space(text.back())) {
      text.remove_suffix(1);
      changed = true;
      continue;
    }
    for (const std::string_view sp : kUnicodeSpaces) {
      if (text.starts_with(sp)) {
        text.remove_prefix(sp.size());
        changed = true;
        break;
      }
      if (text.ends_with(sp)) {
        text.remove_suffix(sp.size());
        changed = true;
        break;
      }
    }
  }
  return std::string(text);
}

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
  if (image_bytes == nullptr) return fail("no_image", "no jpg|jpeg|png|webp member");
  const auto txt = sample.members.find("txt");
  if (txt == sample.members.end()) return fail("no_caption", "no txt member");
  if (!valid_utf8(txt->second)) return fail("invalid_utf8", "caption is not UTF-8");

  PackResult result;
  Image image;
  if (!load_image(*image_bytes, options, rng, &image, &result)) return result;
  const std::string text = std::string(Tokenizer::kImage) + strip_text(txt->second) +
                           std::string(Tokenizer::kEndOfChunk) + "</s>";
  Sequence& seq = result.sequence;
  pad_row(tokenizer.encode(text), tokenizer, options.laion.seq_len, seq);
  seq.labels = laion_labels(seq.input_ids, tokenizer);
  seq.images.push_back(std::move(image));
  return result;
}

PackResult pack_mmc4(const Sample& sample, const Tokenizer& tokenizer, const DataOptions& options,
                     Rng& rng) {
  const Mmc4Options& mo = options.mmc4;
  const auto json_it = sample.members.find("json");
  if (json_it == sample.members.end()) return fail("no_json", "no json member");
  if (!valid_utf8(json_it->second)) return fail("invalid_utf8", "document is not UTF-8");
  nlohmann::json doc = nlohmann::json::parse(json_it->second.view(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return fail("bad_json", "not a JSON object");

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
        if (ix < 0 || ix >= n_sent) return fail("bad_json", "matched_text_index out of range");
        std::vector<double> row(n_sent, -std::numeric_limits<double>::infinity());
        row[ix] = infos[i].at("matched_sim").get<double>();
        sims.insert(sims.end(), row.begin(), row.end());
      } else {
        if (i >= matrix.size()) return fail("bad_json", "similarity_matrix has too few rows");
        const auto& row = matrix[i];
        if (static_cast<int>(row.size()) != n_sent)
          return fail("bad_json", "similarity_matrix row length != len(text_list)");
        for (const auto& v : row) {
          const double d = v.get<double>();
          if (!std::isfinite(d)) return fail("bad_json", "non-finite similarity");
          sims.push_back(d);
        }
      }
      valid.push_back(static_cast<int>(i));
      image_bytes.push_back(std::move(bytes));
    }
  } catch (const nlohmann::json::exception& e) {
    return fail("bad_json", e.what());
  }
  const int n_img = static_cast<int>(valid.size());
  if (n_img == 0 || n_sent == 0) return fail("no_images", "no usable image");

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
  if (chosen.empty()) return fail("no_images", "no image above the similarity threshold");

  std::vector<int> order;
  const std::string text = mmc4_text(std::move(sentences), sentence_ixs, &order) +
                           std::string(Tokenizer::kEndOfChunk) + "</s>";
  PackResult result;
  Sequence& seq = result.sequence;
  pad_row(tokenizer.encode(text), tokenizer, mo.seq_len, seq);
  const int n_tokens = count_token(seq.input_ids, tokenizer.image_id());
  if (n_tokens < mo.min_images || n_tokens == 0)
    return fail("too_few_images", std::to_string(n_tokens) + " <image> tokens after truncation");
  if (n_tokens == 1 && rng.uniform() >= mo.single_image_keep_prob)
    return fail("single_image", "single-image document not kept (seeded coin)");
  if (n_tokens == 1 && seq.input_ids.back() == tokenizer.image_id())
    return fail("image_at_end", "the only <image> is the last token");
  // The document's own text may spell "<image>" (found by fuzz_mmc4): more tokens than images.
  if (n_tokens > static_cast<int>(order.size()))
    return fail("bad_text", std::to_string(n_tokens) + " <image> tokens for " +
                                std::to_string(order.size()) + " images: the text holds <image>");

  for (int t = 0; t < n_tokens; ++t) {
    Image image;
    if (!load_image(image_bytes[chosen[order[t]]], options, rng, &image, &result)) {
      result.sequence = {};
      return result;
    }
    seq.images.push_back(std::move(image));
  }
  seq.labels = mmc4_labels(seq.input_ids, tokenizer);
  return result;
}

}  // namespace flam::pipeline
