//! Format version 2 (metric samples as runs of one series) against version 1.

use proptest::prelude::*;

use super::*;
use crate::event::{Labels, MetricSample, MetricType};

fn tenant(s: &str) -> Tenant {
    Tenant::new(s).expect("valid tenant")
}

/// What `loadgen --mode remote-write` sends: `series` series × `per`
/// samples each, the samples of one series together.
fn remote_write_batch(series: usize, per: usize) -> Batch {
    let t = tenant("default");
    let mut b = Batch::new(BatchId::from_u128(77), t.clone(), Timestamp::EPOCH);
    for s in 0..series {
        let labels = Labels::from_pairs([
            ("instance", format!("host-{s:04}.example.com:9100")),
            ("job", "node".to_string()),
            ("mode", "user".to_string()),
            ("cpu", format!("{}", s % 8)),
        ]);
        for i in 0..per {
            b.metrics.push(MetricSample {
                tenant: Some(t.clone()),
                name: "node_cpu_seconds_total".into(),
                labels: labels.clone(),
                value: (s * 1000 + i) as f64 * 0.25,
                timestamp: Some(Timestamp::from_millis(
                    1_764_090_756_000 + i as i64 * 15_000,
                )),
                kind: MetricType::Counter,
            });
        }
    }
    b
}

#[test]
fn version_two_is_the_default_and_reads_back_exactly() {
    let b = remote_write_batch(100, 10);
    let v2 = BatchCodec::new().encode_to_vec(&b).unwrap();
    assert_eq!(v2[3], 2);
    assert_eq!(BatchCodec::new().version(), 2);
    assert_eq!(BatchCodec::new().decode(&v2).unwrap(), b);
    let v1 = BatchCodec::new().with_version(1).encode_to_vec(&b).unwrap();
    assert_eq!(v1[3], 1);
    // A build that writes version 2 reads version 1 (queue rows and
    // dead letters written before the upgrade).
    assert_eq!(BatchCodec::new().decode(&v1).unwrap(), b);
    let per_v1 = v1.len() as f64 / 1000.0;
    let per_v2 = v2.len() as f64 / 1000.0;
    // Per sample, version 1 writes ~60 bytes of series and ~13 of value and
    // timestamp; version 2 writes the value and timestamp and a tenth of
    // the series.
    assert!(per_v1 > 80.0, "version 1: {per_v1} bytes/sample");
    assert!(per_v2 < 25.0, "version 2: {per_v2} bytes/sample");
    assert!(per_v1 > 4.0 * per_v2, "{per_v1} vs {per_v2} bytes/sample");
}

#[test]
fn a_version_one_body_written_by_the_previous_build_still_decodes() {
    // Bytes as the version 1 encoder wrote them (kept literally, so a
    // change to the decoder that reinterprets version 1 fails here).
    let mut bytes = b"KKB\x01\x00".to_vec();
    bytes.extend_from_slice(&[0; 15]);
    bytes.push(5); // batch id 5
    bytes.extend_from_slice(&[
        0x00, // received: zigzag 0
        0x01, b't', // tenant "t"
        0x00, // no source
        0x00, // no log records
        0x01, // one sample
        0x05, // flags: batch tenant, has timestamp
        0x00, // counter
        0x02, b'u', b'p', // name
        0x01, 0x01, b'a', 0x01, b'b', // labels {a="b"}
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x3f, // 1.0
        0x0a, // timestamp delta +5 ns
        0x00, // no metadata
    ]);
    let b = BatchCodec::new().decode(&bytes).unwrap();
    assert_eq!(b.id, BatchId::from_u128(5));
    assert_eq!(
        b.metrics,
        vec![MetricSample {
            tenant: Some(tenant("t")),
            name: "up".into(),
            labels: Labels::from_pairs([("a", "b")]),
            value: 1.0,
            timestamp: Some(Timestamp::from_nanos(5)),
            kind: MetricType::Counter,
        }]
    );
    // And the same batch written as version 1 today is those bytes.
    assert_eq!(
        BatchCodec::new().with_version(1).encode_to_vec(&b).unwrap(),
        bytes
    );
}

