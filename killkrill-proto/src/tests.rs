//! Wire checks: field numbers must match the senders' schemas byte for byte, so the
//! tests decode hand-assembled protobuf bytes instead of only round-tripping.

use prost::Message;

use crate::{killkrill::v1 as kk, logproto, prometheus, prometheus_v2};

/// A length-delimited field: tag (field << 3 | 2), varint length, bytes.
fn ld(field: u8, body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 128, "test helper only does one-byte lengths");
    let mut v = vec![(field << 3) | 2, body.len() as u8];
    v.extend_from_slice(body);
    v
}

/// A varint field with a small value.
fn varint(field: u8, value: u8) -> Vec<u8> {
    assert!(value < 128);
    vec![field << 3, value]
}

#[test]
fn loki_push_request_field_numbers() {
    let ts = [varint(1, 100), varint(2, 7)].concat(); // seconds, nanos
    let meta = [ld(1, b"trace_id"), ld(2, b"abc")].concat();
    let entry = [ld(1, &ts), ld(2, b"hello"), ld(3, &meta)].concat();
    let stream = [ld(1, br#"{job="a"}"#), ld(2, &entry), varint(3, 9)].concat();
    let body = [ld(1, &stream), ld(2, b"loki")].concat();
    let req = logproto::PushRequest::decode(body.as_slice()).unwrap();
    assert_eq!(req.format, "loki");
    let s = &req.streams[0];
    assert_eq!((s.labels.as_str(), s.hash), (r#"{job="a"}"#, 9));
    let e = &s.entries[0];
    let t = e.timestamp.as_ref().unwrap();
    assert_eq!((t.seconds, t.nanos, e.line.as_str()), (100, 7, "hello"));
    assert_eq!(e.structured_metadata[0].name, "trace_id");
    assert_eq!(e.structured_metadata[0].value, "abc");
    assert!(e.parsed.is_empty());
}

#[test]
fn remote_write_v1_field_numbers() {
    let label = [ld(1, b"__name__"), ld(2, b"up")].concat();
    // Sample: value (field 1, fixed64) = 1.0, timestamp (field 2, varint) = 5.
    let mut sample = vec![(1 << 3) | 1];
    sample.extend_from_slice(&1.0f64.to_le_bytes());
    sample.extend(varint(2, 5));
    let series = [ld(1, &label), ld(2, &sample)].concat();
    let meta = [varint(1, 2), ld(2, b"up"), ld(4, b"help"), ld(5, b"unit")].concat();
    let body = [ld(1, &series), ld(3, &meta)].concat();
    let req = prometheus::WriteRequest::decode(body.as_slice()).unwrap();
    assert_eq!(req.timeseries[0].labels[0].value, "up");
    assert_eq!(req.timeseries[0].samples[0].value, 1.0);
    assert_eq!(req.timeseries[0].samples[0].timestamp, 5);
    let m = &req.metadata[0];
    assert_eq!(m.r#type(), prometheus::metric_metadata::MetricType::Gauge);
    assert_eq!((m.help.as_str(), m.unit.as_str()), ("help", "unit"));
}

#[test]
fn remote_write_v2_field_numbers() {
    // Packed labels_refs [1, 2], one sample, metadata {type counter, help_ref 3}.
    let mut sample = vec![(1 << 3) | 1];
    sample.extend_from_slice(&2.5f64.to_le_bytes());
    sample.extend(varint(2, 9));
    sample.extend(varint(3, 4)); // start_timestamp
    let metadata = [varint(1, 1), varint(3, 3), varint(4, 0)].concat();
    let series = [ld(1, &[1, 2]), ld(2, &sample), ld(5, &metadata)].concat();
    let body = [
        ld(4, b""),
        ld(4, b"__name__"),
        ld(4, b"x_total"),
        ld(4, b"help"),
        ld(5, &series),
    ]
    .concat();
    let req = prometheus_v2::Request::decode(body.as_slice()).unwrap();
    assert_eq!(req.symbols, ["", "__name__", "x_total", "help"]);
    let ts = &req.timeseries[0];
    assert_eq!(ts.labels_refs, [1, 2]);
    assert_eq!(
        (
            ts.samples[0].value,
            ts.samples[0].timestamp,
            ts.samples[0].start_timestamp
        ),
        (2.5, 9, 4)
    );
    let md = ts.metadata.as_ref().unwrap();
    assert_eq!(md.r#type(), prometheus_v2::metadata::MetricType::Counter);
    assert_eq!(md.help_ref, 3);
}

#[test]
fn killkrill_records_round_trip() {
    let rec = kk::LogRecord {
        timestamp_ns: 1_764_090_756_000_000_000,
        severity: kk::Severity::Error as i32,
        facility: Some(3),
        host: Some("web1".into()),
        message: Some(vec![0xff, b'a']),
        attributes: vec![kk::Attribute {
            name: "n".into(),
            value: Some(kk::FieldValue {
                kind: Some(kk::field_value::Kind::IntValue(-4)),
            }),
        }],
        ..Default::default()
    };
    let req = kk::PushLogsRequest {
        records: vec![rec.clone()],
    };
    let back = kk::PushLogsRequest::decode(req.encode_to_vec().as_slice()).unwrap();
    assert_eq!(back.records, [rec]);
    // Severity numbers are the syslog code plus one.
    assert_eq!(kk::Severity::Emergency as i32, 1);
    assert_eq!(kk::Severity::Debug as i32, 8);
}

#[cfg(feature = "grpc")]
#[test]
fn services_are_generated() {
    // The server traits and clients exist with the expected names; this fails to
    // compile when a service or an rpc is renamed.
    fn assert_server<T>() {}
    assert_server::<kk::ingest_server::IngestServer<()>>();
    assert_server::<kk::query_server::QueryServer<()>>();
    assert_server::<logproto::pusher_server::PusherServer<()>>();
    assert_server::<kk::query_client::QueryClient<()>>();
    assert_eq!(
        <kk::ingest_server::IngestServer<()> as tonic::server::NamedService>::NAME,
        "killkrill.v1.Ingest"
    );
}
