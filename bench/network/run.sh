#!/usr/bin/env bash
# bench/network/run.sh - berth's networking vs the peer dockerd, side by side in one run.
#
# Measures (issue 3, "Container networks, published ports and volumes"):
#   1. wrk -c 32 -d WRK_SECS against a busybox httpd published on 127.0.0.1: through berth's
#      published port (nftables DNAT), through dockerd's (docker-proxy), and the same httpd
#      on the host directly; WRK_ROUNDS rounds, targets interleaved, medians;
#   2. `docker run --rm IMG /bin/true` on the default bridge network (hyperfine, medians);
#   3. 20 x `docker network create` + `docker network rm`, BATCH_ITERS times, medians.
# Prints a markdown table. Needs root, the peers from ../shared/bench/peers/setup.sh
# (dockerd, the peer-bb:1 rootfs) and a release build of berth (`cargo build --release -p
# berth`). The berth daemon manages the host's own namespace here (as in production), so
# its default bridge, its nftables table and its FORWARD accept rules are removed at exit.
# Knobs: RUNS (default 10), WRK_ROUNDS (3), WRK_SECS (10), BATCH_ITERS (3).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
PEERS=${PEERS:-$TOP/../shared/bench/peers}
. "$PEERS/common.sh"
. "$TOP/bench/lib.sh"
RUNS=${RUNS:-10}
WRK_ROUNDS=${WRK_ROUNDS:-3}
WRK_SECS=${WRK_SECS:-10}
BATCH_ITERS=${BATCH_ITERS:-3}
BERTH=${BERTH_BIN:-${CARGO_TARGET_DIR:-$TOP/target}/release/berth}
[ -x "$BERTH" ] || pb_die "no berth binary at $BERTH (cargo build --release -p berth)"
[ -s "$PB_STATE/bb.tar" ] || pb_die "run $PEERS/setup.sh first"
berth_bench_require_free_bridge

WORK=$(mktemp -d /tmp/berth-netbench.XXXXXX)
BSOCK=$WORK/docker.sock
BERTH_HOST=unix://$BSOCK
PEER_HOST=$DOCKER_HOST
OUT=$WORK/out; mkdir -p "$OUT"
P_BERTH=18180 P_DOCKER=18181 P_HOST=18182
berth_pid= host_httpd=
cleanup() {
    DOCKER_HOST=$BERTH_HOST docker rm -f $(DOCKER_HOST=$BERTH_HOST docker ps -aq 2>/dev/null) >/dev/null 2>&1 || true
    for n in $(DOCKER_HOST=$BERTH_HOST docker network ls -q --filter type=custom 2>/dev/null); do
        DOCKER_HOST=$BERTH_HOST docker network rm "$n" >/dev/null 2>&1 || true
    done
    DOCKER_HOST=$PEER_HOST docker rm -f $(DOCKER_HOST=$PEER_HOST docker ps -aq --filter "label=$PB_LABEL" 2>/dev/null) >/dev/null 2>&1 || true
    for n in $(DOCKER_HOST=$PEER_HOST docker network ls -q --filter "label=$PB_LABEL" 2>/dev/null); do
        DOCKER_HOST=$PEER_HOST docker network rm "$n" >/dev/null 2>&1 || true
    done
    [ -n "$host_httpd" ] && { kill "$host_httpd" 2>/dev/null || true; wait "$host_httpd" 2>/dev/null || true; }
    berth_bench_stop_daemon
    berth_bench_remove_host_network
}
trap cleanup EXIT

pb_start_dockerd
berth_bench_start_daemon

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }
wait_http() { for _ in $(seq 100); do busybox wget -qO- "http://127.0.0.1:$1/index.html" >/dev/null 2>&1 && return 0; sleep 0.1; done; pb_die "nothing answers on port $1"; }

