//! `killkrill loadgen` over syslog TLS (with the receiver's self-signed
//! certificate as `--ca-file`, and with `--insecure`) and in RFC 3164
//! format, each `--verify`ed against the store of a running `serve`; a
//! certificate from another CA is refused and nothing counts as sent.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::process::Command;

use support::config;

fn loadgen(args: &[String]) -> (serde_json::Value, std::process::ExitStatus, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_killkrill"))
        .arg("loadgen")
        .args(args)
        .env_remove("DB_TYPE")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    (v, out.status, err)
}

fn assert_exact(s: &serde_json::Value, what: &str) {
    let v = &s["verify"];
    assert!(s["acknowledged"].as_u64().unwrap() >= 1_000, "{what}: {s}");
    assert_eq!(v["missing"].as_u64(), Some(0), "{what}: {v}");
    assert_eq!(v["duplicates"].as_u64(), Some(0), "{what}: {v}");
    assert_eq!(v["stored"], s["acknowledged"], "{what}: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_over_tls_and_in_rfc3164_is_verified_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let other_ca = dir.path().join("other.pem");
    std::fs::write(&other_ca, other.cert.pem()).unwrap();

    let data = dir.path().join("data");
    let mut cfg = config(&data);
    cfg.syslog_tls = cfg.syslog_tcp;
    cfg.tls.cert = Some(cert.clone());
    cfg.tls.key = Some(key);
    let h = support::start(cfg).await.unwrap();
    let tls = h.syslog_tls.unwrap().to_string();
    let tcp = h.syslog_tcp.unwrap().to_string();
    let data_s = data.to_str().unwrap().to_owned();
    let cert_s = cert.to_str().unwrap().to_owned();
    let other_s = other_ca.to_str().unwrap().to_owned();

    let common = [
        "--duration",
        "2",
        "--rate",
        "3000",
        "--connections",
        "2",
        "--verify",
        "--verify-timeout",
        "30",
        "--quiet",
        "--data-dir",
        data_s.as_str(),
    ];
    let runs: Vec<(&str, Vec<&str>)> = vec![
        (
            "tls, CA file, octet framing",
            vec![
                "--mode",
                "syslog-tls",
                "--target",
                &tls,
                "--ca-file",
                &cert_s,
                "--server-name",
                "localhost",
            ],
        ),
        (
            "tls, insecure, LF framing, RFC 3164",
            vec![
                "--mode",
                "syslog-tls",
                "--target",
                &tls,
                "--insecure",
                "--framing",
                "lf",
                "--format",
                "rfc3164",
            ],
        ),
        (
            "tcp, RFC 3164",
            vec![
                "--mode",
                "syslog-tcp",
                "--target",
                &tcp,
                "--format",
                "rfc3164",
            ],
        ),
    ];
    for (what, args) in runs {
        let all: Vec<String> = args
            .iter()
            .chain(common.iter())
            .map(|s| (*s).to_owned())
            .collect();
        let (s, status, err) = tokio::task::spawn_blocking(move || loadgen(&all))
            .await
            .unwrap();
        assert!(status.success(), "{what}: {s} {err}");
        assert_exact(&s, what);
    }

    // RFC 3164 records are parsed as such: app from the tag.
    let stored = support::stored(&h.store).await;
    let bsd = stored
        .iter()
        .find(|r| r.app.as_deref() == Some("loadgen") && r.host.as_deref() == Some("lghost"))
        .expect("an RFC 3164 record");
    assert!(
        bsd.message.as_deref().unwrap().starts_with(b"lg "),
        "{bsd:?}"
    );

    // A certificate the CA file does not vouch for: every connection fails.
    let args: Vec<String> = [
        "--mode",
        "syslog-tls",
        "--target",
        tls.as_str(),
        "--ca-file",
        other_s.as_str(),
        "--server-name",
        "localhost",
        "--duration",
        "1",
        "--connections",
        "2",
        "--quiet",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (s, status, _) = tokio::task::spawn_blocking(move || loadgen(&args))
        .await
        .unwrap();
    assert!(!status.success(), "{s}");
    assert_eq!(s["acknowledged"].as_u64(), Some(0), "{s}");
    assert!(s["errors"].as_u64().unwrap() >= 2, "{s}");

    // Neither a CA file nor --insecure: refused before sending.
    let args: Vec<String> = ["--mode", "syslog-tls", "--target", tls.as_str(), "--quiet"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let (_, status, err) = tokio::task::spawn_blocking(move || loadgen(&args))
        .await
        .unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("--ca-file"), "{err}");
    h.shutdown().await;
}
