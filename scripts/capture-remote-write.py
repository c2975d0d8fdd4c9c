#!/usr/bin/env python3
"""Captures real remote write request bodies from Debian's Prometheus.

Starts a capture server and a Prometheus (own config and data dir, 127.0.0.1, free
ports) that scrapes itself and remote-writes to the server, then saves as test
fixtures under testdata/captured/ (with the request headers as JSON):

  * the first request carrying series that include `up` and `prometheus_build_info`;
  * the first request carrying metadata;
  * the first request carrying native histograms: the capture server also serves
    /metrics in the protobuf exposition format with one native histogram,
    `killkrill_capture_native_seconds` (schema 3, values listed in NATIVE below),
    which Prometheus scrapes with --enable-feature=native-histograms.

Re-run it to refresh the fixtures:  scripts/capture-remote-write.py
It installs Prometheus first (scripts/install-prometheus). Only the standard library
is used; the snappy block decoder below is just enough to sort the requests.
"""

import http.server
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "testdata", "captured")
WANT = ("series", "metadata", "histograms")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def varint(b, i):
    shift = value = 0
    while True:
        c = b[i]
        i += 1
        value |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return value, i


def snappy_block_decode(b):
    n, i = varint(b, 0)
    out = bytearray()
    while i < len(b):
        tag = b[i]
        i += 1
        kind = tag & 3
        if kind == 0:  # literal
            ln = tag >> 2
            if ln >= 60:
                extra = ln - 59
                ln = int.from_bytes(b[i : i + extra], "little")
                i += extra
            ln += 1
            out += b[i : i + ln]
            i += ln
            continue
        if kind == 1:
            ln = ((tag >> 2) & 7) + 4
            off = ((tag >> 5) << 8) | b[i]
            i += 1
        elif kind == 2:
            ln = (tag >> 2) + 1
            off = int.from_bytes(b[i : i + 2], "little")
            i += 2
        else:
            ln = (tag >> 2) + 1
            off = int.from_bytes(b[i : i + 4], "little")
            i += 4
        for _ in range(ln):
            out.append(out[-off])
    assert len(out) == n, (len(out), n)
    return bytes(out)


