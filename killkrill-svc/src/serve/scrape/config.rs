//! `[scrape]` and `[[scrape.targets]]`: the typed configuration of the
//! scrapes and its checks, each error naming its key.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::Uri;
use killkrill_core::prometheus::is_valid_label_name;
use serde::{Deserialize, Serialize};

use super::deny::{self, DEFAULT_DENY_NETWORKS, Network};

/// `[scrape]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScrapeConfig {
    /// The targets (`[[scrape.targets]]`).
    pub targets: Vec<ScrapeTarget>,
    /// Largest response body, bytes; a larger one fails the scrape.
    pub max_body_bytes: usize,
    /// Most samples one scrape may hold (per target unless it sets its
    /// own); more fails the scrape.
    pub sample_limit: usize,
    /// How long a scrape waits for room in a full queue before its samples
    /// are dropped (and counted), ms.
    pub enqueue_wait_ms: u64,
    /// Processes sharing a database scrape on one of them at a time: the
    /// holder of the `scrape` lease in that database, renewed every third
    /// of this time and taken over by another receiver when it lapses
    /// (ms, 1,000..=600,000). See [`crate::serve::lease`].
    pub lease_ttl_ms: u64,
    /// How often receivers re-read the tenants' scrape targets from the
    /// stored settings (`/api/v1/settings`), ms; added targets start and
    /// removed ones stop within this time. Default 5000.
    pub settings_poll_ms: u64,
    /// Networks no scrape connects to, checked on the addresses a target's
    /// host resolves to (`"169.254.0.0/16"`, `"fe80::/10"`, a bare address).
    /// Default [`DEFAULT_DENY_NETWORKS`]: link-local and the cloud metadata
    /// services; `[]` allows every address.
    pub deny_networks: Vec<String>,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        ScrapeConfig {
            targets: Vec::new(),
            max_body_bytes: 16 << 20,
            sample_limit: 200_000,
            enqueue_wait_ms: 2_000,
            lease_ttl_ms: 15_000,
            settings_poll_ms: 5_000,
            deny_networks: DEFAULT_DENY_NETWORKS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}

/// One `[[scrape.targets]]` entry: a job and its URLs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeTarget {
    /// The `job` label.
    pub job: String,
    /// One URL (`url = "..."`), or several with `urls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// URLs scraped, each its own `instance`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Time between scrapes (`"15s"`, `"1m"`); default 1 minute.
    #[serde(default = "default_interval", with = "humantime_serde_str")]
    pub interval: Duration,
    /// Longest a scrape may take; default 10 s, at most `interval`.
    #[serde(default = "default_timeout", with = "humantime_serde_str")]
    pub timeout: Duration,
    /// Keep the target's own labels when they clash with `job`, `instance`
    /// or `labels` (else the target's are renamed `exported_<name>`).
    #[serde(default)]
    pub honor_labels: bool,
    /// Labels added to every sample of this job.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Overrides `scrape.sample_limit` for this job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_limit: Option<usize>,
}

fn default_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Durations as humantime strings (`"15s"`, `"500ms"`).
mod humantime_serde_str {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(s.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {s:?} ({e}): write it like \"15s\", \"500ms\" or \"1m\""
            ))
        })
    }
}

/// A URL to scrape, checked.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    pub(super) uri: Uri,
    /// `host:port` to connect to.
    pub(super) addr: String,
    /// The `instance` label: the URL's authority as written.
    pub(super) instance: String,
}

impl Endpoint {
    /// The host when it is an IP address literal (`127.0.0.1`, `[::1]`).
    fn literal_ip(&self) -> Option<std::net::IpAddr> {
        let host = self.uri.host()?;
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()
    }
}

