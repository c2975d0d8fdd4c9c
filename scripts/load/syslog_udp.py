#!/usr/bin/env python3
"""Rough syslog-over-UDP load: one sender, N ~300-byte RFC 5424 datagrams as
fast as Python sends them; then report stored, dropped-by-killkrill (counted)
and the rest (lost in the kernel: the socket buffer overflowed)."""
import socket, sys, time, urllib.request
udp_port, http_port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def metric(name):
    body = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics").read().decode()
    return sum(float(l.rsplit(" ", 1)[1]) for l in body.splitlines() if l.startswith(name))
msgs = []
for i in range(n):
    m = f"<134>1 2026-11-25T10:00:00.000000Z host app 1234 ID{i % 100} - udp message {i} ".encode()
    msgs.append(m + b"x" * (300 - len(m)))
base_acked = metric("killkrill_pipeline_acknowledged_events_total")
base_recv = metric("killkrill_syslog_messages_total")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
start = time.time()
for m in msgs:
    s.sendto(m, ("127.0.0.1", udp_port))
sent = time.time() - start
time.sleep(6)  # the kernel-drop counter is published every 5 s
recv = metric("killkrill_syslog_messages_total") - base_recv
dropped = metric("killkrill_syslog_dropped_messages_total")
kernel = metric("killkrill_syslog_udp_kernel_drops_total")
acked = metric("killkrill_pipeline_acknowledged_events_total") - base_acked
print(f"sent {n} in {sent:.2f}s ({n/sent:,.0f}/s); received {recv:.0f}, stored {acked:.0f}, dropped by killkrill {dropped:.0f}, not received {n-recv:.0f} (kernel drops counted: {kernel:.0f})")
