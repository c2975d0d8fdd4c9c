#!/usr/bin/env bash
# Load benchmark of `killkrill serve` with `killkrill loadgen`, every number
# as a ratio to baselines measured in the same run (see
# docs/src/benchmarks/load.md):
#   - sink: loadgen into `socat ... OPEN:/dev/null` (the generator's ceiling
#     for syslog TCP on this machine);
#   - memory: serve with the in-memory queue (what the durable queue costs);
#   - sqlite: serve on the embedded default (SQLite store, SQLite queue).
# Each serve is fresh (new data directory, free ports); each run is
# `--verify`ed and reports the serve's peak RSS and CPU.
#
# usage: scripts/load/bench.sh [BINARY] [SECONDS] [OUTDIR]
# Environment: MODES (default "syslog-tcp http remote-write") and KINDS
# (default "memory sqlite") restrict the runs; SINK=0 skips the socat
# baseline (it is skipped anyway when MODES has no syslog-tcp); BATCH
# (default 1000) is loadgen's `--batch`: records or samples per HTTP request;
# CONNS (default 4) is loadgen's `--connections`; SERIES (default 100) is
# loadgen's `--series`: remote_write series per connection; LABELS (default
# 0) is loadgen's `--labels`: extra labels per series (20-byte values).
set -u
MODES=${MODES:-syslog-tcp http remote-write}
KINDS=${KINDS:-memory sqlite}
BATCH=${BATCH:-1000}
CONNS=${CONNS:-4}
SERIES=${SERIES:-100}
LABELS=${LABELS:-0}
BIN=${1:-${CARGO_TARGET_DIR:-target}/release/killkrill}
SECS=${2:-30}
OUT=${3:-$(mktemp -d /tmp/kk-load.XXXXXX)}
mkdir -p "$OUT"
echo "binary $BIN, ${SECS}s per run, results in $OUT" >&2

start_serve() { # $1 queue kind, $2 data dir; sets SERVE_PID HTTP TCP
    rm -rf "$2"
    KILLKRILL_QUEUE__KIND=$1 RUST_LOG=warn DB_TYPE= DATABASE_URL= \
        "$BIN" serve --data-dir "$2" --http 127.0.0.1:0 --syslog-tcp 127.0.0.1:0 \
        --syslog-udp 127.0.0.1:0 --syslog-tls "" >"$2.out" 2>"$2.err" &
    SERVE_PID=$!
    # The first start prints the bootstrap credentials, then the addresses.
    for _ in $(seq 100); do
        grep -q ' http ' "$2.out" 2>/dev/null && break
        sleep 0.1
    done
    HTTP=$(awk '{for(i=1;i<NF;i++) if($i=="http") print $(i+1)}' "$2.out")
    TCP=$(awk '{for(i=1;i<NF;i++) if($i=="syslog-tcp") print $(i+1)}' "$2.out")
}

stop_serve() { # $1 run name: the serve's /proc io counters go to $OUT/$1.io
    kill "$POLLER" 2>/dev/null
    cat "/proc/$SERVE_PID/io" >"$OUT/$1.io" 2>/dev/null
    kill -TERM "$SERVE_PID"
    wait "$SERVE_PID"
}

# Logs `time acknowledged-events cpu-ticks` of the serve every 0.25 s, so that the
# time until the store held everything is known apart from the time
# `--verify` spends reading it back.
poll_acks() { # $1 file
    while kill -0 "$SERVE_PID" 2>/dev/null; do
        echo "$(date +%s.%N) $(curl -s "http://$HTTP/metrics" |
            awk '/^killkrill_pipeline_acknowledged_events_total/ {s += $2} END {print s + 0}') $(
            awk '{print $14 + $15}' "/proc/$SERVE_PID/stat" 2>/dev/null)"
        sleep 0.25
    done >"$1"
}

run() { # $1 name, then loadgen arguments
    local name=$1
    shift
    date +%s.%N >"$OUT/$name.start"
    "$BIN" loadgen --quiet --duration "$SECS" "$@" >"$OUT/$name.json"
    echo "$name exit $?" >&2
}

# Baseline: the generator into a sink that discards.
if [ "${SINK:-1}" != 0 ] && [[ " $MODES " == *" syslog-tcp "* ]]; then
SINK_PORT=$((20000 + RANDOM % 20000))
socat -u TCP-LISTEN:$SINK_PORT,fork,reuseaddr OPEN:/dev/null &
SOCAT=$!
sleep 0.5
run sink-syslog-tcp --mode syslog-tcp --target 127.0.0.1:$SINK_PORT --connections 4 --size 300
kill "$SOCAT"
fi

for kind in $KINDS; do
    for mode in $MODES; do
        dir="$OUT/data-$kind-$mode"
        start_serve "$kind" "$dir"
        poll_acks "$OUT/$kind-$mode.acks" &
        POLLER=$!
        target=$HTTP
        [ "$mode" = syslog-tcp ] && target=$TCP
        timeout=300
        run "$kind-$mode" --mode "$mode" --target "$target" --connections "$CONNS" --size 300 \
            --batch "$BATCH" --series "$SERIES" --labels "$LABELS" --verify --verify-timeout "$timeout" --data-dir "$dir" --pid "$SERVE_PID"
        stop_serve "$kind-$mode"
    done
done

python3 "$(dirname "$0")/summarize.py" "$OUT"
