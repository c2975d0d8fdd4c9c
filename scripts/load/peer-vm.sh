#!/usr/bin/env bash
# The remote_write peer, measured with the same generator as killkrill (see
# docs/src/benchmarks/load.md): VictoriaMetrics single-node (Debian package
# `victoria-metrics`, 1.79 on bookworm, the version the goal names), fed by
# `killkrill loadgen --mode remote-write` exactly as scripts/load/bench.sh
# feeds `killkrill serve` (4 connections, 1,000 samples per request):
#   - vm-direct: loadgen -> VictoriaMetrics /api/v1/write;
#   - vm-vmagent: loadgen -> vmagent -> VictoriaMetrics (vmagent buffers
#     on disk and forwards in blocks of up to 10,000 samples).
# The stored count is read back from VictoriaMetrics (count_over_time of the
# run's series) once it stops growing; stored/s is that count over the time
# from the start of the load until the count was last seen to grow.
#
# usage: scripts/load/peer-vm.sh [KILLKRILL_BINARY] [SECONDS] [OUTDIR]
# Installs the package with apt-get when it is missing.
set -u
BIN=${1:-${CARGO_TARGET_DIR:-target}/release/killkrill}
SECS=${2:-20}
OUT=${3:-$(mktemp -d /tmp/kk-peer-vm.XXXXXX)}
CONNS=${CONNS:-4}
BATCH=${BATCH:-1000}
SERIES=${SERIES:-100}
LABELS=${LABELS:-0}
mkdir -p "$OUT"
if ! command -v victoria-metrics >/dev/null || ! command -v vmagent >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq victoria-metrics >/dev/null
fi
VM_PORT=$((20000 + RANDOM % 20000))
AG_PORT=$((VM_PORT + 1))

. "$(dirname "$0")/peer-common.sh"

# Samples of run $1 stored in VictoriaMetrics.
stored() {
    curl -s "http://127.0.0.1:$VM_PORT/api/v1/query" \
        --data-urlencode nocache=1 --data-urlencode "query=sum(count_over_time(loadgen_seq{lg_run=\"$1\"}[2h]))" |
        python3 -c 'import json,sys
try:
    r = json.load(sys.stdin)["data"]["result"]
    print(int(float(r[0]["value"][1])) if r else 0)
except Exception:
    print(-1)'
}

# What run $run has stored, after VictoriaMetrics flushed what it buffers.
vm_count() {
    curl -s "http://127.0.0.1:$VM_PORT/internal/force_flush" >/dev/null
    stored "$run"
}

rm -rf "$OUT/vm-data" "$OUT/vmagent-data"
victoria-metrics -storageDataPath "$OUT/vm-data" -httpListenAddr "127.0.0.1:$VM_PORT" \
    -loggerLevel ERROR >"$OUT/vm.log" 2>&1 &
VM_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$VM_PORT/health" >/dev/null && break; sleep 0.1; done

for setup in vm-direct vm-vmagent; do
    target=127.0.0.1:$VM_PORT
    pids=$VM_PID
    if [ "$setup" = vm-vmagent ]; then
        vmagent -httpListenAddr "127.0.0.1:$AG_PORT" -loggerLevel ERROR \
            -remoteWrite.url "http://127.0.0.1:$VM_PORT/api/v1/write" \
            -remoteWrite.tmpDataPath "$OUT/vmagent-data" >"$OUT/vmagent.log" 2>&1 &
        AG_PID=$!
        for _ in $(seq 100); do curl -sf "http://127.0.0.1:$AG_PORT/health" >/dev/null && break; sleep 0.1; done
        target=127.0.0.1:$AG_PORT
        pids="$VM_PID $AG_PID"
    fi
    run=${setup//-/_}_$RANDOM
    before=0
    for p in $pids; do before=$((before + $(cpu_ticks "$p"))); done
    start=$(date +%s.%N)
    "$BIN" loadgen --quiet --mode remote-write --target "$target" --connections "$CONNS" \
        --size 300 --batch "$BATCH" --series "$SERIES" --labels "$LABELS" --duration "$SECS" --run-id "$run" --pid "$VM_PID" >"$OUT/$setup.json" ||
        { echo "loadgen failed against $setup" >&2; kill "$VM_PID"; exit 1; }
    acked=$(python3 -c "import json; print(json.load(open('$OUT/$setup.json'))['acknowledged'])")
    read -r count secs < <(settle vm_count "$acked" "$start" 10)
    after=0
    for p in $pids; do after=$((after + $(cpu_ticks "$p"))); done
    rss=$(python3 -c "import json; print(json.load(open('$OUT/$setup.json'))['targets'][0]['peak_rss_bytes'] // 2**20)")
    python3 - "$setup" "$acked" "$count" "$secs" "$before" "$after" "$rss" <<'EOF' | tee "$OUT/$setup.summary"
import os, sys
setup, acked, count, secs, before, after, rss = sys.argv[1:]
acked, count, secs = int(acked), int(count), float(secs)
cpu = (int(after) - int(before)) / os.sysconf("SC_CLK_TCK")
print(f"| {setup} | {acked:,} | {count:,} | {count / secs:,.0f} | {cpu / max(count, 1) * 1e6:.2f} | {rss} |")
EOF
    [ "$setup" = vm-vmagent ] && kill "$AG_PID" && wait "$AG_PID" 2>/dev/null
done
kill "$VM_PID"
wait "$VM_PID" 2>/dev/null
echo "(columns: setup | acknowledged | stored in VictoriaMetrics | stored/s | CPU s per M samples (VictoriaMetrics + vmagent) | VictoriaMetrics peak RSS MiB)" >&2
