#!/usr/bin/env bash
# bench/registry/run.sh - image distribution, berth vs the peers, side by side in one run.
#
# Measures (issue 5, "Push and pull"):
#   1. push then pull of a 5-layer, 200 MB image over loopback:
#      berth daemon -> berth registry   vs   dockerd (peer) -> Debian docker-registry;
#   2. `skopeo copy` of the same image (docker-archive) into berth registry vs docker-registry;
#   3. resident memory of an idle release `berth registry` (and of docker-registry).
# Every iteration starts both registries on fresh roots, so every push uploads every layer
# and every pull (after rmi) downloads every layer. Prints a markdown table of medians.
# Needs root, the peers from ../shared/bench/peers/setup.sh (dockerd), Debian's
# docker-registry, skopeo, python3, and a release build of berth
# (`cargo build --release -p berth`). Knobs: ITERS (default 3), LAYER_MB (default 40).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
PEERS=${PEERS:-$TOP/../shared/bench/peers}
[ -f "$PEERS/common.sh" ] || PEERS=/work/shared/bench/peers
. "$PEERS/common.sh"
ITERS=${ITERS:-3}
LAYER_MB=${LAYER_MB:-40}
BERTH=${BERTH_BIN:-${CARGO_TARGET_DIR:-$TOP/target}/release/berth}
[ -x "$BERTH" ] || pb_die "no berth binary at $BERTH (cargo build --release -p berth)"
command -v docker-registry >/dev/null || pb_die "docker-registry missing (apt-get install docker-registry)"
command -v skopeo >/dev/null || pb_die "skopeo missing"

WORK=$(mktemp -d /tmp/berth-regbench.XXXXXX)
BSOCK=$WORK/docker.sock
BERTH_HOST=unix://$BSOCK
PEER_HOST=$DOCKER_HOST
OUT=$WORK/out; mkdir -p "$OUT"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
BPORT=$(free_port); DPORT=$(free_port)
B_IMG=127.0.0.1:$BPORT/bench/big:1
D_IMG=127.0.0.1:$DPORT/bench/big:1
berth_pid= breg_pid= dreg_pid=
stop_pid() { if [ -n "$1" ]; then kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; fi; }
cleanup() {
    DOCKER_HOST=$PEER_HOST docker rmi -f "$D_IMG" bench-big:1 >/dev/null 2>&1 || true
    stop_pid "$breg_pid"; stop_pid "$dreg_pid"; stop_pid "$berth_pid"
    grep " $WORK/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# The image: a docker-archive with 5 layers of incompressible data, built here.
python3 - "$WORK/big.tar" "$LAYER_MB" <<'PY'
import hashlib, io, json, random, sys, tarfile
out, mb = sys.argv[1], int(sys.argv[2])
rng = random.Random(5)
def tar_of(name, data):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.USTAR_FORMAT) as t:
        i = tarfile.TarInfo(name); i.size = len(data); i.mode = 0o644
        t.addfile(i, io.BytesIO(data))
    return b.getvalue()
layers = [tar_of(f"data/layer{n}", rng.randbytes(mb << 20)) for n in range(5)]
diff_ids = ["sha256:" + hashlib.sha256(l).hexdigest() for l in layers]
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                     "rootfs": {"type": "layers", "diff_ids": diff_ids},
                     "history": [{"created_by": f"layer {n}"} for n in range(5)]},
                    separators=(",", ":")).encode()
cfg_name = hashlib.sha256(config).hexdigest() + ".json"
with tarfile.open(out, "w") as t:
    def add(name, data):
        i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
    add(cfg_name, config)
    names = []
    for n, l in enumerate(layers):
        names.append(f"l{n}/layer.tar"); add(names[-1], l)
    add("manifest.json", json.dumps([{"Config": cfg_name, "RepoTags": ["bench-big:1"],
                                      "Layers": names}]).encode())
PY

pb_start_dockerd
"$BERTH" daemon --root "$WORK/root" --socket "$BSOCK" > "$OUT/berth.log" 2>&1 &
berth_pid=$!
for _ in $(seq 100); do DOCKER_HOST=$BERTH_HOST docker version >/dev/null 2>&1 && break; sleep 0.1; done
DOCKER_HOST=$BERTH_HOST docker version >/dev/null || pb_die "berth daemon did not start (see $OUT/berth.log)"

