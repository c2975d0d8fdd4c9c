//! Licensing: which enterprise features (SSO) this installation may use.
//!
//! Only when `RELEASE_MODE=true`: `LICENSE_KEY` (format
//! `PENG-XXXX-XXXX-XXXX-XXXX-XXXX`, checked locally first) is validated
//! against `LICENSE_SERVER_URL` with three JSON calls:
//!
//! - `POST /api/v2/validate` `{license_key, product, version, machine_id}`
//!   → `{valid, expires_at, customer, message?}`;
//! - `POST /api/v2/features` `{license_key, product, version, machine_id}`
//!   → `{features: ["sso_oidc", ...]}` (names, or `{name, enabled}` objects);
//! - `POST /api/v2/keepalive` every `license.keepalive_secs` with the usage
//!   counts (records ingested, metric samples stored, users, tenants).
//!
//! The last good answer is kept in memory and in `license-cache.json` in the
//! data directory (0600, bound to the key by its SHA-256), and used for
//! `license.grace_secs` when the server cannot be reached — also across a
//! restart. Nothing here ever stops ingestion or queries: a missing,
//! malformed, invalid, expired or unverifiable license turns the enterprise
//! features off, logs a warning, and shows in `GET /api/v1/license`.
//!
//! In development (`RELEASE_MODE` unset or false) no call is made and every
//! feature is on.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use killkrill_core::pipeline::Shutdown;
use killkrill_store::auth::AuthStore;
use metrics::counter;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::httpc::{HttpClient, HttpError};

/// The OpenID Connect single sign-on feature.
pub const FEATURE_SSO_OIDC: &str = "sso_oidc";
/// Counter of license checks, by call and result.
pub const LICENSE_CHECKS: &str = "killkrill_license_checks_total";
/// The cache file's name in the data directory.
pub const CACHE_FILE: &str = "license-cache.json";
/// The instance id file's name in the data directory.
pub const INSTANCE_FILE: &str = "instance-id";

/// `[license]`: how the license is checked (the key and the server come
/// from the environment).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LicenseConfig {
    /// Product name sent to the server.
    pub product: String,
    /// Timeout of one call to the server, seconds.
    pub timeout_secs: u64,
    /// Interval between keepalives (usage reports), seconds. A check that
    /// failed is retried at this interval too.
    pub keepalive_secs: u64,
    /// Interval between full re-validations (validate + features), seconds.
    pub revalidate_secs: u64,
    /// How long the last good answer is used while the server cannot be
    /// reached, seconds.
    pub grace_secs: u64,
    /// How long start-up waits for the first answer before going on with
    /// the cached one (or none), milliseconds.
    pub startup_wait_ms: u64,
    /// `RELEASE_MODE=true` (environment).
    #[serde(skip)]
    pub release_mode: bool,
    /// `LICENSE_KEY` (environment; never printed whole).
    #[serde(skip)]
    pub key: Option<String>,
    /// `LICENSE_SERVER_URL` (environment).
    #[serde(skip)]
    pub server_url: Option<String>,
}

impl std::fmt::Debug for LicenseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // By hand, to keep the whole license key out of logs; every field is
        // named, so a new one cannot be forgotten.
        let LicenseConfig {
            product,
            timeout_secs,
            keepalive_secs,
            revalidate_secs,
            grace_secs,
            startup_wait_ms,
            release_mode,
            key,
            server_url,
        } = self;
        f.debug_struct("LicenseConfig")
            .field("product", product)
            .field("timeout_secs", timeout_secs)
            .field("keepalive_secs", keepalive_secs)
            .field("revalidate_secs", revalidate_secs)
            .field("grace_secs", grace_secs)
            .field("startup_wait_ms", startup_wait_ms)
            .field("release_mode", release_mode)
            .field("key", &key.as_deref().map(masked))
            .field(
                "server_url",
                &killkrill_core::secret::UrlDebug(server_url.as_deref()),
            )
            .finish()
    }
}

impl Default for LicenseConfig {
    fn default() -> Self {
        LicenseConfig {
            product: "killkrill".into(),
            timeout_secs: 10,
            keepalive_secs: 3600,
            revalidate_secs: 6 * 3600,
            grace_secs: 7 * 24 * 3600,
            startup_wait_ms: 3000,
            release_mode: false,
            key: None,
            server_url: None,
        }
    }
}

