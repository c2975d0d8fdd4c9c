"""killkrill-core/src/aggregate through the Python API: Aggregator (config,
add, add_samples, flush, counters), Rollup (count/sum/min/max/first/last/
mean/increase/quantiles), merge_rollups, ConfigError, and lateness,
rejections and limits."""

import math

import pytest

import killkrill

S = 1_000_000_000  # nanoseconds per second


def test_windows_and_statistics():
    agg = killkrill.Aggregator(["10s", "1m"])
    assert agg.resolutions == [10 * S, 60 * S]
    for t, v in [(1, 4.0), (3, 1.0), (7, 9.0), (12, 2.0)]:
        report = agg.add("cpu", v, t * S, {"host": "a"})
        assert report == {"aggregated": 1, "late_count": 0, "late": [], "rejected": []}
    assert agg.series_count == 1 and agg.open_windows == 3
    rollups = agg.flush()
    got = [(r.resolution_text, r.window_start // S, r.count, r.sum, r.min, r.max) for r in rollups]
    assert got == [("10s", 0, 3, 14.0, 1.0, 9.0), ("10s", 10, 1, 2.0, 2.0, 2.0), ("1m", 0, 4, 16.0, 1.0, 9.0)]
    minute = rollups[2]
    assert (minute.name, minute.labels, minute.tenant, minute.late) == ("cpu", {"host": "a"}, "default", False)
    assert (minute.resolution, minute.window_end) == (60 * S, 60 * S)
    assert minute.first == (1 * S, 4.0) and minute.last == (12 * S, 2.0)
    assert minute.mean == 4.0
    assert "Rollup(" in repr(minute)
    d = minute.to_dict()
    assert d["count"] == 4 and d["sum"] == 16.0 and d["resolution"] == "1m"
    assert d["first"] == (1 * S, 4.0) and set(d["quantiles"]) == {"p50", "p90", "p99"}
    assert agg.flush() == []  # nothing new since


def test_counter_increase_with_reset():
    agg = killkrill.Aggregator(["10s", "1m"])
    agg.add("http_requests_total", 10.0, 0, {"job": "api"}, type="counter")
    agg.add("http_requests_total", 12.0, 5 * S, {"job": "api"}, type="counter")
    first = agg.flush()
    agg.add("http_requests_total", 3.0, 7 * S, {"job": "api"}, type="counter")  # a reset
    second = agg.flush()
    merged = killkrill.merge_rollups(first + second)
    minute = next(r for r in merged if r.resolution == 60 * S)
    assert (minute.count, minute.sum, minute.increase) == (3, 25.0, 5.0)


def test_quantiles_within_relative_accuracy():
    agg = killkrill.Aggregator(["1m"], relative_accuracy=0.01)
    samples = [killkrill.MetricSample("latency", float(v), S) for v in range(1, 1001)]
    assert agg.add_samples(samples)["aggregated"] == 1000
    (r,) = agg.flush()
    for q, exact in [(0.5, 500), (0.9, 900), (0.99, 990), (0.0, 1), (1.0, 1000)]:
        got = r.quantile(q)
        assert abs(got - exact) <= 0.01 * exact + 1e-9, (q, got)
    assert isinstance(r.sketch_bytes(), bytes) and len(r.sketch_bytes()) > 0
    with pytest.raises(ValueError, match="outside"):
        r.quantile(1.5)


def test_sketch_off():
    agg = killkrill.Aggregator(["1m"], sketch=False)
    agg.add("x", 1.0, 0)
    (r,) = agg.flush()
    assert r.quantile(0.5) is None and r.sketch_bytes() is None
    assert "quantiles" not in r.to_dict()


def test_samples_from_parsers_and_tenants():
    expo = killkrill.parse_prometheus('m{a="1"} 1 1000\nm{a="1"} 5 2000\nm{a="2"} 7 3000\n', strict=False)
    agg = killkrill.Aggregator(["1m"])
    report = agg.add_samples(expo.samples, batch_id=42)
    assert report["aggregated"] == 3
    agg.add("m", 2.0, 1 * S, {"a": "1"}, tenant="acme")
    rollups = agg.flush()
    got = sorted((r.tenant, r.labels["a"], r.count, r.sum) for r in rollups)
    assert got == [("acme", "1", 1, 2.0), ("default", "1", 2, 6.0), ("default", "2", 1, 7.0)]


def test_rejections_are_reported_and_counted():
    agg = killkrill.Aggregator(["10s"], max_series_per_metric=1)
    report = agg.add_samples(
        [
            killkrill.MetricSample("m", 1.0, S, {"s": "a"}),
            killkrill.MetricSample("m", math.nan, S, {"s": "a"}),
            killkrill.MetricSample("m", 1.0, None, {"s": "a"}),
            killkrill.MetricSample("m", 1.0, S, {"s": "b"}),
            killkrill.MetricSample("m", math.inf, S, {"s": "a"}),
        ]
    )
    assert report["aggregated"] == 1
    assert report["rejected"] == [(1, "non_finite"), (2, "missing_timestamp"), (3, "cardinality"), (4, "non_finite")]
    c = agg.counters
    assert (c["received"], c["aggregated"], c["rejected_non_finite"], c["rejected_missing_timestamp"], c["rejected_cardinality"]) == (5, 1, 2, 1, 1)


def test_open_window_bound():
    agg = killkrill.Aggregator(["10s", "1m"], allowed_lateness="0s", max_open_windows=4)
    report = agg.add_samples([killkrill.MetricSample("m", 1.0, S, {"k": k}) for k in "abc"])
    assert report["rejected"] == [(2, "open_windows")]
    assert agg.needs_flush
    assert agg.counters["rejected_open_windows"] == 1


# (policy, sample time in s, late resolution indices, late partials flushed),
# after a first sample at t=100 with resolutions 10s and 1m and lateness 10s.
LATENESS = [
    ("drop", 95, [], 0),
    ("drop", 85, [0], 0),
    ("drop", 50, [0, 1], 0),
    ("output", 85, [0], 0),
    ("output", 50, [0, 1], 0),
    ("aggregate", 85, [0], 1),
    ("aggregate", 50, [0, 1], 2),
    ("drop", 90, [], 0),
    ("drop", 89, [0], 0),
]


@pytest.mark.parametrize("policy,t,late,late_partials", LATENESS)
def test_lateness_routing(policy, t, late, late_partials):
    agg = killkrill.Aggregator(["1m", "10s"], allowed_lateness="10s", late_samples=policy)
    assert agg.resolutions == [10 * S, 60 * S]  # ascending
    agg.add("m", 1.0, 100 * S, {"k": "a"})
    r = agg.add("m", 2.0, t * S, {"k": "a"})
    is_late = bool(late)
    assert r["late_count"] == int(is_late)
    assert r["aggregated"] == int(len(late) < 2)
    assert r["late"] == ([(0, late)] if is_late and policy == "output" else [])
    c = agg.counters
    assert c["late"] == int(is_late)
    assert c[f"late_{ {'drop': 'dropped', 'output': 'output', 'aggregate': 'aggregated'}[policy]}"] == int(is_late)
    late_rollups = [x for x in agg.flush() if x.late]
    assert len(late_rollups) == late_partials
    assert all((x.count, x.sum) == (1, 2.0) for x in late_rollups)


def test_flush_evicts_closed_windows():
    agg = killkrill.Aggregator(["10s"], allowed_lateness="0s")
    agg.add("m", 1.0, 1 * S)
    agg.add("m", 1.0, 25 * S)
    assert agg.open_windows == 2
    agg.flush()
    assert agg.open_windows == 1
    assert agg.counters["flushes"] == 1 and agg.counters["partials_flushed"] == 2


def test_config_and_errors():
    agg = killkrill.Aggregator()
    assert agg.config == {
        "resolutions": ["10s", "1m", "5m", "1h"],
        "allowed_lateness": "30s",
        "late_samples": "drop",
        "max_series_per_metric": 10000,
        "max_open_windows": 1000000,
        "sketch": {"enabled": True, "relative_accuracy": 0.01, "max_buckets": 2048},
    }
    assert "Aggregator(" in repr(agg)
    bad = [
        (dict(resolutions=[]), "resolutions"),
        (dict(resolutions=["0s"]), "resolutions[0]"),
        (dict(resolutions=["10s", "10s"]), "resolutions[1]"),
        (dict(allowed_lateness="8days"), "allowed_lateness"),
        (dict(relative_accuracy=0.9), "sketch.relative_accuracy"),
        (dict(max_buckets=1), "sketch.max_buckets"),
        (dict(max_series_per_metric=0), "max_series_per_metric"),
        (dict(resolutions=["ten seconds"]), "aggregate"),
        (dict(late_samples="keep"), "aggregate"),
    ]
    for kwargs, key in bad:
        with pytest.raises(killkrill.ConfigError) as info:
            killkrill.Aggregator(**kwargs)
        assert isinstance(info.value, ValueError)
        assert info.value.key == key, (kwargs, info.value.key, str(info.value))
    with pytest.raises(ValueError, match="unknown metric type"):
        agg.add("m", 1.0, 0, type="bogus")
    with pytest.raises(ValueError, match="__name__"):
        agg.add("m", 1.0, 0, {"__name__": "x"})
    with pytest.raises(ValueError):
        agg.add("m", 1.0, 0, tenant="not a tenant!")


def test_merge_rollups_is_order_independent():
    parts = []
    agg = killkrill.Aggregator(["1m"], allowed_lateness="1h")
    for i in range(6):
        agg.add("m", float(i), i * S)
        parts += agg.flush()
    assert len(parts) == 6
    forward = killkrill.merge_rollups(parts)
    backward = killkrill.merge_rollups(list(reversed(parts)))
    assert len(forward) == 1
    for r in (forward[0], backward[0]):
        assert (r.count, r.sum, r.min, r.max, r.first, r.last) == (6, 15.0, 0.0, 5.0, (0, 0.0), (5 * S, 5.0))
    assert killkrill.merge_rollups([]) == []


def test_merge_rejects_mismatched_sketches():
    a = killkrill.Aggregator(["1m"], relative_accuracy=0.01)
    b = killkrill.Aggregator(["1m"], relative_accuracy=0.02)
    a.add("m", 1.0, 0)
    b.add("m", 2.0, 0)
    with pytest.raises(ValueError):
        killkrill.merge_rollups(a.flush() + b.flush())


def test_large_batch():
    samples = [killkrill.MetricSample("m", float(i % 100), i * 1_000_000, {"s": str(i % 10)}) for i in range(50000)]
    agg = killkrill.Aggregator(["10s"], allowed_lateness="1h")
    assert agg.add_samples(samples)["aggregated"] == 50000
    rollups = agg.flush()
    assert sum(r.count for r in rollups) == 50000
