//! Prometheus scraping of configured targets.
//!
//! ```toml
//! [[scrape.targets]]
//! job = "node"
//! urls = ["http://127.0.0.1:9100/metrics"]
//! interval = "15s"
//! timeout = "10s"
//! honor_labels = false
//! labels = { env = "prod" }
//! ```
//!
//! One loop per URL, started at a random offset within the interval (so
//! many targets do not all fire together), then once per interval (a
//! scrape that overruns skips ticks rather than bunching them). A scrape is
//! an HTTP/1.1 `GET` that asks for OpenMetrics first and the text format
//! second, exactly as Prometheus asks; the body is parsed by the format the
//! returned `Content-Type` names (OpenMetrics, else text 0.0.4), leniently
//! (what real exporters need) but a scrape with any bad line fails whole, as
//! in Prometheus.
//!
//! Every sample gets the target's labels: `job`, `instance` (the URL's
//! `host:port`) and the configured extra labels. A label the target exposes
//! itself wins when `honor_labels` is true; otherwise the exposed one is
//! kept as `exported_<name>` (Prometheus' rule). Each scrape also writes
//! Prometheus' synthetic series with the target labels: `up` (1 when the
//! scrape succeeded, else 0), `scrape_duration_seconds` and
//! `scrape_samples_scraped`.
//!
//! Bounds: the body (`max_body_bytes`), the samples per scrape
//! (`sample_limit`: more fails the scrape, as Prometheus' `sample_limit`
//! does) and the time (`timeout`). Each failure is counted in
//! `killkrill_scrapes_total{job, result}`, and samples that were scraped
//! but not kept in `killkrill_scrape_dropped_samples_total{job, reason}`.
//!
//! Only `http://` URLs: TLS and authentication to targets are not
//! supported yet (the configuration refuses `https://`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::header;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use killkrill_core::event::{Labels, MetricMetadata, MetricSample, MetricType, Tenant, Timestamp};
use killkrill_core::media_type::MediaType;
use killkrill_core::pipeline::Shutdown;
use killkrill_core::prometheus::{Format, Mode, ParseOptions, Parser};
use metrics::counter;
use tokio::task::JoinHandle;

use super::ingest::Ingest;

mod config;
mod deny;

use config::{Endpoint, endpoint};
pub use config::{ScrapeConfig, ScrapeTarget};
pub use deny::{DEFAULT_DENY_NETWORKS, Network};

/// Scrapes done (`job`, `result` = `ok` | `down` | `denied` | `timeout` |
/// `too_large` | `sample_limit` | `parse_error` | `http_status`).
pub const SCRAPES: &str = "killkrill_scrapes_total";
/// Samples scraped but not stored (`job`, `reason` = `sample_limit` |
/// `parse_error` | `queue_full` | `queue_error`).
pub const SCRAPE_DROPPED: &str = "killkrill_scrape_dropped_samples_total";

/// The `Accept` header of a scrape: Prometheus' own negotiation order.
pub const ACCEPT: &str = "application/openmetrics-text;version=1.0.0;q=0.5,\
                          application/openmetrics-text;version=0.0.1;q=0.4,\
                          text/plain;version=0.0.4;q=0.3,*/*;q=0.1";

/// What one scrape loop needs.
#[derive(Clone)]
struct Scraper {
    ingest: Arc<Ingest>,
    tenant: Tenant,
    job: String,
    endpoint: Endpoint,
    /// `job`, `instance`, extra labels.
    target_labels: Vec<(String, String)>,
    honor_labels: bool,
    interval: Duration,
    timeout: Duration,
    max_body_bytes: usize,
    sample_limit: usize,
    enqueue_wait: Duration,
    /// `scrape.deny_networks`, parsed.
    deny: Arc<[Network]>,
    /// Scrape only while this says true (the lease is held); always when
    /// `None`.
    gate: Option<tokio::sync::watch::Receiver<bool>>,
}

