use proptest::prelude::*;

use super::*;
use crate::event::{
    EventId, Facility, FieldValue, Labels, LogRecord, MetricMetadata, MetricSample, MetricType,
    SdElement, Severity,
};

fn tenant(s: &str) -> Tenant {
    Tenant::new(s).expect("valid tenant")
}

fn full_batch() -> Batch {
    let t = tenant("team-a");
    Batch {
        id: BatchId::from_u128(0x0192_f1b4_8c3e_7a00_8000_0000_0000_0001),
        tenant: t.clone(),
        source: Some("syslog-tcp".into()),
        received: Timestamp::from_nanos(1_764_090_756_123_456_789),
        logs: vec![
            LogRecord {
                id: Some(EventId::from_parts(1_764_090_756_000, 41)),
                tenant: Some(t.clone()),
                timestamp: Timestamp::from_nanos(1_764_090_756_000_000_001),
                severity: Some(Severity::Error),
                facility: Some(Facility::Local7),
                host: Some("web1".into()),
                app: Some("nginx".into()),
                procid: Some("812".into()),
                msgid: Some("ID47".into()),
                structured_data: vec![
                    SdElement {
                        id: "origin".into(),
                        params: vec![
                            ("ip".into(), "10.0.0.1".into()),
                            ("ip".into(), "10.0.0.2".into()),
                        ],
                    },
                    SdElement {
                        id: "empty@1".into(),
                        params: vec![],
                    },
                ],
                message: Some(vec![b'a', 0xff, 0xfe, 0, b'z']),
                source: Some("syslog-tcp".into()),
                attributes: vec![
                    ("z".into(), FieldValue::Int(i64::MIN)),
                    (
                        "a".into(),
                        FieldValue::Float(f64::from_bits(0x7ff8_0000_dead_beef)),
                    ),
                    ("a".into(), FieldValue::Str("repeated name".into())),
                    ("b".into(), FieldValue::Bool(false)),
                    ("c".into(), FieldValue::Bool(true)),
                    ("n".into(), FieldValue::Null),
                ],
                parse_error: Some("column 3: expected '>'".into()),
            },
            LogRecord {
                id: Some(EventId::from_parts(1_764_090_755_000, 7)),
                tenant: Some(tenant("other")),
                timestamp: Timestamp::MIN,
                source: Some("http".into()),
                message: Some(Vec::new()),
                ..LogRecord::default()
            },
            LogRecord::default(),
        ],
        metrics: vec![
            MetricSample {
                tenant: Some(t.clone()),
                name: "http_requests_total".into(),
                labels: Labels::from_pairs([("code", "200"), ("method", "GET")]),
                value: 1027.0,
                timestamp: Some(Timestamp::from_millis(1_764_090_756_000)),
                kind: MetricType::Counter,
            },
            MetricSample {
                tenant: None,
                name: "stale".into(),
                labels: Labels::new(),
                // Prometheus' staleness marker.
                value: f64::from_bits(0x7ff0_0000_0000_0002),
                timestamp: None,
                kind: MetricType::Unknown,
            },
            MetricSample {
                tenant: Some(tenant("x")),
                name: "g".into(),
                value: f64::NEG_INFINITY,
                timestamp: Some(Timestamp::MAX),
                kind: MetricType::StateSet,
                ..MetricSample::default()
            },
        ],
        metadata: vec![
            MetricMetadata {
                family: "http_requests".into(),
                kind: MetricType::Counter,
                help: Some("Requests.\nTotal.".into()),
                unit: None,
            },
            MetricMetadata {
                family: "x".into(),
                kind: MetricType::GaugeHistogram,
                help: Some(String::new()),
                unit: Some("seconds".into()),
            },
        ],
    }
}

fn float_bits(b: &Batch) -> Vec<u64> {
    let mut v: Vec<u64> = b.metrics.iter().map(|m| m.value.to_bits()).collect();
    for r in &b.logs {
        for (_, a) in &r.attributes {
            if let FieldValue::Float(f) = a {
                v.push(f.to_bits());
            }
        }
    }
    v
}

#[test]
fn every_field_survives_both_compressions() {
    let b = full_batch();
    for codec in [
        BatchCodec::new(),
        BatchCodec::new().with_compression(Compression::Zstd(3)),
    ] {
        let bytes = codec.encode_to_vec(&b).unwrap();
        let back = codec.decode(&bytes).unwrap();
        assert_eq!(float_bits(&back), float_bits(&b), "NaN payloads kept");
        // PartialEq on f64 says NaN != NaN; compare everything else.
        let (mut x, mut y) = (back.clone(), b.clone());
        for m in x.metrics.iter_mut().chain(y.metrics.iter_mut()) {
            m.value = 0.0;
        }
        x.logs[0].attributes[1].1 = FieldValue::Null;
        y.logs[0].attributes[1].1 = FieldValue::Null;
        assert_eq!(x, y);
        assert_eq!(BatchCodec::peek_id(&bytes).unwrap(), b.id);
        // Either codec reads either encoding.
        let plain = BatchCodec::new();
        assert_eq!(
            plain.encode_to_vec(&plain.decode(&bytes).unwrap()).unwrap(),
            plain.encode_to_vec(&b).unwrap()
        );
    }
}

