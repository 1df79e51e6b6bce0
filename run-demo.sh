#!/usr/bin/env bash
# The main job on a fresh machine: starts rwkv-server (the built-in demo model
# unless you pass flags, e.g. --model M.pth --tokenizer T), shows a session
# remembering across two separate chat calls and (with the demo model) a
# session started from a state-tuned initial state, then opens an
# interactive rwkv-chat (when stdin is a terminal). Stops the server on exit.
# The HTTP front (OpenAI-compatible API, chat page) listens on
# 127.0.0.1:${RWKV_DEMO_HTTP_PORT:-8080}.
# Usage: ./run-demo.sh [rwkv-server flags]
set -euo pipefail
cd "$(dirname "$0")"
BIN=build/bin
ADDR=127.0.0.1:${RWKV_DEMO_PORT:-50051}
HTTP_ADDR=127.0.0.1:${RWKV_DEMO_HTTP_PORT:-8080}
LOG=$(mktemp /tmp/rwkv-server.XXXXXX.log)
# The demo model's state-tuned initial state, only when the server will
# serve the demo model (a state file is tied to its model).
extra=()
if [ $# -eq 0 ] && [ -z "${RWKV_MODEL:-}" ] && [ -f models/demo/arr-state.pth ]; then
  extra=(--initial-state arr=models/demo/arr-state.pth)
fi
"$BIN/rwkv-server" --listen "$ADDR" --http-listen "$HTTP_ADDR" ${extra[@]+"${extra[@]}"} "$@" >"$LOG" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  if "$BIN/rwkv-chat" --server "$ADDR" --health >/dev/null 2>&1; then break; fi
  if ! kill -0 $server 2>/dev/null; then cat "$LOG"; exit 1; fi
  sleep 0.2
done
cat "$LOG"
say() { echo "> $2"; "$BIN/rwkv-chat" --server "$ADDR" --session "$1" --temperature 0 "$2"; }
session="demo-$$"
say "$session" "My name is Alice."
say "$session" "What is the capital of France?"
say "$session" "What is my name?"
if [ ${#extra[@]} -gt 0 ]; then
  echo "--- a new session started from the state-tuned initial state 'arr'"
  echo "    (models/demo/arr-state.pth, learned by rwkv-train state-tune):"
  echo "> What is the capital of France?"
  "$BIN/rwkv-chat" --server "$ADDR" --session "arr-$$" --initial-state arr \
    --temperature 0 "What is the capital of France?"
fi
echo "--- the same server speaks the OpenAI API over HTTP (a resent history"
echo "    costs only its new message: see usage.prompt_tokens_details):"
curl -s "http://$HTTP_ADDR/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"messages": [{"role": "user", "content": "What is the capital of Italy?"}], "temperature": 0}' \
  || echo "(curl is not installed)"
echo
if [ -t 0 ]; then
  echo "--- chat page: http://$HTTP_ADDR/   metrics: http://$HTTP_ADDR/metrics"
  echo "--- interactive session '$session' (/help for commands, /quit to leave)"
  "$BIN/rwkv-chat" --server "$ADDR" --session "$session"
fi
