#!/usr/bin/env bash
# The engine on an NVIDIA GPU, checked and measured in one go (issue 17): on
# the device machine (python3's pip torch = a CUDA LibTorch; CMake, ninja and
# nvcc; no Debian packages, no network) it
#   1. unpacks the build dependencies carried in .cuda-deps/debs (see
#      tools/cuda_check_prepare.sh) with dpkg -x into a private prefix in the
#      build folder (never into /);
#   2. configures an engine-only build (RWKV_ENGINE_ONLY=ON) against torch's
#      LibTorch (torch.utils.cmake_prefix_path) and builds rwkv-bench and the
#      engine parity tests with all cores;
#   3. runs cuda_parity_test, rwkv7_parity_test and rwkv_engine_test with
#      RWKV_TEST_DEVICE=cuda and RWKV_TEST_DEVICE_REQUIRED=1 (so a build
#      whose CUDA does not work fails instead of skipping), against the
#      shared models carried in .cuda-deps/shared;
#   4. runs rwkv-bench --device cuda for the 169M RWKV-4 and 0.1B RWKV-7
#      shapes in fp32 and fp16 (decode ms/token, prefill tok/s, batched tok/s
#      at B = 1/8/32/64/256);
#   5. writes $OUT/summary.json (every figure, the test results, the stages'
#      times, what was found where), $OUT/run.log and $OUT/raw.tar.gz (gtest
#      and bench JSON, configure/build/test logs, CMakeCache.txt).
# Every stage has a time limit inside an overall budget (default 450 s), so
# the whole check ends in under 8 minutes on a bare machine; a stage that
# fails or runs out of time is recorded and the summary is written anyway.
#
# Device call (after tools/cuda_check_prepare.sh in the same checkout):
#   run  command: "bash tools/cuda_check.sh"  carry: [".cuda-deps"]
#        timeout_s: 540
#
# --cpu runs the same path on a machine without a GPU (the system LibTorch,
# tests and a small bench on the CPU; the CUDA cases must skip cleanly).
#
# Usage: tools/cuda_check.sh [--cpu] [--device cuda[:N]] [--out DIR]
#          [--budget SECONDS] [--jobs N] [--onednn auto|on|off]
#          [--bench-dtypes fp32,fp16] [--bench-args "ARGS"]
#          [--build-dir DIR] [--system-deps]
# Exit status: 0 when every stage passed and no test failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
START=$(date +%s)

MODE=cuda
DEVICE=""
BUDGET=""
JOBS=$(nproc 2>/dev/null || echo 4)
ONEDNN=auto
BENCH_DTYPES=""
BENCH_ARGS=""
BUILD_DIR=""
SYSTEM_DEPS=0
OUT_DIR="${OUT:-}"
while (($#)); do
  case "$1" in
    --cpu) MODE=cpu; shift ;;
    --device) DEVICE="$2"; shift 2 ;;
    --out) OUT_DIR="$2"; shift 2 ;;
    --budget) BUDGET="$2"; shift 2 ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --onednn) ONEDNN="$2"; shift 2 ;;
    --bench-dtypes) BENCH_DTYPES="$2"; shift 2 ;;
    --bench-args) BENCH_ARGS="$2"; shift 2 ;;
    --build-dir) BUILD_DIR="$2"; shift 2 ;;
    --system-deps) SYSTEM_DEPS=1; shift ;;
    -h|--help) sed -n '2,37p' "$0"; exit 0 ;;
    *) echo "cuda_check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$ONEDNN" in auto|on|off) ;; *)
  echo "cuda_check.sh: --onednn takes auto, on or off" >&2; exit 2 ;;
esac
if [[ $MODE == cpu ]]; then
  DEVICE=${DEVICE:-cpu}
  BUDGET=${BUDGET:-3600}
  BENCH_DTYPES=${BENCH_DTYPES:-fp32}
  # A small model: the CPU run proves the path, the GPU run measures.
  BENCH_ARGS=${BENCH_ARGS:---layers 2 --embd 256 --vocab 2048 --prompt-tokens 64 --decode-tokens 8 --threads $JOBS}
  BUILD_DIR=${BUILD_DIR:-build-cuda-check-cpu}
