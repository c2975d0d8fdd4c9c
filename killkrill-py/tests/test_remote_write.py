"""killkrill-core/src/remote_write through the Python API:
decode_remote_write (1.0 and 2.0, snappy or bare protobuf, limits),
remote_write_version, WriteBatch and RemoteWriteError; the bodies Prometheus
2.42 sent (testdata/captured) and bodies built here with a minimal protobuf
and snappy writer."""

import json
import struct

import pytest

import killkrill
from conftest import CAPTURED

# --- a minimal protobuf + snappy writer (test input only) ------------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(num: int, data: bytes) -> bytes:
    return varint(num << 3 | 2) + varint(len(data)) + data


def field_varint(num: int, v: int) -> bytes:
    return varint(num << 3) + varint(v)


def field_double(num: int, v: float) -> bytes:
    return varint(num << 3 | 1) + struct.pack("<d", v)


def snappy_block(raw: bytes) -> bytes:
    """A valid snappy block made of literals only."""
    out = bytearray(varint(len(raw)))
    for i in range(0, len(raw), 60):
        chunk = raw[i : i + 60]
        out.append((len(chunk) - 1) << 2)
        out += chunk
    return bytes(out)


def v1_series(labels, samples, exemplars=()):
    ts = b"".join(field_bytes(1, field_bytes(1, k.encode()) + field_bytes(2, v.encode())) for k, v in labels)
    ts += b"".join(field_bytes(2, field_double(1, v) + field_varint(2, t)) for v, t in samples)
    for ex_labels, value, t in exemplars:
        ex = b"".join(field_bytes(1, field_bytes(1, k.encode()) + field_bytes(2, v.encode())) for k, v in ex_labels)
        ts += field_bytes(3, ex + field_double(2, value) + field_varint(3, t))
    return field_bytes(1, ts)


def v1_metadata(kind: int, family: str, help_text: str, unit: str = ""):
    md = field_varint(1, kind) + field_bytes(2, family.encode()) + field_bytes(4, help_text.encode())
    if unit:
        md += field_bytes(5, unit.encode())
    return field_bytes(3, md)


def v2_request(symbols, series):
    body = b"".join(field_bytes(4, s.encode()) for s in symbols)
    for refs, samples, meta in series:
        ts = field_bytes(1, b"".join(varint(r) for r in refs))
        ts += b"".join(field_bytes(2, field_double(1, v) + field_varint(2, t)) for v, t in samples)
        if meta:
            kind, help_ref = meta
            ts += field_bytes(5, field_varint(1, kind) + field_varint(3, help_ref))
        body += field_bytes(5, ts)
    return body


# --- captured bodies -----------------------------------------------------------


def captured(name):
    base = CAPTURED / f"prometheus-2.42.0+ds-remote-write-v1-{name}"
    headers = json.loads((base.parent / (base.name + ".headers.json")).read_text())["headers"]
    return (base.parent / (base.name + ".snappy")).read_bytes(), headers


def test_captured_series():
    body, headers = captured("series")
    assert killkrill.remote_write_version(headers["Content-Type"]) == "1.0"
    b = killkrill.decode_remote_write(body, content_type=headers["Content-Type"])
    assert b.version == "1.0" and len(b) == len(b.samples) > 300
    assert b.report["exemplars"] == 0 and b.exemplars == []
    up = [s for s in b.samples if s.name == "up"]
    assert len(up) == 2 and all(s.value == 1.0 and len(s.labels) == 3 for s in up)
    info = next(s for s in b.samples if s.name == "prometheus_build_info")
    assert info.labels["version"] == "2.42.0+ds" and info.labels["branch"] == "debian/sid"
    assert all(s.labels["capture"] == "killkrill" for s in b.samples)
    d = b.to_dict()
    assert d["samples"][0] == b.samples[0].to_dict()
    assert d["report"] == b.report
    assert "WriteBatch(" in repr(b)


def test_captured_metadata():
    body, _ = captured("metadata")
    b = killkrill.decode_remote_write(body, version="1.0")
    assert b.samples == [] and len(b.metadata) > 100
    assert b.report["metadata"] == len(b.metadata)
    meta = {m.family: m for m in b.metadata}
    assert meta["prometheus_build_info"].type == "gauge"
    assert "constant '1' value" in meta["prometheus_build_info"].help
    assert meta["process_cpu_seconds_total"].type == "counter"
    assert meta["go_gc_duration_seconds"].type == "summary"
    assert meta["prometheus_tsdb_compaction_chunk_range_seconds"].type == "histogram"


