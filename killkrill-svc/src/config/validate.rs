//! Checks of a merged configuration, each error naming its key.

use std::collections::BTreeMap;

use super::QueueKind;
use super::ServeConfig;
use super::load::{ConfigError, Origin, origin_of};

impl ServeConfig {
    pub(super) fn validate(&self, origins: &BTreeMap<String, Origin>) -> Result<(), ConfigError> {
        let err = |key: &str, problem: String| ConfigError {
            key: key.to_owned(),
            origin: origin_of(origins, key),
            problem,
        };
        if self.data_dir.as_os_str().is_empty() {
            return Err(err("data_dir", "must not be empty".into()));
        }
        if killkrill_core::event::Tenant::new(&self.tenant).is_err() {
            return Err(err(
                "tenant",
                format!("invalid tenant name {:?}", self.tenant),
            ));
        }
        match (&self.tls.cert, &self.tls.key) {
            (Some(_), None) => {
                return Err(err(
                    "tls.key",
                    "missing: tls.cert is set, so tls.key must be too".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(err(
                    "tls.cert",
                    "missing: tls.key is set, so tls.cert must be too".into(),
                ));
            }
            (None, None) => {
                if self.syslog_tls.get().is_some() && origins.contains_key("syslog_tls") {
                    return Err(err(
                        "syslog_tls",
                        "a TLS listener needs tls.cert and tls.key (--tls-cert, --tls-key)".into(),
                    ));
                }
                if self.tls.client_ca.is_some() {
                    return Err(err(
                        "tls.client_ca",
                        "set without tls.cert and tls.key".into(),
                    ));
                }
            }
            (Some(_), Some(_)) => {}
        }
        for (key, file) in [
            ("tls.cert", &self.tls.cert),
            ("tls.key", &self.tls.key),
            ("tls.client_ca", &self.tls.client_ca),
        ] {
            if let Some(f) = file
                && let Err(e) = std::fs::metadata(f)
            {
                return Err(err(key, format!("cannot read {}: {e}", f.display())));
            }
        }
        self.validate_http_tls(origins)?;
        for (key, v) in [
            ("tls.reload_interval_ms", self.tls.reload_interval_ms),
            (
                "http_tls.reload_interval_ms",
                self.http_tls.reload_interval_ms,
            ),
        ] {
            if v != 0 && !(100..=86_400_000).contains(&v) {
                return Err(err(
                    key,
                    format!("{v} is outside 100..=86400000 (ms); 0 turns reloading off"),
                ));
            }
        }
        let positive: [(&str, u64); 27] = [
            ("query.max_range_secs", self.query.max_range_secs),
            ("query.default_limit", self.query.default_limit as u64),
            ("query.max_limit", self.query.max_limit as u64),
            ("query.max_series", self.query.max_series as u64),
            ("query.max_points", self.query.max_points as u64),
            ("query.max_buckets", self.query.max_buckets as u64),
            ("query.timeout_ms", self.query.timeout_ms),
            ("query.max_tails", self.query.max_tails as u64),
            (
                "query.max_tails_per_tenant",
                self.query.max_tails_per_tenant as u64,
            ),
            (
                "query.tail_late_window_records",
                self.query.tail_late_window_records as u64,
            ),
            (
                "query.tail_buffer_events",
                self.query.tail_buffer_events as u64,
            ),
            ("query.tail_poll_ms", self.query.tail_poll_ms),
            // 0 would leave no time between a record's event time and its
            // commit: almost nothing would be tailed.
            ("query.tail_grace_secs", self.query.tail_grace_secs),
            ("query.tail_heartbeat_secs", self.query.tail_heartbeat_secs),
            (
                "http_server.header_read_timeout_ms",
                self.http_server.header_read_timeout_ms,
            ),
            (
                "http_server.max_connections",
                self.http_server.max_connections as u64,
            ),
            (
                "http_server.tls_handshake_timeout_ms",
                self.http_server.tls_handshake_timeout_ms,
            ),
            (
                "http_ingest.max_body_bytes",
                self.http_ingest.max_body_bytes as u64,
            ),
            (
                "http_ingest.max_output_bytes",
                self.http_ingest.output_budget() as u64,
            ),
            ("syslog.max_frame_bytes", self.syslog.max_frame_bytes as u64),
            ("syslog.max_connections", self.syslog.max_connections as u64),
            (
                "syslog.max_connections_per_ip",
                self.syslog.max_connections_per_ip as u64,
            ),
            ("syslog.idle_timeout_secs", self.syslog.idle_timeout_secs),
            (
                "syslog.batch_max_events",
                self.syslog.batch_max_events as u64,
            ),
            ("syslog.batch_linger_ms", self.syslog.batch_linger_ms),
            ("queue.max_events", self.queue.max_events as u64),
            ("queue.max_bytes", self.queue.max_bytes as u64),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(err(key, "must be greater than 0".into()));
            }
        }
        self.http_server.validate().map_err(|(k, p)| err(k, p))?;
        // A request accepted with 2xx is enqueued as one batch, and the
        // worker decodes it under the queue codec's cap: a budget above that
        // cap would acknowledge batches that can only be dead-lettered.
        let codec_cap = killkrill_core::pipeline::BatchCodec::DEFAULT_MAX_DECODED_BYTES;
        if self.http_ingest.output_budget() > codec_cap {
            let key = if self.http_ingest.max_output_bytes.is_some() {
                "http_ingest.max_output_bytes"
            } else {
                "http_ingest.max_body_bytes"
            };
            return Err(err(
                key,
                format!(
                    "the decoded-output budget of a request ({} bytes; unset \
                     http_ingest.max_output_bytes means 16 x max_body_bytes) is above the \
                     queue's cap of {codec_cap} bytes on a decoded batch: set \
                     http_ingest.max_output_bytes to at most {codec_cap}",
                    self.http_ingest.output_budget()
                ),
            ));
        }
        if self.query.max_limit > killkrill_core::logquery::MAX_PAGE_SIZE {
            return Err(err(
                "query.max_limit",
                format!(
                    "{} is above the engine's page cap of {}",
                    self.query.max_limit,
                    killkrill_core::logquery::MAX_PAGE_SIZE
                ),
            ));
        }
        if self.query.default_limit > self.query.max_limit {
            return Err(err(
                "query.default_limit",
                format!("{} is more than query.max_limit", self.query.default_limit),
            ));
        }
        if self.query.max_buckets > killkrill_core::logquery::MAX_BUCKETS {
            return Err(err(
                "query.max_buckets",
                format!(
                    "{} is above the engine's cap of {}",
                    self.query.max_buckets,
                    killkrill_core::logquery::MAX_BUCKETS
                ),
            ));
        }
        if self.query.tail_late_window_records > 1_000_000 {
            return Err(err(
                "query.tail_late_window_records",
                format!(
                    "{} is above 1000000 (each key costs memory in every tail)",
                    self.query.tail_late_window_records
                ),
            ));
        }
        if self.query.max_range_secs > 100 * 365 * 86_400 {
            return Err(err("query.max_range_secs", "is above 100 years".into()));
        }
        if self.syslog.max_frame_bytes > 16 << 20 {
            return Err(err(
                "syslog.max_frame_bytes",
                format!(
                    "{} is above the limit of 16 MiB",
                    self.syslog.max_frame_bytes
                ),
            ));
        }
        if self.syslog.batch_max_events > self.queue.max_events {
            return Err(err(
                "syslog.batch_max_events",
                format!(
                    "{} is more than queue.max_events ({}): such a batch could never be enqueued",
                    self.syslog.batch_max_events, self.queue.max_events
                ),
            ));
        }
        if self.queue.kind == QueueKind::Redis && self.queue.redis.url.is_none() {
            return Err(err(
                "queue.redis.url",
                "missing: the redis queue needs a URL (set REDIS_URL or queue.redis.url)".into(),
            ));
        }
        self.queue
            .validate_tenant_groups()
            .map_err(|(key, problem)| err(key, problem))?;
        if let Err(e) = self.queue.to_store(&self.data_dir).validate() {
            let (key, problem) = match e {
                killkrill_store::queue::QueueConfigError::Invalid { key, message } => {
                    (self.queue.key_of(key), message)
                }
                other => ("queue".to_owned(), other.to_string()),
            };
            return Err(err(&key, problem));
        }
        if self.maintenance.retention_days > 100 * 365 {
            return Err(err(
                "maintenance.retention_days",
                "must be at most 36500 (0 keeps everything)".into(),
            ));
        }
        if let Err(e) = self.build_transforms() {
            return Err(ConfigError {
                origin: origin_of(origins, "transforms"),
                key: e.key,
                problem: e.message,
            });
        }
        if let Err((key, problem)) = self.auth.validate() {
            return Err(err(key, problem));
        }
        if let Err((key, problem)) = self.license.validate() {
            return Err(err(key, problem));
        }
        if let Err((key, problem)) = self.oidc.validate() {
            return Err(err(key, problem));
        }
        if let Err((key, problem)) = self.smtp.validate() {
            return Err(err(key, problem));
        }
        if self.rollups.enabled
            && let Err(e) = self.rollups.aggregate.build()
        {
            let key = format!("rollups.aggregate.{}", e.key);
            return Err(ConfigError {
                origin: origin_of(origins, &key),
                key,
                problem: e.message,
            });
        }
        if let Err((key, problem)) = self.scrape.validate() {
            return Err(err(&key, problem));
        }
        if self.workers.count > 256 {
            return Err(err("workers.count", "must be at most 256".into()));
        }
        if let Err((key, problem)) = crate::serve::worker_groups::validate(&self.workers) {
            return Err(err(key, problem));
        }
        let tcp_like = [
            ("http", self.http.get()),
            ("syslog_tcp", self.syslog_tcp.get()),
            (
                "syslog_tls",
                self.tls_enabled().then(|| self.syslog_tls.get()).flatten(),
            ),
        ];
        for (i, (ka, a)) in tcp_like.iter().enumerate() {
            for (kb, b) in &tcp_like[i + 1..] {
                if let (Some(a), Some(b)) = (a, b)
                    && a == b
                    && a.port() != 0
                {
                    return Err(err(kb, format!("{b} is also used by {ka}")));
                }
            }
        }
        Ok(())
    }

    /// `[http_tls]`: cert and key together, `client_ca` and `client_auth`
    /// only with them, every file readable.
    fn validate_http_tls(&self, origins: &BTreeMap<String, Origin>) -> Result<(), ConfigError> {
        let err = |key: &str, problem: String| ConfigError {
            key: key.to_owned(),
            origin: origin_of(origins, key),
            problem,
        };
        let t = &self.http_tls;
        match (&t.cert, &t.key) {
            (Some(_), None) => {
                return Err(err(
                    "http_tls.key",
                    "missing: http_tls.cert is set, so http_tls.key must be too".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(err(
                    "http_tls.cert",
                    "missing: http_tls.key is set, so http_tls.cert must be too".into(),
                ));
            }
            (None, None) if t.client_ca.is_some() => {
                return Err(err(
                    "http_tls.client_ca",
                    "set without http_tls.cert and http_tls.key".into(),
                ));
            }
            _ => {}
        }
        if t.client_ca.is_none() && origins.contains_key("http_tls.client_auth") {
            return Err(err(
                "http_tls.client_auth",
                "set without http_tls.client_ca (the CAs client certificates must chain to)".into(),
            ));
        }
        for (key, file) in [
            ("http_tls.cert", &t.cert),
            ("http_tls.key", &t.key),
            ("http_tls.client_ca", &t.client_ca),
        ] {
            if let Some(f) = file
                && let Err(e) = std::fs::metadata(f)
            {
                return Err(err(key, format!("cannot read {}: {e}", f.display())));
            }
        }
        Ok(())
    }
}
