// CIDEr-D as pycocoevalcap's Cider computes it (cider/cider_scorer.py): n-grams n = 1..4 of the
// whitespace-split tokens, tf-idf weights with document frequencies counted over the evaluated
// items' references (an n-gram counts once per item), idf = log(items) - log(max(1, df)),
// clipped cosine similarity per n, a Gaussian length penalty exp(-delta^2 / (2 sigma^2)) where
// the "length" is pycocoevalcap's (the number of bigrams), mean over n, mean over references,
// times 10. OpenFlamingo reports the corpus mean times 100.
//
// Thread safety: pure function.
#pragma once

#include <string>
#include <vector>

namespace flam::eval {

struct CiderOptions {
  int n = 4;
  double sigma = 6.0;
};

struct CiderResult {
  double score = 0.0;            // mean of per_item (pycocoevalcap's corpus score)
  std::vector<double> per_item;  // one score per candidate
};

// candidates[i]: tokenized candidate of item i (tokens separated by whitespace, may be empty);
// references[i]: its tokenized references. REQUIRES: equal sizes, at least one item, and at least
// one reference per item (flam::Error otherwise).
CiderResult cider_d(const std::vector<std::string>& candidates,
                    const std::vector<std::vector<std::string>>& references,
                    const CiderOptions& options = {});

}  // namespace flam::eval
