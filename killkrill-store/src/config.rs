//! Store configuration: a typed struct the service config embeds, and the
//! standard environment variables (`DB_TYPE`, `DATABASE_URL`, `DB_HOST`, ...).
//!
//! Validated once, when the store is built: an unknown `DB_TYPE` is an error
//! that names the valid values, a block size outside 1,000..=8,000 is an
//! error that names the range, and unknown keys in a config file are errors.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DbType {
    /// PostgreSQL (the services' default).
    Postgres,
    /// MySQL or MariaDB, Galera clusters included.
    Mysql,
    /// SQLite (the embedded default).
    Sqlite,
}

impl DbType {
    /// The spelling `DB_TYPE` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            DbType::Postgres => "postgres",
            DbType::Mysql => "mysql",
            DbType::Sqlite => "sqlite",
        }
    }
}

impl fmt::Display for DbType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A configuration value is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `DB_TYPE` names no backend.
    #[error("unknown DB_TYPE {0:?}: expected one of postgres, mysql, sqlite")]
    UnknownDbType(String),
    /// A variable does not parse.
    #[error("invalid {name}={value:?}: expected {expected}")]
    Invalid {
        /// The variable or key.
        name: &'static str,
        /// What it was set to.
        value: String,
        /// What it should look like.
        expected: &'static str,
    },
    /// Neither `DATABASE_URL` nor `DB_HOST` is set for a server database.
    #[error("{0} needs DATABASE_URL or DB_HOST (with DB_PORT, DB_USER, DB_PASS, DB_NAME)")]
    MissingConnection(DbType),
}

impl FromStr for DbType {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Ok(DbType::Postgres),
            "mysql" | "mariadb" => Ok(DbType::Mysql),
            "sqlite" => Ok(DbType::Sqlite),
            _ => Err(ConfigError::UnknownDbType(s.to_owned())),
        }
    }
}

impl Serialize for DbType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DbType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// SQLite durability: `synchronous` pragma.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    /// fsync at every commit: nothing committed is lost on power failure.
    Full,
    /// fsync at WAL checkpoints: a power failure may lose the last
    /// transactions, a process crash loses nothing. SQLite's advice for WAL.
    #[default]
    Normal,
    /// Never fsync (tests, throw-away data).
    Off,
}

/// SQLite settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqliteConfig {
    /// Database file (created with its directory if missing).
    pub path: PathBuf,
    /// Durability of commits.
    pub synchronous: SqliteSync,
    /// How long a connection waits for a lock before `SQLITE_BUSY`, ms.
    pub busy_timeout_ms: u64,
    /// WAL size (pages, 4 KiB each) past which a commit checkpoints
    /// (`PRAGMA wal_autocheckpoint`, `DB_SQLITE_WAL_AUTOCHECKPOINT`).
    /// 16,384 (64 MiB) by default, SQLite's is 1,000: a checkpoint copies
    /// each page once however many commits changed it since the last one,
    /// and a metric load rewrites the same index pages at every commit, so
    /// a larger WAL writes less (see docs/src/storage.md).
    pub wal_autocheckpoint_pages: u32,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            path: PathBuf::from("./killkrill-data/killkrill.db"),
            synchronous: SqliteSync::Normal,
            busy_timeout_ms: 5_000,
            wal_autocheckpoint_pages: 16_384,
        }
    }
}

/// MariaDB Galera cluster mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct GaleraConfig {
    /// `GALERA_MODE=true`.
    pub enabled: bool,
    /// `GALERA_NODES=a,b:3307,c`: tried in order at connect time; the first
    /// node that answers and is synced is used.
    pub nodes: Vec<String>,
    /// `wsrep_sync_wait` set on every connection (1 = reads wait for the
    /// node to apply every write committed anywhere before them).
    pub sync_wait: u8,
}

