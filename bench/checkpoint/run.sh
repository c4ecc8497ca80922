#!/usr/bin/env bash
# bench/checkpoint/run.sh BUILD_DIR: checkpoint write bandwidth against `dd ... conv=fsync` of the
# same number of bytes into the same directory (best of 3 each, interleaved; goal >= 0.8), and
# the training-thread stall of an asynchronous checkpoint (save() plus the wait for its background
# copy of the slices before the next optimizer step) as a fraction of a 1 s compute step
# (goal < 2%). FLAM_BENCH_CKPT_MB sets the state size per rank (default 512 MiB),
# FLAM_BENCH_CKPT_DIR the directory (default: under the build directory, i.e. the same disk).
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
BIN="$BUILD/bench/checkpoint/bench_checkpoint"
[ -x "$BIN" ] || ninja -C "$BUILD" bench_checkpoint > /dev/null
MB=${FLAM_BENCH_CKPT_MB:-512}
DIR=$(mktemp -d "${FLAM_BENCH_CKPT_DIR:-$BUILD}/bench_ckpt.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
best_ours=1e9
best_dd=1e9
bytes=0
for i in 1 2 3; do
  out=$("$BIN" write --run "$DIR/run$i" --mb "$MB")
  bytes=$(awk '/^bytes/ {print $2}' <<< "$out")
  s=$(awk '/^seconds/ {print $2}' <<< "$out")
  rm -rf "$DIR/run$i"
  sync
  t0=$(date +%s.%N)
  dd if=/dev/zero of="$DIR/dd.bin" bs=1M count=$(((bytes + 1048575) / 1048576)) conv=fsync \
    status=none
  t1=$(date +%s.%N)
  rm -f "$DIR/dd.bin"
  sync
  best_ours=$(awk -v a="$best_ours" -v b="$s" 'BEGIN {print (b < a) ? b : a}')
  best_dd=$(awk -v a="$best_dd" -v t0="$t0" -v t1="$t1" 'BEGIN {d = t1 - t0; print (d < a) ? d : a}')
done
awk -v n="$bytes" -v o="$best_ours" -v d="$best_dd" 'BEGIN {
  m = int((n + 1048575) / 1048576) * 1048576;
  printf "checkpoint write: %.1f MB in %.3f s = %.0f MB/s; dd conv=fsync: %.1f MB in %.3f s = %.0f MB/s\n",
         n / 1e6, o, n / 1e6 / o, m / 1e6, d, m / 1e6 / d;
  printf "checkpoint/dd bandwidth ratio: %.2f (goal >= 0.8)\n", (n / o) / (m / d) }'
out=$("$BIN" stall --run "$DIR/stall" --mb "$MB" --steps 8 --step-ms 1000)
awk '/^stall_per_save/ {s = $2} /^copy_wait_per_save/ {c = $2} /^step_seconds/ {t = $2} END {
  printf "async checkpoint every step of %.2f s: save() %.4f s, waiting for the background slice copy before the optimizer step %.4f s\n", t, s, c;
  printf "async stall fraction (save() plus that wait, per step): %.4f (goal < 0.02)\n", (s + c) / t }' <<< "$out"
