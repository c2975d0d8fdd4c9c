//! The queue configuration: which queue, and its settings, as one typed,
//! tagged value (`type = "memory" | "sqlite" | "redis"`), validated once
//! into a running queue by [`build_queue`].
//!
//! ```toml
//! [queue]
//! type = "sqlite"
//! path = "./killkrill-data/queue.db"
//! synchronous = "full"
//! max_events = 1000000
//! ```
//!
//! Unknown keys are errors, and every validation error names the key.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use killkrill_core::pipeline::{Compression, MemoryQueue, MemoryQueueConfig, Queue, QueueError};
use serde::{Deserialize, Serialize};

use super::redis::RedisBound;
use super::{RedisQueueOptions, RedisStreamsQueue, SqliteQueue, SqliteQueueOptions};
use crate::config::SqliteSync;

/// Which queue, with its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum QueueConfig {
    /// In process: fastest, not durable.
    Memory(MemoryQueueSettings),
    /// A SQLite file of its own: durable, one process.
    Sqlite(SqliteQueueSettings),
    /// Redis Streams: durable as Redis is, shared by many processes.
    Redis(RedisQueueSettings),
}

impl Default for QueueConfig {
    /// The embedded default: the SQLite queue.
    fn default() -> Self {
        QueueConfig::Sqlite(SqliteQueueSettings::default())
    }
}

/// `type = "memory"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryQueueSettings {
    /// Most events held.
    pub max_events: u64,
    /// Most estimated bytes held.
    pub max_bytes: u64,
    /// Redelivery of an unacknowledged batch after this many ms.
    pub visibility_timeout_ms: u64,
}

impl Default for MemoryQueueSettings {
    fn default() -> Self {
        MemoryQueueSettings {
            max_events: 100_000,
            max_bytes: 64 << 20,
            visibility_timeout_ms: 60_000,
        }
    }
}

/// Compression of stored batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoredCompression {
    /// Plain (fastest).
    #[default]
    None,
    /// zstd level 1 (about a third of the size for typical logs).
    Zstd,
}

impl StoredCompression {
    /// The codec setting.
    pub fn build(self) -> Compression {
        match self {
            StoredCompression::None => Compression::None,
            StoredCompression::Zstd => Compression::Zstd(1),
        }
    }
}

/// `type = "sqlite"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqliteQueueSettings {
    /// The queue's own file (not the store's database).
    pub path: PathBuf,
    /// `full`: fsync every commit (survives power loss); `normal`: survives
    /// a process crash, a power loss may lose the last commits; `off`: tests.
    pub synchronous: SqliteSync,
    /// Most events held.
    pub max_events: u64,
    /// Most stored bytes held.
    pub max_bytes: u64,
    /// Redelivery of an unacknowledged batch after this many ms.
    pub visibility_timeout_ms: u64,
    /// Compression of stored batches.
    pub compression: StoredCompression,
    /// Batch format written (1 or 2; see the queue options).
    pub batch_format_version: u8,
    /// Bodies larger than this go to segment files, written once, instead
    /// of inline blobs (see the queue options).
    pub inline_max_bytes: u64,
    /// Estimated bytes of enqueued batches kept in memory until first
    /// leased (0: off; see the queue options).
    pub hot_cache_bytes: u64,
}

/// Most `inline_max_bytes` accepted (a larger body is a segment's business).
pub const INLINE_MAX_BYTES_LIMIT: u64 = 16 << 20;

impl SqliteQueueSettings {
    /// The queue's options for these settings (no dead-letter sink: the
    /// caller adds one).
    pub fn options(&self) -> SqliteQueueOptions {
        SqliteQueueOptions {
            synchronous: self.synchronous,
            max_events: self.max_events,
            max_bytes: self.max_bytes,
            visibility_timeout: Duration::from_millis(self.visibility_timeout_ms),
            compression: self.compression.build(),
            batch_format_version: self.batch_format_version,
            inline_max_bytes: usize::try_from(self.inline_max_bytes).unwrap_or(usize::MAX),
            hot_cache_bytes: usize::try_from(self.hot_cache_bytes).unwrap_or(usize::MAX),
            ..SqliteQueueOptions::default()
        }
    }
}

