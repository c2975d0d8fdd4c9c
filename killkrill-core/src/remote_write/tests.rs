//! Request bodies built from the prost types, encoded and snappy-compressed exactly
//! as a sender does, then decoded.

use killkrill_proto::{prometheus as v1pb, prometheus_v2 as v2pb};
use prost::Message;

use super::*;
use crate::event::{MetricType, Timestamp};

fn snappy(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(raw).unwrap()
}

pub(super) fn l(name: &str, value: &str) -> v1pb::Label {
    v1pb::Label {
        name: name.into(),
        value: value.into(),
    }
}

pub(super) fn v1_series(labels: &[(&str, &str)], samples: &[(f64, i64)]) -> v1pb::TimeSeries {
    v1pb::TimeSeries {
        labels: labels.iter().map(|(n, v)| l(n, v)).collect(),
        samples: samples
            .iter()
            .map(|&(value, timestamp)| v1pb::Sample { value, timestamp })
            .collect(),
        ..Default::default()
    }
}

fn decode_v1(req: &v1pb::WriteRequest) -> Result<WriteBatch, RemoteWriteError> {
    decode(
        &snappy(&req.encode_to_vec()),
        RemoteWriteVersion::V1,
        &Limits::default(),
    )
}

fn decode_v2(req: &v2pb::Request) -> Result<WriteBatch, RemoteWriteError> {
    decode(
        &snappy(&req.encode_to_vec()),
        RemoteWriteVersion::V2,
        &Limits::default(),
    )
}

fn json_lines(b: &WriteBatch) -> Vec<String> {
    b.samples
        .iter()
        .map(|s| serde_json::to_string(s).unwrap())
        .collect()
}

#[test]
fn v1_samples_metadata_and_exemplars() {
    let mut counter = v1_series(
        &[
            ("__name__", "http_requests_total"),
            ("job", "api"),
            ("code", "200"),
            ("empty", ""),
        ],
        &[(1.0, 1000), (f64::NAN, 2000)],
    );
    counter.exemplars = vec![v1pb::Exemplar {
        labels: vec![l("trace_id", "abc")],
        value: 1.0,
        timestamp: 1500,
    }];
    let req = v1pb::WriteRequest {
        timeseries: vec![
            counter,
            v1_series(&[("__name__", "lat_bucket"), ("le", "0.5")], &[(3.0, 1000)]),
            v1_series(&[("__name__", "other")], &[(-2.5, -1)]),
        ],
        metadata: vec![
            v1pb::MetricMetadata {
                r#type: v1pb::metric_metadata::MetricType::Counter as i32,
                metric_family_name: "http_requests_total".into(),
                help: "Requests.".into(),
                unit: String::new(),
            },
            v1pb::MetricMetadata {
                r#type: v1pb::metric_metadata::MetricType::Histogram as i32,
                metric_family_name: "lat".into(),
                help: String::new(),
                unit: "seconds".into(),
            },
        ],
    };
    let b = decode_v1(&req).unwrap();
    assert_eq!(
        json_lines(&b),
        [
            r#"{"name":"http_requests_total","labels":{"code":"200","job":"api"},"value":1.0,"timestamp":1000000000,"type":"counter"}"#,
            r#"{"name":"http_requests_total","labels":{"code":"200","job":"api"},"value":"NaN","timestamp":2000000000,"type":"counter"}"#,
            r#"{"name":"lat_bucket","labels":{"le":"0.5"},"value":3.0,"timestamp":1000000000,"type":"histogram"}"#,
            r#"{"name":"other","labels":{},"value":-2.5,"timestamp":-1000000,"type":"unknown"}"#,
        ]
    );
    assert_eq!(b.metadata.len(), 2);
    assert_eq!(b.metadata[0].family, "http_requests_total");
    assert_eq!(b.metadata[0].kind, MetricType::Counter);
    assert_eq!(b.metadata[0].help.as_deref(), Some("Requests."));
    assert_eq!(b.metadata[1].unit.as_deref(), Some("seconds"));
    assert_eq!(b.exemplars.len(), 1);
    let e = &b.exemplars[0];
    assert_eq!(e.name, "http_requests_total");
    assert_eq!(e.labels.get("job"), Some("api"));
    assert_eq!(e.exemplar.labels.get("trace_id"), Some("abc"));
    assert_eq!(e.exemplar.timestamp, Some(Timestamp::from_millis(1500)));
    assert_eq!(
        b.report,
        WriteReport {
            series: 3,
            samples: 4,
            exemplars: 1,
            metadata: 2,
            ..WriteReport::default()
        }
    );
}