/// Retries of connection failures and transient errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// How long start-up keeps trying to reach the database, seconds.
    pub connect_for_secs: u64,
    /// Attempts of one operation on a retryable error (deadlock, Galera
    /// certification failure, node not ready, lost connection).
    pub attempts: u32,
    /// First backoff, ms (doubles per attempt, with jitter).
    pub initial_backoff_ms: u64,
    /// Longest backoff, ms.
    pub max_backoff_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            connect_for_secs: 60,
            attempts: 5,
            initial_backoff_ms: 50,
            max_backoff_ms: 5_000,
        }
    }
}

/// How log blocks are built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogBlockConfig {
    /// Records per block, 1,000..=8,000.
    pub block_records: usize,
    /// zstd level, 1..=9.
    pub zstd_level: i32,
    /// Bloom filter false-positive target, 0.0001..=0.1.
    pub bloom_fp: f64,
    /// Memory for cached token filters, MiB (0 turns the cache off).
    pub token_cache_mb: usize,
    /// Memory for recently read blocks kept decoded, MiB (0 turns the
    /// cache off). A 4,096-record block of ≈200-byte messages takes ≈1.3 MiB.
    pub decoded_cache_mb: usize,
    /// Memory for the in-memory index of parsed block summaries (and the
    /// token filters full-text queries used), MiB; 0 turns it off. See
    /// docs/src/storage.md.
    pub summary_index_mb: usize,
    /// How long the summary index trusts its last read of a tenant's block
    /// generation, milliseconds, before reading it again (one point read):
    /// this process's own writes, compactions and deletes are seen by its
    /// next query at once; another process's writing the same database
    /// within this period. Unset: 100 on SQLite (one process normally owns
    /// the embedded database), 0 — read before every query — on PostgreSQL
    /// (API processes read what other processes' workers commit). At most
    /// 60,000. See docs/src/summary-index.md.
    pub index_recheck_ms: Option<u64>,
}

impl Default for LogBlockConfig {
    fn default() -> Self {
        LogBlockConfig {
            block_records: 4096,
            zstd_level: 1,
            bloom_fp: 0.001,
            token_cache_mb: 256,
            decoded_cache_mb: 128,
            summary_index_mb: 128,
            index_recheck_ms: None,
        }
    }
}

/// Everything the store needs.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Backend.
    pub db_type: DbType,
    /// Connection URL; overrides the separate parts.
    #[serde(default)]
    pub url: Option<String>,
    /// Server host.
    #[serde(default)]
    pub host: Option<String>,
    /// Server port.
    #[serde(default)]
    pub port: Option<u16>,
    /// User.
    #[serde(default)]
    pub user: Option<String>,
    /// Password.
    #[serde(default)]
    pub password: Option<String>,
    /// Database name.
    #[serde(default)]
    pub name: Option<String>,
    /// Connections per pool.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// SQLite settings (used when `db_type` is sqlite and `url` is unset).
    #[serde(default)]
    pub sqlite: SqliteConfig,
    /// Galera mode (MySQL/MariaDB only).
    #[serde(default)]
    pub galera: GaleraConfig,
    /// Retries.
    #[serde(default)]
    pub retry: RetryConfig,
    /// Log block building.
    #[serde(default)]
    pub logs: LogBlockConfig,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // By hand, to keep database passwords out of logs; every field is
        // named, so a new one cannot be forgotten.
        let StoreConfig {
            db_type,
            url,
            host,
            port,
            user,
            password,
            name,
            pool_size,
            sqlite,
            galera,
            retry,
            logs,
        } = self;
        f.debug_struct("StoreConfig")
            .field("db_type", db_type)
            .field("url", &killkrill_core::secret::UrlDebug(url.as_deref()))
            .field("host", host)
            .field("port", port)
            .field("user", user)
            .field("password", &killkrill_core::secret::Redacted(password))
            .field("name", name)
            .field("pool_size", pool_size)
            .field("sqlite", sqlite)
            .field("galera", galera)
            .field("retry", retry)
            .field("logs", logs)
            .finish()
    }
}

