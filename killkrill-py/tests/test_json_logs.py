"""killkrill-core/src/json_logs through the Python API: parse_json_logs
(object, array, NDJSON; strict and lenient; limits), JsonLogBatch,
LogRecord and JsonLogsError with its location attributes."""

import pytest

import killkrill

RECEIVED = 1_000_000_000  # 1970-01-01T00:00:01Z


def parse(body, **kw):
    kw.setdefault("received", RECEIVED)
    return killkrill.parse_json_logs(body, **kw)


def test_aliases_flattening_and_canonical_json():
    body = b'{"ts":1764090756.5,"level":"warn","msg":"slow","service":"api","host":"web1","http":{"status":503},"tags":["a","b"]}'
    batch = parse(body)
    assert (batch.shape, len(batch), batch.errors, batch.duplicate_fields) == ("ndjson", 1, [], 0)
    (r,) = batch.records
    assert isinstance(r, killkrill.LogRecord)
    assert r.timestamp == 1764090756500000000
    assert r.timestamp_rfc3339 == "2025-11-25T17:12:36.500000000Z"
    assert (r.severity, r.message, r.app, r.host) == ("warning", "slow", "api", "web1")
    assert r.attributes == {"http.status": 503, "tags": '["a","b"]'}
    assert (r.facility, r.procid, r.msgid, r.source, r.parse_error) == (None, None, None, None, None)
    assert r.structured_data == {}
    assert r.message_bytes == b"slow"
    d = r.to_dict()
    assert list(d) == [
        "timestamp", "severity", "facility", "host", "app", "procid", "msgid",
        "structured_data", "message", "attributes",
    ]
    assert d["attributes"] == {"http.status": 503, "tags": '["a","b"]'}
    assert batch.to_dicts() == [d]
    assert r.to_json().startswith('{"timestamp":"2025-11-25T17:12:36.500000000Z","severity":"warning"')
    assert "LogRecord(" in repr(r)
    assert r == parse(body).records[0]


def test_shapes():
    assert parse(b"").shape == "empty" and len(parse(b"  \n")) == 0
    assert parse(b'[{"a":1},{"a":2}]').shape == "array"
    nd = parse(b'{"a":1}\n\n{"a":2}\r\n')
    assert nd.shape == "ndjson" and [r.attributes["a"] for r in nd.records] == [1, 2]
    obj = parse(b'{\n  "a": true,\n  "b": null\n}')
    assert obj.shape == "object" and obj.records[0].attributes == {"a": True, "b": None}
    assert parse('{"msg":"str input"}').records[0].message == "str input"
    assert "ndjson" in repr(nd)


def test_received_time_fills_in_and_defaults_to_now():
    import time

    assert parse(b'{"a":1}').records[0].timestamp == RECEIVED
    before = time.time_ns()
    assert killkrill.parse_json_logs(b'{"a":1}').records[0].timestamp >= before


def test_duplicate_fields_are_counted():
    batch = parse(b'{"a":1,"a":2}')
    assert batch.duplicate_fields == 1
    assert batch.records[0].attributes == {"a": 2}


# (body, error text, line, column, location, record, kind)
ERRORS = [
    (b'{"a":1}\n{"a":1x}', "line 2, column 6: expected `,` or `}`", 2, 6, "line", 2, "syntax"),
    (b'{"a":1}\n\n[1]', "line 3, column 0: expected a JSON object, found an array", 3, 0, "line", 3, "not_an_object"),
    (b"plain text", "line 1, column 0: expected value", 1, 0, "line", 1, "syntax"),
    (b'[{"a":1},[2]]', "index 1, line 1, column 9: expected a JSON object, found an array", 1, 9, "index", 1, "not_an_object"),
    (b'{"a":1', "line 1, column 5: EOF while parsing an object", 1, 5, "line", 1, "syntax"),
]