impl LicenseConfig {
    /// Reads `RELEASE_MODE`, `LICENSE_KEY` and `LICENSE_SERVER_URL`.
    pub fn read_env(&mut self, env: &[(String, String)]) {
        for (k, v) in env {
            match k.as_str() {
                "RELEASE_MODE" => {
                    self.release_mode =
                        matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes");
                }
                "LICENSE_KEY" if !v.trim().is_empty() => self.key = Some(v.trim().to_owned()),
                "LICENSE_SERVER_URL" if !v.trim().is_empty() => {
                    self.server_url = Some(v.trim().trim_end_matches('/').to_owned());
                }
                _ => {}
            }
        }
    }

    /// Checks the settings (the key's format is not an error here: a bad
    /// key turns the features off, it does not stop the service).
    ///
    /// # Errors
    /// `(key, problem)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.timeout_secs == 0 || self.timeout_secs > 300 {
            return Err(("license.timeout_secs", "must be between 1 and 300".into()));
        }
        if self.keepalive_secs == 0 || self.revalidate_secs == 0 {
            return Err((
                "license.keepalive_secs",
                "keepalive_secs and revalidate_secs must be greater than 0".into(),
            ));
        }
        if self.product.is_empty() || self.product.len() > 64 {
            return Err(("license.product", "1 to 64 characters".into()));
        }
        if self.startup_wait_ms > 60_000 {
            return Err(("license.startup_wait_ms", "at most 60000".into()));
        }
        Ok(())
    }
}

/// Checks the shape of a license key: `PENG-XXXX-XXXX-XXXX-XXXX-XXXX`,
/// six groups separated by `-`, the first `PENG`, the others four
/// characters `A`-`Z` or `0`-`9`.
///
/// # Errors
/// What is wrong, without repeating the key.
pub fn check_key_format(key: &str) -> Result<(), String> {
    const WANT: &str = "expected PENG-XXXX-XXXX-XXXX-XXXX-XXXX (six groups separated by '-': PENG, then five groups of four characters A-Z or 0-9)";
    let groups: Vec<&str> = key.split('-').collect();
    if groups.len() != 6 {
        return Err(format!(
            "LICENSE_KEY is malformed: {} groups, {WANT}",
            groups.len()
        ));
    }
    if groups[0] != "PENG" {
        return Err(format!(
            "LICENSE_KEY is malformed: it must start with PENG-; {WANT}"
        ));
    }
    for (i, g) in groups.iter().enumerate().skip(1) {
        if g.len() != 4
            || !g
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(format!(
                "LICENSE_KEY is malformed: group {} is not four characters A-Z or 0-9; {WANT}",
                i + 1
            ));
        }
    }
    Ok(())
}

/// The key as it may be shown: `PENG-****-****-****-****-ABCD`.
pub fn masked(key: &str) -> String {
    match key.rsplit_once('-') {
        Some((_, last)) if check_key_format(key).is_ok() => {
            format!("PENG-****-****-****-****-{last}")
        }
        _ => "(malformed)".into(),
    }
}

/// Where the license stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// `RELEASE_MODE` is off: every feature on, no call made.
    Development,
    /// Release mode without `LICENSE_KEY`.
    Missing,
    /// `LICENSE_KEY` does not have the expected shape (no call made).
    Malformed,
    /// Release mode without `LICENSE_SERVER_URL`.
    Unconfigured,
    /// Before the first answer, without a cached one.
    Pending,
    /// The server said valid.
    Valid,
    /// The server cannot be reached; the last good answer is in use until
    /// its grace period ends.
    Grace,
    /// The server said invalid.
    Invalid,
    /// The license (or the cached answer's grace period) ran out.
    Expired,
    /// The server cannot be reached and there is no usable cached answer.
    Unreachable,
}

