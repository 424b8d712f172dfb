#!/usr/bin/env bash
# Store benchmark: creates/s from 8 concurrent clients on SQLite and on etcd through
# berth-store, beside etcd's own put throughput (plain etcd-client puts), LIST of 10,000 keys
# and watch fan-out to 100 watchers. Starts its own etcd (/usr/bin/etcd) in a temp dir.
# Usage: bench/store/run.sh [--runs 5] [--clients 8] [--creates 8000] [--value-size 500] [--no-etcd]
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
exec cargo run --quiet --release -p berth-store --example store_bench -- "$@"