#[test]
fn v1_native_histogram_is_kept_as_classic_series() {
    let mut s = v1_series(&[("__name__", "rpc_seconds"), ("job", "a")], &[]);
    s.histograms = vec![v1pb::Histogram {
        count: Some(v1pb::histogram::Count::CountInt(5)),
        sum: 7.5,
        schema: 0,
        zero_threshold: 0.0,
        zero_count: Some(v1pb::histogram::ZeroCount::ZeroCountInt(0)),
        positive_spans: vec![v1pb::BucketSpan {
            offset: 1,
            length: 2,
        }],
        positive_deltas: vec![2, 1], // buckets (1,2]: 2, (2,4]: 3
        timestamp: 3000,
        ..Default::default()
    }];
    let b = decode_v1(&v1pb::WriteRequest {
        timeseries: vec![s],
        metadata: vec![],
    })
    .unwrap();
    let got: Vec<_> = b
        .samples
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.labels.get("le").unwrap_or("-"),
                s.value,
                s.kind,
            )
        })
        .collect();
    let h = MetricType::Histogram;
    assert_eq!(
        got,
        [
            ("rpc_seconds_count", "-", 5.0, h),
            ("rpc_seconds_sum", "-", 7.5, h),
            ("rpc_seconds_bucket", "2.0", 2.0, h),
            ("rpc_seconds_bucket", "4.0", 5.0, h),
            ("rpc_seconds_bucket", "+Inf", 5.0, h),
        ]
    );
    assert!(
        b.samples.iter().all(|s| s.labels.get("job") == Some("a")
            && s.timestamp == Some(Timestamp::from_millis(3000)))
    );
    assert_eq!(
        (
            b.report.histograms,
            b.report.histogram_samples,
            b.report.samples
        ),
        (1, 5, 0)
    );
}

