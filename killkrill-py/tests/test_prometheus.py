"""killkrill-core/src/prometheus through the Python API: parse_prometheus
(text 0.0.4 and OpenMetrics, strict and lenient), Exposition,
MetricFamily, MetricSample, Exemplar, PrometheusParseError, encode; and the
shared corpora `openmetrics/cases.json`, `prometheus/text_cases.json` and
the `alltypes` files."""

import math

import pytest

import killkrill
from conftest import corpus_text, load_corpus

# A valid OpenMetrics document whose sample time does not fit in i64
# nanoseconds: the parser accepts the document, Killkrill cannot store the
# sample, so the Python API raises (kind timestamp_out_of_range).
UNSTORABLE = {"timestamps"}


def test_openmetrics_suite_is_classified_exactly():
    cases = load_corpus("openmetrics/cases.json")
    assert len(cases) == 211
    wrong = []
    good = bad = 0
    for c in cases:
        try:
            expo = killkrill.parse_prometheus(c["input"], format="openmetrics")
            parsed = True
        except killkrill.PrometheusParseError as e:
            parsed = False
            assert e.line >= 1 and e.kind
            if c["name"] in UNSTORABLE:
                assert e.kind == "timestamp_out_of_range", e
                parsed = True
        if parsed != c["should_parse"]:
            wrong.append(f"{c['name']}: should_parse={c['should_parse']}")
        if c["should_parse"]:
            good += 1
            if parsed and c["name"] not in UNSTORABLE:
                # Every sample round-trips through the canonical form.
                for s in expo.samples:
                    assert s.to_dict()["name"] == s.name
        else:
            bad += 1
    assert not wrong, "\n".join(wrong)
    assert (good, bad) == (44, 167)


def test_text_corpus_is_classified_exactly():
    cases = load_corpus("prometheus/text_cases.json")
    assert len(cases) == 26
    wrong = []
    for c in cases:
        try:
            killkrill.parse_prometheus(c["input"])
            parsed = True
        except killkrill.PrometheusParseError:
            parsed = False
        if parsed != c["should_parse"]:
            wrong.append(f"{c['name']}: should_parse={c['should_parse']}")
    assert not wrong, "\n".join(wrong)


