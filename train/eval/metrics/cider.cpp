#include "train/eval/metrics/cider.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/error.h"

namespace flam::eval {
namespace {

// n-gram counts per order: counts[k] maps a (k+1)-gram, its words joined by ' ', to its count.
using NgramCounts = std::vector<std::unordered_map<std::string, double>>;

NgramCounts precook(const std::string& sentence, int n) {
  std::vector<std::string> words;
  std::istringstream in(sentence);
  for (std::string w; in >> w;) words.push_back(std::move(w));
  NgramCounts counts(n);
  for (int k = 1; k <= n; ++k) {
    for (size_t i = 0; i + k <= words.size(); ++i) {
      std::string gram = words[i];
      for (int j = 1; j < k; ++j) gram += ' ' + words[i + j];
      counts[k - 1][gram] += 1.0;
    }
  }
  return counts;
}

struct TfIdf {
  NgramCounts vec;           // tf * idf per n-gram
  std::vector<double> norm;  // L2 norm per order
  double length = 0.0;       // pycocoevalcap's length: the number of bigrams
};

TfIdf counts_to_vec(const NgramCounts& counts,
                    const std::unordered_map<std::string, double>& document_frequency,
                    double log_items) {
  TfIdf out;
  out.vec.resize(counts.size());
  out.norm.assign(counts.size(), 0.0);
  for (size_t k = 0; k < counts.size(); ++k) {
    for (const auto& [gram, tf] : counts[k]) {
      auto it = document_frequency.find(gram);
      double df = std::log(std::max(1.0, it == document_frequency.end() ? 0.0 : it->second));
      double w = tf * (log_items - df);
      out.vec[k][gram] = w;
      out.norm[k] += w * w;
      if (k == 1) out.length += tf;
    }
    out.norm[k] = std::sqrt(out.norm[k]);
  }
  return out;
}

std::vector<double> similarity(const TfIdf& hyp, const TfIdf& ref, double sigma) {
  double delta = hyp.length - ref.length;
  std::vector<double> val(hyp.vec.size(), 0.0);
  for (size_t k = 0; k < hyp.vec.size(); ++k) {
    for (const auto& [gram, w] : hyp.vec[k]) {
      auto it = ref.vec[k].find(gram);
      if (it != ref.vec[k].end()) val[k] += std::min(w, it->second) * it->second;
    }
    if (hyp.norm[k] != 0.0 && ref.norm[k] != 0.0) val[k] /= hyp.norm[k] * ref.norm[k];
    val[k] *= std::pow(M_E, -(delta * delta) / (2.0 * sigma * sigma));
  }
  return val;
}

}  // namespace

CiderResult cider_d(const std::vector<std::string>& candidates,
                    const std::vector<std::vector<std::string>>& references,
                    const CiderOptions& options) {
  if (candidates.size() != references.size())
    throw Error(ErrorKind::kData, "CIDEr: " + std::to_string(candidates.size()) +
                                      " candidates but " + std::to_string(references.size()) +
                                      " reference sets");
  if (candidates.empty()) throw Error(ErrorKind::kData, "CIDEr: no items to score");
  const int n = options.n;
  std::vector<std::vector<NgramCounts>> ref_counts(references.size());
  std::unordered_map<std::string, double> document_frequency;
  for (size_t i = 0; i < references.size(); ++i) {
    if (references[i].empty())
      throw Error(ErrorKind::kData, "CIDEr: item " + std::to_string(i) + " has no references");
    std::unordered_set<std::string> seen;
    for (const auto& ref : references[i]) {
      ref_counts[i].push_back(precook(ref, n));
      for (const auto& order : ref_counts[i].back())
        for (const auto& entry : order) seen.insert(entry.first);
    }
    for (const auto& gram : seen) document_frequency[gram] += 1.0;
  }
  const double log_items = std::log(static_cast<double>(references.size()));

  CiderResult result;
  result.per_item.reserve(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    TfIdf hyp = counts_to_vec(precook(candidates[i], n), document_frequency, log_items);
    std::vector<double> sum(n, 0.0);
    for (const auto& rc : ref_counts[i]) {
      std::vector<double> s =
          similarity(hyp, counts_to_vec(rc, document_frequency, log_items), options.sigma);
      for (int k = 0; k < n; ++k) sum[k] += s[k];
    }
    double mean = 0.0;
    for (double s : sum) mean += s;
    mean /= n;
    mean /= static_cast<double>(ref_counts[i].size());
    result.per_item.push_back(mean * 10.0);
  }
  double total = 0.0;
  for (double s : result.per_item) total += s;
  result.score = total / static_cast<double>(result.per_item.size());
  return result;
}

}  // namespace flam::eval
