//! Test harness: the same test body on every backend that is available.
//!
//! SQLite always (a fresh file per test); PostgreSQL when
//! `KILLKRILL_TEST_POSTGRES_URL` is set (a fresh schema per test, dropped
//! afterwards); MySQL/MariaDB when `KILLKRILL_TEST_MYSQL_URL` is set (a fresh
//! database per test, dropped afterwards). A backend without its URL is
//! skipped with a printed reason. The in-memory store runs too, as the
//! reference.
#![allow(dead_code, clippy::print_stderr)]

use std::sync::Arc;

use killkrill_core::event::{
    EventId, FieldValue, LogRecord, SdElement, Severity, Tenant, Timestamp,
};
use killkrill_core::logblock::BlockOptions;
use killkrill_core::logquery::{LogFilter, LogQuery, Order, query_logs};
use killkrill_core::storage::{LogStore, MemoryLogStore, TimeRange};
use killkrill_store::{DbType, Store, StoreConfig};
use sqlx::Connection;

/// A store under test and how to clean it up.
pub struct Backend {
    pub name: &'static str,
    pub store: Arc<dyn LogStore>,
    pub sql: Option<Store>,
    cleanup: Cleanup,
    _dir: Option<tempfile::TempDir>,
}

enum Cleanup {
    None,
    PgSchema { url: String, schema: String },
    MyDatabase { url: String, db: String },
}

fn unique(prefix: &str) -> String {
    let n = Timestamp::now().as_nanos() as u64 ^ (u64::from(std::process::id()) << 40);
    format!("{prefix}_{n:x}")
}

/// Small blocks so few records make many blocks.
pub fn small_blocks(n: usize) -> BlockOptions {
    BlockOptions {
        max_records: n,
        threads: 2,
        ..BlockOptions::default()
    }
}

/// URL with its database path replaced.
fn with_db(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| i + scheme_end);
    let mut out = format!("{}/{db}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

pub async fn sqlite(opts: BlockOptions) -> Backend {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = StoreConfig::sqlite(dir.path());
    cfg.sqlite.synchronous = killkrill_store::SqliteSync::Off;
    let store = Store::open(cfg)
        .await
        .expect("open sqlite")
        .with_block_options(opts);
    Backend {
        name: "sqlite",
        store: Arc::new(store.clone()),
        sql: Some(store),
        cleanup: Cleanup::None,
        _dir: Some(dir),
    }
}

pub async fn postgres(opts: BlockOptions) -> Option<Backend> {
    let Ok(url) = std::env::var("KILLKRILL_TEST_POSTGRES_URL") else {
        eprintln!("skipping postgres: KILLKRILL_TEST_POSTGRES_URL is not set");
        return None;
    };
    let schema = unique("kk_test");
    let mut c = sqlx::PgConnection::connect(&url)
        .await
        .expect("connect to postgres");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut c)
        .await
        .expect("create schema");
    c.close().await.expect("close");
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let store = Store::open(StoreConfig::from_url(DbType::Postgres, scoped))
        .await
        .expect("open postgres")
        .with_block_options(opts);
    Some(Backend {
        name: "postgres",
        store: Arc::new(store.clone()),
        sql: Some(store),
        cleanup: Cleanup::PgSchema { url, schema },
        _dir: None,
    })
}

pub async fn mysql_url() -> Option<String> {
    match std::env::var("KILLKRILL_TEST_MYSQL_URL") {
        Ok(u) => Some(u),
        Err(_) => {
            eprintln!("skipping mysql: KILLKRILL_TEST_MYSQL_URL is not set");
            None
        }
    }
}

/// Creates a fresh database and returns its URL.
pub async fn mysql_database(url: &str) -> (String, String) {
    let db = unique("kk_test");
    let mut c = sqlx::MySqlConnection::connect(url)
        .await
        .expect("connect to mysql");
    // A Galera node answers 1047 ("WSREP has not yet prepared node") while
    // it (re)joins its cluster: wait for it rather than fail the test.
    let mut tries = 0;
    loop {
        match sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
            .execute(&mut c)
            .await
        {
            Ok(_) => break,
            Err(e) if tries < 60 && e.to_string().contains("WSREP") => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(e) => panic!("create database: {e}"),
        }
    }
    c.close().await.expect("close");
    (with_db(url, &db), db)
}

pub async fn mysql(opts: BlockOptions) -> Option<Backend> {
    let url = mysql_url().await?;
    let (scoped, db) = mysql_database(&url).await;
    let store = Store::open(StoreConfig::from_url(DbType::Mysql, scoped))
        .await
        .expect("open mysql")
        .with_block_options(opts);
    Some(Backend {
        name: "mysql",
        store: Arc::new(store.clone()),
        sql: Some(store),
        cleanup: Cleanup::MyDatabase { url, db },
        _dir: None,
    })
}

pub fn memory() -> Backend {
    Backend {
        name: "memory",
        store: Arc::new(MemoryLogStore::new()),
        sql: None,
        cleanup: Cleanup::None,
        _dir: None,
    }
}

/// Every available backend, the in-memory reference first.
pub async fn all(opts: BlockOptions) -> Vec<Backend> {
    let mut v = vec![memory(), sqlite(opts.clone()).await];
    v.extend(postgres(opts.clone()).await);
    v.extend(mysql(opts).await);
    v
}

impl Backend {
    /// Closes the pools and drops the schema or database.
    pub async fn cleanup(self) {
        if let Some(s) = &self.sql {
            s.close().await;
        }
        match self.cleanup {
            Cleanup::None => {}
            Cleanup::PgSchema { url, schema } => {
                let mut c = sqlx::PgConnection::connect(&url).await.expect("connect");
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                    .execute(&mut c)
                    .await
                    .expect("drop schema");
            }
            Cleanup::MyDatabase { url, db } => {
                let mut c = sqlx::MySqlConnection::connect(&url).await.expect("connect");
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {db}")))
                    .execute(&mut c)
                    .await
                    .expect("drop database");
            }
        }
    }