fn default_pool_size() -> u32 {
    10
}

impl StoreConfig {
    /// An embedded SQLite store in `data_dir/killkrill.db`.
    pub fn sqlite(data_dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            db_type: DbType::Sqlite,
            url: None,
            host: None,
            port: None,
            user: None,
            password: None,
            name: None,
            pool_size: default_pool_size(),
            sqlite: SqliteConfig {
                path: data_dir.into().join("killkrill.db"),
                ..SqliteConfig::default()
            },
            galera: GaleraConfig::default(),
            retry: RetryConfig::default(),
            logs: LogBlockConfig::default(),
        }
    }

    /// A server store from a URL.
    pub fn from_url(db_type: DbType, url: impl Into<String>) -> Self {
        StoreConfig {
            db_type,
            url: Some(url.into()),
            ..Self::sqlite(".")
        }
    }

    /// Reads the standard variables through `var` (e.g. `std::env::var`):
    /// `DB_TYPE` (default `default_type`), `DATABASE_URL`, `DB_HOST`,
    /// `DB_PORT`, `DB_USER`, `DB_PASS`, `DB_NAME`, `DB_POOL_SIZE`,
    /// `DB_SQLITE_SYNCHRONOUS`, `DB_SQLITE_WAL_AUTOCHECKPOINT`,
    /// `DB_INDEX_RECHECK_MS` (`logs.index_recheck_ms`),
    /// `GALERA_MODE`, `GALERA_NODES`. SQLite without
    /// `DATABASE_URL` lives in `data_dir/killkrill.db`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable and what it should be.
    pub fn from_env(
        var: impl Fn(&str) -> Option<String>,
        default_type: DbType,
        data_dir: impl Into<PathBuf>,
    ) -> Result<Self, ConfigError> {
        let db_type = match var("DB_TYPE") {
            Some(v) if !v.trim().is_empty() => v.parse()?,
            _ => default_type,
        };
        let mut c = StoreConfig::sqlite(data_dir);
        c.db_type = db_type;
        c.url = var("DATABASE_URL").filter(|s| !s.is_empty());
        c.host = var("DB_HOST").filter(|s| !s.is_empty());
        c.port = parse_var(&var, "DB_PORT", "a port number 1-65535")?;
        c.user = var("DB_USER");
        c.password = var("DB_PASS");
        c.name = var("DB_NAME");
        if let Some(n) = parse_var::<u32>(&var, "DB_POOL_SIZE", "a number of connections 1-1000")? {
            if !(1..=1000).contains(&n) {
                return Err(ConfigError::Invalid {
                    name: "DB_POOL_SIZE",
                    value: n.to_string(),
                    expected: "a number of connections 1-1000",
                });
            }
            c.pool_size = n;
        }
        if let Some(v) = var("DB_SQLITE_SYNCHRONOUS") {
            c.sqlite.synchronous = match v.to_ascii_lowercase().as_str() {
                "full" => SqliteSync::Full,
                "normal" => SqliteSync::Normal,
                "off" => SqliteSync::Off,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "DB_SQLITE_SYNCHRONOUS",
                        value: v,
                        expected: "full, normal or off",
                    });
                }
            };
        }
        if let Some(pages) = parse_var::<u32>(
            &var,
            "DB_SQLITE_WAL_AUTOCHECKPOINT",
            "a number of WAL pages 100-1000000",
        )? {
            c.sqlite.wal_autocheckpoint_pages = pages;
        }
        if let Some(v) = var("GALERA_MODE") {
            c.galera.enabled = match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" | "" => false,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "GALERA_MODE",
                        value: v,
                        expected: "true or false",
                    });
                }
            };
        }
        if let Some(v) = var("GALERA_NODES") {
            c.galera.nodes = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
        c.logs.index_recheck_ms = parse_var(
            &var,
            "DB_INDEX_RECHECK_MS",
            "milliseconds 0-60000 (logs.index_recheck_ms)",
        )?;
        c.galera.sync_wait = 1;
        c.validate()?;
        Ok(c)
    }

    /// Checks ranges and combinations.
    ///
    /// # Errors
    /// [`ConfigError`] for the first problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let has_nodes = self.galera.enabled && !self.galera.nodes.is_empty();
        let has_address = self.url.is_some() || self.host.is_some() || has_nodes;
        if self.db_type != DbType::Sqlite && !has_address {
            return Err(ConfigError::MissingConnection(self.db_type));
        }
        if self.galera.enabled && self.db_type != DbType::Mysql {
            return Err(ConfigError::Invalid {
                name: "GALERA_MODE",
                value: "true".into(),
                expected: "false unless DB_TYPE=mysql",
            });
        }
        if !(1_000..=8_000).contains(&self.logs.block_records) {
            return Err(ConfigError::Invalid {
                name: "logs.block_records",
                value: self.logs.block_records.to_string(),
                expected: "1000 to 8000 records",
            });
        }
        if !(1..=9).contains(&self.logs.zstd_level) {
            return Err(ConfigError::Invalid {
                name: "logs.zstd_level",
                value: self.logs.zstd_level.to_string(),
                expected: "a zstd level 1 to 9",
            });
        }
        if !(0.0001..=0.1).contains(&self.logs.bloom_fp) {
            return Err(ConfigError::Invalid {
                name: "logs.bloom_fp",
                value: self.logs.bloom_fp.to_string(),
                expected: "a false-positive rate 0.0001 to 0.1",
            });
        }
        if let Some(ms) = self.logs.index_recheck_ms
            && ms > 60_000
        {
            return Err(ConfigError::Invalid {
                name: "logs.index_recheck_ms",
                value: ms.to_string(),
                expected: "0 to 60000 milliseconds",
            });
        }
        if !(100..=1_000_000).contains(&self.sqlite.wal_autocheckpoint_pages) {
            return Err(ConfigError::Invalid {
                name: "DB_SQLITE_WAL_AUTOCHECKPOINT",
                value: self.sqlite.wal_autocheckpoint_pages.to_string(),
                expected: "a number of WAL pages 100-1000000",
            });
        }
        if self.pool_size == 0 {
            return Err(ConfigError::Invalid {
                name: "pool_size",
                value: "0".into(),
                expected: "at least 1",
            });
        }
        Ok(())
    }
}

