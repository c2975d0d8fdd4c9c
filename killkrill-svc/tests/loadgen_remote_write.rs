//! `killkrill loadgen --mode remote-write --series N`: every acknowledged
//! sample is stored exactly once (`--verify`), and the run holds exactly
//! `N` series per connection, each with `batch / N` samples per request
//! and the `--labels` asked for.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::process::Command;

use killkrill_core::event::Tenant;
use killkrill_core::storage::{LabelMatcher, MetricStore, TimeRange};
use support::config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_load_has_the_asked_series_and_is_verified_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let h = support::start(config(&data)).await.unwrap();
    let http = h.http.unwrap().to_string();
    let data_s = data.to_str().unwrap().to_owned();
    let args: Vec<String> = [
        "loadgen",
        "--mode",
        "remote-write",
        "--target",
        http.as_str(),
        "--connections",
        "2",
        "--series",
        "7",
        "--labels",
        "2",
        "--batch",
        "70",
        "--count",
        "2800",
        "--run-id",
        "lgseries",
        "--verify",
        "--verify-timeout",
        "30",
        "--quiet",
        "--data-dir",
        data_s.as_str(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_killkrill"))
            .args(&args)
            .env_remove("DB_TYPE")
            .env_remove("DATABASE_URL")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(s["acknowledged"].as_u64(), Some(2800), "{s}");
    assert_eq!(s["verify"]["missing"].as_u64(), Some(0), "{s}");
    assert_eq!(s["verify"]["duplicates"].as_u64(), Some(0), "{s}");
    assert_eq!(s["verify"]["stored"].as_u64(), Some(2800), "{s}");

    let series = h
        .store
        .select_samples(
            &Tenant::new("default").unwrap(),
            &[LabelMatcher::eq("lg_run", "lgseries")],
            TimeRange::ALL,
        )
        .await
        .unwrap();
    assert_eq!(series.len(), 14, "7 series on each of 2 connections");
    for s in &series {
        // 1,400 samples per connection over 7 series, one per millisecond.
        assert_eq!(s.points.len(), 200, "{:?}", s.labels);
        // `--labels 2`: two more labels, the series number in 20 digits.
        let n: u64 = s.labels.get("lg_s").unwrap().parse().unwrap();
        for extra in ["lg_l00", "lg_l01"] {
            assert_eq!(
                s.labels.get(extra),
                Some(format!("{n:020}").as_str()),
                "{:?}",
                s.labels
            );
        }
        assert_eq!(s.labels.iter().count(), 5, "{:?}", s.labels);
        let ts: Vec<i64> = s.points.iter().map(|p| p.0).collect();
        assert!(
            ts.windows(2).all(|w| w[1] - w[0] == 1_000_000),
            "{:?}",
            s.labels
        );
    }
}
