#!/usr/bin/env bash
# Installs the Debian 12 packages this project needs (only those missing) and
# builds everything in ./build (Release), then the sanitizer build in
# ./build/sanitize (clang-16: ASan + UBSan, -Wthread-safety, the libFuzzer
# targets; tests/sanitize/README.md), whose tests and fuzz runs the ctest of
# ./build also runs. Safe to run again: it only rebuilds what changed.
# Usage: ./setup.sh [extra cmake -D options for ./build]
# RWKV_SKIP_SANITIZE=1 ./setup.sh skips the sanitizer build (and its
# packages): enough for ./run-demo.sh, not for the whole test suite.
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
  librocksdb-dev        # the durable session store (server/session/)
  libssl-dev            # SHA-256 of API keys (server/auth)
  openssl               # tests make TLS certificates at test time
)

# The sanitizer build (a separate list: the container image does not need it).
SANITIZE_PACKAGES=(clang-16 libclang-rt-16-dev libomp-16-dev)
sanitize=1
if [[ "${RWKV_SKIP_SANITIZE:-0}" == 1 ]]; then sanitize=0; fi
if ((sanitize)); then PACKAGES+=("${SANITIZE_PACKAGES[@]}"); fi

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

if ((sanitize)); then
  CC=clang-16 CXX=clang++-16 cmake -S . -B build/sanitize \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRWKV_SANITIZE=ON
  cmake --build build/sanitize -j"$(nproc)"
  echo "setup.sh: sanitizer build in $(pwd)/build/sanitize (its tests run" \
       "with ctest --test-dir build)"
fi
