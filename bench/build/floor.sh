#!/usr/bin/env bash
# bench/build/floor.sh - the floor of a no-change rebuild: how long the docker CLI alone
# takes to send the build benchmark's context (the same 50 MB / 1,000-file context and
# Dockerfile as run.sh) to a server that only reads it (sink.py), beside berth's and the
# peer dockerd's no-change rebuilds of the same context, alternating in one run.
# Prints medians and minimums of ITERS (default 7) rounds and the ratios to dockerd: berth
# cannot beat the sink, so sink / dockerd is the best ratio any server can reach.
# Needs root, the peers from ../shared/bench/peers/setup.sh and a berth binary (BERTH_BIN,
# else the release build, else the debug build).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
PEERS=${PEERS:-$TOP/../shared/bench/peers}
[ -f "$PEERS/common.sh" ] || PEERS=/work/shared/bench/peers
. "$PEERS/common.sh"
. "$TOP/bench/lib.sh"
. "$HERE/common.sh"
ITERS=${ITERS:-7}

WORK=$(mktemp -d /tmp/berth-build-floor.XXXXXX)
BSOCK=$WORK/docker.sock
BERTH_HOST=unix://$BSOCK
PEER_HOST=$DOCKER_HOST
SINK_HOST=unix://$WORK/sink.sock
OUT=$WORK/out; mkdir -p "$OUT"
TAG=bench-floor-$$
berth_pid=
sink_pid=
trap build_bench_cleanup EXIT

build_bench_setup

b() { env DOCKER_HOST="$1" DOCKER_BUILDKIT=0 docker build --label "$PB_LABEL" -t "$TAG" "$CTX"; }
# Fill both caches first.
ms b "$BERTH_HOST" > /dev/null
ms b "$PEER_HOST" > /dev/null
: > "$OUT/builds.log"
loads=()
for ((k = 0; k < ITERS; k++)); do
    echo "$(ms b "$SINK_HOST")" >> "$OUT/sink"
    echo "$(ms b "$BERTH_HOST")" >> "$OUT/berth"
    echo "$(ms b "$PEER_HOST")" >> "$OUT/docker"
    loads+=("$(cut -d' ' -f1 /proc/loadavg)")
done
# Every berth rebuild was a full cache hit (7 cached steps each).
hits=$(grep -c "Using cache" "$OUT/builds.log" || true)
[ "$hits" -ge $((ITERS * 7 * 2)) ] || pb_die "only $hits 'Using cache' lines in $((ITERS * 2)) rebuilds"

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
minimum() { sort -n | head -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }
ds=$(median < "$OUT/docker"); dm=$(minimum < "$OUT/docker")
echo "berth binary: $BERTH; $ITERS rounds; load average after each round: ${loads[*]}"
echo
echo "| no-change rebuild of run.sh's Dockerfile | median | min | median / dockerd median |"
echo "| --- | --- | --- | --- |"
for e in sink berth docker; do
    m=$(median < "$OUT/$e"); n=$(minimum < "$OUT/$e")
    case $e in sink) l="docker CLI to sink.py (reads the context, nothing else)" ;; berth) l="berth" ;; docker) l="dockerd classic builder" ;; esac
    echo "| $l | $m ms | $n ms | $(ratio "$m" "$ds") |"
done
echo
echo "sink.py receive times of the context body (s): $(awk '{print $6}' "$OUT/sink.log" | tr '\n' ' ')"
