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
    assert_eq!(
        (b.report.samples + b.report.histogram_samples) as usize,
        b.samples.len()
    );
    assert_eq!(b.report.exemplars, 0);
    // Every sample comes from the self-scrape (job "prometheus") or the capture
    // server's native histogram (job "native"), with the external label.
    let instance = b.samples[0].labels.get("instance").unwrap().to_owned();
    assert!(instance.starts_with("127.0.0.1:"), "{instance}");
    for s in &b.samples {
        let job = s.labels.get("job").unwrap();
        assert!(job == "prometheus" || job == "native", "{s:?}");
        if job == "prometheus" {
            assert_eq!(s.labels.get("instance"), Some(instance.as_str()), "{s:?}");
        }
        assert_eq!(s.labels.get("capture"), Some("killkrill"), "{s:?}");
        assert!(
            s.timestamp.unwrap().as_nanos() > 1_700_000_000_000_000_000,
            "{s:?}"
        );
        // 1.0 float series carry no type; the native histogram's series are typed.
        let want = if s.name.starts_with("killkrill_capture_native_seconds") {
            MetricType::Histogram
        } else {
            MetricType::Unknown
        };
        assert_eq!(s.kind, want, "{s:?}");
    }
    let up: Vec<_> = b.samples.iter().filter(|s| s.name == "up").collect();
    assert!(!up.is_empty());
    assert_eq!(up.len(), 2, "one per job");
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

/// The capture server exposes one native histogram (schema 3; zero bucket 2^-128
/// holding 1; positive buckets 0, 1, 5 holding 2, 3, 2; negative bucket -1 holding
/// 1; count 9, sum 12.5: see NATIVE in the script). Prometheus scraped it and
/// remote-wrote it as a native histogram; it must arrive as these classic series.
#[test]
fn captured_native_histogram() {
    let b = load("histograms");
    assert_eq!((b.report.histograms, b.report.histogram_samples), (1, 8));
    let got: Vec<(&str, Option<&str>, f64)> = b
        .samples
        .iter()
        .filter(|s| s.name.starts_with("killkrill_capture_native_seconds"))
        .map(|s| (s.name.as_str(), s.labels.get("le"), s.value))
        .collect();
    let n = "killkrill_capture_native_seconds";
    let (count, sum, bucket) = (
        format!("{n}_count"),
        format!("{n}_sum"),
        format!("{n}_bucket"),
    );
    let want: Vec<(&str, Option<&str>, f64)> = vec![
        (&count, None, 9.0),
        (&sum, None, 12.5),
        // negative bucket -1 is [-2^(-1/8), -2^(-2/8)): le = -2^(-1/4)
        (&bucket, Some("-0.8408964152537145"), 1.0),
        (&bucket, Some("2.938735877055719e-39"), 2.0), // zero bucket
        (&bucket, Some("1.0"), 4.0),                   // bucket 0: (2^(-1/8), 1]
        (&bucket, Some("1.0905077326652577"), 7.0),    // bucket 1: le = 2^(1/8)
        (&bucket, Some("1.5422108254079407"), 9.0),    // bucket 5: le = 2^(5/8)
        (&bucket, Some("+Inf"), 9.0),
    ];
    assert_eq!(got, want);
    for s in b.samples.iter().filter(|s| s.name.starts_with(n)) {
        assert_eq!(s.kind, MetricType::Histogram);
        assert_eq!(s.labels.get("job"), Some("native"));
        assert_eq!(s.labels.get("kind"), Some("native"));
    }
}
