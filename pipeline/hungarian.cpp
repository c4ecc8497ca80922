#include "pipeline/hungarian.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/check.h"

namespace flam::pipeline {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Dual potentials and the partial assignment of a rows <= cols problem, grown one row at a time
// by shortest augmenting paths (Crouse 2016, "On implementing 2D rectangular assignment
// algorithms", the algorithm of scipy's rectangular_lsap). Ties are resolved exactly as there:
// columns are scanned in descending index order (so a constant matrix gives the identity), an
// equally short path to a free column wins, and a scanned column leaves the candidate list by
// being swapped with its last entry. The order of floating-point operations is kept too, since
// it decides which of two nearly equal paths is shorter.
class Solver {
 public:
  Solver(const std::vector<double>& cost, int rows, int cols)
      : cost_(cost),
        rows_(rows),
        cols_(cols),
        u_(rows, 0.0),
        v_(cols, 0.0),
        path_cost_(cols),
        path_(cols, -1),
        col_of_row_(rows, -1),
        row_of_col_(cols, -1),
        row_seen_(rows),
        col_seen_(cols),
        candidates_(cols) {}

  std::vector<int> solve() {
    for (int row = 0; row < rows_; ++row) add_row(row);
    return col_of_row_;
  }

 private:
  // Finds the shortest augmenting path from `start` to a free column, updates the potentials
  // and flips the path.
  void add_row(int start) {
    std::fill(row_seen_.begin(), row_seen_.end(), false);
    std::fill(col_seen_.begin(), col_seen_.end(), false);
    std::fill(path_cost_.begin(), path_cost_.end(), kInf);
    int remaining = cols_;
    for (int k = 0; k < cols_; ++k) candidates_[k] = cols_ - 1 - k;
    double min_val = 0;
    int i = start, sink = -1;
    while (sink < 0) {
      row_seen_[i] = true;
      int best = -1;
      double lowest = kInf;
      for (int k = 0; k < remaining; ++k) {
        const int j = candidates_[k];
        const double r = min_val + cost_[static_cast<size_t>(i) * cols_ + j] - u_[i] - v_[j];
        if (r < path_cost_[j]) {
          path_[j] = i;
          path_cost_[j] = r;
        }
        if (path_cost_[j] < lowest || (path_cost_[j] == lowest && row_of_col_[j] == -1)) {
          lowest = path_cost_[j];
          best = k;
        }
      }
      min_val = lowest;
      FLAM_CHECK(min_val < kInf) << "linear_sum_assignment: infeasible (non-finite costs)";
      const int j = candidates_[best];
      if (row_of_col_[j] == -1) {
        sink = j;
      } else {
        i = row_of_col_[j];
      }
      col_seen_[j] = true;
      candidates_[best] = candidates_[--remaining];
    }
    u_[start] += min_val;
    for (int r = 0; r < rows_; ++r) {
      if (row_seen_[r] && r != start) u_[r] += min_val - path_cost_[col_of_row_[r]];
    }
    for (int c = 0; c < cols_; ++c) {
      if (col_seen_[c]) v_[c] -= min_val - path_cost_[c];
    }
    for (int j = sink;;) {
      const int r = path_[j];
      row_of_col_[j] = r;
      std::swap(col_of_row_[r], j);
      if (r == start) break;
    }
  }

  const std::vector<double>& cost_;  // [rows, cols] row-major
  const int rows_, cols_;
  std::vector<double> u_, v_;      // row and column potentials
  std::vector<double> path_cost_;  // [cols] shortest path cost found to each column
  std::vector<int> path_;          // [cols] the row before each column on its path
  std::vector<int> col_of_row_, row_of_col_;
  std::vector<bool> row_seen_, col_seen_;
  std::vector<int> candidates_;  // columns not yet scanned in this search (first `remaining`)
};

}  // namespace

std::vector<std::pair<int, int>> linear_sum_assignment(const std::vector<double>& cost, int rows,
                                                       int cols) {
  FLAM_CHECK(rows >= 0 && cols >= 0 && cost.size() == static_cast<size_t>(rows) * cols)
      << "cost is not rows x cols";
  for (const double c : cost)
    FLAM_CHECK(std::isfinite(c)) << "linear_sum_assignment: non-finite cost";
  std::vector<std::pair<int, int>> out;
  if (rows == 0 || cols == 0) return out;
  if (rows <= cols) {
    const std::vector<int> col_of_row = Solver(cost, rows, cols).solve();
    for (int r = 0; r < rows; ++r) out.emplace_back(r, col_of_row[r]);
    return out;
  }
  // Tall: solve the transpose (scipy does the same), then sort the pairs by row.
  std::vector<double> t(cost.size());
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c)
      t[static_cast<size_t>(c) * rows + r] = cost[static_cast<size_t>(r) * cols + c];
  const std::vector<int> row_of_col = Solver(t, cols, rows).solve();
  for (int c = 0; c < cols; ++c) out.emplace_back(row_of_col[c], c);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::pair<int, int>> argmax_assignment(const std::vector<double>& values, int rows,
                                                   int cols) {
  FLAM_CHECK(rows >= 0 && cols >= 0 && values.size() == static_cast<size_t>(rows) * cols)
      << "values is not rows x cols";
  std::vector<std::pair<int, int>> out;
  if (cols == 0) return out;
  for (int r = 0; r < rows; ++r) {
    int best = 0;
    for (int c = 1; c < cols; ++c)
      if (values[static_cast<size_t>(r) * cols + c] > values[static_cast<size_t>(r) * cols + best])
        best = c;
    out.emplace_back(r, best);
  }
  return out;
}

}  // namespace flam::pipeline
