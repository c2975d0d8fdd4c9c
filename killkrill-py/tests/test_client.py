"""The client (`killkrill.Client`, `killkrill.AsyncClient`) against a real
`killkrill serve` started here (see killkrill_server.py), plus the parts
that need no server: argument conversion, exposition encoding and error
mapping. The tail is in test_client_tail.py, credentials and HTTPS through
a proxy in test_client_auth.py.

A read route that the binary under test does not serve yet (a 404 "no such
endpoint") skips its tests with the route named, never passes them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import doctest
import gzip
import json
import socket
import time
from typing import List

import pytest

import killkrill
from killkrill import _api
from client_support import NS, need, need_metric_store, recent, rfc, stored, unique
from killkrill_server import REPO, wait_until

# --- ingest and read back -----------------------------------------------------------


def test_push_logs_then_query_back_exact(client):
    need(client, "/api/v1/logs")
    host = unique("exact")
    t0 = recent(60)
    records = [
        {
            "ts": rfc(t0),
            "level": "error",
            "host": host,
            "app": "api",
            "msg": "disk full",
            "http": {"status": 507},
        },
        {"ts": rfc(t0 + 1_000_000), "level": "info", "host": host, "app": "api", "msg": "ok", "user": "bob"},
        {"ts": rfc(t0 + 2_000_000), "host": host, "msg": "no level", "n": 1.5, "flag": True},
    ]
    assert client.push_logs(records) == 3
    got = stored(client, 3, host=host, start=t0 - NS, order="asc")
    ids = [r.pop("id") for r in got]
    assert len(set(ids)) == 3 and all(len(i) == 36 for i in ids), ids
    assert got == [
        {
            "tenant": "default",
            "timestamp": rfc(t0),
            "severity": "err",
            "facility": None,
            "host": host,
            "app": "api",
            "procid": None,
            "msgid": None,
            "structured_data": None,
            "message": "disk full",
            "source": "http",
            "attributes": {"http.status": 507},
        },
        {
            "tenant": "default",
            "timestamp": rfc(t0 + 1_000_000),
            "severity": "info",
            "facility": None,
            "host": host,
            "app": "api",
            "procid": None,
            "msgid": None,
            "structured_data": None,
            "message": "ok",
            "source": "http",
            "attributes": {"user": "bob"},
        },
        {
            "tenant": "default",
            "timestamp": rfc(t0 + 2_000_000),
            "severity": None,
            "facility": None,
            "host": host,
            "app": None,
            "procid": None,
            "msgid": None,
            "structured_data": None,
            "message": "no level",
            "source": "http",
            "attributes": {"n": 1.5, "flag": True},
        },
    ]


def test_push_killkrill_records_gzip_and_raw_bodies(client):
    need(client, "/api/v1/logs")
    host = unique("records")
    t = recent(30)
    # RFC 5424 allows six fraction digits.
    line = f'<165>1 {rfc(t)[:-4]}Z {host} evntslog 42 ID47 [ex@32473 iut="3"] An event'.encode()
    msg = killkrill.parse_syslog(line)
    rec = msg.to_record()
    # A SyslogMessage and a LogRecord, gzipped; then a raw NDJSON body.
    assert client.push_logs([msg, rec], gzip=True) == 2
    raw = json.dumps({"ts": rfc(t + 5_000_000), "host": host, "msg": "raw body"}) + "\n"
    assert client.push_logs(raw.encode()) == 1
    got = stored(client, 3, host=host, start=t - NS, order="asc")
    syslog = [r for r in got if r["message"] == "An event"]
    assert len(syslog) == 2
    for r in syslog:
        assert r["timestamp"] == rfc(t)
        assert (r["severity"], r["facility"], r["app"], r["procid"], r["msgid"]) == (
            "notice",
            "local4",
            "evntslog",
            "42",
            "ID47",
        )
        # JSON ingest flattens nested objects: the structured data arrives
        # as attributes (documented on the push_logs docstring).
        assert r["attributes"] == {"structured_data.ex@32473.iut": "3"}
    assert got[-1]["message"] == "raw body"


def test_push_batches_and_counts(client):
    need(client, "/api/v1/logs")
    host = unique("batches")
    t = recent(20)
    n = 2_345
    accepted = client.push_logs(
        ({"ts": rfc(t + i * 1000), "host": host, "msg": f"m{i}"} for i in range(n)),
        batch_size=500,
    )
    assert accepted == n
    assert len(stored(client, n, host=host, start=t - NS)) == n


# --- pagination ------------------------------------------------------------------------


def test_pages_have_no_gaps_or_repeats_while_data_arrives(client):
    need(client, "/api/v1/logs")
    host = unique("pages")
    t0 = recent(120)
    n = 250
    client.push_logs(
        {"ts": rfc(t0 + i * 1_000_000), "host": host, "msg": f"seq {i}", "seq": i} for i in range(n)
    )
    stored(client, n, host=host, start=t0 - NS)

    pages = client.query_logs(host=host, start=t0 - NS, end=t0 + 10 * NS, page_size=7, order="asc")
    seqs = []
    for i, r in enumerate(pages):
        seqs.append(r["attributes"]["seq"])
        if i == 100:
            # New records inside the queried range, after the cursor: they
            # show up at the end, nothing repeats or is lost.
            client.push_logs(
                {"ts": rfc(t0 + (n + j) * 1_000_000), "host": host, "msg": "late", "seq": n + j}
                for j in range(5)
            )
            stored(client, n + 5, host=host, start=t0 - NS)
    assert seqs == list(range(n + 5))
    assert pages.pages == -(-(n + 5) // 7)
    assert pages.cursor is None

    # Newest first, with a limit, then resumed from the cursor.
    first = client.query_logs(host=host, start=t0 - NS, end=t0 + 10 * NS, page_size=8, limit=20)
    head = [r["attributes"]["seq"] for r in first]
    assert head == list(range(n + 4, n + 4 - 20, -1))
    assert first.cursor is not None
    rest = [
        r["attributes"]["seq"]
        for r in client.query_logs(
            host=host, start=t0 - NS, end=t0 + 10 * NS, page_size=50, cursor=first.cursor
        )
    ]
    assert head + rest == list(range(n + 4, -1, -1))

    with pytest.raises(RuntimeError, match="iterate once"):
        list(first)


def test_log_filters(client):
    need(client, "/api/v1/logs")
    host = unique("filters")
    t = recent(90)
    client.push_logs(
        [
            {"ts": rfc(t), "host": host, "app": "a", "level": "debug", "msg": "alpha one", "k": "x"},
            {"ts": rfc(t + 1000), "host": host, "app": "b", "level": "warn", "msg": "beta two", "k": "y"},
            {"ts": rfc(t + 2000), "host": host, "app": "a", "level": "crit", "msg": "gamma three", "k": "y"},
        ]
    )
    stored(client, 3, host=host, start=t - NS)

    def msgs(**f):
        f.setdefault("start", t - NS)
        return sorted(r["message"] for r in client.query_logs(host=host, **f))

    assert msgs(severity="warning") == ["beta two", "gamma three"]
    assert msgs(app="a") == ["alpha one", "gamma three"]
    assert msgs(fields={"k": "y"}) == ["beta two", "gamma three"]
    assert msgs(query="two") == ["beta two"]
    assert msgs(start=t + 1000) == ["beta two", "gamma three"]
    assert msgs(end=t + 1000) == ["alpha one"]
    assert msgs(start=dt.datetime.fromtimestamp((t + 2000) / NS, dt.timezone.utc)) == ["gamma three"]


def test_log_volume(client):
    need(client, "/api/v1/logs/volume")
    host = unique("volume")
    base = (recent(600) // (60 * NS)) * 60 * NS  # a whole minute
    client.push_logs(
        [
            {"ts": rfc(base + 1 * NS), "host": host, "level": "err", "msg": "a"},
            {"ts": rfc(base + 2 * NS), "host": host, "level": "err", "msg": "b"},
            {"ts": rfc(base + 3 * NS), "host": host, "level": "info", "msg": "c"},
            {"ts": rfc(base + 61 * NS), "host": host, "msg": "d"},
        ]
    )
    stored(client, 4, host=host, start=base)
    buckets = client.log_volume(host=host, start=base, end=base + 120 * NS, step=60)
    assert buckets == [
        {"start": rfc(base), "total": 3, "by_severity": {"err": 2, "info": 1}},
        {"start": rfc(base + 60 * NS), "total": 1, "by_severity": {"none": 1}},
    ]


# --- metrics ------------------------------------------------------------------------


def test_promql_without_stored_samples(client):
    need(client, "/api/v1/query")
    t = 1_764_064_800 * NS
    r = client.query("1 + 2", t)
    assert (r.type, r.scalar, r.series) == ("scalar", (t, 3.0), [])
    r = client.query('"text"', t + 500_000_000)
    assert (r.type, r.scalar) == ("string", (t + 500_000_000, "text"))
    r = client.query("vector(4) * 2", dt.datetime(2025, 11, 25, 10, tzinfo=dt.timezone.utc))
    assert [(s.labels, s.timestamp, s.value) for s in r] == [({}, t, 8.0)]
    rng = client.query_range("vector(time())", t, t + 120 * NS, dt.timedelta(minutes=1))
    assert rng.type == "matrix"
    assert rng.series[0].points == [(t + i * 60 * NS, 1_764_064_800.0 + i * 60) for i in range(3)]


def test_push_metrics_then_promql(client):
    need(client, "/api/v1/query")
    need_metric_store(client)
    job = unique("job").replace("-", "_")
    t = recent(300) // (1000 * 1_000_000) * 1000 * 1_000_000  # whole seconds
    samples = [
        killkrill.MetricSample("pyc_requests_total", 10.0, t, {"job": job, "code": "200"}, type="counter"),
        killkrill.MetricSample(
            "pyc_requests_total", 40.0, t + 60 * NS, {"job": job, "code": "200"}, type="counter"
        ),
        {
            "name": "pyc_requests_total",
            "labels": {"job": job, "code": "500"},
            "value": 1,
            "timestamp": t,
            "type": "counter",
        },
        ("pyc_requests_total", {"job": job, "code": "500"}, 4.0, t + 60 * NS),
        ("pyc_temp", {"job": job, "room": 'a "b"\n'}, -2.5, t + 60 * NS),
    ]
    assert client.push_metrics(samples) == 5
    sel = f'pyc_requests_total{{job="{job}"}}'

    def loaded():
        r = client.query(sel, t + 60 * NS)
        return r if len(r) == 2 else None

    res = wait_until("the samples", loaded)
    assert res.type == "vector"
    by_code = {s.labels["code"]: (s.timestamp, s.value) for s in res}
    assert by_code == {"200": (t + 60 * NS, 40.0), "500": (t + 60 * NS, 4.0)}
    assert res.series[0].labels["__name__"] == "pyc_requests_total"

    r = client.query(f"sum by (job) ({sel})", t + 60 * NS)
    assert [(s.labels, s.value) for s in r] == [({"job": job}, 44.0)]

    rng = client.query_range(sel, t, t + 60 * NS, 30)
    assert rng.type == "matrix"
    pts = {s.labels["code"]: s.points for s in rng}
    assert pts["200"] == [(t, 10.0), (t + 30 * NS, 10.0), (t + 60 * NS, 40.0)]
    assert pts["500"] == [(t, 1.0), (t + 30 * NS, 1.0), (t + 60 * NS, 4.0)]

    temp = client.query(f'pyc_temp{{job="{job}"}}', t + 60 * NS)
    assert [(s.labels["room"], s.value) for s in temp] == [('a "b"\n', -2.5)]

    assert client.series(sel, start=t - NS, end=t + 120 * NS) == [
        {"__name__": "pyc_requests_total", "code": "200", "job": job},
        {"__name__": "pyc_requests_total", "code": "500", "job": job},
    ]
    assert client.labels(sel, start=t - NS, end=t + 120 * NS) == ["__name__", "code", "job"]
    assert client.label_values("code", sel, start=t - NS, end=t + 120 * NS) == ["200", "500"]
    assert job in client.label_values("job")


def test_native_metric_query(client):
    need(client, "/api/v1/metrics")
    with pytest.raises(killkrill.ApiError) as e:
        client.query_metrics("x", aggregation="median-ish", step=60)
    assert (e.value.status, e.value.parameter) == (400, "aggregation")
    need_metric_store(client)
    job = unique("native").replace("-", "_")
    t = recent(600) // (60 * NS) * 60 * NS
    client.push_metrics([("pyc_native", {"job": job}, float(i), t + i * 10 * NS) for i in range(12)])
    sel = {"job": job}
    res = wait_until(
        "the samples",
        lambda: [
            s
            for s in client.query_metrics("pyc_native", labels=sel, start=t, end=t + 120 * NS)
            if len(s.points) == 12
        ],
    )
    assert res[0].labels == {"__name__": "pyc_native", "job": job}
    assert res[0].points == [(t + i * 10 * NS, float(i)) for i in range(12)]
    agg = client.query_metrics(
        "pyc_native", labels=sel, start=t, end=t + 120 * NS, step=60, aggregation="sum"
    )
    assert agg.raw["aggregation"] == "sum"
    assert [p for s in agg for p in s.points] == [(t, 15.0), (t + 60 * NS, 51.0)]


def test_push_exposition_text(client):
    need(client, "/api/v1/query")
    need_metric_store(client)
    job = unique("text").replace("-", "_")
    t_ms = recent(100) // 1_000_000 // 1000 * 1000
    body = f'# TYPE pyc_text gauge\npyc_text{{job="{job}"}} 7.25 {t_ms}\n'
    assert client.push_metrics(body) == 1
    res = wait_until("the sample", lambda: client.query(f'pyc_text{{job="{job}"}}', t_ms * 1_000_000).series)
    assert [(s.timestamp, s.value) for s in res] == [(t_ms * 1_000_000, 7.25)]
    om = f'# TYPE pyc_om gauge\npyc_om{{job="{job}"}} 3 {t_ms / 1000}\n# EOF\n'
    assert client.push_metrics(om, openmetrics=True, gzip=True) == 1


# --- errors ----------------------------------------------------------------------------


def test_ingest_errors_carry_the_json_body(client):
    with pytest.raises(killkrill.ApiError) as e:
        client.push_logs(b'{"msg":"ok"}\n{broken\n')
    err = e.value
    assert (err.status, err.error_type, err.message) == (400, "bad_data", "invalid JSON logs")
    assert err.detail.startswith("line 2, column 1")
    assert err.body == {"error": "invalid JSON logs", "detail": err.detail}
    assert err.accepted == 0
    assert str(err) == f"400 bad_data: invalid JSON logs ({err.detail})"

    # The second batch fails: the first one's records are reported stored.
    with pytest.raises(killkrill.ApiError) as e:
        client.push_logs([{"msg": "fine"}, {"msg": "fine"}, {"ts": "not a time", "msg": "x"}], batch_size=2)
    assert e.value.status == 400 and e.value.accepted == 2

    with pytest.raises(killkrill.ApiError) as e:
        client.push_metrics("bad{a=b} 1\n")
    assert e.value.status == 400
    assert e.value.detail == 'line 1, column 6: expected `"` to start the label value, found `b`'

    with pytest.raises(ValueError):
        client.push_logs([{"msg": float("nan")}])


def test_query_errors(client):
    need(client, "/api/v1/query")
    with pytest.raises(killkrill.ApiError) as e:
        client.query("sum(")
    assert (e.value.status, e.value.error_type) == (400, "bad_data")
    assert e.value.body["status"] == "error"
    with pytest.raises(killkrill.ApiError) as e:
        client.query_range("up", 10 * NS, 5 * NS, 1)
    assert e.value.status == 400 and "end" in e.value.message


def test_log_query_errors(client):
    need(client, "/api/v1/logs")
    with pytest.raises(killkrill.ApiError) as e:
        list(client.query_logs(severity="loud"))
    assert (e.value.status, e.value.error_type, e.value.parameter) == (400, "bad_data", "severity")
    with pytest.raises(killkrill.ApiError) as e:
        list(client.query_logs(cursor="garbage"))
    assert e.value.parameter == "cursor"
    with pytest.raises(killkrill.ApiError) as e:
        list(client.query_logs(start=0, end=time.time_ns()))
    assert (e.value.status, e.value.error_type, e.value.limit) == (
        422,
        "limit_exceeded",
        "query.max_range_secs",
    )


def test_unknown_route_and_closed_port(server, client):
    with pytest.raises(killkrill.ApiError) as e:
        client._call(_api.Request("GET", "/api/v1/nothing-here", []))
    assert (e.value.status, e.value.error_type, e.value.message) == (404, "not_found", "no such endpoint")
    assert client.ready() is True
    # Nobody listens: the OS error, not an ApiError.
    dead = killkrill.Client("http://127.0.0.1:1", timeout=2)
    with pytest.raises(OSError):
        dead.ready()


def test_keep_alive_survives_a_server_side_close(server, client):
    """A pooled connection the server closed is replaced, and a POST on it is
    sent once (the server never read it)."""
    host = unique("stale")
    assert client.push_logs([{"host": host, "msg": "one"}]) == 1
    assert client._idle
    for conn in client._idle:
        # As if the server had closed it while idle.
        conn.sock.shutdown(socket.SHUT_RDWR)
    assert client.push_logs([{"host": host, "msg": "two"}]) == 1
    if client._send("GET", "/api/v1/logs", [("killkrill_probe", "1")])[0] not in (404, 405):
        assert sorted(r["message"] for r in stored(client, 2, host=host)) == ["one", "two"]


# --- asyncio ------------------------------------------------------------------------------


def test_async_client_end_to_end(server):
    sync = killkrill.Client(server.url, server.api_key)
    need(sync, "/api/v1/logs")
    host = unique("async")
    t0 = recent(200)

    async def main():
        async with killkrill.AsyncClient(server.url, server.api_key, timeout=10) as c:
            assert await c.ready()
            n = await c.push_logs(
                ({"ts": rfc(t0 + i * 1000), "host": host, "msg": f"a{i}", "i": i} for i in range(120)),
                batch_size=50,
                gzip=True,
            )
            assert n == 120
            for _ in range(300):
                pages = c.query_logs(host=host, start=t0 - NS, page_size=11, order="asc")
                got = [r["attributes"]["i"] async for r in pages]
                if len(got) == 120:
                    break
                await asyncio.sleep(0.05)
            assert got == list(range(120))
            assert pages.pages == 11 and pages.cursor is None
            assert len(await c.query_logs(host=host, start=t0 - NS, limit=15, page_size=4).to_list()) == 15
            with pytest.raises(killkrill.ApiError) as e:
                await c.push_logs(b"{nope\n")
            assert e.value.status == 400 and e.value.detail.startswith("line 1")
            # Concurrent requests share the pool.
            counts = await asyncio.gather(*(c.push_logs([{"host": host, "msg": "c"}]) for _ in range(8)))
            assert counts == [1] * 8

    asyncio.run(main())


def test_async_unknown_route_and_stale_connection(server):
    async def main():
        async with killkrill.AsyncClient(server.url, server.api_key) as c:
            with pytest.raises(killkrill.ApiError) as e:
                await c._call(_api.Request("GET", "/nothing", []))
            assert e.value.status == 404
            assert await c.push_logs([{"msg": "x"}]) == 1
            for conn in c._idle:
                conn.writer.transport.abort()
            assert await c.push_logs([{"msg": "y"}]) == 1

    asyncio.run(main())


# --- documentation examples --------------------------------------------------------------------


def test_client_page_examples(server):
    """docs/src/python-client.md, run with `url` and `api_key` set to the
    test server's."""
    need(killkrill.Client(server.url, server.api_key), "/api/v1/logs")
    need(killkrill.Client(server.url, server.api_key), "/api/v1/query")
    path = REPO / "docs" / "src" / "python-client.md"
    text = path.read_text(encoding="utf-8")
    parser = doctest.DocTestParser()
    globs = {"url": server.url, "api_key": server.api_key}
    test = parser.get_doctest(text, globs, path.name, str(path), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out: List[str] = []
    runner.run(test, out=out.append)
    assert runner.failures == 0, "".join(out)
    assert runner.tries > 10


# --- no server: the pieces --------------------------------------------------------------------


def test_time_and_duration_arguments():
    assert _api.time_param(0) == "1970-01-01T00:00:00.000000000Z"
    assert _api.time_param(1_764_064_800_123_456_789) == "2025-11-25T10:00:00.123456789Z"
    assert _api.time_param(-1) == "1969-12-31T23:59:59.999999999Z"
    assert _api.time_param(1.5) == "1970-01-01T00:00:01.500000000Z"
    assert (
        _api.time_param(dt.datetime(2026, 1, 2, 3, 4, 5, 6, dt.timezone.utc))
        == "2026-01-02T03:04:05.000006000Z"
    )
    assert _api.time_param(dt.timedelta(seconds=-1), now_ns=2 * NS) == "1970-01-01T00:00:01.000000000Z"
    assert _api.time_param("-15m") == "-15m"
    for bad in (True, None, [], ""):
        with pytest.raises((TypeError, ValueError)):
            _api.time_param(bad)  # type: ignore[arg-type]
    assert [_api.duration_param(d) for d in (60, 0.5, dt.timedelta(minutes=2), "5m")] == [
        "60",
        "0.5",
        "120",
        "5m",
    ]
    p = _api.log_filter_params("x y", "warning", "h", None, None, {"k": 1, "b": True}, None, None)
    assert p == [
        ("query", "x y"),
        ("severity", "warning"),
        ("host", "h"),
        ("field.k", "1"),
        ("field.b", "true"),
    ]


def test_exposition_encoding_and_batches():
    samples = [
        ("a_total", {"x": 'q"\\\n'}, 1.0, 1_500_000_123),
        {"name": "b", "value": float("nan")},
        ("a_total", {}, float("inf")),
        killkrill.MetricSample("c", -1.0, None, {"z": "1"}, type="gauge"),
    ]
    ((body, n),) = _api.exposition_batches(samples, 100)
    assert n == 4
    assert body.decode() == (
        'a_total{x="q\\"\\\\\\n"} 1.0 1500\na_total +Inf\nb NaN\n# TYPE c gauge\nc{z="1"} -1.0\n'
    )
    parsed = killkrill.parse_prometheus(body)
    assert [s.name for s in parsed.samples] == ["a_total", "a_total", "b", "c"]
    assert parsed.samples[0].labels == {"x": 'q"\\\n'}
    assert [n for _, n in _api.exposition_batches(samples, 3)] == [3, 1]
    bodies = list(_api.ndjson_batches(({"i": i} for i in range(10)), 4, 1 << 20))
    assert [n for _, n in bodies] == [4, 4, 2]
    assert bodies[2][0] == b'{"i":8}\n{"i":9}\n'
    assert [n for _, n in _api.ndjson_batches(({"i": i} for i in range(10)), 100, 16)] == [2, 2, 2, 2, 2]
    data, h = _api.maybe_gzip(b"x" * 100, True)
    assert h == {"Content-Encoding": "gzip"} and gzip.decompress(data) == b"x" * 100
    assert _api.maybe_gzip(b"x" * 100, None) == (b"x" * 100, {})


def test_errors_from_bodies_that_are_not_the_api_envelope():
    e = _api.error_from_response(502, {"retry-after": "3"}, b"<html>Bad Gateway</html>")
    assert (e.status, e.error_type, e.message, e.retry_after) == (
        502,
        "unavailable",
        "<html>Bad Gateway</html>",
        3.0,
    )
    e = _api.error_from_response(
        422, {}, b'{"status":"error","errorType":"execution","error":"too many samples"}'
    )
    assert (e.error_type, e.message, e.detail) == ("execution", "too many samples", None)
    e = _api.error_from_response(
        429, {"retry-after": "1"}, b'{"error":"queue full, retry later","detail":null}'
    )
    assert (e.error_type, e.retry_after) == ("too_many_requests", 1.0)
    with pytest.raises(killkrill.ProtocolError):
        _api.decode_json(200, {}, b"not json")
    with pytest.raises(ValueError):
        killkrill.Client("ftp://x")


def test_query_result_conversion():
    r = _api.query_result(
        {"resultType": "matrix", "result": [{"metric": {"a": "1"}, "values": [[1.5, "2"], [3, "NaN"]]}]}
    )
    assert r.series[0].points[0] == (1_500_000_000, 2.0)
    assert r.series[0].points[1][0] == 3 * NS
    assert r.series[0].value != r.series[0].value  # NaN
    s = _api.query_result({"resultType": "string", "result": [1, "hi"]})
    assert s.scalar == (NS, "hi") and len(s) == 0
