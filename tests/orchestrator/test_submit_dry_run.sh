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
echo "OK"
