#!/usr/bin/env bash
# make test-compose: runs the docker compose lab for real and tests it with
# third-party UEs (test/compose/compose_test.go, build tag "compose").
#
# What it sets up (all of it torn down at the end, except the cache):
#   - a network namespace "imscc-dock" standing for the Docker host, with
#     outgoing access through slirp4netns (no change to this machine's
#     addresses, routes, forwarding or iptables; its own port 5060, so
#     concurrent labs and tests on this machine are not disturbed);
#   - its own dockerd (data-root in the cache, socket under /run), started
#     in that namespace and stopped at the end;
#   - a namespace "imscc-ue" standing for another machine on the Docker
#     host's LAN (10.213.1.2, Docker host 10.213.1.1, no route to the
#     compose network): UEs there reach the lab only through the published
#     ports;
#   - local base images (no image registry is reachable): debian:bookworm-slim
#     from debootstrap, and from it stand-ins for the Go build image, the
#     distroless runtime image, postgres:15 and Prometheus
#     (test/compose/images/), each rebuilt only when its recipe or inputs change;
#   - the Compose v2 CLI plugin, built from its Go module.
# Cache (kept between runs, safe to delete): $IMSCORE_COMPOSE_CACHE,
# default /var/cache/imscore-compose. Runs are serialised with a lock there.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${IMSCORE_COMPOSE_CACHE:-/var/cache/imscore-compose}
RUNDIR=/run/imscore-compose
DOCK_NS=imscc-dock
UE_NS=imscc-ue
LAN_HOST=10.213.1.1
LAN_UE=10.213.1.2
COMPOSE_VERSION=v5.6.0
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
export DOCKER_HOST=unix://$RUNDIR/docker.sock
export DOCKER_CONFIG=$CACHE/docker-config
command -v go >/dev/null 2>&1 || export PATH="/usr/local/go/bin:$PATH"

