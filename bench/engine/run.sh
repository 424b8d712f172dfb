#!/usr/bin/env bash
# bench/engine/run.sh - berth daemon vs the peer dockerd, side by side in one run.
#
# Measures (issue "Run containers from local images"):
#   1. `docker run --rm IMG /bin/true` wall time (hyperfine, medians), berth vs dockerd;
#   2. 20 x `docker run -d IMG sleep 1000` then `docker rm -f` of the 20, berth vs dockerd;
#   3. resident memory: idle berth daemon; berth's processes with 10 running containers vs
#      dockerd + containerd + shims with the same 10.
# Prints a markdown table with medians and ratios. Needs root, the peers from
# ../shared/bench/peers/setup.sh (dockerd, the peer-bb:1 rootfs tar) and a release build of
# berth (`cargo build --release -p berth`). Knobs: RUNS (default 20), BATCH_ITERS (5),
# BERTH_NETNS (a network namespace file: berth keeps its bridge and rules there instead of
# the host's namespace, e.g. while another berth daemon owns berth0).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
PEERS=${PEERS:-$TOP/../shared/bench/peers}
. "$PEERS/common.sh"
. "$TOP/bench/lib.sh"
RUNS=${RUNS:-20}
BATCH_ITERS=${BATCH_ITERS:-5}
BERTH=${BERTH_BIN:-${CARGO_TARGET_DIR:-$TOP/target}/release/berth}
[ -x "$BERTH" ] || pb_die "no berth binary at $BERTH (cargo build --release -p berth)"
[ -s "$PB_STATE/bb.tar" ] || pb_die "run $PEERS/setup.sh first"

BERTH_NET_ARGS=()
if [ -n "${BERTH_NETNS:-}" ]; then
    BERTH_NET_ARGS=(--network-namespace "$BERTH_NETNS")
else
    berth_bench_require_free_bridge
fi
WORK=$(mktemp -d /tmp/berth-bench.XXXXXX)
BSOCK=$WORK/docker.sock
BERTH_HOST=unix://$BSOCK
PEER_HOST=$DOCKER_HOST
OUT=$WORK/out; mkdir -p "$OUT"
berth_pid=
cleanup() {
    DOCKER_HOST=$BERTH_HOST docker rm -f $(DOCKER_HOST=$BERTH_HOST docker ps -aq 2>/dev/null) >/dev/null 2>&1 || true
    DOCKER_HOST=$PEER_HOST docker rm -f $(DOCKER_HOST=$PEER_HOST docker ps -aq --filter "label=$PB_LABEL" 2>/dev/null) >/dev/null 2>&1 || true
    berth_bench_stop_daemon
    [ -n "${BERTH_NETNS:-}" ] || berth_bench_remove_host_network
}
trap cleanup EXIT

pb_start_dockerd
berth_bench_start_daemon "${BERTH_NET_ARGS[@]}"

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
rss_kib() { local s=0 p v; for p in "$@"; do v=$(awk '/^Rss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null); s=$((s + ${v:-0})); done; echo $s; }
berth_pids() {   # the daemon and every shim started from this root
    echo "$berth_pid"
    local p
    for p in /proc/[0-9]*; do
        tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -q "^$BERTH shim" && echo "${p#/proc/}"
    done
    return 0
}

# 1. latency of run --rm /bin/true
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$OUT/latency.json" \
    -n berth "env DOCKER_HOST=$BERTH_HOST docker run --rm $PB_IMG /bin/true" \
    -n dockerd "env DOCKER_HOST=$PEER_HOST docker run --rm $PB_IMG /bin/true" > "$OUT/latency.txt"
lat_b=$(jq '.results[] | select(.command=="berth") | .median * 1000' "$OUT/latency.json")
lat_d=$(jq '.results[] | select(.command=="dockerd") | .median * 1000' "$OUT/latency.json")

# 2. 20 x run -d, then rm -f, alternating engines
batch() { # host -> "create_ms remove_ms"
    local host=$1 t0 t1 t2 i
    t0=$(date +%s%N)
    for ((i = 1; i <= 20; i++)); do DOCKER_HOST=$host docker run -d --label "$PB_LABEL" --name "bb-batch-$i" "$PB_IMG" sleep 1000 >/dev/null; done
    t1=$(date +%s%N)
    for ((i = 1; i <= 20; i++)); do DOCKER_HOST=$host docker rm -f "bb-batch-$i" >/dev/null; done
    t2=$(date +%s%N)
    echo "$(( (t1 - t0) / 1000000 )) $(( (t2 - t1) / 1000000 ))"
}
for ((k = 0; k < BATCH_ITERS; k++)); do
    batch "$BERTH_HOST" >> "$OUT/batch-berth.txt"
    batch "$PEER_HOST" >> "$OUT/batch-dockerd.txt"
done
bc_b=$(cut -d' ' -f1 "$OUT/batch-berth.txt" | median); br_b=$(cut -d' ' -f2 "$OUT/batch-berth.txt" | median)
bc_d=$(cut -d' ' -f1 "$OUT/batch-dockerd.txt" | median); br_d=$(cut -d' ' -f2 "$OUT/batch-dockerd.txt" | median)

# 3. memory: idle, then 10 running containers in each engine
sleep 2
idle_d=$(rss_kib "$berth_pid")
idle_b=$(rss_kib $(berth_pids))   # the daemon and its standby shim
for ((i = 1; i <= 10; i++)); do
    DOCKER_HOST=$BERTH_HOST docker run -d --label "$PB_LABEL" --name "bb-mem-$i" "$PB_IMG" sleep 1000 >/dev/null
    DOCKER_HOST=$PEER_HOST docker run -d --label "$PB_LABEL" --name "bb-mem-$i" "$PB_IMG" sleep 1000 >/dev/null
done
sleep 5
mem10_b=$(rss_kib $(berth_pids))
mem10_d=$(rss_kib $(pb_docker_pids))

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }
cat <<TABLE
| measurement | berth | dockerd | berth / dockerd | target |
| --- | --- | --- | --- | --- |
| \`docker run --rm IMG /bin/true\`, median of $RUNS | $(printf '%.1f' "$lat_b") ms | $(printf '%.1f' "$lat_d") ms | $(ratio "$lat_b" "$lat_d") | <= 0.2, berth < 50 ms |
| 20 x \`run -d\`, median of $BATCH_ITERS | $bc_b ms | $bc_d ms | $(ratio "$bc_b" "$bc_d") | <= 0.3 |
| 20 x \`rm -f\`, median of $BATCH_ITERS | $br_b ms | $br_d ms | $(ratio "$br_b" "$br_d") | <= 0.3 |
| RSS, idle daemon (with its standby shim) | $((idle_d / 1024)) MiB ($((idle_b / 1024)) MiB) | | | < 15 MiB |
| RSS, all engine processes with 10 running containers | $((mem10_b / 1024)) MiB | $((mem10_d / 1024)) MiB | $(ratio "$mem10_b" "$mem10_d") | < 0.333 |
TABLE
