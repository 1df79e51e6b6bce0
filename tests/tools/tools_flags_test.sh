#!/usr/bin/env bash
# The command lines of rwkv-cli, rwkv-bench, rwkv-train and cpu_linear_bench
# (CLI11), without loading a model: --help exits 0 and shows the defaults of
# the options structs, usage errors exit 2 and name the flag, rwkv-cli keeps
# exit 1 for a flag value out of range.
#   usage: tools_flags_test.sh rwkv-cli rwkv-bench rwkv-train cpu_linear_bench
set -u
CLI=$1 BENCH=$2 TRAIN=$3 LINEAR=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL - $*"; fails=$((fails + 1)); }

# expect CODE PATTERN CMD...: CMD exits with CODE and prints PATTERN (stdout
# for exit 0, stderr otherwise).
expect() {
  local code=$1 pattern=$2
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$? where="$tmp/err"
  [ "$code" -eq 0 ] && where="$tmp/out"
  if [ $rc -ne "$code" ]; then
    fail "exit $rc, wanted $code: $* ($(head -c 300 "$tmp/err"))"
  elif ! grep -qF -- "$pattern" "$where"; then
    fail "no '$pattern' from: $* ($(head -c 300 "$where"))"
  else
    echo "ok   - $*"
  fi
}

# rwkv-cli: per-command flags and defaults.
expect 0 "generate" "$CLI" --help
expect 0 "eval" "$CLI" help
expect 0 "--top-p P=0.85" "$CLI" generate --help
expect 0 "--temperature X=1" "$CLI" generate --help
expect 0 "--max-tokens N:in [0, 10000000] REQUIRED" "$CLI" generate --help
expect 0 "--state-dtype D=fp32" "$CLI" state blend --help
expect 0 "inspect" "$CLI" state help
expect 2 "--max-tokens is required" "$CLI" generate --tokens 1
expect 2 "--prompt" "$CLI" info --prompt x
expect 2 "frob" "$CLI" frob
expect 2 "missing command" "$CLI"
expect 2 "--alpha is required" "$CLI" state blend a b --out c
expect 1 "--threads must be an integer in [0, 1024], got '2000'" "$CLI" info --threads 2000
expect 1 "--seed must be an integer in [0, 18446744073709551615], got '-1'" \
  "$CLI" generate --tokens 1 --max-tokens 1 --seed -1
# Weight dtypes (issue 16): --dtype is checked by the command line; quantize
# and bpb are subcommands with their own flags.
expect 0 "--dtype auto|fp32|bf16|int8|fp16=auto" "$CLI" eval --help
expect 1 "--dtype must be one of auto|fp32|bf16|int8|fp16, got 'fp8'" \
  "$CLI" eval --prompt x --dtype fp8
expect 0 "--dtype int8|bf16=int8" "$CLI" quantize --help
expect 2 "--out is required" "$CLI" quantize
expect 1 "--dtype must be one of int8|bf16, got 'fp32'" \
  "$CLI" quantize --out "$tmp/q.safetensors" --dtype fp32
expect 0 "--max-texts N:in [0, 1073741824]=0" "$CLI" bpb --help

# rwkv-bench.
expect 0 "--batches B,B,...=1,8,32,64" "$BENCH" --help
expect 0 "--prompt-tokens N:in [1, 1048576]=512" "$BENCH" --help
expect 2 "--arch must be one of v4|rwkv4|v7|rwkv7, got 'v9'" "$BENCH" --arch v9
expect 2 "--batches must list batch sizes in [1, 4096], got 0" "$BENCH" --batches 0,8
expect 2 "unknown --shape '1b'" "$BENCH" --shape 1b
expect 0 "--json-file FILE" "$BENCH" --help
expect 2 "--dtype must list dtypes of fp32, bf16, int8 (CPU) or fp16 (CUDA), got 'fp8'" \
  "$BENCH" --dtype fp32,fp8
expect 2 "--dtype fp16 needs --device cuda" "$BENCH" --dtype fp16

# rwkv-train: each command's defaults are its options struct's.
expect 0 "--lr X:> 0=0.001" "$TRAIN" train --help
expect 0 "--ctx T:in [1, 1048576]=256" "$TRAIN" train --help
expect 0 "--dialogues N:in [1, 10000000]=20000" "$TRAIN" corpus --help
expect 0 "--lr X:> 0=0.05" "$TRAIN" state-tune --help
expect 2 "--out is required" "$TRAIN" corpus
expect 2 "--save-every must be an integer" "$TRAIN" train --data d --out o --save-every 0
expect 2 "missing command" "$TRAIN"

# cpu_linear_bench.
expect 0 "--repeats R:in [1, 10000]=10" "$LINEAR" --help
expect 2 "--m must be an integer in [1, 1048576], got '0'" "$LINEAR" --m 0
expect 2 "--bogus" "$LINEAR" --bogus

if ((fails > 0)); then
  echo "$fails check(s) failed"
  exit 1
fi
echo "PASS"
