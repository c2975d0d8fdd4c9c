//! Certificate reload without a restart, over real sockets: serve starts
//! with certificate A, the files are replaced with certificate B, and new
//! TLS connections see B while a connection opened before keeps working;
//! a garbage key or a key that does not match leaves B serving and is
//! counted. For the HTTP listener (polling and SIGHUP) and syslog over
//! TLS; and SIGHUP without any TLS listener (counted, the server lives).
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use killkrill_svc::config::ServeConfig;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SerialNumber,
};
use rustls::pki_types::{CertificateDer, ServerName};
use support::{by_message, config, metric_sum, wait_stored};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A server certificate for `localhost` and its key, as PEM and DER.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

/// A CA and two server certificates it signed, told apart by their
/// common name and serial number.
struct Pki {
    ca: CertificateDer<'static>,
    a: Leaf,
    b: Leaf,
}

fn pki() -> Pki {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    let leaf = |cn: &str, serial: u64| {
        let mut p =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.serial_number = Some(SerialNumber::from(serial));
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &ca).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    };
    Pki {
        ca: ca.der().clone(),
        a: leaf("cert-a.killkrill.test", 0xA1),
        b: leaf("cert-b.killkrill.test", 0xB2),
    }
}

/// The files serve reads.
struct Files {
    cert: PathBuf,
    key: PathBuf,
}

impl Files {
    fn new(dir: &Path, first: &Leaf) -> Files {
        let f = Files {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        };
        f.install(first);
        f
    }

    /// Replaces both files the way cert-manager and certbot do: each
    /// written aside, then renamed over the old one.
    fn install(&self, leaf: &Leaf) {
        replace(&self.key, &leaf.key_pem);
        replace(&self.cert, &leaf.cert_pem);
    }
}

fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn client(ca: &CertificateDer<'static>, alpn: bool) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let mut c = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    if alpn {
        c.alpn_protocols = vec![b"http/1.1".to_vec()];
    }
    Arc::new(c)
}

async fn connect(addr: SocketAddr, pki: &Pki, alpn: bool) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(client(&pki.ca, alpn))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