/// Starts one loop per configured URL; each stops when `shutdown` fires.
/// Samples belong to `ingest`'s default tenant.
pub fn spawn(cfg: &ScrapeConfig, ingest: &Arc<Ingest>, shutdown: &Shutdown) -> Vec<JoinHandle<()>> {
    spawn_gated(cfg, ingest, shutdown, None)
}

/// [`spawn`], scraping only while `gate` says true (this process holds the
/// scrape lease); the loops keep their schedule either way.
pub fn spawn_gated(
    cfg: &ScrapeConfig,
    ingest: &Arc<Ingest>,
    shutdown: &Shutdown,
    gate: Option<tokio::sync::watch::Receiver<bool>>,
) -> Vec<JoinHandle<()>> {
    let mut out = Vec::new();
    for t in &cfg.targets {
        for url in t.all_urls() {
            // `validate` refused bad URLs at start-up.
            if let Some(h) = spawn_url(
                cfg,
                t,
                url,
                ingest,
                ingest.default_tenant(),
                shutdown,
                gate.clone(),
            ) {
                out.push(h);
            }
        }
    }
    out
}

/// Starts the loop of one URL of `t`, scraping into `tenant`; `None` for a
/// URL that does not parse.
pub(super) fn spawn_url(
    cfg: &ScrapeConfig,
    t: &ScrapeTarget,
    url: &str,
    ingest: &Arc<Ingest>,
    tenant: &Tenant,
    shutdown: &Shutdown,
    gate: Option<tokio::sync::watch::Receiver<bool>>,
) -> Option<JoinHandle<()>> {
    let ep = endpoint(url).ok()?;
    let mut target_labels = vec![
        ("job".to_owned(), t.job.clone()),
        ("instance".to_owned(), ep.instance.clone()),
    ];
    target_labels.extend(t.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    let s = Scraper {
        ingest: ingest.clone(),
        tenant: tenant.clone(),
        job: t.job.clone(),
        endpoint: ep,
        target_labels,
        honor_labels: t.honor_labels,
        interval: t.interval,
        timeout: t.timeout,
        max_body_bytes: cfg.max_body_bytes,
        sample_limit: t.sample_limit.unwrap_or(cfg.sample_limit),
        enqueue_wait: Duration::from_millis(cfg.enqueue_wait_ms),
        // Validated at start-up (`validate`); a bad entry cannot reach here.
        deny: cfg
            .deny_networks
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect(),
        gate,
    };
    Some(tokio::spawn(s.run(shutdown.clone())))
}

/// Why a scrape failed.
#[derive(Debug, Clone, PartialEq)]
pub enum ScrapeError {
    /// Connecting or talking to the target failed.
    Down(String),
    /// Every address of the target is in `scrape.deny_networks`; nothing
    /// was sent.
    Denied(String),
    /// The target answered with a status other than 200.
    HttpStatus(u16),
    /// It took longer than the timeout.
    Timeout,
    /// The body is larger than the limit.
    TooLarge(usize),
    /// More samples than the limit (how many were parsed before stopping).
    SampleLimit(usize),
    /// The body does not parse (line, what; samples parsed).
    Parse(String, usize),
}

impl ScrapeError {
    fn result_label(&self) -> &'static str {
        match self {
            ScrapeError::Down(_) => "down",
            ScrapeError::Denied(_) => "denied",
            ScrapeError::HttpStatus(_) => "http_status",
            ScrapeError::Timeout => "timeout",
            ScrapeError::TooLarge(_) => "too_large",
            ScrapeError::SampleLimit(_) => "sample_limit",
            ScrapeError::Parse(..) => "parse_error",
        }
    }
}

impl std::fmt::Display for ScrapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScrapeError::Down(e) => write!(f, "target down: {e}"),
            ScrapeError::Denied(e) => write!(f, "target refused: {e}"),
            ScrapeError::HttpStatus(s) => write!(f, "server returned HTTP status {s}"),
            ScrapeError::Timeout => f.write_str("scrape timed out"),
            ScrapeError::TooLarge(n) => write!(f, "body larger than {n} bytes"),
            ScrapeError::SampleLimit(n) => write!(f, "more than {n} samples (sample_limit)"),
            ScrapeError::Parse(e, _) => write!(f, "invalid exposition: {e}"),
        }
    }
}

