// Unit tests of the orchestrator's pure parts: sbatch rendering and what it rejects, the parsers
// of Slurm's outputs, the restart policy, state.json round trips, the SVG plot.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "core/error.h"
#include "orchestrator/job_spec.h"
#include "orchestrator/plot.h"
#include "orchestrator/run_dir.h"
#include "orchestrator/slurm_client.h"
#include "orchestrator/subprocess.h"
#include "orchestrator/supervisor.h"

namespace flam::orchestrator {
namespace {

JobSpec sample_spec() {
  JobSpec spec;
  spec.kind = "train";
  spec.job_name = "of9b-run_1";
  spec.run_dir = "/scratch/runs/of9b";
  spec.flam_bin = "/opt/flam/bin/flam";
  spec.slurm.nodes = 4;
  spec.slurm.ntasks_per_node = 8;
  spec.slurm.gpus_per_node = 8;
  spec.slurm.cpus_per_task = 12;
  spec.slurm.time = "2-00:00:00";
  spec.slurm.partition = "gpu,gpu-long";
  spec.slurm.account = "vlm";
  spec.slurm.env = {"NCCL_DEBUG=WARN", "MSG=it's $HOME; rm -rf ~"};
  return spec;
}

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

TEST(JobSpec, MinNodesAsksForARange) {
  JobSpec spec = sample_spec();
  spec.slurm.min_nodes = 2;
  EXPECT_TRUE(has_line(render_sbatch(spec, load_template("train", "")), "#SBATCH --nodes=2-4"));
  spec.slurm.min_nodes = 4;
  EXPECT_TRUE(has_line(render_sbatch(spec, load_template("train", "")), "#SBATCH --nodes=4"));
  spec.slurm.min_nodes = 5;
  EXPECT_THROW(render_sbatch(spec, load_template("train", "")), Error);
}

TEST(JobSpec, RendersEveryOption) {
  const std::string s = render_sbatch(sample_spec(), load_template("train", ""));
  EXPECT_EQ(s.rfind("#!/bin/bash\n", 0), 0u);
  EXPECT_TRUE(has_line(s, "#SBATCH --job-name=of9b-run_1"));
  EXPECT_TRUE(has_line(s, "#SBATCH --nodes=4"));
  EXPECT_TRUE(has_line(s, "#SBATCH --ntasks-per-node=8"));
  EXPECT_TRUE(has_line(s, "#SBATCH --gpus-per-node=8"));
  EXPECT_TRUE(has_line(s, "#SBATCH --cpus-per-task=12"));
  EXPECT_TRUE(has_line(s, "#SBATCH --time=2-00:00:00"));
  EXPECT_TRUE(has_line(s, "#SBATCH --partition=gpu,gpu-long"));
  EXPECT_TRUE(has_line(s, "#SBATCH --account=vlm"));
  EXPECT_TRUE(has_line(s, "#SBATCH --no-requeue"));
  EXPECT_TRUE(has_line(s, "#SBATCH --signal=B:USR1@120"));
  EXPECT_TRUE(has_line(s, "#SBATCH --output=/scratch/runs/of9b/jobs/slurm-%j.out"));
  EXPECT_FALSE(s.find("--qos") != std::string::npos) << "an empty qos drops its line";
  EXPECT_TRUE(has_line(s, "export NCCL_DEBUG='WARN'"));
  EXPECT_TRUE(has_line(s, "export MSG='it'\\''s $HOME; rm -rf ~'"));
  EXPECT_TRUE(has_line(s, "run_dir='/scratch/runs/of9b'"));
  EXPECT_NE(s.find("srun --mpi=pmix --kill-on-bad-exit=1 \"$flam\" train --config"),
            std::string::npos);
  EXPECT_NE(s.find("trap forward_usr1 USR1"), std::string::npos);
  // Intra-op threads per rank from the task's cores unless the user set them.
  EXPECT_NE(s.find("export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}"),
            std::string::npos);
  EXPECT_EQ(s.find("{{"), std::string::npos);
}

TEST(JobSpec, ShardTemplateAndMpirunLauncher) {
  JobSpec spec = sample_spec();
  spec.kind = "shard";
  spec.slurm.launcher = "mpirun";
  spec.slurm.gpus_per_node = 0;
  spec.slurm.signal_seconds = 0;
  const std::string s = render_sbatch(spec, load_template("shard", ""));
  EXPECT_NE(s.find("\nmpirun \"$flam\" shard --config"), std::string::npos);
  EXPECT_EQ(s.find("--gpus-per-node"), std::string::npos);
  EXPECT_EQ(s.find("#SBATCH --signal"), std::string::npos);
  EXPECT_THROW(load_template("bogus", ""), Error);
}

TEST(JobSpec, RejectsValuesThatCouldInject) {
  struct Case {
    const char* what;
    void (*mutate)(JobSpec&);
    const char* key;
  } cases[] = {
      {"job name", [](JobSpec& s) { s.job_name = "x; rm -rf ~"; }, "run.name"},
      {"job name with space", [](JobSpec& s) { s.job_name = "a b"; }, "run.name"},
      {"partition", [](JobSpec& s) { s.slurm.partition = "gpu --uid=0"; }, "slurm.partition"},
      {"account", [](JobSpec& s) { s.slurm.account = "$(reboot)"; }, "slurm.account"},
      {"qos", [](JobSpec& s) { s.slurm.qos = "`id`"; }, "slurm.qos"},
      {"time", [](JobSpec& s) { s.slurm.time = "1:00\n#SBATCH --uid=0"; }, "slurm.time"},
      {"run dir", [](JobSpec& s) { s.run_dir = "/tmp/x; rm -rf ~"; }, "run.dir"},
      {"relative run dir", [](JobSpec& s) { s.run_dir = "runs/x"; }, "run.dir"},
      {"env key", [](JobSpec& s) { s.slurm.env = {"A;B=1"}; }, "slurm.env"},
      {"env without =", [](JobSpec& s) { s.slurm.env = {"NOVALUE"}; }, "slurm.env"},
      {"mpi", [](JobSpec& s) { s.slurm.mpi = "pmix;id"; }, "slurm.mpi"},
  };
  for (const auto& c : cases) {
    JobSpec spec = sample_spec();
    c.mutate(spec);
    try {
      render_sbatch(spec, load_template("train", ""));
      ADD_FAILURE() << c.what << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kConfig) << c.what;
      EXPECT_EQ(e.context().key, c.key) << c.what;
    }
  }
}

TEST(JobSpec, UnknownPlaceholderNamesTheLine) {
  try {
    render_sbatch(sample_spec(), "#!/bin/bash\necho ok\necho {{nope}}\n");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.context().line, 3);
  }
}