#[test]
fn encoding_is_compact() {
    // A typical syslog batch: 1000 records with consecutive ids, close
    // timestamps, the batch's tenant and source.
    let mut b = Batch::new(BatchId::from_u128(9), tenant("default"), Timestamp::EPOCH);
    b.source = Some("syslog-udp".into());
    let g = crate::event::EventIdGenerator::with_prefix(3);
    for i in 0..1000 {
        let ts = Timestamp::from_millis(1_764_090_756_000 + i);
        b.logs.push(LogRecord {
            id: Some(g.next(ts)),
            tenant: Some(b.tenant.clone()),
            source: b.source.clone(),
            timestamp: ts,
            severity: Some(Severity::Informational),
            host: Some("web1".into()),
            app: Some("nginx".into()),
            message: Some(format!("GET /index.html 200 {i}").into_bytes()),
            ..LogRecord::default()
        });
    }
    let bytes = BatchCodec::new().encode_to_vec(&b).unwrap();
    let payload: usize = b
        .logs
        .iter()
        .map(|r| 4 + 5 + r.message.as_ref().unwrap().len())
        .sum();
    // Overhead per record beyond the raw strings: flags, id delta, ts delta,
    // severity, three lengths.
    let overhead = (bytes.len() - payload) as f64 / 1000.0;
    assert!(overhead < 12.0, "overhead {overhead} bytes/record");
    let json: usize = b.logs.iter().map(|r| r.to_json().len()).sum();
    assert!(bytes.len() * 4 < json, "{} vs JSON {json}", bytes.len());
}

#[test]
fn malformed_inputs_name_the_problem() {
    let good = BatchCodec::new().encode_to_vec(&full_batch()).unwrap();
    let codec = BatchCodec::new();
    let cases: Vec<(Vec<u8>, CodecError)> = vec![
        (b"XYZ".to_vec(), CodecError::BadMagic),
        (
            b"KKB".to_vec(),
            CodecError::Truncated {
                offset: 3,
                expected: "batch header",
            },
        ),
        (
            [&good[..3], &[9]]
                .concat()
                .into_iter()
                .chain([0; 17])
                .collect(),
            CodecError::UnsupportedVersion(9),
        ),
        (
            [&good[..4], &[0x80]]
                .concat()
                .into_iter()
                .chain([0; 16])
                .collect(),
            CodecError::UnknownFlags(0x80),
        ),
        ([&good[..], &[0]].concat(), CodecError::TrailingBytes(1)),
        // The last field is the unit "seconds": its length byte sits 8 bytes
        // from the end of the body.
        (
            good[..good.len() - 1].to_vec(),
            CodecError::Truncated {
                offset: good.len() - HEADER_LEN - 8,
                expected: "metadata unit",
            },
        ),
    ];
    for (input, want) in cases {
        assert_eq!(codec.decode(&input).unwrap_err(), want);
    }
    // An invalid tenant name in the body.
    let mut bad = good.clone();
    let t_at = bad.windows(6).position(|w| w == b"team-a").unwrap();
    bad[t_at] = b' ';
    assert!(matches!(
        codec.decode(&bad),
        Err(CodecError::Invalid { what: "tenant", .. })
    ));
}

#[test]
fn oversized_zstd_bodies_are_refused() {
    let mut b = full_batch();
    b.logs[0].message = Some(vec![b'x'; 100_000]);
    let bytes = BatchCodec::new()
        .with_compression(Compression::Zstd(1))
        .encode_to_vec(&b)
        .unwrap();
    assert!(bytes.len() < 2_000, "compressed to {}", bytes.len());
    let small = BatchCodec::new().with_max_decoded_bytes(50_000);
    assert_eq!(
        small.decode(&bytes).unwrap_err(),
        CodecError::TooLarge { limit: 50_000 }
    );
}

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z]{1,8}",
        any::<String>().prop_map(|s| s.chars().take(20).collect()),
    ]
}

fn arb_tenant() -> impl Strategy<Value = Tenant> {
    "[A-Za-z0-9_.-]{1,12}".prop_map(|s| tenant(&s))
}

fn arb_value() -> impl Strategy<Value = FieldValue> {
    prop_oneof![
        Just(FieldValue::Null),
        any::<bool>().prop_map(FieldValue::Bool),
        any::<i64>().prop_map(FieldValue::Int),
        any::<u64>().prop_map(|b| FieldValue::Float(f64::from_bits(b))),
        arb_string().prop_map(FieldValue::Str),
    ]
}

