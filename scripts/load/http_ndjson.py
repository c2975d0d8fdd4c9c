#!/usr/bin/env python3
"""Rough HTTP NDJSON load: THREADS clients each POST REQS bodies of LINES
~300-byte JSON lines (keep-alive), then wait until all are acknowledged."""
import http.client, sys, threading, time, urllib.request
port, threads, reqs, lines = map(int, sys.argv[1:5])
def acked():
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    return sum(float(l.rsplit(" ", 1)[1]) for l in body.splitlines()
               if l.startswith("killkrill_pipeline_acknowledged_events_total"))
def body(t, r):
    out = []
    for i in range(lines):
        s = f'{{"ts":"2026-11-25T10:00:00Z","level":"info","host":"h{t}","service":"api","msg":"request {r}-{i} done","status":200,"path":"/v1/items/{i}"'
        s += ',"pad":"' + "x" * max(0, 296 - len(s)) + '"}\n'
        out.append(s)
    return "".join(out).encode()
bodies = [[body(t, r) for r in range(reqs)] for t in range(threads)]
base = acked(); errors = []
def run(t):
    c = http.client.HTTPConnection("127.0.0.1", port)
    for b in bodies[t]:
        c.request("POST", "/api/v1/logs", b, {"Content-Type": "application/x-ndjson"})
        r = c.getresponse(); r.read()
        if r.status != 200: errors.append(r.status)
start = time.time()
ts = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
for t in ts: t.start()
for t in ts: t.join()
sent = time.time() - start
total = threads * reqs * lines
while acked() - base < total and time.time() - start < 300:
    time.sleep(0.05)
done = time.time() - start
print(f"{total} records in {threads*reqs} requests of {lines}, {threads} clients: answered in {sent:.2f}s, stored in {done:.2f}s -> {total/done:,.0f} records/s; non-200: {len(errors)}")
