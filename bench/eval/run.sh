#!/usr/bin/env bash
# Generation throughput, ours vs OpenFlamingo's generate (bench_generate.py). $1: build dir.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
"${FLAM_PYTHON:-$ROOT/.venv/bin/python}" "$HERE/bench_generate.py" "$1"