prop_compose! {
    fn arb_log(batch_tenant: Tenant, batch_source: Option<String>)(
        id in proptest::option::of(any::<u128>()),
        tenant_mode in 0..3u8,
        other_tenant in arb_tenant(),
        ts in any::<i64>(),
        sev in proptest::option::of(0..8u8),
        fac in proptest::option::of(0..24u8),
        strings in proptest::collection::vec(proptest::option::of(arb_string()), 5),
        message in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        source_mode in 0..3u8,
        sd in proptest::collection::vec((arb_string(), proptest::collection::vec((arb_string(), arb_string()), 0..3)), 0..3),
        attributes in proptest::collection::vec((arb_string(), arb_value()), 0..4),
    ) -> LogRecord {
        LogRecord {
            id: id.map(EventId::from_u128),
            tenant: match tenant_mode { 0 => None, 1 => Some(batch_tenant.clone()), _ => Some(other_tenant) },
            timestamp: Timestamp::from_nanos(ts),
            severity: sev.and_then(Severity::from_code),
            facility: fac.and_then(Facility::from_code),
            host: strings[0].clone(),
            app: strings[1].clone(),
            procid: strings[2].clone(),
            msgid: strings[3].clone(),
            structured_data: sd.into_iter().map(|(id, params)| SdElement { id, params }).collect(),
            message,
            source: match source_mode { 0 => None, 1 => batch_source.clone(), _ => Some("explicit".into()) },
            attributes,
            parse_error: strings[4].clone(),
        }
    }
}

prop_compose! {
    fn arb_sample(batch_tenant: Tenant)(
        tenant_mode in 0..3u8,
        other in arb_tenant(),
        name in arb_string(),
        labels in proptest::collection::vec(("[a-z]{1,4}", arb_string()), 0..4),
        value in any::<u64>(),
        ts in proptest::option::of(any::<i64>()),
        kind in 0..8usize,
    ) -> MetricSample {
        MetricSample {
            tenant: match tenant_mode { 0 => None, 1 => Some(batch_tenant.clone()), _ => Some(other) },
            name: name.into(),
            labels: Labels::from_pairs(labels),
            value: f64::from_bits(value),
            timestamp: ts.map(Timestamp::from_nanos),
            kind: metric::tests_type(kind),
        }
    }
}

fn arb_batch() -> impl Strategy<Value = Batch> {
    (
        arb_tenant(),
        proptest::option::of(arb_string()),
        any::<u128>(),
        any::<i64>(),
    )
        .prop_flat_map(|(t, source, id, received)| {
            (
                proptest::collection::vec(arb_log(t.clone(), source.clone()), 0..6),
                proptest::collection::vec(arb_sample(t.clone()), 0..6),
                proptest::collection::vec(
                    (
                        arb_string(),
                        0..8usize,
                        proptest::option::of(arb_string()),
                        proptest::option::of(arb_string()),
                    ),
                    0..3,
                ),
            )
                .prop_map(move |(logs, metrics, md)| Batch {
                    id: BatchId::from_u128(id),
                    tenant: t.clone(),
                    source: source.clone(),
                    received: Timestamp::from_nanos(received),
                    logs,
                    metrics,
                    metadata: md
                        .into_iter()
                        .map(|(family, k, help, unit)| MetricMetadata {
                            family,
                            kind: metric::tests_type(k),
                            help,
                            unit,
                        })
                        .collect(),
                })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trip_is_exact(b in arb_batch(), zstd in any::<bool>()) {
        let codec = if zstd { BatchCodec::new().with_compression(Compression::Zstd(1)) } else { BatchCodec::new() };
        let bytes = codec.encode_to_vec(&b).unwrap();
        let back = codec.decode(&bytes).unwrap();
        // Byte-identical re-encoding covers NaN payloads, which `==` cannot.
        prop_assert_eq!(BatchCodec::new().encode_to_vec(&back).unwrap(), BatchCodec::new().encode_to_vec(&b).unwrap());
        prop_assert_eq!(float_bits(&back), float_bits(&b));
        prop_assert_eq!(back.logs.len(), b.logs.len());
        if float_bits(&b).iter().all(|bits| !f64::from_bits(*bits).is_nan()) {
            prop_assert_eq!(back, b);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let codec = BatchCodec::new();
        let _ = codec.decode(&bytes);
        let mut framed = b"KKB\x01\x00".to_vec();
        framed.extend_from_slice(&[0; 16]);
        framed.extend_from_slice(&bytes);
        let _ = codec.decode(&framed);
        framed[4] = 1;
        let _ = codec.decode(&framed);
        framed[3] = 2;
        let _ = codec.decode(&framed);
        framed[4] = 0;
        let _ = codec.decode(&framed);
    }

    #[test]
    fn mutated_encodings_never_panic(b in arb_batch(), at in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = BatchCodec::new().encode_to_vec(&b).unwrap();
        let i = at % bytes.len();
        bytes[i] = byte;
        let _ = BatchCodec::new().decode(&bytes);
        let cut = at % (bytes.len() + 1);
        let _ = BatchCodec::new().decode(&bytes[..cut]);
    }
}
