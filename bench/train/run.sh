#!/usr/bin/env bash
# ZeRO-3 step time against replicated all-reduce data parallelism, 2 ranks, same global batch;
# then memory.sh.
set -euo pipefail
BUILD=$1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
mpirun -np 2 --oversubscribe --bind-to none "$BUILD/bench/train/bench_zero3"
# Per-rank memory with sharded frozen weights at 1, 2, 4 ranks against `flam plan`.
bash "$(dirname "$0")/memory.sh" "$BUILD"
