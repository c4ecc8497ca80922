#!/usr/bin/env bash
# Sharded frozen weights, measured: per-rank resident memory of `flam train` with
# train.shard_frozen=true at N = 1, 2, 4 ranks on a model whose frozen LLaMA dominates (24 decoder
# layers of width 384: 46 M frozen parameters, 184 MB fp32), against `flam plan`'s per-rank
# figure for the same config (--workspace 1B: no CUDA context on CPU).
# Measured = rank 0's peak resident bytes during training (metrics.jsonl memory.peak_resident_bytes:
# VmHWM, reset when set-up ends; set-up is measured on its own at the end) minus the same for
# configs/tiny.yaml at the same N (the process itself: LibTorch, MPI, loader threads; its plan is
# ~2 MiB). Printed per N: plan MiB, measured MiB, measured/plan.
# Goal: every ratio within 0.9-1.1, and both columns falling with N. Then: what a streamed
# `flam export` of the big model allocates beyond the tiny one's, and set-up's peak with and
# without train.shard_frozen on 2 and 4 ranks (below).
# glibc's dynamic mmap threshold would keep the freed full-model tensors in the heap (they are
# freed once the engine holds its slices); a fixed threshold returns them, on both runs alike.
#   bash bench/train/memory.sh BUILD_DIR [STEPS]
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
STEPS=${2:-4}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
PY="$SRC/.venv/bin/python"
MPIEXEC=${MPIEXEC:-mpirun}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=PASSIVE
export MALLOC_MMAP_THRESHOLD_=131072
TMP=$(mktemp -d /tmp/flam_bench_memory.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

read -r VOCAB LAION MMC4 <<< "$(FLAM_SOURCE_DIR="$SRC" FLAM_BIN="$BUILD/flam" "$PY" - "$TMP" <<'PY'
import os, sys
sys.path.insert(0, os.path.join(os.environ["FLAM_SOURCE_DIR"], "tests", "train"))
import test_train_e2e as corpus
laion, mmc4 = corpus.make_corpus(sys.argv[1])
_, vocab = corpus.make_tokenizer(sys.argv[1])
print(vocab, ",".join(laion), ",".join(mmc4))
PY
)"
common=(--set "data.tokenizer=$TMP/tok.model" --set "model.lang.vocab_size=$VOCAB"
        --set "data.laion.shards=[$LAION]" --set "data.mmc4.shards=[$MMC4]"
        --set data.mmc4.max_images=2 --set data.mmc4.min_image_bytes=0
        --set "train.steps=$STEPS" --set train.log_every=1 --set train.checkpoint.every_steps=0
        --set train.shard_frozen=true --set data.loader.threads=1)
big=(--set model.lang.layers=24 --set model.lang.dim=384 --set model.lang.heads=4
     --set model.lang.ffn_dim=1024 --set model.xattn.every_n_layers=12)

resident_mib() {  # RUN_DIR: rank 0's peak resident bytes during training (after set-up), in MiB
  "$PY" -c "
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1] + '/metrics.jsonl')]
print('%.1f' % (rows[-1]['memory']['peak_resident_bytes'] / 2**20))" "$1"
}

plan_mib() {  # RANKS ARGS...: flam plan's per-rank peak in MiB
  local ranks=$1; shift
  "$BUILD/flam" plan --config "$SRC/configs/tiny.yaml" --ranks "$ranks" --workspace 1B "$@" |
    "$PY" -c "
import re, sys
text = sys.stdin.read()
m = re.search(r'per-GPU total \(peak\): ([0-9.]+) (KiB|MiB|GiB)', text)
assert m, text
print('%.1f' % (float(m.group(1)) * {'KiB': 1 / 1024, 'MiB': 1, 'GiB': 1024}[m.group(2)]))"
}

printf '%-6s %10s %12s %10s\n' ranks plan_MiB measured_MiB ratio
for n in 1 2 4; do
  for model in tiny big; do
    extra=()
    [ "$model" = big ] && extra=("${big[@]}")
    "$MPIEXEC" -np "$n" --oversubscribe --bind-to none "$BUILD/flam" train \
      --config "$SRC/configs/tiny.yaml" "${common[@]}" "${extra[@]}" \
      --set "run.dir=$TMP/$model-$n" > "$TMP/$model-$n.log" 2>&1 ||
      { tail -n 40 "$TMP/$model-$n.log"; exit 1; }
  done
  base=$(resident_mib "$TMP/tiny-$n")
  measured=$("$PY" -c "print('%.1f' % ($(resident_mib "$TMP/big-$n") - $base))")
  plan=$(plan_mib "$n" "${common[@]}" "${big[@]}")
  printf '%-6s %10s %12s %10s\n' "$n" "$plan" "$measured" \
    "$("$PY" -c "print('%.2f' % ($measured / $plan))")"
done
echo "model: configs/tiny.yaml with 24 LLaMA layers of 384 (ffn 1024), cross-attention every 12;"
echo "  fp32, CPU, train.shard_frozen=true, $STEPS steps; baseline: configs/tiny.yaml at the same N"

