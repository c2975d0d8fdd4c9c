//! Log store load benchmark: write throughput (encoding included) against
//! the bare-table limit, bytes per record, and query latencies over a large
//! store, per backend, in one run.
//!
//! ```text
//! cargo bench --workspace --bench log_store -- [--records N] [--write-sample N]
//!     [--backends sqlite,postgres,mysql] [--iterations N] [--dir PATH]
//! ```
//! PostgreSQL and MySQL come from KILLKRILL_TEST_POSTGRES_URL and
//! KILLKRILL_TEST_MYSQL_URL (a fresh schema/database is made and dropped).
//! scripts/bench-log-store runs it with the documented settings.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use killkrill_core::event::{LogRecord, NANOS_PER_SEC, Severity, Tenant, Timestamp};
use killkrill_core::logblock::{BlockOptions, EncodedBlock, build_blocks};
use killkrill_core::logquery::{LogFilter, LogQuery, Order, VolumeQuery, query_logs, query_volume};
use killkrill_core::storage::{LogStore, TimeRange};
use killkrill_store::{Backend as Pools, DbType, SqliteSync, Store, StoreConfig};
use sqlx::{AssertSqlSafe, Connection, Executor};

#[path = "support/log_data.rs"]
mod log_data;
use log_data::{DAY, NOUNS, RARE, T0, generate};

struct Args {
    records: usize,
    write_sample: usize,
    backends: Vec<String>,
    iterations: usize,
    dir: std::path::PathBuf,
    bloom_sweep: bool,
}

