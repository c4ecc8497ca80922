#!/usr/bin/env bash
# make demo: the whole chain on embedded defaults (configs/demo.yaml), on this machine only.
#   corpus (real photos -> crops, URL table, MMC4 documents) served from 127.0.0.1 with faults
#   -> flam shard (2 MPI ranks) -> tokenizer -> flam train (2 ranks), one rank killed part-way,
#   resumed (flam watch on a local Slurm if one starts here, else a rerun); at step 0 and every
#   DEMO_EVAL_EVERY steps the ranks caption held-out images at 0 and 4 shots (CIDEr) -> summary +
#   SVG plot.
# Everything lands in demo-out/ (DEMO_OUT); a rerun reuses the corpus and starts a fresh run.
# DEMO_STEPS and DEMO_KILL_AT shorten it (the e2e test does).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
FLAM="$ROOT/$BUILD/flam"
OUT=${DEMO_OUT:-demo-out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)  # absolute: the paths below reach Slurm jobs that start elsewhere
PY="$ROOT/.venv/bin/python"  # the venv's (scripts/setup.sh)
STEPS=${DEMO_STEPS:-300}
KILL_AT=${DEMO_KILL_AT:-120}
EVAL_EVERY=${DEMO_EVAL_EVERY:-$((STEPS / 3))}
CONFIG=configs/demo.yaml
RUN="$OUT/run"
USE_SLURM=${DEMO_SLURM:-auto}

# OpenMPI refuses to run as root without these; they are set for the demo's own processes only.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMPI_MCA_btl_vader_single_copy_mechanism=none
MPIRUN=(mpirun -np 2 --oversubscribe --bind-to none)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
start=$(date +%s)
SETS=(--set "run.dir=$RUN" --set "train.steps=$STEPS"
      --set "data.tokenizer=$OUT/tokenizer.model"
      --set "data.laion.shards=[$OUT/shards/laion/shards.txt]"
      --set "data.mmc4.shards=[$OUT/shards/mmc4/shards.txt]"
      --set "train.eval.every=$EVAL_EVERY"
      --set "eval.karpathy_json=$OUT/corpus/eval/karpathy.json"
      --set "eval.image_dir=$OUT/corpus/eval/img")

mkdir -p "$OUT"
server_pid=""
slurm_started=0
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  if [ "$slurm_started" = 1 ]; then bash scripts/slurm-local.sh stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

say "1/5 corpus: crops of tests/data/photos served from 127.0.0.1 (with 404s, a hang, a corrupt image)"
rm -f "$OUT/port"
$PY tests/common/http_server.py --root "$OUT/corpus/www" --port-file "$OUT/port" >/dev/null &
server_pid=$!
mkdir -p "$OUT/corpus/www"
for _ in $(seq 100); do [ -f "$OUT/port" ] && break; sleep 0.1; done
PORT=$(cat "$OUT/port")
$PY scripts/demo_corpus.py --photos tests/data/photos --out "$OUT/corpus" \
    --base-url "http://127.0.0.1:$PORT"

say "2/5 flam shard: LAION table and MMC4 documents into tar shards, 2 MPI ranks"
rm -rf "$OUT/shards"
for kind in laion mmc4; do
  input="$OUT/corpus/laion.tsv"
  [ "$kind" = mmc4 ] && input="$OUT/corpus/mmc4.jsonl"
  "${MPIRUN[@]}" "$FLAM" shard --config "$CONFIG" --set "shard.input_kind=$kind" \
      --set "shard.inputs=[$input]" --set "shard.output_dir=$OUT/shards/$kind" \
      --set "shard.save_cols=[source]"
  $PY -c 'import json,sys; s=json.load(open(sys.argv[1])); print("  %s: %d samples, %d ok, %d failed; by reason: %s" % (sys.argv[2], s["samples"], s["successes"], s["failures"], ", ".join("%s %d" % kv for kv in s["reasons"].items()) or "none"))' "$OUT/shards/$kind/summary.json" "$kind"
  ls "$OUT/shards/$kind"/*.tar > "$OUT/shards/$kind/shards.txt"
done

say "3/5 tokenizer: SentencePiece (vocab 256) trained on the corpus text"
spm_train --input="$OUT/corpus/text.txt" --model_prefix="$OUT/tokenizer" --vocab_size=256 \
    --model_type=bpe --character_coverage=1.0 --minloglevel=2 >/dev/null 2>&1

say "4/5 flam train: tiny Flamingo, 2 ranks, $STEPS steps; one rank killed at step ~$KILL_AT; captions of held-out images scored every $EVAL_EVERY steps"
rm -rf "$RUN"
if [ "$USE_SLURM" != no ] && bash scripts/slurm-local.sh start >/dev/null 2>&1; then
  slurm_started=1
  eval "$(bash scripts/slurm-local.sh env)"
fi

metrics_step() {  # the newest step in metrics.jsonl, or 0
  [ -f "$RUN/metrics.jsonl" ] || { echo 0; return; }
  tail -n 1 "$RUN/metrics.jsonl" | $PY -c 'import json,sys
try: print(json.loads(sys.stdin.read()).get("step", 0))
except Exception: print(0)'
}

kill_one_rank_at() {  # waits for step $1, then kill -9 of this run's newest `flam train` process
  while [ "$(metrics_step)" -lt "$1" ]; do sleep 0.5; done
  victim=
  for pid in $(pgrep -f "^[^ ]*/flam train " || true); do
    # Only a rank of this run (its command line names $RUN): other jobs may train on this machine.
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$RUN" && victim=$pid
  done
  if [ -n "$victim" ]; then
    echo "demo: kill -9 of rank process $victim at step $(metrics_step)"
    kill -9 "$victim"
  fi
}

