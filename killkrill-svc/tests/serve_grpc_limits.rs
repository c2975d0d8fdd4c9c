//! gRPC refusals and limits, driven by a real tonic client over
//! 127.0.0.1: bad records, series, cursors and PromQL named by field;
//! over-sized messages; reads held to the `[query]` limits; pushes held to
//! remote write's label limits and the decoded-size budget.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::time::{Duration, Instant};

use killkrill_core::event::{Labels, Timestamp};
use killkrill_proto::killkrill::v1 as pb;
use killkrill_proto::killkrill::v1::ingest_client::IngestClient;
use killkrill_proto::killkrill::v1::query_client::QueryClient;
use support::grpc::{T0, around_t0, record, start};
use support::{metric_sum, wait_stored};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_right_status_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let (h, _, ch) = start(dir.path()).await;
    let mut ingest = IngestClient::new(ch.clone());
    let mut query = QueryClient::new(ch);

    let mut bad = record(1, "h", 4, "m");
    bad.severity = 42;
    let e = ingest
        .push_logs(pb::PushLogsRequest {
            records: vec![record(0, "h", 4, "m"), bad],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("records[1].severity: "), "{e:?}");

    let series = |name: &str, label: &str| pb::Series {
        name: name.into(),
        labels: vec![pb::Label {
            name: label.into(),
            value: "v".into(),
        }],
        samples: vec![pb::Sample {
            value: 1.0,
            timestamp_ns: None,
        }],
        ..Default::default()
    };
    for (s, field) in [
        (series("1bad", "a"), "series[0].name"),
        (series("ok", "__name__"), "series[0].labels[0]"),
        (series("ok", "a-b"), "series[0].labels[0]"),
    ] {
        let e = ingest
            .push_metrics(pb::PushMetricsRequest {
                series: vec![s],
                metadata: Vec::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().starts_with(field), "{field}: {e:?}");
    }

    let e = query
        .query_logs(pb::QueryLogsRequest {
            limit: 20_000,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("limit: "), "{e:?}");
    let e = query
        .query_logs(pb::QueryLogsRequest {
            cursor: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        e.code() == Code::InvalidArgument && e.message().starts_with("cursor: "),
        "{e:?}"
    );
    let e = query
        .prom_query(pb::PromQueryRequest {
            query: "sum(".into(),
            time_ns: None,
        })
        .await
        .unwrap_err();
    assert!(
        e.code() == Code::InvalidArgument && e.message().starts_with("query: "),
        "{e:?}"
    );
    let e = query
        .prom_query_range(pb::PromQueryRangeRequest {
            query: "up".into(),
            start_ns: 0,
            end_ns: 1,
            step_ns: 0,
        })
        .await
        .unwrap_err();
    assert!(
        e.code() == Code::InvalidArgument && e.message().starts_with("step_ns: "),
        "{e:?}"
    );

    // Over the message size limit (64 KiB here): refused before decoding,
    // nothing stored.
    let big = record(9, "h", 4, &"x".repeat(100 * 1024));
    let e = ingest
        .push_logs(pb::PushLogsRequest { records: vec![big] })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
    assert!(e.message().contains("limit"), "{e:?}");

    let m = support::scrape(h.http.unwrap()).await;
    assert!(
        metric_sum(
            &m,
            "killkrill_grpc_requests_total",
            &[("method", "PushLogs"), ("code", "InvalidArgument")]
        ) >= 1.0
    );
    assert!(
        metric_sum(
            &m,
            "killkrill_grpc_requests_total",
            &[("method", "PushMetrics"), ("code", "InvalidArgument")]
        ) >= 3.0
    );
    // REST on the same port still works.
    let r = support::http(h.http.unwrap(), "GET", "/healthz", &[], b"").await;
    assert_eq!(r.status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(support::stored(&h.store).await.is_empty());
    h.shutdown().await;
}

/// `QueryLogs`, `LogVolume` and `QueryMetrics` run under the REST routes'
/// `[query]` limits: an absent range is the last `query.max_range_secs`, a
/// longer one, too many volume buckets or too large a page is refused and
/// named. (Before, an open range read the whole store and a 1 ns volume
/// step over an hour asked for 3.6e12 buckets.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_obey_the_query_limits() {
    let dir = tempfile::tempdir().unwrap();
    let (h, _, ch) = start(dir.path()).await;
    let now = Timestamp::now().as_nanos();
    let mut recent = record(0, "h", 4, "recent");
    recent.timestamp_ns = now - 1_000_000_000;
    IngestClient::new(ch.clone())
        .push_logs(pb::PushLogsRequest {
            records: vec![record(0, "h", 4, "old"), recent],
        })
        .await
        .unwrap();
    wait_stored(&h.store, 2).await;
    let mut query = QueryClient::new(ch);

    // No range: the last 31 days (the default limit), so only "recent".
    let r = query
        .query_logs(pb::QueryLogsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let msgs: Vec<_> = r
        .records
        .iter()
        .map(|r| r.message.clone().unwrap())
        .collect();
    assert_eq!(msgs, [b"recent".to_vec()]);
    let v = query
        .log_volume(pb::LogVolumeRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.buckets.iter().map(|b| b.total).sum::<u64>(), 1);

    let day = 86_400_000_000_000_i64;
    let long = Some(pb::TimeRange {
        start_ns: Some(T0),
        end_ns: Some(T0 + 32 * day),
    });
    let open_start = Some(pb::TimeRange {
        start_ns: Some(i64::MIN),
        end_ns: None,
    });
    for range in [long, open_start] {
        let filter = Some(pb::LogFilter {
            range,
            ..Default::default()
        });
        let e = query
            .query_logs(pb::QueryLogsRequest {
                filter: filter.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
        assert!(e.message().contains("query.max_range_secs"), "{e:?}");
        let e = query
            .log_volume(pb::LogVolumeRequest { filter, step_ns: 0 })
            .await
            .unwrap_err();
        assert!(e.message().contains("query.max_range_secs"), "{e:?}");
    }
    let e = query
        .log_volume(pb::LogVolumeRequest {
            filter: Some(pb::LogFilter {
                range: around_t0(),
                ..Default::default()
            }),
            step_ns: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("query.max_buckets"), "{e:?}");
    let e = query
        .query_logs(pb::QueryLogsRequest {
            limit: 5_001,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("query.max_limit"), "{e:?}");
    let e = query
        .query_metrics(pb::QueryMetricsRequest {
            selector: Some(pb::SeriesSelector {
                matchers: vec![pb::LabelMatcher {
                    r#type: pb::label_matcher::Type::Equal as i32,
                    name: "__name__".into(),
                    value: "up".into(),
                }],
            }),
            range: long,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("query.max_range_secs"), "{e:?}");
    let m = support::scrape(h.http.unwrap()).await;
    assert!(
        metric_sum(
            &m,
            "killkrill_query_limit_exceeded_total",
            &[("limit", "query.max_range_secs")]
        ) >= 5.0,
        "{m}"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_metrics_bounds_labels_and_the_decoded_size() {
    // 64 KiB messages, so a 1 MiB output budget (16 ×).
    let dir = tempfile::tempdir().unwrap();
    let (h, sink, ch) = start(dir.path()).await;
    let mut ingest = IngestClient::new(ch);
    let label = |n: String, v: String| pb::Label { name: n, value: v };
    let series = |labels: Vec<pb::Label>, samples: usize| pb::Series {
        name: "x".into(),
        labels,
        samples: vec![
            pb::Sample {
                value: 0.0,
                timestamp_ns: None,
            };
            samples
        ],
        ..Default::default()
    };
    let push = |s: pb::Series| {
        let mut ingest = ingest.clone();
        async move {
            ingest
                .push_metrics(pb::PushMetricsRequest {
                    series: vec![s],
                    metadata: Vec::new(),
                })
                .await
                .unwrap_err()
        }
    };
    // Four 4 KiB labels × 10,000 samples: a 36 KB message, 160 MB of samples.
    let wide: Vec<pb::Label> = (0..4)
        .map(|i| label(format!("l{i}"), "v".repeat(4 << 10)))
        .collect();
    let e = push(series(wide, 10_000)).await;
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message().starts_with("series[0]: ")
            && e.message().contains("1048576 bytes of memory")
            && e.message().contains("http_ingest.max_output_bytes"),
        "{e:?}"
    );
    let e = push(series(vec![label("a".into(), "v".repeat(9000))], 1)).await;
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert_eq!(
        e.message(),
        "series[0].labels[0].value: 9000 bytes, more than the limit of 8192"
    );
    let many: Vec<pb::Label> = (0..300)
        .map(|i| label(format!("l{i}"), "v".into()))
        .collect();
    let e = push(series(many, 1)).await;
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert_eq!(
        e.message(),
        "series[0].labels: 300 labels and the name, more than the limit of 256"
    );
    // Duplicates are found by sorting: the later of the two is named.
    let mut dup: Vec<pb::Label> = (0..250)
        .map(|i| label(format!("l{i}"), "v".into()))
        .collect();
    dup[200] = label("l3".into(), "w".into());
    let e = push(series(dup, 1)).await;
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert_eq!(e.message(), "series[0].labels[200]: label l3 appears twice");

    // Within the bounds: accepted, with sorted labels.
    let ok = pb::PushMetricsRequest {
        series: vec![series(
            vec![label("b".into(), "2".into()), label("a".into(), "1".into())],
            3,
        )],
        metadata: Vec::new(),
    };
    let r = ingest.push_metrics(ok).await.unwrap().into_inner();
    assert_eq!(r.samples_accepted, 3);
    let start = Instant::now();
    while sink.0.lock().unwrap().len() < 3 {
        assert!(start.elapsed() < Duration::from_secs(10), "never arrived");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let got = sink.0.lock().unwrap().clone();
    assert_eq!(got.len(), 3, "nothing of the refused calls");
    assert_eq!(got[0].labels, Labels::from_pairs([("a", "1"), ("b", "2")]));
    let m = support::scrape(h.http.unwrap()).await;
    let calls = |code: &str| {
        metric_sum(
            &m,
            "killkrill_grpc_requests_total",
            &[("method", "PushMetrics"), ("code", code)],
        )
    };
    assert_eq!(calls("ResourceExhausted"), 1.0, "{m}");
    assert_eq!(calls("InvalidArgument"), 3.0, "{m}");
    h.shutdown().await;
}
