//! gRPC on the HTTP port, driven by a real tonic client over 127.0.0.1:
//! push logs and read them back through `Query.QueryLogs` (exact values,
//! pagination), push metrics (they reach the metric sink as sent), PromQL
//! over stored samples, tenants from the auth layer. Refusals and limits
//! are in `serve_grpc_limits.rs`.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::time::{Duration, Instant};

use killkrill_core::event::{Labels, MetricSample, MetricType, Tenant, Timestamp};
use killkrill_core::storage::MetricStore;
use killkrill_proto::killkrill::v1 as pb;
use killkrill_proto::killkrill::v1::ingest_client::IngestClient;
use killkrill_proto::killkrill::v1::query_client::QueryClient;
use support::grpc::{T0, around_t0, channel, record, start};
use support::wait_stored;
use tonic::Code;
use tonic::transport::Channel;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_logs_then_query_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let (h, _, ch) = start(dir.path()).await;
    let mut ingest = IngestClient::new(ch.clone());
    let mut query = QueryClient::new(ch);
    let records = vec![
        record(1, "web-1", 4, "GET /a failed"),
        record(2, "web-1", 7, "GET /b ok"),
        record(3, "web-2", 4, "GET /c failed"),
        record(4, "web-1", 5, "slow GET /d"),
    ];
    let r = ingest
        .push_logs(pb::PushLogsRequest {
            records: records.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.accepted, 4);
    let stored = wait_stored(&h.store, 4).await;
    assert_eq!(stored.len(), 4);

    // host=web-1, warning or worse, oldest first, two per page.
    let filter = pb::LogFilter {
        host: Some("web-1".into()),
        min_severity: 5,
        range: around_t0(),
        ..Default::default()
    };
    let page1 = query
        .query_logs(pb::QueryLogsRequest {
            filter: Some(filter.clone()),
            limit: 1,
            order: pb::Order::Ascending as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page1.records.len(), 1);
    assert!(!page1.next_cursor.is_empty());
    let got = &page1.records[0];
    let mut want = records[0].clone();
    want.id = got.id.clone();
    want.tenant = "default".into();
    want.source = Some("grpc".into());
    assert_eq!(got, &want);
    assert_eq!(got.id.len(), 36, "a UUID: {:?}", got.id);
    let page2 = query
        .query_logs(pb::QueryLogsRequest {
            filter: Some(filter.clone()),
            limit: 1,
            order: pb::Order::Ascending as i32,
            cursor: page1.next_cursor.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let msgs: Vec<_> = page2
        .records
        .iter()
        .map(|r| String::from_utf8(r.message.clone().unwrap()).unwrap())
        .collect();
    assert_eq!(msgs, ["slow GET /d"]);
    assert_eq!(page2.records[0].timestamp_ns, T0 + 4);
    // The last page says so: no cursor.
    assert!(page2.next_cursor.is_empty(), "{page2:?}");

    // Full text and a structured-data field, newest first.
    let r = query
        .query_logs(pb::QueryLogsRequest {
            filter: Some(pb::LogFilter {
                query: "failed".into(),
                range: around_t0(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ts: Vec<i64> = r.records.iter().map(|r| r.timestamp_ns).collect();
    assert_eq!(ts, [T0 + 3, T0 + 1]);
    let r = query
        .query_logs(pb::QueryLogsRequest {
            filter: Some(pb::LogFilter {
                fields: vec![pb::FieldMatch {
                    name: "req@1.path".into(),
                    value: "/v2".into(),
                }],
                range: Some(pb::TimeRange {
                    start_ns: Some(T0),
                    end_ns: Some(T0 + 10),
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.records.len(), 1);
    assert_eq!(r.records[0].message.as_deref(), Some(&b"GET /b ok"[..]));

    // The volume histogram of the same records: one bucket of 10 ns.
    let v = query
        .log_volume(pb::LogVolumeRequest {
            filter: Some(pb::LogFilter {
                range: Some(pb::TimeRange {
                    start_ns: Some(T0),
                    end_ns: Some(T0 + 10),
                }),
                ..Default::default()
            }),
            step_ns: 10,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.buckets.len(), 1);
    assert_eq!((v.buckets[0].start_ns, v.buckets[0].total), (T0, 4));
    let by: Vec<(i32, u64)> = v.buckets[0]
        .by_severity
        .iter()
        .map(|c| (c.severity, c.count))
        .collect();
    assert_eq!(by, [(4, 2), (5, 1), (7, 1)]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_metrics_reach_the_sink_and_promql_reads_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (h, sink, ch) = start(dir.path()).await;
    let mut ingest = IngestClient::new(ch.clone());
    let mut query = QueryClient::new(ch);
    let r = ingest
        .push_metrics(pb::PushMetricsRequest {
            series: vec![pb::Series {
                name: "jobs_total".into(),
                labels: vec![
                    pb::Label {
                        name: "queue".into(),
                        value: "mail".into(),
                    },
                    pb::Label {
                        name: "env".into(),
                        value: "prod".into(),
                    },
                ],
                r#type: pb::MetricType::Counter as i32,
                samples: vec![
                    pb::Sample {
                        value: 1.5,
                        timestamp_ns: Some(T0),
                    },
                    pb::Sample {
                        value: 2.5,
                        timestamp_ns: Some(T0 + 1_000_000_000),
                    },
                ],
                exemplars: vec![pb::Exemplar::default()],
            }],
            metadata: vec![pb::MetricMetadata {
                family: "jobs".into(),
                r#type: pb::MetricType::Counter as i32,
                help: Some("Jobs done.".into()),
                unit: None,
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            r.samples_accepted,
            r.exemplars_accepted,
            r.metadata_accepted
        ),
        (2, 0, 1)
    );
    let start = Instant::now();
    let got = loop {
        let v = sink.0.lock().unwrap().clone();
        if v.len() >= 2 || start.elapsed() > Duration::from_secs(10) {
            break v;
        }
        drop(v);
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let want_labels = Labels::from_pairs([("env", "prod"), ("queue", "mail")]);
    let want: Vec<MetricSample> = [(1.5, T0), (2.5, T0 + 1_000_000_000)]
        .into_iter()
        .map(|(value, ts)| MetricSample {
            tenant: Some(Tenant::default()),
            name: "jobs_total".into(),
            labels: want_labels.clone(),
            value,
            timestamp: Some(Timestamp::from_nanos(ts)),
            kind: MetricType::Counter,
        })
        .collect();
    assert_eq!(got, want);

    // PromQL over the store (written directly: the store-backed metric sink
    // is not part of this test).
    let samples: Vec<MetricSample> = [("a", 1.0), ("a", 2.0), ("b", 10.0)]
        .iter()
        .enumerate()
        .map(|(i, (inst, v))| MetricSample {
            tenant: None,
            name: "temp".into(),
            labels: Labels::from_pairs([("instance", *inst)]),
            value: *v,
            timestamp: Some(Timestamp::from_nanos(T0 + (i as i64 % 2) * 60_000_000_000)),
            kind: MetricType::Gauge,
        })
        .collect();
    h.store
        .write_samples(&Tenant::default(), &samples)
        .await
        .unwrap();
    // a: 1.0 @T0, 2.0 @T0+60s; b: 10.0 @T0.
    let r = query
        .prom_query(pb::PromQueryRequest {
            query: "sum(temp)".into(),
            time_ns: Some(T0 + 60_000_000_000),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.result_type,
        pb::prom_query_response::ResultType::Vector as i32
    );
    assert_eq!(r.series.len(), 1);
    assert!(r.series[0].labels.is_empty());
    assert_eq!(
        r.series[0].points,
        [pb::Point {
            timestamp_ns: T0 + 60_000_000_000,
            value: 12.0
        }]
    );
    let r = query
        .prom_query_range(pb::PromQueryRangeRequest {
            query: "temp{instance=\"a\"}".into(),
            start_ns: T0,
            end_ns: T0 + 60_000_000_000,
            step_ns: 30_000_000_000,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.result_type,
        pb::prom_query_response::ResultType::Matrix as i32
    );
    assert_eq!(r.series.len(), 1);
    let labels: Vec<(&str, &str)> = r.series[0]
        .labels
        .iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect();
    assert_eq!(labels, [("__name__", "temp"), ("instance", "a")]);
    let pts: Vec<(i64, f64)> = r.series[0]
        .points
        .iter()
        .map(|p| (p.timestamp_ns - T0, p.value))
        .collect();
    assert_eq!(
        pts,
        [(0, 1.0), (30_000_000_000, 1.0), (60_000_000_000, 2.0)]
    );
    // Raw points and label values through the native calls.
    let r = query
        .query_metrics(pb::QueryMetricsRequest {
            selector: Some(pb::SeriesSelector {
                matchers: vec![pb::LabelMatcher {
                    r#type: pb::label_matcher::Type::Equal as i32,
                    name: "__name__".into(),
                    value: "temp".into(),
                }],
            }),
            range: Some(pb::TimeRange {
                start_ns: Some(T0),
                end_ns: Some(T0 + 120_000_000_000),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let shown: Vec<(String, usize)> = r
        .series
        .iter()
        .map(|s| (s.labels[0].value.clone(), s.points.len()))
        .collect();
    assert_eq!(shown, [("a".to_owned(), 2), ("b".to_owned(), 1)]);
    let r = query
        .label_values(pb::LabelValuesRequest {
            name: "instance".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.values, ["a", "b"]);
    h.shutdown().await;
}

/// The API key's tenant decides the tenant of gRPC calls, exactly as for
/// REST: a key of tenant `acme` writes and reads `acme` only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_tenant_from_the_auth_layer_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let (h, _, default_ch) = start(dir.path()).await;
    let addr = h.http.unwrap();
    let store = h.store.clone();
    let acme = Tenant::new("acme").unwrap();
    // An admin creates a key of tenant acme over the REST API.
    let c = support::creds(addr);
    let login = serde_json::json!({"email": c.admin_email, "password": c.admin_password});
    let r = support::raw_http(
        addr,
        "POST",
        "/api/v1/auth/login",
        &[("Content-Type", "application/json")],
        login.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let token = format!("Bearer {}", r.json()["access_token"].as_str().unwrap());
    let body =
        serde_json::json!({"name": "acme-grpc", "scopes": ["ingest", "read"], "tenant": "acme"});
    let r = support::raw_http(
        addr,
        "POST",
        "/api/v1/api-keys",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &token),
        ],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let ch = channel(addr, r.json()["key"].as_str().unwrap()).await;

    IngestClient::new(ch.clone())
        .push_logs(pb::PushLogsRequest {
            records: vec![record(1, "h", 4, "m")],
        })
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while support::stored_in(&store, &acme).await.is_empty() && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let got = support::stored_in(&store, &acme).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].tenant.as_ref(), Some(&acme));
    assert!(
        support::stored(&store).await.is_empty(),
        "nothing in the default tenant"
    );

    // Queries see the caller's tenant only.
    let sample = |v: f64| MetricSample {
        tenant: None,
        name: "temp".into(),
        labels: Labels::new(),
        value: v,
        timestamp: Some(Timestamp::from_nanos(T0)),
        kind: MetricType::Gauge,
    };
    store.write_samples(&acme, &[sample(7.0)]).await.unwrap();
    store
        .write_samples(&Tenant::default(), &[sample(99.0)])
        .await
        .unwrap();
    for (ch, want) in [(ch, 7.0), (default_ch, 99.0)] {
        let r = QueryClient::new(ch)
            .prom_query(pb::PromQueryRequest {
                query: "temp".into(),
                time_ns: Some(T0),
            })
            .await
            .unwrap()
            .into_inner();
        let values: Vec<f64> = r.series.iter().map(|s| s.points[0].value).collect();
        assert_eq!(values, [want]);
    }
    h.shutdown().await;
}

/// Without credentials a gRPC call is refused before it reaches a handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_without_credentials_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (h, _, _) = start(dir.path()).await;
    let ch = Channel::from_shared(format!("http://{}", h.http.unwrap()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let e = IngestClient::new(ch)
        .push_logs(pb::PushLogsRequest {
            records: vec![record(1, "h", 4, "m")],
        })
        .await
        .unwrap_err();
    assert_ne!(e.code(), Code::Ok);
    assert!(support::stored(&h.store).await.is_empty());
    h.shutdown().await;
}