fn peer(s: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    s.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// Which of the two certificates `der` is.
fn which(pki: &Pki, der: &CertificateDer<'_>) -> &'static str {
    if *der == pki.a.der {
        "A"
    } else if *der == pki.b.der {
        "B"
    } else {
        "neither"
    }
}

/// The certificate a new TLS connection to `addr` is shown.
async fn served(addr: SocketAddr, pki: &Pki) -> &'static str {
    which(pki, &peer(&connect(addr, pki, false).await))
}

/// Waits (at most 10 s) until new connections are shown `want`.
async fn wait_served(addr: SocketAddr, pki: &Pki, want: &str) {
    let start = Instant::now();
    loop {
        let got = served(addr, pki).await;
        if got == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still serving {got}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An HTTP/1.1 connection over TLS kept open between requests.
struct Conn {
    send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    cert: &'static str,
}

async fn http_conn(addr: SocketAddr, pki: &Pki) -> Conn {
    let s = connect(addr, pki, true).await;
    let cert = which(pki, &peer(&s));
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    Conn { send, cert }
}

impl Conn {
    async fn get(&mut self, path: &str) -> (u16, String) {
        let req = hyper::Request::get(path)
            .header("host", "localhost")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = self.send.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

async fn reloads(addr: SocketAddr, pki: &Pki, listener: &str, result: &str) -> f64 {
    let (status, m) = http_conn(addr, pki).await.get("/metrics").await;
    assert_eq!(status, 200);
    metric_sum(
        &m,
        "killkrill_tls_reloads_total",
        &[("listener", listener), ("result", result)],
    )
}

/// Waits (at most 10 s) until the reload counter passes `above`.
async fn wait_reloads(addr: SocketAddr, pki: &Pki, listener: &str, result: &str, above: f64) {
    let start = Instant::now();
    loop {
        let n = reloads(addr, pki, listener, result).await;
        if n > above {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{listener} {result} reloads stayed at {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn https_config(dir: &Path, files: &Files, reload_ms: u64) -> ServeConfig {
    let mut c = config(&dir.join("data"));
    c.http_tls.cert = Some(files.cert.clone());
    c.http_tls.key = Some(files.key.clone());
    c.http_tls.reload_interval_ms = reload_ms;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_a_rotated_certificate_and_keeps_it_through_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let files = Files::new(dir.path(), &pki.a);
    let h = support::start(https_config(dir.path(), &files, 100))
        .await
        .unwrap();
    let addr = h.http.unwrap();
    assert_eq!(served(addr, &pki).await, "A");
    let mut old = http_conn(addr, &pki).await;
    assert_eq!(old.cert, "A");
    assert_eq!(old.get("/healthz").await.0, 200);

    // Rotation: new connections get B, the open one still answers.
    let ok_before = reloads(addr, &pki, "http", "ok").await;
    files.install(&pki.b);
    wait_served(addr, &pki, "B").await;
    assert!(reloads(addr, &pki, "http", "ok").await > ok_before);
    assert_eq!(old.get("/healthz").await.0, 200, "the open connection");

    // A garbage key: refused, counted, B keeps serving.
    let errors = reloads(addr, &pki, "http", "error").await;
    replace(&files.key, "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n");
    wait_reloads(addr, &pki, "http", "error", errors).await;
    assert_eq!(served(addr, &pki).await, "B");
    // Reported once, not at every poll.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(reloads(addr, &pki, "http", "error").await, errors + 1.0);
    // A's certificate with B's key (cert rotated, key not yet): refused.
    let errors = reloads(addr, &pki, "http", "error").await;
    replace(&files.key, &pki.b.key_pem);
    replace(&files.cert, &pki.a.cert_pem);
    wait_reloads(addr, &pki, "http", "error", errors).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(served(addr, &pki).await, "B");
    // The matching key arrives: A again.
    replace(&files.key, &pki.a.key_pem);
    wait_served(addr, &pki, "A").await;
    assert_eq!(old.get("/healthz").await.0, 200);
    h.shutdown().await;
}

/// With polling off, the files are read again on SIGHUP.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_when_polling_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let files = Files::new(dir.path(), &pki.a);
    let h = support::start(https_config(dir.path(), &files, 0))
        .await
        .unwrap();
    let addr = h.http.unwrap();
    files.install(&pki.b);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(served(addr, &pki).await, "A", "no polling");
    let pid = std::process::id().to_string();
    let st = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(st.success());
    wait_served(addr, &pki, "B").await;
    assert_eq!(reloads(addr, &pki, "http", "ok").await, 1.0);
    h.shutdown().await;
}

/// Without any TLS listener, SIGHUP (logrotate, init systems) is counted
/// and logged, and does not end the process: before, it had no handler and
/// killed this test process.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_without_tls_is_counted_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let h = support::start(config(dir.path())).await.unwrap();
    let addr = h.http.unwrap();
    let nothing = |m: &str| metric_sum(m, "killkrill_sighup_total", &[("action", "nothing")]);
    assert_eq!(nothing(&support::scrape(addr).await), 0.0);
    let pid = std::process::id().to_string();
    for n in 1..=2 {
        let st = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap();
        assert!(st.success());
        let start = Instant::now();
        while nothing(&support::scrape(addr).await) < f64::from(n) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "SIGHUP {n} not counted"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let r = support::http(addr, "GET", "/healthz", &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        metric_sum(
            &support::scrape(addr).await,
            "killkrill_sighup_total",
            &[("action", "reload")]
        ),
        0.0
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_tls_serves_a_rotated_certificate_and_keeps_open_connections() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let files = Files::new(dir.path(), &pki.a);
    let mut c = config(&dir.path().join("data"));
    c.syslog_tls = c.syslog_tcp;
    c.tls.cert = Some(files.cert.clone());
    c.tls.key = Some(files.key.clone());
    c.tls.reload_interval_ms = 100;
    let h = support::start(c).await.unwrap();
    let tls_addr = h.syslog_tls.unwrap();
    let http = h.http.unwrap();
    let mut old = connect(tls_addr, &pki, false).await;
    assert_eq!(which(&pki, &peer(&old)), "A");
    let line = |m: &str| format!("<38>1 2026-11-26T10:00:00Z h app - - - {m}\n");
    old.write_all(line("before").as_bytes()).await.unwrap();
    old.flush().await.unwrap();

    files.install(&pki.b);
    wait_served(tls_addr, &pki, "B").await;
    // The connection opened with A still delivers.
    old.write_all(line("after, same connection").as_bytes())
        .await
        .unwrap();
    old.flush().await.unwrap();
    let mut new = connect(tls_addr, &pki, false).await;
    new.write_all(line("after, new connection").as_bytes())
        .await
        .unwrap();
    new.shutdown().await.unwrap();
    old.shutdown().await.unwrap();
    let records = wait_stored(&h.store, 3).await;
    for m in ["before", "after, same connection", "after, new connection"] {
        by_message(&records, m);
    }

    // A half-written certificate: counted, B keeps serving.
    let m = support::scrape(http).await;
    let errors = metric_sum(
        &m,
        "killkrill_tls_reloads_total",
        &[("listener", "syslog_tls"), ("result", "error")],
    );
    assert!(
        metric_sum(
            &m,
            "killkrill_tls_reloads_total",
            &[("listener", "syslog_tls"), ("result", "ok")]
        ) >= 1.0,
        "{m}"
    );
    let half = &pki.a.cert_pem[..pki.a.cert_pem.len() / 2];
    replace(&files.cert, half);
    let start = Instant::now();
    loop {
        let m = support::scrape(http).await;
        let n = metric_sum(
            &m,
            "killkrill_tls_reloads_total",
            &[("listener", "syslog_tls"), ("result", "error")],
        );
        if n > errors {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(served(tls_addr, &pki).await, "B");
    h.shutdown().await;
}
