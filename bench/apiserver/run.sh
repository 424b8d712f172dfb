#!/usr/bin/env bash
# API server benchmark through the HTTPS API: ConfigMap creates/s from 8 concurrent clients
# on SQLite and on etcd (beside etcd's own put throughput measured in the same run), an
# unpaginated LIST of 10,000 ConfigMaps, watch fan-out to 100 watchers (p99 delay from the
# write), and the RSS of berth server holding 10,000 ConfigMaps. Starts its own servers and
# etcd (/usr/bin/etcd) in temp dirs on free loopback ports and stops them by PID.
# Usage: bench/apiserver/run.sh [--runs 3] [--clients 8] [--creates 10000] [--watchers 100]
#        [--events 200] [--datastores sqlite,etcd]
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo build --quiet --release -p berth
exec cargo run --quiet --release -p berth-apiserver --example api_bench -- \
    --berth "$CARGO_TARGET_DIR/release/berth" "$@"
