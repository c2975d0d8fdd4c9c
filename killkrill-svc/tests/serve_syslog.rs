//! Syslog into `killkrill serve` over real sockets on 127.0.0.1: UDP, TCP
//! (both framings on one connection), TLS with a certificate made here, and
//! util-linux `logger` when installed; malformed messages are stored raw
//! with `parse_error`; a full queue stops a TCP connection from being read
//! instead of dropping.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use killkrill_core::event::{Facility, Severity};
use support::{by_message, config, metric_sum, scrape, wait_stored};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_round_trip_keeps_malformed_messages_raw() {
    let dir = tempfile::tempdir().unwrap();
    let h = support::start(config(dir.path())).await.unwrap();
    let target = h.syslog_udp.unwrap();
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let msgs: [&[u8]; 3] = [
        b"<165>1 2026-11-25T10:00:00.123Z web1 nginx 812 ID47 [origin ip=\"10.0.0.1\"] udp 5424\n",
        b"<13>Nov 25 10:00:01 web2 cron[99]: udp 3164\0",
        b"<999>this is not syslog \xff",
    ];
    for m in msgs {
        s.send_to(m, target).await.unwrap();
    }
    let records = wait_stored(&h.store, 3).await;
    assert_eq!(records.len(), 3, "{records:?}");
    let a = by_message(&records, "udp 5424");
    assert_eq!(
        (a.severity, a.facility),
        (Some(Severity::Notice), Some(Facility::Local4))
    );
    assert_eq!(
        (
            a.host.as_deref(),
            a.app.as_deref(),
            a.procid.as_deref(),
            a.msgid.as_deref()
        ),
        (Some("web1"), Some("nginx"), Some("812"), Some("ID47"))
    );
    assert_eq!(a.structured_data[0].id, "origin");
    assert_eq!(a.timestamp.to_rfc3339(), "2026-11-25T10:00:00.123000000Z");
    assert_eq!(a.source.as_deref(), Some("syslog-udp"));
    let b = by_message(&records, "udp 3164");
    assert_eq!(
        (b.host.as_deref(), b.app.as_deref(), b.procid.as_deref()),
        (Some("web2"), Some("cron"), Some("99"))
    );
    let bad = records.iter().find(|r| r.parse_error.is_some()).unwrap();
    assert_eq!(
        bad.message.as_deref(),
        Some(&b"<999>this is not syslog \xff"[..])
    );
    let m = scrape(h.http.unwrap()).await;
    assert_eq!(
        metric_sum(
            &m,
            "killkrill_syslog_messages_total",
            &[("listener", "syslog-udp")]
        ),
        3.0
    );
    assert_eq!(
        metric_sum(
            &m,
            "killkrill_syslog_parse_errors_total",
            &[("listener", "syslog-udp")]
        ),
        1.0
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_mixes_both_framings_and_keeps_malformed_lines() {
    let dir = tempfile::tempdir().unwrap();
    let h = support::start(config(dir.path())).await.unwrap();
    let mut c = TcpStream::connect(h.syslog_tcp.unwrap()).await.unwrap();
    let octet = b"<34>1 2026-11-25T10:00:00Z host-a su - - - octet framed";
    let mut stream = format!("{} ", octet.len()).into_bytes();
    stream.extend_from_slice(octet);
    stream.extend_from_slice(b"<13>Nov 25 10:00:01 host-b app: lf framed\n");
    stream.extend_from_slice(b"<999>bad pri line\r\n");
    stream.extend_from_slice(b"<14>1 - host-c app - - - nul framed\0");
    // Split across writes, mid-frame.
    let (a, b) = stream.split_at(30);
    c.write_all(a).await.unwrap();
    c.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    c.write_all(b).await.unwrap();
    // An unterminated last frame is delivered at EOF.
    c.write_all(b"<14>1 - host-d app - - - last without newline")
        .await
        .unwrap();
    c.shutdown().await.unwrap();
    let records = wait_stored(&h.store, 5).await;
    assert_eq!(records.len(), 5, "{records:?}");
    assert_eq!(
        by_message(&records, "octet framed").host.as_deref(),
        Some("host-a")
    );
    assert_eq!(
        by_message(&records, "lf framed").host.as_deref(),
        Some("host-b")
    );
    assert_eq!(
        by_message(&records, "nul framed").host.as_deref(),
        Some("host-c")
    );
    assert_eq!(
        by_message(&records, "last without newline").host.as_deref(),
        Some("host-d")
    );
    let raw = by_message(&records, "<999>bad pri line");
    assert!(raw.parse_error.is_some(), "{raw:?}");
    assert_eq!(raw.source.as_deref(), Some("syslog-tcp"));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_round_trip_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, ck.cert.pem()).unwrap();
    std::fs::write(&key_path, ck.signing_key.serialize_pem()).unwrap();
    let mut cfg = config(&dir.path().join("data"));
    cfg.syslog_tls = cfg.syslog_tcp;
    cfg.tls.cert = Some(cert_path);
    cfg.tls.key = Some(key_path);
    let h = support::start(cfg).await.unwrap();
    let tls_addr = h.syslog_tls.unwrap();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = TcpStream::connect(tls_addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    for (i, body) in [
        "<38>1 2026-11-25T10:00:00Z tls-host sshd 5 - - tls one",
        "<999>not syslog over tls",
    ]
    .iter()
    .enumerate()
    {
        let frame = format!("{} {body}", body.len());
        // The second frame is not octet-counted syslog ("19 not..." has no
        // "<" after the length): the framer takes it as a delimited line.
        let frame = if i == 0 { frame } else { format!("{body}\n") };
        tls.write_all(frame.as_bytes()).await.unwrap();
    }
    tls.shutdown().await.unwrap();
    let records = wait_stored(&h.store, 2).await;
    assert_eq!(records.len(), 2, "{records:?}");
    let one = by_message(&records, "tls one");
    assert_eq!(
        (
            one.host.as_deref(),
            one.app.as_deref(),
            one.source.as_deref()
        ),
        (Some("tls-host"), Some("sshd"), Some("syslog-tls"))
    );
    assert!(
        by_message(&records, "<999>not syslog over tls")
            .parse_error
            .is_some()
    );

    // A plain-text client on the TLS port fails the handshake, counted.
    let mut plain = TcpStream::connect(tls_addr).await.unwrap();
    plain
        .write_all(b"<13>plain text on the TLS port\n")
        .await
        .unwrap();
    let _ = plain.shutdown().await;
    let addr = h.http.unwrap();
    let start = std::time::Instant::now();
    loop {
        let m = scrape(addr).await;
        let n = metric_sum(
            &m,
            "killkrill_syslog_connections_closed_total",
            &[("reason", "tls_handshake")],
        );
        if n == 1.0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_stops_reading_tcp_instead_of_dropping() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.workers.count = 0;
    cfg.queue.max_events = 10;
    cfg.syslog.batch_max_events = 5;
    cfg.workers.drain_timeout_secs = 1;
    let h = support::start(cfg).await.unwrap();
    let mut c = TcpStream::connect(h.syslog_tcp.unwrap()).await.unwrap();
    let lines: String = (0..30)
        .map(|i| format!("<13>1 - h a - - - line {i}\n"))
        .collect();
    c.write_all(lines.as_bytes()).await.unwrap();
    let addr = h.http.unwrap();
    let start = std::time::Instant::now();
    loop {
        let m = scrape(addr).await;
        if metric_sum(
            &m,
            "killkrill_syslog_backpressure_total",
            &[("listener", "syslog-tcp")],
        ) >= 1.0
        {
            assert_eq!(
                metric_sum(&m, "killkrill_syslog_dropped_messages_total", &[]),
                0.0,
                "{m}"
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        h.queue.stats().await.unwrap().events,
        Some(10),
        "the queue is full, nothing beyond it was taken"
    );
    // The connection is still open (held, not closed): a write succeeds.
    c.write_all(b"<13>1 - h a - - - more\n").await.unwrap();
    // Shutting down with no worker: the held batch cannot be enqueued in the
    // drain time and is dropped, counted; the two batches in the (durable,
    // default) queue stay there for the next start.
    assert_eq!(h.queue.name(), "sqlite");
    let report = h.shutdown().await;
    assert_eq!((report.left_in_queue, report.lost), (2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn util_linux_logger_rfc5424_over_udp_and_tcp() {
    if std::process::Command::new("logger")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: util-linux logger is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let h = support::start(config(dir.path())).await.unwrap();
    let udp = h.syslog_udp.unwrap();
    let tcp = h.syslog_tcp.unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("logger")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (up, tp) = (udp.port().to_string(), tcp.port().to_string());
    run(&[
        "--server",
        "127.0.0.1",
        "--port",
        &up,
        "--udp",
        "--rfc5424",
        "-p",
        "local3.warning",
        "-t",
        "lgr",
        "--msgid",
        "M1",
        "--sd-id",
        "ex@32473",
        "--sd-param",
        "k=\"v\"",
        "logger over udp",
    ]);
    run(&[
        "--server",
        "127.0.0.1",
        "--port",
        &tp,
        "--tcp",
        "--octet-count",
        "--rfc5424",
        "-p",
        "user.err",
        "-t",
        "lgr",
        "logger over tcp",
    ]);
    run(&[
        "--server",
        "127.0.0.1",
        "--port",
        &tp,
        "--tcp",
        "--rfc3164",
        "-p",
        "daemon.info",
        "-t",
        "old",
        "logger 3164 over tcp",
    ]);
    let records = wait_stored(&h.store, 3).await;
    let u = by_message(&records, "logger over udp");
    assert_eq!(
        (u.severity, u.facility),
        (Some(Severity::Warning), Some(Facility::Local3))
    );
    assert_eq!(
        (u.app.as_deref(), u.msgid.as_deref()),
        (Some("lgr"), Some("M1"))
    );
    let sd = u
        .structured_data
        .iter()
        .find(|e| e.id == "ex@32473")
        .unwrap();
    assert_eq!(sd.params, vec![("k".to_owned(), "v".to_owned())]);
    let t = by_message(&records, "logger over tcp");
    assert_eq!(
        (t.severity, t.facility, t.parse_error.as_deref()),
        (Some(Severity::Error), Some(Facility::User), None)
    );
    let o = by_message(&records, "logger 3164 over tcp");
    assert_eq!(
        (o.severity, o.facility, o.app.as_deref()),
        (
            Some(Severity::Informational),
            Some(Facility::Daemon),
            Some("old")
        )
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_drops_are_counted_when_the_queue_stays_full() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.workers.count = 0;
    cfg.queue.max_events = 2;
    cfg.syslog.batch_max_events = 2;
    cfg.workers.drain_timeout_secs = 1;
    let h = support::start(cfg).await.unwrap();
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..4 {
        s.send_to(
            format!("<13>1 - h a - - - d{i}").as_bytes(),
            h.syslog_udp.unwrap(),
        )
        .await
        .unwrap();
    }
    let addr = h.http.unwrap();
    let start = std::time::Instant::now();
    loop {
        let m = scrape(addr).await;
        let dropped = metric_sum(
            &m,
            "killkrill_syslog_dropped_messages_total",
            &[("listener", "syslog-udp"), ("reason", "queue_full")],
        );
        if dropped == 2.0 {
            assert_eq!(
                metric_sum(
                    &m,
                    "killkrill_syslog_messages_total",
                    &[("listener", "syslog-udp")]
                ),
                4.0
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(8), "{m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(h.queue.stats().await.unwrap().events, Some(2));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connection_limits_idle_timeout_and_oversized_frames() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.syslog.max_connections = 1;
    cfg.syslog.idle_timeout_secs = 1;
    cfg.syslog.max_frame_bytes = 64;
    let h = support::start(cfg).await.unwrap();
    let tcp = h.syslog_tcp.unwrap();
    let mut first = TcpStream::connect(tcp).await.unwrap();
    first.write_all(b"<13>1 - h a - - - kept\n").await.unwrap();
    // Octet-counted frame over the limit: skipped by its length, counted;
    // then a delimited one over the limit: skipped to the newline.
    let long = format!("<13>1 - h a - - - {}", "x".repeat(100));
    first
        .write_all(format!("{} {long}", long.len()).as_bytes())
        .await
        .unwrap();
    first
        .write_all(format!("{long}\n<13>1 - h a - - - after long\n").as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A second connection is over the limit of one: closed at once.
    let mut second = TcpStream::connect(tcp).await.unwrap();
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(3), second.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the server closed the connection over the limit");
    // The first is closed by the server after a second of silence.
    let n = tokio::time::timeout(Duration::from_secs(5), first.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the idle connection was closed");
    let records = wait_stored(&h.store, 2).await;
    assert_eq!(records.len(), 2, "{records:?}");
    by_message(&records, "kept");
    by_message(&records, "after long");
    let m = scrape(h.http.unwrap()).await;
    let closed = |reason| {
        metric_sum(
            &m,
            "killkrill_syslog_connections_closed_total",
            &[("listener", "syslog-tcp"), ("reason", reason)],
        )
    };
    assert_eq!((closed("limit"), closed("idle")), (1.0, 1.0), "{m}");
    assert_eq!(
        metric_sum(
            &m,
            "killkrill_syslog_bad_frames_total",
            &[("listener", "syslog-tcp"), ("kind", "too_long")]
        ),
        2.0,
        "{m}"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_certificates_are_required_when_a_client_ca_is_set() {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa,
        KeyPair,
    };
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    let dir = tempfile::tempdir().unwrap();
    let server = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let mut client_params = CertificateParams::new(vec!["client.example".to_owned()]).unwrap();
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().unwrap();
    let client_cert = client_params.signed_by(&client_key, &ca).unwrap();
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let mut cfg = config(&dir.path().join("data"));
    cfg.syslog_tls = cfg.syslog_tcp;
    cfg.tls.cert = Some(write("cert.pem", server.cert.pem()));
    cfg.tls.key = Some(write("key.pem", server.signing_key.serialize_pem()));
    cfg.tls.client_ca = Some(write("ca.pem", ca.pem()));
    let h = support::start(cfg).await.unwrap();
    let tls_addr = h.syslog_tls.unwrap();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = || {
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(client_key.serialize_der()));
    let with_cert = builder()
        .with_client_auth_cert(vec![client_cert.der().clone()], key)
        .unwrap();
    let without = builder().with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();

    let tcp = TcpStream::connect(tls_addr).await.unwrap();
    let mut ok = tokio_rustls::TlsConnector::from(Arc::new(with_cert))
        .connect(name.clone(), tcp)
        .await
        .unwrap();
    ok.write_all(b"<13>1 - mtls-host app - - - with a client certificate\n")
        .await
        .unwrap();
    ok.shutdown().await.unwrap();

    let tcp = TcpStream::connect(tls_addr).await.unwrap();
    // TLS 1.3: the client may finish its side before the server refuses, so
    // the failure can show on the write or later; either way nothing is stored.
    if let Ok(mut s) = tokio_rustls::TlsConnector::from(Arc::new(without))
        .connect(name, tcp)
        .await
    {
        let _ = s
            .write_all(b"<13>1 - anon app - - - without a certificate\n")
            .await;
        let _ = s.shutdown().await;
    }
    let records = wait_stored(&h.store, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let records = if records.len() == 1 {
        support::stored(&h.store).await
    } else {
        records
    };
    assert_eq!(records.len(), 1, "{records:?}");
    by_message(&records, "with a client certificate");
    let m = scrape(h.http.unwrap()).await;
    assert_eq!(
        metric_sum(
            &m,
            "killkrill_syslog_connections_closed_total",
            &[("listener", "syslog-tls"), ("reason", "tls_handshake")]
        ),
        1.0,
        "{m}"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_takes_what_senders_already_sent() {
    let dir = tempfile::tempdir().unwrap();
    let h = support::start(config(dir.path())).await.unwrap();
    let mut c = TcpStream::connect(h.syslog_tcp.unwrap()).await.unwrap();
    let lines: String = (0..3000)
        .map(|i| format!("<13>1 - h a - - - tcp {i}\n"))
        .collect();
    c.write_all(lines.as_bytes()).await.unwrap();
    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..200 {
        u.send_to(
            format!("<13>1 - h a - - - udp {i}").as_bytes(),
            h.syslog_udp.unwrap(),
        )
        .await
        .unwrap();
    }
    // A connection made just before the shutdown (perhaps still in the
    // accept backlog) is read too.
    let mut late = TcpStream::connect(h.syslog_tcp.unwrap()).await.unwrap();
    let late_lines: String = (0..50)
        .map(|i| format!("<13>1 - h a - - - late {i}\n"))
        .collect();
    late.write_all(late_lines.as_bytes()).await.unwrap();
    // Shut down at once, with the TCP connections still open.
    let report = h.shutdown().await;
    assert_eq!(report.left_in_queue, 0);
    drop((c, late));
    let h = support::start(config(dir.path())).await.unwrap();
    let records = support::stored(&h.store).await;
    let tcp = records
        .iter()
        .filter(|r| r.source.as_deref() == Some("syslog-tcp"))
        .count();
    let udp = records
        .iter()
        .filter(|r| r.source.as_deref() == Some("syslog-udp"))
        .count();
    assert_eq!((tcp, udp), (3050, 200));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_udp_datagram_is_received_or_counted_as_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    // A stalled listener (full queue, no worker) and the smallest receive
    // buffer the kernel allows: most datagrams overflow it.
    cfg.workers.count = 0;
    cfg.queue.max_events = 2;
    cfg.syslog.batch_max_events = 2;
    cfg.syslog.udp_recv_buffer_bytes = 1;
    cfg.workers.drain_timeout_secs = 1;
    let h = support::start(cfg).await.unwrap();
    let target = h.syslog_udp.unwrap();
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sent = 300;
    for i in 0..sent {
        let msg = format!("<13>1 - h a - - - overflow {i} {}", "x".repeat(250));
        s.send_to(msg.as_bytes(), target).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.shutdown().await;
    let m = killkrill_svc::serve::self_metrics::handle()
        .unwrap()
        .render();
    let received = metric_sum(
        &m,
        "killkrill_syslog_messages_total",
        &[("listener", "syslog-udp")],
    );
    let kernel = metric_sum(
        &m,
        "killkrill_syslog_udp_kernel_drops_total",
        &[("listener", "syslog-udp")],
    );
    assert!(kernel > 0.0, "{m}");
    assert_eq!(received + kernel, f64::from(sent), "{m}");
}
