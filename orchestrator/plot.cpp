#include "orchestrator/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>
#include <sstream>

namespace flam::orchestrator {
namespace {

constexpr double kWidth = 900, kHeight = 640;
constexpr double kLeft = 80, kRight = 170, kTop = 50;
constexpr double kPanelHeight = 230, kPanelGap = 70;
const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", v);
  return buf;
}

// A tick label: 1200 -> "1200", 0.25 -> "0.25", 15000 -> "15k", 2.5e6 -> "2.5M".
std::string tick_label(double v) {
  char buf[32];
  const double a = std::fabs(v);
  if (a >= 1e6) {
    std::snprintf(buf, sizeof(buf), "%gM", v / 1e6);
  } else if (a >= 1e4) {
    std::snprintf(buf, sizeof(buf), "%gk", v / 1e3);
  } else {
    std::snprintf(buf, sizeof(buf), "%g", std::round(v * 1e6) / 1e6);
  }
  return buf;
}

// About `count` round tick values covering [lo, hi] (1, 2 or 5 times a power of ten apart).
std::vector<double> nice_ticks(double lo, double hi, int count) {
  const double span = hi - lo;
  const double raw = span / count;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    ticks.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
  }
  return ticks;
}

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (step, value)
};

struct Panel {
  double top;
  std::string y_label;
  std::vector<Series> series;
};

void draw_panel(std::ostringstream& svg, const Panel& p, double x_lo, double x_hi,
                const std::vector<int64_t>& restarts) {
  const double plot_w = kWidth - kLeft - kRight;
  const double bottom = p.top + kPanelHeight;
  double y_lo = std::numeric_limits<double>::infinity(), y_hi = -y_lo;
  for (const auto& s : p.series) {
    for (const auto& [x, y] : s.points) {
      y_lo = std::min(y_lo, y);
      y_hi = std::max(y_hi, y);
    }
  }
  if (!std::isfinite(y_lo)) y_lo = 0, y_hi = 1;
  if (y_hi - y_lo < 1e-12) y_lo -= 0.5, y_hi += 0.5;
  const double pad = (y_hi - y_lo) * 0.05;
  y_lo -= pad;
  y_hi += pad;
  if (y_lo < 0 && y_hi - pad >= 0 && y_lo + pad >= 0) y_lo = 0;
  auto sx = [&](double x) { return kLeft + (x - x_lo) / (x_hi - x_lo) * plot_w; };
  auto sy = [&](double y) { return bottom - (y - y_lo) / (y_hi - y_lo) * kPanelHeight; };

  svg << "<g class=\"panel\">\n";
  svg << "<rect x=\"" << kLeft << "\" y=\"" << p.top << "\" width=\"" << plot_w << "\" height=\""
      << kPanelHeight << "\" fill=\"#fbfbfb\" stroke=\"#333\"/>\n";
  for (double t : nice_ticks(y_lo, y_hi, 5)) {
    const std::string y = num(sy(t));
    svg << "<line x1=\"" << kLeft << "\" y1=\"" << y << "\" x2=\"" << num(kLeft + plot_w)
        << "\" y2=\"" << y << "\" stroke=\"#e3e3e3\"/>\n";
    svg << "<line x1=\"" << kLeft - 5 << "\" y1=\"" << y << "\" x2=\"" << kLeft << "\" y2=\"" << y
        << "\" stroke=\"#333\"/>\n";
    svg << "<text x=\"" << kLeft - 8 << "\" y=\"" << y
        << "\" text-anchor=\"end\" dominant-baseline=\"middle\">" << tick_label(t) << "</text>\n";
  }
  for (double t : nice_ticks(x_lo, x_hi, 8)) {
    const std::string x = num(sx(t));
    svg << "<line x1=\"" << x << "\" y1=\"" << bottom << "\" x2=\"" << x << "\" y2=\"" << bottom + 5
        << "\" stroke=\"#333\"/>\n";
    svg << "<text x=\"" << x << "\" y=\"" << bottom + 18 << "\" text-anchor=\"middle\">"
        << tick_label(t) << "</text>\n";
  }
  svg << "<text x=\"" << num(kLeft + plot_w / 2) << "\" y=\"" << bottom + 38
      << "\" text-anchor=\"middle\">step</text>\n";
  svg << "<text transform=\"translate(22," << num(p.top + kPanelHeight / 2)
      << ") rotate(-90)\" text-anchor=\"middle\">" << escape(p.y_label) << "</text>\n";
  for (int64_t r : restarts) {
    if (r < x_lo || r > x_hi) continue;
    const std::string x = num(sx(static_cast<double>(r)));
    svg << "<line class=\"restart\" x1=\"" << x << "\" y1=\"" << p.top << "\" x2=\"" << x
        << "\" y2=\"" << bottom << "\" stroke=\"#e377c2\" stroke-width=\"1.5\" "
        << "stroke-dasharray=\"6,4\"/>\n";
    svg << "<text x=\"" << x << "\" y=\"" << p.top - 4
        << "\" text-anchor=\"middle\" fill=\"#c2399f\" font-size=\"11\">restart @" << r
        << "</text>\n";
  }
  for (size_t i = 0; i < p.series.size(); ++i) {
    const auto& s = p.series[i];
    const char* color = kColors[i % std::size(kColors)];
    svg << "<polyline class=\"series\" data-name=\"" << escape(s.name)
        << "\" fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.6\" points=\"";
    for (size_t k = 0; k < s.points.size(); ++k) {
      svg << (k ? " " : "") << num(sx(s.points[k].first)) << "," << num(sy(s.points[k].second));
    }
    svg << "\"/>\n";
    if (s.points.size() == 1) {
      svg << "<circle cx=\"" << num(sx(s.points[0].first)) << "\" cy=\""
          << num(sy(s.points[0].second)) << "\" r=\"3\" fill=\"" << color << "\"/>\n";
    }
    const double ly = p.top + 14 + 20.0 * static_cast<double>(i);
    const double lx = kLeft + plot_w + 15;
    svg << "<line x1=\"" << lx << "\" y1=\"" << num(ly) << "\" x2=\"" << lx + 24 << "\" y2=\""
        << num(ly) << "\" stroke=\"" << color << "\" stroke-width=\"2.5\"/>\n";
    svg << "<text x=\"" << lx + 30 << "\" y=\"" << num(ly) << "\" dominant-baseline=\"middle\">"
        << escape(s.name) << "</text>\n";
  }
  if (!restarts.empty()) {
    const double ly = p.top + 14 + 20.0 * static_cast<double>(p.series.size());
    const double lx = kLeft + plot_w + 15;
    svg << "<line x1=\"" << lx << "\" y1=\"" << num(ly) << "\" x2=\"" << lx + 24 << "\" y2=\""
        << num(ly) << "\" stroke=\"#e377c2\" stroke-width=\"1.5\" stroke-dasharray=\"6,4\"/>\n";
    svg << "<text x=\"" << lx + 30 << "\" y=\"" << num(ly)
        << "\" dominant-baseline=\"middle\">restart</text>\n";
  }
  svg << "</g>\n";
}

}  // namespace

