#!/usr/bin/env bash
# End-to-end test of rwkv-cli's state commands: eval/generate --state-in /
# --state-out and `rwkv-cli state ...`, against the shared tiny models.
#   usage: rwkv_cli_test.sh path/to/rwkv-cli
# RWKV_SHARED_DIR (default: <repo>/../shared) must hold
# models/synthetic-rwkv4-public.pth; without it the test prints a skip line
# and passes.
set -euo pipefail

CLI=${1:?usage: rwkv_cli_test.sh path/to/rwkv-cli}
CLI=$(cd "$(dirname "$CLI")" && pwd)/$(basename "$CLI")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SHARED=${RWKV_SHARED_DIR:-$REPO/../shared}
MODEL=$SHARED/models/synthetic-rwkv4-public.pth
OTHER=$SHARED/models/tiny-rwkv4-660K.pth
if [[ ! -f $MODEL ]]; then
  echo "SKIP: $MODEL not found (set RWKV_SHARED_DIR)"
  exit 0
fi
export OMP_NUM_THREADS=1

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"

FAILS=0
pass() { echo "ok   - $1"; }
fail() {
  echo "FAIL - $1"
  FAILS=$((FAILS + 1))
}
cli() { "$CLI" "$@"; }
model() { cli "$1" --model "$MODEL" --threads 1 "${@:2}"; }

# check NAME PYTHON-EXPR: evaluates EXPR with json files loaded by name
# (j('x.json')) and math available; passes when it is true.
check() {
  local name=$1 expr=$2
  if python3 - "$expr" <<'EOF'; then pass "$name"; else fail "$name"; fi
import json, math, sys
def j(path):
    with open(path) as f:
        return json.load(f)
def maxdiff(a, b):
    assert len(a) == len(b) and len(a) > 0, (len(a), len(b))
    return max(abs(x - y) for x, y in zip(a, b))
ok = eval(sys.argv[1])
if not ok:
    print("  check failed:", sys.argv[1], file=sys.stderr)
sys.exit(0 if ok else 1)
EOF
}

# expect_fail NAME CODE PATTERN CMD...: CMD exits with CODE and its stderr
# contains PATTERN (a crash or a signal is a failure).
expect_fail() {
  local name=$1 code=$2 pattern=$3
  shift 3
  local rc=0
  "$@" >out.txt 2>err.txt || rc=$?
  if [[ $rc -eq $code ]] && grep -qF -- "$pattern" err.txt; then
    pass "$name"
  else
    fail "$name (exit $rc, wanted $code and '$pattern'; stderr: $(head -c 400 err.txt))"
  fi
}

# --- eval: a saved state continues exactly ----------------------------------
model eval --prompt "Hello, my name is Alice." --json >full.json
model eval --prompt "Hello, my name is" --state-out s_hello.pt --json >head.json
model eval --prompt " Alice." --state-in s_hello.pt --json >tail.json
check "eval: prompt split by --state-out/--state-in gives the same logits" \
  "maxdiff(j('full.json')['logits'], j('tail.json')['logits']) <= 1e-5"
check "eval: --state-out state counts the prompt tokens" \
  "j('head.json')['state_token_count'] == 17 and j('tail.json')['state_token_count'] == 24"
model eval --prompt "Hello, my name is" --state-out s_hello16.pt \
  --state-dtype fp16 --json >/dev/null
model eval --prompt " Alice." --state-in s_hello16.pt --json >tail16.json
check "eval: an fp16 state continues within fp16 precision" \
  "0 < maxdiff(j('full.json')['logits'], j('tail16.json')['logits']) <= 0.05"

# --- generate: the saved state is the state after the printed text ---------
model generate --prompt "Hello" --max-tokens 20 --temperature 0 --json >g20.json
model generate --prompt "Hello" --max-tokens 10 --temperature 0 --json \
  --state-out s_gen.pt >g10.json
check "generate: greedy run with --state-out prints the same tokens" \
  "j('g10.json')['tokens'] == j('g20.json')['tokens'][:10] and j('g10.json')['state_token_count'] == 15"
