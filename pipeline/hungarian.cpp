#include "pipeline/hungarian.h"

#include <algorithm>
#include <limits>

#include "core/check.h"

namespace flam::pipeline {
namespace {

// Square-or-wide case (n <= m), 1-based potentials formulation: u (rows), v (cols), p[j] = row
// assigned to column j, way[j] = previous column on the augmenting path.
std::vector<int> assign_rows(const std::vector<double>& a, int n, int m) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(n + 1, 0), v(m + 1, 0);
  std::vector<int> p(m + 1, 0), way(m + 1, 0);
  for (int i = 1; i <= n; ++i) {
    p[0] = i;
    int j0 = 0;
    std::vector<double> minv(m + 1, inf);
    std::vector<char> used(m + 1, 0);
    do {
      used[j0] = 1;
      const int i0 = p[j0];
      double delta = inf;
      int j1 = 0;
      for (int j = 1; j <= m; ++j) {
        if (used[j]) continue;
        const double cur = a[static_cast<size_t>(i0 - 1) * m + (j - 1)] - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      FLAM_CHECK(j1 != 0) << "linear_sum_assignment: non-finite cost";
      for (int j = 0; j <= m; ++j) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] != 0);
    do {
      const int j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0 != 0);
  }
  std::vector<int> row_to_col(n, -1);
  for (int j = 1; j <= m; ++j) {
    if (p[j] != 0) row_to_col[p[j] - 1] = j - 1;
  }
  return row_to_col;
}

}  // namespace

std::vector<std::pair<int, int>> linear_sum_assignment(const std::vector<double>& cost, int rows,
                                                       int cols) {
  FLAM_CHECK(rows >= 0 && cols >= 0 && cost.size() == static_cast<size_t>(rows) * cols)
      << "cost is not rows x cols";
  std::vector<std::pair<int, int>> out;
  if (rows == 0 || cols == 0) return out;
  if (rows <= cols) {
    const std::vector<int> r2c = assign_rows(cost, rows, cols);
    for (int r = 0; r < rows; ++r) out.emplace_back(r, r2c[r]);
  } else {
    std::vector<double> t(cost.size());
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) t[static_cast<size_t>(c) * rows + r] = cost[r * cols + c];
    const std::vector<int> c2r = assign_rows(t, cols, rows);
    for (int c = 0; c < cols; ++c) out.emplace_back(c2r[c], c);
    std::sort(out.begin(), out.end());
  }
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