# 1. published port throughput
DOCKER_HOST=$BERTH_HOST docker run -d --name bench-web -p "127.0.0.1:$P_BERTH:8080" "$PB_IMG" httpd -f -p 8080 -h /www >/dev/null
DOCKER_HOST=$PEER_HOST docker run -d --label "$PB_LABEL" --name bench-web -p "127.0.0.1:$P_DOCKER:8080" "$PB_IMG" httpd -f -p 8080 -h /www >/dev/null
busybox httpd -f -p "127.0.0.1:$P_HOST" -h "$PB_STATE/rootfs/www" &
host_httpd=$!
for p in $P_BERTH $P_DOCKER $P_HOST; do wait_http "$p"; done
wrk_one() { # name port -> appends "rps latency_ms" to $OUT/wrk-name.txt
    wrk -t2 -c32 -d"${WRK_SECS}s" --timeout 5s "http://127.0.0.1:$2/index.html" > "$OUT/wrk-$1-raw.txt"
    awk '/Requests\/sec/ {rps=$2} /^ +Latency/ {l=$2; if (l ~ /us$/) {sub(/us/,"",l); l/=1000} else if (l ~ /ms$/) {sub(/ms/,"",l)} else if (l ~ /s$/) {sub(/s/,"",l); l*=1000}} END {print rps, l}' \
        "$OUT/wrk-$1-raw.txt" >> "$OUT/wrk-$1.txt"
}
for ((k = 0; k < WRK_ROUNDS; k++)); do
    wrk_one host $P_HOST; wrk_one berth $P_BERTH; wrk_one dockerd $P_DOCKER
done
for t in host berth dockerd; do
    eval "rps_$t=\$(cut -d' ' -f1 $OUT/wrk-$t.txt | median)"
    eval "lat_$t=\$(cut -d' ' -f2 $OUT/wrk-$t.txt | median)"
done
DOCKER_HOST=$BERTH_HOST docker rm -f bench-web >/dev/null
DOCKER_HOST=$PEER_HOST docker rm -f bench-web >/dev/null

# 2. run --rm on the default bridge
hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$OUT/run.json" \
    -n berth "env DOCKER_HOST=$BERTH_HOST docker run --rm $PB_IMG /bin/true" \
    -n dockerd "env DOCKER_HOST=$PEER_HOST docker run --rm $PB_IMG /bin/true" > "$OUT/run.txt"
run_b=$(jq '.results[] | select(.command=="berth") | .median * 1000' "$OUT/run.json")
run_d=$(jq '.results[] | select(.command=="dockerd") | .median * 1000' "$OUT/run.json")

# 3. 20 x network create + rm
nets() { # host [label] -> ms
    local host=$1 t0 t1 i
    t0=$(date +%s%N)
    for ((i = 1; i <= 20; i++)); do DOCKER_HOST=$host docker network create --label "$PB_LABEL" "bench-net-$i" >/dev/null; done
    for ((i = 1; i <= 20; i++)); do DOCKER_HOST=$host docker network rm "bench-net-$i" >/dev/null; done
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000000 ))
}
for ((k = 0; k < BATCH_ITERS; k++)); do
    nets "$BERTH_HOST" >> "$OUT/nets-berth.txt"
    nets "$PEER_HOST" >> "$OUT/nets-dockerd.txt"
done
nets_b=$(median < "$OUT/nets-berth.txt"); nets_d=$(median < "$OUT/nets-dockerd.txt")

cat <<TABLE
| measurement | berth | dockerd | host (direct) | berth / dockerd | berth / host | target |
| --- | --- | --- | --- | --- | --- | --- |
| wrk -c32 ${WRK_SECS}s, req/s, median of $WRK_ROUNDS | $rps_berth | $rps_dockerd | $rps_host | $(ratio "$rps_berth" "$rps_dockerd") | $(ratio "$rps_berth" "$rps_host") | >= 1, >= 0.9 |
| wrk mean latency, ms | $lat_berth | $lat_dockerd | $lat_host | $(ratio "$lat_berth" "$lat_dockerd") | $(ratio "$lat_berth" "$lat_host") | |
| \`docker run --rm IMG /bin/true\` (bridge), median of $RUNS | $(printf '%.1f' "$run_b") ms | $(printf '%.1f' "$run_d") ms | | $(ratio "$run_b" "$run_d") | | <= 0.25 |
| 20 x network create + rm, median of $BATCH_ITERS | $nets_b ms | $nets_d ms | | $(ratio "$nets_b" "$nets_d") | | <= 0.5 |
TABLE
