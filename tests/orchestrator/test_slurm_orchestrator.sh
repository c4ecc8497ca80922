#!/usr/bin/env bash
# flam submit / watch / status / cancel on a real one-node Slurm (scripts/slurm-local.sh), with
# a real 2-rank MPI program (fake_trainer, $1) started by `srun --mpi=pmix` in the sbatch script:
#   1. a run completes; status reports it (text and --json);
#   2. a config error (exit 2) fails once and is not resubmitted;
#   3. kill -9 of one rank: watch resubmits, the job resumes from the checkpoint, and the final
#      parameter equals the uninterrupted run's;
#   4. scancel --signal=USR1 --batch: the batch shell forwards it, the ranks checkpoint and exit 3,
#      watch resubmits, the run completes with the same final parameter;
#   5. status of a running job (step of total, ETA); flam cancel: the job is cancelled and
#      watch stops.
# Skips (exit 77, saying why) only when slurmctld cannot start here.
set -euo pipefail
FLAM="${FLAM_BIN:?}"
FAKE="${1:?usage: $0 FAKE_TRAINER}"
SRC="${FLAM_SOURCE_DIR:?}"
export FLAM_SLURM_DIR="${FLAM_SLURM_TEST_DIR:-/tmp/flam-slurm-test}"
export FLAM_SLURM_CTLD_PORT=16827 FLAM_SLURM_SLURMD_PORT=16828
tmp="$(mktemp -d /tmp/flam_slurm_test.XXXXXX)"
watch_pid=""
cleanup() {
  [[ -n "$watch_pid" ]] && kill "$watch_pid" 2>/dev/null
  "$SRC/scripts/slurm-local.sh" stop || true
  rm -rf "$tmp"
}
if ! "$SRC/scripts/slurm-local.sh" start; then
  echo "SKIP: slurmctld could not start on this machine (reasons above); Slurm tests not run"
  exit 77
fi
trap cleanup EXIT
eval "$("$SRC/scripts/slurm-local.sh" env)"

