#!/usr/bin/env bash
# make bench: runs every bench/<area>/run.sh with the build directory as its argument. Each
# prints its figures as ratios against a baseline measured in the same run.
set -uo pipefail
BUILD=$(cd "${1:-build}" && pwd)
cd "$(dirname "$0")"
status=0
for script in */run.sh; do
  echo "=== bench/${script%/run.sh}"
  bash "$script" "$BUILD" || { echo "bench/${script} failed"; status=1; }
done
exit $status
