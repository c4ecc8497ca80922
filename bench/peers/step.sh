#!/usr/bin/env bash
# Whole training step against the peer, CPU, 1 rank, fp32: OpenFlamingo's own loop body
# (open_flamingo.train.train_utils.train_one_epoch on its Flamingo model, DDP on a one-rank gloo
# group, AdamW, clip 1.0; step_peer.py) and `flam train` (our Flamingo, ZeRO-3 engine on one rank,
# AdamW, clip 1.0) on the same shape (of_model.py: SHAPE) and batches from the same shards (LAION
# 4 x 32 tokens, MMC4 2 x 256 tokens x 3 images, 112 px), intra-op threads = cores on both.
# Figure: median step time after warm-up, data time excluded on both (the peer's batches are
# fetched before the clock; ours: metrics step_time - data_wait). Three runs each, interleaved;
# medians printed, ratio last. Goal: ours >= 1.3x (peer time / our time).
#   bash bench/peers/step.sh BUILD_DIR [WARMUP] [STEPS] [RUNS]
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
WARMUP=${2:-1}
STEPS=${3:-4}
RUNS=${4:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
PY="$SRC/.venv/bin/python"
CORES=$(nproc)
export NO_ALBUMENTATIONS_UPDATE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# Both sides run LibTorch with GNU OpenMP; its idle workers spin by default, and on a shared,
# oversubscribed machine a spinning team measures the neighbours (a profile of ours showed 85% of
# samples in libgomp's spin loop, a 20x longer step). Passive waiting, on both sides alike.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
TMP=$(mktemp -d /tmp/flam_peers_step.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
[ -x "$BUILD/flam" ] || cmake --build "$BUILD" --target flam >/dev/null

N=$((WARMUP + STEPS))
"$PY" "$HERE/make_loader_data.py" "$SRC/tests/data/photos" "$TMP" 2 $((4 * N)) 2 $((2 * N + 8))
read -r LB MB NI IS <<< "$("$PY" -c "import sys; sys.path.insert(0, '$HERE'); import of_model as m; s = m.SHAPE; print(s['laion_batch'], s['mmc4_batch'], s['mmc4_images'], s['image_size'])")"
{
  "$PY" "$HERE/of_model.py" flam-config
  cat <<YAML
run: {name: peers-step, dir: "$TMP/run", seed: 1234}
data:
  tokenizer: "$TMP/tok.model"
  image: {size: $IS}
  laion: {shards: ["$TMP/laion-{00000..00001}.tar"], batch_size: $LB, seq_len: 32}
  mmc4: {shards: ["$TMP/mmc4-{00000..00001}.tar"], batch_size: $MB, seq_len: 256, max_images: $NI}
  loader: {threads: $CORES}
train:
  steps: $N
  log_every: 1
  device: cpu
  precision: fp32
  grad_clip: 1.0
  checkpoint: {every_steps: 0}
YAML
} > "$TMP/ours.yaml"

: > "$TMP/results"
for r in $(seq "$RUNS"); do
  p=$("$PY" "$HERE/step_peer.py" run "$TMP" "$TMP/hf_tokenizer" "$WARMUP" "$STEPS" "$CORES" 2>"$TMP/peer.log" | tail -1) ||
    { cat "$TMP/peer.log"; exit 1; }
  echo "peer $p" >> "$TMP/results"
  rm -rf "$TMP/run"
  /usr/bin/time -f "%M" -o "$TMP/rss" "$BUILD/flam" train --config "$TMP/ours.yaml" > "$TMP/ours.log" 2>&1 ||
    { cat "$TMP/ours.log"; exit 1; }
  "$PY" - "$TMP/run/metrics.jsonl" "$WARMUP" "$(cat "$TMP/rss")" >> "$TMP/results" <<'PYEOF'
import json, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1])][int(sys.argv[2]):]
print("ours step_s %.4f rss_mib %.1f" % (
    statistics.median(l["step_time"] - l["data_wait"] for l in lines), int(sys.argv[3]) / 1024))
PYEOF
done
echo "inputs: OpenFlamingo's modules at of_model.SHAPE ($("$PY" -c "import sys; sys.path.insert(0, '$HERE'); import of_model; print(of_model.SHAPE)"));"
echo "  perceiver 6 x 8 x 64, 64 latents; cross-attention 8 x 64; LAION $LB x 32, MMC4 $MB x 256 x $NI"
echo "  images at $IS px; fp32, CPU, $CORES threads (OMP_WAIT_POLICY=$OMP_WAIT_POLICY), 1 rank; $WARMUP warm-up + $STEPS timed steps, median; $RUNS runs"
"$PY" - "$TMP/results" "$HERE" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[2])
from stats import summary
fig = {"peer": [], "ours": []}
for line in open(sys.argv[1]):
    tool, *kv = line.split()
    d = dict(zip(kv[0::2], kv[1::2]))
    fig[tool].append((float(d["step_s"]), float(d["rss_mib"])))
for tool, name in (("peer", "OpenFlamingo train_one_epoch"), ("ours", "flam train                  ")):
    print("%s: step %s s; peak RSS %s MiB" % (name, summary([s for s, _ in fig[tool]], "%.3f"),
                                              summary([m for _, m in fig[tool]], "%.0f")))
ratios = [p[0] / o[0] for p, o in zip(fig["peer"], fig["ours"])]
print("step ratio OpenFlamingo/ours step time (speed-up): %s (goal >= 1.3)" % summary(ratios))
PYEOF
