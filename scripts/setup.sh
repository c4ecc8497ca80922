#!/usr/bin/env bash
# Installs every Debian 12 package Flamboyance needs to build, test, bench and run its demo.
# Idempotent: packages already installed are not fetched again; safe to run before every make.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libtorch-dev
  libopenmpi-dev openmpi-bin
  libcurl4-openssl-dev
  libturbojpeg0-dev libjpeg62-turbo-dev libwebp-dev libpng-dev zlib1g-dev
  libzstd-dev zstd
  libarchive-dev
  libyaml-cpp-dev
  nlohmann-json3-dev
  libssl-dev
  libsentencepiece-dev sentencepiece
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-numpy python3-pil python3-torch python3-yaml
  slurmctld slurmd slurm-client munge
  tar curl procps
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup.sh: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup.sh: done"