T0=$(date +%s)
step() { echo "test-compose: [$(($(date +%s) - T0))s] $*"; }
die() { echo "test-compose: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (network namespaces, dockerd)"
# Debian's docker.io client (20.10, API 1.41) matches its engine; a newer
# client elsewhere on PATH is not used.
DOCKER=${DOCKER:-/usr/bin/docker}
[ -x "$DOCKER" ] || DOCKER=$(command -v docker || true)
for tool in dockerd "$DOCKER" debootstrap slirp4netns nsenter ip flock sipp baresip go; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (Debian: docker.io debootstrap slirp4netns sip-tester baresip-core iproute2 util-linux)"
done
docker() { "$DOCKER" "$@"; }

mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
if ! flock -n 9; then
  step "waiting for another make test-compose on this machine"
  flock -w 3600 9 || die "lock $CACHE/lock still held after an hour"
fi

# ---- leftovers of an interrupted run (ours: named in our pid files) ----
stop_pidfile() { # pidfile pattern
  local pid
  pid=$(cat "$1" 2>/dev/null || true)
  if [ -n "$pid" ] && grep -qa -- "$2" "/proc/$pid/cmdline" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}
stop_pidfile "$RUNDIR/docker.pid" "$CACHE/docker"
stop_pidfile "$RUNDIR/slirp.pid" slirp4netns
for ns in "$DOCK_NS" "$UE_NS"; do ip netns del "$ns" 2>/dev/null || true; done
rm -rf "$RUNDIR"
mkdir -p "$RUNDIR"

cleanup() {
  local rc=$?
  set +e
  if [ -n "${IMSCORE_COMPOSE_KEEP:-}" ]; then
    step "kept running (IMSCORE_COMPOSE_KEEP): DOCKER_HOST=$DOCKER_HOST DOCKER_CONFIG=$DOCKER_CONFIG $DOCKER compose ...; nsenter --net=/run/netns/$DOCK_NS ..."
    exit $rc
  fi
  if [ -S "$RUNDIR/docker.sock" ] && docker info >/dev/null 2>&1; then
    docker compose --project-directory "$ROOT" -f "$ROOT/docker-compose.yml" \
      --profile multi-scscf --profile monitoring down -v --remove-orphans -t 5 >/dev/null 2>&1
  fi
  stop_pidfile "$RUNDIR/docker.pid" "$CACHE/docker"
  stop_pidfile "$RUNDIR/slirp.pid" slirp4netns
  for ns in "$DOCK_NS" "$UE_NS"; do ip netns del "$ns" 2>/dev/null; done
  [ $rc -eq 0 ] || { echo "---- dockerd log (tail) ----"; tail -n 30 "$RUNDIR/dockerd.log" 2>/dev/null; }
  rm -rf "$RUNDIR"
  step "done (exit $rc)"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- namespaces ----
ip netns add "$DOCK_NS"
ip netns add "$UE_NS"
ip -n "$DOCK_NS" link set lo up
ip -n "$UE_NS" link set lo up
ip link add imscc-lan netns "$DOCK_NS" type veth peer name imscc-ue netns "$UE_NS"
ip -n "$DOCK_NS" addr add "$LAN_HOST/24" dev imscc-lan
ip -n "$DOCK_NS" link set imscc-lan up
ip -n "$UE_NS" addr add "$LAN_UE/24" dev imscc-ue
ip -n "$UE_NS" link set imscc-ue up
slirp4netns --configure --mtu=65520 --disable-host-loopback --netns-type=path \
  "/run/netns/$DOCK_NS" tap0 >"$RUNDIR/slirp.log" 2>&1 9>&- &
echo $! >"$RUNDIR/slirp.pid"
for _ in $(seq 1 50); do ip -n "$DOCK_NS" route show default | grep -q . && break; sleep 0.1; done
ip -n "$DOCK_NS" route show default | grep -q . || die "slirp4netns gave the Docker namespace no route: $(cat "$RUNDIR/slirp.log")"

# ---- dockerd ----
echo '{}' >"$RUNDIR/daemon.json"
nsenter --net="/run/netns/$DOCK_NS" dockerd --config-file "$RUNDIR/daemon.json" \
  --data-root "$CACHE/docker" --exec-root "$RUNDIR/exec" -H "$DOCKER_HOST" \
  --pidfile "$RUNDIR/docker.pid" >"$RUNDIR/dockerd.log" 2>&1 9>&- &
for _ in $(seq 1 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
docker info >/dev/null 2>&1 || die "dockerd did not start: $(tail -n 5 "$RUNDIR/dockerd.log")"
step "dockerd $(docker version -f '{{.Server.Version}}') up in namespace $DOCK_NS"

# ---- base images ----
if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
  if [ ! -s "$CACHE/bookworm-minbase.tar" ]; then
    step "debootstrap --variant=minbase bookworm ($MIRROR)"
    rm -rf "$CACHE/rootfs"
    debootstrap --variant=minbase bookworm "$CACHE/rootfs" "$MIRROR" >"$RUNDIR/debootstrap.log" 2>&1 ||
      die "debootstrap failed: $(tail -n 5 "$RUNDIR/debootstrap.log")"
    rm -rf "$CACHE/rootfs/var/cache/apt/archives/"*.deb "$CACHE/rootfs/var/lib/apt/lists/"*
    tar -C "$CACHE/rootfs" -cf "$CACHE/bookworm-minbase.tar.tmp" .
    mv "$CACHE/bookworm-minbase.tar.tmp" "$CACHE/bookworm-minbase.tar"
    rm -rf "$CACHE/rootfs"
  fi
  docker import "$CACHE/bookworm-minbase.tar" debian:bookworm-slim >/dev/null
  step "imported debian:bookworm-slim"
fi

CA=/etc/ssl/certs/ca-certificates.crt
[ -s "$CA" ] || die "no CA bundle at $CA (Debian: ca-certificates)"
GOROOT=$(go env GOROOT)
GOVER=$(go env GOVERSION)
# standin TAG DIR [GOROOT]: builds DIR (test/compose/images/NAME), with the
# host's CA bundle (and GOROOT as go/) in its context, into TAG unless an
# image with the same recipe and inputs exists.
standin() {
  local tag=$1 dir=$2
  shift 2
  local sum
  sum=$( (cat "$dir"/*; for f in "$@"; do echo "$f"; done; [ "$(basename "$dir")" = golang ] && echo "$GOVER"; sha256sum "$CA") | sha256sum | cut -c1-16)
  if [ "$(docker image inspect -f '{{index .Config.Labels "imscore.standin"}}' "$tag" 2>/dev/null)" = "$sum" ]; then
    return
  fi
  step "building stand-in $tag"
  local ctx=$RUNDIR/ctx-$(basename "$dir")
  rm -rf "$ctx"
  cp -a "$dir" "$ctx"
  cp "$CA" "$ctx/ca-certificates.crt"
  [ $# -eq 0 ] || cp -a "$1" "$ctx/go"
  docker build -q --label "imscore.standin=$sum" -t "$tag" "$ctx" >"$RUNDIR/build-$(basename "$dir").log" 2>&1 ||
    die "building $tag failed: $(tail -n 20 "$RUNDIR/build-$(basename "$dir").log")"
  rm -rf "$ctx"
}
# The images the project's files name.
from_build=$(awk '/^FROM .* AS build/{print $2; exit}' "$ROOT/Dockerfile")
from_run=$(awk '/^FROM /{img=$2} END{print img}' "$ROOT/Dockerfile")
img_pg=$(awk '/image: postgres:/{print $2; exit}' "$ROOT/docker-compose.yml")
img_prom=$(awk '/image: prom\/prometheus:/{print $2; exit}' "$ROOT/docker-compose.yml")
case "$from_build" in
  golang:"$(echo "$GOVER" | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/')"*) ;;
  *) die "the Dockerfile builds with $from_build but this machine's Go is $GOVER: the stand-in would lie" ;;
esac
images=$ROOT/test/compose/images
standin "$from_build" "$images/golang" "$GOROOT"
standin "$from_run" "$images/static"
standin "$img_pg" "$images/postgres"
[ -z "$img_prom" ] || standin "$img_prom" "$images/prometheus"

# ---- Compose v2 CLI plugin from its Go module ----
plugin=$DOCKER_CONFIG/cli-plugins/docker-compose
stamp="$COMPOSE_VERSION $GOVER"
if [ "$(cat "$plugin.stamp" 2>/dev/null)" != "$stamp" ] || [ ! -x "$plugin" ]; then
  step "building the compose plugin github.com/docker/compose/v5/cmd@$COMPOSE_VERSION"
  mkdir -p "$CACHE/compose-src" "$DOCKER_CONFIG/cli-plugins"
  (
    cd "$CACHE/compose-src"
    export GOMODCACHE=$CACHE/gomod GOFLAGS=-mod=mod GOWORK=off
    [ -f go.mod ] || go mod init imscore.test/compose-plugin >/dev/null 2>&1
    # go install refuses the module (exclude directives): go get in a scratch module, then build.
    go get "github.com/docker/compose/v5/cmd@$COMPOSE_VERSION" >"$RUNDIR/compose-get.log" 2>&1 ||
      { tail -n 20 "$RUNDIR/compose-get.log"; exit 1; }
    go build -trimpath -ldflags "-s -w -X github.com/docker/compose/v5/internal.Version=$COMPOSE_VERSION" \
      -o "$plugin" github.com/docker/compose/v5/cmd
  ) || die "building the compose plugin failed"
  echo "$stamp" >"$plugin.stamp"
fi
step "$(docker compose version)"

# ---- the test ----
step "building the test (go test -c -tags compose ./test/compose)"
(cd "$ROOT" && go test -c -tags compose -o "$RUNDIR/compose.test" ./test/compose)
VERSION=${VERSION:-$(cd "$ROOT" && git describe --tags --always --dirty 2>/dev/null || echo dev)}
step "running the compose lab test (image version $VERSION)"
cd "$ROOT/test/compose"
IMSCORE_COMPOSE_TEST=1 IMSCORE_VERSION="$VERSION" COMPOSE_ROOT="$ROOT" COMPOSE_DOCKER="$DOCKER" \
  COMPOSE_UE_NETNS="/run/netns/$UE_NS" COMPOSE_LAN_HOST="$LAN_HOST" COMPOSE_LAN_UE="$LAN_UE" \
  nsenter --net="/run/netns/$DOCK_NS" "$RUNDIR/compose.test" -test.v -test.count=1 -test.timeout 25m ${COMPOSE_TEST_ARGS:-} |
  tee "$RUNDIR/test.log"
rc=${PIPESTATUS[0]}
echo "test-compose: $(grep -c -- '--- PASS' "$RUNDIR/test.log") passed, $(grep -c -- '--- FAIL' "$RUNDIR/test.log") failed"
exit "$rc"