    /// Encodes and writes records with this backend's block options.
    pub async fn write(
        &self,
        records: Vec<LogRecord>,
        opts: &BlockOptions,
    ) -> killkrill_core::storage::WriteReport {
        let blocks = killkrill_core::logblock::build_blocks(records, opts).expect("encode");
        self.store.write_blocks(&blocks).await.expect("write")
    }
}

pub const HOSTS: [&str; 3] = ["web1", "web2", "db1"];
pub const APPS: [&str; 3] = ["nginx", "postgres", "cron"];
pub const WORDS: [&str; 8] = [
    "timeout", "upstream", "connect", "Error", "user", "login", "disk", "full",
];

/// A deterministic record.
pub fn record(tenant: &Tenant, i: u64, ts: i64) -> LogRecord {
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let w = |k: u64| WORDS[((h >> k) % WORDS.len() as u64) as usize];
    LogRecord {
        id: Some(EventId::from_parts(
            ts.max(0) as u64 / 1_000_000,
            u128::from(i),
        )),
        tenant: Some(tenant.clone()),
        timestamp: Timestamp::from_nanos(ts),
        severity: if i.is_multiple_of(7) {
            None
        } else {
            Severity::from_code((h % 8) as u8)
        },
        facility: None,
        host: if i.is_multiple_of(11) {
            None
        } else {
            Some(HOSTS[(i % 3) as usize].into())
        },
        app: Some(APPS[((i / 3) % 3) as usize].into()),
        procid: Some((100 + i % 5).to_string()),
        msgid: None,
        structured_data: if i.is_multiple_of(4) {
            vec![SdElement {
                id: "origin".into(),
                params: vec![("ip".into(), format!("10.0.0.{}", i % 3))],
            }]
        } else {
            Vec::new()
        },
        message: Some(format!("{} {} {} request {i}", w(8), w(16), w(24)).into_bytes()),
        source: Some(
            if i.is_multiple_of(2) {
                "syslog-udp"
            } else {
                "http"
            }
            .into(),
        ),
        attributes: if i.is_multiple_of(5) {
            vec![("user".into(), FieldValue::Int((i % 4) as i64))]
        } else {
            Vec::new()
        },
        parse_error: None,
    }
}

/// The reference: filter and sort in memory.
pub fn naive(records: &[LogRecord], q: &LogQuery) -> Vec<LogRecord> {
    let mut seen = std::collections::HashSet::new();
    let f = &q.filter;
    let tokens = f
        .text
        .as_deref()
        .map(killkrill_core::logblock::query_tokens)
        .unwrap_or_default();
    let mut out: Vec<LogRecord> = records
        .iter()
        .filter(|r| r.tenant.as_ref() == Some(&q.tenant) && q.range.contains(r.timestamp))
        .filter(|r| seen.insert(r.id))
        .filter(|r| {
            f.min_severity
                .is_none_or(|m| r.severity.is_some_and(|s| s <= m))
        })
        .filter(|r| f.host.is_none() || r.host == f.host)
        .filter(|r| f.app.is_none() || r.app == f.app)
        .filter(|r| f.source.is_none() || r.source == f.source)
        .filter(|r| {
            f.fields.iter().all(|(n, v)| {
                r.structured_data.iter().any(|el| {
                    el.params
                        .iter()
                        .any(|(k, pv)| format!("{}.{}", el.id, k) == *n && pv == v)
                }) || r
                    .attributes
                    .iter()
                    .any(|(k, av)| k == n && av.to_text() == v.as_str())
            })
        })
        .filter(|r| {
            let mut texts: Vec<Vec<u8>> = r.message.iter().cloned().collect();
            for el in &r.structured_data {
                texts.extend(el.params.iter().map(|(_, v)| v.as_bytes().to_vec()));
            }
            texts.extend(
                r.attributes
                    .iter()
                    .map(|(_, v)| v.to_text().as_bytes().to_vec()),
            );
            let mut have = Vec::new();
            let mut buf = Vec::new();
            for t in &texts {
                killkrill_core::logblock::tokenizer::for_each_token(t, &mut buf, |tok| {
                    have.push(tok.to_vec())
                });
            }
            tokens.iter().all(|q| have.contains(q))
        })
        .cloned()
        .collect();
    out.sort_by_key(|r| (r.timestamp, r.id));
    if q.order == Order::NewestFirst {
        out.reverse();
    }
    if let Some(c) = q.cursor {
        let key = (c.timestamp, Some(c.id));
        out.retain(|r| {
            let k = (r.timestamp, r.id);
            if q.order == Order::NewestFirst {
                k < key
            } else {
                k > key
            }
        });
    }
    out
}

/// Walks every page of `q` and returns the records in order.
pub async fn walk(store: &dyn LogStore, mut q: LogQuery) -> Vec<LogRecord> {
    let mut out = Vec::new();
    for _ in 0..100_000 {
        let page = query_logs(store, &q).await.expect("query");
        assert!(page.records.len() <= q.limit);
        out.extend(page.records);
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return out,
        }
    }
    panic!("pagination did not end");
}

pub fn query(tenant: &Tenant, filter: LogFilter, order: Order, limit: usize) -> LogQuery {
    LogQuery {
        tenant: tenant.clone(),
        range: TimeRange::ALL,
        filter,
        order,
        limit,
        cursor: None,
    }
}

pub fn ids(r: &[LogRecord]) -> Vec<Option<EventId>> {
    r.iter().map(|r| r.id).collect()
}
