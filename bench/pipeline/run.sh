#!/usr/bin/env bash
# bench/pipeline/run.sh BUILD_DIR: decode + CLIP preprocess (224) per core, on a shard-like set of
# 256-pixel q95 JPEGs cut from tests/data/photos, against (a) PIL + numpy (venv) doing the same on
# the same files (PIL opens each file, as a Python loader would) and (b) TurboJPEG decode alone.
# Ours and (b) decode from bytes already in memory, as the loader does from a tar stream's buffer
# (ours used to read each file inside the timed loop: ~5% of a perf profile went to those reads).
# Everything runs pinned to one core, and every rate is images per second of the measuring
# thread's CPU time (these machines are shared: wall time would measure the neighbours).
set -euo pipefail
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
PY="$SRC/.venv/bin/python"  # the venv's (PIL, numpy)
WORK=$(mktemp -d /tmp/flam_bench_pipeline.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
PIN=""
if command -v taskset > /dev/null; then PIN="taskset -c $(taskset -pc $$ | sed 's/.*: *//; s/[,-].*//')"; fi

"$PY" "$HERE/make_jpegs.py" "$SRC/tests/data/photos" "$WORK/jpegs" 300
# figure KEY OUTPUT: the value of OUTPUT's "KEY value" line.
figure() { awk -v key="$1" '$1 == key {print $2}' <<< "$2"; }
ours_out=$($PIN "$BUILD/bench/pipeline/bench_decode" "$WORK/jpegs")
pil_out=$($PIN "$PY" "$HERE/bench_pil.py" "$WORK/jpegs")
ours=$(figure ours_images_per_s "$ours_out")
decode=$(figure decode_only_images_per_s "$ours_out")
prep=$(figure preprocess_only_images_per_s "$ours_out")
pil=$(figure pil_images_per_s "$pil_out")
echo "images: 300 JPEGs q95, shorter side 256; images per CPU-second on one core (${PIN:-unpinned})"
echo "ours (decode + clip_preprocess 224):        $ours images/s"
echo "TurboJPEG decode only:                      $decode images/s"
echo "ours clip_preprocess only (decoded input):  $prep images/s"
echo "PIL + numpy (venv) (same preprocessing):   $pil images/s"
# data.image.fast_downscale (off by default: not PIL-exact) on larger sources, where it applies:
# JPEGs with shorter side 512, decoded at 1/2 scale before the resize; against the same
# full-size decode-only baseline.
"$PY" "$HERE/make_jpegs.py" "$SRC/tests/data/photos" "$WORK/jpegs512" 150 512
big_out=$($PIN "$BUILD/bench/pipeline/bench_decode" "$WORK/jpegs512")
big_ours=$(figure ours_images_per_s "$big_out")
big_fast=$(figure ours_fast_images_per_s "$big_out")
big_decode=$(figure decode_only_images_per_s "$big_out")
echo "images: 150 JPEGs q95, shorter side 512"
echo "ours, PIL-exact (fast_downscale false):     $big_ours images/s"
echo "ours, data.image.fast_downscale true:       $big_fast images/s"
echo "TurboJPEG decode only (full size):          $big_decode images/s"
awk -v o="$ours" -v p="$pil" -v d="$decode" -v bo="$big_ours" -v bf="$big_fast" \
    -v bd="$big_decode" 'BEGIN {
  printf "ours/PIL ratio: %.2f (goal >= 3)\n", o / p;
  printf "512 px: ours/decode-only %.2f PIL-exact, %.2f with fast_downscale\n", bo / bd, bf / bd;
  printf "ours/decode-only ratio: %.2f (goal >= 0.8)\n", o / d }'
