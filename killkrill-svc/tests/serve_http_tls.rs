//! TLS on the HTTP listener (which also carries gRPC), over real sockets
//! with certificates made here: HTTPS with an API key, plain HTTP to the
//! TLS port refused (and counted), TLS 1.2 accepted and 1.3 preferred,
//! TLS 1.1 refused (openssl s_client), gRPC over TLS with a tonic client,
//! client certificates (mTLS) required and optional. Also gRPC callers
//! refused by a layer (authentication, permission, body limit, unknown
//! path) get gRPC statuses, not HTTP ones.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use killkrill_proto::killkrill::v1 as pb;
use killkrill_proto::killkrill::v1::ingest_client::IngestClient;
use killkrill_proto::killkrill::v1::query_client::QueryClient;
use killkrill_svc::config::{ClientAuth, ServeConfig};
use killkrill_svc::serve::ServeHandle;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use support::grpc::Key;
use support::{config, metric_sum, wait_stored};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// A CA, a server certificate for `localhost`/127.0.0.1 and a client
/// certificate, all signed by the CA, as PEM files in `dir`.
struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_cert: PathBuf,
    server_key: PathBuf,
    ca_file: PathBuf,
    client_cert_pem: String,
    client_key_pem: String,
    client_cert_der: CertificateDer<'static>,
    client_key_der: Vec<u8>,
}

fn ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

fn pki(dir: &Path) -> Pki {
    let ca = ca();
    let mut sp =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().unwrap();
    let server_cert = sp.signed_by(&server_key, &ca).unwrap();
    let mut cp = CertificateParams::new(vec!["client.example".to_owned()]).unwrap();
    cp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().unwrap();
    let client_cert = cp.signed_by(&client_key, &ca).unwrap();
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().clone(),
        server_cert: write("server.pem", server_cert.pem()),
        server_key: write("server.key", server_key.serialize_pem()),
        ca_file: write("ca.pem", ca.pem()),
        client_cert_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
        client_cert_der: client_cert.der().clone(),
        client_key_der: client_key.serialize_der(),
    }
}

fn tls_config(dir: &Path, pki: &Pki, client_auth: Option<ClientAuth>) -> ServeConfig {
    let mut c = config(&dir.join("data"));
    c.http_tls.cert = Some(pki.server_cert.clone());
    c.http_tls.key = Some(pki.server_key.clone());
    if let Some(mode) = client_auth {
        c.http_tls.client_ca = Some(pki.ca_file.clone());
        c.http_tls.client_auth = mode;
    }
    c.http_server.tls_handshake_timeout_ms = 1_000;
    c
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client trusting `pki`'s CA; TLS 1.2 only when `tls12_only`; with the
/// client certificate when `with_cert`.
fn client(pki: &Pki, tls12_only: bool, with_cert: bool) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let b = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let mut c = if with_cert {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.client_key_der.clone()));
        b.with_client_auth_cert(vec![pki.client_cert_der.clone()], key)
            .unwrap()
    } else {
        b.with_no_client_auth()
    };
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    c
}

/// What one HTTPS request gave: the status and body, and the TLS version.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
    version: Option<rustls::ProtocolVersion>,
}

/// One HTTP/1.1 request over TLS (hyper's client); `Err` when the
/// handshake or the request failed.
async fn https(
    addr: SocketAddr,
    tls: rustls::ClientConfig,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Answer, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let version = stream.get_ref().1.protocol_version();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = send
        .send_request(req.body(Full::new(Bytes::new())).unwrap())
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        version,
    })
}

async fn metrics_text(addr: SocketAddr, pki: &Pki, with_cert: bool) -> String {
    https(addr, client(pki, false, with_cert), "GET", "/metrics", &[])
        .await
        .unwrap()
        .body
}

fn handshake_failures(m: &str, reason: &str) -> f64 {
    metric_sum(
        m,
        "killkrill_http_tls_handshake_failures_total",
        &[("reason", reason)],
    )
}

/// Sends a plain HTTP request to the TLS port: never an HTTP answer.
async fn plain_http_gets_no_answer(addr: SocketAddr) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut got)).await;
    assert!(
        !got.starts_with(b"HTTP/"),
        "plain HTTP got an HTTP answer: {}",
        String::from_utf8_lossy(&got)
    );
}

