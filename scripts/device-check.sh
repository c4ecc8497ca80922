#!/usr/bin/env bash
# scripts/device-check.sh: the trainer's checks on a machine with one NVIDIA GPU (CUDA, LibTorch
# 2.x in a Python venv; no Debian image libraries needed). Under 8 minutes:
#   1. builds bench/train/device (the model, ZeRO-3 engine and optimizer only) against the venv's
#      LibTorch;
#   2. parity on CUDA: K steps of Zero3Engine == plain AdamW training of a tiny Flamingo (fp32,
#      TF32 off), over SingleRankComm and over NcclComm (one rank), and the same on CPU;
#   3. times OpenFlamingo-9B shapes with random frozen weights (bf16 compute, fp32 master) at the
#      largest batch that fits: tokens/s, step time, MFU with the FLOP count written out in
#      bench/train/device/device_check.cpp, and peak GPU memory (nvidia-smi, sampled).
# Usage: scripts/device-check.sh [BUILD_DIR]     (PY=python3 by default: the venv's python)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build-device}
PY=${PY:-python3}
TORCH_PREFIX=$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)')
# NCCL for NcclComm: the system's, else the one LibTorch's wheel came with (nvidia-nccl-cu*).
if [ -z "${NCCL_HOME:-}" ] && [ ! -e /usr/include/nccl.h ]; then
  NCCL_HOME=$("$PY" -c 'import nvidia.nccl; print(list(nvidia.nccl.__path__)[0])' 2>/dev/null) || true
  [ -n "$NCCL_HOME" ] && export NCCL_HOME
fi
echo "== torch $("$PY" -c 'import torch; print(torch.__version__, torch.version.cuda)')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

echo "== build"
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
cmake -S "$ROOT/bench/train/device" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" >"$BUILD.cmake.log" 2>&1 || { cat "$BUILD.cmake.log"; exit 1; }
cmake --build "$BUILD" -j "$(nproc)"
# LibTorch from a wheel keeps its shared libraries next to the Python package.
TORCH_LIB=$("$PY" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$TORCH_LIB:${LD_LIBRARY_PATH:-}"

status=0
echo "== parity"
timeout 120 "$BUILD/device_check" parity cuda || status=1
if grep -q "with NcclComm" "$BUILD.cmake.log"; then
  timeout 120 "$BUILD/device_check" parity cuda nccl || status=1
else
  echo "  (no NcclComm in this build: NCCL or the CUDA runtime not found)"
fi
timeout 120 "$BUILD/device_check" parity cpu || status=1

echo "== of-9b shapes, one GPU"
PEAK_LOG=$(mktemp)
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 >"$PEAK_LOG" 2>/dev/null &
SMI=$!
timeout 420 "$BUILD/device_check" time cuda || status=1
kill "$SMI" 2>/dev/null || true
wait "$SMI" 2>/dev/null || true
echo "  peak GPU memory (nvidia-smi, sampled every 200 ms): $(sort -n "$PEAK_LOG" | tail -1) MiB"
rm -f "$PEAK_LOG"
exit $status