@pytest.mark.parametrize("body,text,line,column,location,record,kind", ERRORS)
def test_strict_errors_have_locations(body, text, line, column, location, record, kind):
    with pytest.raises(killkrill.JsonLogsError) as info:
        parse(body)
    e = info.value
    assert isinstance(e, killkrill.ParseError) and isinstance(e, ValueError)
    assert str(e) == text
    assert (e.line, e.column, e.location, e.record, e.kind) == (line, column, location, record, kind)
    assert e.offset is not None and e.offset >= column
    assert e.field is None
    assert e.detail == text.split(": ", 1)[1]


def test_offset_is_the_byte_in_the_body():
    with pytest.raises(killkrill.JsonLogsError) as info:
        parse(b'{"a":1}\n{"a":1x}')
    assert info.value.offset == 8 + 6


def test_field_errors_name_the_field():
    with pytest.raises(killkrill.JsonLogsError) as info:
        parse(b'{"user":{"name":"' + b"x" * 20 + b'"}}', max_string_bytes=10)
    e = info.value
    assert (e.field, e.kind) == ("user.name", "string_too_long")
    assert 'field "user.name": string longer than 10 bytes' in str(e)


def test_invalid_timestamp():
    with pytest.raises(killkrill.JsonLogsError) as info:
        parse(b'{"timestamp":"yesterday","msg":"x"}')
    assert info.value.kind == "invalid_timestamp"
    assert info.value.field == "timestamp"
    lenient = parse(b'{"timestamp":"yesterday","msg":"x"}', strict=False)
    (r,) = lenient.records
    assert r.timestamp == RECEIVED and r.message == "x" and r.parse_error
    assert lenient.errors[0].kind == "invalid_timestamp"


@pytest.mark.parametrize(
    "limit,value,body,kind",
    [
        ("max_body_bytes", 5, b'{"a":1}', "body_too_large"),
        ("max_records", 1, b'{"a":1}\n{"a":2}', "too_many_records"),
        ("max_fields", 1, b'{"a":1,"b":2}', "too_many_fields"),
        ("max_depth", 1, b'{"a":{"b":1}}', "too_deep"),
        ("max_string_bytes", 2, b'{"abc":1}', "key_too_long"),
        ("max_line_bytes", 5, b'{"a":1}\n{"b":2}', "line_too_long"),
    ],
)
def test_limits(limit, value, body, kind):
    with pytest.raises(killkrill.JsonLogsError) as info:
        parse(body, **{limit: value})
    assert info.value.kind == kind
    # Within the limit it parses.
    parse(body)


def test_body_limits_fail_in_lenient_mode_too():
    with pytest.raises(killkrill.JsonLogsError) as info:
        parse(b'{"a":1}', strict=False, max_body_bytes=3)
    e = info.value
    assert (e.location, e.record, e.line, e.column, e.offset) == ("body", None, None, None, None)


def test_lenient_keeps_raw_records():
    body = b'{"msg":"ok"}\nplain text\n{"msg":"ok2"}'
    batch = parse(body, strict=False)
    assert [r.message for r in batch.records] == ["ok", "plain text", "ok2"]
    raw = batch.records[1]
    assert raw.timestamp == RECEIVED
    assert raw.parse_error == "column 0: expected value"
    (err,) = batch.errors
    assert isinstance(err, killkrill.JsonLogsError)
    assert (err.line, err.record, err.kind) == (2, 2, "syntax")
    assert batch.to_dicts()[1]["parse_error"] == "column 0: expected value"


def test_input_types_and_errors():
    assert len(parse(bytearray(b'{"a":1}'))) == 1
    with pytest.raises(TypeError):
        parse(1.5)


def test_large_body():
    body = b"\n".join(b'{"ts":%d,"level":"info","msg":"m%d"}' % (1700000000 + i, i) for i in range(20000))
    batch = parse(body)
    assert len(batch) == 20000
    assert batch.records[-1].message == "m19999"
    assert batch.records[-1].timestamp == (1700000000 + 19999) * 1_000_000_000
