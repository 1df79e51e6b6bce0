#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time, starting from its committed
# seed corpus, as CI does (ctest -L fuzz in the sanitizer build):
#   run_fuzzer.sh BINARY SECONDS SEED_DIR WORK_DIR [libFuzzer flags...]
# New inputs go to WORK_DIR/corpus (kept between runs), crashes to
# WORK_DIR/artifacts/ (the failing input; make it a regression test).
# Exits non-zero on any crash, sanitizer report, leak, timeout, or
# allocation over the limits.
set -euo pipefail
bin=$1 seconds=$2 seeds=$3 work=$4
shift 4
mkdir -p "$work/corpus" "$work/artifacts"
exec "$bin" -max_total_time="$seconds" -max_len=65536 -timeout=30 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$@" \
  "$work/corpus" "$seeds"