impl Default for SqliteQueueSettings {
    fn default() -> Self {
        let o = SqliteQueueOptions::default();
        SqliteQueueSettings {
            path: PathBuf::from("./killkrill-data/queue.db"),
            synchronous: o.synchronous,
            max_events: o.max_events,
            max_bytes: o.max_bytes,
            visibility_timeout_ms: 60_000,
            compression: StoredCompression::None,
            batch_format_version: o.batch_format_version,
            inline_max_bytes: o.inline_max_bytes as u64,
            hot_cache_bytes: o.hot_cache_bytes as u64,
        }
    }
}

/// `type = "redis"`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisQueueSettings {
    /// `redis://` or `rediss://` (TLS); for a cluster, any node with
    /// `cluster = true`, or `redis+cluster://host:port[,host:port...]`
    /// (`rediss+cluster://` with TLS), which selects the cluster client.
    pub url: String,
    /// Use the Redis Cluster client.
    pub cluster: bool,
    /// Key prefix.
    pub prefix: String,
    /// Stream kind (`ingest`, `logs`, `metrics`).
    pub kind: String,
    /// Tenant group this stream serves.
    pub tenant_group: String,
    /// Consumer group of the workers.
    pub group: String,
    /// Consumer name (default: host, pid and a random suffix).
    pub consumer: Option<String>,
    /// Most entries (batches) in the stream (with `bound = "checked"`,
    /// plus the adds in flight of every producer).
    pub max_len: u64,
    /// `checked` (`XLEN`, then `XADD`: may overshoot `max_len` by at most
    /// `max_adds_in_flight` per producer) or `exact` (a Lua script, never
    /// over, about three times the server CPU per add).
    pub bound: RedisBound,
    /// With `bound = "checked"`, the most adds per producer between their
    /// check and the reply.
    pub max_adds_in_flight: u64,
    /// Largest encoded batch, bytes.
    pub max_batch_bytes: u64,
    /// An unacknowledged delivery idle this many ms is claimed again.
    pub visibility_timeout_ms: u64,
    /// Longest blocking read, ms.
    pub poll_interval_ms: u64,
    /// Timeout of other commands, ms.
    pub command_timeout_ms: u64,
    /// How often acknowledged leftovers are trimmed and idle consumers
    /// forgotten, ms.
    pub trim_interval_ms: u64,
    /// Consumers idle this long with nothing pending are removed, ms.
    pub forget_consumers_after_ms: u64,
    /// Compression of stored batches.
    pub compression: StoredCompression,
    /// Batch format written (1 or 2; see the queue options).
    pub batch_format_version: u8,
}

impl RedisQueueSettings {
    /// The queue's options for these settings (no dead-letter sink: the
    /// caller adds one).
    pub fn options(&self) -> RedisQueueOptions {
        RedisQueueOptions {
            prefix: self.prefix.clone(),
            kind: self.kind.clone(),
            tenant_group: self.tenant_group.clone(),
            group: self.group.clone(),
            consumer: self.consumer.clone(),
            max_len: self.max_len,
            bound: self.bound,
            max_adds_in_flight: usize::try_from(self.max_adds_in_flight).unwrap_or(usize::MAX),
            max_batch_bytes: self.max_batch_bytes,
            visibility_timeout: Duration::from_millis(self.visibility_timeout_ms),
            poll_interval: Duration::from_millis(self.poll_interval_ms),
            command_timeout: Duration::from_millis(self.command_timeout_ms),
            trim_interval: Duration::from_millis(self.trim_interval_ms),
            forget_consumers_after: Duration::from_millis(self.forget_consumers_after_ms),
            cluster: self.cluster,
            compression: self.compression.build(),
            batch_format_version: self.batch_format_version,
            ..RedisQueueOptions::default()
        }
    }
}