NEXT=$(python3 -c 'import json; print(json.load(open("g20.json"))["tokens"][10])')
model generate --tokens "$NEXT" --max-tokens 9 --temperature 0 --json \
  --state-in s_gen.pt >gcont.json
check "generate: continuing from the saved state repeats the longer run" \
  "j('gcont.json')['tokens'] == j('g20.json')['tokens'][11:20]"
ALL=$(python3 -c 'import json; print(",".join(map(str, [ord(c) for c in "Hello"] + json.load(open("g10.json"))["tokens"] + [33, 32])))')
model eval --tokens "$ALL" --json >gfull.json
model eval --tokens 33,32 --state-in s_gen.pt --json >gtail.json
check "generate: saved state + more tokens == the whole sequence (logits)" \
  "maxdiff(j('gfull.json')['logits'], j('gtail.json')['logits']) <= 1e-5"
model generate --prompt "Hello" --max-tokens 0 --temperature 0 --json \
  --state-out s_gen0.pt >/dev/null

# --- inspect ------------------------------------------------------------------
cli state inspect s_gen.pt --json >inspect.json
check "inspect --json: token count, architecture, health, per-layer stats" \
  "(lambda d: d['token_count'] == 15 and d['architecture'] == 'rwkv4' and d['healthy'] and d['finite'] and d['problems'] == [] and d['file_dtype'] == 'fp32' and [c['name'] for c in d['components']] == ['att_aa','att_ab','att_pp','att_x_prev','ffn_x_prev'] and all(len(c['layers']) == 4 and c['shape'] == [4, 128] for c in d['components']) and 'max_log10_true' in d['components'][0]['layers'][0] and d['bytes'] == 10240 and len(d['model_fingerprint']) > 0)(j('inspect.json'))"
cli state inspect s_gen.pt >inspect.txt
if grep -q "15 tokens" inspect.txt && grep -q "health: healthy" inspect.txt; then
  pass "inspect (text): token count and health"
else
  fail "inspect (text): $(head -3 inspect.txt)"
