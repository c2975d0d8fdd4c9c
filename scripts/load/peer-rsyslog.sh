#!/usr/bin/env bash
# The syslog TCP peer, measured with the same generator as killkrill (see
# docs/src/benchmarks/load.md): rsyslog (Debian package `rsyslog`, 8.2302 on
# bookworm, the version the goal names), imtcp -> omfile with its default
# file format, fed by `killkrill loadgen --mode syslog-tcp` exactly as
# scripts/load/bench.sh feeds `killkrill serve` (4 connections, 300-byte
# RFC 5424 messages, octet-counted framing). Stored = lines in the output
# file once it stops growing; stored/s is that over the time from the start
# of the load until the file last grew.
#
# usage: scripts/load/peer-rsyslog.sh [KILLKRILL_BINARY] [SECONDS] [OUTDIR]
# Installs the package with apt-get when it is missing.
set -u
BIN=${1:-${CARGO_TARGET_DIR:-target}/release/killkrill}
SECS=${2:-20}
OUT=${3:-$(mktemp -d /tmp/kk-peer-rsyslog.XXXXXX)}
CONNS=${CONNS:-4}
mkdir -p "$OUT"
if [ ! -x /usr/sbin/rsyslogd ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsyslog >/dev/null
fi
PORT=$((20000 + RANDOM % 20000))
rm -rf "$OUT/rs-work" "$OUT/rs-out.log"
mkdir -p "$OUT/rs-work"
cat >"$OUT/rsyslog.conf" <<EOF
global(workDirectory="$OUT/rs-work")
module(load="imtcp" MaxSessions="100")
input(type="imtcp" address="127.0.0.1" port="$PORT")
*.* action(type="omfile" file="$OUT/rs-out.log")
EOF
/usr/sbin/rsyslogd -n -f "$OUT/rsyslog.conf" -i "$OUT/rsyslog.pid" >"$OUT/rsyslog.log" 2>&1 &
RS_PID=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done
. "$(dirname "$0")/peer-common.sh"
before=$(cpu_ticks "$RS_PID")
start=$(date +%s.%N)
"$BIN" loadgen --quiet --mode syslog-tcp --target "127.0.0.1:$PORT" --connections "$CONNS" \
    --size 300 --duration "$SECS" --pid "$RS_PID" >"$OUT/rsyslog.json" ||
    { echo "loadgen failed against rsyslog" >&2; kill "$RS_PID"; exit 1; }
sent=$(python3 -c "import json; print(json.load(open('$OUT/rsyslog.json'))['sent'])")
rs_count() { wc -l <"$OUT/rs-out.log" 2>/dev/null || echo 0; }
read -r last secs < <(settle rs_count "$sent" "$start" 5)
after=$(cpu_ticks "$RS_PID")
rss=$(python3 -c "import json; print(json.load(open('$OUT/rsyslog.json'))['targets'][0]['peak_rss_bytes'] // 2**20)")
kill "$RS_PID"
wait "$RS_PID" 2>/dev/null
python3 - "$sent" "$last" "$secs" "$before" "$after" "$rss" <<'EOF' | tee "$OUT/rsyslog.summary"
import os, sys
sent, lines, secs, before, after, rss = sys.argv[1:]
sent, lines, secs = int(sent), int(lines), float(secs)
cpu = (int(after) - int(before)) / os.sysconf("SC_CLK_TCK")
print(f"| rsyslog imtcp -> omfile | {sent:,} | {lines:,} | {lines / secs:,.0f} | {cpu / max(lines, 1) * 1e6:.2f} | {rss} |")
EOF
echo "(columns: setup | sent | lines written | stored/s | CPU s per M messages | peak RSS MiB)" >&2
