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
  librocksdb-dev        # the default session store (--store rocksdb)
  libhiredis-dev        # the shared session store's client (--store redis://)
  redis-server haproxy  # the replica tests run real ones (tests/server/replicas_e2e_test.cc)
  libssl-dev            # SHA-256 of API keys (server/auth)
  openssl               # tests make TLS certificates at test time
  libcpp-httplib-dev    # the HTTP front (OpenAI-compatible API, page)
  prometheus-cpp-dev    # /metrics
)
# Only the tests need these: real HTTP clients (curl, the openai npm package
# and puppeteer-core on Node.js, Debian's Chromium) and promtool (package
# prometheus) to validate /metrics. docker/Dockerfile does not install them.
TEST_PACKAGES=(curl prometheus chromium)

# The sanitizer build (a separate list: the container image does not need it).
SANITIZE_PACKAGES=(clang-16 libclang-rt-16-dev libomp-16-dev)
sanitize=1
if [[ "${RWKV_SKIP_SANITIZE:-0}" == 1 ]]; then sanitize=0; fi
if ((sanitize)); then PACKAGES+=("${SANITIZE_PACKAGES[@]}"); fi

missing=()
# Node.js and npm: any install that provides the commands will do (a
# NodeSource nodejs already bundles npm, and Debian's npm would conflict).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
for p in "${PACKAGES[@]}" "${TEST_PACKAGES[@]}"; do
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

# The npm packages of the HTTP tests, exactly as tests/http/node's lock
# file pins them (again only when the lock changed).
node_dir=tests/http/node
if [[ ! -f $node_dir/node_modules/.package-lock.json ||
      $node_dir/package-lock.json -nt $node_dir/node_modules/.package-lock.json ]]; then
  echo "setup.sh: npm ci in $node_dir"
  (cd "$node_dir" && npm ci --no-audit --no-fund)
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
