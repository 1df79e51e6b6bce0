#!/usr/bin/env bash
# Installs the Debian 12 packages this project needs (only those missing) and
# builds everything in ./build (Release). Safe to run again: it only rebuilds
# what changed. Usage: ./setup.sh [extra cmake -D options]
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(
  build-essential cmake ccache pkg-config git
  libtorch-dev
  libopenblas0-openmp   # without it LibTorch's matmuls fall back to the reference BLAS (~25x slower)
  libdnnl-dev           # oneDNN: the engine's GEMM path on CPU
  libabsl-dev nlohmann-json3-dev libutf8proc-dev
  libcli11-dev          # command lines of every program (header-only)
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libgtest-dev libgmock-dev libbenchmark-dev
  libssl-dev            # SHA-256 of API keys (server/auth)
  openssl               # tests make TLS certificates at test time
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  echo "setup.sh: installing ${missing[*]}"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build -j"$(nproc)"
echo "setup.sh: built; programs are in $(pwd)/build/bin"