/// What `GET /api/v1/license` shows.
#[derive(Debug, Clone, Serialize)]
pub struct LicenseView {
    /// Where it stands.
    pub status: Status,
    /// A sentence for operators.
    pub message: String,
    /// The key, masked.
    pub key: Option<String>,
    /// The server.
    pub server: Option<String>,
    /// The licensee.
    pub customer: Option<String>,
    /// End of the license (seconds since the epoch).
    pub expires_at: Option<i64>,
    /// Enabled features (every known one in development).
    pub features: Vec<String>,
    /// When the server last said valid (seconds since the epoch).
    pub validated_at: Option<i64>,
    /// Until when the last good answer is used without the server.
    pub grace_until: Option<i64>,
    /// Where the features come from: `server`, `cache`, `development`, `none`.
    pub source: &'static str,
    /// The last failure talking to the server.
    pub last_error: Option<String>,
    /// When the last keepalive was accepted (seconds since the epoch).
    pub last_keepalive: Option<i64>,
    /// This installation's id, sent to the server.
    pub machine_id: String,
}

/// A good answer, as cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Good {
    key_sha256: String,
    customer: Option<String>,
    expires_at: Option<i64>,
    features: BTreeSet<String>,
    validated_at: i64,
}

#[derive(Debug)]
struct State {
    status: Status,
    message: String,
    good: Option<Good>,
    source: &'static str,
    last_error: Option<String>,
    last_keepalive: Option<i64>,
}

/// Usage reported with each keepalive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Log records and metric batches' events accepted into the queue.
    pub records_ingested: u64,
    /// Metric samples stored.
    pub samples: u64,
    /// Users.
    pub users: u64,
    /// Tenants.
    pub tenants: u64,
}

/// The license of this process.
pub struct Licensing {
    cfg: LicenseConfig,
    machine_id: String,
    cache_path: PathBuf,
    state: RwLock<State>,
    client: Option<HttpClient>,
    checked: watch::Sender<bool>,
}

impl std::fmt::Debug for Licensing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Licensing")
            .field("status", &self.view().status)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> i64 {
    crate::auth::now_nanos() / 1_000_000_000
}