fail() { echo "FAIL: $*"; for f in "$tmp"/*/orchestrator.log "$tmp"/*/jobs/*.out; do [[ -f $f ]] && { echo "--- $f"; tail -n 20 "$f"; }; done; exit 1; }
json_get() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {'d': d}))" "$@"; }

# make_config NAME STEPS STEP_SECONDS [EXTRA_ENV]
make_config() {
  cat >"$tmp/$1.yaml" <<YAML
run:
  name: t-$1
  dir: $tmp/$1
train:
  steps: $2
  checkpoint:
    every_steps: 5
slurm:
  ntasks_per_node: 2
  time: "00:05:00"
  poll_seconds: 1
  backoff_seconds: 1
  max_restarts: 3
  flam_bin: $FAKE
  env: ["OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1", "FAKE_STEP_SECONDS=$3"${4:+, \"$4\"}]
YAML
}

metrics_step() {  # the newest step in RUN/metrics.jsonl, 0 before the first row
  python3 - "$tmp/$1/metrics.jsonl" <<'PY'
import json, sys
step = 0
try:
    for line in open(sys.argv[1]):
        try:
            step = json.loads(line)["step"]
        except (ValueError, KeyError):
            pass
except OSError:
    pass
print(step)
PY
}
wait_step() {  # wait_step NAME STEP
  for _ in $(seq 600); do
    (( $(metrics_step "$1") >= $2 )) && return 0
    sleep 0.2
  done
  fail "$1 never reached step $2"
}
job_id() { json_get "$tmp/$1/state.json" "d['jobs'][-1]['id']"; }

echo "== 1. a 2-rank run completes"
make_config ok 40 0.1
"$FLAM" submit --config "$tmp/ok.yaml" | tee "$tmp/submit.out"
grep -q "submitted job" "$tmp/submit.out" || fail "submit printed no job id"
timeout 300 "$FLAM" watch "$tmp/ok" || fail "watch of a good run did not exit 0"
"$FLAM" status "$tmp/ok" | tee "$tmp/status.txt"
grep -q "completed, 1 job(s), 0 restart(s)" "$tmp/status.txt" || fail "status text"
grep -q "COMPLETED" "$tmp/status.txt" || fail "status lacks the job state"
"$FLAM" status "$tmp/ok" --json >"$tmp/status.json"
[[ "$(json_get "$tmp/status.json" "d['status'], d['step'], d['total_steps'], d['jobs'][0]['exit_code'], d['newest_checkpoint_step']")" == "('completed', 40, 40, 0, 40)" ]] || fail "status --json: $(cat "$tmp/status.json")"
grep -q "fake_trainer: 2 ranks" "$tmp"/ok/jobs/slurm-*.out || fail "the job did not run 2 MPI ranks"
reference="$(cat "$tmp/ok/fake_final.json")"

echo "== 2. a config error fails once and is not resubmitted"
make_config bad 40 0.1 FAKE_EXIT=2
"$FLAM" submit --config "$tmp/bad.yaml"
set +e; timeout 300 "$FLAM" watch "$tmp/bad"; rc=$?; set -e
[[ $rc == 1 ]] || fail "watch of a config error exited $rc, not 1"
[[ "$(json_get "$tmp/bad/state.json" "d['status'], len(d['jobs']), d['jobs'][0]['exit_code'], d['restarts']")" == "('failed', 1, 2, 0)" ]] || fail "state after a config error: $(cat "$tmp/bad/state.json")"
grep -q "exited 2: a usage or config error" "$tmp/bad/orchestrator.log" || fail "no explanation logged"
[[ "$(grep -c "submitted job" "$tmp/bad/orchestrator.log")" == 1 ]] || fail "a config error was resubmitted"

echo "== 3. kill -9 of one rank: resubmitted, resumed, same final parameter"
make_config kill 40 0.3
"$FLAM" submit --config "$tmp/kill.yaml"
timeout 300 "$FLAM" watch "$tmp/kill" >"$tmp/kill.watch" 2>&1 &
watch_pid=$!
wait_step kill 12
first_job="$(job_id kill)"
kill -9 "$(cat "$tmp/kill/fake_rank_1.pid")"
echo "killed rank 1 of job $first_job at step $(metrics_step kill)"
set +e; wait "$watch_pid"; rc=$?; set -e; watch_pid=""
cat "$tmp/kill.watch"
[[ $rc == 0 ]] || fail "watch after kill -9 exited $rc"
python3 - "$tmp/kill/state.json" "$first_job" <<'PY' || fail "state after kill -9"
import json, sys
d = json.load(open(sys.argv[1]))
jobs = d["jobs"]
assert d["status"] == "completed" and d["restarts"] >= 1, d
assert jobs[0]["id"] == sys.argv[2] and jobs[0]["exit_code"] != 0, jobs[0]
assert "resubmitting" in jobs[0]["decision"], jobs[0]
assert jobs[-1]["state"] == "COMPLETED" and jobs[-1]["exit_code"] == 0, jobs[-1]
assert jobs[-1]["step_at_submit"] >= 10, jobs[-1]
PY
grep -q "resuming at step [1-9]" "$tmp"/kill/jobs/slurm-$(job_id kill).out || fail "the new job did not resume from a checkpoint"
[[ "$(cat "$tmp/kill/fake_final.json")" == "$reference" ]] || fail "final parameter $(cat "$tmp/kill/fake_final.json") != uninterrupted $reference"
"$FLAM" status "$tmp/kill" --plot "$tmp/kill.svg" | grep -q "restart" || true
python3 - "$tmp/kill.svg" <<'PY' || fail "plot of the killed run"
import sys, xml.etree.ElementTree as ET
ns = {"s": "http://www.w3.org/2000/svg"}
root = ET.parse(sys.argv[1]).getroot()
curves = [p for p in root.iter("{http://www.w3.org/2000/svg}polyline") if len(p.get("points", "").split()) > 10]
assert len(curves) >= 3, len(curves)
assert any(l.get("class") == "restart" for l in root.iter("{http://www.w3.org/2000/svg}line"))
PY

echo "== 4. scancel --signal=USR1 --batch: checkpoint, exit 3, resubmitted, same final parameter"
make_config usr1 40 0.3
"$FLAM" submit --config "$tmp/usr1.yaml"
timeout 300 "$FLAM" watch "$tmp/usr1" >"$tmp/usr1.watch" 2>&1 &
watch_pid=$!
wait_step usr1 8
first_job="$(job_id usr1)"
scancel --signal=USR1 --batch "$first_job"
set +e; wait "$watch_pid"; rc=$?; set -e; watch_pid=""
cat "$tmp/usr1.watch"
[[ $rc == 0 ]] || fail "watch after USR1 exited $rc"
grep -q "SIGUSR1 received, forwarding" "$tmp/usr1/jobs/slurm-$first_job.out" || fail "the batch shell did not forward USR1"
grep -q "SIGUSR1: checkpoint at step" "$tmp/usr1/jobs/slurm-$first_job.out" || fail "the ranks did not checkpoint on USR1"
[[ "$(json_get "$tmp/usr1/state.json" "d['jobs'][0]['exit_code'], d['status']")" == "(3, 'completed')" ]] || fail "state after USR1: $(cat "$tmp/usr1/state.json")"
grep -q "exit 3: stopped after a checkpoint" "$tmp/usr1/orchestrator.log" || fail "USR1 decision not logged"
[[ "$(cat "$tmp/usr1/fake_final.json")" == "$reference" ]] || fail "final parameter after USR1 differs"

echo "== 5. flam cancel stops the job and the watch"
make_config cancel 400 0.2
"$FLAM" submit --config "$tmp/cancel.yaml"
timeout 300 "$FLAM" watch "$tmp/cancel" >"$tmp/cancel.watch" 2>&1 &
watch_pid=$!
wait_step cancel 2
"$FLAM" status "$tmp/cancel" >"$tmp/cancel.status"
grep -q "RUNNING" "$tmp/cancel.status" && grep -q "of 400" "$tmp/cancel.status" &&
  grep -q "ETA" "$tmp/cancel.status" || fail "status of a running job: $(cat "$tmp/cancel.status")"
"$FLAM" cancel "$tmp/cancel"
set +e; wait "$watch_pid"; rc=$?; set -e; watch_pid=""
[[ $rc == 1 ]] || fail "watch of a cancelled run exited $rc"
[[ "$(json_get "$tmp/cancel/state.json" "d['status'], len(d['jobs'])")" == "('cancelled', 1)" ]] || fail "state after cancel"
for _ in $(seq 100); do
  [[ "$(scontrol show job -o "$(job_id cancel)" | grep -o 'JobState=[A-Z_]*')" == "JobState=CANCELLED" ]] && break
  sleep 0.1
done
scontrol show job -o "$(job_id cancel)" | grep -q "JobState=CANCELLED" || fail "the Slurm job was not cancelled"
echo "OK"
