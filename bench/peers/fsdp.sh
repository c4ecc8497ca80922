#!/usr/bin/env bash
# Sharded training step against the peer, CPU, fp32, gloo/MPI on loopback: PyTorch FSDP2
# (fully_shard per transformer block + root, OpenFlamingo's train_one_epoch body; fsdp_peer.py)
# and our ZeRO-3 (`mpirun -np R flam train`), on 2 and 4 ranks, the same model (of_model.py:
# SHAPE) and per-rank batches from the same shards (LAION 2 x 32 tokens, MMC4 1 x 256 tokens x 3
# images, 112 px), one intra-op thread per rank (OMP_NUM_THREADS=1, torchrun's default) on both.
# Figures: median step time after warm-up (data time excluded: the peer's batches are loaded
# before the clock, ours is step_time - data_wait) and the peak RSS of the largest rank. Three runs
# each, interleaved; medians printed, ratios last. Goal: ours <= 1.0x FSDP2's time and memory.
#   bash bench/peers/fsdp.sh BUILD_DIR [WARMUP] [STEPS] [RUNS] [RANKS...]
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
WARMUP=${2:-1}
STEPS=${3:-1}
RUNS=${4:-3}
shift $(( $# < 4 ? $# : 4 ))
RANKS=${*:-2 4}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
PY="$SRC/.venv/bin/python"
export NO_ALBUMENTATIONS_UPDATE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
CORES=$(nproc)
export OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
TMP=$(mktemp -d /tmp/flam_peers_fsdp.XXXXXX)
PIDS=
trap 'for p in $PIDS; do kill $p 2>/dev/null; done; rm -rf "$TMP"' EXIT
[ -x "$BUILD/flam" ] || cmake --build "$BUILD" --target flam >/dev/null

N=$((WARMUP + STEPS))
LB=2 MB=1
"$PY" "$HERE/make_loader_data.py" "$SRC/tests/data/photos" "$TMP" 2 $((LB * N + 8)) 2 $((MB * N + 8))
"$PY" "$HERE/step_peer.py" dump "$TMP/batches.pt" "$TMP" "$TMP/hf_tokenizer" "$N" 2 $LB $MB 2>"$TMP/dump.log" ||
  { cat "$TMP/dump.log"; exit 1; }
read -r NI IS <<< "$("$PY" -c "import sys; sys.path.insert(0, '$HERE'); import of_model as m; print(m.SHAPE['mmc4_images'], m.SHAPE['image_size'])")"
{
  "$PY" "$HERE/of_model.py" flam-config
  cat <<YAML
run: {name: peers-fsdp, dir: "$TMP/run", seed: 1234}
data:
  tokenizer: "$TMP/tok.model"
  image: {size: $IS}
  laion: {shards: ["$TMP/laion-{00000..00001}.tar"], batch_size: $LB, seq_len: 32}
  mmc4: {shards: ["$TMP/mmc4-{00000..00001}.tar"], batch_size: $MB, seq_len: 256, max_images: $NI}
  loader: {threads: 1}
train:
  steps: $N
  log_every: 1
  device: cpu
  precision: fp32
  grad_clip: 1.0
  checkpoint: {every_steps: 0}
YAML
} > "$TMP/ours.yaml"

peer_run() {  # $1 ranks -> "step_s X rss_mib Y"
  local port=$((20000 + RANDOM % 20000)) r
  PIDS=
  for r in $(seq 0 $(($1 - 1))); do
    RANK=$r WORLD_SIZE=$1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      "$PY" "$HERE/fsdp_peer.py" "$TMP/batches.pt" "$TMP/hf_tokenizer" "$WARMUP" \
      > "$TMP/peer$r.out" 2> "$TMP/peer$r.log" &
    PIDS="$PIDS $!"
  done
  for p in $PIDS; do wait "$p" || { cat "$TMP/peer0.log"; return 1; }; done
  PIDS=
  tail -1 "$TMP/peer0.out"
}
ours_run() {
  rm -rf "$TMP/run"
  /usr/bin/time -f "%M" -o "$TMP/rss" mpirun -np "$1" --oversubscribe --bind-to none \
    -x OMP_NUM_THREADS "$BUILD/flam" train --config "$TMP/ours.yaml" > "$TMP/ours.log" 2>&1 ||
    { cat "$TMP/ours.log"; return 1; }
  "$PY" - "$TMP/run/metrics.jsonl" "$WARMUP" "$(cat "$TMP/rss")" <<'PYEOF'
import json, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1])][int(sys.argv[2]):]
print("step_s %.4f rss_mib %.1f" % (
    statistics.median(l["step_time"] - l["data_wait"] for l in lines), int(sys.argv[3]) / 1024))
PYEOF
}

: > "$TMP/results"
for run in $(seq "$RUNS"); do
  for R in $RANKS; do
    echo "$R peer $(peer_run "$R")" >> "$TMP/results"
    echo "$R ours $(ours_run "$R")" >> "$TMP/results"
  done
done
echo "inputs: OpenFlamingo's modules at of_model.SHAPE, per-rank LAION $LB x 32 + MMC4 $MB x 256 x $NI"
echo "  images at $IS px; fp32, CPU, gloo (FSDP2) / MPI (ours), 1 thread per rank; ranks: $RANKS;"
echo "  $WARMUP warm-up + $STEPS timed steps, median; $RUNS runs; $CORES cores"
"$PY" - "$TMP/results" "$HERE" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[2])
from stats import summary
fig = {}
for line in open(sys.argv[1]):
    ranks, tool, *kv = line.split()
    d = dict(zip(kv[0::2], kv[1::2]))
    fig.setdefault((ranks, tool), []).append((float(d["step_s"]), float(d["rss_mib"])))
ranks = sorted({r for r, _ in fig}, key=int)
for r in ranks:
    for tool, name in (("peer", "FSDP2 fully_shard"), ("ours", "flam ZeRO-3      ")):
        runs = fig[(r, tool)]
        print("%s ranks %s: step %s s; peak RSS per rank %s MiB" % (
            r, name, summary([s for s, _ in runs], "%.3f"), summary([m for _, m in runs], "%.0f")))
for r in ranks:
    p, o = fig[(r, "peer")], fig[(r, "ours")]
    print("fsdp %s ranks memory ratio ours/FSDP2 peak RSS: %s (goal <= 1.0)" % (
        r, summary([b[1] / a[1] for a, b in zip(p, o)])))
    print("fsdp %s ranks time ratio ours/FSDP2 step time: %s (goal <= 1.0)" % (
        r, summary([b[0] / a[0] for a, b in zip(p, o)])))
PYEOF