impl std::fmt::Debug for RedisQueueSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // By hand, to keep a Redis password in the URL out of logs; every field is
        // named, so a new one cannot be forgotten.
        let RedisQueueSettings {
            url,
            cluster,
            prefix,
            kind,
            tenant_group,
            group,
            consumer,
            max_len,
            bound,
            max_adds_in_flight,
            max_batch_bytes,
            visibility_timeout_ms,
            poll_interval_ms,
            command_timeout_ms,
            trim_interval_ms,
            forget_consumers_after_ms,
            compression,
            batch_format_version,
        } = self;
        f.debug_struct("RedisQueueSettings")
            .field("url", &killkrill_core::secret::UrlDebug(Some(url.as_str())))
            .field("cluster", cluster)
            .field("prefix", prefix)
            .field("kind", kind)
            .field("tenant_group", tenant_group)
            .field("group", group)
            .field("consumer", consumer)
            .field("max_len", max_len)
            .field("bound", bound)
            .field("max_adds_in_flight", max_adds_in_flight)
            .field("max_batch_bytes", max_batch_bytes)
            .field("visibility_timeout_ms", visibility_timeout_ms)
            .field("poll_interval_ms", poll_interval_ms)
            .field("command_timeout_ms", command_timeout_ms)
            .field("trim_interval_ms", trim_interval_ms)
            .field("forget_consumers_after_ms", forget_consumers_after_ms)
            .field("compression", compression)
            .field("batch_format_version", batch_format_version)
            .finish()
    }
}

impl Default for RedisQueueSettings {
    fn default() -> Self {
        let o = RedisQueueOptions::default();
        RedisQueueSettings {
            url: "redis://127.0.0.1:6379".into(),
            cluster: false,
            prefix: o.prefix,
            kind: o.kind,
            tenant_group: o.tenant_group,
            group: o.group,
            consumer: None,
            max_len: o.max_len,
            bound: o.bound,
            max_adds_in_flight: o.max_adds_in_flight as u64,
            max_batch_bytes: o.max_batch_bytes,
            visibility_timeout_ms: 60_000,
            poll_interval_ms: 1_000,
            command_timeout_ms: 5_000,
            trim_interval_ms: 30_000,
            forget_consumers_after_ms: 3_600_000,
            compression: StoredCompression::None,
            batch_format_version: o.batch_format_version,
        }
    }
}

/// A queue setting is invalid, or the queue could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueConfigError {
    /// A key has a value out of range.
    #[error("invalid queue.{key}: {message}")]
    Invalid {
        /// The key, e.g. `max_events`.
        key: &'static str,
        /// What is wrong and what is expected.
        message: String,
    },
    /// Opening or connecting failed.
    #[error("opening the {queue} queue: {source}")]
    Open {
        /// `sqlite` or `redis`.
        queue: &'static str,
        /// Why.
        source: QueueError,
    },
}

fn positive(key: &'static str, v: u64) -> Result<(), QueueConfigError> {
    if v == 0 {
        return Err(QueueConfigError::Invalid {
            key,
            message: "must be greater than 0".into(),
        });
    }
    Ok(())
}

fn name_part(key: &'static str, v: &str) -> Result<(), QueueConfigError> {
    if v.is_empty()
        || v.chars()
            .any(|c| c.is_whitespace() || matches!(c, '{' | '}'))
    {
        return Err(QueueConfigError::Invalid {
            key,
            message: format!("{v:?} must be non-empty, without spaces or braces"),
        });
    }
    Ok(())
}

/// A batch format this build writes: 1 or the newest.
fn format_version(v: u8) -> Result<(), QueueConfigError> {
    if v == 1 || v == killkrill_core::pipeline::BatchCodec::VERSION {
        return Ok(());
    }
    Err(QueueConfigError::Invalid {
        key: "batch_format_version",
        message: format!(
            "{v} is not a batch format this build writes (1 or {})",
            killkrill_core::pipeline::BatchCodec::VERSION
        ),
    })
}