/// A successful scrape's samples (target labels not yet applied).
type Scraped = (Vec<MetricSample>, Vec<MetricMetadata>);

impl Scraper {
    async fn run(self, mut shutdown: Shutdown) {
        let jitter_ms = fastrand::u64(0..self.interval.as_millis().max(1) as u64);
        tokio::select! {
            () = shutdown.requested() => return,
            () = tokio::time::sleep(Duration::from_millis(jitter_ms)) => {}
        }
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                () = shutdown.requested() => return,
                _ = tick.tick() => {}
            }
            if let Some(g) = &self.gate
                && !*g.borrow()
            {
                continue;
            }
            tokio::select! {
                () = shutdown.requested() => return,
                () = self.scrape_once() => {}
            }
        }
    }

    /// One scrape: fetch, label, add the synthetic series, enqueue.
    async fn scrape_once(&self) {
        let at = Timestamp::now();
        let started = Instant::now();
        let got = match tokio::time::timeout(self.timeout, self.fetch_and_parse()).await {
            Ok(r) => r,
            Err(_) => Err(ScrapeError::Timeout),
        };
        let took = started.elapsed().as_secs_f64();
        let (mut samples, metadata, up, scraped) = match got {
            Ok((samples, metadata)) => {
                let n = samples.len();
                (samples, metadata, 1.0, n)
            }
            Err(e) => {
                tracing::debug!(job = %self.job, instance = %self.endpoint.instance, error = %e, "scrape failed");
                let parsed = match &e {
                    ScrapeError::SampleLimit(n) | ScrapeError::Parse(_, n) => *n,
                    _ => 0,
                };
                if parsed > 0 {
                    counter!(SCRAPE_DROPPED, "job" => self.job.clone(), "reason" => e.result_label())
                        .increment(parsed as u64);
                }
                counter!(SCRAPES, "job" => self.job.clone(), "result" => e.result_label())
                    .increment(1);
                (Vec::new(), Vec::new(), 0.0, parsed)
            }
        };
        if up == 1.0 {
            counter!(SCRAPES, "job" => self.job.clone(), "result" => "ok").increment(1);
        }
        for s in &mut samples {
            apply_target_labels(&mut s.labels, &self.target_labels, self.honor_labels);
            if s.timestamp.is_none() {
                s.timestamp = Some(at);
            }
        }
        let target = Labels::from_pairs(self.target_labels.iter().cloned());
        for (name, value) in [
            ("up", up),
            ("scrape_duration_seconds", took),
            ("scrape_samples_scraped", scraped as f64),
        ] {
            samples.push(MetricSample {
                tenant: None,
                name: name.into(),
                labels: target.clone(),
                value,
                timestamp: Some(at),
                kind: MetricType::Gauge,
            });
        }
        let n = samples.len();
        let batch = self
            .ingest
            .metric_batch(&self.tenant, "scrape", samples, metadata);
        if let Err(e) = self.ingest.submit(batch, self.enqueue_wait).await {
            let reason = match e {
                killkrill_core::pipeline::QueueError::Full { .. } => "queue_full",
                _ => "queue_error",
            };
            tracing::warn!(job = %self.job, instance = %self.endpoint.instance, error = %e, "scraped samples dropped");
            counter!(SCRAPE_DROPPED, "job" => self.job.clone(), "reason" => reason)
                .increment(n as u64);
        }
    }

    async fn fetch_and_parse(&self) -> Result<Scraped, ScrapeError> {
        let (content_type, body) = fetch(
            &self.endpoint,
            &self.deny,
            self.timeout,
            self.max_body_bytes,
        )
        .await?;
        let limit = self.sample_limit;
        // Parsing a 16 MiB body takes a while: keep it off the runtime thread.
        tokio::task::spawn_blocking(move || parse(content_type.as_deref(), &body, limit))
            .await
            .map_err(|e| ScrapeError::Down(format!("parser task failed: {e}")))?
    }
}