else
  DEVICE=${DEVICE:-cuda}
  BUDGET=${BUDGET:-450}
  BENCH_DTYPES=${BENCH_DTYPES:-fp32,fp16}
  BUILD_DIR=${BUILD_DIR:-build-cuda-check}
fi
[[ $BUILD_DIR = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
OUT_DIR=${OUT_DIR:-$BUILD_DIR/out}
WORK="$BUILD_DIR/check"
mkdir -p "$OUT_DIR" "$WORK"
rm -rf "${WORK:?}"/* "$OUT_DIR/summary.json" "$OUT_DIR/run.log" \
  "$OUT_DIR/raw.tar.gz"
LOG="$OUT_DIR/run.log"
STAGES="$WORK/stages.tsv"
: > "$STAGES"
RESERVE=15  # seconds kept for the summary

say() { echo "[cuda_check $(($(date +%s) - START))s] $*" | tee -a "$LOG"; }

# run_stage NAME CAP_SECONDS LOGFILE CMD...: runs CMD with its output in
# LOGFILE (stdout in $STAGE_STDOUT instead when set), limited to CAP seconds
# and to what is left of the budget; records the stage in $STAGES.
run_stage() {
  local name=$1 cap=$2 logfile=$3
  shift 3
  local left=$((START + BUDGET - RESERVE - $(date +%s)))
  if ((left < 5)); then
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" skipped 0 0 "$logfile" >> "$STAGES"
    say "$name: skipped (budget used up)"
    return 124
  fi
  local limit=$((cap < left ? cap : left))
  local t0 t1 rc
  t0=$(date +%s.%N)
  if [[ -n "${STAGE_STDOUT:-}" ]]; then
    timeout -k 5 "$limit" "$@" > "$STAGE_STDOUT" 2> "$logfile"
  else
    timeout -k 5 "$limit" "$@" > "$logfile" 2>&1
  fi
  rc=$?
  t1=$(date +%s.%N)
  local dur
  dur=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$rc" "$dur" "$limit" "$logfile" \
    >> "$STAGES"
  if ((rc == 0)); then
    say "$name: ok in ${dur}s"
  else
    local why=""
    ((rc == 124 || rc == 137)) && why=", time limit ${limit}s"
    say "$name: FAILED (exit $rc$why) after ${dur}s; last lines of" \
        "$(basename "$logfile"):"
    tail -n 30 "$logfile" | tee -a "$LOG"
  fi
  return $rc
}

# --- 1. What is here -------------------------------------------------------
PY=$(command -v python3 || true)
TORCH_CMAKE="${TORCH_CMAKE_PREFIX_PATH:-}"
TORCH_VERSION=""
TORCH_LIB=""
if [[ $MODE == cuda ]]; then
  if [[ -z "$PY" ]]; then
    say "no python3: cannot find torch's LibTorch"; exit 1
  fi
  read -r TORCH_VERSION TORCH_CMAKE_PY TORCH_LIB < <("$PY" - <<'EOF' 2>/dev/null
import os, torch, torch.utils
print(torch.__version__, torch.utils.cmake_prefix_path,
      os.path.join(os.path.dirname(torch.__file__), "lib"))
EOF
)
  TORCH_CMAKE=${TORCH_CMAKE:-${TORCH_CMAKE_PY:-}}
  if [[ -z "$TORCH_CMAKE" ]]; then
    say "python3 has no torch: cannot find its LibTorch"; exit 1
  fi
else
  TORCH_VERSION=$(dpkg-query -W -f='${Version}' libtorch-dev 2>/dev/null ||
                  echo unknown)
  TORCH_LIB=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
fi
say "mode $MODE, device $DEVICE, LibTorch $TORCH_VERSION (${TORCH_CMAKE:-system}), budget ${BUDGET}s, $JOBS jobs"

# C++ standard: LibTorch 2.14 and later need C++20.
CXX_STD=17
if [[ $TORCH_VERSION =~ ^([0-9]+)\.([0-9]+) ]]; then
  if ((BASH_REMATCH[1] > 2 || (BASH_REMATCH[1] == 2 && BASH_REMATCH[2] >= 14))); then
    CXX_STD=20
  fi
fi

# CUDA toolkit (nvcc) and the pip NVIDIA libraries LibTorch loads.
NVCC=""
CUDA_ROOT=""
NV_LIBS=""
if [[ $MODE == cuda ]]; then
  for c in "$(command -v nvcc || true)" /usr/local/cuda/bin/nvcc \
           $("$PY" -c 'import glob, site
for d in site.getsitepackages():
    print(*glob.glob(d + "/nvidia/*/bin/nvcc"))' 2>/dev/null); do
    if [[ -n "$c" && -x "$c" ]]; then NVCC=$c; break; fi
  done
  if [[ -n "$NVCC" ]]; then
    NVCC=$(readlink -f "$NVCC")
    CUDA_ROOT=$(dirname "$(dirname "$NVCC")")
    PATH="$(dirname "$NVCC"):$PATH"
    export PATH CUDA_HOME="$CUDA_ROOT"
  fi
  NV_LIBS=$("$PY" -c 'import glob, site
print(":".join(sorted(p for d in site.getsitepackages()
                      for p in glob.glob(d + "/nvidia/*/lib"))))' 2>/dev/null)
  export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
fi

# oneDNN: pip LibTorch links its own oneDNN 3.x into libtorch_cpu.so; if it
# exports the dnnl_* C API, those symbols would be used in place of the
# system oneDNN 2.x the engine's CPU kernels call. Then build without it.
ONEDNN_REASON="requested"
if [[ $ONEDNN == auto ]]; then
  if [[ $MODE == cpu ]]; then
    ONEDNN=on
    ONEDNN_REASON="system LibTorch links the system oneDNN"
  elif ! command -v nm >/dev/null; then
    ONEDNN=off
    ONEDNN_REASON="no nm to check libtorch_cpu.so for dnnl_* symbols"
  elif nm -D --defined-only "$TORCH_LIB/libtorch_cpu.so" 2>/dev/null |
       grep -qE ' (dnnl_engine_create|dnnl_primitive_execute)$'; then
    ONEDNN=off
    ONEDNN_REASON="libtorch_cpu.so exports oneDNN's dnnl_* symbols"
  else
    ONEDNN=on
    ONEDNN_REASON="libtorch_cpu.so exports no dnnl_* symbols"
  fi
fi
say "oneDNN in the engine: $ONEDNN ($ONEDNN_REASON)"

# Environment facts for the summary.
{
  echo "uname=$(uname -srm)"
  echo "nproc=$(nproc 2>/dev/null)"
  echo "cxx=$( (c++ --version || g++ --version) 2>/dev/null | head -1)"
  echo "cmake=$(cmake --version 2>/dev/null | head -1)"
  echo "ninja=$(ninja --version 2>/dev/null)"
  echo "nvcc=${NVCC:+$NVCC: }$("${NVCC:-false}" --version 2>/dev/null | tail -2 | tr '\n' ' ')"
  echo "gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"
  echo "torch_version=$TORCH_VERSION"
  echo "torch_cmake_prefix=$TORCH_CMAKE"
  echo "torch_lib=$TORCH_LIB"
  echo "cuda_root=$CUDA_ROOT"
  echo "cxx_standard=$CXX_STD"
  echo "onednn=$ONEDNN"
  echo "onednn_reason=$ONEDNN_REASON"
  echo "commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)"
  if [[ $MODE == cuda ]]; then
    "$PY" -c 'import torch; print("torch_cuda=%s available=%s devices=%d name=%s" % (torch.version.cuda, torch.cuda.is_available(), torch.cuda.device_count(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-"))' 2>&1 | sed 's/^/torch_runtime=/'
  fi
} > "$WORK/env.txt" 2>/dev/null
cat "$WORK/env.txt" >> "$LOG"

# --- 2. Dependencies: unpacked .debs or the system's ------------------------
MULTIARCH=$(gcc -print-multiarch 2>/dev/null || true)
MULTIARCH=${MULTIARCH:-x86_64-linux-gnu}
PREFIX="$BUILD_DIR/deps-root"
CMAKE_DEP_ARGS=()
DEPS_LIBDIR=""
DEPS_OK=1
if ((SYSTEM_DEPS == 0)) && compgen -G "$ROOT/.cuda-deps/debs/*.deb" >/dev/null; then
  # dpkg-deb -x where there is dpkg; else by hand: a .deb is an ar archive
  # whose data.tar.* holds the files.
  # shellcheck disable=SC2016  # expanded by the inner bash
  UNPACK='set -e; prefix=$1; shift; rm -rf "$prefix"; mkdir -p "$prefix"
    for d in "$@"; do
      echo "$d"
      if command -v dpkg-deb >/dev/null; then dpkg-deb -x "$d" "$prefix"
      else
        tmp=$(mktemp -d); m=$(ar t "$d" | grep "^data.tar")
        (cd "$tmp" && ar x "$d" "$m"); tar -xf "$tmp/$m" -C "$prefix"
        rm -rf "$tmp"
      fi
    done'
  run_stage deps 60 "$WORK/deps.log" bash -c "$UNPACK" unpack "$PREFIX" \
    "$ROOT"/.cuda-deps/debs/*.deb || DEPS_OK=0
  DEPS_LIBDIR="$PREFIX/usr/lib/$MULTIARCH"
  CMAKE_DEP_ARGS=(
    "-Dabsl_DIR=$DEPS_LIBDIR/cmake/absl"
    "-DGTest_DIR=$DEPS_LIBDIR/cmake/GTest"
    "-Dnlohmann_json_DIR=$PREFIX/usr/share/cmake/nlohmann_json"
    "-DCMAKE_LIBRARY_PATH=$DEPS_LIBDIR"
    "-DCMAKE_INCLUDE_PATH=$PREFIX/usr/include${CUDA_ROOT:+;$CUDA_ROOT/include}"
  )
  DEPS_SOURCE="$ROOT/.cuda-deps/debs unpacked into $PREFIX"
else
  DEPS_SOURCE="system packages"
fi
say "dependencies: $DEPS_SOURCE"

export LD_LIBRARY_PATH="${DEPS_LIBDIR:+$DEPS_LIBDIR:}${TORCH_LIB:+$TORCH_LIB:}${NV_LIBS:+$NV_LIBS:}${LD_LIBRARY_PATH:-}"

# --- 3. Configure and build ---------------------------------------------------
PREFIX_PATH="${DEPS_LIBDIR:+$PREFIX/usr;}${TORCH_CMAKE}"
LINK_FLAGS=""
CMAKE_ARGS=(
  -S "$ROOT" -B "$BUILD_DIR"
  -DCMAKE_BUILD_TYPE=Release
  -DRWKV_ENGINE_ONLY=ON
  -DRWKV_BUILD_TESTS=ON
  "-DRWKV_USE_ONEDNN=$([[ $ONEDNN == on ]] && echo ON || echo OFF)"
  "-DCMAKE_CXX_STANDARD=$CXX_STD"
  # Abseil 20220623 misses <cstdint> includes that GCC 13's libstdc++ no
  # longer provides transitively.
  "-DCMAKE_CXX_FLAGS=-include cstdint"
  -DCMAKE_GTEST_DISCOVER_TESTS_DISCOVERY_MODE=PRE_TEST
  "${CMAKE_DEP_ARGS[@]}"
)
[[ -n "$PREFIX_PATH" ]] && CMAKE_ARGS+=("-DCMAKE_PREFIX_PATH=$PREFIX_PATH")
[[ -n "$TORCH_CMAKE" ]] && CMAKE_ARGS+=("-DTorch_DIR=$TORCH_CMAKE/Torch")
command -v ninja >/dev/null && CMAKE_ARGS+=(-G Ninja)
if [[ $MODE == cuda ]]; then
  # Keep libtorch_cuda.so loaded even though no symbol of it is named
  # (otherwise LibTorch reports no CUDA), and let the linker find the pip
  # NVIDIA libraries that libtorch_cuda.so needs.
  LINK_FLAGS="-Wl,--no-as-needed"
  IFS=: read -r -a nv_dirs <<< "$NV_LIBS"
  for d in "${nv_dirs[@]}"; do [[ -n "$d" ]] && LINK_FLAGS+=" -Wl,-rpath-link,$d"; done
  CMAKE_ARGS+=("-DCMAKE_EXE_LINKER_FLAGS=$LINK_FLAGS" -DUSE_SYSTEM_NVTX=ON)
  if [[ -n "$NVCC" ]]; then
    CMAKE_ARGS+=("-DCMAKE_CUDA_COMPILER=$NVCC" "-DCUDAToolkit_ROOT=$CUDA_ROOT"
                 -DCMAKE_CUDA_ARCHITECTURES=90)
    # LibTorch >= 2.5 looks for NVTX3 headers and otherwise falls back to a
    # CUDA::nvToolsExt target that CUDA 13 no longer has.
    [[ -d "$CUDA_ROOT/include/nvtx3" ]] &&
      CMAKE_ARGS+=("-Dnvtx3_dir=$CUDA_ROOT/include")
  fi
fi
rm -f "$BUILD_DIR/CMakeCache.txt"
TARGETS=(rwkv-bench cuda_parity_test rwkv7_parity_test rwkv_engine_test)
if ((DEPS_OK)) && run_stage configure 150 "$WORK/configure.log" cmake "${CMAKE_ARGS[@]}" &&
   run_stage build 330 "$WORK/build.log" \
     cmake --build "$BUILD_DIR" -j "$JOBS" --target "${TARGETS[@]}"; then
  BUILT=1
else
  BUILT=0
fi
cp "$BUILD_DIR/CMakeCache.txt" "$WORK/" 2>/dev/null

# --- 4. Tests -------------------------------------------------------------------
SHARED=""
for d in "${RWKV_SHARED_DIR:-}" "$ROOT/.cuda-deps/shared" "$ROOT/shared" \
         "$ROOT/../shared"; do
  if [[ -n "$d" && -d "$d/models" ]]; then SHARED=$(readlink -f "$d"); break; fi
done
say "shared models: ${SHARED:-none (their tests skip)}"
REQUIRED=0
[[ $MODE == cuda ]] && REQUIRED=1
if ((BUILT)); then
  for t in cuda_parity_test rwkv7_parity_test rwkv_engine_test; do
    run_stage "test:$t" 150 "$WORK/$t.out" env \
      RWKV_SHARED_DIR="$SHARED" RWKV_TEST_DEVICE="$DEVICE" \
      RWKV_TEST_DEVICE_REQUIRED="$REQUIRED" OMP_NUM_THREADS=1 \
      "$BUILD_DIR/bin/$t" "--gtest_output=json:$WORK/gtest-$t.json"
  done
fi

# --- 5. Benchmarks ---------------------------------------------------------------
if ((BUILT)); then
  IFS=, read -r -a dtypes <<< "$BENCH_DTYPES"
  for arch in v4 v7; do
    shape=$([[ $arch == v4 ]] && echo 169m || echo 0.1b)
    for dt in "${dtypes[@]}"; do
      # shellcheck disable=SC2086  # BENCH_ARGS is a list of words
      STAGE_STDOUT="$WORK/bench-$arch-$dt.json" run_stage \
        "bench:$arch-$shape-$dt" 100 "$WORK/bench-$arch-$dt.err" \
        "$BUILD_DIR/bin/rwkv-bench" --arch "$arch" --shape "$shape" \
        --device "$DEVICE" --dtype "$dt" --batches 1,8,32,64,256 --json \
        $BENCH_ARGS
    done
  done
fi

# --- 6. Summary ------------------------------------------------------------------
WALL=$(($(date +%s) - START))
export CC_MODE=$MODE CC_DEVICE=$DEVICE CC_BUDGET=$BUDGET CC_WALL=$WALL \
  CC_WORK=$WORK CC_OUT=$OUT_DIR CC_DEPS="$DEPS_SOURCE" CC_SHARED="$SHARED"
SUMMARY_RC=1
if [[ -n "$PY" ]]; then
  "$PY" - <<'EOF' 2>&1 | tee -a "$LOG"
import glob, json, os, re

work, out = os.environ["CC_WORK"], os.environ["CC_OUT"]
env = {}
for line in open(os.path.join(work, "env.txt"), errors="replace"):
    k, _, v = line.rstrip("\n").partition("=")
    env[k] = v
cache = {}
cache_path = os.path.join(work, "CMakeCache.txt")
if os.path.exists(cache_path):
    keys = {"absl_DIR", "GTest_DIR", "nlohmann_json_DIR", "CLI11_DIR", "Torch_DIR",
            "UTF8PROC_INCLUDE_DIR", "UTF8PROC_LIBRARY", "DNNL_LIBRARY",
            "DNNL_INCLUDE_DIR", "CMAKE_CXX_COMPILER", "CMAKE_CUDA_COMPILER",
            "RWKV_USE_ONEDNN", "CMAKE_CXX_STANDARD", "CMAKE_CXX_FLAGS",
            "CMAKE_EXE_LINKER_FLAGS", "CMAKE_PREFIX_PATH"}
    for line in open(cache_path, errors="replace"):
        m = re.match(r"^([A-Za-z0-9_]+):[A-Z]+=(.*)$", line.rstrip("\n"))
        if m and m.group(1) in keys:
            cache[m.group(1)] = m.group(2)
stages = []
for line in open(os.path.join(work, "stages.tsv")):
    name, rc, secs, limit, _ = line.rstrip("\n").split("\t")
    stages.append({"name": name,
                   "status": "ok" if rc == "0" else
                             "skipped" if rc == "skipped" else
                             "timeout" if rc in ("124", "137") else "failed",
                   "exit": rc, "seconds": float(secs), "limit_s": int(limit)})

# gtest: counts from the JSON reports, messages and [ measured ] lines from
# the console output (skip reasons are only there).
tests = {"binaries": {}, "failed": [], "skipped": [], "measured": []}
totals = {"tests": 0, "passed": 0, "failed": 0, "skipped": 0}
for path in sorted(glob.glob(os.path.join(work, "gtest-*.json"))):
    binary = os.path.basename(path)[6:-5]
    try:
        report = json.load(open(path))
    except Exception as e:  # a crash mid-run leaves no or half a report
        tests["binaries"][binary] = {"error": "no report: %s" % e}
        continue
    counts = {"tests": 0, "passed": 0, "failed": 0, "skipped": 0,
              "seconds": float(str(report.get("time", "0")).rstrip("s") or 0)}
    for suite in report.get("testsuites", []):
        for t in suite.get("testsuite", []):
            name = "%s.%s" % (suite["name"], t["name"])
            counts["tests"] += 1
            if t.get("failures"):
                counts["failed"] += 1
                tests["failed"].append({"test": name, "binary": binary,
                    "messages": [f.get("failure", "")[:2000]
                                 for f in t["failures"]]})
            elif t.get("result") == "SKIPPED":
                counts["skipped"] += 1
            else:
                counts["passed"] += 1
    tests["binaries"][binary] = counts
    for k in totals:
        totals[k] += counts[k]
for path in sorted(glob.glob(os.path.join(work, "*_test.out"))):
    binary = os.path.basename(path)[:-4]
    current, skip_lines, in_skip = None, [], False
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        m = re.match(r"^\[ RUN      \] (\S+)", line)
        if m:
            current, skip_lines, in_skip = m.group(1), [], False
            continue
        if line.startswith("[ measured ]"):
            tests["measured"].append({"test": current, "binary": binary,
                                      "line": line[len("[ measured ] "):]})
        elif line.endswith(": Skipped"):
            in_skip = True
        elif re.match(r"^\[  SKIPPED \] (\S+)", line) and current:
            tests["skipped"].append({"test": current, "binary": binary,
                                     "reason": " ".join(skip_lines)[:500]})
            in_skip = False
        elif in_skip and line and not line.startswith("["):
            skip_lines.append(line)
tests["totals"] = totals

bench, figures = {}, {}
for path in sorted(glob.glob(os.path.join(work, "bench-*.json"))):
    key = os.path.basename(path)[6:-5]
    try:
        b = json.load(open(path))
    except Exception as e:
        bench[key] = {"error": "no JSON: %s" % e}
        continue
    bench[key] = b
    try:
        figures[key] = {
            "decode_ms_per_token": b["decode"]["ms_per_token"],
            "prefill_tokens_per_s": b["prefill"]["sequence_tokens_per_s"],
            "batched_tokens_per_s": {str(x["batch"]): x["tokens_per_s"]
                                     for x in b["batched"]},
            "b256_over_b1": b.get("b256_over_b1"),
            "memory_bandwidth_gbs": b["memory_bandwidth_gbs"],
            "gemm_peak_gflops": b["gemm_peak_gflops"]["best"],
        }
    except (KeyError, TypeError) as e:
        bench[key] = {"error": "unexpected JSON: missing %s" % e}

ok = (all(s["status"] == "ok" for s in stages) and totals["failed"] == 0
      and totals["tests"] > 0 and len(figures) > 0
      and not any("error" in v for v in tests["binaries"].values()))
summary = {
    "check": "tools/cuda_check.sh",
    "ok": ok,
    "mode": os.environ["CC_MODE"], "device": os.environ["CC_DEVICE"],
    "wall_s": int(os.environ["CC_WALL"]),
    "budget_s": int(os.environ["CC_BUDGET"]),
    "dependencies": os.environ["CC_DEPS"],
    "shared_models": os.environ["CC_SHARED"],
    "env": env, "cmake_cache": cache, "stages": stages,
    "tests": tests, "figures": figures, "bench": bench,
}
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)

print("== summary: %s (%s on %s, %ss of %ss)" % (
    "OK" if ok else "NOT OK", summary["mode"], summary["device"],
    summary["wall_s"], summary["budget_s"]))
for s in stages:
    print("  %-34s %-8s %6.1fs" % (s["name"], s["status"], s["seconds"]))
print("  tests: %(tests)d run, %(passed)d passed, %(failed)d failed, "
      "%(skipped)d skipped" % totals)
for f in tests["failed"][:20]:
    print("  FAILED %s: %s" % (f["test"], f["messages"][0][:300].replace("\n", " | ")))
for m in tests["measured"]:
    print("  measured: " + m["line"])
for k, v in figures.items():
    print("  bench %s: decode %.3f ms/token, prefill %.0f tok/s, batched %s tok/s"
          % (k, v["decode_ms_per_token"], v["prefill_tokens_per_s"],
             ", ".join("B=%s %.0f" % kv for kv in v["batched_tokens_per_s"].items())))
raise SystemExit(0 if ok else 1)
EOF
  SUMMARY_RC=${PIPESTATUS[0]}
else
  say "no python3: raw results only (raw.tar.gz)"
fi
tar -czf "$OUT_DIR/raw.tar.gz" -C "$WORK" . 2>/dev/null
say "done in $(($(date +%s) - START))s; results in $OUT_DIR (summary.json, run.log, raw.tar.gz)"
exit "$SUMMARY_RC"
