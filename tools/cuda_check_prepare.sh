#!/usr/bin/env bash
# Prepares, on this (Debian 12, networked) machine, what tools/cuda_check.sh
# needs on the GPU machine, which has LibTorch (pip torch), CMake, ninja and
# nvcc but no Debian packages and no network:
#   .cuda-deps/debs/    the engine's build dependencies as .deb files (apt-get
#                       download; unpacked there with dpkg -x into a private
#                       prefix inside the build folder, never into /)
#   .cuda-deps/shared/  the shared test models and reference outputs (the
#                       ../shared folder next to a checkout does not travel)
#   .cuda-deps/MANIFEST package versions, file sizes and sha256 sums
# .cuda-deps/ is git-ignored (.gitignore). Run it in the checkout whose tree
# the device tool sends (the session's own checkout, not a helper worktree).
#
# Then, one device call (the whole check, < 8 minutes on a bare machine):
#   run  command:   bash tools/cuda_check.sh
#        carry:     [".cuda-deps"]
#        timeout_s: 540
# It writes $OUT/summary.json (every figure), $OUT/run.log and
# $OUT/raw.tar.gz (gtest and rwkv-bench JSON, configure/build logs).
# Check the same path on this machine first: bash tools/cuda_check.sh --cpu
#
# Usage: tools/cuda_check_prepare.sh [--shared DIR] [--no-shared]
set -euo pipefail
cd "$(dirname "$0")/.."

SHARED_SRC="${RWKV_SHARED_DIR:-../shared}"
COPY_SHARED=1
while (($#)); do
  case "$1" in
    --shared) SHARED_SRC="$2"; shift 2 ;;
    --no-shared) COPY_SHARED=0; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "cuda_check_prepare.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

DEPS=.cuda-deps
mkdir -p "$DEPS/debs"

# The GPU machine is x86-64; download amd64 packages whatever this machine is.
APT=(apt-get)
if [[ "$(dpkg --print-architecture)" != amd64 ]]; then
  LISTS=/tmp/cuda-deps-amd64-lists
  mkdir -p "$LISTS/partial"
  APT=(apt-get -oAPT::Architecture=amd64 -oAPT::Architectures=amd64
       "-oDir::State::Lists=$LISTS")
  "${APT[@]}" update
elif ! apt-cache show libabsl-dev >/dev/null 2>&1; then
  apt-get update
fi

# Runtime packages are named after the development package's dependency
# (libabsl-dev -> libabsl20220623 on Debian 12), so look them up.
runtime_of() {
  apt-cache depends "$1" 2>/dev/null | awk -v p="$2" \
    '$1 == "Depends:" && $2 ~ p { print $2; exit }'
}
ABSL_RT=$(runtime_of libabsl-dev '^libabsl[0-9]+$')
DNNL_RT=$(runtime_of libdnnl-dev '^libdnnl[0-9]+$')
UTF8_RT=$(runtime_of libutf8proc-dev '^libutf8proc[0-9]+$')
for v in ABSL_RT DNNL_RT UTF8_RT; do
  if [[ -z "${!v}" ]]; then
    echo "cuda_check_prepare.sh: cannot find the runtime package for $v" >&2
    exit 1
  fi
done
PACKAGES=(
  libabsl-dev "$ABSL_RT"            # Abseil headers, CMake config, .so
  libdnnl-dev "$DNNL_RT"            # oneDNN 2.x (used unless LibTorch's own clashes)
  ocl-icd-libopencl1                # libOpenCL.so.1, which libdnnl needs
  libutf8proc-dev "$UTF8_RT"        # utf8proc (tokenizers)
  nlohmann-json3-dev                # JSON (header-only)
  libcli11-dev                      # CLI11: the programs' flags (header-only)
  libgtest-dev libgmock-dev         # GoogleTest 1.12 (static libraries)
)

rm -f "$DEPS"/debs/*.deb
(cd "$DEPS/debs" && "${APT[@]}" download "${PACKAGES[@]}")

if ((COPY_SHARED)); then
  if [[ ! -d "$SHARED_SRC/models" ]]; then
    echo "cuda_check_prepare.sh: no shared models in '$SHARED_SRC'" \
         "(--shared DIR or --no-shared)" >&2
    exit 1
  fi
  rm -rf "$DEPS/shared"
  mkdir -p "$DEPS/shared/models"
  # The tiny RWKV-4 / RWKV-7 models, their reference outputs and state
  # fixtures (the RWKV-5 model is not used by the engine tests).
  for f in "$SHARED_SRC"/models/*; do
    case "$(basename "$f")" in
      *rwkv5*) ;;
      *) cp "$f" "$DEPS/shared/models/" ;;
    esac
  done
fi

{
  echo "# written by tools/cuda_check_prepare.sh on $(date -u +%FT%TZ)"
  for d in "$DEPS"/debs/*.deb; do
    printf '%s %s %s\n' "$(dpkg-deb -f "$d" Package)" \
      "$(dpkg-deb -f "$d" Version)" "$(dpkg-deb -f "$d" Architecture)"
  done
  (cd "$DEPS" && find debs shared -type f 2>/dev/null | sort |
     xargs -r sha256sum)
} > "$DEPS/MANIFEST"

total=$(du -sb "$DEPS" | cut -f1)
tree=$( (git ls-files -z --cached --others --exclude-standard |
         xargs -0 -r du -cb 2>/dev/null | tail -1 | cut -f1) || echo 0)
echo "cuda_check_prepare.sh: $DEPS holds $((total / 1024 / 1024)) MiB;" \
     "with the working tree $(((total + tree) / 1024 / 1024)) MiB travel" \
     "(the device tool's limit is 64 MiB)"
if ((total + tree > 60 * 1024 * 1024)); then
  echo "cuda_check_prepare.sh: too large for one device call" >&2
  exit 1
fi
cat <<'EOF'
Device call: run command "bash tools/cuda_check.sh", carry [".cuda-deps"],
timeout_s 540. Results: $OUT/summary.json, $OUT/run.log, $OUT/raw.tar.gz.
EOF
