#!/usr/bin/env bash
# rwkv-server's flag sources, tried on the real program: --help lists every
# flag with its default and environment variable; values from a --config
# file (TOML) and from RWKV_* variables are applied; the command line beats
# the environment, which beats the config file, which beats the default; a
# config key that names no flag is an error naming the key; --log-format json
# writes one JSON object per line.
#   usage: rwkv_server_flags_test.sh path/to/rwkv-server
set -u
server="$1"
tmp="$(mktemp -d)"
pid=""
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/log "$tmp"/err; do [ -f "$f" ] && cat "$f"; done; exit 1; }
# Every RWKV_* variable a caller may have set would change what is tested.
for v in $(env | sed -n 's/^\(RWKV_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
export OMP_NUM_THREADS=1
# Sessions in memory: no ./rwkv-data directory is created (and this is a
# variable every server below reads).
export RWKV_STORE=memory
# HTTP on a free port (the default 8080 may be taken on this machine).
export RWKV_HTTP_LISTEN=127.0.0.1:0

# start_server ARGS...: runs the server with a tiny random model until its
# "listening" line, stops it with SIGTERM and leaves its stderr in $tmp/log.
start_server() {
  # Empty the log first: the child truncates it only once it runs, and the
  # previous server's "listening" line must not be mistaken for this one's.
  : >"$tmp/log"
  "$server" "$@" >"$tmp/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    grep -q "listening on" "$tmp/log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  grep -q "listening on" "$tmp/log" || fail "server did not start: $*"
  kill -TERM "$pid"
  wait "$pid"
  local rc=$?
  pid=""
  [ $rc -eq 0 ] || fail "exit $rc after SIGTERM"
}
expect_line() { grep -qF -- "$1" "$tmp/log" || fail "expected '$1' in the log"; }

# --- --help: every flag, its default and its variable ----------------------
"$server" --help >"$tmp/help" 2>&1 || fail "--help must exit 0"
for want in "--max-batch N:in [1, 4096]=32 (Env:RWKV_MAX_BATCH)" \
            "--chunk-size N:in [1, 1048576]=32" \
            "--ttl SECONDS:in [1, 315360000]=3600 (Env:RWKV_TTL)" \
            "--prefix-cache-bytes BYTES:N[K|M|G]=256M" \
            "--listen HOST:PORT=127.0.0.1:50051 (Env:RWKV_LISTEN)" \
            "--chat-template TEMPLATE=User: {message}\n\nAssistant:" \
            "--log-format text|json=text (Env:RWKV_LOG_FORMAT)" \
            "--config FILE (Env:RWKV_CONFIG)" \
            "--store rocksdb|memory=rocksdb (Env:RWKV_STORE)" \
            "--max-disk-bytes BYTES:N[K|M|G]=0 (Env:RWKV_MAX_DISK_BYTES)" \
            "Precedence: command line, then environment, then config file"; do
  grep -qF -- "$want" "$tmp/help" || fail "--help lacks '$want'"
done

tiny=(--random-model tiny --threads 1)

# --- a config file ----------------------------------------------------------
cat >"$tmp/server.toml" <<'TOML'
# rwkv-server settings (keys are the flag names)
listen = "127.0.0.1:0"
max-batch = 7
chunk_size = 9
ttl = 120
max-sessions = 11
max-state-bytes = "1M"
prefix-cache-bytes = "2M"
TOML
start_server "${tiny[@]}" --config "$tmp/server.toml"
expect_line "max batch 7, chunk 9, ttl 120 s, max sessions 11, store memory, max state bytes 1048576, prefix cache bytes 2097152"

# --- environment variables --------------------------------------------------
RWKV_LISTEN=127.0.0.1:0 RWKV_MAX_BATCH=5 RWKV_CHUNK_SIZE=6 RWKV_TTL=60 \
  RWKV_MAX_SESSIONS=12 RWKV_MAX_STATE_BYTES=3K RWKV_PREFIX_CACHE_BYTES=0 \
  RWKV_RANDOM_MODEL=tiny RWKV_THREADS=1 start_server
expect_line "model random:tiny"
expect_line "threads 1;"
expect_line "max batch 5, chunk 6, ttl 60 s, max sessions 12, store memory, max state bytes 3072, prefix cache bytes 0"

# --- precedence: command line > environment > config file > default ---------
# (the config file comes from RWKV_CONFIG here)
RWKV_CONFIG="$tmp/server.toml" RWKV_MAX_BATCH=5 RWKV_TTL=60 \
  start_server "${tiny[@]}" --max-batch 3
# max batch: command line; ttl: environment; chunk, sessions: config file.
expect_line "max batch 3, chunk 9, ttl 60 s, max sessions 11, store memory"
# Without the file, the default.
RWKV_MAX_BATCH=5 start_server "${tiny[@]}" --listen 127.0.0.1:0
expect_line "max batch 5, chunk 32, ttl 3600 s, max sessions 10000"

# --- errors: exit 2 and a message that names the problem --------------------
expect_usage_error() {  # PATTERN CMD...
  local pattern=$1
  shift
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  [ $rc -eq 2 ] || fail "exit $rc (wanted 2) for: $*"
  grep -qF -- "$pattern" "$tmp/err" || fail "no '$pattern' in the error of: $*"
}
printf 'max-batch = 4\nbogus_key = 1\n' >"$tmp/bad.toml"
expect_usage_error "unknown key 'bogus_key'" "$server" "${tiny[@]}" --config "$tmp/bad.toml"
expect_usage_error "$tmp/bad.toml" "$server" "${tiny[@]}" --config "$tmp/bad.toml"
printf '[serving]\nmax-batch = 4\n' >"$tmp/section.toml"
expect_usage_error "unknown section [serving]" "$server" "${tiny[@]}" --config "$tmp/section.toml"
expect_usage_error "/no/such/file.toml" "$server" "${tiny[@]}" --config /no/such/file.toml
RWKV_CONFIG=/no/such/file.toml expect_usage_error "(from RWKV_CONFIG)" "$server" "${tiny[@]}"
printf 'max-batch = 0\n' >"$tmp/zero.toml"
expect_usage_error "--max-batch must be an integer in [1, 4096], got '0' (from the config file)" \
  "$server" "${tiny[@]}" --config "$tmp/zero.toml"
RWKV_MAX_BATCH=many expect_usage_error "--max-batch must be an integer in [1, 4096], got 'many' (from RWKV_MAX_BATCH)" \
  "$server" "${tiny[@]}"
expect_usage_error "--max-state-bytes must be a byte count like 512M, got '12Q'" \
  "$server" "${tiny[@]}" --max-state-bytes 12Q
expect_usage_error "--log-format must be one of text|json, got 'xml'" \
  "$server" "${tiny[@]}" --log-format xml
expect_usage_error "--default-max-tokens must be at most --max-tokens-limit (100)" \
  "$server" "${tiny[@]}" --max-tokens-limit 100 --default-max-tokens 200
expect_usage_error "--max-batch given more than once" \
  "$server" "${tiny[@]}" --max-batch 2 --max-batch=3
# --list-sessions is an action: not a config key, and no variable.
printf 'list-sessions = true\n' >"$tmp/list.toml"
expect_usage_error "list-sessions" "$server" "${tiny[@]}" --config "$tmp/list.toml"
RWKV_LIST_SESSIONS=1 start_server "${tiny[@]}" --listen 127.0.0.1:0
expect_line "listening on"
# The store flags from a config file: a RocksDB store in a directory of ours.
printf 'store = "rocksdb"\ndata-dir = "%s"\nstore-dtype = "fp16"\n' "$tmp/data" >"$tmp/store.toml"
env -u RWKV_STORE "$server" "${tiny[@]}" --listen 127.0.0.1:0 --config "$tmp/store.toml" >"$tmp/log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do grep -q "listening on" "$tmp/log" && break; sleep 0.1; done
kill -TERM "$pid"; wait "$pid"; pid=""
expect_line "store rocksdb:$tmp/data"
[ -d "$tmp/data" ] || fail "no RocksDB directory at --data-dir from the config file"
expect_usage_error "--store-dtype must be fp32, fp16 or bf16, got 'fp8'" \
  "$server" "${tiny[@]}" --store-dtype fp8
# RWKV_INITIAL_STATE may list several entries: the first missing file is
# named on its own (exit 1: the flags were fine, the file is not).
RWKV_INITIAL_STATE="a=$tmp/missing-a.pth,b=$tmp/missing-b.pth" \
  "$server" "${tiny[@]}" --listen 127.0.0.1:0 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] || fail "missing initial state: exit $rc"
