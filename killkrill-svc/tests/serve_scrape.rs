//! Prometheus scraping: `killkrill serve` with `[[scrape.targets]]` scraping a
//! local axum server (text and OpenMetrics, a down target, a slow one, an
//! over-sized body, too many samples) and a real `prometheus-node-exporter`
//! (skipped, with the reason printed, when it is not installed).
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use axum::routing::get;
use killkrill_core::event::{MetricSample, Timestamp};
use killkrill_svc::config::ServeConfig;
use killkrill_svc::serve::scrape::{ACCEPT, ScrapeConfig, ScrapeTarget};
use killkrill_svc::serve::{self, ServeHandle, StartOptions};
use support::{Recording, config, metric_sum};

impl Recording {
    /// Waits (at most 15 s) until `pred` holds for the recorded samples.
    async fn wait<T>(&self, what: &str, pred: impl Fn(&[MetricSample]) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(t) = pred(&self.0.lock().unwrap()) {
                return t;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "timed out waiting for {what}; have {:?}",
                self.0
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|s| format!("{}{:?}={}", s.name, s.labels, s.value))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

const TEXT: &str = "# HELP http_requests_total Requests.\n\
# TYPE http_requests_total counter\n\
http_requests_total{code=\"200\",job=\"app\"} 1027\n\
http_requests_total{code=\"500\"} 3 1700000000000\n\
# TYPE temperature gauge\n\
temperature 21.5\n";

const OPENMETRICS: &str = "# TYPE build info\n\
build_info{version=\"1.2\"} 1\n\
# TYPE reqs counter\n\
reqs_total{env=\"inner\"} 5\n\
# EOF\n";

/// A target server: `/text`, `/om` (OpenMetrics when asked for), `/slow`,
/// `/huge`; it records the `Accept` headers it saw.
async fn targets() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let accepts = Arc::new(Mutex::new(Vec::new()));
    let seen = accepts.clone();
    let app = axum::Router::new()
        .route(
            "/text",
            get(|| async { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], TEXT) }),
        )
        .route(
            "/om",
            get(move |h: HeaderMap| {
                let seen = seen.clone();
                async move {
                    let accept = h
                        .get(header::ACCEPT)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    seen.lock().unwrap().push(accept.clone());
                    if accept.contains("application/openmetrics-text") {
                        (
                            [(
                                header::CONTENT_TYPE,
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )],
                            OPENMETRICS.to_owned(),
                        )
                    } else {
                        (
                            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                            "reqs_total 5\n".to_owned(),
                        )
                    }
                }
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "slow 1\n"
            }),
        )
        .route("/huge", get(|| async { "x 1\n".repeat(4_000) }));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (addr, accepts)
}

fn target(job: &str, url: String, interval_ms: u64, timeout_ms: u64) -> ScrapeTarget {
    ScrapeTarget {
        job: job.into(),
        url: Some(url),
        urls: Vec::new(),
        interval: Duration::from_millis(interval_ms),
        timeout: Duration::from_millis(timeout_ms),
        honor_labels: false,
        labels: BTreeMap::new(),
        sample_limit: None,
    }
}

/// Name, labels and value of a sample.
type Shown = (String, Vec<(String, String)>, f64);