def fields(b):
    """Top-level (field number, wire type, payload) of a protobuf message."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
            yield field, wt, v
        elif wt == 1:
            yield field, wt, b[i : i + 8]
            i += 8
        elif wt == 2:
            ln, i = varint(b, i)
            yield field, wt, b[i : i + ln]
            i += ln
        elif wt == 5:
            yield field, wt, b[i : i + 4]
            i += 4
        else:
            raise ValueError("wire type %d" % wt)


def classify(raw):
    kinds = set()
    for field, _, payload in fields(raw):
        if field == 3:
            kinds.add("metadata")
        if field == 1 and any(f == 4 for f, _, _ in fields(payload)):
            kinds.add("histograms")
    if b"prometheus_build_info" in raw and b"\x12\x02up" in raw:
        kinds.add("series")
    return kinds


def enc_varint(x):
    out = b""
    while True:
        if x < 0x80:
            return out + bytes([x])
        out += bytes([(x & 0x7F) | 0x80])
        x >>= 7


def zigzag(x):
    return (x << 1) ^ (x >> 63)


def ld(field, payload):
    return enc_varint(field << 3 | 2) + enc_varint(len(payload)) + payload


def vfield(field, x):
    return enc_varint(field << 3) + enc_varint(x)


def dfield(field, x):
    return enc_varint(field << 3 | 1) + struct.pack("<d", x)


# The native histogram the capture server exposes (io.prometheus.client wire format):
# schema 3, zero bucket 2^-128 holding 1, positive buckets 0, 1 and 5 holding
# 2, 3 and 2 (deltas 2, 1, -1), negative bucket -1 holding 1; count 9, sum 12.5.
NATIVE = dict(schema=3, zero_threshold=2.0**-128, zero_count=1, count=9, sum=12.5,
              positive_spans=[(0, 2), (3, 1)], positive_deltas=[2, 1, -1],
              negative_spans=[(-1, 1)], negative_deltas=[1])


def exposition():
    """One MetricFamily, length-delimited, in the protobuf exposition format."""
    n = NATIVE
    h = vfield(1, n["count"]) + dfield(2, n["sum"]) + vfield(5, zigzag(n["schema"]))
    h += dfield(6, n["zero_threshold"]) + vfield(7, n["zero_count"])
    for off, length in n["negative_spans"]:
        h += ld(9, vfield(1, zigzag(off)) + vfield(2, length))
    for d in n["negative_deltas"]:
        h += vfield(10, zigzag(d))
    for off, length in n["positive_spans"]:
        h += ld(12, vfield(1, zigzag(off)) + vfield(2, length))
    for d in n["positive_deltas"]:
        h += vfield(13, zigzag(d))
    metric = ld(1, ld(1, b"kind") + ld(2, b"native")) + ld(7, h)
    family = ld(1, b"killkrill_capture_native_seconds") + ld(2, b"A native histogram for the capture.")
    family += vfield(3, 4) + ld(4, metric)  # type HISTOGRAM
    return enc_varint(len(family)) + family


captured = {}
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = exposition()
        self.send_response(200)
        self.send_header(
            "Content-Type",
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
        )
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        raw = snappy_block_decode(body)
        with lock:
            for kind in classify(raw):
                if kind not in captured:
                    captured[kind] = (dict(self.headers.items()), body)
                    print("captured %s request: %d bytes (%d decoded)" % (kind, len(body), len(raw)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    subprocess.run([os.path.join(ROOT, "scripts", "install-prometheus")], check=True)
    version = subprocess.run(["prometheus", "--version"], capture_output=True, text=True, check=True)
    version = version.stdout.split()[2]  # "prometheus, version 2.42.0+ds (...)"
    cport, pport = free_port(), free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", cport), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    work = tempfile.mkdtemp(prefix="kk-prom-")
    config = os.path.join(work, "prometheus.yml")
    with open(config, "w") as f:
        f.write(
            f"""global:
  scrape_interval: 1s
  external_labels:
    capture: killkrill
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:{pport}"]
  - job_name: native
    static_configs:
      - targets: ["127.0.0.1:{cport}"]
remote_write:
  - url: http://127.0.0.1:{cport}/api/v1/write
    send_exemplars: true
    send_native_histograms: true
    metadata_config:
      send: true
      send_interval: 2s
    queue_config:
      capacity: 20000
      max_samples_per_send: 10000
      batch_send_deadline: 2s
"""
        )
    prom = subprocess.Popen(
        [
            "prometheus",
            "--config.file=" + config,
            "--storage.tsdb.path=" + os.path.join(work, "data"),
            "--web.listen-address=127.0.0.1:%d" % pport,
            "--enable-feature=native-histograms",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(work, "prometheus.log"), "w"),
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline and prom.poll() is None:
            with lock:
                if all(k in captured for k in WANT):
                    break
            time.sleep(0.5)
        if prom.poll() is not None:
            sys.exit("prometheus exited: " + open(os.path.join(work, "prometheus.log")).read())
    finally:
        prom.terminate()
        prom.wait(timeout=30)
        server.shutdown()
    if "series" not in captured:
        sys.exit("no request with up and prometheus_build_info arrived within 60 s")
    os.makedirs(OUT, exist_ok=True)
    for kind, (headers, body) in sorted(captured.items()):
        stem = os.path.join(OUT, "prometheus-%s-remote-write-v1-%s" % (version, kind))
        with open(stem + ".snappy", "wb") as f:
            f.write(body)
        with open(stem + ".headers.json", "w") as f:
            json.dump({"prometheus_version": version, "headers": headers}, f, indent=2, sort_keys=True)
            f.write("\n")
        print("wrote", os.path.relpath(stem, ROOT) + ".{snappy,headers.json}")
    for kind in WANT:
        if kind not in captured:
            print("note: no %s request within 60 s" % kind)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
