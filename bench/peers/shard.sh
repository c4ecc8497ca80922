#!/usr/bin/env bash
# Shard end to end against the peer: img2dataset (from the venv) and `flam shard` download the same
# URL table from one loopback HTTP server (tests/common/http_server.py) and write 256 px JPEG q95
# webdataset tars. Figure: successful images per CPU-second of the tool's process tree (the
# server's CPU is "the internet" and not counted; start-up included: end to end) and wall time.
# Three runs each, interleaved; medians printed, ratio last. Goal: ours >= 4x.
#   bash bench/peers/shard.sh BUILD_DIR [N_URLS] [N_DISTINCT_IMAGES] [RUNS]
#
# Peer settings (img2dataset README, "LAION-400M"/"LAION-5B" examples, for 256 px JPEG shards):
#   --image_size 256 --resize_mode keep_ratio --encode_format jpg --encode_quality 95
#   --output_format webdataset --processes_count CORES --thread_count 32 (CORES x 32 = our 64
#   transfers in flight) --number_sample_per_shard 1000 --distributor multiprocessing; everything
#   else at its default (retries 0, timeout 10, sha256 hash, X-Robots-Tag opt-out honoured).
# Ours: the same image size, mode, format, quality and shard size; download.concurrency 64 (its
#   default), transform_threads CORES, everything else default (retries 2, fast_decode on).
# The table: N_URLS rows over N_DISTINCT crops of tests/data/photos; each URL delays its body by
#   ~50-250 ms (the server's slow= modifier: 20 chunks/s), and ~2.5% are faults: 404, a body cut
#   short, a 500 once then the file (a retry recovers it; img2dataset's default is not to retry),
#   a redirect.
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
N=${2:-5000}
DISTINCT=${3:-1000}
RUNS=${4:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
PY="$SRC/.venv/bin/python"
CORES=$(nproc)
export NO_ALBUMENTATIONS_UPDATE=1 WANDB_MODE=disabled  # no network but 127.0.0.1
TMP=$(mktemp -d /tmp/flam_peers_shard.XXXXXX)
SERVER=
trap '[ -n "$SERVER" ] && kill $SERVER 2>/dev/null; rm -rf "$TMP"' EXIT
[ -x "$BUILD/flam" ] || cmake --build "$BUILD" --target flam >/dev/null

"$PY" "$HERE/make_photos.py" "$SRC/tests/data/photos" "$TMP/www" "$DISTINCT"
"$PY" "$SRC/tests/common/http_server.py" --root "$TMP/www" --port-file "$TMP/port" >/dev/null &
SERVER=$!
for _ in $(seq 100); do [ -f "$TMP/port" ] && break; sleep 0.1; done
PORT=$(cat "$TMP/port")

# One table; @TOK@ becomes a per-run token so the fail-once faults fire again in every run.
"$PY" - "$N" "$DISTINCT" "$PORT" > "$TMP/urls.tmpl" <<'PYEOF'
import random, sys
n, distinct, port = map(int, sys.argv[1:])
rng = random.Random(1)
print("url\tcaption")
for i in range(n):
    mods = ["slow=%d" % rng.choice([400000, 1000000, 2000000])]
    r = rng.random()
    if r < 0.01: mods.append("status=404")
    elif r < 0.015: mods.append("cut=2000")
    elif r < 0.02: mods.append("fail=1:@TOK@%d" % i)
    elif r < 0.025: mods.append("redirect=1")
    print("http://127.0.0.1:%d/x/%s/f/%05d.jpg\ta photo, row %d" % (port, "/".join(mods), i % distinct, i))
PYEOF

peer_run() {  # $1 run index -> "wall cpu successes"
  local d="$TMP/peer$1"
  sed "s/@TOK@/p$1x/" "$TMP/urls.tmpl" > "$TMP/urls_p$1.tsv"
  /usr/bin/time -f "%e %U %S" -o "$TMP/time_p$1" "$SRC/.venv/bin/img2dataset" \
    --url_list "$TMP/urls_p$1.tsv" --input_format tsv --url_col url --caption_col caption \
    --output_format webdataset --output_folder "$d" --processes_count "$CORES" --thread_count 32 \
    --image_size 256 --resize_mode keep_ratio --encode_format jpg --encode_quality 95 \
    --number_sample_per_shard 1000 --distributor multiprocessing --enable_wandb False \
    > "$TMP/log_p$1" 2>&1 || { cat "$TMP/log_p$1"; return 1; }
  local ok
  ok=$("$PY" -c "import json,glob;print(sum(json.load(open(f))['successes'] for f in glob.glob('$d/*_stats.json')))")
  read -r wall user sys < "$TMP/time_p$1"
  echo "$wall $(echo "$user + $sys" | bc) $ok"
  rm -rf "$d"
}
ours_run() {
  local d="$TMP/ours$1"
  sed "s/@TOK@/o$1x/" "$TMP/urls.tmpl" > "$TMP/urls_o$1.tsv"
  cat > "$TMP/ours$1.yaml" <<YAML
shard:
  inputs: ["$TMP/urls_o$1.tsv"]
  output_dir: "$d"
  samples_per_shard: 1000
  transform_threads: $CORES
  download:
    concurrency: 64
  transform:
    image_size: 256
    resize_mode: keep_ratio
    encode_format: jpg
    encode_quality: 95
YAML
  /usr/bin/time -f "%e %U %S" -o "$TMP/time_o$1" "$BUILD/flam" shard --config "$TMP/ours$1.yaml" \
    > "$TMP/log_o$1" 2>&1 || { cat "$TMP/log_o$1"; return 1; }
  local ok
  ok=$("$PY" -c "import json;print(json.load(open('$d/summary.json'))['successes'])")
  read -r wall user sys < "$TMP/time_o$1"
  echo "$wall $(echo "$user + $sys" | bc) $ok"
  rm -rf "$d"
}

: > "$TMP/results"
for r in $(seq "$RUNS"); do
  echo "peer $(peer_run "$r")" >> "$TMP/results"
  echo "ours $(ours_run "$r")" >> "$TMP/results"
done
echo "inputs: $N URLs over $DISTINCT crops of tests/data/photos (300-640 px, q75-95), loopback server"
echo "  with ~50-250 ms per body and ~2.5% faults; $CORES cores; 256 px keep_ratio JPEG q95 tars;"
echo "  $RUNS runs each, interleaved; figure = successful images / CPU-s of the tool (start-up included)"
"$PY" - "$TMP/results" "$HERE" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[2])
from stats import summary
rows = [l.split() for l in open(sys.argv[1])]
fig = {"peer": [], "ours": []}
for tool, wall, cpu, ok in rows:
    fig[tool].append((float(wall), float(cpu), int(ok)))
for tool, name in (("peer", "img2dataset 1.47"), ("ours", "flam shard     ")):
    runs = fig[tool]
    print("%s: %s images/s/core; wall %s s; CPU %s s; successes %s" % (
        name, summary([ok / cpu for _, cpu, ok in runs], "%.1f"),
        summary([w for w, _, _ in runs], "%.1f"), summary([c for _, c, _ in runs], "%.1f"),
        "/".join(str(ok) for _, _, ok in runs)))
ratios = [(o[2] / o[1]) / (p[2] / p[1]) for p, o in zip(fig["peer"], fig["ours"])]
walls = [p[0] / o[0] for p, o in zip(fig["peer"], fig["ours"])]
print("shard wall-time ratio img2dataset/ours: %s" % summary(walls))
print("shard ratio ours/img2dataset images/s/core: %s (goal >= 4)" % summary(ratios))
PYEOF