def expected_samples(text):
    return sum(1 for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#"))


def test_alltypes_text_file():
    text = corpus_text("prometheus/alltypes.237mfs.prom.txt")
    want = expected_samples(text)
    assert want == 1857
    for strict in (True, False):
        expo = killkrill.parse_prometheus(text.encode(), strict=strict)
        assert len(expo) == want and len(expo.samples) == want
        assert len(expo.families) == 237 and expo.errors == []
    kinds = [f.type for f in expo.families]
    assert [kinds.count(k) for k in ("counter", "gauge", "histogram", "summary")] == [112, 97, 15, 13]
    assert all(f.help is not None and len(f) > 0 for f in expo.families)
    gc = next(f for f in expo.families if f.name == "go_gc_duration_seconds")
    assert [s.name for s in gc.samples] == ["go_gc_duration_seconds"] * 5 + [
        "go_gc_duration_seconds_sum",
        "go_gc_duration_seconds_count",
    ]
    assert gc.samples[2].labels == {"quantile": "0.5"}
    assert gc.samples[2].value == 0.000135819
    assert gc.samples[2].type == "summary"


def test_alltypes_openmetrics_files():
    text = corpus_text("prometheus/alltypes.5mfs.om.txt")
    assert expected_samples(text) == 53
    # Prometheus' client writes a negative `_sum` with negative buckets,
    # which OpenMetrics 1.0 forbids: strict mode says so at that line;
    # lenient mode lets that deviation through.
    with pytest.raises(killkrill.PrometheusParseError) as info:
        killkrill.parse_prometheus(text, format="openmetrics")
    assert (info.value.line, info.value.kind) == (33, "rule")
    expo = killkrill.parse_prometheus(text, format="openmetrics", strict=False)
    assert (len(expo.families), len(expo)) == (5, 53)
    assert expo.errors == []
    hist = corpus_text("prometheus/1histogram.om.txt")
    assert not hist.endswith("\n")
    expo = killkrill.parse_prometheus(hist, format="openmetrics")
    (fam,) = expo.families
    assert fam.type == "histogram"
    assert len(fam) == expected_samples(hist) == 42


EXPOSITION = """# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{code="200",method="get"} 1027 1395066363000
http_requests_total{code="400",method="post"} 3 1395066363000
# TYPE temp gauge
temp NaN
temp{room="b"} +Inf
"""


def test_families_samples_and_to_dict():
    expo = killkrill.parse_prometheus(EXPOSITION)
    assert expo.format == "text"
    assert repr(expo) == "Exposition(format=\"text\", families=2, samples=4, errors=0)"
    fam = expo.families[0]
    assert (fam.name, fam.type, fam.help, fam.unit) == ("http_requests_total", "counter", "Requests.", None)
    assert "http_requests_total" in repr(fam)
    meta = fam.metadata
    assert isinstance(meta, killkrill.MetricMetadata)
    assert (meta.family, meta.type, meta.help, meta.unit) == ("http_requests_total", "counter", "Requests.", None)
    assert meta.to_dict() == {"family": "http_requests_total", "type": "counter", "help": "Requests.", "unit": None}
    s = fam.samples[0]
    assert (s.name, s.labels, s.value, s.timestamp, s.type) == (
        "http_requests_total",
        {"code": "200", "method": "get"},
        1027.0,
        1395066363000000000,
        "counter",
    )
    assert s.tenant is None and s.exemplar is None
    assert s.to_dict() == {
        "name": "http_requests_total",
        "labels": {"code": "200", "method": "get"},
        "value": 1027.0,
        "timestamp": 1395066363000000000,
        "type": "counter",
    }
    assert s.to_json() == (
        '{"name":"http_requests_total","labels":{"code":"200","method":"get"},'
        '"value":1027.0,"timestamp":1395066363000000000,"type":"counter"}'
    )
    nan, inf = expo.families[1].samples
    assert math.isnan(nan.value) and nan.timestamp is None
    assert nan.to_dict()["value"] == "NaN" and inf.to_dict()["value"] == "+Inf"
    d = expo.to_dict()
    assert [f["family"] for f in d["families"]] == ["http_requests_total", "temp"]
    assert d["families"][0]["samples"][1]["labels"] == {"code": "400", "method": "post"}
    assert fam.to_dict() == d["families"][0]
    assert s == expo.samples[0] and s != expo.samples[1]


def test_openmetrics_exemplar_and_unit():
    text = (
        "# TYPE req_seconds histogram\n"
        "# UNIT req_seconds seconds\n"
        'req_seconds_bucket{le="0.5"} 3 # {trace_id="abc"} 0.2 1700000000.5\n'
        'req_seconds_bucket{le="+Inf"} 4\n'
        "req_seconds_count 4\n"
        "req_seconds_sum 1.5\n"
        "# EOF\n"
    )
    expo = killkrill.parse_prometheus(text, format="openmetrics")
    fam = expo.families[0]
    assert (fam.type, fam.unit) == ("histogram", "seconds")
    ex = fam.samples[0].exemplar
    assert isinstance(ex, killkrill.Exemplar)
    assert (ex.labels, ex.value, ex.timestamp) == ({"trace_id": "abc"}, 0.2, 1700000000500000000)
    assert ex.to_dict() == {"labels": {"trace_id": "abc"}, "value": 0.2, "timestamp": 1700000000500000000}
    assert "trace_id" in repr(ex)
    assert expo.to_dict()["families"][0]["samples"][0]["exemplar"]["value"] == 0.2


OPENMETRICS = """# TYPE http_requests counter
# HELP http_requests Requests.
http_requests_total{code="200"} 1027 1395066363.5
# TYPE temp_celsius gauge
# UNIT temp_celsius celsius
temp_celsius 21.5
# EOF
"""


def same_samples(a, b):
    assert [(s.name, s.labels, s.timestamp, s.type) for s in a.samples] == [
        (s.name, s.labels, s.timestamp, s.type) for s in b.samples
    ]


def test_encode_round_trips():
    expo = killkrill.parse_prometheus(EXPOSITION)
    assert expo.encode() == expo.encode("text") == EXPOSITION
    same_samples(expo, killkrill.parse_prometheus(expo.encode()))
    om = killkrill.parse_prometheus(OPENMETRICS, format="openmetrics")
    assert om.format == "openmetrics"
    out = om.encode()
    assert out.endswith("# EOF\n")
    again = killkrill.parse_prometheus(out, format="openmetrics")
    same_samples(om, again)
    assert [f.to_dict() for f in again.families] == [f.to_dict() for f in om.families]
    with pytest.raises(ValueError, match="unknown exposition format"):
        expo.encode("json")


# (input, format, line, column, kind): one table row per error path.
ERRORS = [
    ("a 1\nb 2", "text", 2, 3, "missing_final_newline"),
    ('a{b="x"} y\n', "text", 1, 9, "expected"),
    ('a{b="1",b="2"} 1\n', "text", 1, 8, "duplicate_label"),
    ('a{b="\\x"} 1\n', "text", 1, 5, "invalid_escape"),
    ('a{__name__="x"} 1\n', "text", 1, 2, "reserved_label_name"),
    ("# TYPE a nonsense\na 1\n", "text", 1, None, "unknown_type"),
    ("a 1\n", "openmetrics", 2, None, "missing_eof"),
    ("a 1\n# EOF\nb 2\n", "openmetrics", 3, None, "text_after_eof"),
    ("a 1\n\n# EOF\n", "openmetrics", 2, None, "blank_line"),
]


@pytest.mark.parametrize("text,fmt,line,column,kind", ERRORS)
def test_strict_errors_have_positions(text, fmt, line, column, kind):
    with pytest.raises(killkrill.PrometheusParseError) as info:
        killkrill.parse_prometheus(text, format=fmt)
    e = info.value
    assert isinstance(e, killkrill.ParseError) and isinstance(e, ValueError)
    assert (e.line, e.kind) == (line, kind), str(e)
    if column is not None:
        assert e.column == column, str(e)
    assert e.offset is None
    assert str(e).startswith(f"line {line}")


def test_invalid_utf8_position():
    with pytest.raises(killkrill.PrometheusParseError) as info:
        killkrill.parse_prometheus(b"a 1\nb\xff 2\n")
    assert (info.value.line, info.value.column, info.value.kind) == (2, 1, "invalid_utf8")


def test_lenient_skips_bad_lines_and_lists_them():
    expo = killkrill.parse_prometheus('good 1\nbad{a=b} 2\nalso_good 3\n', strict=False)
    assert [s.name for s in expo.samples] == ["good", "also_good"]
    (err,) = expo.errors
    assert isinstance(err, killkrill.PrometheusParseError)
    assert (err.line, err.column, err.kind) == (2, 6, "expected")
    # The same input is an error in strict mode.
    with pytest.raises(killkrill.PrometheusParseError):
        killkrill.parse_prometheus('good 1\nbad{a=b} 2\nalso_good 3\n')


def test_argument_errors():
    with pytest.raises(ValueError, match="unknown exposition format"):
        killkrill.parse_prometheus("a 1\n", format="influx")
    with pytest.raises(TypeError):
        killkrill.parse_prometheus(None)


def test_large_exposition():
    text = "".join(f'm{{i="{i}"}} {i}\n' for i in range(50000))
    expo = killkrill.parse_prometheus(text)
    assert len(expo) == 50000
    assert expo.samples[-1].value == 49999.0


def test_metric_sample_constructor():
    s = killkrill.MetricSample("x", 1.5, 10, {"a": "1", "e": ""}, type="counter", tenant="acme")
    assert (s.name, s.value, s.timestamp, s.labels, s.type, s.tenant) == ("x", 1.5, 10, {"a": "1"}, "counter", "acme")
    assert s.to_dict() == {"tenant": "acme", "name": "x", "labels": {"a": "1"}, "value": 1.5, "timestamp": 10, "type": "counter"}
    assert killkrill.MetricSample("x", 1, labels=[("b", "2"), ("a", "1")]).labels == {"a": "1", "b": "2"}
    with pytest.raises(ValueError, match="__name__"):
        killkrill.MetricSample("x", 1, labels={"__name__": "y"})
    with pytest.raises(ValueError, match="unknown metric type"):
        killkrill.MetricSample("x", 1, type="bogus")
    with pytest.raises(ValueError):
        killkrill.MetricSample("x", 1, tenant="bad tenant!")
    assert "MetricSample(" in repr(s)
