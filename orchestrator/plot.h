// Run plot: a hand-written SVG of a run's metrics for `flam status RUN --plot OUT.svg`, panels
// over a shared step axis: every `loss_*` series; learning rate; gradient norm; tokens/s and
// images/s (from 0); data wait, checkpoint stall and evaluation time in seconds (from 0) with a
// grey tick at each step after which a checkpoint was saved (the logged step before the row that
// reports the save's stall); the in-training evaluation scores (every
// `eval_{task}_{shots}shot` field, as "coco 4-shot") at the steps that evaluated. Dashed markers
// where the run restarted, labelled on the top panel with the steps that restart redid; under the
// last panel a wall-clock axis (h:mm since the first step; m:ss for a run under an hour) when the
// rows carry `wall_time`. A panel whose metrics are absent is left out. Axes have ticks and
// labels; each panel a legend. `smooth` > 1: each curve with more points than that (but the
// learning rate, a schedule) is drawn faint, under its trailing mean over `smooth` logged steps
// (class "smoothed").
//
// When a restart makes steps go back, the rows written after it replace the earlier rows of the
// same steps (the curve shows the trajectory the final model followed).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "orchestrator/run_dir.h"

namespace flam::orchestrator {

// Steps at which the run restarted: where the step in `rows` goes back or stays (a resumed job
// starts again after its checkpoint), and the step each resubmitted job of `state` started
// from. Sorted, unique.
std::vector<int64_t> restart_steps(const std::vector<MetricsRow>& rows, const RunState& state);

// A complete SVG document (UTF-8, well-formed XML). `title` is escaped. Empty `rows` give a
// document that says there are no metrics yet.
std::string render_run_svg(const std::vector<MetricsRow>& rows,
                           const std::vector<int64_t>& restarts, const std::string& title,
                           int smooth = 0);

}  // namespace flam::orchestrator