async fn start(cfg: ServeConfig) -> (ServeHandle, SocketAddr, String) {
    let h = support::start(cfg).await.unwrap();
    let addr = h.http.unwrap();
    let key = support::api_key(addr);
    (h, addr, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_an_api_key_and_plain_http_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let (h, addr, key) = start(tls_config(dir.path(), &pki, None)).await;

    // With the API key: the read API answers; TLS 1.3 is what a client
    // offering both gets.
    let a = https(
        addr,
        client(&pki, false, false),
        "GET",
        "/api/v1/logs?limit=5",
        &[("X-API-Key", &key)],
    )
    .await
    .unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    let j: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert!(j["data"].is_array(), "{j}");
    assert_eq!(a.version, Some(rustls::ProtocolVersion::TLSv1_3));

    // Authentication still applies over TLS.
    let a = https(addr, client(&pki, false, false), "GET", "/api/v1/logs", &[])
        .await
        .unwrap();
    assert_eq!(a.status, 401, "{}", a.body);

    // A TLS 1.2-only client is served (the minimum).
    let a = https(addr, client(&pki, true, false), "GET", "/healthz", &[])
        .await
        .unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.version, Some(rustls::ProtocolVersion::TLSv1_2));

    // A client that does not trust the server's CA refuses it.
    let mut other = rustls::RootCertStore::empty();
    other.add(ca().der().clone()).unwrap();
    let untrusting = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(other)
        .with_no_client_auth();
    assert!(
        https(addr, untrusting, "GET", "/healthz", &[])
            .await
            .is_err()
    );

    // Plain HTTP to the TLS port: no HTTP answer, counted.
    plain_http_gets_no_answer(addr).await;
    // A client that connects and sends nothing is cut at the handshake
    // deadline (1 s here), counted as a timeout.
    let silent = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    drop(silent);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let m = metrics_text(addr, &pki, false).await;
    assert_eq!(handshake_failures(&m, "not_tls"), 1.0, "{m}");
    assert_eq!(handshake_failures(&m, "timeout"), 1.0, "{m}");
    assert!(
        handshake_failures(&m, "bad_certificate")
            + handshake_failures(&m, "closed")
            + handshake_failures(&m, "other")
            >= 1.0,
        "the untrusting client's abort: {m}"
    );
    h.shutdown().await;
}

/// openssl s_client with only the given protocol flag; `Ok(output)` when
/// it completed a handshake, `Err(output)` when it did not; `None` when the
/// binary is missing.
fn s_client(addr: SocketAddr, ca: &Path, proto: &str) -> Option<Result<String, String>> {
    let out = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-servername",
            "localhost",
            "-CAfile",
            ca.to_str().unwrap(),
            proto,
            // OpenSSL 3 refuses TLS 1.1 itself at the default security
            // level; level 0 lets it offer 1.1, so the server is what
            // refuses.
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
            "-brief",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        if out.status.success() && text.contains("CONNECTION ESTABLISHED") {
            Ok(text)
        } else {
            Err(text)
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_1_is_refused_and_1_2_accepted_by_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let (h, addr, _) = start(tls_config(dir.path(), &pki, None)).await;
    let ca = pki.ca_file.clone();
    let (v12, v11) = tokio::task::spawn_blocking(move || {
        (
            s_client(addr, &ca, "-tls1_2"),
            s_client(addr, &ca, "-tls1_1"),
        )
    })
    .await
    .unwrap();
    let (Some(v12), Some(v11)) = (v12, v11) else {
        eprintln!("skipped: no openssl binary to offer TLS 1.1 with");
        h.shutdown().await;
        return;
    };
    // The control: the same command with TLS 1.2 connects.
    let ok = v12.expect("openssl s_client -tls1_2 connects");
    assert!(ok.contains("TLSv1.2"), "{ok}");
    let refused = v11.expect_err("openssl s_client -tls1_1 must not connect");
    assert!(
        // rustls answers a TLS 1.1 hello with a handshake_failure alert (it
        // lacks TLS 1.2's signature_algorithms) or protocol_version.
        refused.contains("alert protocol version") || refused.contains("alert handshake failure"),
        "{refused}"
    );
    let m = metrics_text(addr, &pki, false).await;
    assert_eq!(handshake_failures(&m, "protocol_version"), 1.0, "{m}");
    h.shutdown().await;
}

async fn grpc_tls_channel(addr: SocketAddr, pki: &Pki, with_cert: bool) -> Result<Channel, String> {
    let mut tls = ClientTlsConfig::new()
        .domain_name("localhost")
        .ca_certificate(Certificate::from_pem(&pki.ca_pem));
    if with_cert {
        tls = tls.identity(Identity::from_pem(
            &pki.client_cert_pem,
            &pki.client_key_pem,
        ));
    }
    Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))
}