fn key_digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl Licensing {
    /// Reads the cached answer and the instance id from `data_dir`; makes no
    /// call (see [`Licensing::run`]).
    ///
    /// # Errors
    /// When the instance id file cannot be written or the HTTP client built.
    pub fn new(cfg: &LicenseConfig, data_dir: &Path) -> Result<Self, String> {
        cfg.validate().map_err(|(k, p)| format!("{k}: {p}"))?;
        let (checked, _) = watch::channel(false);
        let cache_path = data_dir.join(CACHE_FILE);
        let mut st = State {
            status: Status::Development,
            message: "development mode (RELEASE_MODE is not true): every feature is on and no license server is called".into(),
            good: None,
            source: "development",
            last_error: None,
            last_keepalive: None,
        };
        if !cfg.release_mode {
            return Ok(Licensing {
                cfg: cfg.clone(),
                machine_id: String::new(),
                cache_path,
                state: RwLock::new(st),
                client: None,
                checked,
            });
        }
        let machine_id = instance_id(data_dir)?;
        st.source = "none";
        match (&cfg.key, &cfg.server_url) {
            (None, _) => {
                st.status = Status::Missing;
                st.message = "LICENSE_KEY is not set: enterprise features (SSO) are off; ingestion and queries are not affected".into();
            }
            (Some(k), _) if check_key_format(k).is_err() => {
                st.status = Status::Malformed;
                st.message = format!(
                    "{}: enterprise features (SSO) are off; ingestion and queries are not affected",
                    check_key_format(k).err().unwrap_or_default()
                );
            }
            (Some(_), None) => {
                st.status = Status::Unconfigured;
                st.message = "LICENSE_SERVER_URL is not set: the license cannot be checked, enterprise features (SSO) are off".into();
            }
            (Some(k), Some(url)) => {
                crate::httpc::check_url(url).map_err(|e| format!("LICENSE_SERVER_URL: {e}"))?;
                st.status = Status::Pending;
                st.message = "waiting for the license server's first answer".into();
                if let Some(g) = read_cache(&cache_path, k, cfg.grace_secs) {
                    st.status = Status::Grace;
                    st.message = "using the cached license answer until the server answers".into();
                    st.good = Some(g);
                    st.source = "cache";
                }
            }
        }
        let client = HttpClient::new(Duration::from_secs(cfg.timeout_secs))?;
        let l = Licensing {
            cfg: cfg.clone(),
            machine_id,
            cache_path,
            state: RwLock::new(st),
            client: Some(client),
            checked,
        };
        l.log_state();
        Ok(l)
    }

    /// Whether release mode is on (checks are made).
    pub fn release_mode(&self) -> bool {
        self.cfg.release_mode
    }

    /// Whether `feature` may be used now.
    pub fn allows(&self, feature: &str) -> bool {
        if !self.cfg.release_mode {
            return true;
        }
        let st = self.read();
        if !matches!(st.status, Status::Valid | Status::Grace) {
            return false;
        }
        let now = now_secs();
        st.good.as_ref().is_some_and(|g| {
            g.features.contains(feature)
                && g.expires_at.is_none_or(|e| e > now)
                && (st.status == Status::Valid
                    || g.validated_at + i64::try_from(self.cfg.grace_secs).unwrap_or(i64::MAX / 2)
                        > now)
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What the admin route shows.
    pub fn view(&self) -> LicenseView {
        let st = self.read();
        let grace = i64::try_from(self.cfg.grace_secs).unwrap_or(i64::MAX / 2);
        let features = if self.cfg.release_mode {
            st.good
                .as_ref()
                .filter(|_| matches!(st.status, Status::Valid | Status::Grace))
                .map(|g| g.features.iter().cloned().collect())
                .unwrap_or_default()
        } else {
            vec![FEATURE_SSO_OIDC.to_owned()]
        };
        LicenseView {
            status: st.status,
            message: st.message.clone(),
            key: self.cfg.key.as_deref().map(masked),
            server: self.cfg.server_url.clone(),
            customer: st.good.as_ref().and_then(|g| g.customer.clone()),
            expires_at: st.good.as_ref().and_then(|g| g.expires_at),
            features,
            validated_at: st.good.as_ref().map(|g| g.validated_at),
            grace_until: st
                .good
                .as_ref()
                .filter(|_| st.status == Status::Grace)
                .map(|g| g.validated_at.saturating_add(grace)),
            source: st.source,
            last_error: st.last_error.clone(),
            last_keepalive: st.last_keepalive,
            machine_id: self.machine_id.clone(),
        }
    }

    /// Waits until the first check has finished, at most
    /// `license.startup_wait_ms` (nothing to wait for outside release mode
    /// or without a key and a server).
    pub async fn wait_first_check(&self) {
        if self.client.is_none() || !matches!(self.read().status, Status::Pending | Status::Grace) {
            return;
        }
        let mut rx = self.checked.subscribe();
        let _ = tokio::time::timeout(
            Duration::from_millis(self.cfg.startup_wait_ms),
            rx.wait_for(|v| *v),
        )
        .await;
    }

    fn log_state(&self) {
        let st = self.read();
        match st.status {
            Status::Development => tracing::info!("license: {}", st.message),
            Status::Valid => tracing::info!(
                customer = st.good.as_ref().and_then(|g| g.customer.as_deref()).unwrap_or(""),
                features = ?st.good.as_ref().map(|g| &g.features),
                "license: valid"
            ),
            Status::Pending => {}
            _ => {
                tracing::warn!(status = ?st.status, error = st.last_error.as_deref().unwrap_or(""), "license: {}", st.message)
            }
        }
    }

    /// Checks the license and sends keepalives until `shutdown`; returns at
    /// once outside release mode or when the key or server is missing.
    pub async fn run(self: Arc<Self>, usage: UsageSource, mut shutdown: Shutdown) {
        let (Some(client), Some(key), Some(url)) = (
            self.client.clone(),
            self.cfg.key.clone(),
            self.cfg.server_url.clone(),
        ) else {
            self.checked.send_replace(true);
            return;
        };
        if !matches!(self.read().status, Status::Pending | Status::Grace) {
            self.checked.send_replace(true);
            return;
        }
        let keepalive = Duration::from_secs(self.cfg.keepalive_secs);
        let revalidate = Duration::from_secs(self.cfg.revalidate_secs);
        let mut last_check = tokio::time::Instant::now();
        self.check(&client, &url, &key).await;
        self.checked.send_replace(true);
        loop {
            tokio::select! {
                () = shutdown.requested() => return,
                () = tokio::time::sleep(keepalive) => {}
            }
            let settled = self.read().status == Status::Valid;
            if !settled || last_check.elapsed() >= revalidate {
                last_check = tokio::time::Instant::now();
                self.check(&client, &url, &key).await;
            }
            // An invalid license is not reported on: there is no licensee.
            if matches!(self.read().status, Status::Valid | Status::Grace) {
                let u = usage.collect().await;
                self.keepalive(&client, &url, &key, u).await;
            }
        }
    }

    fn body(&self, key: &str) -> serde_json::Value {
        serde_json::json!({
            "license_key": key,
            "product": self.cfg.product,
            "version": env!("CARGO_PKG_VERSION"),
            "machine_id": self.machine_id,
        })
    }

    /// One validate + features exchange, and the state it leads to.
    async fn check(&self, client: &HttpClient, url: &str, key: &str) {
        let r = self.fetch(client, url, key).await;
        let now = now_secs();
        {
            let mut st = self.write();
            match r {
                Ok(Answer::Good(g)) => {
                    if g.expires_at.is_some_and(|e| e <= now) {
                        st.status = Status::Expired;
                        st.message = "the license has expired: enterprise features (SSO) are off; ingestion and queries are not affected".into();
                        st.good = None;
                        st.source = "none";
                        let _ = std::fs::remove_file(&self.cache_path);
                    } else {
                        if let Ok(text) = serde_json::to_string_pretty(&g)
                            && let Err(e) = crate::auth::write_private(&self.cache_path, &text)
                        {
                            tracing::warn!(error = %e, "license: cannot write the cache");
                        }
                        st.status = Status::Valid;
                        st.message = "the license server says the license is valid".into();
                        st.good = Some(g);
                        st.source = "server";
                        st.last_error = None;
                    }
                    counter!(LICENSE_CHECKS, "result" => "valid").increment(1);
                }
                Ok(Answer::Invalid(why)) => {
                    st.status = Status::Invalid;
                    st.message = format!(
                        "the license server says the license is invalid ({why}): enterprise features (SSO) are off; ingestion and queries are not affected"
                    );
                    st.good = None;
                    st.source = "none";
                    st.last_error = None;
                    let _ = std::fs::remove_file(&self.cache_path);
                    counter!(LICENSE_CHECKS, "result" => "invalid").increment(1);
                }
                Err(e) => {
                    counter!(LICENSE_CHECKS, "result" => "unreachable").increment(1);
                    st.last_error = Some(e.clone());
                    let grace = i64::try_from(self.cfg.grace_secs).unwrap_or(i64::MAX / 2);
                    let usable = st.good.as_ref().is_some_and(|g| {
                        g.validated_at.saturating_add(grace) > now
                            && g.expires_at.is_none_or(|x| x > now)
                    });
                    if usable {
                        st.status = Status::Grace;
                        st.message = "the license server cannot be reached: using the last good answer until its grace period ends".into();
                    } else if st.good.is_some() {
                        st.status = Status::Expired;
                        st.message = "the license server has not been reached within the grace period: enterprise features (SSO) are off".into();
                        st.good = None;
                        st.source = "none";
                    } else {
                        st.status = Status::Unreachable;
                        st.message = "the license server cannot be reached and no earlier answer is cached: enterprise features (SSO) are off; ingestion and queries are not affected".into();
                        st.source = "none";
                    }
                }
            }
        }
        self.log_state();
    }

    async fn fetch(&self, client: &HttpClient, url: &str, key: &str) -> Result<Answer, String> {
        let body = self.body(key);
        let r = client
            .post_json(&format!("{url}/api/v2/validate"), &body)
            .await
            .map_err(|e| describe(&e, "validate"))?;
        let v: Option<serde_json::Value> = serde_json::from_slice(&r.body).ok();
        let valid = v
            .as_ref()
            .and_then(|v| v.get("valid"))
            .and_then(serde_json::Value::as_bool);
        match (r.status, valid) {
            (s, Some(false)) if s < 500 => {
                let why = v
                    .as_ref()
                    .and_then(|v| v.get("message").or_else(|| v.get("error")))
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("no reason given");
                return Ok(Answer::Invalid(why.chars().take(200).collect()));
            }
            (200..=299, Some(true)) => {}
            (s @ 400..=499, None) => return Ok(Answer::Invalid(format!("validate answered {s}"))),
            (s, _) => return Err(format!("validate answered {s} without a verdict")),
        }
        let v = v.unwrap_or_default();
        let customer = v.get("customer").and_then(|c| {
            c.as_str()
                .map(str::to_owned)
                .or_else(|| c.get("name").and_then(|n| n.as_str()).map(str::to_owned))
        });
        let expires_at = match v.get("expires_at").or_else(|| v.get("expiry")) {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Number(n)) => n.as_i64(),
            Some(serde_json::Value::String(s)) => Some(
                humantime::parse_rfc3339_weak(s)
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .and_then(|d| i64::try_from(d.as_secs()).ok())
                    .ok_or_else(|| format!("validate: unreadable expires_at {s:?}"))?,
            ),
            Some(_) => return Err("validate: unreadable expires_at".into()),
        };
        let r = client
            .post_json(&format!("{url}/api/v2/features"), &body)
            .await
            .map_err(|e| describe(&e, "features"))?;
        if !r.ok() {
            return Err(format!("features answered {}", r.status));
        }
        let f: serde_json::Value = r.json().map_err(|e| format!("features: {e}"))?;
        let list = f
            .get("features")
            .and_then(serde_json::Value::as_array)
            .ok_or("features: no \"features\" list in the answer")?;
        let features = list
            .iter()
            .take(256)
            .filter_map(|x| match x {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Object(o) => {
                    let on = o
                        .get("enabled")
                        .and_then(serde_json::Value::as_bool)
                        .unwrap_or(true);
                    o.get("name")
                        .and_then(|n| n.as_str())
                        .filter(|_| on)
                        .map(str::to_owned)
                }
                _ => None,
            })
            .filter(|s| s.len() <= 64)
            .collect();
        Ok(Answer::Good(Good {
            key_sha256: key_digest(key),
            customer,
            expires_at,
            features,
            validated_at: now_secs(),
        }))
    }

    async fn keepalive(&self, client: &HttpClient, url: &str, key: &str, u: Usage) {
        let mut body = self.body(key);
        body["usage"] = serde_json::to_value(u).unwrap_or_default();
        match client
            .post_json(&format!("{url}/api/v2/keepalive"), &body)
            .await
        {
            Ok(r) if r.ok() => {
                counter!(LICENSE_CHECKS, "result" => "keepalive").increment(1);
                self.write().last_keepalive = Some(now_secs());
            }
            Ok(r) => {
                counter!(LICENSE_CHECKS, "result" => "keepalive_refused").increment(1);
                tracing::warn!(status = r.status, "license: keepalive refused");
                self.write().last_error = Some(format!("keepalive answered {}", r.status));
            }
            Err(e) => {
                counter!(LICENSE_CHECKS, "result" => "keepalive_unreachable").increment(1);
                let e = describe(&e, "keepalive");
                tracing::warn!(error = %e, "license: keepalive failed");
                self.write().last_error = Some(e);
            }
        }
    }
}

enum Answer {
    Good(Good),
    Invalid(String),
}

fn describe(e: &HttpError, call: &str) -> String {
    format!("{call}: {e}")
}

fn read_cache(path: &Path, key: &str, grace_secs: u64) -> Option<Good> {
    let text = std::fs::read_to_string(path).ok()?;
    let g: Good = match serde_json::from_str(&text) {
        Ok(g) => g,
        Err(e) => {
            // Treated as no cache (the next good answer rewrites it).
            tracing::warn!(path = %path.display(), error = %e, "license cache unreadable: ignored");
            return None;
        }
    };
    let now = now_secs();
    let fresh = g
        .validated_at
        .saturating_add(i64::try_from(grace_secs).unwrap_or(i64::MAX / 2))
        > now;
    (g.key_sha256 == key_digest(key) && fresh && g.expires_at.is_none_or(|e| e > now)).then_some(g)
}

/// This installation's id: random, kept in `instance-id` in the data
/// directory.
fn instance_id(data_dir: &Path) -> Result<String, String> {
    let path = data_dir.join(INSTANCE_FILE);
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim();
        if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(s.to_owned());
        }
    }
    std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let id = hex::encode(rand::random::<[u8; 16]>());
    crate::auth::write_private(&path, &format!("{id}\n"))?;
    Ok(id)
}

