#!/usr/bin/env bash
# Shard read throughput from a local S3 server (moto on 127.0.0.1, started by
# tests/s3/with_s3.py) against the same shards from disk, and against the peer: webdataset
# streaming them through `pipe:` and a boto3 download to stdout (OpenFlamingo's
# `pipe:aws s3 cp` recipe). Every reader reads every member of SHARDS tars of about SIZE_MB each
# (incompressible members of 100 KB, like JPEGs); RUNS interleaved runs, medians of MB/s, ratios
# last. moto is a Python server: the s3 figures are bounded by it, on both sides alike.
#   bash bench/s3/run.sh BUILD_DIR [SHARDS] [SIZE_MB] [RUNS]
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
SHARDS=${2:-4}
SIZE_MB=${3:-32}
RUNS=${4:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
PY="$SRC/.venv/bin/python"
export PATH="$SRC/.venv/bin:$PATH"
TMP=$(mktemp -d /tmp/flam_bench_s3.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
[ -x "$BUILD/bench/s3/bench_s3_read" ] || cmake --build "$BUILD" --target bench_s3_read >/dev/null

"$PY" - "$TMP" "$SHARDS" "$SIZE_MB" <<'PY'
import io, os, sys, tarfile
out, shards, size_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for s in range(shards):
    with tarfile.open(os.path.join(out, "%05d.tar" % s), "w", format=tarfile.USTAR_FORMAT) as tar:
        for i in range(size_mb * 10):
            for ext, n in (("jpg", 100_000), ("txt", 60)):
                info = tarfile.TarInfo("%05d%04d.%s" % (s, i, ext))
                info.size = n
                tar.addfile(info, io.BytesIO(os.urandom(n)))
PY

cat >"$TMP/inner.sh" <<'SH'
set -euo pipefail
TMP=$1 RUNS=$2 BUILD=$3 PY=$4 HERE=$5 SRC=$6
for f in "$TMP"/*.tar; do "$PY" "$SRC/tests/s3/s3tool.py" put "$f" "s3://bench/shards/$(basename "$f")"; done
N=$(ls "$TMP"/*.tar | wc -l)
S3=$(for i in $(seq 0 $((N - 1))); do printf 's3://bench/shards/%05d.tar ' "$i"; done)
KEYS=$(for i in $(seq 0 $((N - 1))); do printf 'shards/%05d.tar ' "$i"; done)
for run in $(seq "$RUNS"); do
  cat "$TMP"/*.tar >/dev/null  # page cache warm for the disk readers
  echo "ours_disk $("$BUILD/bench/s3/bench_s3_read" "$TMP"/*.tar)"
  echo "ours_s3 $("$BUILD/bench/s3/bench_s3_read" $S3)"
  echo "peer_s3 $("$PY" "$HERE/read_peer.py" s3 bench $KEYS)"
  echo "peer_disk $("$PY" "$HERE/read_peer.py" disk "$TMP"/*.tar)"
done
SH
"$PY" "$SRC/tests/s3/with_s3.py" --bucket bench -- bash "$TMP/inner.sh" "$TMP" "$RUNS" "$BUILD" \
  "$PY" "$HERE" "$SRC" | tee "$TMP/results"

"$PY" - "$TMP/results" <<'PY'
import statistics, sys
rates = {}
for line in open(sys.argv[1]):
    name, _, members, _, total, _, seconds = line.split()
    rates.setdefault(name, []).append(int(total) / 1e6 / float(seconds))
med = {k: statistics.median(v) for k, v in rates.items()}
for k in ("ours_disk", "ours_s3", "peer_disk", "peer_s3"):
    print("%-10s %8.1f MB/s (median of %d)" % (k, med[k], len(rates[k])))
print("ours s3 / ours disk:            %.2fx" % (med["ours_s3"] / med["ours_disk"]))
print("ours s3 / webdataset pipe: s3:  %.2fx  (goal >= 1.0)" % (med["ours_s3"] / med["peer_s3"]))
print("ours disk / webdataset disk:    %.2fx" % (med["ours_disk"] / med["peer_disk"]))
PY
