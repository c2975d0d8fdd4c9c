//! Remote write bodies captured from a real Prometheus (Debian's 2.42 package) by
//! `scripts/capture-remote-write.py`: decoded with the content type it sent, and
//! checked for what that Prometheus scraping itself must have written.

use killkrill_core::event::MetricType;
use killkrill_core::remote_write::{Limits, RemoteWriteVersion, WriteBatch, decode};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/captured/");
const STEM: &str = "prometheus-2.42.0+ds-remote-write-v1-";

fn load(kind: &str) -> WriteBatch {
    let body = std::fs::read(format!("{DIR}{STEM}{kind}.snappy")).expect("fixture body");
    let headers =
        std::fs::read(format!("{DIR}{STEM}{kind}.headers.json")).expect("fixture headers");
    let headers: serde_json::Value = serde_json::from_slice(&headers).expect("headers are JSON");
    let h = &headers["headers"];
    assert_eq!(h["Content-Encoding"], "snappy");
    assert_eq!(h["X-Prometheus-Remote-Write-Version"], "0.1.0");
    let version = RemoteWriteVersion::from_content_type(h["Content-Type"].as_str())
        .expect("Prometheus sends a remote write content type");
    assert_eq!(version, RemoteWriteVersion::V1);
    decode(&body, version, &Limits::default()).expect("the captured body decodes")
}

#[test]
fn captured_series_request() {
    let b = load("series");
    assert!(b.samples.len() > 300, "{} samples", b.samples.len());
    assert_eq!(b.report.samples as usize, b.samples.len());
    assert_eq!((b.report.histograms, b.report.exemplars), (0, 0));
    // Every sample comes from the self-scrape: same job, instance and external label.
    let instance = b.samples[0].labels.get("instance").unwrap().to_owned();
    assert!(instance.starts_with("127.0.0.1:"), "{instance}");
    for s in &b.samples {
        assert_eq!(s.labels.get("job"), Some("prometheus"), "{s:?}");
        assert_eq!(s.labels.get("instance"), Some(instance.as_str()), "{s:?}");
        assert_eq!(s.labels.get("capture"), Some("killkrill"), "{s:?}");
        assert!(
            s.timestamp.unwrap().as_nanos() > 1_700_000_000_000_000_000,
            "{s:?}"
        );
        assert_eq!(s.kind, MetricType::Unknown, "1.0 series carry no type");
    }
    let up: Vec<_> = b.samples.iter().filter(|s| s.name == "up").collect();
    assert!(!up.is_empty());
    assert!(up.iter().all(|s| s.value == 1.0 && s.labels.len() == 3));
    let info = b
        .samples
        .iter()
        .find(|s| s.name == "prometheus_build_info")
        .unwrap();
    assert_eq!(info.value, 1.0);
    assert_eq!(info.labels.get("version"), Some("2.42.0+ds"));
    assert_eq!(info.labels.get("branch"), Some("debian/sid"));
    assert!(info.labels.get("goversion").unwrap().starts_with("go1."));
    for l in ["revision", "goos", "goarch"] {
        assert!(info.labels.get(l).is_some(), "{l}");
    }
    // Classic histogram series arrive as their component series with `le`.
    let buckets: Vec<_> = b
        .samples
        .iter()
        .filter(|s| s.name == "prometheus_tsdb_compaction_chunk_range_seconds_bucket")
        .collect();
    assert!(buckets.iter().any(|s| s.labels.get("le") == Some("+Inf")));
    // The scrape's synthetic series are there too.
    for name in [
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_series_added",
    ] {
        assert!(b.samples.iter().any(|s| s.name == name), "{name}");
    }
}

#[test]
fn captured_metadata_request() {
    let b = load("metadata");
    assert!(b.samples.is_empty());
    assert!(b.metadata.len() > 100, "{} metadata", b.metadata.len());
    assert_eq!(b.report.metadata as usize, b.metadata.len());
    let find = |f: &str| b.metadata.iter().find(|m| m.family == f).unwrap();
    let info = find("prometheus_build_info");
    assert_eq!(info.kind, MetricType::Gauge);
    assert!(
        info.help.as_deref().unwrap().contains("constant '1' value"),
        "{info:?}"
    );
    let hist = find("prometheus_tsdb_compaction_chunk_range_seconds");
    assert_eq!(hist.kind, MetricType::Histogram);
    assert_eq!(find("process_cpu_seconds_total").kind, MetricType::Counter);
    assert_eq!(find("go_goroutines").kind, MetricType::Gauge);
    assert_eq!(find("go_gc_duration_seconds").kind, MetricType::Summary);
}