impl QueueConfig {
    /// Checks every value.
    ///
    /// # Errors
    /// [`QueueConfigError::Invalid`] naming the first bad key.
    pub fn validate(&self) -> Result<(), QueueConfigError> {
        match self {
            QueueConfig::Memory(m) => {
                positive("max_events", m.max_events)?;
                positive("max_bytes", m.max_bytes)?;
                positive("visibility_timeout_ms", m.visibility_timeout_ms)
            }
            QueueConfig::Sqlite(s) => {
                if s.path.as_os_str().is_empty() {
                    return Err(QueueConfigError::Invalid {
                        key: "path",
                        message: "must name the queue file".into(),
                    });
                }
                positive("max_events", s.max_events)?;
                positive("max_bytes", s.max_bytes)?;
                format_version(s.batch_format_version)?;
                if s.inline_max_bytes > INLINE_MAX_BYTES_LIMIT {
                    return Err(QueueConfigError::Invalid {
                        key: "inline_max_bytes",
                        message: format!(
                            "{} is over the limit of {INLINE_MAX_BYTES_LIMIT}",
                            s.inline_max_bytes
                        ),
                    });
                }
                positive("visibility_timeout_ms", s.visibility_timeout_ms)
            }
            QueueConfig::Redis(r) => {
                if ![
                    "redis://",
                    "rediss://",
                    "redis+cluster://",
                    "rediss+cluster://",
                ]
                .iter()
                .any(|s| r.url.starts_with(s))
                {
                    return Err(QueueConfigError::Invalid {
                        key: "url",
                        message: "must start with redis://, rediss://, redis+cluster:// or \
                                  rediss+cluster://"
                            .into(),
                    });
                }
                if super::redis::cluster_nodes(&r.url).is_some_and(|n| n.is_empty()) {
                    return Err(QueueConfigError::Invalid {
                        key: "url",
                        message: "a cluster URL must name at least one host:port".into(),
                    });
                }
                name_part("prefix", &r.prefix)?;
                name_part("kind", &r.kind)?;
                name_part("tenant_group", &r.tenant_group)?;
                name_part("group", &r.group)?;
                if let Some(c) = &r.consumer {
                    name_part("consumer", c)?;
                }
                positive("max_len", r.max_len)?;
                positive("max_adds_in_flight", r.max_adds_in_flight)?;
                positive("max_batch_bytes", r.max_batch_bytes)?;
                positive("visibility_timeout_ms", r.visibility_timeout_ms)?;
                positive("poll_interval_ms", r.poll_interval_ms)?;
                positive("command_timeout_ms", r.command_timeout_ms)?;
                positive("trim_interval_ms", r.trim_interval_ms)?;
                positive("forget_consumers_after_ms", r.forget_consumers_after_ms)?;
                format_version(r.batch_format_version)?;
                if r.poll_interval_ms >= r.visibility_timeout_ms {
                    return Err(QueueConfigError::Invalid {
                        key: "poll_interval_ms",
                        message: format!(
                            "{} must be below visibility_timeout_ms ({})",
                            r.poll_interval_ms, r.visibility_timeout_ms
                        ),
                    });
                }
                Ok(())
            }
        }
    }
}

