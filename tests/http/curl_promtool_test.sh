#!/usr/bin/env bash
# Real tools against the HTTP front (run by with_server.sh): `curl -N` reads
# a chat completion as Server-Sent Events as they come, and Prometheus's own
# `promtool check metrics` validates GET /metrics after traffic on it.
set -u
fail() { echo "FAIL: $*"; exit 1; }
command -v curl >/dev/null || fail "curl is missing (run ./setup.sh)"
command -v promtool >/dev/null || fail "promtool is missing (package prometheus; run ./setup.sh)"
base="$RWKV_HTTP_BASE"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

curl -sSfN "$base/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"model": "rwkv4-demo", "stream": true, "temperature": 0,
       "stream_options": {"include_usage": true},
       "messages": [{"role": "user", "content": "What is the capital of France?"}]}' \
  >"$out" || fail "curl -N failed"
events=$(grep -c '^data: ' "$out")
((events > 5)) || fail "only $events events: $(cat "$out")"
head -n1 "$out" | grep -q '^data: {"choices":\[{"delta":{"content":"","role":"assistant"}' ||
  fail "first event is not the assistant role: $(head -n1 "$out")"
[[ $(grep '^data: ' "$out" | tail -n1) == "data: [DONE]" ]] || fail "the stream does not end with [DONE]"
grep '^data: ' "$out" | tail -n2 | head -n1 | grep -q '"usage":{"completion_tokens"' ||
  fail "no usage chunk before [DONE]"
text=$(grep '^data: {' "$out" | sed -n 's/.*"delta":{"content":"\([^"]*\)"}.*/\1/p' | tr -d '\n')
[[ $text == *Paris* ]] || fail "the streamed reply has no Paris: $text"
echo "curl -N: $events events, reply:$text"

# The stream arrives piece by piece: the first event comes well before the
# last (curl's own timing of the first byte vs the whole transfer).
times=$(curl -sSN -o /dev/null -w '%{time_starttransfer} %{time_total}' \
  "$base/v1/completions" -H 'Content-Type: application/json' \
  -d '{"prompt": "User: Tell me about cats.\n\nAssistant:", "max_tokens": 300,
       "stream": true, "temperature": 0, "stop": []}')
echo "first byte / total: $times s"

# An error is OpenAI's error object with the right code.
code=$(curl -s -o "$out" -w '%{http_code}' "$base/v1/chat/completions" \
  -d '{"messages": [{"role": "user", "content": "hi"}], "n": 3}')
[[ $code == 400 ]] || fail "n=3 gave HTTP $code"
grep -q '"param":"n"' "$out" || fail "the error does not name n: $(cat "$out")"

curl -sSf "$base/metrics" >"$out" || fail "GET /metrics"
promtool check metrics <"$out" || fail "promtool check metrics found problems"
grep -q '^rwkv_turns_finished_total{front="http",reason="stop"}' "$out" ||
  fail "no finished turn in /metrics"
grep -q '^rwkv_time_to_first_token_seconds_bucket{front="http",le="' "$out" ||
  fail "no TTFT histogram"
echo "promtool check metrics: OK ($(grep -c '^rwkv_' "$out") samples)"
echo PASS
