#!/usr/bin/env bash
# flam shard end to end (loopback HTTP server -> download -> decode/resize/encode -> tar) against
# the transform alone (same images, no network, no tar), both per CPU-second of the flam process
# (the server's CPU is "the internet" and not counted). The process's fixed start-up cost (loading
# LibTorch with the flam binary, MPI init: ~0.4 CPU-s) is measured in the same run on a one-row
# table and reported separately; the steady-state ratio leaves it out. Goal: ratio >= 0.8;
# img2dataset's published rate is ~100 images/s/core.
#   bash bench/shard/run.sh BUILD_DIR [N_IMAGES]
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
N=${2:-240}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
PY="$SRC/.venv/bin/python"  # the venv's
TMP=$(mktemp -d)
SERVER=
trap '[ -n "$SERVER" ] && kill $SERVER 2>/dev/null; rm -rf "$TMP"' EXIT
[ -x "$BUILD/bench/shard/bench_shard_transform" ] ||
  cmake --build "$BUILD" --target bench_shard_transform flam >/dev/null

# Web-like JPEGs: crops of the real photos at 300-640 px, quality 75-95.
"$PY" - "$SRC/tests/data/photos" "$TMP/www" "$N" <<'PYEOF'
import os, random, sys
from PIL import Image
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(out)
photos = [Image.open(os.path.join(src, f)).convert("RGB") for f in sorted(os.listdir(src))
          if f.endswith((".png", ".jpg"))]
rng = random.Random(0)
for i in range(n):
    img = photos[i % len(photos)]
    w, h = img.size
    cw, ch = rng.randint(w // 2, w), rng.randint(h // 2, h)
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    crop = img.crop((x, y, x + cw, y + ch))
    scale = rng.uniform(300, 640) / max(cw, ch)
    crop = crop.resize((max(1, int(cw * scale)), max(1, int(ch * scale))), Image.BICUBIC)
    crop.save(os.path.join(out, "%05d.jpg" % i), quality=rng.randint(75, 95))
PYEOF

"$PY" "$SRC/tests/common/http_server.py" --root "$TMP/www" --port-file "$TMP/port" >/dev/null &
SERVER=$!
for _ in $(seq 100); do [ -f "$TMP/port" ] && break; sleep 0.1; done
PORT=$(cat "$TMP/port")
{
  echo -e "url\tcaption"
  for r in 1 2 3 4 5; do
    for f in "$TMP"/www/*.jpg; do echo -e "http://127.0.0.1:$PORT/f/$(basename "$f")\tround $r"; done
  done
} >"$TMP/urls.tsv"
ROWS=$((5 * N))
head -2 "$TMP/urls.tsv" >"$TMP/one.tsv"
cat >"$TMP/one.yaml" <<YAML
shard:
  inputs: ["$TMP/one.tsv"]
  output_dir: "$TMP/one"
  transform_threads: 1
YAML
cat >"$TMP/bench.yaml" <<YAML
shard:
  inputs: ["$TMP/urls.tsv"]
  output_dir: "$TMP/out"
  samples_per_shard: 1000
  transform_threads: 1
  download:
    concurrency: 32
YAML

base=$("$BUILD/bench/shard/bench_shard_transform" "$TMP/www" 3 | awk '{print $2}')
/usr/bin/time -f "%e %U %S" -o "$TMP/time1" "$BUILD/flam" shard --config "$TMP/one.yaml" 2>"$TMP/log1"
/usr/bin/time -f "%e %U %S" -o "$TMP/time" "$BUILD/flam" shard --config "$TMP/bench.yaml" 2>"$TMP/log"
read -r _ user1 sys1 <"$TMP/time1"
read -r wall user sys <"$TMP/time"
ok=$("$PY" -c "import json;print(json.load(open('$TMP/out/summary.json'))['successes'])")
[ "$ok" -eq "$ROWS" ] || { echo "only $ok/$ROWS images succeeded"; cat "$TMP/log"; exit 1; }
"$PY" - "$ROWS" "$wall" "$user" "$sys" "$base" "$user1" "$sys1" <<'PYEOF'
import sys
rows, wall, user, sys_, base, user1, sys1 = int(sys.argv[1]), *map(float, sys.argv[2:])
cpu, startup = user + sys_, user1 + sys1
e2e = rows / (cpu - startup)
print("shard transform only:  %.1f images/s/core (decode + resize 256 + JPEG q95 + sha256)" % base)
print("shard end to end:      %.1f images/s/core steady state (%d images, %.2f s wall, %.2f s CPU"
      " minus %.2f s start-up, 1 transform thread); %.1f with start-up" % (
          e2e, rows, wall, cpu, startup, rows / cpu))
print("shard ratio end-to-end/transform: %.2f (goal >= 0.80); %.2f with start-up" % (
    e2e / base, rows / cpu / base))
print("shard vs img2dataset (~100 images/s/core): %.1fx" % (e2e / 100.0))
PYEOF
