//! Body shapes and the line-by-line parser.

use killkrill_core::json_logs::{
    JsonLogLimits, JsonLogParser, Mode, Position, Problem, RecordLocation, Shape,
};

use crate::brief::{RECEIVED, brief};

#[test]
fn shapes_are_detected_and_parsed() {
    let cases: &[(&[u8], Shape, &[&str])] = &[
        (b"", Shape::Empty, &[]),
        (b"\n \r\n\t", Shape::Empty, &[]),
        (b"{\"a\":1}", Shape::Ndjson, &["ts=recv a=1"]),
        (b"  {\"a\":1}  \n", Shape::Ndjson, &["ts=recv a=1"]),
        (
            b"{\"a\":1}\r\n\r\n{\"a\":2}\r\n",
            Shape::Ndjson,
            &["ts=recv a=1", "ts=recv a=2"],
        ),
        (
            b"\n\n{\"a\":1}\n \t \n{\"a\":2}",
            Shape::Ndjson,
            &["ts=recv a=1", "ts=recv a=2"],
        ),
        (b"\xef\xbb\xbf{\"a\":1}\n", Shape::Ndjson, &["ts=recv a=1"]),
        (
            b"[{\"a\":1},{\"a\":2}]",
            Shape::Array,
            &["ts=recv a=1", "ts=recv a=2"],
        ),
        (
            b"[\n  {\"a\": 1},\r\n  {\"a\": 2}\n]\n",
            Shape::Array,
            &["ts=recv a=1", "ts=recv a=2"],
        ),
        (b"[]", Shape::Array, &[]),
        (b" [ ] \n", Shape::Array, &[]),
        (b"\xef\xbb\xbf[{\"a\":1}]", Shape::Array, &["ts=recv a=1"]),
        (
            b"{\n  \"a\": 1,\n  \"b\": {\"c\": 2}\n}\n",
            Shape::Object,
            &["ts=recv a=1 b.c=2"],
        ),
        (
            b"\xef\xbb\xbf{\r\n\"msg\":\"m\"\r\n}",
            Shape::Object,
            &["ts=recv msg=m"],
        ),
    ];
    let p = JsonLogParser::new(JsonLogLimits::DEFAULT, Mode::Strict);
    for (body, shape, want) in cases {
        let mut out = Vec::new();
        let report = p
            .parse_body(body, RECEIVED, &mut out)
            .unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(body)));
        assert_eq!(
            report.shape,
            Some(*shape),
            "{}",
            String::from_utf8_lossy(body)
        );
        let got: Vec<String> = out.iter().map(brief).collect();
        assert_eq!(got, *want, "{}", String::from_utf8_lossy(body));
        assert!(report.errors.is_empty());
    }
}

#[test]
fn output_is_appended_to() {
    let p = JsonLogParser::new(JsonLogLimits::DEFAULT, Mode::Strict);
    let mut out = Vec::new();
    p.parse_body(b"{\"a\":1}", RECEIVED, &mut out).unwrap();
    p.parse_body(b"[{\"a\":2}]", RECEIVED, &mut out).unwrap();
    assert!(p.parse_body(b"{\"a\":3}\n{", RECEIVED, &mut out).is_err());
    let got: Vec<String> = out.iter().map(brief).collect();
    assert_eq!(got, ["ts=recv a=1", "ts=recv a=2"]);
}

#[test]
fn line_parser() {
    let strict = JsonLogParser::new(JsonLogLimits::DEFAULT, Mode::Strict);
    let mut lp = strict.line_parser();
    let r = lp
        .parse_line(b"{\"a\":1,\"a\":2}\r", 5, RECEIVED)
        .unwrap()
        .unwrap();
    assert_eq!(brief(&r.record), "ts=recv a=2");
    assert_eq!(r.error, None);
    assert_eq!(lp.duplicate_fields(), 1);
    assert_eq!(lp.parse_line(b" \t\r", 6, RECEIVED), Ok(None));
    assert_eq!(lp.parse_line(b"", 7, RECEIVED), Ok(None));

    let e = lp.parse_line(b"{x", 8, RECEIVED).unwrap_err();
    assert_eq!(e.to_string(), "line 8, column 1: key must be a string");
    assert_eq!(e.location, RecordLocation::Line(8));
    assert_eq!(
        e.position,
        Some(Position {
            line: 8,
            column: 1,
            offset: 1
        })
    );
    assert_eq!(e.location_text(), "line 8");
    assert_eq!(e.column(), Some(1));
    assert_eq!(e.detail(), "key must be a string");

    let small = JsonLogParser::new(
        JsonLogLimits {
            max_line_bytes: 4,
            ..JsonLogLimits::DEFAULT
        },
        Mode::Lenient,
    );
    let mut lp = small.line_parser();
    let r = lp.parse_line(b"{\"a\":1}", 9, RECEIVED).unwrap().unwrap();
    assert_eq!(
        brief(&r.record),
        "ts=recv msg={\"a\":1} error=[line of 7 bytes is longer than 4 bytes]"
    );
    assert_eq!(
        r.error.unwrap().problem,
        Problem::LineTooLong {
            length: 7,
            limit: 4
        }
    );
    let r = lp.parse_line(b"{}\r", 10, RECEIVED).unwrap().unwrap();
    assert_eq!(brief(&r.record), "ts=recv");
}

#[test]
fn records_reuse_no_state_between_them() {
    // Aliases, paths and attributes of one record must not leak into the next.
    let body = b"{\"msg\":\"one\",\"a\":{\"b\":1},\"level\":\"info\"}\n{\"c\":2}\n{\"x\":{\"y\":[1]},\"ts\":1}";
    let p = JsonLogParser::new(JsonLogLimits::DEFAULT, Mode::Strict);
    let mut out = Vec::new();
    p.parse_body(body, RECEIVED, &mut out).unwrap();
    let got: Vec<String> = out.iter().map(brief).collect();
    assert_eq!(
        got,
        [
            "ts=recv sev=info msg=one a.b=1",
            "ts=recv c=2",
            "ts=1000000000 x.y=\"[1]\"",
        ]
    );
}
