#!/bin/sh
# Container entrypoint: rwkv-server on $RWKV_LISTEN (gRPC, default
# 0.0.0.0:50051) and $RWKV_HTTP_LISTEN (HTTP: OpenAI-compatible API, chat
# page, metrics; default 0.0.0.0:8080, "" turns it off), keeping sessions
# under $RWKV_DATA_DIR (default /data, a volume), with --model
# /models/$MODEL_FILE when MODEL_FILE is set; arguments are extra
# rwkv-server flags. exec: rwkv-server is PID 1 and gets SIGTERM.
set -eu
listen="${RWKV_LISTEN:-0.0.0.0:50051}"
http_listen="${RWKV_HTTP_LISTEN-0.0.0.0:8080}"
data="${RWKV_DATA_DIR:-/data}"
if [ -n "${MODEL_FILE:-}" ]; then
  if [ ! -r "/models/${MODEL_FILE}" ]; then
    echo "rwkv-entrypoint: /models/${MODEL_FILE} is missing or unreadable;" \
         "mount the model directory at /models and set MODEL_FILE" >&2
    exit 2
  fi
  exec rwkv-server --listen "$listen" --http-listen "$http_listen" \
    --data-dir "$data" --model "/models/${MODEL_FILE}" "$@"
fi
exec rwkv-server --listen "$listen" --http-listen "$http_listen" \
  --data-dir "$data" "$@"
