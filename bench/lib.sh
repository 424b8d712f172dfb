# bench/lib.sh - what the benchmarks that run a berth daemon beside the peers share.
# Sourced after ../shared/bench/peers/common.sh (for pb_die, PB_STATE and PB_IMG).

# Refuses to run beside another berth daemon: both would manage the same default bridge.
berth_bench_require_free_bridge() {
    ip link show berth0 >/dev/null 2>&1 && pb_die "another berth daemon owns berth0 on this host"
    return 0
}

# Removes what a berth daemon leaves in the host's namespace on purpose (like docker0): the
# default bridge, its nftables table and the accept rules it put in a foreign FORWARD chain.
berth_bench_remove_host_network() {
    ip link del berth0 2>/dev/null || true
    nft delete table inet berth 2>/dev/null || true
    nft -a list chain ip filter FORWARD 2>/dev/null | awk '/comment "berth"/ {print $NF}' |
        while read -r h; do nft delete rule ip filter FORWARD handle "$h" 2>/dev/null || true; done
}

# Starts "$BERTH" daemon on $WORK/root and $BSOCK (extra arguments are passed on), logging to
# $OUT/berth.log; waits until it answers on $BERTH_HOST and imports the peers' busybox rootfs
# as $PB_IMG. Sets berth_pid.
berth_bench_start_daemon() {
    "$BERTH" daemon --root "$WORK/root" --socket "$BSOCK" "$@" > "$OUT/berth.log" 2>&1 &
    berth_pid=$!
    for _ in $(seq 100); do DOCKER_HOST=$BERTH_HOST docker version >/dev/null 2>&1 && break; sleep 0.1; done
    DOCKER_HOST=$BERTH_HOST docker version >/dev/null || pb_die "berth daemon did not start (see $OUT/berth.log)"
    DOCKER_HOST=$BERTH_HOST docker import --change 'CMD ["/bin/sh"]' "$PB_STATE/bb.tar" "$PB_IMG" >/dev/null
}

# Stops the daemon of berth_bench_start_daemon (SIGTERM: containers are already removed by
# the caller) and deletes $WORK, unmounting what is left below it.
berth_bench_stop_daemon() {
    if [ -n "${berth_pid:-}" ]; then kill -TERM "$berth_pid" 2>/dev/null || true; wait "$berth_pid" 2>/dev/null || true; fi
    grep " $WORK/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$WORK"
}
