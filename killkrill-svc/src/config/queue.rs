//! `[queue]`: which queue sits between receivers and workers, and its
//! settings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Which queue sits between receivers and workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueKind {
    /// A SQLite file of its own under `data_dir` (`queue.db`): durable, one
    /// process. The default.
    #[default]
    Sqlite,
    /// In process: fastest, lost on a crash.
    Memory,
    /// Redis Streams (`queue.redis.url`, else `REDIS_URL`): durable as Redis
    /// is, shared by any number of receivers and workers.
    Redis,
}

impl QueueKind {
    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueKind::Sqlite => "sqlite",
            QueueKind::Memory => "memory",
            QueueKind::Redis => "redis",
        }
    }
}

/// The queue between receivers and workers: `kind` selects it; the bounds
/// apply to the memory and SQLite queues, `[queue.sqlite]` and
/// `[queue.redis]` hold what only one of them takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// `sqlite` (default), `memory` or `redis`.
    pub kind: QueueKind,
    /// Most events held (memory and SQLite), the workers' groups in hand
    /// included: keep it at least twice `workers.count` ×
    /// `workers.group_max_events`.
    pub max_events: usize,
    /// Most bytes held (memory: estimated; SQLite: stored).
    pub max_bytes: usize,
    /// An unacknowledged delivery comes back after this many ms (a worker
    /// died or is stuck).
    pub visibility_timeout_ms: u64,
    /// Compression of stored batches (SQLite and Redis): `none` or `zstd`.
    pub compression: killkrill_store::queue::config::StoredCompression,
    /// Batch format written (SQLite and Redis): 2 (default) or 1, which
    /// builds before 2 read. Every format is read. On a queue shared with
    /// older workers (a rolling upgrade), set 1 until they are upgraded.
    pub batch_format_version: u8,
    /// `kind = "sqlite"`.
    pub sqlite: SqliteQueueSection,
    /// `kind = "redis"`.
    pub redis: RedisQueueSection,
    /// Redis only: tenant groups, each a stream of its own
    /// (`[queue.tenant_groups]`, group name = list of tenants); tenants not
    /// listed go to the group `default`. Empty: one stream for everyone.
    pub tenant_groups: BTreeMap<String, Vec<String>>,
    /// The tenant groups this process's workers take batches from,
    /// comma-separated (`--queue-groups`); empty: all of them.
    pub groups: String,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            kind: QueueKind::Sqlite,
            // Twice what the workers hold in their groups
            // (`workers.count` × `workers.group_max_events`, 500,000 by
            // default): a bound of one such amount left receivers waiting
            // for the workers' acknowledgements (docs/src/benchmarks/load.md).
            max_events: 1_000_000,
            max_bytes: 256 << 20,
            visibility_timeout_ms: 60_000,
            compression: killkrill_store::queue::config::StoredCompression::None,
            batch_format_version: killkrill_core::pipeline::BatchCodec::VERSION,
            sqlite: SqliteQueueSection::default(),
            redis: RedisQueueSection::default(),
            tenant_groups: BTreeMap::new(),
            groups: String::new(),
        }
    }
}

/// `[queue.sqlite]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqliteQueueSection {
    /// The queue file; `<data_dir>/queue.db` when unset.
    pub path: Option<PathBuf>,
    /// `full`: fsync every commit (survives power loss); `normal` (default):
    /// survives a crash of the process; `off`: tests only.
    pub synchronous: killkrill_store::SqliteSync,
    /// Batch bodies larger than this many bytes are appended to segment
    /// files next to the queue file (written once) instead of stored as
    /// blobs in it (written to the WAL, then again by the checkpoint).
    /// Default 4,000: a body that does not fit in one 4 KiB page.
    pub inline_max_bytes: u64,
    /// Batches this process enqueues are also kept in memory, up to this
    /// many bytes (estimated), until a worker first leases them; that lease
    /// takes the batch instead of reading and decoding its body. 0 turns it
    /// off. Default 64 MiB.
    pub hot_cache_bytes: u64,
}

impl Default for SqliteQueueSection {
    fn default() -> Self {
        let d = killkrill_store::queue::config::SqliteQueueSettings::default();
        SqliteQueueSection {
            path: None,
            synchronous: d.synchronous,
            inline_max_bytes: d.inline_max_bytes,
            hot_cache_bytes: d.hot_cache_bytes,
        }
    }
}

/// `[queue.redis]`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisQueueSection {
    /// `redis://` or `rediss://`; `REDIS_URL` when unset. Shown by
    /// `check-config` without its password.
    #[serde(serialize_with = "url_shown")]
    pub url: Option<String>,
    /// Use the Redis Cluster client.
    pub cluster: bool,
    /// First part of every key (one per deployment sharing a Redis).
    pub prefix: String,
    /// Stream name part (`killkrill:{ingest:default}:stream`).
    pub stream: String,
    /// Consumer group of the workers.
    pub group: String,
    /// This process's consumer name; host, pid and a random suffix when unset.
    pub consumer: Option<String>,
    /// Most batches in the stream (Redis counts entries, not events).
    pub max_len: u64,
    /// Longest blocking read, ms (how soon an idle worker notices
    /// deliveries to take over).
    pub poll_interval_ms: u64,
}

impl std::fmt::Debug for RedisQueueSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // By hand, to keep a Redis password in the URL out of logs; every field is
        // named, so a new one cannot be forgotten.
        let RedisQueueSection {
            url,
            cluster,
            prefix,
            stream,
            group,
            consumer,
            max_len,
            poll_interval_ms,
        } = self;
        f.debug_struct("RedisQueueSection")
            .field("url", &killkrill_core::secret::UrlDebug(url.as_deref()))
            .field("cluster", cluster)
            .field("prefix", prefix)
            .field("stream", stream)
            .field("group", group)
            .field("consumer", consumer)
            .field("max_len", max_len)
            .field("poll_interval_ms", poll_interval_ms)
            .finish()
    }
}

