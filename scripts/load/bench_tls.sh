#!/usr/bin/env bash
# Syslog over TLS against syslog over plain TCP, with `killkrill loadgen`
# (see docs/src/benchmarks/load-tls.md). Four runs, the same 4 connections
# of 300-byte RFC 5424 messages with octet counting:
#   - sink-syslog-tcp / sink-syslog-tls: the generator into socat writing
#     to /dev/null (plain, and TLS with the same self-signed certificate):
#     the generator's ceiling on this machine, without and with TLS;
#   - sqlite-syslog-tcp / sqlite-syslog-tls: a fresh `killkrill serve` on
#     the embedded default (SQLite store and queue), `--verify`ed.
# Same output directory layout as bench.sh, so summarize.py prints the table.
#
# usage: scripts/load/bench_tls.sh [BINARY] [SECONDS] [OUTDIR]
set -u
BIN=${1:-${CARGO_TARGET_DIR:-target}/release/killkrill}
SECS=${2:-20}
OUT=${3:-$(mktemp -d /tmp/kk-load-tls.XXXXXX)}
mkdir -p "$OUT"
echo "binary $BIN, ${SECS}s per run, results in $OUT" >&2

# A CA (ca.pem, what loadgen's --ca-file trusts) and the receiver's
# certificate for 127.0.0.1 signed by it.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=kk-bench-ca -keyout "$OUT/ca.key" -out "$OUT/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
    -keyout "$OUT/key.pem" -out "$OUT/req.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    >"$OUT/ext.cnf"
openssl x509 -req -in "$OUT/req.csr" -CA "$OUT/ca.pem" -CAkey "$OUT/ca.key" -CAcreateserial \
    -days 2 -extfile "$OUT/ext.cnf" -out "$OUT/cert.pem" 2>/dev/null

start_serve() { # $1 data dir; sets SERVE_PID HTTP TCP TLS
    rm -rf "$1"
    RUST_LOG=warn DB_TYPE= DATABASE_URL= \
        "$BIN" serve --data-dir "$1" --http 127.0.0.1:0 --syslog-tcp 127.0.0.1:0 \
        --syslog-udp "" --syslog-tls 127.0.0.1:0 --tls-cert "$OUT/cert.pem" \
        --tls-key "$OUT/key.pem" >"$1.out" 2>"$1.err" &
    SERVE_PID=$!
    for _ in $(seq 100); do
        grep -q ' http ' "$1.out" 2>/dev/null && break
        sleep 0.1
    done
    HTTP=$(awk '{for(i=1;i<NF;i++) if($i=="http") print $(i+1)}' "$1.out")
    TCP=$(awk '{for(i=1;i<NF;i++) if($i=="syslog-tcp") print $(i+1)}' "$1.out")
    TLS=$(awk '{for(i=1;i<NF;i++) if($i=="syslog-tls") print $(i+1)}' "$1.out")
}

stop_serve() {
    kill "$POLLER" 2>/dev/null
    kill -TERM "$SERVE_PID"
    wait "$SERVE_PID"
}

poll_acks() { # $1 file
    while kill -0 "$SERVE_PID" 2>/dev/null; do
        echo "$(date +%s.%N) $(curl -s "http://$HTTP/metrics" |
            awk '/^killkrill_pipeline_acknowledged_events_total/ {s += $2} END {print s + 0}')"
        sleep 0.25
    done >"$1"
}

run() { # $1 name, then loadgen arguments
    local name=$1
    shift
    date +%s.%N >"$OUT/$name.start"
    "$BIN" loadgen --quiet --duration "$SECS" --connections 4 --size 300 "$@" >"$OUT/$name.json"
    echo "$name exit $?" >&2
}

PORT=$((20000 + RANDOM % 20000))
socat -u TCP-LISTEN:$PORT,fork,reuseaddr OPEN:/dev/null &
SOCAT=$!
sleep 0.5
run sink-syslog-tcp --mode syslog-tcp --target 127.0.0.1:$PORT
kill "$SOCAT"

PORT=$((PORT + 1))
socat -u OPENSSL-LISTEN:$PORT,fork,reuseaddr,cert="$OUT/cert.pem",key="$OUT/key.pem",verify=0 \
    OPEN:/dev/null &
SOCAT=$!
sleep 0.5
run sink-syslog-tls --mode syslog-tls --target 127.0.0.1:$PORT --ca-file "$OUT/ca.pem"
kill "$SOCAT"

for mode in syslog-tcp syslog-tls; do
    dir="$OUT/data-sqlite-$mode"
    start_serve "$dir"
    poll_acks "$OUT/sqlite-$mode.acks" &
    POLLER=$!
    if [ "$mode" = syslog-tcp ]; then
        run "sqlite-$mode" --mode syslog-tcp --target "$TCP" --verify --verify-timeout 300 \
            --data-dir "$dir" --pid "$SERVE_PID"
    else
        run "sqlite-$mode" --mode syslog-tls --target "$TLS" --ca-file "$OUT/ca.pem" \
            --verify --verify-timeout 300 --data-dir "$dir" --pid "$SERVE_PID"
    fi
    stop_serve
done

python3 "$(dirname "$0")/summarize.py" "$OUT"
