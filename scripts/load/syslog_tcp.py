#!/usr/bin/env python3
"""Rough syslog-over-TCP load: CONNS connections each send N octet-counted
~300-byte RFC 5424 messages as fast as the server reads them; then wait until
/metrics says every message was acknowledged (stored)."""
import re, socket, sys, threading, time, urllib.request

tcp_port, http_port, conns, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

def acked():
    body = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics").read().decode()
    return sum(float(l.rsplit(" ", 1)[1]) for l in body.splitlines()
               if l.startswith("killkrill_pipeline_acknowledged_events_total"))

def payload(c):
    out = []
    for i in range(n):
        msg = (f"<134>1 2026-11-25T10:00:00.000000Z host{c} app 1234 ID{i % 100} "
               f"[meta seq=\"{i}\"] conn {c} message {i} " ).encode()
        msg += b"x" * (300 - len(msg))
        out.append(b"%d %s" % (len(msg), msg))
    return b"".join(out)

bodies = [payload(c) for c in range(conns)]
base = acked()
start = time.time()
def send(b):
    s = socket.create_connection(("127.0.0.1", tcp_port))
    s.sendall(b)
    s.close()
threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
for t in threads: t.start()
for t in threads: t.join()
sent = time.time() - start
total = conns * n
while acked() - base < total:
    time.sleep(0.05)
    if time.time() - start > 300:
        print("timeout", acked() - base); sys.exit(1)
done = time.time() - start
print(f"{total} messages, 300 B, {conns} connections: read in {sent:.2f}s, stored in {done:.2f}s -> {total/done:,.0f} msg/s stored")
