//! Real client programs against `killkrill serve`: Python's standard-library
//! `logging.handlers.SysLogHandler` (UDP and TCP), `openssl s_client` (TLS)
//! and curl (NDJSON, gzip, an over-sized body, a malformed body). Each test
//! is skipped, with the reason printed, when its program is not installed.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use killkrill_core::event::{Facility, Severity};
use support::{by_message, config, wait_stored};

fn installed(program: &str, arg: &str) -> bool {
    let ok = Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: {program} is not installed");
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_syslog_handler_over_udp_and_tcp() {
    if !installed("python3", "--version") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let h = support::start(config(dir.path())).await.unwrap();
    let script = r#"
import logging, logging.handlers, socket, sys
for port, socktype, name in [(int(sys.argv[1]), socket.SOCK_DGRAM, "udp"), (int(sys.argv[2]), socket.SOCK_STREAM, "tcp")]:
    h = logging.handlers.SysLogHandler(address=("127.0.0.1", port), facility=logging.handlers.SysLogHandler.LOG_LOCAL2, socktype=socktype)
    h.ident = "pyapp: "
    log = logging.getLogger(name)
    log.addHandler(h)
    log.setLevel(logging.INFO)
    log.warning("python over %s", name)
    log.error("second python line over %s", name)
    h.close()
"#;
    let out = tokio::task::spawn_blocking({
        let (u, t) = (h.syslog_udp.unwrap().port(), h.syslog_tcp.unwrap().port());
        move || {
            Command::new("python3")
                .args(["-c", script, &u.to_string(), &t.to_string()])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = wait_stored(&h.store, 4).await;
    assert_eq!(records.len(), 4, "{records:?}");
    for (msg, source, sev) in [
        ("python over udp", "syslog-udp", Severity::Warning),
        ("second python line over udp", "syslog-udp", Severity::Error),
        ("python over tcp", "syslog-tcp", Severity::Warning),
        ("second python line over tcp", "syslog-tcp", Severity::Error),
    ] {
        let r = by_message(&records, msg);
        assert_eq!(
            (r.app.as_deref(), r.source.as_deref()),
            (Some("pyapp"), Some(source))
        );
        assert_eq!(
            (r.severity, r.facility),
            (Some(sev), Some(Facility::Local2))
        );
        assert_eq!(r.parse_error, None);
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_client_over_tls() {
    if !installed("openssl", "version") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let mut cfg = config(&dir.path().join("data"));
    cfg.syslog_tls = cfg.syslog_tcp;
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    cfg.tls.cert = Some(cert.clone());
    cfg.tls.key = Some(key);
    let h = support::start(cfg).await.unwrap();
    let target = h.syslog_tls.unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &target,
                "-quiet",
                "-no_ign_eof",
                "-CAfile",
            ])
            .arg(&cert)
            .args(["-verify_return_error", "-servername", "localhost"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"<165>1 2026-11-25T10:00:00Z ossl-host app - ID1 - via openssl s_client\n")
            .unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = wait_stored(&h.store, 1).await;
    assert_eq!(records.len(), 1, "{records:?}");
    let r = by_message(&records, "via openssl s_client");
    assert_eq!(
        (r.host.as_deref(), r.msgid.as_deref(), r.source.as_deref()),
        (Some("ossl-host"), Some("ID1"), Some("syslog-tls"))
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_ndjson_gzip_oversize_and_malformed() {
    if !installed("curl", "--version") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.http_ingest.max_body_bytes = 64 * 1024;
    let h = support::start(cfg).await.unwrap();
    let url = format!("http://{}/api/v1/logs", h.http.unwrap());
    let key_header = format!("X-API-Key: {}", support::api_key(h.http.unwrap()));
    let files = dir.path().to_path_buf();
    let ndjson = files.join("a.ndjson");
    std::fs::write(
        &ndjson,
        "{\"msg\":\"curl one\"}\n{\"msg\":\"curl two\",\"level\":\"error\"}\n",
    )
    .unwrap();
    let gz = files.join("b.ndjson.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b"{\"msg\":\"curl gzip\"}\n").unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    let big = files.join("big.ndjson");
    std::fs::write(&big, "{\"msg\":\"x\"}\n".repeat(10_000)).unwrap();
    let bad = files.join("bad.ndjson");
    std::fs::write(
        &bad,
        "{\"msg\":\"fine\"}\n{\"msg\":\"fine\"}\n{\"msg\" \"missing colon\"}\n",
    )
    .unwrap();
    let curl = move |file: &std::path::Path, extra: &[&str]| {
        let out = Command::new("curl")
            .args([
                "-sS",
                "-o",
                "-",
                "-w",
                "\n%{http_code}",
                "-H",
                "Content-Type: application/x-ndjson",
                "-H",
                &key_header,
            ])
            .args(extra)
            .arg("--data-binary")
            .arg(format!("@{}", file.display()))
            .arg(&url)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.parse::<u16>().unwrap(), body.to_owned())
    };
    let results = tokio::task::spawn_blocking(move || {
        (
            curl(&ndjson, &[]),
            curl(&gz, &["-H", "Content-Encoding: gzip"]),
            curl(&big, &[]),
            curl(&bad, &[]),
        )
    })
    .await
    .unwrap();
    assert_eq!(results.0, (200, "{\"accepted\":2}".to_owned()));
    assert_eq!(results.1, (200, "{\"accepted\":1}".to_owned()));
    assert_eq!(results.2.0, 413, "{}", results.2.1);
    let j: serde_json::Value = serde_json::from_str(&results.2.1).unwrap();
    assert_eq!(j["error"], "request body too large");
    assert_eq!(results.3.0, 400, "{}", results.3.1);
    let j: serde_json::Value = serde_json::from_str(&results.3.1).unwrap();
    assert!(
        j["detail"].as_str().unwrap().starts_with("line 3, column"),
        "{j}"
    );
    let records = wait_stored(&h.store, 3).await;
    assert_eq!(records.len(), 3, "{records:?}");
    assert_eq!(
        by_message(&records, "curl two").severity,
        Some(Severity::Error)
    );
    by_message(&records, "curl gzip");
    h.shutdown().await;
}
