#!/usr/bin/env bash
# bench/peers/run.sh BUILD_DIR: every peer comparison (docs/performance.md), one script per peer,
# each printing its inputs, both figures (median of 3 runs, with min and max) and the ratio last.
set -uo pipefail
BUILD=$(cd "${1:-build}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
status=0
for peer in shard loader step fsdp resume; do
  [ -f "$HERE/$peer.sh" ] || continue
  echo "--- bench/peers/$peer.sh"
  bash "$HERE/$peer.sh" "$BUILD" || { echo "bench/peers/$peer.sh failed"; status=1; }
done
exit $status
