#!/usr/bin/env bash
# Builds the rwkv-server image for real and chats through it, on a machine
# without a Docker engine or registry access (slow: run it in the background,
# e.g. `nice -n 19 docker/test_image.sh > /tmp/image.log 2>&1 &`).
#
#   1. debootstrap a Debian 12 minbase root filesystem (needs root, the
#      debootstrap package and a Debian mirror: the one in apt's sources)
#   2. import it into podman as localhost/debian12-minbase
#   3. podman build --isolation=chroot --cgroup-manager=cgroupfs with
#      BASE_IMAGE=localhost/debian12-minbase (a clean copy of the working
#      tree's tracked and untracked, not ignored files is the context)
#   4. buildah run --isolation=chroot starts rwkv-server inside the image
#      with MODEL_FILE empty, so it serves the demo model shipped in the
#      image (host network: loopback reaches it); the image's own rwkv-chat
#      --health (the HEALTHCHECK) and rwkv-chat chat through it (the session
#      must remember a name across two calls, and a session from the
#      image's state-tuned initial state must answer in its style);
#      SIGTERM stops it.
# (`podman run` fails here: setrlimit is not permitted.)
#
# Usage: docker/test_image.sh [--install] [--rebuild-base] [--jobs N]
#   --install       apt-get install debootstrap podman buildah if missing
#   --rebuild-base  debootstrap again even if the base image exists
# Environment: WORK (scratch dir, default /var/tmp/rwkv-image-test),
#   MIRROR (default: the first deb.debian.org-style URI in apt's sources).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=${WORK:-/var/tmp/rwkv-image-test}
BASE=localhost/debian12-minbase
IMAGE=localhost/rwkv-server:test
INSTALL=0 REBUILD_BASE=0 JOBS=2
while (($#)); do
  case "$1" in
    --install) INSTALL=1 ;;
    --rebuild-base) REBUILD_BASE=1 ;;
    --jobs) JOBS=$2; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
step() { echo "=== [$(date -u +%H:%M:%S)] $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || fail "needs root (debootstrap, podman storage)"
missing=()
for tool in debootstrap podman buildah; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  ((INSTALL)) || fail "missing ${missing[*]}; rerun with --install"
  step "apt-get install ${missing[*]}"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    "${missing[@]}" fuse-overlayfs uidmap
fi
mkdir -p "$WORK"
PODMAN=(podman --cgroup-manager=cgroupfs)

# 1-2. Base image.
if ((REBUILD_BASE)) || ! "${PODMAN[@]}" image exists "$BASE"; then
  MIRROR=${MIRROR:-$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?' \
    /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
    grep -v security | head -n1 | awk '{print $2}' || true)}
  MIRROR=${MIRROR:-http://deb.debian.org/debian}
  step "debootstrap --variant=minbase bookworm from $MIRROR"
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "$MIRROR"
  rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
  step "podman import -> $BASE"
  tar -C "$WORK/rootfs" -c . | "${PODMAN[@]}" import - "$BASE"
  rm -rf "$WORK/rootfs"
else
  step "base image $BASE exists"
fi

# 3. Image. The context holds only what git would commit (no build dirs).
step "staging the build context"
rm -rf "$WORK/context"
mkdir -p "$WORK/context"
git -C "$ROOT" ls-files -co --exclude-standard -z |
  grep -zv '^docker/models/' |
  tar -C "$ROOT" --null -T - -c | tar -C "$WORK/context" -x
step "podman build (BUILD_JOBS=$JOBS)"
# --format docker: the OCI format has no HEALTHCHECK.
"${PODMAN[@]}" build --isolation=chroot --format docker \
  --build-arg BASE_IMAGE="$BASE" --build-arg BUILD_JOBS="$JOBS" \
  -f "$WORK/context/docker/Dockerfile" -t "$IMAGE" "$WORK/context"
"${PODMAN[@]}" image inspect "$IMAGE" --format \
  'image {{.Id}}: {{.Size}} bytes, user {{.Config.User}}, entrypoint {{.Config.Entrypoint}}, healthcheck {{.Config.Healthcheck}}, exposed {{.Config.ExposedPorts}}' ||
  true
"${PODMAN[@]}" images

# 4. Run it and chat through it.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 50091)
ADDR=127.0.0.1:$PORT
HTTP_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 50092)
HTTP_ADDR=127.0.0.1:$HTTP_PORT
CTR=$(buildah from "$IMAGE")
# buildah run does not forward SIGTERM (it kills its child and leaves the
# server running), so signal the rwkv-server process itself: the descendant
# of our buildah run with that name.
descendants() {
  local c
  for c in $(ps -o pid= --ppid "$1"); do echo "$c"; descendants "$c"; done
}
find_server() {
  local p
  for p in $(descendants "$1"); do
    if [[ $(ps -o comm= -p "$p" 2>/dev/null) == rwkv-server ]]; then echo "$p"; return; fi
  done
}
SERVER_PID=
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then
    local srv
    srv=$(find_server "$SERVER_PID")
    [[ -n "$srv" ]] && kill -TERM "$srv" 2>/dev/null
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  buildah rm "$CTR" >/dev/null 2>&1 || true
}
trap cleanup EXIT
step "buildah run: rwkv-server (the image's demo model) on $ADDR"
# timeout: a guard so the server never outlives the test.
buildah run --isolation=chroot --env RWKV_LISTEN="$ADDR" \
  --env RWKV_HTTP_LISTEN="$HTTP_ADDR" --env MODEL_FILE= \
  "$CTR" -- timeout -s TERM 600 /usr/local/bin/rwkv-entrypoint \
  --initial-state arr=/usr/local/share/rwkv/models/demo/arr-state.pth \
  --threads 1 >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
