#include "train/eval/prompts.h"

#include <algorithm>
#include <numeric>
#include <string>

#include "core/check.h"

namespace flam::eval {
namespace {

std::string strip(std::string_view s) {
  auto space = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
  size_t b = 0, e = s.size();
  while (b < e && space(s[b])) ++b;
  while (e > b && space(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

std::string item_prompt(Task task, const EvalItem& item, bool with_answer) {
  std::string out(kImageMarker);
  if (task == Task::kCaptioning) {
    out += "Output:";
    if (with_answer) {
      FLAM_CHECK(!item.answers.empty()) << "caption demo " << item.id << " has no caption";
      out += strip(item.answers.front());
      out += kEndOfChunkMarker;
    }
    return out;
  }
  out += "Question:" + item.question + " Short answer:";
  if (with_answer) {
    FLAM_CHECK(!item.answers.empty()) << "VQA demo " << item.id << " has no answer";
    out += item.answers.front();
    out += kEndOfChunkMarker;
  }
  return out;
}

std::string build_prompt(Task task, const std::vector<const EvalItem*>& demos,
                         const EvalItem& query, bool text_only_demos) {
  std::string context;
  for (const EvalItem* d : demos) context += item_prompt(task, *d, true) + "\n";
  if (text_only_demos) {
    for (size_t p; (p = context.find(kImageMarker)) != std::string::npos;)
      context.erase(p, kImageMarker.size());
  }
  return context + item_prompt(task, query, false);
}

std::string postprocess_caption(std::string_view generated) {
  std::string out(generated.substr(0, generated.find("Output")));
  out.erase(std::remove(out.begin(), out.end(), '"'), out.end());
  return out;
}

std::string postprocess_vqa(std::string_view generated) {
  size_t cut = generated.size();
  for (std::string_view w : {"Question", "Answer", "Short"}) cut = std::min(cut, generated.find(w));
  std::string_view answer = generated.substr(0, cut);
  return std::string(answer.substr(0, answer.find(", ")));
}

int effective_shots(int shots) { return shots > 0 ? shots : 2; }

std::vector<size_t> sample_indices(size_t n, size_t k, uint64_t seed) {
  FLAM_CHECK(k <= n) << "cannot draw " << k << " distinct indices from " << n;
  std::vector<size_t> pool(n);
  std::iota(pool.begin(), pool.end(), size_t{0});
  uint64_t state = seed;
  for (size_t i = 0; i < k; ++i) {
    size_t j = i + static_cast<size_t>(splitmix64(state) % (n - i));
    std::swap(pool[i], pool[j]);
  }
  pool.resize(k);
  return pool;
}

uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b) {
  uint64_t s = seed;
  uint64_t x = splitmix64(s) ^ (a * 0x9e3779b97f4a7c15ULL);
  s = x;
  x = splitmix64(s) ^ (b * 0xc2b2ae3d27d4eb4fULL);
  s = x;
  return splitmix64(s);
}

}  // namespace flam::eval
