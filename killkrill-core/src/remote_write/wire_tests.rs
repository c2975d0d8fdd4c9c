//! The in-place 1.0 reader against the prost path: whenever it answers, the
//! answer is the prost path's, bit for bit; it answers for the bodies it is
//! for; and it declines everything else, so errors read as before.

use killkrill_proto::prometheus as pb;
use proptest::prelude::*;
use prost::Message;

use super::tests::{l, v1_series as series};
use super::*;
use crate::event::MetricType;

fn prost_path(raw: &[u8], limits: &Limits) -> Result<WriteBatch, String> {
    let req = pb::WriteRequest::decode(raw).map_err(|e| e.to_string())?;
    v1::convert(req, limits).map_err(|e| e.to_string())
}

/// Everything of a batch, values as bits (NaN payloads included).
fn fingerprint(b: &WriteBatch) -> String {
    let samples: Vec<String> = b
        .samples
        .iter()
        .map(|s| {
            format!(
                "{:?} {} {:?} {:?} {:x} {:?}",
                s.tenant,
                s.name,
                s.labels.as_slice(),
                s.kind,
                s.value.to_bits(),
                s.timestamp
            )
        })
        .collect();
    format!(
        "{samples:?} {:?} {:?} {:?}",
        b.metadata, b.exemplars, b.report
    )
}

/// The reader's answer, checked against the prost path's; whether it answered.
fn check(raw: &[u8], limits: &Limits) -> bool {
    let fast = wire_v1::decode(raw, limits);
    let slow = prost_path(raw, limits);
    if let Some(fast) = &fast {
        let slow = slow.expect("the reader accepted a body the prost path refuses");
        assert_eq!(fingerprint(fast), fingerprint(&slow));
        // A series' samples share one label set, as the prost path's do.
        for w in fast.samples.windows(2) {
            if w[0].name == w[1].name && w[0].labels == w[1].labels {
                assert!(w[0].labels.shares(&w[1].labels));
            }
        }
    }
    fast.is_some()
}

fn typical() -> pb::WriteRequest {
    pb::WriteRequest {
        timeseries: vec![
            series(
                &[
                    ("__name__", "http_requests_total"),
                    ("job", "api"),
                    ("code", "200"),
                ],
                &[(1.0, 1_700_000_000_000), (2.5, 1_700_000_015_000)],
            ),
            // Unsorted, an empty value, NaN (a staleness marker) and -Inf.
            series(
                &[("zone", "b"), ("empty", ""), ("__name__", "temp_celsius")],
                &[
                    (f64::from_bits(0x7ff0_0000_0000_0002), 5),
                    (f64::NEG_INFINITY, -7),
                ],
            ),
            series(&[("__name__", "no_samples")], &[]),
            series(
                &[("__name__", "rpc_seconds_bucket"), ("le", "0.5")],
                &[(3.0, 10)],
            ),
        ],
        metadata: vec![
            pb::MetricMetadata {
                r#type: pb::metric_metadata::MetricType::Counter as i32,
                metric_family_name: "http_requests".into(),
                help: "Requests.".into(),
                unit: String::new(),
            },
            pb::MetricMetadata {
                r#type: pb::metric_metadata::MetricType::Histogram as i32,
                metric_family_name: "rpc_seconds".into(),
                help: String::new(),
                unit: "seconds".into(),
            },
        ],
    }
}

#[test]
fn answers_for_float_series_exactly_as_prost() {
    let limits = Limits::default();
    let raw = typical().encode_to_vec();
    assert!(check(&raw, &limits));
    // Again, now from the cache.
    assert!(check(&raw, &limits));
    let b = wire_v1::decode(&raw, &limits).unwrap();
    assert_eq!(b.samples.len(), 5);
    assert_eq!(b.samples[0].kind, MetricType::Counter);
    assert_eq!(b.samples[4].kind, MetricType::Histogram);
    assert_eq!(b.samples[2].labels.as_slice().len(), 1); // the empty value is gone
    assert_eq!(b.report.series, 4);
    assert_eq!(b.metadata.len(), 2);
    // The public entry point takes this reader and gives the same.
    let public = decode_uncompressed(&raw, RemoteWriteVersion::V1, &limits).unwrap();
    assert_eq!(fingerprint(&public), fingerprint(&b));
}

#[test]
fn a_known_series_comes_from_the_cache() {
    let limits = Limits::default();
    let req = pb::WriteRequest {
        timeseries: vec![series(
            &[("__name__", "cached_series_x"), ("a", "1")],
            &[(1.0, 1)],
        )],
        metadata: vec![],
    };
    let raw = req.encode_to_vec();
    let a = wire_v1::decode(&raw, &limits).unwrap();
    let b = wire_v1::decode(&raw, &limits).unwrap();
    assert!(a.samples[0].labels.shares(&b.samples[0].labels));
}