fn record(i: i64, msg: &str) -> pb::LogRecord {
    pb::LogRecord {
        timestamp_ns: 1_764_000_000_000_000_000 + i,
        severity: 4,
        host: Some("tls-host".into()),
        app: Some("grpc".into()),
        message: Some(msg.as_bytes().to_vec()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_tls_pushes_and_queries() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let (h, addr, key) = start(tls_config(dir.path(), &pki, None)).await;
    let ch = grpc_tls_channel(addr, &pki, false).await.unwrap();
    let ch = tonic::service::interceptor::InterceptedService::new(ch, Key(key.parse().unwrap()));
    let r = IngestClient::new(ch.clone())
        .push_logs(pb::PushLogsRequest {
            records: vec![record(1, "over tls one"), record(2, "over tls two")],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.accepted, 2);
    wait_stored(&h.store, 2).await;
    let page = QueryClient::new(ch)
        .query_logs(pb::QueryLogsRequest {
            filter: Some(pb::LogFilter {
                host: Some("tls-host".into()),
                // The records' hour (an absent range is the last 31 days).
                range: Some(pb::TimeRange {
                    start_ns: Some(1_764_000_000_000_000_000),
                    end_ns: Some(1_764_000_000_000_000_000 + 3_600_000_000_000),
                }),
                ..Default::default()
            }),
            limit: 10,
            order: pb::Order::Ascending as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let msgs: Vec<String> = page
        .records
        .iter()
        .map(|r| String::from_utf8_lossy(r.message.as_deref().unwrap_or_default()).into_owned())
        .collect();
    assert_eq!(msgs, ["over tls one", "over tls two"]);

    // Without a key, over TLS: UNAUTHENTICATED.
    let bare = grpc_tls_channel(addr, &pki, false).await.unwrap();
    let e = IngestClient::new(bare)
        .push_logs(pb::PushLogsRequest {
            records: vec![record(3, "no key")],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_required_refuses_clients_without_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let (h, addr, key) = start(tls_config(dir.path(), &pki, Some(ClientAuth::Required))).await;

    // Without a client certificate: no answer (TLS 1.3 may let the client
    // finish its side; the server's refusal then fails the request).
    let r = https(
        addr,
        client(&pki, false, false),
        "GET",
        "/api/v1/logs",
        &[("X-API-Key", &key)],
    )
    .await;
    assert!(r.is_err(), "{r:?}");
    // Nor does a gRPC client without one get through.
    if let Ok(ch) = grpc_tls_channel(addr, &pki, false).await {
        let ch =
            tonic::service::interceptor::InterceptedService::new(ch, Key(key.parse().unwrap()));
        let e = IngestClient::new(ch)
            .push_logs(pb::PushLogsRequest {
                records: vec![record(1, "no cert")],
            })
            .await
            .unwrap_err();
        // The connection the server closed: UNAVAILABLE or CANCELLED,
        // depending on when the client noticed.
        assert!(
            matches!(
                e.code(),
                Code::Unavailable | Code::Cancelled | Code::Unknown
            ),
            "{e:?}"
        );
    }

    // With the certificate (and still the API key): served, both ways.
    let a = https(
        addr,
        client(&pki, false, true),
        "GET",
        "/api/v1/logs",
        &[("X-API-Key", &key)],
    )
    .await
    .unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    let ch = grpc_tls_channel(addr, &pki, true).await.unwrap();
    let ch = tonic::service::interceptor::InterceptedService::new(ch, Key(key.parse().unwrap()));
    let r = IngestClient::new(ch)
        .push_logs(pb::PushLogsRequest {
            records: vec![record(2, "with cert")],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.accepted, 1);
    let stored = wait_stored(&h.store, 1).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].message.as_deref(), Some(&b"with cert"[..]));

    let m = metrics_text(addr, &pki, true).await;
    assert!(
        handshake_failures(&m, "no_client_certificate") >= 1.0,
        "{m}"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_optional_verifies_a_certificate_when_presented() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let (h, addr, key) = start(tls_config(dir.path(), &pki, Some(ClientAuth::Optional))).await;
    for with_cert in [false, true] {
        let a = https(
            addr,
            client(&pki, false, with_cert),
            "GET",
            "/api/v1/logs",
            &[("X-API-Key", &key)],
        )
        .await
        .unwrap();
        assert_eq!(a.status, 200, "with_cert={with_cert}: {}", a.body);
    }
    // A certificate from another CA is refused even in optional mode.
    let other_dir = dir.path().join("stranger");
    std::fs::create_dir(&other_dir).unwrap();
    let stranger = self::pki(&other_dir);
    let mut wrong = client(&pki, false, false);
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(stranger.client_key_der.clone()));
    wrong = {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca_der.clone()).unwrap();
        let mut c = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![stranger.client_cert_der.clone()], key_der)
            .unwrap();
        c.alpn_protocols = wrong.alpn_protocols.clone();
        c
    };
    let r = https(addr, wrong, "GET", "/api/v1/logs", &[("X-API-Key", &key)]).await;
    assert!(r.is_err(), "{r:?}");
    let m = metrics_text(addr, &pki, false).await;
    assert!(handshake_failures(&m, "bad_certificate") >= 1.0, "{m}");
    h.shutdown().await;
}
