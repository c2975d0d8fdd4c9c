//! The one store type over three databases: an enum of sqlx pools chosen at
//! run time from `DB_TYPE`.
//!
//! Why an enum and not `AnyPool`: `Any` lacks the types and features used
//! here (binary COPY, blobs decoded without conversions), and code generic
//! over `sqlx::Database` needs heavy trait bounds. Each query is written once
//! (see [`with_pool!`](crate::with_pool)) and runs against whichever pool the
//! enum holds. SQLite gets two pools: one writer connection (SQLite allows one
//! writer at a time; queuing in the pool is cheaper than `SQLITE_BUSY`) and
//! reader connections (WAL lets them read while the writer writes).

use std::str::FromStr;
use std::time::{Duration, Instant};

use killkrill_core::logblock::BlockOptions;
use killkrill_core::storage::{ErrorKind, StoreError};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Executor, Row};

use crate::config::{DbType, SqliteSync, StoreConfig};
use crate::dialect::Dialect;
use crate::error::db_error;
use crate::galera::{NodeState, parse_node};
use crate::retry::backoff;

/// Series rows remembered as stored, per process (~100 bytes each).
const SERIES_CACHE_ENTRIES: usize = 2_000_000;

/// The pools.
#[derive(Debug, Clone)]
pub enum Backend {
    /// PostgreSQL.
    Postgres(PgPool),
    /// MySQL / MariaDB.
    MySql(MySqlPool),
    /// SQLite: one writer connection, several readers.
    Sqlite {
        /// The single writer.
        writer: SqlitePool,
        /// Readers.
        reader: SqlitePool,
    },
}

/// Runs `$body` with `$pool` bound to the pool for reads.
#[macro_export]
#[doc(hidden)]
macro_rules! with_pool {
    ($backend:expr, $pool:ident => $body:expr) => {
        match $backend {
            $crate::backend::Backend::Postgres($pool) => $body,
            $crate::backend::Backend::MySql($pool) => $body,
            $crate::backend::Backend::Sqlite { reader: $pool, .. } => $body,
        }
    };
}

/// Runs `$body` with `$pool` bound to the pool for writes.
#[macro_export]
#[doc(hidden)]
macro_rules! with_writer {
    ($backend:expr, $pool:ident => $body:expr) => {
        match $backend {
            $crate::backend::Backend::Postgres($pool) => $body,
            $crate::backend::Backend::MySql($pool) => $body,
            $crate::backend::Backend::Sqlite { writer: $pool, .. } => $body,
        }
    };
}

/// A connected store: logs (and, later, metrics) on one database.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) backend: Backend,
    pub(crate) dialect: Dialect,
    pub(crate) cfg: StoreConfig,
    pub(crate) blocks: BlockOptions,
    pub(crate) token_cache: std::sync::Arc<crate::logs::token_cache::TokenCache>,
    pub(crate) decoded_cache: std::sync::Arc<crate::logs::token_cache::DecodedCache>,
    /// Half the decoded-block budget (`logs.decoded_cache_mb`): ≈37 KB
    /// per 4,096-record block, so 64 MiB holds ≈1,800 blocks' columns.
    pub(crate) times_cache: std::sync::Arc<crate::logs::token_cache::TimesCache>,
    pub(crate) series_cache: std::sync::Arc<crate::metrics::series_cache::SeriesCache>,
    /// Flushes per tenant since its rollup head was last merged.
    pub(crate) rollup_head: std::sync::Arc<crate::metrics::RollupHeadCounts>,
    /// Parsed block summaries per tenant (`logs.summary_index_mb`).
    pub(crate) summary_index: std::sync::Arc<crate::logs::summary_index::SummaryIndex>,
    /// Generation reads shared by concurrent queries of a tenant.
    pub(crate) gen_reads: std::sync::Arc<crate::logs::gen_reads::GenReads>,
}