#[test]
fn the_samples_of_a_decoded_run_share_one_label_set() {
    let b = remote_write_batch(3, 4);
    for version in [1, 2] {
        let bytes = BatchCodec::new()
            .with_version(version)
            .encode_to_vec(&b)
            .unwrap();
        let d = BatchCodec::new().decode(&bytes).unwrap();
        assert_eq!(d, b);
        let m = &d.metrics;
        for (i, w) in m.windows(2).enumerate() {
            let same_series = (i + 1) % 4 != 0;
            // Version 1 carries labels per sample: equal, never shared.
            assert_eq!(
                w[0].labels.shares(&w[1].labels),
                same_series && version == 2
            );
            assert_eq!(w[0].labels == w[1].labels, same_series);
        }
    }
}

#[test]
fn runs_break_on_series_tenant_type_and_timestamp_presence() {
    let t = tenant("a");
    let base = MetricSample {
        tenant: Some(t.clone()),
        name: "x".into(),
        labels: Labels::from_pairs([("k", "v")]),
        value: 1.0,
        timestamp: Some(Timestamp::from_nanos(10)),
        kind: MetricType::Gauge,
    };
    let mut b = Batch::new(BatchId::from_u128(1), t.clone(), Timestamp::EPOCH);
    let variants = [
        base.clone(),
        base.clone(),
        MetricSample {
            timestamp: None,
            ..base.clone()
        },
        MetricSample {
            tenant: Some(tenant("other")),
            ..base.clone()
        },
        MetricSample {
            tenant: None,
            ..base.clone()
        },
        MetricSample {
            kind: MetricType::Counter,
            ..base.clone()
        },
        MetricSample {
            labels: Labels::from_pairs([("k", "w")]),
            ..base.clone()
        },
        MetricSample {
            name: "y".into(),
            timestamp: Some(Timestamp::from_nanos(-3)),
            ..base.clone()
        },
        base.clone(),
    ];
    b.metrics.extend(variants);
    let bytes = BatchCodec::new().encode_to_vec(&b).unwrap();
    assert_eq!(BatchCodec::new().decode(&bytes).unwrap(), b);
}

#[test]
fn malformed_runs_are_refused() {
    let mut b = Batch::new(BatchId::from_u128(1), tenant("a"), Timestamp::EPOCH);
    b.metrics = remote_write_batch(1, 3).metrics;
    let good = BatchCodec::new().encode_to_vec(&b).unwrap();
    // Body: received 0, tenant "a" (2), no source, no logs, then the
    // sample count (3) and the first run header (3 << 1 | 1 = 7).
    let at = HEADER_LEN + 1 + 2 + 1 + 1;
    assert_eq!(&good[at..at + 2], &[3, 7]);
    for (head, what) in [(1u8, "metric run length"), (9, "metric run length")] {
        let mut bad = good.clone();
        bad[at + 1] = head;
        assert_eq!(
            BatchCodec::new().decode(&bad).unwrap_err(),
            CodecError::Invalid {
                offset: at + 1 - HEADER_LEN,
                what
            }
        );
    }
    // Series flags 3 is no tenant mode.
    let mut bad = good.clone();
    bad[at + 2] = 3;
    assert!(matches!(
        BatchCodec::new().decode(&bad),
        Err(CodecError::Invalid {
            what: "metric series flags",
            ..
        })
    ));
    // A run header that claims more samples than the bytes hold.
    let mut short = good.clone();
    short.truncate(good.len() - 12);
    assert!(matches!(
        BatchCodec::new().decode(&short),
        Err(CodecError::Truncated { .. } | CodecError::Invalid { .. })
    ));
}

