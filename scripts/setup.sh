#!/usr/bin/env bash
# Installs everything Flamboyance needs to build, test, bench and run its demo:
#   1. Debian 12 packages (compilers, MPI, image codecs, Slurm, ...), through apt-get;
#   2. the project's Python environment .venv/ (git-ignored) from scripts/requirements.txt:
#      torch 2.11 with CUDA 13 (the one LibTorch the C++ build links) and the peers and
#      references that tests and benches run beside us (open-flamingo, webdataset, img2dataset,
#      transformers, ...). About 3.3 GB to download the first time, 6.5 GB on disk.
# Idempotent: with everything present it checks and returns in seconds, downloading nothing.
# FLAM_TORCH_DIR=/path/to/libtorch (a LibTorch 2.x of your own) is honoured by CMake; the venv
# is still made, for the Python oracles and peers.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libopenmpi-dev openmpi-bin
  libcurl4-openssl-dev
  libturbojpeg0-dev libjpeg62-turbo-dev libwebp-dev libpng-dev libgif-dev libstb-dev zlib1g-dev
  libzstd-dev zstd
  libarchive-dev
  libexif-dev
  libyaml-cpp-dev
  nlohmann-json3-dev
  libssl-dev
  libsentencepiece-dev sentencepiece
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-venv
  slurmctld slurmd slurm-client munge
  tar curl procps
  iproute2 util-linux
  clang libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "setup.sh: installing ${#missing[@]} Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The venv: rebuilt only when scripts/requirements.txt changed since it was made (its hash is
# kept in .venv/requirements.sha256). --no-deps: the file pins the whole closure (see its head).
REQ="$ROOT/scripts/requirements.txt"
VENV="$ROOT/.venv"
want=$(sha256sum "$REQ" | cut -d' ' -f1)
have=$(cat "$VENV/requirements.sha256" 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  BASE_PYTHON=${FLAM_BASE_PYTHON:-python3}
  echo "setup.sh: making $VENV from scripts/requirements.txt with $($BASE_PYTHON --version 2>&1)"
  echo "setup.sh: about 3.3 GB to download (torch with CUDA 13: 0.5 GB, its NVIDIA libraries:" \
       "2.3 GB; the peers: 0.5 GB), 6.5 GB on disk"
  [ -x "$VENV/bin/python" ] || "$BASE_PYTHON" -m venv "$VENV"
  start=$(date +%s)
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r "$REQ"
  echo "setup.sh: venv ready in $(( $(date +%s) - start )) s ($(du -sh "$VENV" | cut -f1) on disk)"
  echo "$want" > "$VENV/requirements.sha256"
fi
