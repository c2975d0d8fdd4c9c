//! gRPC `Ingest.PushLogs` against `POST /api/v1/logs` (NDJSON) for the same
//! 1,000 log records per request, against one `killkrill serve` on
//! 127.0.0.1, one connection each, requests one after another.
//!
//! What is measured is the receive path up to the acknowledgement (client
//! encoding, transport, server parsing, stamping, enqueueing into the real
//! in-memory queue). A drain task takes batches off the queue and
//! acknowledges them without storing, so storage (the same for both) does not
//! dominate and the queue never fills.
//!
//! `cargo bench -p killkrill-svc --bench grpc_ingest`
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::{BodyExt, Full};
use killkrill_core::pipeline::{MemoryQueue, MemoryQueueConfig, Queue};
use killkrill_proto::killkrill::v1 as pb;
use killkrill_proto::killkrill::v1::ingest_client::IngestClient;
use killkrill_svc::config::{ListenAddr, ServeConfig};
use killkrill_svc::serve::{self, StartOptions};
use tokio::runtime::Runtime;

const RECORDS: usize = 1_000;
const T0: i64 = 1_764_000_000_000_000_000;

fn message(i: usize) -> String {
    format!("GET /api/v1/items/{i} returned 500 after 12.5 ms: upstream connection reset by peer")
}

fn ndjson() -> Bytes {
    let mut s = String::new();
    for i in 0..RECORDS {
        let line = serde_json::json!({
            "timestamp": T0 + i as i64,
            "level": "error",
            "host": "web-1",
            "app": "api",
            "message": message(i),
            "user_id": i,
        });
        s.push_str(&line.to_string());
        s.push('\n');
    }
    Bytes::from(s)
}

fn grpc_records() -> Vec<pb::LogRecord> {
    (0..RECORDS)
        .map(|i| pb::LogRecord {
            timestamp_ns: T0 + i as i64,
            severity: pb::Severity::Error as i32,
            host: Some("web-1".into()),
            app: Some("api".into()),
            message: Some(message(i).into_bytes()),
            attributes: vec![pb::Attribute {
                name: "user_id".into(),
                value: Some(pb::FieldValue {
                    kind: Some(pb::field_value::Kind::IntValue(i as i64)),
                }),
            }],
            ..Default::default()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::new(MemoryQueueConfig {
        max_events: 10_000_000,
        max_bytes: 4 << 30,
        ..MemoryQueueConfig::default()
    }));
    let (h, addr) = rt.block_on(async {
        let mut cfg = ServeConfig {
            data_dir: dir.path().to_path_buf(),
            http: ListenAddr::on(SocketAddr::from(([127, 0, 0, 1], 0))),
            syslog_udp: ListenAddr::OFF,
            syslog_tcp: ListenAddr::OFF,
            syslog_tls: ListenAddr::OFF,
            ..ServeConfig::default()
        };
        cfg.workers.count = 0;
        // Ingest cost only: authentication off (development mode).
        cfg.auth.mode = killkrill_svc::auth::AuthMode::Disabled;
        let h = serve::start_with(
            cfg,
            StartOptions {
                store: None,
                metric_sink: None,
                queue: Some(queue.clone()),
                ..StartOptions::default()
            },
        )
        .await
        .unwrap();
        let addr = h.http.unwrap();
        (h, addr)
    });
    // Drain: acknowledge without storing.
    let drain_q = queue.clone();
    rt.spawn(async move {
        loop {
            let got = drain_q
                .dequeue(1_000, Duration::from_millis(50))
                .await
                .unwrap_or_default();
            let ids: Vec<_> = got.iter().map(|d| d.id).collect();
            if !ids.is_empty() {
                let _ = drain_q.ack(&ids).await;
            }
        }
    });

    let mut g = c.benchmark_group("ingest_1000_records");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.sample_size(30);

    // HTTP/1.1 NDJSON over one kept-alive connection.
    let body = ndjson();
    let mut sender = rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        sender
    });
    g.bench_function("http_ndjson", |b| {
        b.iter(|| {
            rt.block_on(async {
                let req = hyper::Request::post("/api/v1/logs")
                    .header("host", addr.to_string())
                    .header("content-type", "application/x-ndjson")
                    .body(Full::new(body.clone()))
                    .unwrap();
                sender.ready().await.unwrap();
                let resp = sender.send_request(req).await.unwrap();
                assert_eq!(resp.status(), 200);
                resp.into_body().collect().await.unwrap();
            })
        })
    });

    // gRPC over one HTTP/2 connection.
    let records = grpc_records();
    let mut client = rt.block_on(async {
        let ch = tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        IngestClient::new(ch).max_encoding_message_size(64 << 20)
    });
    g.bench_function("grpc_push_logs", |b| {
        b.iter(|| {
            rt.block_on(async {
                let r = client
                    .push_logs(pb::PushLogsRequest {
                        records: records.clone(),
                    })
                    .await
                    .unwrap();
                assert_eq!(r.into_inner().accepted, RECORDS as u64);
            })
        })
    });
    g.finish();
    rt.block_on(h.shutdown());
}

criterion_group!(benches, bench);
criterion_main!(benches);
