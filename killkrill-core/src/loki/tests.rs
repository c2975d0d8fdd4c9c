//! Loki pushes in both encodings, built as clients build them.

use killkrill_proto::logproto as pb;
use prost::Message;

use super::*;
use crate::event::{FieldValue, Severity, Timestamp};

fn json(body: &str) -> Result<Vec<LogRecord>, LokiError> {
    decode(body.as_bytes(), LokiEncoding::Json, &Limits::default())
}

fn entry(secs: i64, nanos: i32, line: &str, meta: &[(&str, &str)]) -> pb::EntryAdapter {
    pb::EntryAdapter {
        timestamp: Some(prost_types::Timestamp {
            seconds: secs,
            nanos,
        }),
        line: line.into(),
        structured_metadata: meta
            .iter()
            .map(|(n, v)| pb::LabelPairAdapter {
                name: (*n).into(),
                value: (*v).into(),
            })
            .collect(),
        parsed: vec![],
    }
}

fn proto_body(streams: Vec<(&str, Vec<pb::EntryAdapter>)>) -> Vec<u8> {
    let req = pb::PushRequest {
        streams: streams
            .into_iter()
            .map(|(labels, entries)| pb::StreamAdapter {
                labels: labels.into(),
                entries,
                hash: 0,
            })
            .collect(),
        format: String::new(),
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

fn proto(streams: Vec<(&str, Vec<pb::EntryAdapter>)>) -> Result<Vec<LogRecord>, LokiError> {
    decode(
        &proto_body(streams),
        LokiEncoding::Protobuf,
        &Limits::default(),
    )
}

#[test]
fn json_push_into_canonical_records() {
    let recs = json(
        r#"{"streams":[
            {"stream":{"job":"varlogs","level":"warn","host":"web1"},
             "values":[["1700000000123456789","first line"],
                       ["1700000001000000000","second",{"trace_id":"abc","level":"error"}]]},
            {"values":[[1700000002000000000,"numeric ts"]],"stream":{"service_name":"api"}}
        ]}"#,
    )
    .unwrap();
    let lines: Vec<String> = recs.iter().map(LogRecord::to_json).collect();
    assert_eq!(
        lines,
        [
            r#"{"timestamp":"2023-11-14T22:13:20.123456789Z","severity":"warning","facility":null,"host":"web1","app":"varlogs","procid":null,"msgid":null,"structured_data":null,"message":"first line","attributes":{"job":"varlogs","level":"warn","host":"web1"}}"#,
            r#"{"timestamp":"2023-11-14T22:13:21.000000000Z","severity":"err","facility":null,"host":"web1","app":"varlogs","procid":null,"msgid":null,"structured_data":null,"message":"second","attributes":{"job":"varlogs","level":"warn","host":"web1","trace_id":"abc","level":"error"}}"#,
            r#"{"timestamp":"2023-11-14T22:13:22.000000000Z","severity":null,"facility":null,"host":null,"app":"api","procid":null,"msgid":null,"structured_data":null,"message":"numeric ts","attributes":{"service_name":"api"}}"#,
        ]
    );
}