in_image() { buildah run --isolation=chroot "$CTR" -- "$@"; }
for _ in $(seq 1 120); do
  if in_image rwkv-chat --server "$ADDR" --health --timeout 2 >/dev/null 2>&1; then break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; fail "rwkv-server exited"; }
  sleep 1
done
cat "$WORK/server.log"
health=$(in_image rwkv-chat --server "$ADDR" --health) || fail "health: $health"
[[ "$health" == SERVING ]] || fail "health says $health"
step "health check inside the image: $health"
in_image id
CHAT=(in_image rwkv-chat)
[[ -x "$ROOT/build-client/bin/rwkv-chat" ]] && CHAT=("$ROOT/build-client/bin/rwkv-chat")
[[ -x "$ROOT/build/bin/rwkv-chat" ]] && CHAT=("$ROOT/build/bin/rwkv-chat")
step "chat through it with ${CHAT[*]}"
"${CHAT[@]}" --server "$ADDR" --session docker --temperature 0 --max-tokens 40 \
  "My name is Alice." || fail "chat turn 1"
reply=$("${CHAT[@]}" --server "$ADDR" --session docker --temperature 0 \
  --max-tokens 40 "What is my name?") || fail "chat turn 2"
echo "$reply"
[[ "$reply" == *Alice* ]] || fail "the session did not remember the name: $reply"
reply=$("${CHAT[@]}" --server "$ADDR" --session docker-arr --initial-state arr \
  --temperature 0 --max-tokens 60 "What is the capital of France?") ||
  fail "chat from the tuned state"
echo "$reply"
[[ "$reply" == *"Paris. Arr!"* ]] || fail "no tuned style: $reply"
printf '/info\n' | "${CHAT[@]}" --server "$ADDR" --session docker || fail "/info"
if command -v curl >/dev/null; then
  step "the HTTP front of the image: /readyz and a chat completion"
  curl -sf "http://$HTTP_ADDR/readyz" || fail "/readyz"
  reply=$(curl -sf "http://$HTTP_ADDR/v1/chat/completions" \
    -d '{"messages":[{"role":"user","content":"What is the capital of France?"}],"temperature":0}') ||
    fail "chat completion"
  echo "$reply"
  [[ "$reply" == *Paris* ]] || fail "no Paris in the HTTP reply: $reply"
fi
SRV=$(find_server "$SERVER_PID")
[[ -n "$SRV" ]] || fail "cannot find the rwkv-server process under buildah run ($SERVER_PID)"
step "SIGTERM to rwkv-server (pid $SRV)"
kill -TERM "$SRV"
rc=0
wait "$SERVER_PID" || rc=$?
SERVER_PID=
tail -n 3 "$WORK/server.log"
echo "server exit status $rc"
[[ $rc == 0 ]] || fail "rwkv-server exited $rc on SIGTERM"
grep -q "received SIGTERM" "$WORK/server.log" || fail "no SIGTERM line in the server log"
echo PASS