#[test]
fn other_limits_check_a_cached_series_again() {
    let req = pb::WriteRequest {
        timeseries: vec![series(
            &[("__name__", "limits_series"), ("a", "1"), ("b", "2")],
            &[(1.0, 1)],
        )],
        metadata: vec![],
    };
    let raw = req.encode_to_vec();
    assert!(check(&raw, &Limits::default()));
    let strict = Limits {
        max_labels_per_series: 2,
        ..Limits::default()
    };
    assert!(!check(&raw, &strict));
    let err = decode_uncompressed(&raw, RemoteWriteVersion::V1, &strict).unwrap_err();
    assert!(
        err.to_string().contains("labels"),
        "the prost path names the problem: {err}"
    );
}

#[test]
fn declines_what_it_does_not_handle() {
    let limits = Limits::default();
    let mut with_exemplar = typical();
    with_exemplar.timeseries[0].exemplars.push(pb::Exemplar {
        labels: vec![l("trace_id", "abc")],
        value: 1.0,
        timestamp: 1,
    });
    let mut with_histogram = typical();
    with_histogram.timeseries[1].histograms.push(pb::Histogram {
        timestamp: 1,
        ..Default::default()
    });
    let invalid = [
        vec![series(&[("job", "no_name")], &[(1.0, 1)])],
        vec![series(
            &[("__name__", "dup"), ("a", "1"), ("a", "2")],
            &[(1.0, 1)],
        )],
        vec![series(&[("__name__", "x"), ("", "v")], &[(1.0, 1)])],
        vec![series(&[("__name__", "late")], &[(1.0, i64::MAX)])],
    ];
    for req in [with_exemplar, with_histogram] {
        assert!(!check(&req.encode_to_vec(), &limits));
    }
    for timeseries in invalid {
        let raw = pb::WriteRequest {
            timeseries,
            metadata: vec![],
        }
        .encode_to_vec();
        assert!(!check(&raw, &limits));
        assert!(prost_path(&raw, &limits).is_err());
    }
    // Invalid UTF-8 in a label value.
    let mut raw = pb::WriteRequest {
        timeseries: vec![series(&[("__name__", "utf"), ("a", "Z")], &[(1.0, 1)])],
        metadata: vec![],
    }
    .encode_to_vec();
    let z = raw.iter().position(|&c| c == b'Z').unwrap();
    raw[z] = 0xFF;
    assert!(!check(&raw, &limits));
    // Over the series and sample limits.
    let raw = typical().encode_to_vec();
    for strict in [
        Limits {
            max_series: 3,
            ..Limits::default()
        },
        Limits {
            max_samples: 4,
            ..Limits::default()
        },
        Limits {
            max_output_bytes: 100,
            ..Limits::default()
        },
    ] {
        assert!(!check(&raw, &strict));
        assert!(prost_path(&raw, &strict).is_err());
    }
}

#[test]
fn unknown_fields_are_skipped_as_prost_skips_them() {
    let limits = Limits::default();
    let mut raw = typical().encode_to_vec();
    // Field 2 (reserved, varint), field 9 (fixed32), field 10 (fixed64),
    // field 11 (bytes) at the top level.
    raw.extend_from_slice(&[0x10, 0x96, 0x01]);
    raw.extend_from_slice(&[0x4D, 1, 2, 3, 4]);
    raw.extend_from_slice(&[0x51, 1, 2, 3, 4, 5, 6, 7, 8]);
    raw.extend_from_slice(&[0x5A, 2, b'h', b'i']);
    assert!(check(&raw, &limits));
    // A group (wire type 3) is declined, and prost decides.
    let mut group = typical().encode_to_vec();
    group.extend_from_slice(&[0x63, 0x64]);
    assert!(!check(&group, &limits));
}

#[test]
fn every_truncation_and_byte_flip_agrees_with_prost() {
    let limits = Limits::default();
    let raw = typical().encode_to_vec();
    for n in 0..raw.len() {
        check(&raw[..n], &limits);
    }
    for i in 0..raw.len() {
        for x in [0x01, 0x08, 0x80, 0xFF] {
            let mut d = raw.clone();
            d[i] ^= x;
            check(&d, &limits);
        }
    }
}

proptest! {
    /// Random bytes and random edits of a valid body: whenever the reader
    /// answers, it is the prost path's answer.
    #[test]
    fn edited_bodies_agree(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
                           junk in prop::collection::vec(any::<u8>(), 0..64)) {
        let limits = Limits::default();
        let mut raw = typical().encode_to_vec();
        for (i, b) in &edits {
            let at = i.index(raw.len());
            raw[at] = *b;
        }
        check(&raw, &limits);
        check(&junk, &limits);
    }
}
