//! Every error message with its exact location, every limit, and what
//! lenient mode keeps.

use killkrill_core::json_logs::{JsonLogLimits, JsonLogParser, Mode};

use crate::brief::{RECEIVED, brief, parse_with};

const D: JsonLogLimits = JsonLogLimits::DEFAULT;

#[test]
fn syntax_and_type_errors_name_record_and_column() {
    let cases: &[(&[u8], &str)] = &[
        // NDJSON: line number, column within the line
        (
            b"{\"a\":1}\n{\"a\":1x}",
            "line 2, column 6: expected `,` or `}`",
        ),
        (
            b"{\"a\":1}\n\n[1]",
            "line 3, column 0: expected a JSON object, found an array",
        ),
        (
            b"\"s\"",
            "line 1, column 2: expected a JSON object, found a string",
        ),
        (
            b"42",
            "line 1, column 1: expected a JSON object, found a number",
        ),
        (
            b"-4.5e1",
            "line 1, column 5: expected a JSON object, found a number",
        ),
        (
            b"true",
            "line 1, column 3: expected a JSON object, found a boolean",
        ),
        (
            b"null",
            "line 1, column 3: expected a JSON object, found null",
        ),
        (b"plain text", "line 1, column 0: expected value"),
        // a byte-order mark is not counted in columns
        (b"\xef\xbb\xbfplain", "line 1, column 0: expected value"),
        (
            b"\xef\xbb\xbf[1]",
            "index 0, line 1, column 1: expected a JSON object, found a number",
        ),
        (
            b"{\"a\":1} {\"b\":2}\n{\"c\":3}",
            "line 1, column 8: trailing characters",
        ),
        (b"{\"a\":1", "line 1, column 5: EOF while parsing an object"),
        (
            b"{\"a\":\"\xff\"}",
            "line 1, column 6: invalid unicode code point",
        ),
        (
            b"{\"a\":1}\r\n{\"b\":2,}\r\n",
            "line 2, column 7: trailing comma",
        ),
        (b"{a:1}", "line 1, column 1: key must be a string"),
        (b"{\"a\":\"\\x\"}", "line 1, column 7: invalid escape"),
        (b"{\"a\":1e400}", "line 1, column 9: number out of range"),
        // Arrays: element index, then line and column in the body
        (
            b"[{\"a\":1},[2]]",
            "index 1, line 1, column 9: expected a JSON object, found an array",
        ),
        (
            b"[{\"a\":1},\"x\"]",
            "index 1, line 1, column 11: expected a JSON object, found a string",
        ),
        (
            b"[{\"a\":1} {\"b\":2}]",
            "index 1, line 1, column 9: expected `,` or `]`",
        ),
        (b"[{\"a\":1},]", "index 1, line 1, column 9: trailing comma"),
        (
            b"[\n{\"a\":1},\n{\"b\":x}\n]",
            "index 1, line 3, column 5: expected value",
        ),
        (
            b"[{\"a\":1}",
            "index 1, line 1, column 7: EOF while parsing a list",
        ),
        (
            b"[{\"a\":1}] x",
            "body, line 1, column 10: trailing characters",
        ),
        (
            b"[{\"a\":1}]\n{\"b\":2}",
            "body, line 2, column 0: trailing characters",
        ),
        (
            b"[{},{\"ts\":\"x\"}]",
            "index 1: field \"ts\": invalid timestamp \"x\": invalid RFC 3339 timestamp at column 0: expected 4-digit year",
        ),
        (
            b"{\"a\":\"tab\there\"}",
            "line 1, column 9: control character (\\u0000-\\u001F) found while parsing a string",
        ),
        // A single object over several lines: line and column in the body
        (
            b"{\n \"a\": 1,\n \"b\": x\n}",
            "line 3, column 6: expected value",
        ),
        (
            b"{\n \"a\": [1]\n]",
            "line 3, column 0: expected `,` or `}`",
        ),
    ];
    for (body, want) in cases {
        let got = parse_with(D, Mode::Strict, body);
        assert_eq!(
            got,
            Err(want.to_string()),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn every_limit() {
    let lim = |f: fn(&mut JsonLogLimits)| {
        let mut l = D;
        f(&mut l);
        l
    };
    let s8 = lim(|l| l.max_string_bytes = 8);
    let f2 = lim(|l| l.max_fields = 2);
    let d2 = lim(|l| l.max_depth = 2);
    let l10 = lim(|l| l.max_line_bytes = 10);
    let b10 = lim(|l| l.max_body_bytes = 10);
    let r2 = lim(|l| l.max_records = 2);
    let r0 = lim(|l| l.max_records = 0);
    let cases: &[(JsonLogLimits, &[u8], Result<usize, &str>)] = &[
        // string values, keys, flattened keys, arrays — exactly at the limit is fine
        (s8, b"{\"a\":\"12345678\"}", Ok(1)),
        (
            s8,
            b"{\"a\":\"123456789\"}",
            Err("line 1, column 15: field \"a\": string longer than 8 bytes"),
        ),
        (s8, b"{\"a\":\"\\u00e9\\u00e9\\u00e9\\u00e9\"}", Ok(1)),
        (
            s8,
            b"{\"a\":\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\"}",
            Err("line 1, column 36: field \"a\": string longer than 8 bytes"),
        ),
        (s8, b"{\"12345678\":1}", Ok(1)),
        (
            s8,
            b"{\"123456789\":1}",
            Err("line 1, column 11: key longer than 8 bytes"),
        ),
        (s8, b"{\"abc\":{\"efgh\":1}}", Ok(1)),
        (
            s8,
            b"{\"abcd\":{\"efgh\":1}}",
            Err("line 1, column 14: field \"abcd\": key longer than 8 bytes"),
        ),
        (
            s8,
            b"{\"t\":[\"123456789\"]}",
            Err("line 1, column 16: field \"t\": string longer than 8 bytes"),
        ),
        (s8, b"{\"t\":[1,2,34]}", Ok(1)),
        (
            s8,
            b"{\"t\":[1,2,3,4]}",
            Err("line 1, column 13: field \"t\": array longer than 8 bytes as JSON text"),
        ),
        (
            s8,
            b"{\"t\":[1,2,3,45]}",
            Err("line 1, column 13: field \"t\": array longer than 8 bytes as JSON text"),
        ),
        (
            s8,
            b"{\"t\":[{\"123456789\":1}]}",
            Err("line 1, column 17: field \"t\": key longer than 8 bytes"),
        ),
        // fields, counted after flattening and including aliases
        (f2, b"{\"a\":1,\"b\":{\"c\":2}}", Ok(1)),
        (
            f2,
            b"{\"a\":1,\"b\":2,\"c\":3}",
            Err("line 1, column 17: more than 2 fields"),
        ),
        (
            f2,
            b"{\"ts\":1,\"msg\":\"m\",\"a\":1}",
            Err("line 1, column 22: more than 2 fields"),
        ),
        (
            f2,
            b"{\"a\":1,\"b\":{\"c\":2,\"d\":3}}",
            Err("line 1, column 22: more than 2 fields"),
        ),
        (f2, b"{\"a\":1,\"b\":2,\"a\":3}", Ok(1)),
        // depth: the record is level 1
        (d2, b"{\"a\":{\"b\":1}}", Ok(1)),
        (d2, b"{\"a\":[1]}", Ok(1)),
        (
            d2,
            b"{\"a\":{\"b\":{\"c\":1}}}",
            Err("line 1, column 10: field \"a.b\": nested deeper than 2 levels"),
        ),
        (
            d2,
            b"{\"a\":[[1]]}",
            Err("line 1, column 6: field \"a\": nested deeper than 2 levels"),
        ),
        (
            d2,
            b"{\"a\":[{}]}",
            Err("line 1, column 7: field \"a\": nested deeper than 2 levels"),
        ),
        (
            d2,
            b"{\"a\":{\"b\":{}}}",
            Err("line 1, column 11: field \"a.b\": nested deeper than 2 levels"),
        ),
        // NDJSON line length, without the line terminator
        (l10, b"{\"a\":\"12\"}\r\n{}", Ok(2)),
        (
            l10,
            b"{\"a\":1}\n{\"a\":\"123\"}",
            Err("line 2: line of 11 bytes is longer than 10 bytes"),
        ),
        // body size and record count fail the whole body
        (b10, b"{\"a\":\"12\"}", Ok(1)),
        (
            b10,
            b"{\"a\":\"123\"}",
            Err("body: body of 11 bytes is larger than 10 bytes"),
        ),
        (r2, b"{}\n\n{}\n\n", Ok(2)),
        (r2, b"{}\n{}\n{}", Err("line 3: more than 2 records")),
        (r2, b"[{},{},{}]", Err("index 2: more than 2 records")),
        (r0, b"{\n}", Err("object: more than 0 records")),
    ];
    for (limits, body, want) in cases {
        let got = parse_with(*limits, Mode::Strict, body).map(|v| v.len());
        let want = want.map_err(str::to_owned);
        assert_eq!(got, want, "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn deep_nesting_is_refused_before_serde_json_recursion_limit() {
    let body = format!("{{\"a\":{}1{}}}", "[".repeat(5000), "]".repeat(5000));
    let got = parse_with(D, Mode::Strict, body.as_bytes());
    assert_eq!(
        got,
        Err("line 1, column 36: field \"a\": nested deeper than 32 levels".to_owned())
    );
    let body = format!("{}{}", "{\"a\":".repeat(5000), "}".repeat(5000));
    let got = parse_with(D, Mode::Lenient, body.as_bytes()).unwrap();
    assert_eq!(got.len(), 1);
    assert!(
        got[0].ends_with("nested deeper than 32 levels]"),
        "{}",
        &got[0][got[0].len() - 80..]
    );
}

#[test]
fn body_limits_fail_lenient_bodies_too() {
    let r2 = JsonLogLimits {
        max_records: 2,
        ..D
    };
    assert_eq!(
        parse_with(r2, Mode::Lenient, b"x\ny\nz"),
        Err("line 3: more than 2 records".to_owned())
    );
    assert_eq!(
        parse_with(r2, Mode::Lenient, b"[1,2,3]"),
        Err("index 2: more than 2 records".to_owned())
    );
    let b4 = JsonLogLimits {
        max_body_bytes: 4,
        ..D
    };
    assert_eq!(
        parse_with(b4, Mode::Lenient, b"{   }"),
        Err("body: body of 5 bytes is larger than 4 bytes".to_owned())
    );
}

#[test]
fn lenient_keeps_what_it_cannot_read() {
    let s8 = JsonLogLimits {
        max_string_bytes: 8,
        ..D
    };
    // (limits, body, records, errors)
    type Case<'a> = (JsonLogLimits, &'a [u8], &'a [&'a str], &'a [&'a str]);
    let cases: &[Case] = &[
        (
            D,
            b"{\"a\":1}\nplain text line\n{\"b\":2}\r\n[1]\r\n",
            &[
                "ts=recv a=1",
                "ts=recv msg=plain text line error=[column 0: expected value]",
                "ts=recv b=2",
                "ts=recv msg=[1] error=[column 0: expected a JSON object, found an array]",
            ],
            &[
                "line 2, column 0: expected value",
                "line 4, column 0: expected a JSON object, found an array",
            ],
        ),
        (
            s8,
            b"[{\"a\":1},\"x\",{\"b\":2},{\"c\":\"123456789\"},{\"d\":4}]",
            &[
                "ts=recv a=1",
                "ts=recv msg=\"x\" error=[line 1, column 11: expected a JSON object, found a string]",
                "ts=recv b=2",
                "ts=recv msg={\"c\":\"123456789\"} error=[line 1, column 36: field \"c\": string longer than 8 bytes]",
                "ts=recv d=4",
            ],
            &[
                "index 1, line 1, column 11: expected a JSON object, found a string",
                "index 3, line 1, column 36: field \"c\": string longer than 8 bytes",
            ],
        ),
        (
            D,
            b"[{\"a\":1},{\"b\":},{\"c\":3}]",
            &[
                "ts=recv a=1",
                "ts=recv msg={\"b\":},{\"c\":3}] error=[line 1, column 14: expected value]",
            ],
            &["index 1, line 1, column 14: expected value"],
        ),
        (
            D,
            b"[{\"a\":1},{\"ts\":\"x\"} {\"c\":3}]",
            &[
                "ts=recv a=1",
                "ts=recv ts=\"x\" error=[field \"ts\": invalid timestamp \"x\": invalid RFC 3339 timestamp at column 0: expected 4-digit year]",
                "ts=recv msg={\"c\":3}] error=[line 1, column 20: expected `,` or `]`]",
            ],
            &[
                "index 1: field \"ts\": invalid timestamp \"x\": invalid RFC 3339 timestamp at column 0: expected 4-digit year",
                "index 2, line 1, column 20: expected `,` or `]`",
            ],
        ),
        (
            D,
            b"\n [{\"a\":1}, 2 ,{\"b\":2}]",
            &[
                "ts=recv a=1",
                "ts=recv msg=2 error=[line 2, column 11: expected a JSON object, found a number]",
                "ts=recv b=2",
            ],
            &["index 1, line 2, column 11: expected a JSON object, found a number"],
        ),
        (
            D,
            b"[{\"a\":1}] tail",
            &[
                "ts=recv a=1",
                "ts=recv msg=tail error=[line 1, column 10: trailing characters]",
            ],
            &["body, line 1, column 10: trailing characters"],
        ),
        (
            D,
            b"[{\"a\":1},",
            &["ts=recv a=1"],
            &["index 1, line 1, column 9: EOF while parsing a list"],
        ),
        (
            D,
            b"{\n \"a\": 1,\n \"b\": x\n}\n",
            &["ts=recv msg={\n \"a\": 1,\n \"b\": x\n} error=[line 3, column 6: expected value]"],
            &["line 3, column 6: expected value"],
        ),
    ];
    for (limits, body, records, errors) in cases {
        let p = JsonLogParser::new(*limits, Mode::Lenient);
        let mut out = Vec::new();
        let report = p
            .parse_body(body, RECEIVED, &mut out)
            .unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(body)));
        let got: Vec<String> = out.iter().map(brief).collect();
        assert_eq!(got, *records, "{}", String::from_utf8_lossy(body));
        let got: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        assert_eq!(got, *errors, "{}", String::from_utf8_lossy(body));
        assert_eq!(report.records, out.len());
    }
}

#[test]
fn lenient_raw_records_keep_exact_bytes() {
    let body = b"{\"a\":1}\n\xff\xfe not utf-8 \r\n";
    let p = JsonLogParser::new(D, Mode::Lenient);
    let mut out = Vec::new();
    p.parse_body(body, RECEIVED, &mut out).unwrap();
    assert_eq!(out[1].message.as_deref(), Some(&b"\xff\xfe not utf-8 "[..]));
    assert_eq!(out[1].timestamp, RECEIVED);
    assert_eq!(
        out[1].parse_error.as_deref(),
        Some("column 0: expected value")
    );
}
