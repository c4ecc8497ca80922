#include "orchestrator/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <limits>
#include <map>
#include <set>
#include <sstream>

namespace flam::orchestrator {
namespace {

constexpr double kWidth = 900;
constexpr double kLeft = 80, kRight = 190, kTop = 50;
constexpr double kPanelHeight = 150, kPanelGap = 58;
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

// A tick label: 1200 -> "1200", 0.25 -> "0.25", 15000 -> "15k", 2.5e6 -> "2.5M", 0.00095 ->
// "9.5e-4" (short enough to stay clear of the axis title).
std::string tick_label(double v) {
  char buf[32];
  const double a = std::fabs(v);
  if (a > 0 && a < 0.01) {
    const int exponent = static_cast<int>(std::floor(std::log10(a) + 1e-9));
    const double mantissa = std::round(v / std::pow(10.0, exponent) * 100) / 100;
    std::snprintf(buf, sizeof(buf), "%ge%d", mantissa, exponent);
  } else if (a >= 1e6) {
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
  double top = 0;
  std::string y_label;
  bool from_zero = false;  // throughput and seconds: the y axis starts at 0
  bool smoothable = true;  // false for the learning rate: a schedule, exact; a mean only delays it
  std::vector<Series> series;
  std::vector<int64_t> markers;  // checkpoint steps, drawn as solid grey ticks
};

// A restart: the step the resumed job logged first, and the steps it had to redo.
struct Restart {
  int64_t step = 0;
  int64_t lost = 0;
};

// `wall`: (step, elapsed seconds) of the final trajectory, drawn as a second axis under the
// panel when non-empty. Restart labels go on the panel with `label_restarts` only.
// The trailing mean over `window` points of each point (the first points average what exists).
std::vector<std::pair<double, double>> trailing_mean(
    const std::vector<std::pair<double, double>>& in, int window) {
  std::vector<std::pair<double, double>> out;
  double sum = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    sum += in[i].second;
    if (i >= static_cast<size_t>(window)) sum -= in[i - static_cast<size_t>(window)].second;
    const size_t n = std::min(i + 1, static_cast<size_t>(window));
    out.emplace_back(in[i].first, sum / static_cast<double>(n));
  }
  return out;
}

void draw_panel(std::ostringstream& svg, const Panel& p, double x_lo, double x_hi,
                const std::vector<Restart>& restarts, bool label_restarts,
                const std::vector<std::pair<double, double>>& wall, int smooth) {
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
  if (p.from_zero) y_lo = 0;
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
  for (int64_t c : p.markers) {
    const std::string x = num(sx(static_cast<double>(c)));
    svg << "<line class=\"checkpoint\" x1=\"" << x << "\" y1=\"" << p.top << "\" x2=\"" << x
        << "\" y2=\"" << bottom << "\" stroke=\"#7f7f7f\" stroke-width=\"1\"/>\n";
  }
  for (const Restart& r : restarts) {
    if (r.step < x_lo || r.step > x_hi) continue;
    const std::string x = num(sx(static_cast<double>(r.step)));
    svg << "<line class=\"restart\" x1=\"" << x << "\" y1=\"" << p.top << "\" x2=\"" << x
        << "\" y2=\"" << bottom << "\" stroke=\"#e377c2\" stroke-width=\"1.5\" "
        << "stroke-dasharray=\"6,4\"/>\n";
    if (label_restarts) {
      svg << "<text x=\"" << x << "\" y=\"" << p.top - 4
          << "\" text-anchor=\"middle\" fill=\"#c2399f\" font-size=\"11\">restart @" << r.step;
      if (r.lost > 0) svg << ", " << r.lost << " steps lost";
      svg << "</text>\n";
    }
  }
  if (!wall.empty()) {
    // Elapsed wall-clock time at each tick (interpolated between the logged steps around it):
    // h:mm, m:ss for a run shorter than an hour (whose h:mm labels would all read 0:00 or 0:01),
    // seconds for one shorter than a minute (tenths under 10 s).
    const double y0 = bottom + 52;
    double span = 0;
    for (const auto& w : wall) span = std::max(span, w.second);
    const bool seconds = span < 60;
    const bool minutes_seconds = span < 3600;
    for (double t : nice_ticks(x_lo, x_hi, 8)) {
      auto after =
          std::find_if(wall.begin(), wall.end(), [&](const auto& w) { return w.first >= t; });
      double elapsed = after == wall.end() ? wall.back().second : after->second;
      if (after != wall.begin() && after != wall.end() && after->first > t) {
        const auto& before = *(after - 1);
        elapsed = before.second + (after->second - before.second) * (t - before.first) /
                                      (after->first - before.first);
      }
      const int unit = static_cast<int>(elapsed / (minutes_seconds ? 1.0 : 60.0));
      char label[32];
      if (seconds) {
        std::snprintf(label, sizeof(label), span < 10 ? "%.1f" : "%.0f", elapsed);
      } else {
        std::snprintf(label, sizeof(label), "%d:%02d", unit / 60, unit % 60);
      }
      svg << "<text class=\"wall\" x=\"" << num(sx(t)) << "\" y=\"" << y0
          << "\" text-anchor=\"middle\" fill=\"#555\">" << label << "</text>\n";
    }
    svg << "<text x=\"" << num(kLeft + plot_w / 2) << "\" y=\"" << y0 + 18
        << "\" text-anchor=\"middle\" fill=\"#555\">wall clock ("
        << (seconds           ? "s"
            : minutes_seconds ? "m:ss"
                              : "h:mm")
        << " since the first step)</text>\n";
  }
  for (size_t i = 0; i < p.series.size(); ++i) {
    const auto& s = p.series[i];
    const char* color = kColors[i % std::size(kColors)];
    const bool smoothed =
        p.smoothable && smooth > 1 && s.points.size() > static_cast<size_t>(smooth);
    const auto polyline = [&](const char* cls, const std::vector<std::pair<double, double>>& pts,
                              const char* extra) {
      svg << "<polyline class=\"" << cls << "\" data-name=\"" << escape(s.name)
          << "\" fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.6\"" << extra
          << " points=\"";
      for (size_t k = 0; k < pts.size(); ++k) {
        svg << (k ? " " : "") << num(sx(pts[k].first)) << "," << num(sy(pts[k].second));
      }
      svg << "\"/>\n";
    };
    // Smoothed: the raw curve stays, faint, under its trailing mean.
    polyline("series", s.points, smoothed ? " stroke-opacity=\"0.3\"" : "");
    if (smoothed) polyline("smoothed", trailing_mean(s.points, smooth), "");
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
  double ly = p.top + 14 + 20.0 * static_cast<double>(p.series.size());
  const double lx = kLeft + plot_w + 15;
  if (!restarts.empty()) {
    svg << "<line x1=\"" << lx << "\" y1=\"" << num(ly) << "\" x2=\"" << lx + 24 << "\" y2=\""
        << num(ly) << "\" stroke=\"#e377c2\" stroke-width=\"1.5\" stroke-dasharray=\"6,4\"/>\n";
    svg << "<text x=\"" << lx + 30 << "\" y=\"" << num(ly)
        << "\" dominant-baseline=\"middle\">restart</text>\n";
    ly += 20;
  }
  if (!p.markers.empty()) {
    svg << "<line x1=\"" << lx << "\" y1=\"" << num(ly) << "\" x2=\"" << lx + 24 << "\" y2=\""
        << num(ly) << "\" stroke=\"#7f7f7f\" stroke-width=\"1\"/>\n";
    svg << "<text x=\"" << lx + 30 << "\" y=\"" << num(ly)
        << "\" dominant-baseline=\"middle\">checkpoint</text>\n";
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
                           const std::vector<int64_t>& restarts, const std::string& title,
                           int smooth) {
  // The final trajectory: for each step the last row written wins.
  std::map<int64_t, const MetricsRow*> by_step;
  for (const auto& row : rows) by_step[row.step] = &row;

  // Steps lost at each restart: the newest step logged before it, minus the step the final
  // trajectory had logged just before the restart step (where the resumed job came back to).
  std::vector<Restart> marks;
  for (int64_t r : restarts) {
    const auto at = by_step.find(r);
    if (at == by_step.end()) {  // a resubmission that resumed exactly where it stopped
      marks.push_back({r, 0});
      continue;
    }
    int64_t reached = 0;
    for (const auto& row : rows) {
      if (&row == at->second) break;
      reached = std::max(reached, row.step);
    }
    auto before = by_step.lower_bound(r);
    const int64_t resumed = before == by_step.begin() ? 0 : std::prev(before)->first;
    marks.push_back({r, std::max<int64_t>(0, reached - resumed)});
  }

  // Panels in order; a panel without data is left out. Throughput and seconds start at 0.
  struct Spec {
    const char* label;
    bool from_zero;
    std::vector<std::pair<std::string, std::string>> keys;  // metrics key -> legend name
  };
  const std::vector<Spec> specs = {
      {"loss", false, {}},
      {"learning rate", false, {{"lr", "lr"}}},
      {"gradient norm", false, {{"grad_norm", "grad norm"}}},
      {"throughput (tokens/s)", true, {{"tokens_per_s", "tokens/s"}}},
      {"images/s", true, {{"images_per_s", "images/s"}}},
      {"seconds per logged step",
       true,
       {{"data_wait", "data wait"},
        {"checkpoint_stall", "checkpoint stall"},
        {"eval_seconds", "evaluation"}}},
      {"evaluation score", false, {}},
  };
  std::vector<Panel> panels(specs.size());
  std::map<std::string, Series> losses, evals;
  std::vector<std::pair<double, double>> wall;
  double wall0 = std::numeric_limits<double>::quiet_NaN();
  for (size_t i = 0; i < specs.size(); ++i) {
    panels[i].y_label = specs[i].label;
    panels[i].from_zero = specs[i].from_zero;
    for (const auto& [key, name] : specs[i].keys) panels[i].series.push_back({name, {}});
    panels[i].smoothable = specs[i].keys.empty() || specs[i].keys[0].first != "lr";
  }
  int64_t previous_step = by_step.empty() ? 0 : by_step.begin()->first;
  for (const auto& [step, row] : by_step) {
    const double x = static_cast<double>(step);
    for (const auto& [key, value] : row->values) {
      if (!std::isfinite(value)) continue;
      if (key.rfind("loss_", 0) == 0) {
        auto& s = losses[key];
        s.name = key.substr(5) + " loss";
        s.points.emplace_back(x, value);
      } else if (key.rfind("eval_", 0) == 0 && key.ends_with("shot")) {
        // "eval_coco_4shot" -> "coco 4-shot"
        auto& s = evals[key];
        const size_t cut = key.rfind('_');
        s.name = key.substr(5, cut - 5) + " " + key.substr(cut + 1, key.size() - cut - 5) + "-shot";
        s.points.emplace_back(x, value);
      } else if (key == "wall_time") {
        if (std::isnan(wall0)) wall0 = value;
        wall.emplace_back(x, value - wall0);
      }
      for (size_t i = 0; i < specs.size(); ++i) {
        for (size_t k = 0; k < specs[i].keys.size(); ++k) {
          if (specs[i].keys[k].first == key) panels[i].series[k].points.emplace_back(x, value);
        }
      }
      // The trainer saves after it logs a step, so a save's stall is on the next logged row:
      // the marker goes to the logged step before it, the step the save followed.
      if (key == "checkpoint_stall" && value > 0) {
        panels[specs.size() - 2].markers.push_back(previous_step);
      }
    }
    previous_step = step;
  }
  for (auto& [key, s] : losses) panels[0].series.push_back(std::move(s));
  for (auto& [key, s] : evals) panels.back().series.push_back(std::move(s));
  std::vector<Panel> shown;
  for (auto& p : panels) {
    std::erase_if(p.series, [](const Series& s) { return s.points.empty(); });
    if (!p.series.empty() || shown.empty()) shown.push_back(std::move(p));
  }
  for (size_t i = 0; i < shown.size(); ++i) {
    shown[i].top = kTop + static_cast<double>(i) * (kPanelHeight + kPanelGap);
  }
  const double height = kTop + static_cast<double>(shown.size()) * (kPanelHeight + kPanelGap) +
                        (wall.empty() ? 0 : 40);

  std::ostringstream svg;
  svg << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\""
      << num(height) << "\" viewBox=\"0 0 " << kWidth << " " << num(height)
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
  for (size_t i = 0; i < shown.size(); ++i) {
    const bool last = i + 1 == shown.size();
    draw_panel(svg, shown[i], x_lo, x_hi, marks, i == 0,
               last ? wall : std::vector<std::pair<double, double>>{}, smooth);
  }
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace flam::orchestrator