fn labels(s: &MetricSample) -> Vec<(String, String)> {
    s.labels
        .iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn start(dir: &std::path::Path, targets: Vec<ScrapeTarget>) -> (ServeHandle, Arc<Recording>) {
    let mut c = config(dir);
    c.scrape.targets = targets;
    c.scrape.max_body_bytes = 8 * 1024;
    start_config(c).await
}

/// Serve on `c` (its scrape section validated), metrics into a recording.
async fn start_config(c: ServeConfig) -> (ServeHandle, Arc<Recording>) {
    c.scrape.validate().unwrap();
    let sink = Arc::new(Recording::default());
    let h = serve::start_with(
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
    (h, sink)
}

/// The first sample of `name` for `job`.
fn find(v: &[MetricSample], job: &str, name: &str) -> Option<MetricSample> {
    v.iter()
        .find(|s| s.name == name && s.labels.get("job") == Some(job))
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_text_and_openmetrics_with_target_labels() {
    let (addr, accepts) = targets().await;
    let dir = tempfile::tempdir().unwrap();
    let mut om = target("om", format!("http://{addr}/om"), 300, 250);
    om.labels.insert("env".into(), "test".into());
    let mut honored = target("honored", format!("http://{addr}/text"), 300, 250);
    honored.honor_labels = true;
    let before = Timestamp::now();
    let (h, sink) = start(
        dir.path(),
        vec![
            target("text", format!("http://{addr}/text"), 300, 250),
            om,
            honored,
        ],
    )
    .await;
    let instance = addr.to_string();

    // Text: the target's `job` clashes and is kept as `exported_job`; an
    // exposed timestamp is kept, the others get the scrape time.
    let got = sink
        .wait("the text scrape", |v| {
            let up = find(v, "text", "up")?;
            let mut samples: Vec<MetricSample> = v
                .iter()
                .filter(|s| s.labels.get("job") == Some("text") && s.timestamp == up.timestamp)
                .cloned()
                .collect();
            samples.sort_by(|a, b| (a.name.as_str(), labels(a)).cmp(&(b.name.as_str(), labels(b))));
            Some((up, samples))
        })
        .await;
    let (up, samples) = got;
    let at = up.timestamp.unwrap();
    assert!(at >= before && at <= Timestamp::now());
    let shown: Vec<Shown> = samples
        .iter()
        .filter(|s| s.name != "scrape_duration_seconds")
        .map(|s| (s.name.to_string(), labels(s), s.value))
        .collect();
    let inst = instance.as_str();
    assert_eq!(
        shown,
        vec![
            (
                "http_requests_total".to_owned(),
                pairs(&[
                    ("code", "200"),
                    ("exported_job", "app"),
                    ("instance", inst),
                    ("job", "text")
                ]),
                1027.0
            ),
            (
                "scrape_samples_scraped".to_owned(),
                pairs(&[("instance", inst), ("job", "text")]),
                3.0
            ),
            (
                "temperature".to_owned(),
                pairs(&[("instance", inst), ("job", "text")]),
                21.5
            ),
            (
                "up".to_owned(),
                pairs(&[("instance", inst), ("job", "text")]),
                1.0
            ),
        ]
    );
    let exposed = sink
        .wait("the sample with its own timestamp", |v| {
            v.iter()
                .find(|s| {
                    s.labels.get("code") == Some("500") && s.labels.get("job") == Some("text")
                })
                .cloned()
        })
        .await;
    assert_eq!(
        exposed.timestamp,
        Some(Timestamp::from_millis(1_700_000_000_000))
    );
    assert_eq!(exposed.value, 3.0);
    let duration = find(&samples, "text", "scrape_duration_seconds").unwrap();
    assert!(
        duration.value > 0.0 && duration.value < 0.25,
        "{duration:?}"
    );

    // honor_labels: the exposed job wins.
    let kept = sink
        .wait("the honored scrape", |v| {
            v.iter()
                .find(|s| {
                    s.name == "http_requests_total"
                        && s.labels.get("code") == Some("200")
                        && s.labels.get("instance") == Some(inst)
                        && s.labels.get("exported_job").is_none()
                })
                .cloned()
        })
        .await;
    assert_eq!(kept.labels.get("job"), Some("app"));

    // OpenMetrics, negotiated: the server saw Prometheus' Accept header and
    // answered OpenMetrics, which was parsed as such (info type, `# EOF`).
    let info = sink
        .wait("the OpenMetrics scrape", |v| find(v, "om", "build_info"))
        .await;
    assert_eq!(
        labels(&info),
        pairs(&[
            ("env", "test"),
            ("instance", inst),
            ("job", "om"),
            ("version", "1.2")
        ])
    );
    assert_eq!(info.kind, killkrill_core::event::MetricType::Info);
    let reqs = sink
        .wait("reqs_total", |v| find(v, "om", "reqs_total"))
        .await;
    assert_eq!(
        (labels(&reqs), reqs.value),
        (
            pairs(&[
                ("env", "test"),
                ("exported_env", "inner"),
                ("instance", inst),
                ("job", "om")
            ]),
            5.0
        )
    );
    assert_eq!(accepts.lock().unwrap()[0], ACCEPT);
    let up = sink.wait("om up", |v| find(v, "om", "up")).await;
    assert_eq!(up.value, 1.0);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_scrapes_give_up_zero_and_are_counted() {
    let (addr, _) = targets().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut limited = target("limited", format!("http://{addr}/text"), 300, 250);
    limited.sample_limit = Some(2);
    let (h, sink) = start(
        dir.path(),
        vec![
            target("down", format!("http://{closed}/metrics"), 300, 250),
            target("slow", format!("http://{addr}/slow"), 500, 200),
            target("huge", format!("http://{addr}/huge"), 300, 250),
            limited,
        ],
    )
    .await;
    for job in ["down", "slow", "huge", "limited"] {
        let up = sink.wait(job, |v| find(v, job, "up")).await;
        assert_eq!(up.value, 0.0, "{job}");
        assert_eq!(
            up.labels.get("instance"),
            Some(
                if job == "down" {
                    closed.to_string()
                } else {
                    addr.to_string()
                }
                .as_str()
            )
        );
        // Nothing but the synthetic series was kept.
        let names: std::collections::BTreeSet<String> = sink
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.labels.get("job") == Some(job))
            .map(|s| s.name.to_string())
            .collect();
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["scrape_duration_seconds", "scrape_samples_scraped", "up"],
            "{job}"
        );
    }
    // The timeout bounds the slow scrape's duration.
    let d = sink
        .wait("slow duration", |v| {
            find(v, "slow", "scrape_duration_seconds")
        })
        .await;
    assert!(d.value >= 0.19 && d.value < 1.0, "{d:?}");
    let m = support::scrape(h.http.unwrap()).await;
    for (job, result) in [
        ("down", "down"),
        ("slow", "timeout"),
        ("huge", "too_large"),
        ("limited", "sample_limit"),
    ] {
        assert!(
            metric_sum(
                &m,
                "killkrill_scrapes_total",
                &[("job", job), ("result", result)]
            ) >= 1.0,
            "{job}/{result} not counted"
        );
    }
    assert!(
        metric_sum(
            &m,
            "killkrill_scrape_dropped_samples_total",
            &[("job", "limited"), ("reason", "sample_limit")]
        ) >= 2.0
    );
    h.shutdown().await;
}

/// `scrape.deny_networks`: a target whose name resolves only into a denied
/// network is never connected to (the listener sees no connection), its
/// `up` is 0 and the refusal is counted as `result="denied"`; the same
/// target is scraped once the network is allowed. Address literals in a
/// denied network (the cloud metadata address by default) are refused at
/// validation, naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_networks_are_never_connected_to() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let seen = accepted.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    // `localhost` may resolve to 127.0.0.1 and ::1: both are denied.
    c.scrape.deny_networks = vec!["127.0.0.0/8".into(), "::1".into()];
    c.scrape.targets = vec![target(
        "denied",
        format!("http://localhost:{port}/metrics"),
        200,
        150,
    )];
    let (h, sink) = start_config(c).await;
    let up = sink.wait("denied up", |v| find(v, "denied", "up")).await;
    assert_eq!(up.value, 0.0);
    // A few more scrape rounds: still nothing reached the listener.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "a denied target was connected to"
    );
    let m = support::scrape(h.http.unwrap()).await;
    assert!(
        metric_sum(
            &m,
            "killkrill_scrapes_total",
            &[("job", "denied"), ("result", "denied")]
        ) >= 2.0,
        "denied scrapes not counted"
    );
    h.shutdown().await;

    // Validation: literals in denied networks, and bad networks, name the key.
    let literal = ScrapeConfig {
        targets: vec![target(
            "meta",
            "http://169.254.169.254/latest/meta-data".into(),
            1000,
            500,
        )],
        ..ScrapeConfig::default()
    };
    let (key, problem) = literal.validate().unwrap_err();
    assert_eq!(key, "scrape.targets[0].url");
    assert!(problem.contains("169.254.0.0/16"), "{problem}");
    let v6 = ScrapeConfig {
        targets: vec![target("meta6", "http://[fd00:ec2::254]/".into(), 1000, 500)],
        ..ScrapeConfig::default()
    };
    assert_eq!(v6.validate().unwrap_err().0, "scrape.targets[0].url");
    let bad = ScrapeConfig {
        deny_networks: vec!["10.0.0.0/8".into(), "10.0.0.0/40".into()],
        ..ScrapeConfig::default()
    };
    let (key, problem) = bad.validate().unwrap_err();
    assert_eq!(key, "scrape.deny_networks[1]");
    assert!(problem.contains("prefix length"), "{problem}");
    // Allowed again: the same target is scraped (the listener sees it).
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.scrape.deny_networks = Vec::new();
    c.scrape.targets = vec![target(
        "allowed",
        format!("http://127.0.0.1:{port}/metrics"),
        200,
        150,
    )];
    let (h, sink) = start_config(c).await;
    sink.wait("allowed up", |v| find(v, "allowed", "up")).await;
    assert!(
        accepted.load(Ordering::SeqCst) >= 1,
        "the allowed target was not connected to"
    );
    h.shutdown().await;
}