fn args() -> Args {
    let mut a = Args {
        records: 10_000_000,
        write_sample: 1_000_000,
        backends: vec!["sqlite".into(), "postgres".into(), "mysql".into()],
        iterations: 40,
        dir: std::env::temp_dir().join("killkrill-bench"),
        bloom_sweep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().expect("value after flag");
        match k.as_str() {
            "--records" => a.records = v().parse().expect("number"),
            "--write-sample" => a.write_sample = v().parse().expect("number"),
            "--backends" => a.backends = v().split(',').map(str::to_owned).collect(),
            "--iterations" => a.iterations = v().parse().expect("number"),
            "--dir" => a.dir = v().into(),
            "--bloom-sweep" => a.bloom_sweep = true,
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

struct Db {
    name: String,
    store: Store,
    cleanup: Option<(String, String)>,
}

async fn open(kind: &str, dir: &std::path::Path) -> Option<Db> {
    let uniq = format!("kk_bench_{:x}", Timestamp::now().as_nanos() as u64);
    match kind {
        "sqlite" => {
            let d = dir.join("sqlite");
            let _ = std::fs::remove_dir_all(&d);
            let mut cfg = StoreConfig::sqlite(&d);
            cfg.sqlite.synchronous = SqliteSync::Normal;
            Some(Db {
                name: "sqlite".into(),
                store: Store::open(cfg).await.unwrap(),
                cleanup: None,
            })
        }
        "postgres" => {
            let url = std::env::var("KILLKRILL_TEST_POSTGRES_URL").ok()?;
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            c.execute(AssertSqlSafe(format!("CREATE SCHEMA {uniq}")))
                .await
                .unwrap();
            let sep = if url.contains('?') { '&' } else { '?' };
            let scoped = format!("{url}{sep}options=-c%20search_path%3D{uniq}");
            let store = Store::open(StoreConfig::from_url(DbType::Postgres, scoped))
                .await
                .unwrap();
            Some(Db {
                name: "postgres".into(),
                store,
                cleanup: Some((url, format!("DROP SCHEMA {uniq} CASCADE"))),
            })
        }
        "mysql" => {
            let url = std::env::var("KILLKRILL_TEST_MYSQL_URL").ok()?;
            let mut c = sqlx::MySqlConnection::connect(&url).await.unwrap();
            c.execute(AssertSqlSafe(format!("CREATE DATABASE {uniq}")))
                .await
                .unwrap();
            let scoped = format!("{}/{uniq}", url.rsplit_once('/').unwrap().0);
            let store = Store::open(StoreConfig::from_url(DbType::Mysql, scoped))
                .await
                .unwrap();
            Some(Db {
                name: "mysql".into(),
                store,
                cleanup: Some((url, format!("DROP DATABASE {uniq}"))),
            })
        }
        "none" => None,
        other => panic!("unknown backend {other}"),
    }
}

/// Writes `records` through the ingest path with two batches in flight
/// (one encoding while the other is written). Returns records/s.
async fn write_throughput(store: &Store, records: Vec<LogRecord>, batch: usize) -> f64 {
    let n = records.len();
    let store = Arc::new(store.clone());
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<LogRecord>>(2);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..2 {
        let store = store.clone();
        let rx = rx.clone();
        workers.push(tokio::spawn(async move {
            loop {
                let next = rx.lock().await.recv().await;
                let Some(b) = next else { break };
                store.write_records(b).await.unwrap();
            }
        }));
    }
    let mut it = records.into_iter();
    loop {
        let b: Vec<LogRecord> = it.by_ref().take(batch).collect();
        if b.is_empty() {
            break;
        }
        tx.send(b).await.unwrap();
    }
    drop(tx);
    for w in workers {
        w.await.unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// The bare-table limit: the same encoded bytes into a table without
/// indexes — SQLite: prepared INSERTs in one transaction; PostgreSQL: psql
/// `\copy` of the same binary COPY file; MySQL: multi-row INSERTs in one
/// transaction. Returns records/s.
async fn bare_limit(db: &Db, blocks: &[EncodedBlock], dir: &std::path::Path) -> f64 {
    let records: u64 = blocks.iter().map(|b| u64::from(b.summary.count)).sum();
    let ddl_cols = "(tenant TEXT, block_id {B}, min_ts BIGINT, max_ts BIGINT, record_count BIGINT, summary {B}, tokens {B}, payload {B}, created_at BIGINT)";
    match db.store.backend() {
        Pools::Sqlite { writer, .. } => {
            sqlx::query(AssertSqlSafe(format!(
                "CREATE TABLE bare {}",
                ddl_cols.replace("{B}", "BLOB")
            )))
            .execute(writer)
            .await
            .unwrap();
            let started = Instant::now();
            let mut tx = writer.begin().await.unwrap();
            for b in blocks {
                let s = &b.summary;
                sqlx::query("INSERT INTO bare VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
                    .bind(s.tenant.as_str())
                    .bind(s.id.to_bytes().to_vec())
                    .bind(s.min_ts.as_nanos())
                    .bind(s.max_ts.as_nanos())
                    .bind(i64::from(s.count))
                    .bind(s.summary_bytes())
                    .bind(s.token_bytes())
                    .bind(&b.payload[..])
                    .bind(0i64)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
            records as f64 / started.elapsed().as_secs_f64()
        }
        Pools::Postgres(pool) => {
            sqlx::query(AssertSqlSafe(format!(
                "CREATE TABLE bare {}",
                ddl_cols.replace("{B}", "BYTEA")
            )))
            .execute(pool)
            .await
            .unwrap();
            sqlx::query("ALTER TABLE bare ALTER COLUMN payload SET STORAGE EXTERNAL")
                .execute(pool)
                .await
                .unwrap();
            let refs: Vec<&EncodedBlock> = blocks.iter().collect();
            let file = dir.join("blocks.pgcopy");
            std::fs::write(
                &file,
                killkrill_store::bench_support::pg_copy_payload(&refs),
            )
            .unwrap();
            let url = std::env::var("KILLKRILL_TEST_POSTGRES_URL").unwrap();
            let schema: String = sqlx::query_scalar("SELECT current_schema()")
                .fetch_one(pool)
                .await
                .unwrap();
            let started = Instant::now();
            let st = std::process::Command::new("psql")
                .arg(&url)
                .arg("-q")
                .arg("-c")
                .arg(format!(
                    "\\copy {schema}.bare FROM '{}' WITH (FORMAT binary)",
                    file.display()
                ))
                .status()
                .unwrap();
            assert!(st.success());
            records as f64 / started.elapsed().as_secs_f64()
        }
        Pools::MySql(pool) => {
            sqlx::query(AssertSqlSafe(format!(
                "CREATE TABLE bare {} ENGINE=InnoDB",
                ddl_cols
                    .replace("{B}", "LONGBLOB")
                    .replace("TEXT", "VARCHAR(64)")
            )))
            .execute(pool)
            .await
            .unwrap();
            let started = Instant::now();
            let mut tx = pool.begin().await.unwrap();
            for chunk in blocks.chunks(16) {
                let sql = format!(
                    "INSERT INTO bare VALUES {}",
                    vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
                );
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for b in chunk {
                    let s = &b.summary;
                    q = q
                        .bind(s.tenant.as_str())
                        .bind(s.id.to_bytes().to_vec())
                        .bind(s.min_ts.as_nanos())
                        .bind(s.max_ts.as_nanos())
                        .bind(i64::from(s.count))
                        .bind(s.summary_bytes())
                        .bind(s.token_bytes())
                        .bind(&b.payload[..])
                        .bind(0i64);
                }
                q.execute(&mut *tx).await.unwrap();
            }
            tx.commit().await.unwrap();
            records as f64 / started.elapsed().as_secs_f64()
        }
    }
}

async fn stored_bytes(db: &Db, dir: &std::path::Path) -> u64 {
    match db.store.backend() {
        Pools::Sqlite { writer, .. } => {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(writer)
                .await
                .unwrap();
            let p = dir.join("sqlite").join("killkrill.db");
            std::fs::metadata(p).unwrap().len()
        }
        Pools::Postgres(pool) => {
            let v: i64 = sqlx::query_scalar("SELECT pg_total_relation_size('log_blocks')")
                .fetch_one(pool)
                .await
                .unwrap();
            v as u64
        }
        Pools::MySql(pool) => {
            sqlx::query("ANALYZE TABLE log_blocks")
                .execute(pool)
                .await
                .unwrap();
            let v: i64 = sqlx::query_scalar(
                "SELECT CAST(data_length + index_length AS SIGNED) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'log_blocks'",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            v as u64
        }
    }
}

fn pct(mut v: Vec<Duration>, p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e3
}

async fn timed<F, Fut>(iterations: usize, mut f: F) -> (f64, f64)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    f(0).await; // warm-up
    let mut v = Vec::with_capacity(iterations);
    for i in 0..iterations {
        let s = Instant::now();
        f(i + 1).await;
        v.push(s.elapsed());
    }
    (pct(v.clone(), 0.5), pct(v, 0.99))
}

async fn queries(store: &dyn LogStore, tenant: &Tenant, iterations: usize) {
    let day = TimeRange::new(Timestamp::from_nanos(T0), Timestamp::from_nanos(T0 + DAY));
    let page = |filter: LogFilter| LogQuery {
        tenant: tenant.clone(),
        range: day,
        filter,
        order: Order::NewestFirst,
        limit: 100,
        cursor: None,
    };
    type MakeFilter = Box<dyn Fn(usize) -> LogFilter>;
    let cases: Vec<(&str, MakeFilter)> = vec![
        ("newest page (100)", Box::new(|_| LogFilter::default())),
        (
            "severity >= err page",
            Box::new(|_| LogFilter {
                min_severity: Some(Severity::Error),
                ..LogFilter::default()
            }),
        ),
        (
            "host page",
            Box::new(|i| LogFilter {
                host: Some(format!("web{:02}", i % 20)),
                ..LogFilter::default()
            }),
        ),
        (
            "rare token (24 h)",
            Box::new(|i| LogFilter {
                text: Some(RARE[i % RARE.len()].into()),
                ..LogFilter::default()
            }),
        ),
        (
            "common token page",
            Box::new(|i| LogFilter {
                text: Some(NOUNS[i % NOUNS.len()].into()),
                ..LogFilter::default()
            }),
        ),
    ];
    for (name, f) in &cases {
        let hits = std::cell::Cell::new(0usize);
        let decoded = std::cell::Cell::new(0usize);
        let (p50, p99) = timed(iterations, |i| {
            let q = page(f(i));
            let (hits, decoded) = (&hits, &decoded);
            async move {
                let p = query_logs(store, &q).await.unwrap();
                hits.set(hits.get() + p.records.len());
                decoded.set(decoded.get() + p.blocks_decoded);
            }
        })
        .await;
        println!(
            "  {name:<24} p50 {p50:>8.2} ms  p99 {p99:>8.2} ms  (avg {:.1} records, {:.1} blocks decoded)",
            hits.get() as f64 / (iterations + 1) as f64,
            decoded.get() as f64 / (iterations + 1) as f64
        );
    }
    let info = std::cell::Cell::new((0, 0));
    let (p50, p99) = timed(iterations.min(10), |_| {
        let q = VolumeQuery {
            tenant: tenant.clone(),
            range: day,
            filter: LogFilter::default(),
            step_nanos: 300 * NANOS_PER_SEC,
        };
        let info = &info;
        async move {
            let v = query_volume(store, &q).await.unwrap();
            info.set((v.blocks_from_summary, v.blocks_decoded));
        }
    })
    .await;
    let (from_summary, decoded) = info.get();
    println!(
        "  {:<24} p50 {p50:>8.2} ms  p99 {p99:>8.2} ms  ({from_summary} blocks from summaries, {decoded} decoded)",
        "volume 24 h / 5 min"
    );
}

fn main() {
    // Test runners (cargo nextest --all-targets, cargo test --benches) ask
    // benchmark binaries for their tests: this one has none.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let a = args();
    std::fs::create_dir_all(&a.dir).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tenant = Tenant::new("bench").unwrap();
    let opts = BlockOptions::default();
    println!(
        "# log store benchmark: {} records, write sample {}, block {} records, zstd {}, bloom fp {}",
        a.records, a.write_sample, opts.max_records, opts.zstd_level, opts.bloom_fp
    );

    // Encoding alone (no database), single batch, all threads.
    let sample = generate(a.write_sample, 0, a.records, 7, &tenant);
    let raw_msg: usize = sample
        .iter()
        .map(|r| r.message.as_ref().map_or(0, Vec::len))
        .sum();
    let copy = sample.clone();
    let s = Instant::now();
    let sample_blocks = build_blocks(copy, &opts).unwrap();
    let enc_rate = a.write_sample as f64 / s.elapsed().as_secs_f64();
    let one = BlockOptions {
        threads: 1,
        ..opts.clone()
    };
    let copy = sample.clone();
    let s = Instant::now();
    let _ = build_blocks(copy, &one).unwrap();
    let enc1 = a.write_sample as f64 / s.elapsed().as_secs_f64();
    let payload: usize = sample_blocks
        .iter()
        .map(|b| b.payload.len() + b.summary.summary_bytes().len() + b.summary.token_bytes().len())
        .sum();
    let tokens: usize = sample_blocks
        .iter()
        .map(|b| b.summary.token_bytes().len())
        .sum();
    println!(
        "encode: {:.0} records/s ({} threads), {:.0} records/s (1 thread); {:.1} message bytes/record -> {:.1} stored bytes/record ({:.1} of them token bloom)",
        enc_rate,
        opts.threads,
        enc1,
        raw_msg as f64 / a.write_sample as f64,
        payload as f64 / a.write_sample as f64,
        tokens as f64 / a.write_sample as f64
    );

    if a.bloom_sweep {
        // Token bloom size vs measured false-positive rate: for tokens that
        // occur nowhere, how many blocks would a query still decode?
        let absent: Vec<u64> = (0..2_000)
            .map(|i| killkrill_core::logblock::token_hash(format!("absent{i}x").as_bytes()))
            .collect();
        for fp in [0.001, 0.005, 0.01, 0.02, 0.05, 0.1] {
            let o = BlockOptions {
                bloom_fp: fp,
                ..opts.clone()
            };
            let blocks = build_blocks(sample.clone(), &o).unwrap();
            let bloom_bytes: usize = blocks.iter().map(|b| b.summary.token_bytes().len()).sum();
            let total: usize = blocks
                .iter()
                .map(|b| {
                    b.payload.len()
                        + b.summary.token_bytes().len()
                        + b.summary.summary_bytes().len()
                })
                .sum();
            let mut maybe = 0usize;
            for b in &blocks {
                let t = b.summary.tokens.as_ref().unwrap();
                maybe += absent.iter().filter(|&&h| t.may_contain(h)).count();
            }
            println!(
                "bloom fp target {fp:<6}: {:.2} bloom bytes/record ({:.1}% of stored), measured false-positive rate {:.4}",
                bloom_bytes as f64 / a.write_sample as f64,
                100.0 * bloom_bytes as f64 / total as f64,
                maybe as f64 / (absent.len() * blocks.len()) as f64
            );
        }
        return;
    }

    // The big store: encoded once, written to every backend as blocks.
    let mut big: Vec<EncodedBlock> = Vec::new();
    let chunk = 500_000;
    let s = Instant::now();
    let mut done = 0;
    while done < a.records {
        let n = chunk.min(a.records - done);
        let recs = generate(n, done, a.records, 1000 + done as u64, &tenant);
        big.extend(build_blocks(recs, &opts).unwrap());
        done += n;
    }
    println!(
        "generated and encoded {} records into {} blocks in {:.1}s",
        a.records,
        big.len(),
        s.elapsed().as_secs_f64()
    );

    for kind in &a.backends {
        rt.block_on(async {
            let Some(db) = open(kind, &a.dir).await else {
                println!("\n## {kind}: skipped (URL not set)");
                return;
            };
            println!("\n## {}", db.name);
            let other = Tenant::new("bench-write").unwrap();
            let sample_other: Vec<LogRecord> = sample.iter().map(|r| LogRecord { tenant: Some(other.clone()), ..r.clone() }).collect();
            let rate = write_throughput(&db.store, sample_other, 65_536).await;
            let bare = bare_limit(&db, &sample_blocks, &a.dir).await;
            println!("write (encode + store, 2 batches in flight): {rate:.0} records/s; bare-table limit for the same bytes: {bare:.0} records/s ({:.0}%)", 100.0 * rate / bare);
            let s = Instant::now();
            for group in big.chunks(64) {
                db.store.write_blocks(group).await.unwrap();
            }
            let blocks_rate = a.records as f64 / s.elapsed().as_secs_f64();
            let bytes = stored_bytes(&db, &a.dir).await;
            println!("stored {} records (pre-encoded blocks) at {blocks_rate:.0} records/s; {:.1} bytes/record on disk (whole table incl. the write sample)", a.records, bytes as f64 / (a.records + a.write_sample) as f64);
            queries(&db.store, &tenant, a.iterations).await;
            db.store.close().await;
            if let Some((url, drop)) = db.cleanup {
                if url.starts_with("postgres") {
                    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                    c.execute(AssertSqlSafe(drop)).await.unwrap();
                } else {
                    let mut c = sqlx::MySqlConnection::connect(&url).await.unwrap();
                    c.execute(AssertSqlSafe(drop)).await.unwrap();
                }
            }
        });
    }
}
