#!/usr/bin/env python3
"""Markdown table of a scripts/load/bench.sh result directory.

received/s: acknowledged events over the sending time (what loadgen saw).
stored/s:   acknowledged events over the time from the start of the load until
            the serve's workers had stored them all (from the `.acks` log of
            killkrill_pipeline_acknowledged_events_total), or the receive
            rate when there is no log (the sink baseline).
serve CPU:  CPU seconds of the serve per million events stored (from
            /proc/PID/stat at the end of the loadgen run, which includes the
            catch-up and the read-back).
CPU until stored: the serve's CPU seconds (from /proc/PID/stat, logged with the
            acknowledgements) per million events at the moment the workers had
            stored them all: without the read-back of --verify.
"""
import json, os, sys

out = sys.argv[1]
rows = []
for f in sorted(os.listdir(out)):
    if not f.endswith(".json"):
        continue
    name = f[:-5]
    try:
        d = json.load(open(os.path.join(out, f)))
    except ValueError:
        continue
    v = d.get("verify") or {}
    t = (d.get("targets") or [{}])[0]
    stored_rate = None
    stored_cpu = None
    acks = os.path.join(out, name + ".acks")
    if os.path.exists(acks):
        start = float(open(os.path.join(out, name + ".start")).read())
        for line in open(acks):
            cols = line.split()
            ts, n = cols[0], cols[1]
            if float(n) >= d["acknowledged"] > 0:
                stored_rate = d["acknowledged"] / (float(ts) - start)
                if len(cols) > 2:
                    stored_cpu = int(cols[2]) / os.sysconf("SC_CLK_TCK")
                break
    cpu = t.get("cpu_seconds")
    cpu_per_m = cpu / d["acknowledged"] * 1e6 if cpu and d["acknowledged"] else None
    rss = t.get("peak_rss_bytes")
    # Bytes the serve passed to write(2) (store, queue and segments), from
    # /proc/PID/io saved by bench.sh just before stopping it.
    wchar = None
    io = os.path.join(out, name + ".io")
    if os.path.exists(io) and d["acknowledged"]:
        for line in open(io):
            k, _, val = line.partition(":")
            if k == "wchar":
                wchar = int(val) / d["acknowledged"]
    rows.append([name, f'{d["acknowledged"]:,}', f'{d["rate"]:,.0f}',
                 f"{stored_rate:,.0f}" if stored_rate else "",
                 f'{d["ack_latency_ms"]["p99"]:.1f}' if d["ack_latency_ms"]["p99"] is not None else "",
                 "" if not v else f'{v.get("stored", 0):,}',
                 "" if not v else str(v.get("missing")),
                 "" if not v else str(v.get("duplicates")),
                 f"{rss / 2**20:,.0f}" if rss else "",
                 f"{cpu_per_m:.2f}" if cpu_per_m else "",
                 f"{stored_cpu / d['acknowledged'] * 1e6:.2f}" if stored_cpu and d["acknowledged"] else "",
                 f"{wchar:,.0f}" if wchar else ""])
print("| run | acknowledged | received/s | stored/s | p99 ack ms | stored (verify) | missing | duplicates | serve peak RSS MiB | serve CPU s per M events | serve CPU s per M, until stored | serve written B/event |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
