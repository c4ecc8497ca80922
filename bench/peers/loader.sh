#!/usr/bin/env bash
# Loader against the peer: OpenFlamingo's own data pipeline (webdataset + torch DataLoader via
# wds.WebLoader, its CLIP transform, preprocess_laion_text / preprocess_interleaved, workers =
# cores; loader_peer.py) and our pipeline::Loader (bench_peers_loader, threads = cores) on the
# same LAION and MMC4 shards, same shapes (LAION 32 x 32 tokens, MMC4 16 x 256 tokens x 6 image
# slots, 224 px CLIP images) and the same SentencePiece tokenizer (HF LlamaTokenizerFast of the
# same .model for the peer). Figure: samples (sequences) per CPU-second of the whole pipeline,
# after a warm-up batch. Three runs each, interleaved; medians printed, ratios last. Goal >= 3x.
#   bash bench/peers/loader.sh BUILD_DIR [LAION_PER_SHARD] [MMC4_PER_SHARD] [RUNS]
# Differences that favour the peer: it emits float images already normalised (we emit uint8 and
# normalise on the device), no labels (OpenFlamingo builds them in the training loop; we build
# them in the loader), and flips with one coin per batch (we draw one per image).
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
PER_LAION=${2:-400}
PER_MMC4=${3:-120}
RUNS=${4:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
PY="$SRC/.venv/bin/python"
CORES=$(nproc)
export NO_ALBUMENTATIONS_UPDATE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
TMP=$(mktemp -d /tmp/flam_peers_loader.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
[ -x "$BUILD/bench/peers/bench_peers_loader" ] ||
  cmake --build "$BUILD" --target bench_peers_loader >/dev/null

"$PY" "$HERE/make_loader_data.py" "$SRC/tests/data/photos" "$TMP" 2 "$PER_LAION" 2 "$PER_MMC4"
LB=$(( (2 * PER_LAION) / 32 - 2 ))  # timed batches: what both shards hold, less the warm-up
MB=$(( (2 * PER_MMC4) / 16 - 2 ))
: > "$TMP/results"
for r in $(seq "$RUNS"); do
  for kind in laion mmc4; do
    n=$LB; [ $kind = mmc4 ] && n=$MB
    spec="$TMP/$kind-{00000..00001}.tar"
    p=$("$PY" "$HERE/loader_peer.py" $kind "$spec" "$TMP/hf_tokenizer" $n "$CORES" 2>"$TMP/peer.log") ||
      { cat "$TMP/peer.log"; exit 1; }
    o=$("$BUILD/bench/peers/bench_peers_loader" $kind "$TMP/tok.model" "$spec" $n "$CORES")
    echo "$kind peer $p" >> "$TMP/results"
    echo "$kind ours $o" >> "$TMP/results"
  done
done
echo "inputs: LAION 2 shards x $PER_LAION samples (256 px q95 JPEG + caption), MMC4 2 shards x $PER_MMC4"
echo "  documents (7-10 sentences, 3-5 base64 256 px q95 images each); LAION timed $LB batches of 32,"
echo "  MMC4 $MB batches of 16; $CORES workers / threads; $RUNS runs each; figure = samples / CPU-s"
"$PY" - "$TMP/results" "$HERE" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[2])
from stats import summary
fig = {}
for line in open(sys.argv[1]):
    kind, tool, *kv = line.split()
    d = dict(zip(kv[0::2], kv[1::2]))
    fig.setdefault((kind, tool), []).append((float(d["samples_per_cpu_s"]), float(d["wall_s"])))
for kind in ("laion", "mmc4"):
    for tool, name in (("peer", "OpenFlamingo webdataset+DataLoader"), ("ours", "flam pipeline::Loader")):
        runs = fig[(kind, tool)]
        print("%s %s: %s samples/s/core (wall %s s)" % (
            kind, name, summary([s for s, _ in runs], "%.1f"), summary([w for _, w in runs])))
for kind in ("laion", "mmc4"):
    ratios = [o[0] / p[0] for p, o in zip(fig[(kind, "peer")], fig[(kind, "ours")])]
    print("loader ratio ours/OpenFlamingo %s samples/s/core: %s (goal >= 3)" % (kind, summary(ratios)))
PYEOF