fn parse_var<T: FromStr>(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    expected: &'static str,
) -> Result<Option<T>, ConfigError> {
    match var(name) {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ConfigError::Invalid {
                name,
                value: v,
                expected,
            }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn passwords_are_not_in_debug_output() {
        let mut c = StoreConfig::from_url(
            DbType::Postgres,
            "postgres://app:url-pw-1@db:5432/kk?sslpassword=url-pw-2",
        );
        c.password = Some("part-pw-3".into());
        let shown = format!("{c:?}");
        for s in ["url-pw-1", "url-pw-2", "part-pw-3"] {
            assert!(!shown.contains(s), "{s} in {shown}");
        }
        assert!(
            shown.contains("postgres://app:<redacted>@db:5432/kk"),
            "{shown}"
        );
    }

    #[test]
    fn db_type_values() {
        let cases: &[(&str, Option<DbType>)] = &[
            ("postgres", Some(DbType::Postgres)),
            ("PostgreSQL", Some(DbType::Postgres)),
            ("mysql", Some(DbType::Mysql)),
            ("mariadb", Some(DbType::Mysql)),
            ("sqlite", Some(DbType::Sqlite)),
            ("oracle", None),
            ("sqlite3", None),
        ];
        for (s, want) in cases {
            assert_eq!(s.parse::<DbType>().ok(), *want, "{s}");
        }
    }

    #[test]
    fn bad_db_type_names_the_valid_values() {
        let err =
            StoreConfig::from_env(env(&[("DB_TYPE", "oracle")]), DbType::Sqlite, ".").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown DB_TYPE \"oracle\": expected one of postgres, mysql, sqlite"
        );
        let err = serde_json::from_str::<StoreConfig>(r#"{"db_type":"mongo"}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("expected one of postgres, mysql, sqlite"),
            "{err}"
        );
    }

    #[test]
    fn env_variables() {
        let c = StoreConfig::from_env(
            env(&[
                ("DB_TYPE", "mysql"),
                ("DB_HOST", "db1"),
                ("DB_PORT", "3307"),
                ("DB_USER", "kk"),
                ("DB_PASS", "s3cret"),
                ("DB_NAME", "logs"),
                ("DB_POOL_SIZE", "4"),
                ("GALERA_MODE", "true"),
                ("GALERA_NODES", "a, b:3307 ,c"),
            ]),
            DbType::Sqlite,
            "/tmp/x",
        )
        .unwrap();
        assert_eq!(c.db_type, DbType::Mysql);
        assert_eq!(
            (c.host.as_deref(), c.port, c.pool_size),
            (Some("db1"), Some(3307), 4)
        );
        assert_eq!(c.galera.nodes, vec!["a", "b:3307", "c"]);
        assert!(c.galera.enabled);
        let s = StoreConfig::from_env(env(&[]), DbType::Sqlite, "/data").unwrap();
        assert_eq!(s.sqlite.path, PathBuf::from("/data/killkrill.db"));
        assert_eq!(s.logs.index_recheck_ms, None);
        let s = StoreConfig::from_env(env(&[("DB_INDEX_RECHECK_MS", "0")]), DbType::Sqlite, ".")
            .unwrap();
        assert_eq!(s.logs.index_recheck_ms, Some(0));
        let s = StoreConfig::from_env(
            env(&[("DB_SQLITE_WAL_AUTOCHECKPOINT", "1000")]),
            DbType::Sqlite,
            ".",
        )
        .unwrap();
        assert_eq!(s.sqlite.wal_autocheckpoint_pages, 1000);
        assert_eq!(SqliteConfig::default().wal_autocheckpoint_pages, 16_384);
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("DB_TYPE", "postgres")], "needs DATABASE_URL or DB_HOST"),
            (&[("DB_PORT", "x")], "invalid DB_PORT=\"x\""),
            (&[("DB_POOL_SIZE", "0")], "invalid DB_POOL_SIZE=\"0\""),
            (&[("GALERA_MODE", "maybe")], "invalid GALERA_MODE"),
            (&[("GALERA_MODE", "true")], "false unless DB_TYPE=mysql"),
            (
                &[("DB_SQLITE_SYNCHRONOUS", "sometimes")],
                "full, normal or off",
            ),
            (
                &[("DB_SQLITE_WAL_AUTOCHECKPOINT", "10")],
                "invalid DB_SQLITE_WAL_AUTOCHECKPOINT=\"10\"",
            ),
            (
                &[("DB_INDEX_RECHECK_MS", "soon")],
                "invalid DB_INDEX_RECHECK_MS=\"soon\"",
            ),
            (
                &[("DB_INDEX_RECHECK_MS", "60001")],
                "invalid logs.index_recheck_ms=\"60001\"",
            ),
        ];
        for (vars, want) in cases {
            let err = StoreConfig::from_env(env(vars), DbType::Sqlite, ".").unwrap_err();
            assert!(err.to_string().contains(want), "{vars:?}: {err}");
        }
    }

    #[test]
    fn unknown_keys_and_block_size_range() {
        let err =
            serde_json::from_str::<StoreConfig>(r#"{"db_type":"sqlite","pool":3}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `pool`"), "{err}");
        let mut c = StoreConfig::sqlite(".");
        c.logs.block_records = 100;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("1000 to 8000")
        );
    }
}