/// `GET` the target; the `Content-Type` and the body.
async fn fetch(
    ep: &Endpoint,
    deny: &[Network],
    timeout: Duration,
    max_body: usize,
) -> Result<(Option<String>, Bytes), ScrapeError> {
    let down = |e: &dyn std::fmt::Display| ScrapeError::Down(e.to_string());
    // Every allowed address in turn, as a connect by name would; only
    // checked addresses are ever connected to.
    let mut stream = None;
    let mut last_err = None;
    for addr in deny::resolve(&ep.addr, deny).await? {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let stream = match (stream, last_err) {
        (Some(s), _) => s,
        (None, Some(e)) => return Err(down(&e)),
        (None, None) => return Err(down(&format!("{} resolves to no address", ep.addr))),
    };
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| down(&e))?;
    let conn = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let path = ep
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let req = axum::http::Request::get(path)
        .header(header::HOST, ep.instance.as_str())
        .header(header::ACCEPT, ACCEPT)
        .header(
            header::USER_AGENT,
            concat!("killkrill/", env!("CARGO_PKG_VERSION")),
        )
        .header(
            "X-Prometheus-Scrape-Timeout-Seconds",
            format!("{}", timeout.as_secs_f64()),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| down(&e))?;
    let resp = sender.send_request(req).await.map_err(|e| down(&e))?;
    if resp.status() != axum::http::StatusCode::OK {
        return Err(ScrapeError::HttpStatus(resp.status().as_u16()));
    }
    let declared = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return Err(ScrapeError::TooLarge(max_body));
    }
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = Limited::new(resp.into_body(), max_body)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ScrapeError::TooLarge(max_body)
            } else {
                ScrapeError::Down(e.to_string())
            }
        })?
        .to_bytes();
    drop(conn);
    Ok((content_type, body))
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The exposition format a `Content-Type` names: OpenMetrics for
/// `application/openmetrics-text`, else the text format (Prometheus falls
/// back the same way).
pub fn format_of(content_type: Option<&str>) -> Format {
    match content_type.and_then(|c| MediaType::parse(c).ok()) {
        Some(m) if m.essence == "application/openmetrics-text" => Format::OpenMetrics,
        _ => Format::Text,
    }
}

/// Parses a scraped body: every sample and the families' metadata, or the
/// first problem.
///
/// # Errors
/// [`ScrapeError::Parse`] for a bad line; [`ScrapeError::SampleLimit`] for
/// more than `limit` samples.
pub fn parse(
    content_type: Option<&str>,
    body: &[u8],
    limit: usize,
) -> Result<Scraped, ScrapeError> {
    let format = format_of(content_type);
    let fmt = match format {
        Format::Text => "prometheus",
        Format::OpenMetrics => "openmetrics",
    };
    let opts = ParseOptions {
        format,
        mode: Mode::Lenient,
    };
    let bad = |e: killkrill_core::prometheus::ParseError, n| {
        killkrill_core::pipeline::self_metrics::parsed(fmt, 0, 1);
        let at = match e.column {
            Some(c) => format!("line {}, column {c}: {}", e.line, e.kind),
            None => format!("line {}: {}", e.line, e.kind),
        };
        ScrapeError::Parse(at, n)
    };
    let mut parser = Parser::from_bytes(body, opts).map_err(|e| bad(e, 0))?;
    let mut samples = Vec::new();
    for item in parser.by_ref() {
        let s = item
            .and_then(|s| s.to_metric_sample())
            .map_err(|e| bad(e, samples.len()))?;
        if samples.len() >= limit {
            return Err(ScrapeError::SampleLimit(limit));
        }
        samples.push(s);
    }
    let metadata = parser.families().iter().map(|f| f.to_metadata()).collect();
    killkrill_core::pipeline::self_metrics::parsed(fmt, samples.len(), 0);
    Ok((samples, metadata))
}