def test_captured_native_histogram():
    body, _ = captured("histograms")
    b = killkrill.decode_remote_write(body)
    assert (b.report["histograms"], b.report["histogram_samples"]) == (1, 8)
    n = "killkrill_capture_native_seconds"
    got = [(s.name, s.labels.get("le"), s.value) for s in b.samples if s.name.startswith(n)]
    assert got == [
        (f"{n}_count", None, 9.0),
        (f"{n}_sum", None, 12.5),
        (f"{n}_bucket", "-0.8408964152537145", 1.0),
        (f"{n}_bucket", "2.938735877055719e-39", 2.0),
        (f"{n}_bucket", "1.0", 4.0),
        (f"{n}_bucket", "1.0905077326652577", 7.0),
        (f"{n}_bucket", "1.5422108254079407", 9.0),
        (f"{n}_bucket", "+Inf", 9.0),
    ]
    assert all(s.type == "histogram" for s in b.samples if s.name.startswith(n))


# --- built bodies ------------------------------------------------------------------


def test_v1_samples_exemplars_metadata():
    raw = v1_series(
        [("__name__", "http_requests_total"), ("job", "api"), ("code", "200")],
        [(1.0, 1700000000000), (2.5, 1700000001000)],
        exemplars=[([("trace_id", "abc")], 0.5, 1700000000500)],
    ) + v1_metadata(1, "http_requests_total", "Requests.")
    for body, compressed in ((snappy_block(raw), True), (raw, False)):
        b = killkrill.decode_remote_write(body, version="1.0", compressed=compressed)
        assert [(s.name, s.labels, s.value, s.timestamp) for s in b.samples] == [
            ("http_requests_total", {"code": "200", "job": "api"}, 1.0, 1700000000000000000),
            ("http_requests_total", {"code": "200", "job": "api"}, 2.5, 1700000001000000000),
        ]
        ((name, labels, ex),) = b.exemplars
        assert (name, labels) == ("http_requests_total", {"code": "200", "job": "api"})
        assert (ex.labels, ex.value, ex.timestamp) == ({"trace_id": "abc"}, 0.5, 1700000000500000000)
        (m,) = b.metadata
        assert (m.family, m.type, m.help, m.unit) == ("http_requests_total", "counter", "Requests.", None)
        assert b.report == {
            "series": 1,
            "samples": 2,
            "histograms": 0,
            "histogram_samples": 0,
            "exemplars": 1,
            "metadata": 1,
            "start_timestamps_ignored": 0,
        }
        d = b.to_dict()
        assert d["exemplars"][0]["series_name"] == "http_requests_total"
        assert d["metadata"] == [{"family": "http_requests_total", "type": "counter", "help": "Requests.", "unit": None}]


def test_v2_symbols_and_metadata():
    symbols = ["", "__name__", "temp_celsius", "room", "kitchen", "Temperature."]
    raw = v2_request(symbols, [([1, 2, 3, 4], [(21.5, 1700000000000)], (2, 5))])
    ct = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
    assert killkrill.remote_write_version(ct) == "2.0"
    b = killkrill.decode_remote_write(snappy_block(raw), content_type=ct)
    assert b.version == "2.0"
    (s,) = b.samples
    assert (s.name, s.labels, s.value, s.timestamp, s.type) == ("temp_celsius", {"room": "kitchen"}, 21.5, 1700000000000000000, "gauge")
    (m,) = b.metadata
    assert (m.family, m.type, m.help) == ("temp_celsius", "gauge", "Temperature.")
    headers = dict(b.response_headers)
    assert headers["X-Prometheus-Remote-Write-Samples-Written"] == 1


@pytest.mark.parametrize(
    "raw,version,kind,series",
    [
        (v1_series([("job", "x")], [(1.0, 0)]), "1.0", "missing_name", 0),
        (v1_series([("__name__", "a")], [(1.0, 0)]) + v1_series([("__name__", "b"), ("x", "1"), ("x", "2")], [(1.0, 0)]), "1.0", "duplicate_label", 1),
        (v1_series([("__name__", "a"), ("", "v")], [(1.0, 0)]), "1.0", "empty_label_name", 0),
        (v2_request(["", "__name__"], [([1], [(1.0, 0)], None)]), "2.0", "odd_refs", 0),
        (v2_request(["", "__name__"], [([1, 9], [(1.0, 0)], None)]), "2.0", "symbol_out_of_range", 0),
        (b"\xff\xff\xff", "1.0", "protobuf", None),
    ],
)
def test_series_errors(raw, version, kind, series):
    with pytest.raises(killkrill.RemoteWriteError) as info:
        killkrill.decode_remote_write(snappy_block(raw), version=version)
    e = info.value
    assert isinstance(e, killkrill.ParseError) and isinstance(e, ValueError)
    assert (e.kind, e.series) == (kind, series), str(e)
    assert (e.line, e.column, e.offset) == (None, None, None)
    if series is not None:
        assert str(e).startswith(f"series {series}: ")