if [ "$slurm_started" = 1 ]; then
  echo "demo: local Slurm is up: flam submit + flam watch will resubmit after the kill"
  "$FLAM" submit --config "$CONFIG" "${SETS[@]}" --set "slurm.env=[OMPI_ALLOW_RUN_AS_ROOT=1, OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1, OMPI_MCA_btl_vader_single_copy_mechanism=none]"
  kill_one_rank_at "$KILL_AT" &
  killer=$!
  "$FLAM" watch "$RUN"
  wait "$killer" || true
else
  echo "demo: no local Slurm here: running mpirun directly and rerunning after the kill"
  kill_one_rank_at "$KILL_AT" &
  killer=$!
  set +e
  "${MPIRUN[@]}" "$FLAM" train --config "$CONFIG" "${SETS[@]}"
  rc=$?
  set -e
  wait "$killer" || true
  echo "demo: first attempt exited with $rc; resuming from the newest checkpoint"
  "${MPIRUN[@]}" "$FLAM" train --config "$CONFIG" "${SETS[@]}"
fi

say "5/5 summary"
"$FLAM" status "$RUN" --plot "$OUT/run.svg"
$PY - "$OUT" "$RUN" <<'PYEOF'
import glob, json, os, sys
out, run = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl")) if l.strip()]
last = rows[-1]
dropped = {}
for kind in ("laion", "mmc4"):
    summary = os.path.join(out, "shards", kind, "summary.json")
    if os.path.exists(summary):
        for reason, n in json.load(open(summary)).get("reasons", {}).items():
            dropped["shard %s: %s" % (kind, reason)] = n
def avg(key):
    v = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
    return sum(v) / len(v) if v else float("nan")
print("where:")
for what, path in [("shards", os.path.join(out, "shards")), ("run", run),
                   ("checkpoints", os.path.join(run, "checkpoints")),
                   ("metrics", os.path.join(run, "metrics.jsonl")),
                   ("plot", os.path.join(out, "run.svg"))]:
    print("  %-12s %s" % (what, os.path.abspath(path)))
print("\n  %-28s %s" % ("steps", last.get("step")))
print("  %-28s %.4f" % ("final loss laion", last.get("loss_laion", float("nan"))))
print("  %-28s %.4f" % ("final loss mmc4", last.get("loss_mmc4", float("nan"))))
print("  %-28s %.1f" % ("images/s (mean)", avg("images_per_s")))
print("  %-28s %.1f" % ("tokens/s (mean)", avg("tokens_per_s")))
for k, v in sorted(dropped.items()):
    print("  %-28s %d" % ("dropped: " + k, v))
evals = {}
for r in rows:  # a step redone after the kill evaluates again; the last line of a step wins
    shots = {k: v for k, v in r.items() if k.startswith("eval_") and k.endswith("shot")}
    if shots:
        evals[r["step"]] = shots
if evals:
    keys = sorted({k for v in evals.values() for k in v}, key=lambda k: int(k.split("_")[-1][:-4]))
    print("\n  held-out captions, CIDEr x 100 (small for a tiny model; honest)")
    print("  %-8s %s" % ("step", "".join("%12s" % (k.split("_")[-1][:-4] + "-shot") for k in keys)))
    for step in sorted(evals):
        print("  %-8d %s" % (step, "".join("%12.2f" % evals[step].get(k, float("nan")) for k in keys)))
PYEOF
echo
echo "demo finished in $(( $(date +%s) - start )) s"