TEST(JobSpec, ShellQuote) {
  EXPECT_EQ(shell_quote("plain"), "'plain'");
  EXPECT_EQ(shell_quote("a'b"), "'a'\\''b'");
  EXPECT_EQ(shell_quote(""), "''");
}

TEST(Subprocess, ArgvIsNotAShellString) {
  const ProcessResult echo = run_process({"printf", "%s|", "a b", "$(id)", "x; rm -rf ~"});
  EXPECT_TRUE(echo.ok());
  EXPECT_EQ(echo.out, "a b|$(id)|x; rm -rf ~|");
  const ProcessResult err = run_process({"ls", "/nonexistent/flam"});
  EXPECT_EQ(err.exit_code, 2);
  EXPECT_NE(err.err.find("/nonexistent/flam"), std::string::npos);
  const ProcessResult missing = run_process({"flam-no-such-program"});
  EXPECT_TRUE(missing.not_found);
  EXPECT_FALSE(missing.ok());
  const ProcessResult slow = run_process({"sleep", "30"}, 0.3);
  EXPECT_TRUE(slow.timed_out);
  EXPECT_EQ(slow.signal, 9);
  EXPECT_EQ(describe_argv({"scancel", "--signal=USR1", "a b"}), "scancel --signal=USR1 'a b'");
}

TEST(SlurmParsers, Sbatch) {
  EXPECT_EQ(parse_sbatch_parsable("123\n"), "123");
  EXPECT_EQ(parse_sbatch_parsable("4567;cluster\n"), "4567");
  EXPECT_THROW(parse_sbatch_parsable("sbatch: error: bad\n"), Error);
}

TEST(SlurmParsers, ScontrolOneLine) {
  const JobInfo j = parse_scontrol_job(
      "JobId=42 JobName=run one UserId=root(0) JobState=NODE_FAIL Reason=NodeDown "
      "Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 ExitCode=0:9 RunTime=00:01:00 "
      "StartTime=2026-11-27T02:42:18 EndTime=2026-11-27T02:43:18 Command=/a b/job.sbatch\n");
  EXPECT_EQ(j.id, "42");
  EXPECT_EQ(j.state, "NODE_FAIL");
  EXPECT_EQ(j.reason, "NodeDown");
  EXPECT_EQ(j.exit_code, 0);
  EXPECT_EQ(j.exit_signal, 9);
  EXPECT_EQ(j.start, "2026-11-27T02:42:18");
  EXPECT_EQ(j.end, "2026-11-27T02:43:18");
  const JobInfo r = parse_scontrol_job(
      "JobId=7 JobState=RUNNING Reason=None ExitCode=0:0 StartTime=2026-11-27T02:42:18 "
      "EndTime=2027-11-27T02:42:18");
  EXPECT_EQ(r.state, "RUNNING");
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_EQ(r.reason, "");
  EXPECT_EQ(r.end, "") << "a running job's EndTime is its time limit, not an end";
}

