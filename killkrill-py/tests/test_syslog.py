"""killkrill-core/src/syslog through the Python API: SyslogParser,
SyslogMessage, parse_syslog, SyslogParseError, and the shared corpora
`syslog/rfc5424.json` and `syslog/rfc3164.json`."""

from datetime import datetime, timezone

import pytest

import killkrill
from conftest import case_input, load_corpus
from syslog_corpus import BOM, check_full, check_header, rfc3339_nanos

def test_rfc5424_corpus():
    cases = load_corpus("syslog/rfc5424.json")
    assert len(cases) == 205
    errs = []
    valid = invalid = 0
    for case in cases:
        cid = case["id"]
        data = case_input(case)
        compliant = case["mode"] == "compliant_msg"
        strict = killkrill.SyslogParser(strict=True, format="rfc5424", compliant_msg=compliant)
        lenient_parser = killkrill.SyslogParser(format="rfc5424", compliant_msg=compliant)
        lenient = lenient_parser.parse(data)
        if case["valid"]:
            valid += 1
            try:
                check_full(strict.parse(data), case["expected"], cid, errs)
            except killkrill.SyslogParseError as e:
                errs.append(f"{cid}: valid but rejected: {e}")
            check_full(lenient, case["expected"], f"{cid} (lenient)", errs)
            if lenient.error is not None:
                errs.append(f"{cid}: lenient error on a valid case")
            continue
        invalid += 1
        with pytest.raises(killkrill.SyslogParseError) as info:
            strict.parse(data)
        e = info.value
        if (e.kind, e.column) != (case["error_kind"], case["error_column"]):
            errs.append(f"{cid}: error {e.kind}@{e.column} ({e}), want {case['error_kind']}@{case['error_column']}")
        assert isinstance(e, killkrill.ParseError) and isinstance(e, ValueError)
        assert (e.line, e.offset) == (1, e.column)
        le = lenient.error
        if le is None or (le.kind, le.column, str(le)) != (e.kind, e.column, str(e)):
            errs.append(f"{cid}: lenient error {le!r} != strict {e!r}")
        want_raw = data if data else None
        if lenient.message != want_raw or lenient.structured_data:
            errs.append(f"{cid}: lenient did not keep the frame raw")
        if case.get("partial") is not None:
            check_header(lenient, case["partial"], True, f"{cid} (partial)", errs)
        if case.get("valid_without_compliant_msg"):
            killkrill.SyslogParser(strict=True, format="rfc5424").parse(data)
    assert not errs, "\n".join(errs)
    assert (valid, invalid) == (64, 141)


# (case id, field, our value, why): where we deliberately differ from
# syslog_loose; the same table as killkrill-core/tests/syslog_rfc3164_corpus.rs.
RAW = object()
DEVIATIONS = [
    ("syslog-loose-08", "structured_data", [], "a space after '=' breaks the SD grammar; kept raw"),
    ("syslog-loose-08", "message", RAW, "kept raw with parse_error"),
    ("syslog-loose-11", "appname", None, "a word without ':' after the host is message text"),
    ("syslog-loose-11", "message", "außerplanmäßig größenordnungsmäßig", "see appname"),
    ("syslog-loose-13", "message", None, "an empty MSG is absent"),
    ("syslog-loose-13", "protocol", "rfc5424", "`<75>1 ...` is RFC 5424"),
    ("syslog-loose-15", "structured_data", [], "kept raw with parse_error"),
    ("syslog-loose-15", "message", RAW, "kept raw with parse_error"),
    ("syslog-loose-16", "structured_data", [], "as syslog-loose-15"),
    ("syslog-loose-16", "message", RAW, "kept raw with parse_error"),
    ("syslog-loose-21", "message", "i am foobar\n            ", "trailing whitespace is message text"),
]
EXPECTS_PARSE_ERROR = {"syslog-loose-08", "syslog-loose-15", "syslog-loose-16"}


def rfc3164_parser(case, strict=False):
    po = case["parser_options"]
    fmt = {"RFC5424": "rfc5424", "RFC3164": "rfc3164"}.get(po.get("variant"), "auto")
    now = "2019-06-01T00:00:00Z" if po.get("year") == "always 2019 (not a leap year)" else "2020-01-20T00:00:00Z"
    return killkrill.SyslogParser(
        strict=strict, format=fmt, now=rfc3339_nanos(now), time_zone=po.get("tz") or "UTC"
    )


def offset_secs(exp_ts, case):
    off = exp_ts.get("offset")
    if off and off[0] in "+-":
        sign = -1 if off[0] == "-" else 1
        return sign * (int(off[1:3]) * 3600 + int(off[4:6]) * 60)
    assert case["parser_options"].get("tz") is None, "tz cases give offsets"
    return 0


