//! Small requests that decode into huge ones: each is refused before the copies
//! are made (the test would run out of memory otherwise), with an error naming the
//! limit and the series.

use killkrill_proto::{prometheus as v1pb, prometheus_v2 as v2pb};
use prost::Message;

use super::*;

fn snappy(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(raw).unwrap()
}

fn label(name: &str, value: &str) -> v1pb::Label {
    v1pb::Label {
        name: name.into(),
        value: value.into(),
    }
}

/// One series with a `value_len`-byte label and `samples` empty samples (2 bytes
/// each on the wire).
fn v1_fan_out(value_len: usize, samples: usize) -> Vec<u8> {
    let req = v1pb::WriteRequest {
        timeseries: vec![v1pb::TimeSeries {
            labels: vec![label("__name__", "x"), label("big", &"v".repeat(value_len))],
            samples: vec![v1pb::Sample::default(); samples],
            ..Default::default()
        }],
        metadata: vec![],
    };
    snappy(&req.encode_to_vec())
}

#[test]
fn v1_one_long_label_times_a_million_samples_is_refused() {
    // The reviewer's example: ~1 TB if decoded, about 150 KB on the wire.
    let body = v1_fan_out(1 << 20, 1_000_000);
    assert!(body.len() < 200_000, "{}", body.len());
    let e = decode(&body, RemoteWriteVersion::V1, &Limits::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "series 0: label \"big\": value is 1048576 bytes, more than the limit of 8192"
    );
    // Even with the label length limit lifted, the output budget holds.
    let lifted = Limits {
        max_label_value_bytes: 2 << 20,
        ..Limits::default()
    };
    let e = decode(&body, RemoteWriteVersion::V1, &lifted).unwrap_err();
    assert_eq!(
        e,
        RemoteWriteError::TooLargeDecoded {
            series: 0,
            max: 256 << 20
        }
    );
    assert!(e.to_string().contains("268435456 bytes of memory"), "{e}");
    // At the label limit, a million samples are still ~8 GB: refused.
    let body = v1_fan_out(8 << 10, 1_000_000);
    let e = decode(&body, RemoteWriteVersion::V1, &Limits::default()).unwrap_err();
    assert!(
        matches!(e, RemoteWriteError::TooLargeDecoded { series: 0, .. }),
        "{e}"
    );
}

#[test]
fn v1_exemplars_are_charged_like_samples() {
    let req = v1pb::WriteRequest {
        timeseries: vec![v1pb::TimeSeries {
            labels: vec![label("__name__", "x"), label("big", &"v".repeat(8 << 10))],
            exemplars: vec![v1pb::Exemplar::default(); 1_000_000],
            ..Default::default()
        }],
        metadata: vec![],
    };
    let body = snappy(&req.encode_to_vec());
    let e = decode(&body, RemoteWriteVersion::V1, &Limits::default()).unwrap_err();
    assert!(
        matches!(e, RemoteWriteError::TooLargeDecoded { series: 0, .. }),
        "{e}"
    );
}

#[test]
fn the_budget_is_exact_at_its_edge() {
    // {__name__="up", job="api"} × 2 samples: (64 + 2 + 48 + 3 + 3) × 2 = 240.
    let req = v1pb::WriteRequest {
        timeseries: vec![v1pb::TimeSeries {
            labels: vec![label("__name__", "up"), label("job", "api")],
            samples: vec![v1pb::Sample::default(); 2],
            ..Default::default()
        }],
        metadata: vec![],
    };
    let body = snappy(&req.encode_to_vec());
    let at = |max_output_bytes| {
        decode(
            &body,
            RemoteWriteVersion::V1,
            &Limits {
                max_output_bytes,
                ..Limits::default()
            },
        )
    };
    assert_eq!(at(240).unwrap().samples.len(), 2);
    assert_eq!(
        at(239).unwrap_err(),
        RemoteWriteError::TooLargeDecoded {
            series: 0,
            max: 239
        }
    );
}

/// Symbols `["", "__name__", "x", "big", <big>]` and `series` series that each
/// refer to `big="<big>"`, optionally with metadata whose help is the big symbol.
fn v2_shared_symbol(big_len: usize, series: usize, distinct_names: bool) -> Vec<u8> {
    let mut symbols: Vec<String> = ["", "__name__", "x", "big"].map(String::from).to_vec();
    symbols.push("h".repeat(big_len));
    let first_name = symbols.len() as u32;
    if distinct_names {
        symbols.extend((0..series).map(|i| format!("m{i}")));
    }
    let timeseries = (0..series)
        .map(|i| {
            let name = if distinct_names {
                first_name + i as u32
            } else {
                2
            };
            v2pb::TimeSeries {
                labels_refs: if distinct_names {
                    vec![1, name]
                } else {
                    vec![1, name, 3, 4]
                },
                metadata: distinct_names.then_some(v2pb::Metadata {
                    r#type: v2pb::metadata::MetricType::Gauge as i32,
                    help_ref: 4,
                    unit_ref: 0,
                }),
                ..Default::default()
            }
        })
        .collect();
    snappy(
        &v2pb::Request {
            symbols,
            timeseries,
        }
        .encode_to_vec(),
    )
}

#[test]
fn v2_a_big_symbol_referenced_by_many_series_is_refused() {
    // 4 MiB symbol × 100,000 series: 400 GB of copies from a small body.
    let body = v2_shared_symbol(4 << 20, 100_000, false);
    assert!(body.len() < 2 << 20, "{}", body.len());
    let e = decode(&body, RemoteWriteVersion::V2, &Limits::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "series 0: label \"big\": value is 4194304 bytes, more than the limit of 8192"
    );
    let lifted = Limits {
        max_label_value_bytes: 8 << 20,
        ..Limits::default()
    };
    let e = decode(&body, RemoteWriteVersion::V2, &lifted).unwrap_err();
    // 256 MiB / (4 MiB + overhead) copies fit: the 64th is refused.
    assert_eq!(
        e,
        RemoteWriteError::TooLargeDecoded {
            series: 63,
            max: 256 << 20
        }
    );
}

#[test]
fn v2_a_big_help_text_shared_by_many_families_is_refused() {
    // Help texts are not labels (no length limit), but each family copies one.
    let body = v2_shared_symbol(1 << 20, 1000, true);
    let e = decode(&body, RemoteWriteVersion::V2, &Limits::default()).unwrap_err();
    assert!(
        matches!(e, RemoteWriteError::TooLargeDecoded { series, .. } if series < 1000),
        "{e}"
    );
    // A few families are fine.
    let body = v2_shared_symbol(1 << 20, 10, true);
    let b = decode(&body, RemoteWriteVersion::V2, &Limits::default()).unwrap();
    assert_eq!(b.metadata.len(), 10);
}

#[test]
fn native_histogram_at_the_lowest_index_is_an_error_not_a_panic() {
    let req = v1pb::WriteRequest {
        timeseries: vec![v1pb::TimeSeries {
            labels: vec![label("__name__", "h")],
            histograms: vec![v1pb::Histogram {
                negative_spans: vec![v1pb::BucketSpan {
                    offset: i32::MIN,
                    length: 1,
                }],
                negative_deltas: vec![1],
                ..Default::default()
            }],
            ..Default::default()
        }],
        metadata: vec![],
    };
    let e = decode(
        &snappy(&req.encode_to_vec()),
        RemoteWriteVersion::V1,
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "series 0: histograms[0]: negative bucket 0: index -2147483648 is out of range"
    );
}