fi
GEN0_TOKENS=$(cli state inspect s_gen0.pt --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token_count"])')
[[ $GEN0_TOKENS == 5 ]] && pass "generate --max-tokens 0 saves the prompt state" ||
  fail "generate --max-tokens 0 state has $GEN0_TOKENS tokens"

# --- convert ------------------------------------------------------------------
cli state convert s_hello.pt --dtype fp16 --json >conv.json
check "convert fp16: tensors halve, file >= 40% smaller, default name" \
  "(lambda d: d['out'] == 's_hello.fp16.pt' and d['tensor_bytes_after'] * 2 == d['tensor_bytes_before'] and d['file_bytes_after'] <= 0.6 * d['file_bytes_before'])(j('conv.json'))"
SIZE32=$(stat -c %s s_hello.pt)
SIZE16=$(stat -c %s s_hello.fp16.pt)
((SIZE16 * 10 <= SIZE32 * 6)) && pass "convert fp16: file $SIZE32 -> $SIZE16 bytes" ||
  fail "convert fp16: file $SIZE32 -> $SIZE16 bytes"
cli state inspect s_hello.fp16.pt --json >inspect16.json
check "convert keeps token count and fingerprint" \
  "j('inspect16.json')['token_count'] == 17 and j('inspect16.json')['file_dtype'] == 'fp16' and j('inspect16.json')['model_fingerprint'] == j('inspect.json')['model_fingerprint']"
cli state convert s_hello.fp16.pt --dtype bf16 --out conv_bf16.pt >/dev/null
cli state convert conv_bf16.pt --dtype fp32 >/dev/null
[[ -f conv_bf16.pt && -f conv_bf16.fp32.pt ]] && pass "convert --out and chained conversions" ||
  fail "convert --out / default name"
model eval --prompt " Alice." --state-in conv_bf16.fp32.pt --json >/dev/null &&
  pass "a converted state loads into its model" || fail "converted state does not load"

# --- distance, blend, decay ------------------------------------------------------
cli state distance s_hello.pt s_hello.pt --json >d_same.json
check "distance A A == 0" \
  "j('d_same.json')['total'] == 0 and sorted(j('d_same.json')['components']) == ['att_den','att_num','att_x_prev','ffn_x_prev']"
cli state distance s_hello.pt s_gen.pt --json >d_diff.json
check "distance of different states > 0" \
  "j('d_diff.json')['total'] > 0 and all(v > 0 for v in j('d_diff.json')['components'].values())"
cli state blend s_hello.pt s_gen.pt --alpha 1 --out blend1.pt >/dev/null
cli state distance blend1.pt s_hello.pt --json >d_b1.json
check "blend --alpha 1 returns A" "j('d_b1.json')['total'] <= 1e-9"
cli state blend s_hello.pt s_gen.pt --alpha 0 --out blend0.pt >/dev/null
cli state distance blend0.pt s_gen.pt --json >d_b0.json
check "blend --alpha 0 returns B" "j('d_b0.json')['total'] <= 1e-9"
cli state blend s_hello.pt s_gen.pt --alpha 0.5 --out blendh.pt --state-dtype fp16 >/dev/null
cli state inspect blendh.pt --json >inspect_bh.json
cli state distance blendh.pt s_hello.pt --json >d_bh.json
check "blend --alpha 0.5: in between, token count averaged, fp16" \
  "0 < j('d_bh.json')['total'] < j('d_diff.json')['total'] and j('inspect_bh.json')['token_count'] == 16 and j('inspect_bh.json')['file_dtype'] == 'fp16'"
cli state decay s_hello.pt --factor 1 --out decay1.pt >/dev/null
cli state distance decay1.pt s_hello.pt --json >d_d1.json
check "decay --factor 1 is the identity" "j('d_d1.json')['total'] == 0"
cli state decay s_hello.pt --factor 0.5 --out decayh.pt >/dev/null
cli state distance decayh.pt s_hello.pt --json >d_dh.json
check "decay --factor 0.5 changes only the accumulators" \
  "(lambda c: c['att_num'] > 0 and c['att_den'] > 0 and c['att_x_prev'] == 0 and c['ffn_x_prev'] == 0)(j('d_dh.json')['components'])"

# --- state-size ------------------------------------------------------------------
model state-size --json >size.json
check "state-size: state bytes and KV cache bytes" \
  "(lambda d: d['state_bytes_fp32'] == 10240 and d['state_bytes_fp16'] == 5120 and [r['context_tokens'] for r in d['kv_cache']] == [1024, 8192, 32768] and d['kv_cache'][0]['kv_bytes_fp16'] == 2*4*128*1024*2 and d['kv_cache'][0]['kv_bytes_fp32'] == 2*4*128*1024*4 and abs(d['kv_cache'][0]['kv_to_state_ratio'] - 409.6) < 1e-9)(j('size.json'))"
model state-size >size.txt && grep -q "32k" size.txt && pass "state-size (text)" ||
  fail "state-size (text)"

# --- quantize and bpb (weight dtypes) ---------------------------------------------
cli quantize --model "$MODEL" --out q8.safetensors --json >q8.json
check "quantize: 29 matrices (622592 of 661504 parameters) in int8, fingerprint kept" \
  "(lambda d: d['dtype'] == 'int8' and d['matrices'] == 29 and d['params_converted'] == 622592 and d['params_total'] == 661504 and d['bytes_out'] * 3 < d['bytes_in'] and d['fingerprint'] == j('inspect.json')['model_fingerprint'])(j('q8.json'))"
TEXT="The quick brown fox jumps over the lazy dog. Hello, my name is Alice."
model bpb --prompt "$TEXT" --json >bpb32.json
model bpb --prompt "$TEXT" --dtype int8 --json >bpb8.json
cli bpb --model q8.safetensors --threads 1 --prompt "$TEXT" --json >bpbq8.json
check "bpb: int8 within 1% of fp32, on the same tokens" \
  "(lambda a, b: a['dtype'] == 'fp32' and b['dtype'] == 'int8' and a['tokens'] == b['tokens'] == a['bytes'] and a['bits_per_byte'] > 1 and abs(b['bits_per_byte'] / a['bits_per_byte'] - 1) < 0.01)(j('bpb32.json'), j('bpb8.json'))"
check "bpb: the quantized file runs as int8 (auto) and equals --dtype int8 exactly" \
  "j('bpbq8.json') == j('bpb8.json')"
cli eval --model q8.safetensors --threads 1 --prompt " Alice." --state-in s_hello.pt \
  --json >q8tail.json && pass "the quantized file takes the original's states" ||
  fail "the quantized file takes the original's states"
expect_fail "quantize a quantized file" 1 "already quantized" \
  cli quantize --model q8.safetensors --out q8again.safetensors
expect_fail "bpb of a one-token text" 1 "no text has two tokens" \
  model bpb --prompt "x"

# --- errors ----------------------------------------------------------------------
expect_fail "blend --alpha 1.5" 1 "--alpha must be in [0, 1]" \
  cli state blend s_hello.pt s_gen.pt --alpha 1.5 --out x.pt
expect_fail "decay --factor 0" 1 "--factor must be in (0, 1]" \
  cli state decay s_hello.pt --factor 0 --out x.pt
expect_fail "decay --factor abc" 1 "--factor must be a finite number" \
  cli state decay s_hello.pt --factor abc --out x.pt
expect_fail "inspect a missing file" 1 "missing.pt" cli state inspect missing.pt
expect_fail "eval --state-in a missing file" 1 "missing.pt" \
  model eval --prompt x --state-in missing.pt
head -c 2000 s_hello.pt >truncated.pt
expect_fail "inspect a truncated file" 1 "truncated.pt" cli state inspect truncated.pt
expect_fail "inspect a model file" 1 "not an RWKV state file" cli state inspect "$MODEL"
expect_fail "convert --dtype fp8" 1 "fp8" cli state convert s_hello.pt --dtype fp8
expect_fail "blend with one file (usage)" 2 "blend" \
  cli state blend s_hello.pt --alpha 0.5 --out x.pt
expect_fail "blend without --out (usage)" 2 "--out" \
  cli state blend s_hello.pt s_gen.pt --alpha 0.5
expect_fail "unknown state command (usage)" 2 "frobnicate" cli state frobnicate x
expect_fail "unknown flag (usage)" 2 "--bogus" cli state inspect s_hello.pt --bogus
expect_fail "--state-dtype without --state-out (usage)" 2 "--state-out" \
  model eval --prompt x --state-dtype fp16
expect_fail "--state-out into a missing directory" 1 "no/such/dir" \
  model eval --prompt x --state-out no/such/dir/s.pt
if [[ -f $OTHER ]]; then
  cli eval --model "$OTHER" --threads 1 --prompt "Hello" --state-out s_other.pt >/dev/null 2>&1
  expect_fail "a state of another model is refused" 1 "--ignore-fingerprint" \
    model eval --prompt x --state-in s_other.pt
  model eval --prompt x --state-in s_other.pt --ignore-fingerprint --json >other.json &&
    pass "--ignore-fingerprint loads it" || fail "--ignore-fingerprint"
  expect_fail "blend of states of two models" 1 "different models" \
    cli state blend s_hello.pt s_other.pt --alpha 0.5 --out x.pt
else
  echo "skip - wrong-model checks ($OTHER not found)"
fi
if [[ -f $SHARED/models/state-hello-tiny-rwkv7.pt ]]; then
  expect_fail "an RWKV-7 state into an RWKV-4 model" 1 "rwkv7" \
    model eval --prompt x --state-in "$SHARED/models/state-hello-tiny-rwkv7.pt"
fi

if ((FAILS > 0)); then
  echo "$FAILS check(s) failed"
  exit 1
fi
echo "all rwkv-cli checks passed"
