# bench/lib.sh - what the benchmarks that run a berth daemon in the host's own network
# namespace share. Sourced after ../shared/bench/peers/common.sh (for pb_die).

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