TEST(SlurmParsers, Sacct) {
  const JobInfo j =
      parse_sacct("99|CANCELLED by 0|0:15|None|2026-11-27T02:42:18|2026-11-27T02:50:00\n");
  EXPECT_EQ(j.id, "99");
  EXPECT_EQ(j.state, "CANCELLED");
  EXPECT_EQ(j.exit_signal, 15);
  EXPECT_EQ(j.reason, "");
  EXPECT_EQ(parse_sacct("").state, "");
  EXPECT_TRUE(is_terminal("TIMEOUT"));
  EXPECT_FALSE(is_terminal("PENDING"));
}

JobRecord ended(const std::string& state, int exit_code, int64_t from, int64_t to) {
  JobRecord j;
  j.id = "5";
  j.state = state;
  j.exit_code = exit_code;
  j.step_at_submit = from;
  j.step_at_end = to;
  return j;
}

TEST(Decide, RestartPolicy) {
  SlurmOptions o;
  o.max_restarts = 3;
  o.max_failures_without_progress = 2;
  EXPECT_EQ(decide(ended("COMPLETED", 0, 0, 100), 0, 0, o).verdict, Verdict::kDone);
  EXPECT_EQ(decide(ended("FAILED", 2, -1, -1), 0, 0, o).verdict, Verdict::kStop);
  EXPECT_EQ(decide(ended("FAILED", 5, 0, 10), 0, 0, o).verdict, Verdict::kStop);
  for (const char* s : {"NODE_FAIL", "PREEMPTED", "TIMEOUT", "OUT_OF_MEMORY"}) {
    const Decision d = decide(ended(s, -1, 10, 10), 0, 5, o);
    EXPECT_EQ(d.verdict, Verdict::kResubmit) << s;
    EXPECT_FALSE(d.counts_as_no_progress) << s;
  }
  EXPECT_EQ(decide(ended("FAILED", 3, 10, 20), 0, 0, o).verdict, Verdict::kResubmit);
  EXPECT_EQ(decide(ended("FAILED", 4, 10, 20), 0, 0, o).verdict, Verdict::kResubmit);
  EXPECT_EQ(decide(ended("FAILED", 137, 10, 20), 0, 0, o).verdict, Verdict::kResubmit);
  // Without progress: once is retried, twice in a row stops.
  const Decision first = decide(ended("FAILED", 1, 20, 20), 1, 0, o);
  EXPECT_EQ(first.verdict, Verdict::kResubmit);
  EXPECT_TRUE(first.counts_as_no_progress);
  EXPECT_EQ(decide(ended("FAILED", 1, 20, 20), 2, 1, o).verdict, Verdict::kStop);
  // The restart limit.
  const Decision limit = decide(ended("FAILED", 4, 10, 20), 3, 0, o);
  EXPECT_EQ(limit.verdict, Verdict::kStop);
  EXPECT_NE(limit.reason.find("restart limit"), std::string::npos);
  EXPECT_EQ(decide(ended("CANCELLED", 0, 10, 20), 0, 0, o).verdict, Verdict::kStop);
}

TEST(RunDir, StateRoundTripAndMetrics) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("flam_rundir_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "checkpoints" / "step_00000020");
  std::filesystem::create_directories(dir / "checkpoints" / "step_00000030.tmp");
  std::filesystem::create_directories(dir / "checkpoints" / "step_00000010");
  std::ofstream(dir / "checkpoints" / "step_00000020" / "manifest.json") << "{}";
  std::ofstream(dir / "checkpoints" / "step_00000030.tmp" / "manifest.json") << "{}";
  RunDir run(dir.string() + "/");
  EXPECT_EQ(run.newest_checkpoint_step(), 20) << "uncommitted and manifest-less dirs do not count";
  RunState s;
  s.status = "running";
  s.restarts = 1;
  JobRecord j = ended("FAILED", 137, 3, 9);
  j.decision = "resubmit";
  s.jobs = {j, ended("", -1, 9, -1)};
  run.save_state(s);
  const RunState back = run.load_state();
  EXPECT_EQ(back.status, "running");
  EXPECT_EQ(back.restarts, 1);
  ASSERT_EQ(back.jobs.size(), 2u);
  EXPECT_EQ(back.jobs[0].exit_code, 137);
  EXPECT_EQ(back.jobs[0].decision, "resubmit");
  EXPECT_EQ(back.jobs[1].step_at_submit, 9);
  std::ofstream(dir / "metrics.jsonl") << "{\"step\":1,\"loss_laion\":2.5}\n"
                                       << "{\"step\":2,\"loss_la\n"  // torn line
                                       << "{\"step\":3,\"loss_laion\":2.0,\"note\":\"x\","
                                          "\"dropped\":{\"laion\":{\"bad_image\":4},"
                                          "\"mmc4\":{\"bad_image\":0,\"too_long\":2}}}\n";
  const auto rows = run.read_metrics();
  ASSERT_EQ(rows.size(), 2u);
  const std::map<std::string, int64_t> dropped{
      {"laion/bad_image", 4}, {"mmc4/bad_image", 0}, {"mmc4/too_long", 2}};
  EXPECT_EQ(rows[1].dropped, dropped);
  EXPECT_TRUE(rows[0].dropped.empty());
  EXPECT_EQ(rows[1].step, 3);
  EXPECT_DOUBLE_EQ(rows[1].values.at("loss_laion"), 2.0);
  EXPECT_EQ(rows[1].values.count("note"), 0u);
  std::ofstream(run.state_path()) << "{\"version\": 9}";
  EXPECT_THROW(run.load_state(), Error);
  std::filesystem::remove_all(dir);
}

