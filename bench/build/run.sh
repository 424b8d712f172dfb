#!/usr/bin/env bash
# bench/build/run.sh - image builds: berth vs the peer dockerd's classic builder vs
# `podman build`, side by side in one run.
#
# Measures (issue "Build images from Dockerfiles"), for a 10-step Dockerfile (ARG, FROM,
# ENV x2, WORKDIR, COPY of 50 MB in 1,000 files, RUN x3, CMD):
#   1. first build (--no-cache);
#   2. rebuild with nothing changed;
#   3. rebuild after changing one small copied file.
# Beside 2., the floor of any server: the docker CLI sending the same context to sink.py,
# which reads it and answers a finished build (see floor.sh).
# Each is the median of ITERS (default 3) rounds; the engines alternate within a round.
# Prints a markdown table. Needs root, the peers from ../shared/bench/peers/setup.sh
# (dockerd, podman, the peer-bb:1 image and rootfs tar) and a berth binary (BERTH_BIN, else
# the release build, else the debug build; the table says which). podman builds with
# --network host (berth RUN steps use the host network too; podman's netavark setup is
# unreliable on this machine).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
PEERS=${PEERS:-$TOP/../shared/bench/peers}
[ -f "$PEERS/common.sh" ] || PEERS=/work/shared/bench/peers
. "$PEERS/common.sh"
. "$TOP/bench/lib.sh"
. "$HERE/common.sh"
ITERS=${ITERS:-3}
command -v podman >/dev/null || pb_die "podman is not installed (run $PEERS/setup.sh)"

WORK=$(mktemp -d /tmp/berth-build-bench.XXXXXX)
BSOCK=$WORK/docker.sock
BERTH_HOST=unix://$BSOCK
PEER_HOST=$DOCKER_HOST
OUT=$WORK/out; mkdir -p "$OUT"
TAG=bench-build-$$
berth_pid=
sink_pid=
cleanup() {
    podman rmi -f "localhost/$TAG" >/dev/null 2>&1 || true
    podman image prune -f --filter "label=$PB_LABEL" >/dev/null 2>&1 || true
    build_bench_cleanup
}
trap cleanup EXIT

build_bench_setup

b_berth() { env DOCKER_HOST=$BERTH_HOST DOCKER_BUILDKIT=0 docker build --label "$PB_LABEL" -t "$TAG" "$@" "$CTX"; }
b_docker() { env DOCKER_HOST=$PEER_HOST DOCKER_BUILDKIT=0 docker build --label "$PB_LABEL" -t "$TAG" "$@" "$CTX"; }
b_sink() { env DOCKER_HOST="unix://$WORK/sink.sock" DOCKER_BUILDKIT=0 docker build --label "$PB_LABEL" -t "$TAG" "$@" "$CTX"; }
b_podman() { podman build --layers --network host --label "$PB_LABEL" --build-arg "BASE=$PB_PIMG" -t "$TAG" "$@" "$CTX"; }

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
for ((k = 0; k < ITERS; k++)); do
    for e in berth docker podman; do
        echo "$(ms "b_$e" --no-cache)" >> "$OUT/first-$e"
    done
    for e in sink berth docker podman; do
        echo "$(ms "b_$e")" >> "$OUT/same-$e"
    done
    echo "$k$RANDOM" > "$CTX/data/small.txt"
    for e in berth docker podman; do
        echo "$(ms "b_$e")" >> "$OUT/changed-$e"
    done
done
# Sanity: the cached rebuilds really were cached in berth, and the image works.
DOCKER_HOST=$BERTH_HOST docker run --rm "$TAG" cat /count | grep -q 1001 || pb_die "berth image lacks the copied files"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }
row() { # label file-prefix target
    local b d p
    b=$(median < "$OUT/$2-berth"); d=$(median < "$OUT/$2-docker"); p=$(median < "$OUT/$2-podman")
    echo "| $1 | $b ms | $d ms | $p ms | $(ratio "$b" "$d") | $3 |"
}
echo "berth binary: $BERTH; $ITERS rounds, medians; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| build of the 10-step Dockerfile (50 MB / 1,000-file COPY) | berth | dockerd classic | podman build | berth / dockerd | target |"
echo "| --- | --- | --- | --- | --- | --- |"
row "first build (--no-cache)" first "<= 1"
row "rebuild, nothing changed" same "<= 0.25"
s=$(median < "$OUT/same-sink"); d=$(median < "$OUT/same-docker")
echo "| rebuild, nothing changed: the docker CLI alone to sink.py (floor) | $s ms | | | $(ratio "$s" "$d") | |"
row "rebuild, one small copied file changed" changed "<= 0.5"
