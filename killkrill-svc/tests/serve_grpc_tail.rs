//! gRPC `Query.TailLogs` with a real tonic client: records pushed after
//! subscribing arrive (and none from before), the filter applies, a tail
//! sees its own tenant only, heartbeats come when nothing matches, a client
//! that does not read is dropped with RESOURCE_EXHAUSTED, and shutdown ends
//! the stream with UNAVAILABLE.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::time::Duration;

use killkrill_core::event::{Tenant, Timestamp};
use killkrill_proto::killkrill::v1 as pb;
use killkrill_proto::killkrill::v1::ingest_client::IngestClient;
use killkrill_proto::killkrill::v1::query_client::QueryClient;
use killkrill_store::auth::Scope;
use killkrill_svc::config::ListenAddr;
use killkrill_svc::serve::ServeHandle;
use pb::tail_logs_response::Event;
use support::config;
use support::grpc::Key;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Ch = InterceptedService<Channel, Key>;

async fn channel(addr: std::net::SocketAddr, key: &str) -> Ch {
    let ch = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    InterceptedService::new(ch, Key(key.parse().unwrap()))
}

async fn start(
    edit: impl FnOnce(&mut killkrill_svc::config::ServeConfig),
) -> (ServeHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.syslog_udp = ListenAddr::OFF;
    c.syslog_tcp = ListenAddr::OFF;
    c.query.tail_poll_ms = 100;
    edit(&mut c);
    (support::start(c).await.unwrap(), dir)
}

fn rec(host: &str, msg: &str) -> pb::LogRecord {
    pb::LogRecord {
        timestamp_ns: Timestamp::now().as_nanos(),
        severity: 4,
        host: Some(host.into()),
        app: Some("api".into()),
        message: Some(msg.as_bytes().to_vec()),
        ..Default::default()
    }
}

async fn push(ch: &Ch, records: Vec<pb::LogRecord>) {
    let n = records.len() as u64;
    let r = IngestClient::new(ch.clone())
        .push_logs(pb::PushLogsRequest { records })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.accepted, n);
}

fn host_filter(host: &str) -> Option<pb::LogFilter> {
    Some(pb::LogFilter {
        host: Some(host.into()),
        ..Default::default()
    })
}