std::vector<int64_t> restart_steps(const std::vector<MetricsRow>& rows, const RunState& state) {
  std::set<int64_t> steps;
  for (size_t i = 1; i < rows.size(); ++i) {
    if (rows[i].step <= rows[i - 1].step) steps.insert(rows[i].step);
  }
  // A resubmitted job whose resume shows no step regression (it resumed exactly where the
  // previous job stopped) is marked at the step it was submitted at.
  const std::set<int64_t> regressions = steps;
  for (size_t i = 1; i < state.jobs.size(); ++i) {
    const int64_t lo = state.jobs[i - 1].step_at_submit, hi = state.jobs[i].step_at_submit;
    if (hi < 0) continue;
    const auto it = regressions.upper_bound(lo);
    if (it == regressions.end() || *it > hi) steps.insert(hi);
  }
  return {steps.begin(), steps.end()};
}

std::string render_run_svg(const std::vector<MetricsRow>& rows,
                           const std::vector<int64_t>& restarts, const std::string& title) {
  // The final trajectory: for each step the last row written wins.
  std::map<int64_t, const MetricsRow*> by_step;
  for (const auto& row : rows) by_step[row.step] = &row;
  std::map<std::string, Series> losses;
  Series throughput{"tokens/s", {}};
  for (const auto& [step, row] : by_step) {
    for (const auto& [key, value] : row->values) {
      if (!std::isfinite(value)) continue;
      if (key.rfind("loss_", 0) == 0) {
        auto& s = losses[key];
        s.name = key.substr(5) + " loss";
        s.points.emplace_back(static_cast<double>(step), value);
      } else if (key == "tokens_per_s") {
        throughput.points.emplace_back(static_cast<double>(step), value);
      }
    }
  }
  std::ostringstream svg;
  svg << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\"" << kHeight
      << "\" viewBox=\"0 0 " << kWidth << " " << kHeight
      << "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << kLeft << "\" y=\"24\" font-size=\"16\" font-weight=\"bold\">"
      << escape(title) << "</text>\n";
  if (by_step.empty()) {
    svg << "<text x=\"" << kLeft << "\" y=\"80\">no metrics yet (metrics.jsonl is empty)</text>\n"
        << "</svg>\n";
    return svg.str();
  }
  double x_lo = static_cast<double>(by_step.begin()->first);
  double x_hi = static_cast<double>(by_step.rbegin()->first);
  if (x_hi - x_lo < 1) x_hi = x_lo + 1;
  Panel loss_panel{kTop, "loss", {}};
  for (auto& [key, s] : losses) loss_panel.series.push_back(std::move(s));
  Panel rate_panel{kTop + kPanelHeight + kPanelGap, "throughput (tokens/s)", {}};
  if (!throughput.points.empty()) rate_panel.series.push_back(std::move(throughput));
  draw_panel(svg, loss_panel, x_lo, x_hi, restarts);
  draw_panel(svg, rate_panel, x_lo, x_hi, restarts);
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace flam::orchestrator
