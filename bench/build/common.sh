# bench/build/common.sh - what run.sh and floor.sh share: the binary, setup and cleanup (the
# sink, the context) and the timer.
# Sourced after bench/lib.sh with TOP and PEERS set; the functions need HERE, WORK, OUT,
# PB_IMG, PEER_HOST and TAG too.

# The berth binary: BERTH_BIN, else the release build, else the debug build.
TARGET_DIR=${CARGO_TARGET_DIR:-$TOP/target}
BERTH=${BERTH_BIN:-$TARGET_DIR/release/berth}
[ -x "$BERTH" ] || BERTH=$TARGET_DIR/debug/berth
[ -x "$BERTH" ] || pb_die "no berth binary (cargo build --release -p berth)"
[ -s "$PB_STATE/bb.tar" ] || pb_die "run $PEERS/setup.sh first"

# Starts the peer dockerd, a berth daemon and the sink, and writes the context to $CTX.
build_bench_setup() {
    pb_start_dockerd
    berth_bench_start_daemon
    build_bench_start_sink
    CTX=$WORK/ctx
    build_bench_context
}

# Stops what build_bench_setup started and removes the peer's images of the run ($TAG).
build_bench_cleanup() {
    [ -z "$sink_pid" ] || kill "$sink_pid" 2>/dev/null || true
    DOCKER_HOST=$PEER_HOST docker rmi -f "$TAG" >/dev/null 2>&1 || true
    DOCKER_HOST=$PEER_HOST docker image prune -f --filter "label=$PB_LABEL" >/dev/null 2>&1 || true
    berth_bench_stop_daemon
    berth_bench_remove_host_network
}

# Starts sink.py on $WORK/sink.sock (sets sink_pid; the caller's cleanup kills it).
build_bench_start_sink() {
    python3 "$HERE/sink.py" "$WORK/sink.sock" 2> "$OUT/sink.log" &
    sink_pid=$!
    for _ in $(seq 100); do [ -S "$WORK/sink.sock" ] && break; sleep 0.1; done
    [ -S "$WORK/sink.sock" ] || pb_die "the sink did not start"
}

# The context in $CTX: 1,000 files of 50 KiB (50 MB, random so nothing compresses or
# dedups), one small file that a measurement changes, and the 10-step Dockerfile.
build_bench_context() {
    mkdir -p "$CTX/data"
    for ((i = 0; i < 1000; i++)); do
        head -c 51200 /dev/urandom > "$CTX/data/f$(printf %04d "$i")"
    done
    echo 0 > "$CTX/data/small.txt"
    cat > "$CTX/Dockerfile" <<DOCKERFILE
ARG BASE=$PB_IMG
FROM \$BASE
ENV APP=/app
WORKDIR /app
RUN echo one > /step1
COPY data/ /app/data/
RUN ls /app/data | wc -l > /count
ENV MODE=bench
RUN cat /app/data/small.txt > /small
CMD ["sh"]
DOCKERFILE
}

# Milliseconds the command takes; its output goes to builds.log, a failure ends the run.
ms() { local t0 t1; t0=$(date +%s%N); "$@" >> "$OUT/builds.log" 2>&1 || { tail -20 "$OUT/builds.log" >&2; pb_die "build failed: $*"; }; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