pub(super) fn endpoint(url: &str) -> Result<Endpoint, String> {
    // Errors reach logs and the audit table: never with a password.
    let shown = killkrill_core::secret::url_without_password(url);
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("{shown:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(format!(
                "{shown:?}: https targets are not supported yet (only http://)"
            ));
        }
        _ => return Err(format!("{shown:?}: must start with http://")),
    }
    let auth = uri
        .authority()
        .ok_or_else(|| format!("{shown:?} has no host"))?;
    if auth.as_str().contains('@') {
        return Err(format!(
            "{shown:?}: credentials in the URL are not supported"
        ));
    }
    let port = auth.port_u16().unwrap_or(80);
    let host = auth.host();
    let addr = format!("{host}:{port}");
    Ok(Endpoint {
        instance: auth.as_str().to_owned(),
        addr,
        uri,
    })
}

impl ScrapeTarget {
    /// `url` and `urls`.
    pub fn all_urls(&self) -> impl Iterator<Item = &String> {
        self.url.iter().chain(self.urls.iter())
    }
}

impl ScrapeConfig {
    /// Checks every target; the error names the key
    /// (`scrape.targets[1].timeout`) and the problem.
    ///
    /// # Errors
    /// `(key, problem)`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let mut deny = Vec::with_capacity(self.deny_networks.len());
        for (i, n) in self.deny_networks.iter().enumerate() {
            deny.push(
                n.parse::<Network>()
                    .map_err(|p| (format!("scrape.deny_networks[{i}]"), p))?,
            );
        }
        if self.max_body_bytes == 0 {
            return Err((
                "scrape.max_body_bytes".into(),
                "must be greater than 0".into(),
            ));
        }
        if self.settings_poll_ms < 100 || self.settings_poll_ms > 3_600_000 {
            return Err((
                "scrape.settings_poll_ms".into(),
                "must be between 100 and 3600000".into(),
            ));
        }
        if self.sample_limit == 0 {
            return Err((
                "scrape.sample_limit".into(),
                "must be greater than 0".into(),
            ));
        }
        if !(1_000..=600_000).contains(&self.lease_ttl_ms) {
            return Err((
                "scrape.lease_ttl_ms".into(),
                "must be between 1000 and 600000".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, t) in self.targets.iter().enumerate() {
            let key = |k: &str| format!("scrape.targets[{i}].{k}");
            if t.job.trim().is_empty() {
                return Err((key("job"), "must not be empty".into()));
            }
            if t.url.is_none() && t.urls.is_empty() {
                return Err((key("urls"), "a target needs url or urls".into()));
            }
            for u in t.all_urls() {
                let field = if t.url.as_ref() == Some(u) {
                    "url"
                } else {
                    "urls"
                };
                let ep = endpoint(u).map_err(|p| (key(field), p))?;
                if let Some(n) = ep.literal_ip().and_then(|ip| deny::denied(&deny, ip)) {
                    return Err((
                        key(field),
                        format!(
                            "{u:?} is in scrape.deny_networks ({n}): the server never scrapes it"
                        ),
                    ));
                }
                if !seen.insert((t.job.clone(), u.clone())) {
                    return Err((
                        key(field),
                        format!("{u:?} is listed twice for job {:?}", t.job),
                    ));
                }
            }
            if t.interval < Duration::from_millis(100) {
                return Err((key("interval"), "must be at least 100ms".into()));
            }
            if t.timeout.is_zero() {
                return Err((key("timeout"), "must be greater than 0".into()));
            }
            if t.timeout > t.interval {
                return Err((
                    key("timeout"),
                    format!(
                        "{} is longer than the interval ({})",
                        humantime::format_duration(t.timeout),
                        humantime::format_duration(t.interval)
                    ),
                ));
            }
            if t.sample_limit == Some(0) {
                return Err((key("sample_limit"), "must be greater than 0".into()));
            }
            for (name, value) in &t.labels {
                let k = format!("scrape.targets[{i}].labels.{name}");
                if !is_valid_label_name(name) || name.starts_with("__") {
                    return Err((k, format!("{name:?} is not a valid label name")));
                }
                if name == "job" || name == "instance" {
                    return Err((
                        k,
                        "set by the scraper (job from `job`, instance from the URL)".into(),
                    ));
                }
                if value.is_empty() {
                    return Err((k, "empty value".into()));
                }
            }
        }
        Ok(())
    }
}
