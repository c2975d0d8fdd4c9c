//! Metric write throughput per backend (criterion), against the bare-table
//! limit measured in the same run.
//!
//! ```text
//! KILLKRILL_TEST_POSTGRES_URL=… KILLKRILL_TEST_MYSQL_URL=… \
//!   cargo bench --workspace --bench metric_store
//! ```
//! Workload: one `write_samples` call per iteration of 2,000 series × 100
//! samples (15 s apart) = 200,000 samples, each iteration 25 minutes later
//! than the previous (fresh chunks, the series index touched once an hour,
//! as in steady ingest). Measured per backend:
//! - `store`: `MetricStore::write_samples` — validation, grouping, chunk
//!   encoding, series upsert (when the cache says so), chunk insert with the
//!   primary key and the retention index, commit;
//! - `bare_table`: the same, already encoded chunk rows into a table without
//!   any key or index, multi-row INSERTs of 500 rows in one transaction —
//!   the limit of the database for these bytes.
//!
//!
//! A second group, `metric_write_scrape`, writes 20,000 series × 1 sample
//! per call: the shape of a remote_write request stored as it arrives, one
//! chunk row per sample (the worst case for chunked storage). Such small
//! chunks go to the time-major head table; `head_compaction` measures the
//! background merge of 8 such writes into full per-series chunks
//! (`Store::compact_metric_head`), so the amortised cost is visible too.
//!
//! PostgreSQL / MySQL run when their URL is set (a fresh schema / database
//! is made and dropped). A summary with the ratio goes to stderr.
#![allow(clippy::print_stderr, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use killkrill_core::event::{Labels, MetricSample, NANOS_PER_SEC, Tenant, Timestamp};
use killkrill_core::storage::MetricStore;
use killkrill_core::storage::metric_chunk::prepare_samples;
use killkrill_store::{Backend as Pools, DbType, SqliteSync, Store, StoreConfig};
use sqlx::{AssertSqlSafe, Connection, Executor};

const SERIES: usize = 2_000;
/// Series in the one-sample-per-series shape.
const SCRAPE_SERIES: usize = 20_000;
const PER_SERIES: usize = 100;
const STEP: i64 = 15 * NANOS_PER_SEC;
const T0: i64 = 1_764_000_000 * NANOS_PER_SEC;