/// Validates `config` and opens the queue it describes.
///
/// # Errors
/// [`QueueConfigError::Invalid`] for a bad value; [`QueueConfigError::Open`]
/// when the file cannot be opened or Redis cannot be reached.
pub async fn build_queue(config: &QueueConfig) -> Result<Arc<dyn Queue>, QueueConfigError> {
    config.validate()?;
    Ok(match config {
        QueueConfig::Memory(m) => Arc::new(MemoryQueue::new(MemoryQueueConfig {
            max_events: usize::try_from(m.max_events).unwrap_or(usize::MAX),
            max_bytes: usize::try_from(m.max_bytes).unwrap_or(usize::MAX),
            visibility_timeout: Duration::from_millis(m.visibility_timeout_ms),
        })),
        QueueConfig::Sqlite(s) => Arc::new(SqliteQueue::open(&s.path, s.options()).await.map_err(
            |source| QueueConfigError::Open {
                queue: "sqlite",
                source,
            },
        )?),
        QueueConfig::Redis(r) => Arc::new(
            RedisStreamsQueue::connect(&r.url, r.options())
                .await
                .map_err(|source| QueueConfigError::Open {
                    queue: "redis",
                    source,
                })?,
        ),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(toml_text: &str) -> Result<QueueConfig, String> {
        toml::from_str::<QueueConfig>(toml_text).map_err(|e| e.to_string())
    }

    #[test]
    fn the_redis_password_is_not_in_debug_output() {
        let c = RedisQueueSettings {
            url: "rediss://default:redis-pw@r:6380".into(),
            ..RedisQueueSettings::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("redis-pw"), "{shown}");
        assert!(
            shown.contains("rediss://default:<redacted>@r:6380"),
            "{shown}"
        );
    }

    #[test]
    fn selects_each_queue_with_defaults() {
        assert!(matches!(
            parse("type = \"memory\"").unwrap(),
            QueueConfig::Memory(_)
        ));
        let QueueConfig::Sqlite(s) = parse("type = \"sqlite\"\nsynchronous = \"full\"").unwrap()
        else {
            panic!("not sqlite")
        };
        assert_eq!(s.synchronous, SqliteSync::Full);
        assert_eq!(s.max_events, 1_000_000);
        let QueueConfig::Redis(r) =
            parse("type = \"redis\"\nurl = \"rediss://cache:6380\"\nmax_len = 5").unwrap()
        else {
            panic!("not redis")
        };
        assert_eq!((r.url.as_str(), r.max_len), ("rediss://cache:6380", 5));
        assert_eq!((r.bound, r.max_adds_in_flight), (RedisBound::Checked, 64));
        let QueueConfig::Redis(r) =
            parse("type = \"redis\"\nbound = \"exact\"\nmax_adds_in_flight = 8").unwrap()
        else {
            panic!("not redis")
        };
        assert_eq!((r.bound, r.max_adds_in_flight), (RedisBound::Exact, 8));
        assert_eq!(QueueConfig::default().validate(), Ok(()));
    }

    #[test]
    fn unknown_types_and_keys_are_errors() {
        let e = parse("type = \"kafka\"").unwrap_err();
        assert!(e.contains("kafka") && e.contains("sqlite"), "{e}");
        let e = parse("type = \"sqlite\"\nfsync = \"full\"").unwrap_err();
        assert!(e.contains("fsync"), "{e}");
        let e = parse("type = \"sqlite\"\nsynchronous = \"sometimes\"").unwrap_err();
        assert!(e.contains("sometimes"), "{e}");
    }

    #[test]
    fn validation_names_the_key() {
        let cases: &[(&str, &str)] = &[
            ("type = \"memory\"\nmax_events = 0", "queue.max_events"),
            ("type = \"sqlite\"\npath = \"\"", "queue.path"),
            (
                "type = \"sqlite\"\nvisibility_timeout_ms = 0",
                "queue.visibility_timeout_ms",
            ),
            ("type = \"redis\"\nurl = \"http://x\"", "queue.url"),
            ("type = \"redis\"\nkind = \"a b\"", "queue.kind"),
            (
                "type = \"redis\"\ntenant_group = \"{x}\"",
                "queue.tenant_group",
            ),
            ("type = \"redis\"\nmax_len = 0", "queue.max_len"),
            (
                "type = \"redis\"\nmax_adds_in_flight = 0",
                "queue.max_adds_in_flight",
            ),
            (
                "type = \"redis\"\npoll_interval_ms = 5000\nvisibility_timeout_ms = 1000",
                "queue.poll_interval_ms",
            ),
        ];
        for (text, key) in cases {
            let e = parse(text).unwrap().validate().unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid {key}:")), "{text}: {e}");
        }
    }
}