/// A 2.0 request with a symbols table, metadata, exemplars, a start timestamp and a
/// gauge float histogram.
fn v2_request() -> v2pb::Request {
    let symbols: Vec<String> = [
        "",
        "__name__",
        "http_requests_total",
        "job",
        "api",
        "Requests.",
        "trace_id",
        "abc",
        "queue_len",
        "seconds",
        "temp",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    v2pb::Request {
        symbols,
        timeseries: vec![
            v2pb::TimeSeries {
                labels_refs: vec![1, 2, 3, 4],
                samples: vec![v2pb::Sample {
                    value: 10.0,
                    timestamp: 1000,
                    start_timestamp: 500,
                }],
                exemplars: vec![v2pb::Exemplar {
                    labels_refs: vec![6, 7],
                    value: 1.0,
                    timestamp: 900,
                }],
                metadata: Some(v2pb::Metadata {
                    r#type: v2pb::metadata::MetricType::Counter as i32,
                    help_ref: 5,
                    unit_ref: 0,
                }),
                ..Default::default()
            },
            v2pb::TimeSeries {
                labels_refs: vec![1, 8],
                histograms: vec![v2pb::Histogram {
                    count: Some(v2pb::histogram::Count::CountFloat(4.0)),
                    sum: 2.0,
                    schema: -53,
                    custom_values: vec![1.0, 5.0],
                    positive_spans: vec![v2pb::BucketSpan {
                        offset: 0,
                        length: 3,
                    }],
                    positive_counts: vec![1.0, 2.0, 1.0],
                    reset_hint: v2pb::histogram::ResetHint::Gauge as i32,
                    timestamp: 2000,
                    ..Default::default()
                }],
                metadata: Some(v2pb::Metadata {
                    r#type: v2pb::metadata::MetricType::Gaugehistogram as i32,
                    help_ref: 0,
                    unit_ref: 9,
                }),
                ..Default::default()
            },
            // Same family again: its metadata is not repeated.
            v2pb::TimeSeries {
                labels_refs: vec![1, 2, 3, 10],
                samples: vec![v2pb::Sample {
                    value: 1.0,
                    timestamp: 1000,
                    start_timestamp: 0,
                }],
                metadata: Some(v2pb::Metadata {
                    r#type: v2pb::metadata::MetricType::Counter as i32,
                    help_ref: 5,
                    unit_ref: 0,
                }),
                ..Default::default()
            },
        ],
    }
}

#[test]
fn v2_symbols_metadata_histograms_exemplars() {
    let b = decode_v2(&v2_request()).unwrap();
    let gh = MetricType::GaugeHistogram;
    let got: Vec<_> = b
        .samples
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.labels.get("le").unwrap_or("-"),
                s.value,
                s.kind,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("http_requests_total", "-", 10.0, MetricType::Counter),
            ("queue_len_gcount", "-", 4.0, gh),
            ("queue_len_gsum", "-", 2.0, gh),
            ("queue_len_bucket", "1.0", 1.0, gh),
            ("queue_len_bucket", "5.0", 3.0, gh),
            ("queue_len_bucket", "+Inf", 4.0, gh),
            ("http_requests_total", "-", 1.0, MetricType::Counter),
        ]
    );
    assert_eq!(b.samples[0].labels.get("job"), Some("api"));
    assert_eq!(b.samples[6].labels.get("job"), Some("temp"));
    let md: Vec<_> = b
        .metadata
        .iter()
        .map(|m| {
            (
                m.family.as_str(),
                m.kind,
                m.help.as_deref(),
                m.unit.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        md,
        [
            (
                "http_requests_total",
                MetricType::Counter,
                Some("Requests."),
                None
            ),
            ("queue_len", gh, None, Some("seconds")),
        ]
    );
    assert_eq!(b.exemplars[0].exemplar.labels.get("trace_id"), Some("abc"));
    assert_eq!(b.exemplars[0].exemplar.value, 1.0);
    assert_eq!(
        b.report,
        WriteReport {
            series: 3,
            samples: 2,
            histograms: 1,
            histogram_samples: 5,
            exemplars: 1,
            metadata: 2,
            start_timestamps_ignored: 1,
        }
    );
    assert_eq!(
        b.report.response_headers(),
        [
            ("X-Prometheus-Remote-Write-Samples-Written", 2),
            ("X-Prometheus-Remote-Write-Histograms-Written", 1),
            ("X-Prometheus-Remote-Write-Exemplars-Written", 1),
        ]
    );
}

#[test]
fn v2_errors_name_series_and_field() {
    type Edit = fn(&mut v2pb::Request);
    let cases: &[(&str, Edit, &str)] = &[
        (
            "label ref past the end",
            |r| r.timeseries[1].labels_refs[1] = 99,
            "series 1: labels_refs[1] refers to symbol 99, but the request has only 11 symbols",
        ),
        (
            "odd refs",
            |r| r.timeseries[0].labels_refs.push(1),
            "series 0: labels_refs has 5 entries; it must hold name/value pairs",
        ),
        (
            "help ref",
            |r| r.timeseries[2].metadata.as_mut().unwrap().help_ref = 11,
            "series 2: metadata.help_ref refers to symbol 11",
        ),
        (
            "unit ref",
            |r| r.timeseries[1].metadata.as_mut().unwrap().unit_ref = 4000,
            "series 1: metadata.unit_ref refers to symbol 4000",
        ),
        (
            "exemplar ref",
            |r| r.timeseries[0].exemplars[0].labels_refs[1] = 12,
            "series 0: exemplars[0].labels_refs[1] refers to symbol 12",
        ),
        (
            "no name",
            |r| r.timeseries[0].labels_refs = vec![3, 4],
            "series 0: no __name__ label",
        ),
        (
            "duplicate label",
            |r| r.timeseries[0].labels_refs = vec![1, 2, 3, 4, 3, 7],
            "series 0: duplicate label name \"job\"",
        ),
        (
            "samples and histograms",
            |r| {
                let h = r.timeseries[1].histograms[0].clone();
                r.timeseries[0].histograms.push(h);
            },
            "series 0: has both samples and histograms",
        ),
        (
            "bad histogram",
            |r| {
                r.timeseries[1].histograms[0]
                    .positive_counts
                    .pop()
                    .map(drop)
                    .unwrap_or(())
            },
            "series 1: histograms[0]: positive spans cover 3 buckets but 2 counts were sent",
        ),
        (
            "timestamp overflow",
            |r| r.timeseries[2].samples[0].timestamp = i64::MAX / 10,
            "series 2: samples[0]: timestamp 922337203685477580 ms is outside 1677..2262",
        ),
    ];
    for (what, edit, want) in cases {
        let mut r = v2_request();
        edit(&mut r);
        let e = decode_v2(&r).unwrap_err().to_string();
        assert!(e.starts_with(want), "{what}: got {e:?}, want {want:?}");
    }
}

#[test]
fn body_level_errors_and_limits() {
    let req = v1pb::WriteRequest {
        timeseries: (0..10)
            .map(|i| {
                v1_series(
                    &[("__name__", "x"), ("i", &i.to_string())],
                    &[(1.0, 1), (2.0, 2)],
                )
            })
            .collect(),
        metadata: vec![],
    };
    let raw = req.encode_to_vec();
    let body = snappy(&raw);
    let lim = Limits::default();
    let v1 = RemoteWriteVersion::V1;
    let cases: &[(&str, Vec<u8>, Limits, &str)] = &[
        (
            "not snappy",
            b"\xffgarbage".to_vec(),
            lim,
            "body is not valid snappy block-format data",
        ),
        (
            "truncated snappy",
            body[..body.len() / 2].to_vec(),
            lim,
            "body is not valid snappy",
        ),
        (
            "not protobuf",
            snappy(b"\x0a\xff\xff\xff"),
            lim,
            "invalid protobuf prometheus.WriteRequest",
        ),
        (
            "decoded size",
            body.clone(),
            Limits {
                max_decoded_bytes: raw.len() - 1,
                ..lim
            },
            "more than the limit of",
        ),
        (
            "series",
            body.clone(),
            Limits {
                max_series: 9,
                ..lim
            },
            "request has more than the limit of 9 series",
        ),
        (
            "samples",
            body.clone(),
            Limits {
                max_samples: 19,
                ..lim
            },
            "request has more than the limit of 19 samples (reached at series 9)",
        ),
        (
            "labels",
            body.clone(),
            Limits {
                max_labels_per_series: 1,
                ..lim
            },
            "series 0: 2 labels, more than the limit of 1",
        ),
    ];
    for (what, body, limits, want) in cases {
        let e = decode(body, v1, limits).unwrap_err().to_string();
        assert!(e.contains(want), "{what}: {e}");
    }
    assert_eq!(
        decode(
            &body,
            v1,
            &Limits {
                max_samples: 20,
                ..lim
            }
        )
        .unwrap()
        .samples
        .len(),
        20
    );
    // A 1.0 body read as 2.0 decodes to nothing rather than garbage: its fields 1..3
    // are reserved in 2.0. The report shows zero series.
    assert_eq!(
        decode(&body, RemoteWriteVersion::V2, &lim)
            .unwrap()
            .report
            .series,
        0
    );
}

#[test]
fn v1_label_errors() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("job", "x")], "series 0: no __name__ label"),
        (
            &[("__name__", "x"), ("a", "1"), ("a", "1")],
            "series 0: duplicate label name \"a\"",
        ),
        (
            &[("__name__", "x"), ("", "1")],
            "series 0: label 1 has an empty name",
        ),
    ];
    for (labels, want) in cases {
        let req = v1pb::WriteRequest {
            timeseries: vec![v1_series(labels, &[(1.0, 1)])],
            metadata: vec![],
        };
        let e = decode_v1(&req).unwrap_err().to_string();
        assert!(e.starts_with(want), "{e}");
    }
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn label_value() -> impl Strategy<Value = String> {
        prop_oneof!["[a-z0-9_.:/-]{1,12}", "\\PC{0,6}"]
    }

    proptest! {
        /// Any valid 1.0 request decodes to exactly its samples: one per sample
        /// sent, with the name, the non-empty labels, the value and the time.
        #[test]
        fn v1_round_trip(series in prop::collection::vec(
            (
                "[a-z_][a-z0-9_]{0,10}",
                prop::collection::btree_map("[a-z_][a-z0-9_]{0,6}", label_value(), 0..6),
                prop::collection::vec((any::<f64>(), -9_000_000_000_000i64..9_000_000_000_000), 0..4),
            ),
            0..20,
        )) {
            let req = v1pb::WriteRequest {
                timeseries: series.iter().map(|(name, labels, samples)| {
                    let mut ls: Vec<(&str, &str)> = labels
                        .iter()
                        .filter(|(n, _)| n.as_str() != "__name__")
                        .map(|(n, v)| (n.as_str(), v.as_str()))
                        .collect();
                    ls.push(("__name__", name));
                    v1_series(&ls, samples)
                }).collect(),
                metadata: vec![],
            };
            let b = decode_v1(&req).unwrap();
            let mut k = 0;
            for (name, labels, samples) in &series {
                for &(value, ts) in samples {
                    let s = &b.samples[k];
                    k += 1;
                    prop_assert_eq!(&s.name, name);
                    // proto3 does not encode a zero double, so -0.0 arrives as 0.0.
                    let sent = if value == 0.0 { 0.0f64 } else { value };
                    prop_assert_eq!(s.value.to_bits(), sent.to_bits());
                    prop_assert_eq!(s.timestamp, Some(Timestamp::from_millis(ts)));
                    let want: Vec<(&str, &str)> = labels
                        .iter()
                        .filter(|(n, v)| n.as_str() != "__name__" && !v.is_empty())
                        .map(|(n, v)| (n.as_str(), v.as_str()))
                        .collect();
                    let got: Vec<(&str, &str)> =
                        s.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
                    prop_assert_eq!(got, want);
                }
            }
            prop_assert_eq!(k, b.samples.len());
        }
    }
}
