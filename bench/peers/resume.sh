#!/usr/bin/env bash
# Exact mid-epoch resume against the anchor: MosaicML streaming (StreamingDataset, shuffle on,
# its deterministic resume via load_state_dict; resume_peer.py) and our pipeline::Loader
# (state()/restore(); bench_peers_resume), each on a synthetic index of 2,000,000 samples (200
# shards x 10,000: one real shard of 32 px JPEG + caption samples listed 200 times under symlinked
# names, MDS on their side, tar on ours), resumed at sample 1,000,000 of epoch 0. Figure: seconds
# from a fresh dataset/loader to the first batch of 32 after the resume (median of 3, each a fresh
# object in one process; process start-up not counted on either side). Goal: ours <= 1 s, and no
# scan: ours is printed at sample 1,000 too (it must not grow with the position).
#   bash bench/peers/resume.sh BUILD_DIR [TARGET] [RUNS]
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
TARGET=${2:-1000000}
RUNS=${3:-3}
PER=10000
SHARDS=200
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
PY="$SRC/.venv/bin/python"
export NO_ALBUMENTATIONS_UPDATE=1
TMP=$(mktemp -d /tmp/flam_peers_resume.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
[ -x "$BUILD/bench/peers/bench_peers_resume" ] ||
  cmake --build "$BUILD" --target bench_peers_resume >/dev/null

"$PY" - "$SRC/tests/data/photos/chelsea.png" "$TMP" "$PER" "$SHARDS" <<'PYEOF'
import io, os, sys, tarfile
from PIL import Image
photo, out, per, shards = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
Image.open(photo).convert("RGB").resize((32, 32)).save(out + "/tiny.jpg", quality=90)
data = open(out + "/tiny.jpg", "rb").read()
os.makedirs(out + "/tar")
with tarfile.open(out + "/tar/one.tar", "w", format=tarfile.USTAR_FORMAT) as t:
    for i in range(per):
        for ext, b in (("jpg", data), ("txt", ("a photo, sample %d" % i).encode())):
            info = tarfile.TarInfo("%09d.%s" % (i, ext))
            info.size = len(b)
            t.addfile(info, io.BytesIO(b))
for s in range(shards):
    os.symlink("one.tar", out + "/tar/laion-%05d.tar" % s)
with open(out + "/corpus.txt", "w") as f:
    f.write("".join("a photo, sample %d of the cat\n" % i for i in range(2000)))
PYEOF
spm_train --input="$TMP/corpus.txt" --model_prefix="$TMP/tok" --vocab_size=100 --model_type=bpe \
  --character_coverage=1.0 --minloglevel=2 > /dev/null 2>&1
"$PY" "$HERE/resume_peer.py" make "$TMP/mds" "$TMP/tiny.jpg" "$PER" "$SHARDS" > /dev/null 2>&1

SPEC="$TMP/tar/laion-{00000..$(printf %05d $((SHARDS - 1)))}.tar"
"$PY" "$HERE/resume_peer.py" resume "$TMP/mds" "$TARGET" "$RUNS" 2> "$TMP/peer.log" | sed 's/^/peer /' > "$TMP/results" ||
  { cat "$TMP/peer.log"; exit 1; }
"$BUILD/bench/peers/bench_peers_resume" "$TMP/tok.model" "$SPEC" "$PER" "$TARGET" "$RUNS" | sed 's/^/ours /' >> "$TMP/results"
"$BUILD/bench/peers/bench_peers_resume" "$TMP/tok.model" "$SPEC" "$PER" 1000 "$RUNS" | sed 's/^/early /' >> "$TMP/results"
echo "inputs: $((PER * SHARDS)) samples ($SHARDS shards x $PER), resume at sample $TARGET of epoch 0, first"
echo "  batch of 32; streaming: MDS, shuffle on (py1e), num_workers 0; ours: tar, shuffle buffer 1000, 1 rank"
"$PY" - "$TMP/results" "$HERE" "$TARGET" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[2])
from stats import summary
fig = {}
for line in open(sys.argv[1]):
    tool, _, s, *rest = line.split()
    fig.setdefault(tool, []).append(float(s))
print("streaming 0.13 StreamingDataset: resume to first batch %s s" % summary(fig["peer"], "%.3f"))
print("flam Loader at sample 1,000:      resume to first batch %s s" % summary(fig["early"], "%.3f"))
print("flam Loader at sample %s: resume to first batch %s s (goal <= 1 s)" % (
    "{:,}".format(int(sys.argv[3])), summary(fig["ours"], "%.3f")))
ratios = [p / o for p, o in zip(fig["peer"], fig["ours"])]
print("resume ratio streaming/ours time to first batch: %s (> 1: ours faster)" % summary(ratios))
PYEOF
