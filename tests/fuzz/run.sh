#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS [BUILD_DIR]: runs every libFuzzer target of BUILD_DIR (default
# build-fuzz, configured with -DFLAM_FUZZ=ON) for SECONDS each, from its committed seed corpus
# (tests/fuzz/corpus/<target>, read only) plus a scratch corpus of what it finds. Prints one line
# per target with the executions run; a crash leaves its input in BUILD_DIR/fuzz-crashes/ (make it
# a regression seed: corpus/<target>/regress-<what>) and the script exits 1.
set -uo pipefail
seconds=${1:?usage: run.sh SECONDS [BUILD_DIR]}
here=$(cd "$(dirname "$0")" && pwd)
build=${2:-$here/../../build-fuzz}
crashes="$build/fuzz-crashes"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$crashes"
status=0
printf '%-18s %12s %s\n' target executions result
for seeds in "$here"/corpus/*/; do
  target=$(basename "$seeds")
  bin="$build/tests/fuzz/$target"
  [ -x "$bin" ] || { echo "$target: not built in $build"; status=1; continue; }
  mkdir -p "$scratch/$target"
  "$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$crashes/$target-" "$scratch/$target" "$seeds" \
    > "$scratch/$target.log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$scratch/$target.log" | grep -o '[0-9]*$')
  if [ "$rc" -eq 0 ]; then
    printf '%-18s %12s ok\n' "$target" "${runs:-?}"
  else
    printf '%-18s %12s CRASH (exit %d), log: %s\n' "$target" "${runs:-?}" "$rc" \
      "$crashes/$target.log"
    cp "$scratch/$target.log" "$crashes/$target.log"
    status=1
  fi
done
exit $status