TEST(SlurmOptions, JobKindSectionsOverrideTheCommonKeys) {
  SlurmOptions o;
  o.nodes = 8;
  o.gpus_per_node = 8;
  o.time = "2-00:00:00";
  o.partition = "gpu";
  o.train.time = "3-00:00:00";
  const SlurmOptions train = o.for_kind("train");
  EXPECT_EQ(train.nodes, 8);
  EXPECT_EQ(train.gpus_per_node, 8);
  EXPECT_EQ(train.time, "3-00:00:00");
  const SlurmOptions shard = o.for_kind("shard");
  EXPECT_EQ(shard.nodes, 8) << "-1 keeps slurm.nodes";
  EXPECT_EQ(shard.gpus_per_node, 0) << "the shard job asks for no GPUs by default";
  EXPECT_EQ(shard.time, "12:00:00");
  EXPECT_EQ(shard.partition, "gpu");
  o.shard.partition = "cpu";
  o.shard.nodes = 2;
  EXPECT_EQ(o.for_kind("shard").partition, "cpu");
  EXPECT_EQ(o.for_kind("shard").nodes, 2);
  JobSpec spec = sample_spec();
  spec.kind = "shard";
  spec.slurm.shard.time = "1 day";
  spec.slurm = spec.slurm.for_kind("shard");
  try {
    render_sbatch(spec, load_template("shard", ""));
    FAIL() << "a bad slurm.shard.time was rendered";
  } catch (const Error& e) {
    EXPECT_EQ(e.context().key, "slurm.shard.time") << e.what();
  }
}

TEST(Plot, CurvesLegendAndRestarts) {
  std::vector<MetricsRow> rows;
  for (int64_t step : {1, 2, 3, 4, 5, 6, 4, 5, 6, 7, 8}) {
    MetricsRow r;
    r.step = step;
    r.values = {{"loss_laion", 5.0 / static_cast<double>(step)},
                {"loss_mmc4", 6.0 / static_cast<double>(step)},
                {"tokens_per_s", 1000.0 + static_cast<double>(step)}};
    rows.push_back(r);
  }
  RunState state;
  state.jobs = {ended("FAILED", 137, -1, 6), ended("COMPLETED", 0, 6, 8)};
  const auto restarts = restart_steps(rows, state);
  ASSERT_EQ(restarts, std::vector<int64_t>{4});
  const std::string svg = render_run_svg(rows, restarts, "run <a&b>");
  EXPECT_NE(svg.find("run &lt;a&amp;b&gt;"), std::string::npos);
  EXPECT_NE(svg.find("data-name=\"laion loss\""), std::string::npos);
  EXPECT_NE(svg.find("data-name=\"mmc4 loss\""), std::string::npos);
  EXPECT_NE(svg.find("data-name=\"tokens/s\""), std::string::npos);
  EXPECT_NE(svg.find("restart @4"), std::string::npos);
  // The final trajectory has 8 distinct steps: 8 points per curve.
  const auto pos = svg.find("data-name=\"laion loss\"");
  const auto pts = svg.find("points=\"", pos);
  const auto end = svg.find('"', pts + 8);
  const std::string points = svg.substr(pts + 8, end - pts - 8);
  EXPECT_EQ(std::count(points.begin(), points.end(), ','), 8);
  EXPECT_NE(render_run_svg({}, {}, "empty").find("no metrics yet"), std::string::npos);
}

}  // namespace
}  // namespace flam::orchestrator