impl Default for RedisQueueSection {
    fn default() -> Self {
        let o = killkrill_store::queue::RedisQueueOptions::default();
        RedisQueueSection {
            url: None,
            cluster: false,
            prefix: o.prefix,
            stream: o.kind,
            group: o.group,
            consumer: None,
            max_len: o.max_len,
            poll_interval_ms: 1_000,
        }
    }
}

impl QueueConfig {
    /// The store's queue configuration this selects (`data_dir` places the
    /// SQLite file), for validation and for opening.
    pub fn to_store(&self, data_dir: &Path) -> killkrill_store::queue::QueueConfig {
        use killkrill_store::queue::config as q;
        match self.kind {
            QueueKind::Memory => {
                killkrill_store::queue::QueueConfig::Memory(q::MemoryQueueSettings {
                    max_events: self.max_events as u64,
                    max_bytes: self.max_bytes as u64,
                    visibility_timeout_ms: self.visibility_timeout_ms,
                })
            }
            QueueKind::Sqlite => {
                killkrill_store::queue::QueueConfig::Sqlite(q::SqliteQueueSettings {
                    path: self
                        .sqlite
                        .path
                        .clone()
                        .unwrap_or_else(|| data_dir.join("queue.db")),
                    synchronous: self.sqlite.synchronous,
                    max_events: self.max_events as u64,
                    max_bytes: self.max_bytes as u64,
                    visibility_timeout_ms: self.visibility_timeout_ms,
                    compression: self.compression,
                    batch_format_version: self.batch_format_version,
                    inline_max_bytes: self.sqlite.inline_max_bytes,
                    hot_cache_bytes: self.sqlite.hot_cache_bytes,
                })
            }
            QueueKind::Redis => {
                let d = q::RedisQueueSettings::default();
                killkrill_store::queue::QueueConfig::Redis(q::RedisQueueSettings {
                    url: self.redis.url.clone().unwrap_or_default(),
                    cluster: self.redis.cluster,
                    prefix: self.redis.prefix.clone(),
                    kind: self.redis.stream.clone(),
                    group: self.redis.group.clone(),
                    consumer: self.redis.consumer.clone(),
                    max_len: self.redis.max_len,
                    visibility_timeout_ms: self.visibility_timeout_ms,
                    poll_interval_ms: self.redis.poll_interval_ms,
                    compression: self.compression,
                    batch_format_version: self.batch_format_version,
                    ..d
                })
            }
        }
    }

    /// The groups `groups` names (empty: all).
    pub fn served_groups(&self) -> Vec<String> {
        self.groups
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Checks `tenant_groups` and `groups`; the error names the key.
    pub(super) fn validate_tenant_groups(&self) -> Result<(), (&'static str, String)> {
        use crate::serve::tenant_groups::DEFAULT_GROUP;
        if self.tenant_groups.is_empty() {
            if self.served_groups().iter().any(|g| g != DEFAULT_GROUP) {
                return Err((
                    "queue.groups",
                    format!(
                        "{:?}: without queue.tenant_groups the only group is \"default\"",
                        self.groups
                    ),
                ));
            }
            return Ok(());
        }
        if self.kind != QueueKind::Redis {
            return Err((
                "queue.tenant_groups",
                format!(
                    "only the redis queue has tenant groups (queue.kind is {})",
                    self.kind.as_str()
                ),
            ));
        }
        let mut seen = BTreeMap::new();
        for (group, tenants) in &self.tenant_groups {
            if group.is_empty()
                || group
                    .chars()
                    .any(|c| c.is_whitespace() || matches!(c, '{' | '}' | ','))
            {
                return Err((
                    "queue.tenant_groups",
                    format!(
                        "group name {group:?} must be non-empty, without spaces, braces or commas"
                    ),
                ));
            }
            for t in tenants {
                killkrill_core::event::Tenant::new(t).map_err(|e| {
                    (
                        "queue.tenant_groups",
                        format!("group {group:?}: tenant {t:?}: {e}"),
                    )
                })?;
                if let Some(other) = seen.insert(t.clone(), group.clone()) {
                    return Err((
                        "queue.tenant_groups",
                        format!("tenant {t:?} is in two groups ({other:?} and {group:?})"),
                    ));
                }
            }
        }
        for g in self.served_groups() {
            if g != DEFAULT_GROUP && !self.tenant_groups.contains_key(&g) {
                return Err((
                    "queue.groups",
                    format!(
                        "unknown tenant group {g:?} (not in queue.tenant_groups, not \"default\")"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The config key (in this file's terms) of a key the store's queue
    /// validation names.
    pub(super) fn key_of(&self, store_key: &str) -> String {
        let section = match (self.kind, store_key) {
            (
                _,
                "max_events"
                | "max_bytes"
                | "visibility_timeout_ms"
                | "compression"
                | "batch_format_version",
            ) => "",
            (QueueKind::Redis, "kind") => return "queue.redis.stream".into(),
            (QueueKind::Redis, _) => "redis.",
            (QueueKind::Sqlite, _) => "sqlite.",
            (QueueKind::Memory, _) => "",
        };
        format!("queue.{section}{store_key}")
    }
}

/// Serialises a URL without its password (`check-config` output ends up in
/// CI logs).
fn url_shown<S: serde::Serializer>(u: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match u {
        Some(u) => s.serialize_some(&killkrill_core::secret::url_without_password(u)),
        None => s.serialize_none(),
    }
}