/// (backend, measurement) → (samples, seconds).
type Totals = BTreeMap<(String, &'static str), (u64, f64)>;

static TOTALS: Mutex<Totals> = Mutex::new(BTreeMap::new());

fn record(backend: &str, what: &'static str, samples: u64, secs: f64) {
    let mut g = TOTALS.lock().unwrap();
    let e = g.entry((backend.to_owned(), what)).or_insert((0, 0.0));
    e.0 += samples;
    e.1 += secs;
}

/// A batch of `SERIES × PER_SERIES` samples starting at iteration `i`.
fn batch(i: u64) -> Vec<MetricSample> {
    shaped(i, SERIES, PER_SERIES)
}

/// `series × per_series` samples, iteration `i`.
fn shaped(i: u64, series: usize, per_series: usize) -> Vec<MetricSample> {
    let start = T0 + i as i64 * per_series as i64 * STEP;
    let mut out = Vec::with_capacity(series * per_series);
    for s in 0..series {
        let labels = Labels::from_pairs([
            ("job", "node"),
            ("instance", &format!("10.0.{}.{}:9100", s / 250, s % 250)),
            ("mode", ["idle", "user", "system", "iowait"][s % 4]),
        ]);
        let mut v = (s * 1000) as f64;
        for k in 0..per_series {
            v += ((k * 7 + s) % 13) as f64 * 0.25;
            out.push(MetricSample {
                name: "node_cpu_seconds_total".into(),
                labels: labels.clone(),
                value: v,
                timestamp: Some(Timestamp::from_nanos(
                    start + k as i64 * STEP + (k as i64 % 3) * 1_000_000,
                )),
                ..MetricSample::default()
            });
        }
    }
    out
}

struct Db {
    name: &'static str,
    store: Store,
    cleanup: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

async fn open(kind: &'static str) -> Option<Db> {
    let uniq = format!("kk_mbench_{:x}", Timestamp::now().as_nanos() as u64);
    match kind {
        "sqlite" => {
            let dir = tempfile::tempdir().unwrap();
            let mut cfg = StoreConfig::sqlite(dir.path());
            cfg.sqlite.synchronous = SqliteSync::Normal;
            Some(Db {
                name: kind,
                store: Store::open(cfg).await.unwrap(),
                cleanup: None,
                _dir: Some(dir),
            })
        }
        "postgres" => {
            let Ok(url) = std::env::var("KILLKRILL_TEST_POSTGRES_URL") else {
                eprintln!("skipping postgres: KILLKRILL_TEST_POSTGRES_URL is not set");
                return None;
            };
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            c.execute(AssertSqlSafe(format!("CREATE SCHEMA {uniq}")))
                .await
                .unwrap();
            let sep = if url.contains('?') { '&' } else { '?' };
            let scoped = format!("{url}{sep}options=-c%20search_path%3D{uniq}");
            Some(Db {
                name: kind,
                store: Store::open(StoreConfig::from_url(DbType::Postgres, scoped))
                    .await
                    .unwrap(),
                cleanup: Some((url, format!("DROP SCHEMA {uniq} CASCADE"))),
                _dir: None,
            })
        }
        _ => {
            let Ok(url) = std::env::var("KILLKRILL_TEST_MYSQL_URL") else {
                eprintln!("skipping mysql: KILLKRILL_TEST_MYSQL_URL is not set");
                return None;
            };
            let mut c = sqlx::MySqlConnection::connect(&url).await.unwrap();
            c.execute(AssertSqlSafe(format!("CREATE DATABASE {uniq}")))
                .await
                .unwrap();
            let scoped = format!("{}/{uniq}", url.rsplit_once('/').unwrap().0);
            Some(Db {
                name: kind,
                store: Store::open(StoreConfig::from_url(DbType::Mysql, scoped))
                    .await
                    .unwrap(),
                cleanup: Some((url, format!("DROP DATABASE {uniq}"))),
                _dir: None,
            })
        }
    }
}

async fn close(db: Db) {
    db.store.close().await;
    if let Some((url, sql)) = db.cleanup {
        if url.starts_with("postgres") {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            c.execute(AssertSqlSafe(sql)).await.unwrap();
        } else {
            let mut c = sqlx::MySqlConnection::connect(&url).await.unwrap();
            c.execute(AssertSqlSafe(sql)).await.unwrap();
        }
    }
}

/// Rows of the bare table: the store's chunk columns.
type BareRow = (i64, i64, Vec<u8>, i64, i64, Vec<u8>);

fn bare_rows(tenant: &Tenant, samples: &[MetricSample]) -> Vec<BareRow> {
    let p = prepare_samples(tenant, samples).unwrap();
    p.series
        .iter()
        .flat_map(|s| {
            s.chunks.iter().map(|c| {
                (
                    s.id.as_i64(),
                    c.min_ts,
                    c.id.to_vec(),
                    c.max_ts,
                    i64::from(c.count),
                    c.data.clone(),
                )
            })
        })
        .collect()
}

macro_rules! bare_insert {
    ($pool:expr, $d:expr, $rows:expr) => {{
        let mut tx = $pool.begin().await.unwrap();
        for part in $rows.chunks(500) {
            let sql = $d.sql(&format!(
                "INSERT INTO bare_chunks VALUES {}",
                killkrill_store::dialect::Dialect::rows(part.len(), 7)
            ));
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for r in part {
                q = q
                    .bind("bench")
                    .bind(r.0)
                    .bind(r.1)
                    .bind(&r.2[..])
                    .bind(r.3)
                    .bind(r.4)
                    .bind(&r.5[..]);
            }
            q.execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
    }};
}

async fn bare_write(store: &Store, rows: &[BareRow]) {
    let d = killkrill_store::dialect::Dialect(store.db_type());
    match store.backend() {
        Pools::Sqlite { writer, .. } => bare_insert!(writer, d, rows),
        Pools::Postgres(p) => bare_insert!(p, d, rows),
        Pools::MySql(p) => bare_insert!(p, d, rows),
    }
}

async fn create_bare(store: &Store) {
    let blob = match store.db_type() {
        DbType::Postgres => "BYTEA",
        DbType::Mysql => "MEDIUMBLOB",
        DbType::Sqlite => "BLOB",
    };
    let text = if store.db_type() == DbType::Mysql {
        "VARCHAR(64)"
    } else {
        "TEXT"
    };
    let ddl = format!(
        "CREATE TABLE bare_chunks (tenant {text}, series_id BIGINT, min_ts BIGINT, chunk_id {blob}, max_ts BIGINT, sample_count BIGINT, data {blob})"
    );
    match store.backend() {
        Pools::Sqlite { writer, .. } => sqlx::query(AssertSqlSafe(ddl))
            .execute(writer)
            .await
            .map(|_| ()),
        Pools::Postgres(p) => sqlx::query(AssertSqlSafe(ddl)).execute(p).await.map(|_| ()),
        Pools::MySql(p) => sqlx::query(AssertSqlSafe(ddl)).execute(p).await.map(|_| ()),
    }
    .unwrap();
}

fn writes(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tenant = Tenant::new("bench").unwrap();
    for (what, samples) in [
        ("100 per series", batch(0)),
        ("1 per series", shaped(0, SCRAPE_SERIES, 1)),
    ] {
        let rows = bare_rows(&tenant, &samples);
        let bytes: usize = rows.iter().map(|r| r.5.len()).sum();
        eprintln!(
            "chunk bytes per sample ({what}): {:.2} (16 bytes raw)",
            bytes as f64 / samples.len() as f64
        );
    }
    for kind in ["sqlite", "postgres", "mysql"] {
        let Some(db) = rt.block_on(open(kind)) else {
            continue;
        };
        rt.block_on(create_bare(&db.store));
        let mut g = c.benchmark_group(format!("metric_write/{}", db.name));
        g.throughput(Throughput::Elements((SERIES * PER_SERIES) as u64));
        g.sample_size(10);
        g.warm_up_time(Duration::from_secs(1));
        g.measurement_time(Duration::from_secs(10));
        let mut next = 0u64;
        g.bench_function("store", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let samples = batch(next);
                    next += 1;
                    let started = Instant::now();
                    let rep = rt
                        .block_on(db.store.write_samples(&tenant, &samples))
                        .unwrap();
                    let took = started.elapsed();
                    assert_eq!(rep.chunks_written, SERIES);
                    record(db.name, "store", rep.samples, took.as_secs_f64());
                    total += took;
                }
                total
            })
        });
        let mut next = 0u64;
        g.bench_function("bare_table", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let rows = bare_rows(&tenant, &batch(next));
                    next += 1;
                    let started = Instant::now();
                    rt.block_on(bare_write(&db.store, &rows));
                    let took = started.elapsed();
                    record(
                        db.name,
                        "bare_table",
                        (SERIES * PER_SERIES) as u64,
                        took.as_secs_f64(),
                    );
                    total += took;
                }
                total
            })
        });
        g.finish();
        // The unfavourable shape: one sample per series per write (a
        // remote_write request written as it arrives): a chunk row per sample.
        let mut g = c.benchmark_group(format!("metric_write_scrape/{}", db.name));
        g.throughput(Throughput::Elements(SCRAPE_SERIES as u64));
        g.sample_size(10);
        g.warm_up_time(Duration::from_secs(1));
        g.measurement_time(Duration::from_secs(8));
        let mut next = 1_000_000u64;
        g.bench_function("store", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let samples = shaped(next, SCRAPE_SERIES, 1);
                    next += 1;
                    let started = Instant::now();
                    let rep = rt
                        .block_on(db.store.write_samples(&tenant, &samples))
                        .unwrap();
                    let took = started.elapsed();
                    assert_eq!(rep.chunks_written, SCRAPE_SERIES);
                    record(db.name, "scrape_store", rep.samples, took.as_secs_f64());
                    total += took;
                }
                total
            })
        });
        let mut next = 1_000_000u64;
        g.bench_function("bare_table", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let rows = bare_rows(&tenant, &shaped(next, SCRAPE_SERIES, 1));
                    next += 1;
                    let started = Instant::now();
                    rt.block_on(bare_write(&db.store, &rows));
                    let took = started.elapsed();
                    record(
                        db.name,
                        "scrape_bare",
                        SCRAPE_SERIES as u64,
                        took.as_secs_f64(),
                    );
                    total += took;
                }
                total
            })
        });
        // The deferred cost: merging the head into full chunks.
        let mut next = 5_000_000u64;
        g.bench_function("head_compaction", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut end = 0i64;
                    for _ in 0..8 {
                        let samples = shaped(next, SCRAPE_SERIES, 1);
                        end = samples
                            .iter()
                            .filter_map(|s| s.timestamp)
                            .map(Timestamp::as_nanos)
                            .max()
                            .unwrap_or(0);
                        next += 1;
                        rt.block_on(db.store.write_samples(&tenant, &samples))
                            .unwrap();
                    }
                    let started = Instant::now();
                    let rep = rt
                        .block_on(
                            db.store
                                .compact_metric_head(&tenant, Timestamp::from_nanos(end + 1)),
                        )
                        .unwrap();
                    let took = started.elapsed();
                    assert!(rep.samples >= 8 * SCRAPE_SERIES as u64, "{rep:?}");
                    record(db.name, "head_compaction", rep.samples, took.as_secs_f64());
                    total += took;
                }
                total
            })
        });
        g.finish();
        rt.block_on(close(db));
    }
    let g = TOTALS.lock().unwrap();
    for kind in ["sqlite", "postgres", "mysql"] {
        let rate = |what| g.get(&(kind.to_owned(), what)).map(|(n, s)| *n as f64 / s);
        for (label, st, ba) in [
            ("metric_write", "store", "bare_table"),
            ("metric_write_scrape", "scrape_store", "scrape_bare"),
        ] {
            if let (Some(store), Some(bare)) = (rate(st), rate(ba)) {
                eprintln!(
                    "{label}/{kind}: store {:.0} samples/s, bare table {:.0} samples/s, store/bare = {:.2}",
                    store,
                    bare,
                    store / bare
                );
            }
        }
        if let (Some(w), Some(c)) = (rate("scrape_store"), rate("head_compaction")) {
            eprintln!(
                "metric_write_scrape/{kind}: head compaction {c:.0} samples/s; write + compaction amortised {:.0} samples/s",
                1.0 / (1.0 / w + 1.0 / c)
            );
        }
    }
}

criterion_group!(benches, writes);
criterion_main!(benches);