def sd_pairs(sd):
    out = []
    for sd_id, params in sd.items():
        pairs = []
        for name, value in params.items():
            for v in value if isinstance(value, list) else [value]:
                pairs.append([name, v])
        out.append({"id": sd_id, "params": pairs})
    return out


def test_rfc3164_corpus():
    cases = load_corpus("syslog/rfc3164.json")
    assert len(cases) == 44
    errs = []
    for case in cases:
        cid = case["id"]
        data = case["input"].encode("utf-8")
        got = rfc3164_parser(case).parse(data)
        if not case["valid"]:
            with pytest.raises(killkrill.SyslogParseError):
                rfc3164_parser(case, strict=True).parse(data)
            needs_error = data.startswith(b"<")
            if (got.error is not None) != needs_error or got.message != data:
                errs.append(f"{cid}: lenient did not keep it raw: {got!r}")
            continue
        exp = dict(case["expected"])
        for dev_id, field, value, _why in DEVIATIONS:
            if dev_id == cid:
                exp[field] = case["input"] if value is RAW else value
        if (got.error is not None) != (cid in EXPECTS_PARSE_ERROR):
            errs.append(f"{cid}: error {got.error!r}")
        for field, value in [
            ("priority", got.priority),
            ("facility", got.facility),
            ("severity", got.severity),
            ("hostname", got.hostname),
            ("appname", got.appname),
            ("procid", got.procid),
            ("msgid", got.msgid),
            ("message", got.text),
            ("protocol", got.protocol),
            ("structured_data", sd_pairs(got.structured_data)),
        ]:
            if value != exp[field]:
                errs.append(f"{cid}: {field}: got {value!r}, want {exp[field]!r}")
        exp_ts = exp["timestamp"]
        if exp_ts is None:
            if got.timestamp is not None:
                errs.append(f"{cid}: timestamp {got.timestamp_rfc3339}, want none")
            continue
        if got.timestamp is None:
            errs.append(f"{cid}: no timestamp, want {exp_ts}")
            continue
        off = offset_secs(exp_ts, case)
        civil = datetime.fromtimestamp(got.timestamp // 1_000_000_000 + off, timezone.utc)
        g = (civil.month, civil.day, civil.hour, civil.minute, civil.second, got.timestamp % 1_000_000_000 // 1000)
        w = tuple(exp_ts[k] for k in ("month", "day", "hour", "minute", "second", "microsecond"))
        if g != w:
            errs.append(f"{cid}: timestamp {g} != {w}")
        if exp_ts.get("year") is not None and civil.year != exp_ts["year"]:
            errs.append(f"{cid}: year {civil.year} != {exp_ts['year']}")
    assert not errs, "\n".join(errs)


EXAMPLE = b'<165>1 2003-10-11T22:14:15.003Z web1 evntslog 77 ID47 [ex@32473 iut="3" src="a" src="b"][origin ip="10.0.0.1"] An event'


def test_message_attributes():
    m = killkrill.parse_syslog(EXAMPLE)
    assert m.protocol == "rfc5424"
    assert (m.priority, m.facility, m.severity) == (165, 20, 5)
    assert (m.facility_name, m.severity_name) == ("local4", "notice")
    assert m.version == 1
    assert m.timestamp == 1065910455003000000
    assert m.timestamp_rfc3339 == "2003-10-11T22:14:15.003000000Z"
    assert (m.hostname, m.appname, m.procid, m.msgid) == ("web1", "evntslog", "77", "ID47")
    assert m.structured_data == {"ex@32473": {"iut": "3", "src": ["a", "b"]}, "origin": {"ip": "10.0.0.1"}}
    assert m.message == b"An event" and m.text == "An event"
    assert m.bom is False and m.sequence is None and m.error is None
    assert "web1" in repr(m)


def test_to_dict_is_the_canonical_json():
    m = killkrill.parse_syslog(EXAMPLE)
    d = m.to_dict()
    assert list(d) == [
        "timestamp", "severity", "facility", "host", "app", "procid", "msgid",
        "structured_data", "message",
    ]
    assert d == {
        "timestamp": "2003-10-11T22:14:15.003000000Z",
        "severity": "notice",
        "facility": "local4",
        "host": "web1",
        "app": "evntslog",
        "procid": "77",
        "msgid": "ID47",
        "structured_data": {"ex@32473": {"iut": "3", "src": ["a", "b"]}, "origin": {"ip": "10.0.0.1"}},
        "message": "An event",
    }
    assert m.to_json() == (
        '{"timestamp":"2003-10-11T22:14:15.003000000Z","severity":"notice","facility":"local4",'
        '"host":"web1","app":"evntslog","procid":"77","msgid":"ID47","structured_data":'
        '{"ex@32473":{"iut":"3","src":["a","b"]},"origin":{"ip":"10.0.0.1"}},"message":"An event"}'
    )


def test_to_record_fills_the_receive_time_only_when_missing():
    no_ts = killkrill.parse_syslog(b"<13>1 - host app - - - hi")
    assert no_ts.timestamp is None
    r = no_ts.to_record(received=1_000_000_000)
    assert isinstance(r, killkrill.LogRecord)
    assert r.timestamp == 1_000_000_000
    assert r.timestamp_rfc3339 == "1970-01-01T00:00:01.000000000Z"
    assert (r.host, r.app, r.message, r.severity, r.facility) == ("host", "app", "hi", "notice", "user")
    assert no_ts.to_dict(received=0)["timestamp"] == "1970-01-01T00:00:00.000000000Z"
    # Default: now.
    import time

    before = time.time_ns()
    assert no_ts.to_record().timestamp >= before
    with_ts = killkrill.parse_syslog(EXAMPLE)
    assert with_ts.to_record(received=0).timestamp == with_ts.timestamp


def test_non_utf8_message_keeps_bytes_and_base64():
    m = killkrill.parse_syslog(b"<13>1 - h a - - - caf\xe9")
    assert m.message == b"caf\xe9"
    assert m.text == "caf\ufffd"
    d = m.to_dict(received=0)
    assert d["message"] == "caf\ufffd" and d["message_base64"] == "Y2Fm6Q=="
    assert m.to_record(received=0).message_bytes == b"caf\xe9"


def test_bom_is_removed_and_flagged():
    m = killkrill.parse_syslog(b"<13>1 - h a - - - \xef\xbb\xbfhello")
    assert (m.message, m.bom) == (b"hello", True)


def test_strict_error_attributes():
    with pytest.raises(killkrill.SyslogParseError) as info:
        killkrill.parse_syslog(b"<13>1 2003-10-11X22:14:15Z h a - - -", strict=True, format="rfc5424")
    e = info.value
    assert (e.kind, e.line, e.column, e.offset) == ("timestamp", 1, 16, 16)
    assert e.expected
    assert str(e).startswith("invalid TIMESTAMP at column 16")


def test_lenient_keeps_raw_with_error():
    frame = b'<29>1 2016-01-15T01:00:43Z hn S - - [meta escape="\\n"] tail'
    m = killkrill.parse_syslog(frame)
    assert m.message == frame
    assert (m.hostname, m.appname) == ("hn", "S")
    assert m.structured_data == {}
    e = m.error
    assert isinstance(e, killkrill.SyslogParseError)
    assert e.kind == "sd_param_escape"
    assert m.to_dict(received=0)["parse_error"] == str(e)
    # The strict parser raises the same error.
    with pytest.raises(killkrill.SyslogParseError) as info:
        killkrill.SyslogParser(strict=True).parse(frame)
    assert (info.value.kind, info.value.column) == (e.kind, e.column)


def test_rfc3164_with_time_zone_and_fixed_now():
    now = rfc3339_nanos("2020-01-20T00:00:00Z")
    p = killkrill.SyslogParser(format="rfc3164", time_zone="+02:00", now=now)
    m = p.parse(b"<34>Oct 11 22:14:15 mymachine su[42]: 'su root' failed")
    assert m.protocol == "rfc3164"
    assert m.timestamp_rfc3339 == "2019-10-11T20:14:15.000000000Z"
    assert (m.hostname, m.appname, m.procid, m.text) == ("mymachine", "su", "42", "'su root' failed")
    assert m.version is None


def test_cisco_sequence_number():
    m = killkrill.parse_syslog(b"<189>123: *Mar  1 18:48:50.483 UTC: %SYS-5-CONFIG_I: Configured", now=rfc3339_nanos("2020-06-01T00:00:00Z"))
    assert m.sequence == 123
    assert m.to_dict(received=0)["attributes"] == {"syslog.sequence": 123}


def test_input_types():
    text = EXAMPLE.decode()
    assert killkrill.parse_syslog(text).hostname == "web1"
    assert killkrill.parse_syslog(bytearray(EXAMPLE)).hostname == "web1"
    with pytest.raises(TypeError):
        killkrill.parse_syslog(42)


def test_parser_options_and_errors():
    p = killkrill.SyslogParser(strict=True, format="rfc5424", time_zone="Europe/Paris")
    assert (p.strict, p.format, p.time_zone) == (True, "rfc5424", "Europe/Paris")
    assert "strict=True" in repr(p)
    with pytest.raises(ValueError, match="unknown syslog format"):
        killkrill.SyslogParser(format="cef")
    with pytest.raises(ValueError, match="unknown time zone"):
        killkrill.SyslogParser(time_zone="Mars/Olympus")
    # Format forced to RFC 5424 rejects RFC 3164 in strict mode.
    with pytest.raises(killkrill.SyslogParseError):
        p.parse(b"<34>Oct 11 22:14:15 host app: msg")


def test_compliant_msg_option():
    frame = b"<13>1 - h a - - - \xef\xbb\xbf\xff"
    assert killkrill.parse_syslog(frame, strict=True).message == b"\xff"
    with pytest.raises(killkrill.SyslogParseError) as info:
        killkrill.parse_syslog(frame, strict=True, compliant_msg=True)
    assert info.value.kind == "msg_not_compliant"


def test_rfc3164_structured_data_option():
    frame = b'<13>Oct 11 22:14:15 host app: [origin ip="1.2.3.4"] text'
    on = killkrill.SyslogParser(now=0).parse(frame)
    off = killkrill.SyslogParser(now=0, rfc3164_structured_data=False).parse(frame)
    assert on.structured_data == {"origin": {"ip": "1.2.3.4"}}
    assert off.structured_data == {}
    assert off.text.startswith("[origin")


def test_parse_many_releases_the_gil_and_reports_the_index():
    p = killkrill.SyslogParser(strict=True)
    msgs = p.parse_many([b"<13>1 - a b - - - one", "<13>1 - a b - - - two"])
    assert [m.text for m in msgs] == ["one", "two"]
    with pytest.raises(killkrill.SyslogParseError) as info:
        p.parse_many([b"<13>1 - a b - - - ok", b"<13>1 bad"])
    assert info.value.index == 1
    assert info.value.kind == "timestamp"
    assert killkrill.SyslogParser().parse_many([]) == []


def test_parse_stream_frames_and_parses():
    p = killkrill.SyslogParser(strict=True)
    stream = b"16 <1>1 - - - - - -<13>1 - h a - - - two\n<14>1 - h a - - - three"
    items = p.parse_stream(stream)
    assert [type(i).__name__ for i in items] == ["SyslogMessage"] * 3
    assert [i.priority for i in items] == [1, 13, 14]
    assert items[2].text == "three"
    bad = p.parse_stream(b"abc\n16 <1>1 - - - - - -", framing="octet_counting")
    assert isinstance(bad[0], killkrill.BadFrame)
    assert (bad[0].kind, bad[0].found, bad[0].expected) == ("bad_length", b"a", "MSG-LEN")
    assert bad[1].priority == 1
    with pytest.raises(killkrill.SyslogParseError) as info:
        p.parse_stream(b"<13>1 - h a - - - ok\n<13>1 broken\n")
    assert info.value.frame == 1
    lenient = killkrill.SyslogParser().parse_stream(b"<13>1 - h a - - - ok\n<13>1 broken\n")
    assert lenient[1].error.kind == "timestamp"
    too_long = killkrill.SyslogParser().parse_stream(b"x" * 20 + b"\nshort\n", max_frame_len=10)
    assert isinstance(too_long[0], killkrill.BadFrame) and too_long[0].kind == "too_long"
    assert too_long[1].text == "short"
    with pytest.raises(ValueError, match="unknown framing mode"):
        p.parse_stream(b"", framing="bogus")


def test_parse_stream_large_input():
    line = b"<13>1 2020-01-01T00:00:00Z host app 1 - - message number %d\n"
    data = b"".join(line % i for i in range(20000))
    items = killkrill.SyslogParser(strict=True).parse_stream(data)
    assert len(items) == 20000
    assert items[-1].text == "message number 19999"


def test_threads_share_one_parser():
    """The parser is stateless and the GIL is released while parsing a
    stream, so threads can share it; every thread gets its own results."""
    from concurrent.futures import ThreadPoolExecutor

    parser = killkrill.SyslogParser(strict=True)

    def work(n):
        data = b"".join(b"<13>1 - host app - - - thread %d line %d\n" % (n, i) for i in range(5000))
        items = parser.parse_stream(data)
        return n, len(items), items[-1].text

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = sorted(pool.map(work, range(8)))
    assert results == [(n, 5000, f"thread {n} line 4999") for n in range(8)]
