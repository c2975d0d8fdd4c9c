//! `promtool query instant|range|series|labels` against our API served on a
//! real 127.0.0.1 socket: Prometheus's own client works unchanged.
//! Skipped (with the reason printed) when `promtool` is not installed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::process::{Command, Stdio};
use std::sync::Arc;

use killkrill_query::{ApiState, EngineConfig, MemorySource, router};
use serde_json::{Value, json};

async fn promtool(args: Vec<String>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new("promtool").args(&args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_queries_work() {
    let installed = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        eprintln!("SKIPPED: promtool not installed (run scripts/install-prometheus)");
        return;
    }
    let mut s = MemorySource::new();
    let pts: Vec<(i64, f64)> = (0..=40).map(|i| (i * 15_000, i as f64 * 15.0)).collect();
    s.add_str(
        &[("__name__", "up"), ("job", "api"), ("instance", "a")],
        pts.clone(),
    );
    s.add_str(
        &[("__name__", "up"), ("job", "web"), ("instance", "b")],
        pts,
    );
    let app = router(ApiState::new(Arc::new(s), EngineConfig::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let (ok, out, err) = promtool(args(&[
        "query",
        "-o",
        "json",
        "instant",
        "--time",
        "60",
        &url,
        "sum by (job) (up)",
    ]))
    .await;
    assert!(ok, "{err}");
    let mut v: Value = serde_json::from_str(&out).unwrap();
    v.as_array_mut()
        .unwrap()
        .sort_by_key(|s| s["metric"]["job"].to_string());
    assert_eq!(
        v,
        json!([
            {"metric": {"job": "api"}, "value": [60, "60"]},
            {"metric": {"job": "web"}, "value": [60, "60"]}
        ])
    );

    let (ok, out, err) = promtool(args(&[
        "query",
        "-o",
        "json",
        "range",
        "--start",
        "0",
        "--end",
        "120",
        "--step",
        "1m",
        &url,
        "rate(up{job=\"api\"}[1m])",
    ]))
    .await;
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v,
        json!([{"metric": {"instance": "a", "job": "api"}, "values": [[60, "1"], [120, "1"]]}])
    );

    let (ok, out, err) = promtool(args(&[
        "query",
        "series",
        "--match",
        "up{job=\"web\"}",
        "--start",
        "0",
        "--end",
        "600",
        &url,
    ]))
    .await;
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "{__name__=\"up\", instance=\"b\", job=\"web\"}",
        "{err}"
    );

    let (ok, out, err) = promtool(args(&[
        "query", "labels", "--start", "0", "--end", "600", &url, "job",
    ]))
    .await;
    assert!(ok, "{err}");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        vec!["api", "web"]
    );

    // A bad query fails in promtool with our error text.
    let (ok, _, err) = promtool(args(&["query", "instant", &url, "sum("])).await;
    assert!(!ok);
    assert!(err.contains("parse error"), "{err}");
    server.abort();
}