def test_limits():
    raw = v1_series([("__name__", "a"), ("b", "1"), ("c", "2")], [(1.0, 0), (2.0, 1)]) + v1_series([("__name__", "z")], [(1.0, 0)])
    body = snappy_block(raw)
    cases = [
        ({"max_series": 1}, "too_many_series", None),
        ({"max_samples": 2}, "too_many_samples", 1),
        ({"max_labels_per_series": 2}, "too_many_labels", 0),
        ({"max_decoded_bytes": 10}, "snappy", None),
    ]
    for limits, kind, series in cases:
        with pytest.raises(killkrill.RemoteWriteError) as info:
            killkrill.decode_remote_write(body, version="1.0", **limits)
        assert (info.value.kind, info.value.series) == (kind, series), str(info.value)
    assert len(killkrill.decode_remote_write(body, version="1.0")) == 3
    with pytest.raises(killkrill.RemoteWriteError, match="more than the limit"):
        killkrill.decode_remote_write(raw, version="1.0", compressed=False, max_decoded_bytes=10)


def test_label_and_output_limits():
    # One series with a 300-byte label and 1,000 samples: small on the wire,
    # but its labels are copied into every sample when decoded.
    raw = v1_series([("__name__", "m"), ("long_label_name", "v" * 300)], [(float(i), i) for i in range(1000)])
    body = snappy_block(raw)
    # Exactly at a label cap is accepted; one byte under it is refused.
    assert len(killkrill.decode_remote_write(body, max_label_name_bytes=15, max_label_value_bytes=300)) == 1000
    for limits, part in [({"max_label_name_bytes": 14}, "name"), ({"max_label_value_bytes": 299}, "value")]:
        with pytest.raises(killkrill.RemoteWriteError) as info:
            killkrill.decode_remote_write(body, **limits)
        assert (info.value.kind, info.value.series) == ("label_too_long", 0), str(info.value)
        assert f": {part} is " in str(info.value), str(info.value)
    # The metric name is a label value too.
    with pytest.raises(killkrill.RemoteWriteError) as info:
        killkrill.decode_remote_write(snappy_block(v1_series([("__name__", "x" * 20)], [(1.0, 0)])), max_label_value_bytes=19)
    assert info.value.kind == "label_too_long"
    # The decoded-size budget: 1,000 samples x (64 + name + 2 labels with
    # their 48-byte overhead) is about 0.5 MB, far more than the 30 KB body.
    assert len(raw) < 30_000
    with pytest.raises(killkrill.RemoteWriteError, match="more than the limit of 100000 bytes") as info:
        killkrill.decode_remote_write(body, max_output_bytes=100_000)
    assert (info.value.kind, info.value.series) == ("too_large_decoded", 0), str(info.value)
    assert len(killkrill.decode_remote_write(body, max_output_bytes=1_000_000)) == 1000
    for bad in ({"max_output_bytes": -1}, {"max_label_name_bytes": "8"}):
        with pytest.raises((OverflowError, TypeError)):
            killkrill.decode_remote_write(body, **bad)


def test_snappy_errors():
    with pytest.raises(killkrill.RemoteWriteError) as info:
        killkrill.decode_remote_write(b"garbage", version="1.0")
    assert info.value.kind == "snappy"


def test_version_and_content_type_arguments():
    assert killkrill.remote_write_version(None) == "1.0"
    assert killkrill.remote_write_version("application/x-protobuf") == "1.0"
    assert killkrill.remote_write_version("application/x-protobuf; proto=prometheus.WriteRequest") == "1.0"
    for bad in ("text/plain", "application/x-protobuf;proto=foo.Bar", ";;"):
        with pytest.raises(ValueError):
            killkrill.remote_write_version(bad)
    body = snappy_block(v1_series([("__name__", "a")], [(1.0, 0)]))
    assert len(killkrill.decode_remote_write(body)) == 1  # no header: 1.0
    with pytest.raises(ValueError, match="either version or content_type"):
        killkrill.decode_remote_write(body, version="1.0", content_type="application/x-protobuf")
    with pytest.raises(ValueError, match="unknown remote write version"):
        killkrill.decode_remote_write(body, version="3.0")
    with pytest.raises(ValueError, match="unsupported media type"):
        killkrill.decode_remote_write(body, content_type="text/plain")


def test_large_request():
    raw = b"".join(v1_series([("__name__", "m"), ("i", str(i))], [(float(i), i)]) for i in range(20000))
    b = killkrill.decode_remote_write(snappy_block(raw))
    assert len(b) == 20000 and b.samples[-1].labels == {"i": "19999"}