grep -qF -- "--initial-state a=$tmp/missing-a.pth:" "$tmp/err" || fail "RWKV_INITIAL_STATE entries not split"
# $RWKV_MODEL is a default: --random-model replaces it without a conflict.
RWKV_MODEL=/no/such/model.pth start_server "${tiny[@]}" --listen 127.0.0.1:0
expect_line "model random:tiny"

# --- --log-format json --------------------------------------------------------
RWKV_LISTEN=127.0.0.1:0 start_server "${tiny[@]}" --log-format json
python3 - "$tmp/log" <<'PY' || fail "json log lines"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) >= 4, lines
for line in lines:
    rec = json.loads(line)
    assert list(rec)[:3] == ["time", "level", "message"], rec
    assert rec["level"] == "info", rec
    assert rec["time"].endswith("Z") and len(rec["time"]) == 24, rec
assert any(json.loads(l)["message"].startswith("rwkv-server listening on 127.0.0.1:") for l in lines)
assert any(json.loads(l)["message"].startswith("stopped;") for l in lines)
PY
# A fatal error after the flags were read is a JSON line too.
"$server" --model /no/such/model.pth --log-format json --listen 127.0.0.1:0 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] || fail "missing model: exit $rc"
python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).read().splitlines()[-1]); assert r["level"]=="error" and "/no/such/model.pth" in r["message"], r' "$tmp/err" ||
  fail "the missing-model error is not a JSON error line"
echo "PASS"
