#!/usr/bin/env bash
# Runs a command against a fresh rwkv-server on free loopback ports:
#   with_server.sh RWKV_SERVER [server flags...] -- COMMAND [ARGS...]
# The server serves the committed demo model (models/demo) unless the flags
# say otherwise, with one compute thread and the memory session store. The command sees
# RWKV_HTTP_BASE=http://127.0.0.1:PORT and RWKV_GRPC_ADDR=127.0.0.1:PORT.
# The server is stopped by its pid with SIGTERM afterwards and must exit 0;
# the exit status is the command's (or 1 if the server misbehaved).
set -u
server="$1"
shift
flags=()
while (($#)) && [[ $1 != -- ]]; do flags+=("$1"); shift; done
[[ ${1:-} == -- ]] || { echo "usage: with_server.sh SERVER [flags] -- CMD" >&2; exit 2; }
shift
work="$(mktemp -d)"
pid=""
cleanup() {
  [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
: >"$work/server.log"
OMP_NUM_THREADS=1 "$server" --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
  --threads 1 --store memory ${flags[@]+"${flags[@]}"} >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  grep -q "rwkv-server listening on" "$work/server.log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/server.log"; echo "FAIL: rwkv-server exited"; exit 1; }
  sleep 0.1
done
http=$(sed -n 's|.*HTTP front on http://\([^/]*\)/.*|\1|p' "$work/server.log" | head -n1)
grpc=$(sed -n 's/.*rwkv-server listening on \([0-9.]*:[0-9]*\).*/\1/p' "$work/server.log" | head -n1)
if [[ -z $http || -z $grpc ]]; then
  cat "$work/server.log"
  echo "FAIL: rwkv-server did not log its addresses"
  exit 1
fi
export RWKV_HTTP_BASE="http://$http" RWKV_GRPC_ADDR="$grpc"
"$@"
rc=$?
kill -TERM "$pid"
wait "$pid"
server_rc=$?
pid=""
if ((rc != 0)); then
  echo "--- server log"
  tail -n 20 "$work/server.log"
fi
if ((server_rc != 0)); then
  echo "FAIL: rwkv-server exited $server_rc on SIGTERM"
  exit 1
fi
exit "$rc"
