#!/usr/bin/env bash
# rwkv-server as a program: flag errors exit 2, it starts with a random
# model, logs its startup line, and exits 0 on SIGTERM and on SIGINT.
set -u
server="$1"
tmp="$(mktemp -d)"
pid=""
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; cat "$tmp/log" 2>/dev/null; exit 1; }

"$server" --no-such-flag >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown flag must exit 2"
"$server" --model /nonexistent.pth --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --store memory >/dev/null 2>&1; [ $? -eq 1 ] || fail "missing model file must exit 1"
"$server" --model x.pth --random-model tiny >/dev/null 2>&1; [ $? -eq 2 ] || fail "--model with --random-model must exit 2"
"$server" --random-model huge >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad --random-model must exit 2"
"$server" --random-model tiny --max-batch 0 >/dev/null 2>&1; [ $? -eq 2 ] || fail "--max-batch 0 must exit 2"
"$server" --random-model tiny --initial-state broken >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad --initial-state must exit 2"
"$server" --random-model tiny --initial-state x=/nonexistent.pt --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --store memory >/dev/null 2>&1
[ $? -eq 1 ] || fail "missing initial state file must exit 1"
"$server" --random-model tiny --http-listen nonsense >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad --http-listen must exit 2"
"$server" --random-model tiny --http-max-body-bytes 12 >/dev/null 2>&1; [ $? -eq 2 ] || fail "tiny --http-max-body-bytes must exit 2"
"$server" --help | grep -q -- "--max-state-bytes" || fail "--help lists the flags"
"$server" --help | grep -q -- "--api-keys" || fail "--help lists --api-keys"

# --hash-key prints the SHA-256 of the key on stdin (trailing newline dropped).
[ "$(printf 'abc\n' | "$server" --hash-key)" = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" ] || fail "--hash-key"
printf '' | "$server" --hash-key >/dev/null 2>&1; [ $? -eq 2 ] || fail "--hash-key without a key must exit 2"

# Without API keys only loopback addresses are served, unless
# --allow-unauthenticated; a keys file allows any address.
"$server" --random-model tiny --listen 0.0.0.0:0 --http-listen "" --store memory >"$tmp/log" 2>&1
[ $? -eq 1 ] || fail "0.0.0.0 without --api-keys must exit 1"
grep -q -- "--allow-unauthenticated" "$tmp/log" || fail "the refusal names --allow-unauthenticated"
"$server" --random-model tiny --listen 0.0.0.0:0 --http-listen "" --store memory --api-keys /nonexistent/keys >"$tmp/log" 2>&1
[ $? -eq 1 ] || fail "a missing keys file must exit 1"
grep -q "/nonexistent/keys" "$tmp/log" || fail "the missing keys file is named"
printf 'bad line here\n' >"$tmp/keys"
"$server" --random-model tiny --listen 0.0.0.0:0 --http-listen "" --store memory --api-keys "$tmp/keys" >"$tmp/log" 2>&1
[ $? -eq 1 ] || fail "a malformed keys file must exit 1"
grep -q "keys line 1" "$tmp/log" || fail "the malformed line is named"
for mode in "--allow-unauthenticated" "--api-keys $tmp/goodkeys"; do
  printf '%s t user\n' "$(printf 'k' | "$server" --hash-key)" >"$tmp/goodkeys"
  : >"$tmp/log"
  # shellcheck disable=SC2086
  "$server" --random-model tiny --listen 0.0.0.0:0 --http-listen "" --threads 1 --store memory $mode >"$tmp/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    grep -q "listening on" "$tmp/log" && break
    sleep 0.1
  done
  grep -q "listening on 0.0.0.0:" "$tmp/log" || fail "$mode: no listening line"
  kill -TERM "$pid"; wait "$pid"; rc=$?; pid=""
  [ $rc -eq 0 ] || fail "$mode: exit $rc"
done
"$server" --help | grep -q -- "--http-listen.*127.0.0.1:8080" || fail "--help shows --http-listen's default"

# SIGTERM with the HTTP front on a free port; SIGINT with HTTP off.
http_for_TERM=127.0.0.1:0
http_for_INT=""

for sig in TERM INT; do
  # Empty the log first: the child truncates it only once it runs, and the
  # previous run's "listening" line must not be mistaken for this one's.
  : >"$tmp/log"
  http_var="http_for_$sig"
  "$server" --random-model tiny --listen 127.0.0.1:0 --http-listen "${!http_var}" --threads 1 --data-dir "$tmp/data" >"$tmp/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    grep -q "listening on" "$tmp/log" && break
    sleep 0.1
  done
  grep -q "listening on 127.0.0.1:" "$tmp/log" || fail "no listening line"
  grep -q "n_layer=2 n_embd=64 vocab=256" "$tmp/log" || fail "no model line"
  grep -q "state bytes/session=" "$tmp/log" || fail "no state bytes"
  grep -q "threads 1; matmul " "$tmp/log" || fail "no threads/matmul"
  if [ -n "${!http_var}" ]; then
    grep -q "HTTP front on http://127.0.0.1:[0-9]*/" "$tmp/log" || fail "no HTTP line"
  else
    ! grep -q "HTTP front" "$tmp/log" || fail "--http-listen \"\" still started HTTP"
  fi
  kill -"$sig" "$pid"
  wait "$pid"
  rc=$?
  pid=""
  [ $rc -eq 0 ] || fail "SIG$sig: exit $rc, expected 0"
  grep -q "stopped;" "$tmp/log" || fail "no shutdown line"
done
# Without --model it serves the committed demo model (when the tree has it).
demo="$(dirname "$0")/../../models/demo/rwkv4-demo.pth"
if [ -f "$demo" ]; then
  : >"$tmp/log"
  env -u RWKV_MODEL "$server" --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --threads 1 --store memory >"$tmp/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    grep -q "listening on" "$tmp/log" && break
    sleep 0.1
  done
  grep -q "rwkv4-demo.pth: rwkv4 n_layer=4 n_embd=128 vocab=256" "$tmp/log" || fail "no demo model line"
  kill -TERM "$pid"; wait "$pid"; rc=$?; pid=""
  [ $rc -eq 0 ] || fail "demo: exit $rc"
fi
echo "PASS"