/// Kills the child when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_a_real_node_exporter() {
    let installed = Command::new("prometheus-node-exporter")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        eprintln!(
            "skipped: prometheus-node-exporter is not installed (Debian: apt-get install prometheus-node-exporter)"
        );
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _node = Running(
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Wait until it listens.
    let start_wait = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            start_wait.elapsed() < Duration::from_secs(10),
            "node exporter did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.scrape.targets = vec![target(
        "node",
        format!("http://127.0.0.1:{port}/metrics"),
        1000,
        900,
    )];
    let sink = Arc::new(Recording::default());
    let h = serve::start_with(
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
    let instance = format!("127.0.0.1:{port}");
    let (cpu, up, scraped) = sink
        .wait("node exporter series", |v| {
            Some((
                find(v, "node", "node_cpu_seconds_total")?,
                find(v, "node", "up")?,
                find(v, "node", "scrape_samples_scraped")?,
            ))
        })
        .await;
    assert_eq!(up.value, 1.0);
    assert_eq!(cpu.labels.get("instance"), Some(instance.as_str()));
    assert!(
        cpu.labels.get("cpu").is_some() && cpu.labels.get("mode").is_some(),
        "{cpu:?}"
    );
    assert_eq!(cpu.kind, killkrill_core::event::MetricType::Counter);
    // Every sample of that scrape arrived: as many as it reported.
    let n = sink
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|s| {
            s.labels.get("job") == Some("node")
                && s.timestamp == up.timestamp
                && !["up", "scrape_duration_seconds", "scrape_samples_scraped"]
                    .contains(&s.name.as_str())
        })
        .count();
    assert!(scraped.value > 100.0, "{scraped:?}");
    assert_eq!(n as f64, scraped.value);
    h.shutdown().await;
}
