#!/usr/bin/env bash
# flam submit --dry-run: renders the sbatch script from the config (no Slurm needed), rejects
# values that could inject into the script, and the rendered script is valid bash.
set -euo pipefail
FLAM="${FLAM_BIN:?}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/c.yaml" <<YAML
run:
  name: dry-run
  dir: $tmp/run
slurm:
  nodes: 2
  ntasks_per_node: 4
  gpus_per_node: 4
  partition: gpu
  qos: high
  env: ["OMPI_ALLOW_RUN_AS_ROOT=1", "NOTE=it's; rm -rf ~"]
YAML
"$FLAM" submit --config "$tmp/c.yaml" --dry-run >"$tmp/out.sbatch"
grep -qx '#SBATCH --nodes=2' "$tmp/out.sbatch"
grep -qx '#SBATCH --ntasks-per-node=4' "$tmp/out.sbatch"
grep -qx '#SBATCH --gpus-per-node=4' "$tmp/out.sbatch"
grep -qx '#SBATCH --partition=gpu' "$tmp/out.sbatch"
grep -qx '#SBATCH --qos=high' "$tmp/out.sbatch"
grep -qx "#SBATCH --output=$tmp/run/jobs/slurm-%j.out" "$tmp/out.sbatch"
grep -q "\"\$flam\" train --config" "$tmp/out.sbatch"
bash -n "$tmp/out.sbatch"
[[ ! -e "$tmp/run" ]] || { echo "dry-run created the run dir"; exit 1; }
# The quoted env value survives bash unchanged and runs nothing.
line="$(grep '^export NOTE=' "$tmp/out.sbatch")"
[[ "$(bash -c "$line; printf %s \"\$NOTE\"")" == "it's; rm -rf ~" ]]

"$FLAM" submit --config "$tmp/c.yaml" --dry-run --job shard | grep -q "\"\$flam\" shard --config"

# Slurm per job kind: the shard job asks for no GPUs and 12 h unless slurm.shard says otherwise;
# slurm.train overrides slurm.* for the training job only.
"$FLAM" submit --config "$tmp/c.yaml" --dry-run --job shard >"$tmp/shard.sbatch"
grep -qx '#SBATCH --nodes=2' "$tmp/shard.sbatch"
grep -qx '#SBATCH --time=12:00:00' "$tmp/shard.sbatch"
! grep -q -- '--gpus-per-node' "$tmp/shard.sbatch" || { echo "FAIL: shard job asks for GPUs"; exit 1; }
"$FLAM" submit --config "$tmp/c.yaml" --dry-run --job shard --set slurm.shard.nodes=1 \
  --set slurm.shard.partition=cpu --set slurm.shard.cpus_per_task=16 >"$tmp/shard2.sbatch"
grep -qx '#SBATCH --nodes=1' "$tmp/shard2.sbatch"
grep -qx '#SBATCH --partition=cpu' "$tmp/shard2.sbatch"
grep -qx '#SBATCH --cpus-per-task=16' "$tmp/shard2.sbatch"
"$FLAM" submit --config "$tmp/c.yaml" --dry-run --set slurm.train.time=2-00:00:00 \
  --set slurm.shard.time=01:00:00 >"$tmp/train2.sbatch"
grep -qx '#SBATCH --time=2-00:00:00' "$tmp/train2.sbatch"
grep -qx '#SBATCH --gpus-per-node=4' "$tmp/train2.sbatch"
"$FLAM" submit --config "$tmp/c.yaml" --dry-run --job shard --set slurm.train.time=2-00:00:00 |
  grep -x '#SBATCH --time=12:00:00' >/dev/null

# --after RUN: the job waits for that run's current job (afterok); a run that stopped for good,
# or a directory that is no run, is refused before anything is queued.
mkdir -p "$tmp/prep"
echo '{"version": 1, "status": "running", "kind": "shard", "jobs": [{"id": "4242"}]}' \
  >"$tmp/prep/state.json"
"$FLAM" submit --config "$tmp/c.yaml" --dry-run --after "$tmp/prep" >/dev/null 2>"$tmp/after.err"
want="--dependency=afterok:4242 --kill-on-invalid-dep=no $tmp/run/job.sbatch"
grep -q "would run: sbatch --parsable $want" "$tmp/after.err" ||
  { echo "FAIL: no afterok dependency"; cat "$tmp/after.err"; exit 1; }
"$FLAM" submit --config "$tmp/c.yaml" --dry-run >/dev/null 2>"$tmp/plain.err"
! grep -q dependency "$tmp/plain.err" || { echo "FAIL: a dependency without --after"; exit 1; }

expect_rejected() {
  local why="$1"; shift
  set +e
  "$FLAM" submit --config "$tmp/c.yaml" --dry-run "$@" >"$tmp/o" 2>"$tmp/e"
  local rc=$?
  set -e
  [[ $rc == 2 ]] || { echo "FAIL: $why: exit $rc"; cat "$tmp/o" "$tmp/e"; exit 1; }
  grep -q "$why" "$tmp/e" || { echo "FAIL: message lacks '$why'"; cat "$tmp/e"; exit 1; }
  [[ ! -s "$tmp/o" ]] || { echo "FAIL: a script was printed"; exit 1; }
}
expect_rejected "run.name" --set 'run.name=x; rm -rf ~'
expect_rejected "slurm.partition" --set 'slurm.partition=gpu --uid=0'
expect_rejected "run.dir" --set "run.dir=$tmp/a b"
expect_rejected "slurm.launcher" --set 'slurm.launcher=sh'
expect_rejected "unknown job kind" --job 'train;id'
expect_rejected "slurm.shard.time" --job shard --set 'slurm.shard.time=1h; id'
expect_rejected "has no state.json" --after "$tmp/nowhere"
echo '{"version": 1, "status": "failed", "explanation": "job 7 exited 5", "jobs": [{"id": "7"}]}' \
  >"$tmp/prep/state.json"
expect_rejected "is failed (job 7 exited 5): a job chained after it would never start" \
  --after "$tmp/prep"
echo "OK"
