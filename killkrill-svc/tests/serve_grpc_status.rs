//! gRPC callers refused before a service answers (authentication,
//! permission, body limit, unknown method) get a gRPC status — HTTP 200
//! with `grpc-status` and `grpc-message` — not an HTTP error a gRPC client
//! reports as "protocol error". Driven by a real tonic client and raw
//! HTTP/1.1 over 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::net::SocketAddr;

use killkrill_proto::killkrill::v1 as pb;
use killkrill_proto::killkrill::v1::ingest_client::IngestClient;
use killkrill_proto::killkrill::v1::query_client::QueryClient;
use support::grpc::Key;
use support::{config, metric_sum, raw_http, scrape};
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// An API key with only `scopes`, made by the bootstrap admin.
async fn key_with(addr: SocketAddr, scopes: &[&str]) -> String {
    let c = support::creds(addr);
    let login = serde_json::json!({"email": c.admin_email, "password": c.admin_password});
    let r = raw_http(
        addr,
        "POST",
        "/api/v1/auth/login",
        &[("Content-Type", "application/json")],
        login.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let token = format!("Bearer {}", r.json()["access_token"].as_str().unwrap());
    let body = serde_json::json!({"name": "scoped", "scopes": scopes});
    let r = raw_http(
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
    r.json()["key"].as_str().unwrap().to_owned()
}

fn push() -> pb::PushLogsRequest {
    pb::PushLogsRequest {
        records: vec![pb::LogRecord {
            timestamp_ns: 1_764_000_000_000_000_000,
            message: Some(b"m".to_vec()),
            ..Default::default()
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_by_layers_are_grpc_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.http_ingest.max_body_bytes = 1024;
    let h = support::start(cfg).await.unwrap();
    let addr = h.http.unwrap();

    // No credentials: UNAUTHENTICATED, with the reason.
    let e = IngestClient::new(channel(addr).await)
        .push_logs(push())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert!(e.message().contains("authentication required"), "{e:?}");

    // A wrong key: UNAUTHENTICATED.
    let ch = InterceptedService::new(
        channel(addr).await,
        Key("kk_not_a_real_key".parse().unwrap()),
    );
    let e = QueryClient::new(ch)
        .query_logs(pb::QueryLogsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");

    // A read-only key pushing, an ingest-only key querying:
    // PERMISSION_DENIED naming the permission.
    let read_only = key_with(addr, &["read"]).await;
    let ch = InterceptedService::new(channel(addr).await, Key(read_only.parse().unwrap()));
    let e = IngestClient::new(ch.clone())
        .push_logs(push())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("ingest"), "{e:?}");
    // ...while the same key may query.
    QueryClient::new(ch)
        .query_logs(pb::QueryLogsRequest::default())
        .await
        .unwrap();
    let ingest_only = key_with(addr, &["ingest"]).await;
    let ch = InterceptedService::new(channel(addr).await, Key(ingest_only.parse().unwrap()));
    let e = QueryClient::new(ch)
        .query_logs(pb::QueryLogsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(support::stored(&h.store).await.is_empty());

    // Raw: the answer is HTTP 200, trailers-only, status in the headers.
    let key = support::api_key(addr);
    let r = raw_http(
        addr,
        "POST",
        "/killkrill.v1.Query/QueryLogs",
        &[("Content-Type", "application/grpc"), ("TE", "trailers")],
        &[0, 0, 0, 0, 0],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("grpc-status"), Some("16"), "{:?}", r.headers);
    assert_eq!(r.header("content-type"), Some("application/grpc"));
    assert!(r.body.is_empty());
    // A body over the limit on a route with a body-limit layer:
    // RESOURCE_EXHAUSTED.
    let big = vec![b'x'; 4096];
    let r = raw_http(
        addr,
        "POST",
        "/api/v1/logs",
        &[("Content-Type", "application/grpc"), ("X-API-Key", &key)],
        &big,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("grpc-status"), Some("8"), "{:?}", r.headers);
    assert!(
        r.header("grpc-message")
            .unwrap()
            .contains("request body too large"),
        "{:?}",
        r.headers
    );
    // An unknown method: UNIMPLEMENTED.
    let r = raw_http(
        addr,
        "POST",
        "/killkrill.v1.Nope/Call",
        &[("Content-Type", "application/grpc"), ("X-API-Key", &key)],
        &[0, 0, 0, 0, 0],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("grpc-status"), Some("12"), "{:?}", r.headers);
    // REST callers still get HTTP statuses and JSON.
    let r = raw_http(addr, "GET", "/api/v1/logs", &[], b"").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "authentication required");

    let m = scrape(addr).await;
    assert_eq!(
        metric_sum(
            &m,
            "killkrill_grpc_requests_total",
            &[("method", "PushLogs"), ("code", "Unauthenticated")]
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric_sum(
            &m,
            "killkrill_grpc_requests_total",
            &[("method", "PushLogs"), ("code", "PermissionDenied")]
        ),
        1.0,
        "{m}"
    );
    h.shutdown().await;
}