# Export streams (train/checkpoint/export.h): `flam export --format hf-flamingo` of each model, its
# frozen weights read from files as a real run's are (the model of a 1-step run, exported as an
# OpenFlamingo-HF folder, loaded by a 1-step run that checkpoints). Sampled every 10 ms from
# /proc: the peak of anonymous memory (what export allocates) and of mapped file pages (the
# weight files read through mmap: clean page cache the kernel can drop), the big model minus the
# tiny one, against the big model's bytes minus the tiny one's (the folders' safetensors). A
# whole-model export would allocate the model at least once (ratio >= 1).
train_1() {  # NAME ARGS...: a 1-step run that checkpoints, in $TMP/NAME
  local name=$1; shift
  "$BUILD/flam" train --config "$SRC/configs/tiny.yaml" "${common[@]}" "$@" --set train.steps=1 \
    --set train.checkpoint.every_steps=1 --set "run.dir=$TMP/$name" > "$TMP/$name.log" 2>&1 ||
    { tail -n 40 "$TMP/$name.log"; exit 1; }
}
for model in tiny big; do
  extra=()
  [ "$model" = big ] && extra=("${big[@]}")
  train_1 "init-$model" "${extra[@]}"
  "$BUILD/flam" export --format hf-flamingo --checkpoint "$TMP/init-$model" \
    --out "$TMP/weights-$model" > /dev/null
  train_1 "export-$model" "${extra[@]}" --set "model.weights.hf_flamingo=$TMP/weights-$model"
  "$PY" - "$TMP/export-$model.peak" "$BUILD/flam" export --format hf-flamingo \
    --checkpoint "$TMP/export-$model" --out "$TMP/export-$model-hf" <<'PY'
import json, subprocess, sys, time
proc = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL)
peak = {"RssAnon": 0, "RssFile": 0}
while proc.poll() is None:
    try:
        for line in open("/proc/%d/status" % proc.pid):
            key = line.split(":")[0]
            if key in peak:
                peak[key] = max(peak[key], int(line.split()[1]) * 1024)
    except OSError:
        pass
    time.sleep(0.01)
assert proc.returncode == 0, "flam export exited %d" % proc.returncode
json.dump(peak, open(sys.argv[1], "w"))
PY
done
"$PY" - "$TMP" <<'PY'
import glob, json, os, sys
tmp = sys.argv[1]
def peak(m, key): return json.load(open(os.path.join(tmp, "export-%s.peak" % m)))[key] / 2**20
def size(m): return sum(os.path.getsize(f) for f in glob.glob(os.path.join(
    tmp, "export-%s-hf" % m, "*.safetensors"))) / 2**20
model = size("big") - size("tiny")
anon = peak("big", "RssAnon") - peak("tiny", "RssAnon")
mapped = peak("big", "RssFile") - peak("tiny", "RssFile")
print("export --format hf-flamingo: %.1f MiB more model; peak anonymous memory %+.1f MiB (%.2f of "
      "it; a whole-model export: >= 1), mapped weight-file pages %+.1f MiB" %
      (model, anon, anon / model, mapped))
PY

# Set-up streams too with train.shard_frozen (train/model/options.h, FrozenStorage): each rank
# builds the frozen modules shape-only and reads from the weight files only the tensors its
# slices overlap, where a replicated run builds the whole model and loads every tensor. Rank 0's
# set-up peak (the trainer's "set-up peak resident" line: VmHWM before the engine holds its
# slices; it counts the weight files' mapped pages too) on 2 and 4 ranks, weights from the HF
# folder written above, the big model minus the tiny one, against the big model's extra bytes.
setup_mib() {  # NAME RANKS SHARD_FROZEN ARGS...: rank 0's set-up peak of a 1-step run, MiB
  local name=$1 ranks=$2 shard=$3; shift 3
  "$MPIEXEC" -np "$ranks" --oversubscribe --bind-to none "$BUILD/flam" train \
    --config "$SRC/configs/tiny.yaml" "${common[@]}" "$@" --set train.steps=1 \
    --set "train.shard_frozen=$shard" --set "run.dir=$TMP/$name" > "$TMP/$name.log" 2>&1 ||
    { tail -n 40 "$TMP/$name.log"; exit 1; }
  sed -n 's/.*set-up peak resident \([0-9]*\) MiB.*/\1/p' "$TMP/$name.log" | head -n 1
}
model_mib=$("$PY" -c "
import glob, os, sys
def size(m): return sum(os.path.getsize(f) for f in glob.glob(os.path.join(
    sys.argv[1], 'weights-%s' % m, '*.safetensors'))) / 2**20
print('%.1f' % (size('big') - size('tiny')))" "$TMP")
printf 'set-up peak of rank 0 beyond the tiny model'"'"'s, MiB (/ %s MiB more model):\n' "$model_mib"
printf '%-6s %16s %16s %8s\n' ranks replicated shard_frozen ratio
for n in 2 4; do
  declare -A setup=()
  for model in tiny big; do
    extra=(--set "model.weights.hf_flamingo=$TMP/weights-$model")
    [ "$model" = big ] && extra+=("${big[@]}")
    for shard in false true; do
      setup[$model-$shard]=$(setup_mib "setup-$model-$shard-$n" "$n" "$shard" "${extra[@]}")
    done
  done
  rep=$((setup[big-false] - setup[tiny-false]))
  shard=$((setup[big-true] - setup[tiny-true]))
  "$PY" -c "
import sys
rep, shard, model = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
print('%-6s %8d (%.2f) %8d (%.2f) %8.2f' % (sys.argv[1], rep, rep / model, shard, shard / model,
                                          shard / rep))" "$n" "$rep" "$shard" "$model_mib"
done