/// Where the keepalive's usage counts come from: the process's own
/// counters and the user and tenant tables.
#[derive(Clone)]
pub struct UsageSource {
    /// The self-metrics recorder.
    pub metrics: Option<PrometheusHandle>,
    /// The users and tenants.
    pub store: AuthStore,
}

impl UsageSource {
    /// The counts now (a count that cannot be read is 0).
    pub async fn collect(&self) -> Usage {
        let text = self
            .metrics
            .as_ref()
            .map(PrometheusHandle::render)
            .unwrap_or_default();
        Usage {
            records_ingested: sum_counter(
                &text,
                killkrill_core::pipeline::self_metrics::ENQUEUED_EVENTS,
            ),
            samples: sum_counter(&text, "killkrill_store_metric_samples_total"),
            users: self.store.user_count().await.unwrap_or(0),
            tenants: self
                .store
                .tenants()
                .await
                .map_or(0, |t| u64::try_from(t.len()).unwrap_or(0)),
        }
    }
}

/// The sum over every label set of counter `name` in a Prometheus text
/// exposition.
pub fn sum_counter(text: &str, name: &str) -> u64 {
    let mut total = 0.0f64;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        if let Some(v) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            total += v;
        }
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let t = total.max(0.0) as u64;
    t
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn key_format() {
        assert!(check_key_format("PENG-AB12-CD34-EF56-GH78-ABCD").is_ok());
        for (bad, says) in [
            ("PENG-AB12-CD34-EF56-GH78", "5 groups"),
            ("FOO1-AB12-CD34-EF56-GH78-ABCD", "start with PENG"),
            ("PENG-ab12-CD34-EF56-GH78-ABCD", "group 2"),
            ("PENG-AB12-CD34-EF56-GH78-ABCDE", "group 6"),
            ("PENG-AB12-CD34-EF56-GH7!-ABCD", "group 5"),
            ("", "1 groups"),
        ] {
            let e = check_key_format(bad).unwrap_err();
            assert!(e.contains(says) && e.contains("LICENSE_KEY"), "{bad}: {e}");
            assert!(
                !e.contains(bad) || bad.is_empty(),
                "the key is not repeated"
            );
        }
        assert_eq!(
            masked("PENG-AB12-CD34-EF56-GH78-ABCD"),
            "PENG-****-****-****-****-ABCD"
        );
        assert_eq!(masked("secret"), "(malformed)");
    }

    #[test]
    fn counters_are_summed() {
        let t = "# TYPE x counter\nkillkrill_queue_enqueued_events_total{queue=\"a\"} 5\nkillkrill_queue_enqueued_events_total{queue=\"b\"} 7\nkillkrill_queue_enqueued_events_total_other 100\nkillkrill_store_metric_samples_total 3\n";
        assert_eq!(sum_counter(t, "killkrill_queue_enqueued_events_total"), 12);
        assert_eq!(sum_counter(t, "killkrill_store_metric_samples_total"), 3);
        assert_eq!(sum_counter(t, "missing"), 0);
    }

    #[test]
    fn development_allows_everything_without_a_client() {
        let dir = tempfile::tempdir().unwrap();
        let l = Licensing::new(&LicenseConfig::default(), dir.path()).unwrap();
        assert!(l.allows(FEATURE_SSO_OIDC));
        assert_eq!(l.view().status, Status::Development);
        assert!(l.client.is_none());
        assert!(!dir.path().join(INSTANCE_FILE).exists());
    }

    #[test]
    fn release_without_a_good_key_allows_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = LicenseConfig {
            release_mode: true,
            ..LicenseConfig::default()
        };
        let l = Licensing::new(&c, dir.path()).unwrap();
        assert_eq!(l.view().status, Status::Missing);
        assert!(!l.allows(FEATURE_SSO_OIDC));
        c.key = Some("PENG-1".into());
        c.server_url = Some("http://127.0.0.1:1".into());
        let l = Licensing::new(&c, dir.path()).unwrap();
        let v = l.view();
        assert_eq!(v.status, Status::Malformed);
        assert!(v.message.contains("malformed"), "{}", v.message);
        assert!(!l.allows(FEATURE_SSO_OIDC));
    }
}