impl Store {
    /// Connects (retrying for `retry.connect_for_secs`) and runs migrations.
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`] for a bad configuration; the last connection
    /// error (retryable kind) when the database stayed unreachable;
    /// [`ErrorKind::Fatal`] for failed migrations or refused credentials.
    pub async fn open(cfg: StoreConfig) -> Result<Self, StoreError> {
        let s = Self::connect(cfg).await?;
        s.migrate().await?;
        Ok(s)
    }

    /// Connects without running migrations.
    ///
    /// # Errors
    /// See [`open`](Self::open).
    pub async fn connect(cfg: StoreConfig) -> Result<Self, StoreError> {
        cfg.validate()
            .map_err(|e| StoreError::with_source(ErrorKind::Invalid, "store configuration", e))?;
        let started = Instant::now();
        let limit = Duration::from_secs(cfg.retry.connect_for_secs);
        let mut attempt = 0u32;
        let backend = loop {
            match connect_once(&cfg).await {
                Ok(b) => break b,
                Err(e) if e.kind() == ErrorKind::Retryable && started.elapsed() < limit => {
                    attempt += 1;
                    let wait =
                        backoff(&cfg.retry, attempt).min(limit.saturating_sub(started.elapsed()));
                    metrics::counter!("killkrill_store_connect_retries_total").increment(1);
                    tracing::warn!(db = %cfg.db_type, attempt, wait_ms = wait.as_millis() as u64, error = %e, "database unreachable, retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let blocks = BlockOptions {
            max_records: cfg.logs.block_records,
            zstd_level: cfg.logs.zstd_level,
            bloom_fp: cfg.logs.bloom_fp,
            threads,
            ..BlockOptions::default()
        };
        let token_cache = std::sync::Arc::new(crate::logs::token_cache::TokenCache::new(
            cfg.logs.token_cache_mb.saturating_mul(1 << 20),
        ));
        let decoded_cache = std::sync::Arc::new(crate::logs::token_cache::DecodedCache::new(
            cfg.logs.decoded_cache_mb.saturating_mul(1 << 20),
        ));
        let times_cache = std::sync::Arc::new(crate::logs::token_cache::TimesCache::new(
            cfg.logs.decoded_cache_mb.saturating_mul(1 << 19),
        ));
        let summary_index = std::sync::Arc::new(crate::logs::summary_index::SummaryIndex::new(
            cfg.logs.summary_index_mb.saturating_mul(1 << 20),
        ));
        Ok(Store {
            backend,
            dialect: Dialect(cfg.db_type),
            cfg,
            blocks,
            token_cache,
            decoded_cache,
            times_cache,
            summary_index,
            gen_reads: std::sync::Arc::default(),
            rollup_head: std::sync::Arc::default(),
            series_cache: std::sync::Arc::new(crate::metrics::series_cache::SeriesCache::new(
                SERIES_CACHE_ENTRIES,
            )),
        })
    }

    /// Applies pending migrations; returns how many migrations the schema has.
    ///
    /// # Errors
    /// See [`open`](Self::open).
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        crate::migrate::run(&self.backend, self.cfg.galera.enabled).await
    }

    /// Replaces the block options (tests and benchmarks use small or odd
    /// block sizes the configuration would refuse).
    #[must_use]
    pub fn with_block_options(mut self, blocks: BlockOptions) -> Self {
        self.blocks = blocks;
        self
    }

    /// The block options in use.
    pub fn block_options(&self) -> &BlockOptions {
        &self.blocks
    }

    /// Which database.
    pub fn db_type(&self) -> DbType {
        self.cfg.db_type
    }

    /// The configuration.
    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    /// The pools (for the metric store and tests in this workspace).
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Postgres(p) => p.close().await,
            Backend::MySql(p) => p.close().await,
            Backend::Sqlite { writer, reader } => {
                reader.close().await;
                writer.close().await;
            }
        }
    }
}

async fn connect_once(cfg: &StoreConfig) -> Result<Backend, StoreError> {
    let acquire = Duration::from_secs(30);
    match cfg.db_type {
        DbType::Postgres => {
            let opts = match &cfg.url {
                Some(u) => PgConnectOptions::from_str(u)
                    .map_err(|e| db_error("parsing DATABASE_URL", e))?,
                None => {
                    let mut o = PgConnectOptions::new();
                    if let Some(h) = &cfg.host {
                        o = o.host(h);
                    }
                    if let Some(p) = cfg.port {
                        o = o.port(p);
                    }
                    if let Some(u) = &cfg.user {
                        o = o.username(u);
                    }
                    if let Some(p) = &cfg.password {
                        o = o.password(p);
                    }
                    if let Some(d) = &cfg.name {
                        o = o.database(d);
                    }
                    o
                }
            };
            // One plain attempt (the pool's own connect retries until its
            // acquire timeout, which would hide each failure from our
            // counted, logged retry loop); then a lazy pool.
            let c = sqlx::PgConnection::connect_with(&opts)
                .await
                .map_err(|e| db_error("connecting to PostgreSQL", e))?;
            c.close()
                .await
                .map_err(|e| db_error("connecting to PostgreSQL", e))?;
            let pool = PgPoolOptions::new()
                .max_connections(cfg.pool_size)
                .acquire_timeout(acquire)
                .connect_lazy_with(opts);
            Ok(Backend::Postgres(pool))
        }
        DbType::Mysql => connect_mysql(cfg, acquire).await,
        DbType::Sqlite => {
            let opts = match &cfg.url {
                Some(u) => SqliteConnectOptions::from_str(u)
                    .map_err(|e| db_error("parsing DATABASE_URL", e))?,
                None => {
                    if let Some(dir) = cfg.sqlite.path.parent()
                        && !dir.as_os_str().is_empty()
                    {
                        std::fs::create_dir_all(dir).map_err(|e| {
                            StoreError::with_source(
                                ErrorKind::Fatal,
                                format!("creating the data directory {}", dir.display()),
                                e,
                            )
                        })?;
                    }
                    SqliteConnectOptions::new().filename(&cfg.sqlite.path)
                }
            };
            let opts = opts
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(match cfg.sqlite.synchronous {
                    SqliteSync::Full => SqliteSynchronous::Full,
                    SqliteSync::Normal => SqliteSynchronous::Normal,
                    SqliteSync::Off => SqliteSynchronous::Off,
                })
                .busy_timeout(Duration::from_millis(cfg.sqlite.busy_timeout_ms));
            // The one writer gets a 64 MiB page cache (SQLite's default is
            // 2 MiB): writes that touch many index pages — a metric write
            // adds a chunk next to each of its series' older ones — then hit
            // memory instead of the file. It checkpoints the WAL on commit
            // past `wal_autocheckpoint_pages` (readers never do: they are
            // read-only).
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(acquire)
                .connect_with(opts.clone().pragma("cache_size", "-65536").pragma(
                    "wal_autocheckpoint",
                    cfg.sqlite.wal_autocheckpoint_pages.to_string(),
                ))
                .await
                .map_err(|e| db_error("opening the SQLite database", e))?;
            let reader = SqlitePoolOptions::new()
                .max_connections(cfg.pool_size)
                .acquire_timeout(acquire)
                .connect_with(opts.read_only(true))
                .await
                .map_err(|e| db_error("opening the SQLite database for reading", e))?;
            Ok(Backend::Sqlite { writer, reader })
        }
    }
}

async fn connect_mysql(cfg: &StoreConfig, acquire: Duration) -> Result<Backend, StoreError> {
    let base = match &cfg.url {
        Some(u) => {
            MySqlConnectOptions::from_str(u).map_err(|e| db_error("parsing DATABASE_URL", e))?
        }
        None => {
            let mut o = MySqlConnectOptions::new();
            if let Some(h) = &cfg.host {
                o = o.host(h);
            }
            if let Some(p) = cfg.port {
                o = o.port(p);
            }
            if let Some(u) = &cfg.user {
                o = o.username(u);
            }
            if let Some(p) = &cfg.password {
                o = o.password(p);
            }
            if let Some(d) = &cfg.name {
                o = o.database(d);
            }
            o
        }
    };
    // Galera: the configured nodes in order; otherwise the one address.
    let candidates: Vec<MySqlConnectOptions> = if cfg.galera.enabled && !cfg.galera.nodes.is_empty()
    {
        cfg.galera
            .nodes
            .iter()
            .map(|n| {
                let (h, p) = parse_node(n);
                base.clone().host(&h).port(p)
            })
            .collect()
    } else {
        vec![base]
    };
    let mut last: Option<StoreError> = None;
    for opts in candidates {
        let sync_wait = cfg.galera.enabled.then_some(cfg.galera.sync_wait);
        let mut conn = match sqlx::MySqlConnection::connect_with(&opts).await {
            Ok(c) => c,
            Err(e) => {
                last = Some(db_error("connecting to MySQL", e));
                continue;
            }
        };
        let state = if cfg.galera.enabled {
            node_state(&mut conn).await?
        } else {
            NodeState::Ready
        };
        conn.close()
            .await
            .map_err(|e| db_error("connecting to MySQL", e))?;
        match state {
            NodeState::Ready => {}
            NodeState::Standalone => {
                tracing::warn!(
                    "GALERA_MODE is on but the server has no wsrep provider: running as plain MySQL/MariaDB"
                );
            }
            NodeState::NotReady(s) => {
                last = Some(StoreError::new(
                    ErrorKind::Retryable,
                    format!("Galera node not ready (wsrep_ready={s})"),
                ));
                continue;
            }
        }
        let pool = MySqlPoolOptions::new()
            .max_connections(cfg.pool_size)
            .acquire_timeout(acquire)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if let Some(w) = sync_wait {
                        set_sync_wait(conn, w).await?;
                    }
                    Ok(())
                })
            })
            .connect_lazy_with(opts);
        return Ok(Backend::MySql(pool));
    }
    Err(last.unwrap_or_else(|| StoreError::invalid("no MySQL address configured")))
}

/// Asks a server whether it is a ready Galera node.
async fn node_state(conn: &mut sqlx::MySqlConnection) -> Result<NodeState, StoreError> {
    let on: Option<i64> = match sqlx::query("SELECT CAST(@@wsrep_on AS SIGNED)")
        .fetch_one(&mut *conn)
        .await
    {
        Ok(r) => Some(
            r.try_get::<i64, _>(0)
                .map_err(|e| db_error("reading wsrep_on", e))?,
        ),
        Err(sqlx::Error::Database(db))
            if db
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .is_some_and(|m| m.number() == 1193) =>
        {
            None
        }
        Err(e) => return Err(db_error("reading wsrep_on", e)),
    };
    let ready: Option<String> = sqlx::query("SHOW STATUS LIKE 'wsrep_ready'")
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| db_error("reading wsrep_ready", e))?
        .map(|r| r.try_get::<String, _>(1))
        .transpose()
        .map_err(|e| db_error("reading wsrep_ready", e))?;
    Ok(NodeState::from_status(on, ready.as_deref()))
}

/// Sets `wsrep_sync_wait` on a new connection. A server that does not know
/// the variable (MySQL without Galera) is tolerated with a warning.
async fn set_sync_wait(conn: &mut sqlx::MySqlConnection, w: u8) -> Result<(), sqlx::Error> {
    match conn
        .execute(sqlx::AssertSqlSafe(format!(
            "SET SESSION wsrep_sync_wait = {w}"
        )))
        .await
    {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(db))
            if db
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .is_some_and(|m| m.number() == 1193) =>
        {
            metrics::counter!("killkrill_store_galera_sync_wait_unsupported_total").increment(1);
            tracing::warn!(
                "server does not know wsrep_sync_wait (not MariaDB/Galera): reads may not see writes made on other nodes"
            );
            Ok(())
        }
        Err(e) => Err(e),
    }
}