#[test]
fn json_errors_name_stream_and_entry() {
    let cases: &[(&str, &str)] = &[
        ("", "EOF while parsing"),
        ("[]", "expected an object"),
        (
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1","x"]]}], "x":1}"#,
            "unknown field `x`, expected `streams`",
        ),
        ("{}", "missing field `streams`"),
        (
            r#"{"streams":[{"labels":"{a=\"b\"}","entries":[]}]}"#,
            "streams[0]: unknown field `labels`",
        ),
        (
            r#"{"streams":[{"stream":{"a":"b"}}]}"#,
            "streams[0]: missing field `values`",
        ),
        (
            r#"{"streams":[{"values":[]}]}"#,
            "streams[0]: missing field `stream`",
        ),
        (
            r#"{"streams":[{"stream":{},"values":[]}]}"#,
            "streams[0]: stream: at least one label pair",
        ),
        (
            r#"{"streams":[{"stream":{"a-b":"x"},"values":[]}]}"#,
            "streams[0]: stream: invalid label name \"a-b\"",
        ),
        (
            r#"{"streams":[{"stream":{"a":1},"values":[]}]}"#,
            "streams[0]: stream: \"a\": invalid type: integer `1`, expected a string",
        ),
        (
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1","ok"],["12x","bad"]]}]}"#,
            "streams[0]: values: [1]: timestamp: invalid value: string \"12x\", expected Unix nanoseconds",
        ),
        (
            r#"{"streams":[{"stream":{"a":"b"},"values":[["99999999999999999999","x"]]}]}"#,
            "streams[0]: values: [0]: timestamp: \"99999999999999999999\" is outside the nanosecond range",
        ),
        (
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1"]]}]}"#,
            "streams[0]: values: [0]: invalid length 1",
        ),
        (
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1",2]]}]}"#,
            "streams[0]: values: [0]: line: invalid type: integer `2`",
        ),
        (
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1","x",{"k":5}]]}]}"#,
            "streams[0]: values: [0]: structured metadata: \"k\": invalid type",
        ),
        (
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1","x",{},4]]}]}"#,
            "streams[0]: values: [0]: invalid length 4",
        ),
        (
            r#"{"streams":[{"stream":{"a":"b","a":"c"},"values":[]}]}"#,
            "streams[0]: stream: duplicate name \"a\"",
        ),
        (r#"{"streams":[]} x"#, "trailing characters"),
    ];
    for (body, want) in cases {
        let e = json(body).unwrap_err().to_string();
        assert!(
            e.starts_with("invalid Loki JSON push body: "),
            "{body}: {e}"
        );
        assert!(e.contains(want), "{body}\n got: {e}\nwant: {want}");
        assert_eq!(
            e.matches(" at line ").count(),
            1,
            "position given once: {e}"
        );
    }
}

#[test]
fn protobuf_push() {
    let recs = proto(vec![
        (
            r#"{job="docker", container="nginx", hostname="h\"1"}"#,
            vec![
                entry(1_700_000_000, 5, "GET /", &[]),
                entry(
                    1_700_000_001,
                    0,
                    "oops",
                    &[("detected_level", "ERROR"), ("trace_id", "t1")],
                ),
            ],
        ),
        (r#"{app="x"}"#, vec![]),
    ])
    .unwrap();
    assert_eq!(recs.len(), 2);
    let r = &recs[1];
    assert_eq!(
        r.timestamp,
        Timestamp::from_nanos(1_700_000_001_000_000_000)
    );
    assert_eq!(
        recs[0].timestamp,
        Timestamp::from_nanos(1_700_000_000_000_000_005)
    );
    assert_eq!(r.message.as_deref(), Some(&b"oops"[..]));
    assert_eq!(
        (r.severity, r.host.as_deref(), r.app.as_deref()),
        (Some(Severity::Error), Some("h\"1"), Some("nginx"))
    );
    assert_eq!(recs[0].severity, None);
    assert_eq!(r.attribute("trace_id"), Some(&FieldValue::Str("t1".into())));
    let names: Vec<_> = r.attributes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["job", "container", "hostname", "detected_level", "trace_id"]
    );
}

#[test]
fn protobuf_errors_name_stream_and_entry() {
    let mut no_ts = entry(1, 0, "x", &[]);
    no_ts.timestamp = None;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"not snappy".to_vec(),
            "body is not valid snappy block-format data",
        ),
        (
            snap::raw::Encoder::new()
                .compress_vec(b"\x0a\x05\x0a")
                .unwrap(),
            "invalid protobuf logproto.PushRequest",
        ),
        (
            proto_body(vec![(r#"{a="b"}"#, vec![]), ("{a=b}", vec![])]),
            "stream 1: labels \"{a=b}\": byte 3: expected a quoted label value, found 'b'",
        ),
        (
            proto_body(vec![(r#"{a="b"}"#, vec![entry(1, 0, "x", &[]), no_ts])]),
            "stream 0, entry 1: no timestamp",
        ),
        (
            proto_body(vec![(r#"{a="b"}"#, vec![entry(1, -1, "x", &[])])]),
            "stream 0, entry 0: timestamp nanos -1 outside 0..1e9",
        ),
        (
            proto_body(vec![(
                r#"{a="b"}"#,
                vec![entry(i64::MAX / 100, 0, "x", &[])],
            )]),
            "stream 0, entry 0: timestamp 92233720368547758 s is outside",
        ),
    ];
    for (body, want) in cases {
        let e = decode(&body, LokiEncoding::Protobuf, &Limits::default())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(want), "got {e:?}, want {want:?}");
    }
}

#[test]
fn limits() {
    let lim = Limits::default();
    let two_streams = r#"{"streams":[{"stream":{"a":"b"},"values":[["1","x"],["2","y"]]},{"stream":{"a":"c","b":"d"},"values":[["3","z"]]}]}"#;
    let pb = proto_body(vec![
        (
            r#"{a="b"}"#,
            vec![entry(1, 0, "x", &[]), entry(2, 0, "y", &[])],
        ),
        (r#"{a="c",b="d"}"#, vec![entry(3, 0, "z", &[])]),
    ]);
    let cases: &[(Limits, &str)] = &[
        (
            Limits {
                max_streams: 1,
                ..lim
            },
            "request has more than the limit of 1 streams",
        ),
        (
            Limits {
                max_entries: 2,
                ..lim
            },
            "request has more than the limit of 2 entries (reached in stream 1)",
        ),
        (
            Limits {
                max_labels_per_stream: 1,
                ..lim
            },
            "stream 1",
        ),
    ];
    for (limits, want) in cases {
        for (enc, body) in [
            (LokiEncoding::Json, two_streams.as_bytes()),
            (LokiEncoding::Protobuf, &pb[..]),
        ] {
            let e = decode(body, enc, limits).unwrap_err().to_string();
            assert!(
                e.contains(want)
                    || (limits.max_labels_per_stream == 1
                        && e.contains("2 labels, more than the limit of 1")),
                "{enc:?}: {e}"
            );
        }
    }
    let small = Limits {
        max_body_bytes: 10,
        ..lim
    };
    assert!(
        decode(two_streams.as_bytes(), LokiEncoding::Json, &small)
            .unwrap_err()
            .to_string()
            .contains("more than the limit of 10 bytes")
    );
    assert!(
        decode(&pb, LokiEncoding::Protobuf, &small)
            .unwrap_err()
            .to_string()
            .contains("more than the limit of 10 bytes")
    );
    // Exactly at the limits: accepted.
    let exact = Limits {
        max_streams: 2,
        max_entries: 3,
        max_labels_per_stream: 2,
        ..lim
    };
    assert_eq!(
        decode(two_streams.as_bytes(), LokiEncoding::Json, &exact)
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        decode(&pb, LokiEncoding::Protobuf, &exact).unwrap().len(),
        3
    );
}

#[test]
fn json_and_protobuf_agree() {
    let j = json(r#"{"streams":[{"stream":{"job":"a","level":"info"},"values":[["1700000000000000001","l1",{"k":"v"}],["1700000000000000002","l2"]]}]}"#).unwrap();
    let p = proto(vec![(
        r#"{job="a", level="info"}"#,
        vec![
            entry(1_700_000_000, 1, "l1", &[("k", "v")]),
            entry(1_700_000_000, 2, "l2", &[]),
        ],
    )])
    .unwrap();
    assert_eq!(j, p);
}