/// Adds the target's labels to a scraped sample's, by Prometheus' rules: with
/// `honor_labels` the sample's own value wins; without, the sample's value is
/// moved to `exported_<name>` (`exported_exported_<name>` if that is taken,
/// and so on) and the target's is set.
pub fn apply_target_labels(labels: &mut Labels, target: &[(String, String)], honor: bool) {
    for (name, value) in target {
        match labels.get(name).map(str::to_owned) {
            None => labels.set(name, value),
            Some(_) if honor => {}
            Some(existing) => {
                let mut exported = format!("exported_{name}");
                while labels.get(&exported).is_some() {
                    exported = format!("exported_{exported}");
                }
                labels.set(&exported, &existing);
                labels.set(name, value);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn pairs(l: &Labels) -> Vec<(String, String)> {
        l.iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect()
    }

    #[test]
    fn target_labels_follow_prometheus() {
        let target = vec![
            ("job".to_owned(), "node".to_owned()),
            ("instance".to_owned(), "h:9100".to_owned()),
        ];
        let mut l = Labels::from_pairs([("job", "app"), ("exported_job", "x"), ("a", "1")]);
        apply_target_labels(&mut l, &target, false);
        assert_eq!(
            pairs(&l),
            vec![
                ("a".into(), "1".into()),
                ("exported_exported_job".into(), "app".into()),
                ("exported_job".into(), "x".into()),
                ("instance".into(), "h:9100".into()),
                ("job".into(), "node".into()),
            ]
        );
        let mut l = Labels::from_pairs([("job", "app")]);
        apply_target_labels(&mut l, &target, true);
        assert_eq!(
            pairs(&l),
            vec![
                ("instance".into(), "h:9100".into()),
                ("job".into(), "app".into()),
            ]
        );
    }

    #[test]
    fn content_type_picks_the_parser() {
        assert_eq!(
            format_of(Some(
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            )),
            Format::OpenMetrics
        );
        assert_eq!(format_of(Some("text/plain; version=0.0.4")), Format::Text);
        assert_eq!(format_of(None), Format::Text);
        // The same body is an error in one format and fine in the other:
        // OpenMetrics requires `# EOF`.
        let body = b"a_total 1\n";
        assert!(parse(Some("text/plain"), body, 10).is_ok());
        assert!(matches!(
            parse(Some("application/openmetrics-text"), body, 10),
            Err(ScrapeError::Parse(..))
        ));
        assert_eq!(
            parse(Some("text/plain"), b"a 1\nb 2\nc 3\n", 2),
            Err(ScrapeError::SampleLimit(2))
        );
    }

    #[test]
    fn validation_names_the_key() {
        let t = |url: &str, interval: u64, timeout: u64| ScrapeTarget {
            job: "j".into(),
            url: Some(url.into()),
            urls: Vec::new(),
            interval: Duration::from_secs(interval),
            timeout: Duration::from_secs(timeout),
            honor_labels: false,
            labels: BTreeMap::new(),
            sample_limit: None,
        };
        let check = |targets: Vec<ScrapeTarget>| {
            ScrapeConfig {
                targets,
                ..ScrapeConfig::default()
            }
            .validate()
        };
        assert!(check(vec![t("http://127.0.0.1:9100/metrics", 15, 10)]).is_ok());
        let e = check(vec![t("http://h/metrics", 15, 10), t("https://h/", 15, 10)]).unwrap_err();
        assert_eq!(e.0, "scrape.targets[1].url");
        assert!(e.1.contains("https"), "{e:?}");
        let e = check(vec![t("http://h/", 5, 10)]).unwrap_err();
        assert_eq!(e.0, "scrape.targets[0].timeout");
        let mut bad = t("http://h/", 15, 10);
        bad.labels.insert("instance".into(), "x".into());
        assert_eq!(
            check(vec![bad]).unwrap_err().0,
            "scrape.targets[0].labels.instance"
        );
        let mut none = t("http://h/", 15, 10);
        none.url = None;
        assert_eq!(check(vec![none]).unwrap_err().0, "scrape.targets[0].urls");
    }
}