start_registries() { # $1: iteration
    mkdir -p "$WORK/breg$1" "$WORK/dreg$1"
    "$BERTH" registry --root "$WORK/breg$1" --addr "127.0.0.1:$BPORT" > "$OUT/breg$1.log" 2>&1 &
    breg_pid=$!
    cat > "$WORK/dreg$1.yml" <<YML
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $WORK/dreg$1}
  delete: {enabled: true}
http: {addr: 127.0.0.1:$DPORT}
YML
    docker-registry serve "$WORK/dreg$1.yml" > "$OUT/dreg$1.log" 2>&1 &
    dreg_pid=$!
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$BPORT/v2/" >/dev/null && curl -sf "http://127.0.0.1:$DPORT/v2/" >/dev/null && return 0
        sleep 0.1
    done
    pb_die "registries did not start"
}
stop_registries() { stop_pid "$breg_pid"; stop_pid "$dreg_pid"; breg_pid= dreg_pid=; }
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
load() { DOCKER_HOST=$1 docker load -i "$WORK/big.tar" >/dev/null && DOCKER_HOST=$1 docker tag bench-big:1 "$2"; }
rmi() { DOCKER_HOST=$1 docker rmi -f "$2" bench-big:1 >/dev/null 2>&1 || true; }

for ((k = 1; k <= ITERS; k++)); do
    start_registries "$k"
    if [ "$k" = 1 ]; then
        sleep 2; curl -sf "http://127.0.0.1:$BPORT/v2/" >/dev/null; sleep 1
        echo "$(pb_mem_kib Rss "$breg_pid") $(pb_mem_kib Rss "$dreg_pid")" > "$OUT/idle.txt"
    fi
    load "$BERTH_HOST" "$B_IMG"; load "$PEER_HOST" "$D_IMG"
    echo "$(ms env DOCKER_HOST=$BERTH_HOST docker push "$B_IMG") $(ms env DOCKER_HOST=$PEER_HOST docker push "$D_IMG")" >> "$OUT/push.txt"
    rmi "$BERTH_HOST" "$B_IMG"; rmi "$PEER_HOST" "$D_IMG"
    echo "$(ms env DOCKER_HOST=$BERTH_HOST docker pull "$B_IMG") $(ms env DOCKER_HOST=$PEER_HOST docker pull "$D_IMG")" >> "$OUT/pull.txt"
    rmi "$BERTH_HOST" "$B_IMG"; rmi "$PEER_HOST" "$D_IMG"
    # skopeo's first copy of a round runs measurably slower (1.5x seen) whichever registry it
    # targets, so the order alternates between rounds.
    skopeo_to() { ms skopeo copy -q --dest-tls-verify=false "docker-archive:$WORK/big.tar" "docker://127.0.0.1:$1/skopeo/big:$k"; }
    if ((k % 2)); then b=$(skopeo_to "$BPORT"); p=$(skopeo_to "$DPORT")
    else p=$(skopeo_to "$DPORT"); b=$(skopeo_to "$BPORT"); fi
    echo "$b $p" >> "$OUT/skopeo.txt"
    stop_registries
done

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
col() { cut -d' ' -f"$2" "$OUT/$1.txt" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }
read -r idle_b idle_d < "$OUT/idle.txt"
cat <<TABLE
| measurement (5 layers x $LAYER_MB MiB, loopback) | berth | peer | berth / peer | target |
| --- | --- | --- | --- | --- |
| \`docker push\`, daemon -> registry, median of $ITERS | $(col push 1) ms | $(col push 2) ms | $(ratio "$(col push 1)" "$(col push 2)") | <= 1 |
| \`docker pull\` (after rmi), median of $ITERS | $(col pull 1) ms | $(col pull 2) ms | $(ratio "$(col pull 1)" "$(col pull 2)") | <= 1 |
| \`skopeo copy\` docker-archive -> registry, median of $ITERS | $(col skopeo 1) ms | $(col skopeo 2) ms | $(ratio "$(col skopeo 1)" "$(col skopeo 2)") | <= 1 |
| RSS, idle registry | $((idle_b / 1024)).$(( (idle_b % 1024) * 10 / 1024 )) MiB | $((idle_d / 1024)) MiB | | < 10 MB |
TABLE
echo "(berth daemon + berth registry vs dockerd $(DOCKER_HOST=$PEER_HOST docker version --format '{{.Server.Version}}') + docker-registry $(docker-registry --version 2>/dev/null | awk '{print $NF}'); peer: Debian packages)"