#[test]
fn expansion_of_shared_labels_is_bounded() {
    // One series with 4 KB of labels and 10,000 samples: about 90 KB of
    // input that would expand to over 40 MB of label copies.
    let t = tenant("a");
    let mut b = Batch::new(BatchId::from_u128(1), t.clone(), Timestamp::EPOCH);
    let labels = Labels::from_pairs([("big", "v".repeat(4096))]);
    for i in 0..10_000 {
        b.metrics.push(MetricSample {
            tenant: None,
            name: "x".into(),
            labels: labels.clone(),
            value: i as f64,
            timestamp: None,
            kind: MetricType::Gauge,
        });
    }
    let bytes = BatchCodec::new().encode_to_vec(&b).unwrap();
    assert!(bytes.len() < 100_000, "{}", bytes.len());
    let small = BatchCodec::new().with_max_decoded_bytes(1 << 20);
    assert_eq!(
        small.decode(&bytes).unwrap_err(),
        CodecError::TooLarge { limit: 1 << 20 }
    );
    assert_eq!(
        BatchCodec::new().decode(&bytes).unwrap().metrics.len(),
        10_000
    );
}

prop_compose! {
    /// Samples drawn from a pool of four series, so runs and repeats occur.
    fn arb_samples(t: Tenant)(
        picks in proptest::collection::vec((0..4usize, any::<u64>(), proptest::option::of(any::<i64>())), 0..40),
    ) -> Vec<MetricSample> {
        let pool = [
            (Some(t.clone()), "a", vec![("k", "1")], MetricType::Counter),
            (None, "a", vec![("k", "1")], MetricType::Counter),
            (Some(tenant("z")), "b", vec![], MetricType::Gauge),
            (Some(t.clone()), "a", vec![("k", "1"), ("l", "2")], MetricType::Histogram),
        ];
        picks
            .into_iter()
            .map(|(i, bits, ts)| {
                let (tenant, name, labels, kind) = pool[i].clone();
                MetricSample {
                    tenant,
                    name: name.into(),
                    labels: Labels::from_pairs(labels),
                    value: f64::from_bits(bits),
                    timestamp: ts.map(Timestamp::from_nanos),
                    kind,
                }
            })
            .collect()
    }
}

fn bits(b: &Batch) -> Vec<u64> {
    b.metrics.iter().map(|m| m.value.to_bits()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn both_versions_decode_to_the_same_batch(
        metrics in arb_samples(tenant("t")),
        zstd in any::<bool>(),
    ) {
        let mut b = Batch::new(BatchId::from_u128(3), tenant("t"), Timestamp::EPOCH);
        b.metrics = metrics;
        let compression = if zstd { Compression::Zstd(1) } else { Compression::None };
        let v1 = BatchCodec::new().with_version(1).with_compression(compression);
        let v2 = BatchCodec::new().with_compression(compression);
        let from1 = v2.decode(&v1.encode_to_vec(&b).unwrap()).unwrap();
        let from2 = v1.decode(&v2.encode_to_vec(&b).unwrap()).unwrap();
        prop_assert_eq!(bits(&from1), bits(&b));
        prop_assert_eq!(bits(&from2), bits(&b));
        // NaN != NaN: compare the rest by re-encoding, which keeps the bits.
        let plain = BatchCodec::new();
        prop_assert_eq!(plain.encode_to_vec(&from1).unwrap(), plain.encode_to_vec(&b).unwrap());
        prop_assert_eq!(plain.encode_to_vec(&from2).unwrap(), plain.encode_to_vec(&b).unwrap());
        prop_assert_eq!(from1.metrics.len(), b.metrics.len());
    }

    #[test]
    fn mutated_version_two_bodies_never_panic(
        metrics in arb_samples(tenant("t")),
        at in any::<usize>(),
        byte in any::<u8>(),
    ) {
        let mut b = Batch::new(BatchId::from_u128(3), tenant("t"), Timestamp::EPOCH);
        b.metrics = metrics;
        let mut bytes = BatchCodec::new().encode_to_vec(&b).unwrap();
        let i = at % bytes.len();
        bytes[i] = byte;
        let _ = BatchCodec::new().with_max_decoded_bytes(1 << 16).decode(&bytes);
        let cut = at % (bytes.len() + 1);
        let _ = BatchCodec::new().decode(&bytes[..cut]);
    }
}