/// Messages of the records received until `want` are in, heartbeats
/// counted; fails after 15 s.
async fn read_until(
    s: &mut tonic::Streaming<pb::TailLogsResponse>,
    want: &[&str],
) -> (Vec<String>, usize) {
    let mut got = Vec::new();
    let mut heartbeats = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !want.iter().all(|w| got.iter().any(|g| g == w)) {
        let m = tokio::time::timeout_at(deadline, s.message())
            .await
            .unwrap_or_else(|_| panic!("waiting for {want:?}, got {got:?}"))
            .unwrap()
            .expect("stream open");
        match m.event.unwrap() {
            Event::Records(r) => got.extend(
                r.records
                    .iter()
                    .map(|r| String::from_utf8(r.message.clone().unwrap()).unwrap()),
            ),
            Event::HeartbeatNs(t) => {
                assert!(t > 0);
                heartbeats += 1;
            }
            Event::Gap(g) => panic!("unexpected gap: {g:?}"),
        }
    }
    (got, heartbeats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_sends_new_matching_records_of_the_callers_tenant_then_ends_on_shutdown() {
    let (h, _dir) = start(|c| c.query.tail_heartbeat_secs = 1).await;
    let addr = h.http.unwrap();
    let ch = channel(addr, &support::api_key(addr)).await;
    // A key of another tenant.
    let other = Tenant::new("other").unwrap();
    h.auth
        .store()
        .ensure_tenant(&other, killkrill_svc::auth::now_nanos())
        .await
        .unwrap();
    let (_, other_key) = h
        .auth
        .create_api_key(&other, "t", vec![Scope::Ingest, Scope::Read], None, "test")
        .await
        .unwrap();
    let other_ch = channel(addr, &other_key).await;

    // Before subscribing: not part of the tail.
    push(&ch, vec![rec("web-1", "before")]).await;
    support::wait_stored(&h.store, 1).await;

    let mut mine = QueryClient::new(ch.clone())
        .tail_logs(pb::TailLogsRequest {
            filter: host_filter("web-1"),
        })
        .await
        .unwrap()
        .into_inner();
    let mut theirs = QueryClient::new(other_ch.clone())
        .tail_logs(pb::TailLogsRequest { filter: None })
        .await
        .unwrap()
        .into_inner();

    // Nothing yet: a heartbeat within about a second.
    let first = tokio::time::timeout(Duration::from_secs(5), mine.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(first.event, Some(Event::HeartbeatNs(_))),
        "{first:?}"
    );

    push(
        &ch,
        vec![rec("web-1", "a1"), rec("web-2", "b1"), rec("web-1", "a2")],
    )
    .await;
    push(&other_ch, vec![rec("web-1", "other-tenant")]).await;
    let (got, _) = read_until(&mut mine, &["a1", "a2"]).await;
    assert_eq!(
        got,
        vec!["a1", "a2"],
        "filtered, in order, nothing from before"
    );
    let (got, _) = read_until(&mut theirs, &["other-tenant"]).await;
    assert_eq!(got, vec!["other-tenant"], "the other tenant's records only");

    // More later on the same stream; the first tenant's tail never sees
    // the other's.
    push(&other_ch, vec![rec("web-1", "other-2")]).await;
    push(&ch, vec![rec("web-1", "a3")]).await;
    let (got, _) = read_until(&mut mine, &["a3"]).await;
    assert_eq!(got, vec!["a3"]);

    // Shutdown ends the stream with UNAVAILABLE.
    let shut = tokio::spawn(h.shutdown());
    let end = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match mine.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(s) => return Some(s),
            }
        }
    })
    .await
    .unwrap();
    let status = end.expect("ended with a status");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("shutting down"), "{status:?}");
    shut.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_client_that_does_not_read_is_dropped_with_resource_exhausted() {
    let (h, _dir) = start(|c| {
        c.query.tail_buffer_events = 4;
        c.http_ingest.max_body_bytes = 8 << 20;
    })
    .await;
    let addr = h.http.unwrap();
    let ch = channel(addr, &support::api_key(addr)).await;
    let mut tail = QueryClient::new(ch.clone())
        .tail_logs(pb::TailLogsRequest { filter: None })
        .await
        .unwrap()
        .into_inner();
    // Far more than the buffer and the HTTP/2 windows hold, while the
    // client reads nothing.
    let big = "x".repeat(2_000);
    for round in 0..4 {
        push(
            &ch,
            (0..1_000)
                .map(|i| rec("h", &format!("{round}-{i}-{big}")))
                .collect(),
        )
        .await;
    }
    support::wait_stored(&h.store, 4_000).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = tokio::time::timeout(Duration::from_secs(20), async {
        let mut n = 0usize;
        loop {
            match tail.message().await {
                Ok(Some(m)) => {
                    if let Some(Event::Records(r)) = m.event {
                        n += r.records.len();
                    }
                }
                Ok(None) => panic!("ended without a status after {n} records"),
                Err(s) => return (s, n),
            }
        }
    })
    .await
    .unwrap();
    eprintln!("dropped after {} records: {:?}", status.1, status.0);
    assert_eq!(status.0.code(), Code::ResourceExhausted, "{:?}", status.0);
    assert!(status.0.message().contains("slow client"), "{:?}", status.0);
    assert!(
        status.1 < 4_000,
        "not everything was delivered: {}",
        status.1
    );
    // The tail's permit is back: a new one opens.
    QueryClient::new(ch)
        .tail_logs(pb::TailLogsRequest { filter: None })
        .await
        .unwrap();
    h.shutdown().await;
}
