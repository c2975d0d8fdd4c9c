//! # killkrill-store
//!
//! Killkrill's storage on PostgreSQL, MySQL/MariaDB (Galera included) and
//! SQLite: the sqlx implementation of killkrill-core's storage traits.
//!
//! Why it looks like this: logs are stored as compressed blocks with summary
//! columns (see `killkrill_core::logblock`), so the SQL is small — insert
//! blocks, list summaries by tenant and time, fetch payloads by id, delete
//! by time — and written once for all three databases. What really differs
//! (placeholders, insert-if-absent and upsert syntax, PostgreSQL's binary
//! COPY, bounded deletes for Galera) lives in [`dialect`]. One [`Store`]
//! type holds an enum of the three pools ([`backend`]), chosen at run time
//! from `DB_TYPE` ([`config`]).
//!
//! Layout, one concept per file, so the metric store can sit beside the log
//! store:
//! - [`config`]: `StoreConfig` and the `DB_*` / `GALERA_*` variables.
//! - [`backend`]: the pool enum, connecting with retries, `Store`.
//! - [`dialect`]: the dialect differences.
//! - [`migrate`]: embedded migrations per backend.
//! - [`error`]: sqlx errors → `StoreError` kinds.
//! - [`retry`]: bounded, counted retries with backoff.
//! - [`galera`]: what Galera mode changes.
//! - `logs/`: the `LogStore` implementation.
//! - `metrics/`: the `MetricStore` implementation (series index, sample
//!   chunks, rollups).
//! - [`dead_letter`]: the dead-letter table.
//! - [`auth`]: tenants, users, refresh tokens, API keys, audit log.
//! - [`queue`]: the durable queues (SQLite file, Redis Streams) and their config.

pub mod auth;
pub mod backend;
#[doc(hidden)]
pub mod bench_support;
pub mod cluster;
pub mod config;
pub mod dead_letter;
pub mod dialect;
pub mod error;
pub mod galera;
pub(crate) mod logs;
pub(crate) mod metrics;
pub mod migrate;
pub mod queue;
pub mod retry;
pub mod settings;

pub use backend::{Backend, Store};
pub use config::{
    ConfigError, DbType, GaleraConfig, LogBlockConfig, RetryConfig, SqliteConfig, SqliteSync,
    StoreConfig,
};
pub use logs::summary_index::SummaryIndexStats;
pub use metrics::{
    COMPACT_FLUSHES, HEAD_MAX_SAMPLES, HeadCompactionReport, HeadStep,
    ROLLUP_HEAD_COMPACTION_ERRORS, ROLLUP_HEAD_COMPACTIONS, ROLLUP_HEAD_FLUSHES,
    ROLLUP_HEAD_ROWS_MERGED, RollupHeadCompaction,
};
