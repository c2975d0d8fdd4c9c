//! The gRPC tests' client side: an API-key interceptor, a channel to
//! `serve`, a `serve` with a recording metric sink and a 64 KiB message
//! limit, and a full log record at a fixed time.

use std::sync::Arc;

use killkrill_proto::killkrill::v1 as pb;
use killkrill_svc::serve::{ServeHandle, StartOptions};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::{Recording, config};

/// Sends an API key with every call (gRPC metadata is HTTP headers, so the
/// same authentication layer as REST checks it).
#[derive(Clone)]
pub struct Key(pub tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Key {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        r.metadata_mut().insert("x-api-key", self.0.clone());
        Ok(r)
    }
}

pub type Ch = InterceptedService<Channel, Key>;

pub async fn channel(addr: std::net::SocketAddr, key: &str) -> Ch {
    let ch = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    InterceptedService::new(ch, Key(key.parse().unwrap()))
}

/// `serve` with a recording metric sink and a 64 KiB message limit, and
/// a channel carrying its bootstrap API key.
pub async fn start(dir: &std::path::Path) -> (ServeHandle, Arc<Recording>, Ch) {
    let mut c = config(dir);
    c.http_ingest.max_body_bytes = 64 * 1024;
    let sink = Arc::new(Recording::default());
    let h = super::start_with(
        c,
        StartOptions {
            store: None,
            metric_sink: Some(sink.clone()),
            queue: None,
            ..StartOptions::default()
        },
    )
    .await
    .unwrap();
    let addr = h.http.unwrap();
    let ch = channel(addr, &super::api_key(addr)).await;
    (h, sink, ch)
}

pub const T0: i64 = 1_764_000_000_000_000_000;

/// The records' hour: reads name their range (an absent one is the last
/// `query.max_range_secs` before now, which T0 is not in).
pub fn around_t0() -> Option<pb::TimeRange> {
    Some(pb::TimeRange {
        start_ns: Some(T0),
        end_ns: Some(T0 + 3_600_000_000_000),
    })
}

pub fn record(i: i64, host: &str, severity: i32, msg: &str) -> pb::LogRecord {
    pb::LogRecord {
        timestamp_ns: T0 + i,
        severity,
        facility: Some(16),
        host: Some(host.into()),
        app: Some("api".into()),
        procid: Some("42".into()),
        msgid: Some("REQ".into()),
        structured_data: vec![pb::SdElement {
            id: "req@1".into(),
            params: vec![pb::SdParam {
                name: "path".into(),
                value: format!("/v{i}"),
            }],
        }],
        message: Some(msg.as_bytes().to_vec()),
        attributes: vec![pb::Attribute {
            name: "user".into(),
            value: Some(pb::FieldValue {
                kind: Some(pb::field_value::Kind::IntValue(i)),
            }),
        }],
        // Server-set fields: ignored in a push.
        id: "not-a-uuid".into(),
        tenant: "someone-else".into(),
        source: Some("forged".into()),
        ..Default::default()
    }
}
