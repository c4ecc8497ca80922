// Linear sum assignment: given a rows x cols cost matrix, pick min(rows, cols) cells, at most one
// per row and per column, with the least total cost. The algorithm is scipy's
// (scipy.optimize.linear_sum_assignment: shortest augmenting paths, Crouse 2016, O(n^2 m)), with
// its tie-breaking, so that among equal-cost optima the same one is returned (tested against
// scipy itself). The MMC4 packer maximises the total
// image-sentence similarity by minimising the negated similarities.
//
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace flam::pipeline {

// cost is row-major [rows, cols]; every entry finite. Returns (row, col) pairs sorted by row,
// min(rows, cols) of them; among equal-cost optima, scipy's. Maximising `values` is minimising
// their negation (scipy's maximize=True negates in the same way).
// REQUIRES: cost.size() == rows * cols.
std::vector<std::pair<int, int>> linear_sum_assignment(const std::vector<double>& cost, int rows,
                                                       int cols);

// The first release's matching: each row to its best column (largest value, first on ties);
// columns may repeat. Returns (row, col) for every row, sorted by row.
std::vector<std::pair<int, int>> argmax_assignment(const std::vector<double>& values, int rows,
                                                   int cols);

}  // namespace flam::pipeline
