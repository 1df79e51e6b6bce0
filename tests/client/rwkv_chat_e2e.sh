#!/usr/bin/env bash
# End-to-end test of rwkv-chat (and a short rwkv-load run) against a real
# rwkv-server with the built-in tiny random model on a free loopback port.
#   usage: rwkv_chat_e2e.sh RWKV_SERVER RWKV_CHAT [RWKV_LOAD]
set -u
SERVER=${1:?rwkv-server path}
CHAT=${2:?rwkv-chat path}
LOAD=${3:-}
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- server log"; tail -n 30 "$WORK/server.log"; exit 1; }

# Port 0: the server picks a free port and logs "listening on HOST:PORT".
"$SERVER" --random-model tiny --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --threads 1 --data-dir "$WORK/data" \
  --log-format json >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
ADDR=
for _ in $(seq 1 240); do
  ADDR=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9][0-9]*\).*/\1/p' "$WORK/server.log" | head -n1)
  [[ -n "$ADDR" ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || fail "rwkv-server exited during startup"
  sleep 0.25
done
[[ -n "$ADDR" ]] || fail "rwkv-server did not log its address"
for _ in $(seq 1 60); do
  "$CHAT" --server "$ADDR" --health --timeout 2 >/dev/null 2>&1 && break
  sleep 0.5
done
out=$("$CHAT" --server "$ADDR" --health) || fail "health check: $out"
[[ "$out" == SERVING ]] || fail "health says '$out'"
echo "ok: health SERVING"

C=("$CHAT" --server "$ADDR" --temperature 0 --max-tokens 12)

# One-shot twice on one session: the first creates it, the second continues.
"${C[@]}" --session alice "My name is Alice." >"$WORK/t1" 2>"$WORK/e1" || fail "turn 1: $(cat "$WORK/e1")"
tokens1=$(printf '/info\n' | "${C[@]}" --session alice | awk '$1=="tokens"{print $2}')
"${C[@]}" --session alice "What is my name?" >"$WORK/t2" 2>"$WORK/e2" || fail "turn 2: $(cat "$WORK/e2")"
tokens2=$(printf '/info\n' | "${C[@]}" --session alice | awk '$1=="tokens"{print $2}')
[[ -n "$tokens1" && -n "$tokens2" && "$tokens1" -gt 0 && "$tokens2" -gt "$tokens1" ]] ||
  fail "token counts after turns: '$tokens1' then '$tokens2'"
echo "ok: two one-shot turns on session alice ($tokens1 -> $tokens2 tokens)"

# Greedy is deterministic: the same message on two fresh sessions.
a=$("${C[@]}" --session g1 "Hello") || fail "g1"
b=$("${C[@]}" --session g2 "Hello") || fail "g2"
[[ "$a" == "$b" ]] || fail "greedy replies differ: '$a' vs '$b'"
echo "ok: greedy replies equal"

# Raw Generate.
"${C[@]}" --generate --session raw "The capital of France is" >/dev/null 2>"$WORK/e3" || fail "generate: $(cat "$WORK/e3")"
echo "ok: --generate"

# Scripted REPL: commands and messages from stdin.
printf 'Hi\n/fork carol-2\n/export %s\n/import %s\n/inspect\n/ttl 600\n/reset\n/info\n/quit\n' \
  "$WORK/s.pth" "$WORK/s.pth" | "${C[@]}" --session carol >"$WORK/repl" 2>"$WORK/e4" ||
  fail "scripted REPL: $(cat "$WORK/e4")"
grep -q "forked carol -> carol-2" "$WORK/repl" || fail "no fork line"
grep -q "wrote $WORK/s.pth" "$WORK/repl" || fail "no export line"
[[ -s "$WORK/s.pth" ]] || fail "export wrote no file"
echo "ok: scripted REPL (fork, export, import, inspect, ttl, reset, info)"

# Errors exit 1 and name the gRPC code.
"$CHAT" --server "$ADDR" --max-tokens 100000000 --session alice "x" >/dev/null 2>"$WORK/e5" && fail "huge max_tokens accepted"
grep -q INVALID_ARGUMENT "$WORK/e5" || fail "no INVALID_ARGUMENT in: $(cat "$WORK/e5")"
"$CHAT" --server 127.0.0.1:1 --timeout 5 "x" >/dev/null 2>"$WORK/e6" && fail "dead server accepted"
grep -q UNAVAILABLE "$WORK/e6" || fail "no UNAVAILABLE in: $(cat "$WORK/e6")"
"$CHAT" --bogus >/dev/null 2>&1; [[ $? == 2 ]] || fail "bad flag should exit 2"
echo "ok: errors name their codes"

if [[ -n "$LOAD" ]]; then
  "$LOAD" --server "$ADDR" --compare 1,4 --tokens-per-stream 16 --prompt-tokens 8 \
    --long-prompt-tokens 64 --warmup 2 --json >"$WORK/load.json" 2>"$WORK/e7" ||
    fail "rwkv-load: $(cat "$WORK/e7") $(cat "$WORK/load.json")"
  grep -q '"tokens_per_second_ratio"' "$WORK/load.json" || fail "rwkv-load JSON lacks the ratio"
  echo "ok: rwkv-load --compare 1,4"
fi

kill -TERM "$SERVER_PID"
wait "$SERVER_PID"; rc=$?
SERVER_PID=
[[ $rc == 0 ]] || fail "rwkv-server exited $rc on SIGTERM"
echo "ok: server exits 0 on SIGTERM"

# --log-format json: one request record per call, with its outcome.
python3 - "$WORK/server.log" <<'PY' || fail "request log records"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()]
reqs = [r for r in recs if r["message"] == "request"]
chat = [r for r in reqs if r.get("method") == "Chat" and r.get("session_id") == "alice"]
assert chat, reqs[:5]
ok = chat[0]
assert ok["status"] == "OK" and ok["status_code"] == 0, ok
assert ok["generated_tokens"] > 0 and ok["prompt_tokens"] > 0 and "duration_ms" in ok, ok
assert any(r["method"] == "CreateSession" for r in reqs), reqs[:5]
assert all(r["status"] for r in reqs)
PY
echo "ok: JSON request records"
echo PASS
