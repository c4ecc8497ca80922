// Linear sum assignment (the Hungarian method with potentials, O(n^2 m)): given a rows x cols
// cost matrix, pick min(rows, cols) cells, at most one per row and per column, with the least
// total cost, as scipy.optimize.linear_sum_assignment does. The MMC4 packer maximises the total
// image-sentence similarity by minimising the negated similarities.
//
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace flam::pipeline {

// cost is row-major [rows, cols]; every entry finite. Returns (row, col) pairs sorted by row,
// min(rows, cols) of them. Among equal-cost optima which one is returned is unspecified.
// REQUIRES: cost.size() == rows * cols.
std::vector<std::pair<int, int>> linear_sum_assignment(const std::vector<double>& cost, int rows,
                                                       int cols);

// The first release's matching: each row to its best column (largest value, first on ties);
// columns may repeat. Returns (row, col) for every row, sorted by row.
std::vector<std::pair<int, int>> argmax_assignment(const std::vector<double>& values, int rows,
                                                   int cols);

}  // namespace flam::pipeline
