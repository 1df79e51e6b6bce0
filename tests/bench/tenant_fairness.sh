#!/usr/bin/env bash
# Tenant fairness figure (issue 15): tenant B's inter-token latency p99 with
# one stream alone, then again while tenant A floods the server with 30
# streams; prints both and their ratio (the target: within 2x). Two rwkv-load
# processes with their own API keys, one rwkv-server with an --api-keys file.
#
#   tests/bench/tenant_fairness.sh build/bin/rwkv-server build/bin/rwkv-load \
#       [tiny|169m] [max-batch] [chunk-size]   (FAIRNESS_SECONDS=10: B phase length)
set -euo pipefail
server="$1"
load="$2"
model="${3:-tiny}"
max_batch="${4:-8}"
chunk_size="${5:-32}"
tmp="$(mktemp -d)"
pid=""
trap '[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT

printf '%s tenant-a user\n%s tenant-b user\n' \
  "$(printf 'key-a' | "$server" --hash-key)" \
  "$(printf 'key-b' | "$server" --hash-key)" >"$tmp/keys"
"$server" --random-model "$model" --threads 1 --store memory \
  --listen 127.0.0.1:0 --http-listen "" --max-batch "$max_batch" --chunk-size "$chunk_size" --api-keys "$tmp/keys" \
  >"$tmp/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  grep -q "listening on" "$tmp/server.log" && break
  sleep 0.1
done
addr="$(sed -n 's/.*listening on \([^;]*\);.*/\1/p' "$tmp/server.log")"
[ -n "$addr" ] || { cat "$tmp/server.log"; exit 1; }

b_load() {  # one stream of 32-token turns for $1 seconds, with key $2
  "$load" --server "$addr" --api-key "${2:-key-b}" --streams 1 \
    --tokens-per-stream 32 --duration "$1" --json
}
p99() { python3 -c 'import json,sys; p=json.load(sys.stdin)["phases"][0]; t=p["inter_token_ms"]; print(t["p99"], t["p50"], t["count"], p["errors"], t["mean"], t["max"])'; }

secs="${FAIRNESS_SECONDS:-10}"
read -r alone_p99 alone_p50 alone_n alone_err alone_mean alone_max < <(b_load "$secs" | p99)
nice -n 19 "$load" --server "$addr" --api-key key-a --streams 30 --tokens-per-stream 64 \
  --duration $((2 * secs + 16)) --json >"$tmp/a.json" &
a_pid=$!
sleep 8  # A's 30 streams are decoding
read -r with_p99 with_p50 with_n with_err with_mean with_max < <(b_load "$secs" | p99)
# The same stream as one more of tenant A's: what B would get if turns were
# shared round robin by turn (one tenant), not by tenant.
read -r same_p99 same_p50 same_n same_err same_mean same_max < <(b_load "$secs" key-a | p99)
wait "$a_pid"
read -r a_p99 a_p50 a_n a_err a_mean a_max < <(p99 <"$tmp/a.json")
a_tps="$(python3 -c 'import json; print(round(json.load(open("'"$tmp/a.json"'"))["phases"][0]["tokens_per_second"], 1))')"
echo "model $model, max batch $max_batch, chunk size $chunk_size, one server thread"
echo "tenant B alone:           inter-token p50 ${alone_p50} ms, p99 ${alone_p99} ms, mean ${alone_mean}, max ${alone_max} (n=${alone_n}, errors ${alone_err})"
echo "tenant B beside A's 30:   inter-token p50 ${with_p50} ms, p99 ${with_p99} ms, mean ${with_mean}, max ${with_max} (n=${with_n}, errors ${with_err})"
echo "same stream as A's 31st:  inter-token p50 ${same_p50} ms, p99 ${same_p99} ms (n=${same_n}, errors ${same_err})"
echo "tenant A (30 streams):    inter-token p50 ${a_p50} ms, p99 ${a_p99} ms, ${a_tps} tokens/s (errors ${a_err})"
python3 -c "print('B p99 ratio (with A / alone): %.2f; p50 ratio %.2f; as A\'s 31st stream: p99 ratio %.2f, p50 ratio %.2f' % (${with_p99} / ${alone_p99}, ${with_p50} / ${alone_p50}, ${same_p99} / ${alone_p99}, ${same_p50} / ${alone_p50}))"
