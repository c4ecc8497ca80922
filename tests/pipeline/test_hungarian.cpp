// linear_sum_assignment against brute force on random small matrices (square and rectangular),
// against scipy.optimize.linear_sum_assignment itself (the same assignment, ties included), a hand
// example, and argmax_assignment's first-on-ties rule.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <set>

#include "pipeline/hungarian.h"
#include "tests/pipeline/pipeline_fixture.h"

namespace flam::pipeline {
namespace {

double total(const std::vector<double>& cost, int cols,
             const std::vector<std::pair<int, int>>& pairs) {
  double t = 0;
  for (const auto& [r, c] : pairs) t += cost[r * cols + c];
  return t;
}

// Least total over every injective map of the smaller side into the larger one.
double brute_force(const std::vector<double>& cost, int rows, int cols) {
  const bool wide = rows <= cols;
  const int small = wide ? rows : cols, big = wide ? cols : rows;
  std::vector<int> perm(big);
  std::iota(perm.begin(), perm.end(), 0);
  double best = 1e300;
  do {
    double t = 0;
    for (int i = 0; i < small; ++i) t += wide ? cost[i * cols + perm[i]] : cost[perm[i] * cols + i];
    best = std::min(best, t);
  } while (std::next_permutation(perm.begin(), perm.end()));
  return best;
}

TEST(Hungarian, HandExample) {
  // scipy.optimize.linear_sum_assignment([[4,1,3],[2,0,5],[3,2,2]]) -> rows [0,1,2], cols
  // [1,0,2], total 5.
  const std::vector<double> cost = {4, 1, 3, 2, 0, 5, 3, 2, 2};
  const auto pairs = linear_sum_assignment(cost, 3, 3);
  const std::vector<std::pair<int, int>> expected = {{0, 1}, {1, 0}, {2, 2}};
  EXPECT_EQ(pairs, expected);
  EXPECT_DOUBLE_EQ(total(cost, 3, pairs), 5.0);
}

TEST(Hungarian, MaximisesSimilarityNotGreedy) {
  // Greedy (image 0 -> its best sentence 0) gives 0.9 + 0.1; the optimum is 0.8 + 0.8.
  const std::vector<double> sim = {0.9, 0.8, 0.8, 0.1};
  std::vector<double> cost(sim.size());
  std::transform(sim.begin(), sim.end(), cost.begin(), [](double s) { return -s; });
  const auto pairs = linear_sum_assignment(cost, 2, 2);
  const std::vector<std::pair<int, int>> expected = {{0, 1}, {1, 0}};
  EXPECT_EQ(pairs, expected);
}

TEST(Hungarian, MatchesBruteForceOnRandomMatrices) {
  std::mt19937 gen(1234);
  std::uniform_real_distribution<double> value(-1.0, 1.0);
  std::uniform_int_distribution<int> dim(1, 6);
  for (int trial = 0; trial < 400; ++trial) {
    const int rows = dim(gen), cols = dim(gen);
    std::vector<double> cost(rows * cols);
    for (double& c : cost) c = trial % 3 == 0 ? std::round(value(gen) * 3) : value(gen);
    const auto pairs = linear_sum_assignment(cost, rows, cols);
    ASSERT_EQ(static_cast<int>(pairs.size()), std::min(rows, cols));
    std::set<int> used_rows, used_cols;
    for (size_t i = 0; i < pairs.size(); ++i) {
      used_rows.insert(pairs[i].first);
      used_cols.insert(pairs[i].second);
      if (i > 0) {
        EXPECT_LT(pairs[i - 1].first, pairs[i].first) << "sorted by row";
      }
    }
    EXPECT_EQ(used_rows.size(), pairs.size());
    EXPECT_EQ(used_cols.size(), pairs.size());
    EXPECT_NEAR(total(cost, cols, pairs), brute_force(cost, rows, cols), 1e-9)
        << rows << "x" << cols << " trial " << trial;
  }
}

// The very assignment scipy returns, on matrices with many ties (small integers, constants,
// MMC4-like similarities rounded to 0.1 and negated) and without, wide, square and tall.
TEST(Hungarian, SameAssignmentAsScipy) {
  std::mt19937 gen(2016);
  std::uniform_int_distribution<int> dim(1, 9);
  std::uniform_real_distribution<double> value(-1.0, 1.0);
  nlohmann::json cases = nlohmann::json::array();
  std::vector<std::vector<double>> costs;
  std::vector<std::pair<int, int>> shapes;
  int tied = 0, wide = 0, tall = 0;
  for (int c = 0; c < 1600; ++c) {
    const int rows = dim(gen), cols = dim(gen);
    const int kind = c % 4;  // 0 continuous, 1 integers 0..2, 2 constant, 3 sims rounded to 0.1
    std::vector<double> cost(static_cast<size_t>(rows) * cols);
    const double constant = std::round(value(gen) * 4);
    for (double& x : cost) {
      if (kind == 0) x = value(gen);
      if (kind == 1) x = static_cast<double>(gen() % 3);
      if (kind == 2) x = constant;
      if (kind == 3) x = -std::round((value(gen) + 1) * 2.5) / 10;
    }
    std::set<double> distinct(cost.begin(), cost.end());
    tied += distinct.size() < cost.size();
    wide += rows < cols;
    tall += rows > cols;
    costs.push_back(cost);
    shapes.emplace_back(rows, cols);
    cases.push_back({{"rows", rows}, {"cols", cols}, {"cost", cost}});
  }
  EXPECT_GE(tied, 1000);
  EXPECT_GE(wide, 400);
  EXPECT_GE(tall, 400);
  const std::string path = testing::make_temp_dir("lsap") + "/cases.json";
  std::ofstream(path) << cases.dump();
  bool ok = false;
  const std::string out = testing::run_python_oracle("scipy_lsap_oracle.py", path, &ok);
  ASSERT_TRUE(ok) << out;
  const nlohmann::json expected = nlohmann::json::parse(out);
  ASSERT_EQ(expected.size(), costs.size());
  int same = 0;
  for (size_t c = 0; c < costs.size(); ++c) {
    const auto pairs = linear_sum_assignment(costs[c], shapes[c].first, shapes[c].second);
    const auto want = expected[c].get<std::vector<std::pair<int, int>>>();
    same += pairs == want;
    EXPECT_EQ(pairs, want) << shapes[c].first << "x" << shapes[c].second << " "
                           << cases[c]["cost"].dump();
  }
  std::printf("same assignment as scipy: %d / %zu (%d with ties)\n", same, costs.size(), tied);
}

TEST(Hungarian, EmptyInputs) {
  EXPECT_TRUE(linear_sum_assignment({}, 0, 3).empty());
  EXPECT_TRUE(linear_sum_assignment({}, 2, 0).empty());
}

TEST(Argmax, BestColumnPerRowFirstOnTies) {
  const std::vector<double> v = {0.1, 0.5, 0.5, 0.9, 0.2, 0.3};
  const std::vector<std::pair<int, int>> expected = {{0, 1}, {1, 0}};
  EXPECT_EQ(argmax_assignment(v, 2, 3), expected);
}

}  // namespace
}  // namespace flam::pipeline
