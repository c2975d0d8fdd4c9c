//! The in-memory summary index stays equal to the database while another
//! `Store` on the same database (a worker process) writes, compacts and
//! expires blocks, and while this one does.
//!
//! Every step compares three things on the same database: the index of the
//! reading store (`api`), the blocks a store with the index turned off
//! (`truth`, plain SQL) lists, and query results — pages with every filter
//! kind, full text (the token-filter path) and the volume histogram — of
//! both. SQLite (one file, two stores) always; PostgreSQL when
//! `KILLKRILL_TEST_POSTGRES_URL` is set.
#![allow(clippy::print_stderr, clippy::unwrap_used)]

mod support;

use killkrill_core::event::{LogRecord, NANOS_PER_SEC, Severity, Tenant, Timestamp};
use killkrill_core::logblock::{BlockId, BlockOptions, build_blocks};
use killkrill_core::logquery::{LogFilter, Order, VolumeQuery, query_volume};
use killkrill_core::storage::{
    CompactionOptions, LogStore, RetentionPolicy, ScanOrder, SummaryRequest, TimeRange,
    apply_retention, compact_tenant,
};
use killkrill_store::{DbType, Store, StoreConfig};
use sqlx::Connection;
use support::{ids, query, record, small_blocks, walk};

const T0: i64 = 1_764_000_000 * NANOS_PER_SEC;

/// Three stores on one database: `api` (index on, reads), `worker` (index
/// on, writes and maintains), `truth` (index off).
struct Trio {
    name: &'static str,
    api: Store,
    worker: Store,
    truth: Store,
    pg_schema: Option<(String, String)>,
    /// A plain connection to the same database (for changes behind the
    /// stores' backs).
    raw: String,
    _dir: Option<tempfile::TempDir>,
}

impl Trio {
    async fn cleanup(self) {
        for s in [&self.api, &self.worker, &self.truth] {
            s.close().await;
        }
        if let Some((url, schema)) = self.pg_schema {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&mut c)
                .await
                .unwrap();
        }
    }
}

fn without_index(mut cfg: StoreConfig) -> StoreConfig {
    cfg.logs.summary_index_mb = 0;
    cfg
}

/// Opens a store; one that does not set `logs.index_recheck_ms` reads the
/// generation before every query (SQLite's default trusts a read for
/// 100 ms), so the stores here see each other's commits at once
/// (`own_commits_are_seen_at_once_another_stores_within_the_period` tests
/// the trusted reads).
async fn open(mut cfg: StoreConfig, opts: &BlockOptions) -> Store {
    cfg.logs.index_recheck_ms.get_or_insert(0);
    Store::open(cfg)
        .await
        .expect("open store")
        .with_block_options(opts.clone())
}

async fn trios(opts: &BlockOptions, api: fn(StoreConfig) -> StoreConfig) -> Vec<Trio> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig::sqlite(dir.path());
    out.push(Trio {
        name: "sqlite",
        api: open(api(cfg.clone()), opts).await,
        worker: open(cfg.clone(), opts).await,
        truth: open(without_index(cfg), opts).await,
        pg_schema: None,
        raw: format!("sqlite://{}", dir.path().join("killkrill.db").display()),
        _dir: Some(dir),
    });
    match std::env::var("KILLKRILL_TEST_POSTGRES_URL") {
        Err(_) => eprintln!("skipping postgres: KILLKRILL_TEST_POSTGRES_URL is not set"),
        Ok(url) => {
            let n = Timestamp::now().as_nanos() as u64 ^ (u64::from(std::process::id()) << 40);
            let schema = format!("kk_sidx_{n:x}");
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&mut c)
                .await
                .unwrap();
            c.close().await.unwrap();
            let sep = if url.contains('?') { '&' } else { '?' };
            let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
            let cfg = StoreConfig::from_url(DbType::Postgres, scoped.clone());
            out.push(Trio {
                name: "postgres",
                raw: scoped,
                api: open(api(cfg.clone()), opts).await,
                worker: open(cfg.clone(), opts).await,
                truth: open(without_index(cfg), opts).await,
                pg_schema: Some((url, schema)),
                _dir: None,
            });
        }
    }
    out
}

/// Every block of `tenant` as SQL lists it (index off), sorted by id.
async fn sql_blocks(truth: &Store, tenant: &Tenant) -> Vec<(BlockId, Timestamp, Timestamp)> {
    let req = SummaryRequest {
        tenant,
        range: TimeRange::ALL,
        order: ScanOrder::OldestFirst,
        after: None,
        limit: 100_000,
        with_tokens: false,
        continuation: false,
        tokens: &[],
    };
    let mut v: Vec<_> = truth
        .block_summaries(&req)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.id, s.min_ts, s.max_ts))
        .collect();
    v.sort();
    v
}

fn filters() -> Vec<(&'static str, LogFilter)> {
    let f = LogFilter::default;
    vec![
        ("all", f()),
        (
            "err",
            LogFilter {
                min_severity: Some(Severity::Error),
                ..f()
            },
        ),
        (
            "host",
            LogFilter {
                host: Some("web2".into()),
                ..f()
            },
        ),
        (
            "text",
            LogFilter {
                text: Some("timeout".into()),
                ..f()
            },
        ),
        (
            "rare text",
            LogFilter {
                text: Some("request 77".into()),
                ..f()
            },
        ),
    ]
}

/// Queries through `api` (after its index synced) equal those through
/// `truth`, the index equals the database, and the total is `expect`.
async fn check(t: &Trio, tenant: &Tenant, expect: usize, step: &str) {
    let what = format!("{} / {step}", t.name);
    for (name, filter) in filters() {
        for order in [Order::NewestFirst, Order::OldestFirst] {
            let q = query(tenant, filter.clone(), order, 17);
            let got = walk(&t.api, q.clone()).await;
            let want = walk(&t.truth, q).await;
            assert_eq!(ids(&got), ids(&want), "{what}: {name} {order:?}");
            if name == "all" {
                assert_eq!(got.len(), expect, "{what}: total");
            }
        }
        let vq = VolumeQuery {
            tenant: tenant.clone(),
            range: TimeRange {
                start: Timestamp::from_nanos(T0 - 10 * NANOS_PER_SEC),
                end: Timestamp::from_nanos(T0 + 400 * NANOS_PER_SEC),
            },
            filter: filter.clone(),
            step_nanos: 7 * NANOS_PER_SEC,
        };
        let got = query_volume(&t.api, &vq).await.unwrap();
        let want = query_volume(&t.truth, &vq).await.unwrap();
        assert_eq!(got.buckets, want.buckets, "{what}: volume {name}");
    }
    assert_eq!(
        t.api.summary_index_blocks(tenant),
        Some(sql_blocks(&t.truth, tenant).await),
        "{what}: index of the reading store"
    );
}

fn batch(tenant: &Tenant, from: u64, to: u64) -> Vec<LogRecord> {
    // 0.5 s apart, so 400 records span 200 s.
    (from..to)
        .map(|i| record(tenant, i, T0 + i as i64 * NANOS_PER_SEC / 2))
        .collect()
}

async fn write(s: &Store, records: Vec<LogRecord>, opts: &BlockOptions) {
    let blocks = build_blocks(records, opts).unwrap();
    s.write_blocks(&blocks).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_follows_another_store_writing_compacting_and_expiring() {
    let opts = small_blocks(8);
    let tenant = Tenant::new("sidx").unwrap();
    let other = Tenant::new("sidx-other").unwrap();
    for t in trios(&opts, |c| c).await {
        // 1. The worker writes; the API store indexes lazily on first use.
        for chunk in batch(&tenant, 0, 120).chunks(5) {
            write(&t.worker, chunk.to_vec(), &opts).await;
        }
        write(&t.worker, batch(&other, 0, 40), &opts).await;
        assert_eq!(t.api.summary_index_blocks(&tenant), None, "lazy");
        check(&t, &tenant, 120, "first read").await;
        let first = t.api.summary_index_stats();
        assert!(first.blocks >= 24, "{}: {first:?}", t.name);
        assert!(
            first.blocks_with_tokens > 0,
            "{}: full text attached filters",
            t.name
        );

        // 2. The worker adds blocks: found by generation, incrementally.
        for chunk in batch(&tenant, 120, 200).chunks(3) {
            write(&t.worker, chunk.to_vec(), &opts).await;
        }
        check(&t, &tenant, 200, "after another store wrote").await;

        // 3. The worker compacts: the sources vanish, the merged appear.
        let copts = CompactionOptions {
            target_records: 40,
            small_below: 8,
            block: opts.clone(),
            ..CompactionOptions::default()
        };
        let before = sql_blocks(&t.truth, &tenant).await.len();
        let rep = compact_tenant(&t.worker, &tenant, &copts).await.unwrap();
        assert!(
            rep.merges >= 1 && rep.blocks_in > rep.blocks_out,
            "{}: {rep:?}",
            t.name
        );
        let after = sql_blocks(&t.truth, &tenant).await.len();
        assert_eq!(after, before - rep.blocks_in + rep.blocks_out);
        check(&t, &tenant, 200, "after another store compacted").await;

        // 4. The worker expires the first 50 s: those blocks vanish.
        let now = Timestamp::from_nanos(T0 + 1_000 * NANOS_PER_SEC);
        let policy = RetentionPolicy {
            default_max_age_nanos: 365 * 86_400 * NANOS_PER_SEC,
            per_tenant: vec![(tenant.clone(), 950 * NANOS_PER_SEC)],
            registry_max_age_nanos: 100 * 365 * 86_400 * NANOS_PER_SEC,
        };
        let rep = apply_retention(&t.worker, now, &policy).await.unwrap();
        assert!(rep.blocks > 0, "{}: {rep:?}", t.name);
        let left = walk(
            &t.truth,
            query(&tenant, LogFilter::default(), Order::OldestFirst, 1000),
        )
        .await
        .len();
        assert!(left < 200 && left > 0, "{}: {left} left", t.name);
        check(&t, &tenant, left, "after another store expired").await;

        // 5. The API store itself writes and compacts (the local path),
        // and the worker's index catches up with that.
        for chunk in batch(&tenant, 200, 260).chunks(2) {
            write(&t.api, chunk.to_vec(), &opts).await;
        }
        check(&t, &tenant, left + 60, "after this store wrote").await;
        let rep = compact_tenant(&t.api, &tenant, &copts).await.unwrap();
        assert!(rep.merges >= 1, "{}: {rep:?}", t.name);
        check(&t, &tenant, left + 60, "after this store compacted").await;
        let walked = walk(
            &t.worker,
            query(&tenant, LogFilter::default(), Order::NewestFirst, 50),
        )
        .await;
        assert_eq!(
            walked.len(),
            left + 60,
            "{}: the worker's own index",
            t.name
        );
        assert_eq!(
            t.worker.summary_index_blocks(&tenant),
            Some(sql_blocks(&t.truth, &tenant).await),
            "{}: index of the writing store",
            t.name
        );

        // The other tenant was untouched throughout.
        let o = walk(
            &t.api,
            query(&other, LogFilter::default(), Order::OldestFirst, 100),
        )
        .await;
        assert_eq!(o.len(), 40, "{}", t.name);
        t.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_deleted_behind_the_index_is_recovered() {
    // A block deleted without a generation bump (by hand here, as an
    // operator or an older binary would) is still listed by the index; the
    // engine finds its payload gone, the index re-lists, and the retried
    // query answers from the database's real set. (A block whose decode is
    // still cached is not noticed: deletes are expected to go through the
    // store, see docs/src/storage.md.)
    let opts = small_blocks(10);
    let tenant = Tenant::new("sidx-gone").unwrap();
    let no_block_caches = |mut c: StoreConfig| {
        c.logs.decoded_cache_mb = 0;
        c
    };
    for t in trios(&opts, no_block_caches).await {
        write(&t.worker, batch(&tenant, 0, 100), &opts).await;
        check(&t, &tenant, 100, "written").await;
        let victim = sql_blocks(&t.truth, &tenant).await[3].0;
        let n = if t.name == "sqlite" {
            let mut c = sqlx::SqliteConnection::connect(&t.raw).await.unwrap();
            sqlx::query("DELETE FROM log_blocks WHERE block_id = ?")
                .bind(victim.to_bytes().to_vec())
                .execute(&mut c)
                .await
                .unwrap()
                .rows_affected()
        } else {
            let mut c = sqlx::PgConnection::connect(&t.raw).await.unwrap();
            sqlx::query("DELETE FROM log_blocks WHERE block_id = $1")
                .bind(victim.to_bytes().to_vec())
                .execute(&mut c)
                .await
                .unwrap()
                .rows_affected()
        };
        assert_eq!(n, 1);
        check(&t, &tenant, 90, "after a silent delete").await;
        t.cleanup().await;
    }
}

/// Every summary of `tenant`, oldest first, as a scan's first page (or a
/// later one when `continuation`).
fn whole(tenant: &Tenant, continuation: bool) -> SummaryRequest<'_> {
    SummaryRequest {
        tenant,
        range: TimeRange::ALL,
        order: ScanOrder::OldestFirst,
        after: None,
        limit: 10_000,
        with_tokens: false,
        continuation,
        tokens: &[],
    }
}

async fn count(s: &Store, r: SummaryRequest<'_>) -> usize {
    s.shared_summaries(&r).await.unwrap().len()
}

/// A scan's first page checks the index against the database (one point
/// read); its later pages (`continuation`) are answered from the index as
/// it is, so a block another store commits mid-scan may be missed by that
/// scan but never by the next one. A continuation for a tenant the index
/// does not hold yet is checked like a first page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_pages_of_a_scan_skip_the_generation_check() {
    let opts = small_blocks(10);
    let tenant = Tenant::new("sidx-cont").unwrap();
    let fresh = Tenant::new("sidx-cont-new").unwrap();
    for t in trios(&opts, |c| c).await {
        write(&t.worker, batch(&tenant, 0, 50), &opts).await;
        write(&t.worker, batch(&fresh, 0, 30), &opts).await;
        // A continuation for a tenant not indexed yet: checked, loaded
        // (a later continuation reads that load, not the database).
        assert_eq!(count(&t.api, whole(&fresh, true)).await, 3, "{}", t.name);
        assert!(t.api.summary_index_blocks(&fresh).is_some(), "{}", t.name);
        write(&t.worker, batch(&fresh, 30, 50), &opts).await;
        assert_eq!(count(&t.api, whole(&fresh, true)).await, 3, "{}", t.name);
        assert_eq!(count(&t.api, whole(&fresh, false)).await, 5, "{}", t.name);
        assert_eq!(count(&t.api, whole(&tenant, false)).await, 5, "{}", t.name);
        write(&t.worker, batch(&tenant, 50, 80), &opts).await;
        assert_eq!(
            count(&t.api, whole(&tenant, true)).await,
            5,
            "{}: a later page reads the index as the first page left it",
            t.name
        );
        assert_eq!(
            count(&t.api, whole(&tenant, false)).await,
            8,
            "{}: the next scan sees the other store's blocks",
            t.name
        );
        assert_eq!(count(&t.api, whole(&tenant, true)).await, 8, "{}", t.name);
        t.cleanup().await;
    }
}

/// With `logs.index_recheck_ms` set (SQLite's default is 100 ms), a
/// store trusts its last generation read for that long: its own writes,
/// compactions and deletes are seen by its next query at once (each commit
/// follows on from the generation it knows), another store's within the
/// period; a commit of its own that does not follow on (another store
/// committed in between) makes the next query read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_commits_are_seen_at_once_another_stores_within_the_period() {
    let opts = small_blocks(10);
    let tenant = Tenant::new("sidx-trust").unwrap();
    let long = |mut c: StoreConfig| {
        c.logs.index_recheck_ms = Some(60_000);
        c
    };
    for t in trios(&opts, long).await {
        let req = whole(&tenant, false);
        write(&t.worker, batch(&tenant, 0, 30), &opts).await;
        assert_eq!(count(&t.api, req.clone()).await, 3, "{}", t.name);
        write(&t.worker, batch(&tenant, 30, 50), &opts).await;
        assert_eq!(
            count(&t.api, req.clone()).await,
            3,
            "{}: another store's write is not seen while the read is trusted",
            t.name
        );
        write(&t.api, batch(&tenant, 50, 60), &opts).await;
        assert_eq!(
            count(&t.api, req.clone()).await,
            6,
            "{}: an own commit after another store's makes the next query read",
            t.name
        );
        write(&t.api, batch(&tenant, 60, 70), &opts).await;
        assert_eq!(count(&t.api, req.clone()).await, 7, "{}: own write", t.name);
        let copts = CompactionOptions {
            target_records: 40,
            small_below: 11,
            block: opts.clone(),
            ..CompactionOptions::default()
        };
        let rep = compact_tenant(&t.api, &tenant, &copts).await.unwrap();
        assert!(rep.blocks_in > rep.blocks_out, "{}: {rep:?}", t.name);
        let after = sql_blocks(&t.truth, &tenant).await.len();
        assert!(after < 7, "{}", t.name);
        assert_eq!(
            count(&t.api, req.clone()).await,
            after,
            "{}: own compaction seen at once",
            t.name
        );
        t.cleanup().await;
    }
}

/// Full-text scans until `api` has sliced `want` groups of `tenant`'s
/// token filters (a blocking task slices them after a scan met them).
async fn wait_sliced(api: &Store, tenant: &Tenant, want: usize) {
    let text = LogFilter {
        text: Some("timeout".into()),
        ..LogFilter::default()
    };
    for _ in 0..400 {
        walk(api, query(tenant, text.clone(), Order::NewestFirst, 100)).await;
        if api.summary_index_stats().groups_sliced >= want {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!(
        "{want} groups never sliced: {:?}",
        api.summary_index_stats()
    );
}

/// Once groups of 64 blocks hold their token filters sliced, a full-text
/// scan leaves out the blocks the slices rule out — and every page still
/// equals what plain SQL answers, in both orders, while another store adds
/// and compacts blocks and the reading store compacts its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sliced_groups_answer_as_sql_does() {
    let opts = small_blocks(3);
    let tenant = Tenant::new("sliced").unwrap();
    for t in trios(&opts, |c| c).await {
        for chunk in batch(&tenant, 0, 420).chunks(3) {
            write(&t.worker, chunk.to_vec(), &opts).await;
        }
        wait_sliced(&t.api, &tenant, 2).await;
        check(&t, &tenant, 420, "sliced").await;
        for i in [7u64, 63, 64, 128, 200, 419] {
            for order in [Order::NewestFirst, Order::OldestFirst] {
                let f = LogFilter {
                    text: Some(format!("request {i}")),
                    ..LogFilter::default()
                };
                let got = walk(&t.api, query(&tenant, f, order, 5)).await;
                assert_eq!(
                    ids(&got),
                    ids(&batch(&tenant, i, i + 1)),
                    "{}: request {i} {order:?}",
                    t.name
                );
            }
        }
        // The store left blocks out: one token in one record.
        let keys = [killkrill_core::logblock::token_hash(b"77")];
        let req = SummaryRequest {
            tenant: &tenant,
            range: TimeRange::ALL,
            order: ScanOrder::NewestFirst,
            after: None,
            limit: 1_000,
            with_tokens: true,
            continuation: false,
            tokens: &keys,
        };
        let page = t.api.summary_page(&req).await.unwrap();
        assert_eq!(page.examined, 140, "{}: every block looked at", t.name);
        assert!(page.done);
        assert!(
            page.summaries.len() <= 12 + 4,
            "{}: {} of 140 blocks returned (the open group holds 12)",
            t.name,
            page.summaries.len()
        );
        assert!(
            page.summaries
                .iter()
                .any(|s| s.min_ts.as_nanos() <= T0 + 77 * NANOS_PER_SEC / 2
                    && s.max_ts.as_nanos() >= T0 + 77 * NANOS_PER_SEC / 2),
            "{}: the block of record 77",
            t.name
        );
        // Another store adds and compacts; this one compacts its own.
        for chunk in batch(&tenant, 420, 500).chunks(3) {
            write(&t.worker, chunk.to_vec(), &opts).await;
        }
        check(&t, &tenant, 500, "sliced, after another store wrote").await;
        let copts = CompactionOptions {
            target_records: 30,
            small_below: 4,
            block: opts.clone(),
            ..CompactionOptions::default()
        };
        let rep = compact_tenant(&t.worker, &tenant, &copts).await.unwrap();
        assert!(rep.merges >= 1, "{}: {rep:?}", t.name);
        check(&t, &tenant, 500, "sliced, after another store compacted").await;
        for chunk in batch(&tenant, 500, 900).chunks(3) {
            write(&t.api, chunk.to_vec(), &opts).await;
        }
        wait_sliced(&t.api, &tenant, 1).await;
        let rep = compact_tenant(&t.api, &tenant, &copts).await.unwrap();
        assert!(rep.merges >= 1, "{}: {rep:?}", t.name);
        check(&t, &tenant, 900, "sliced, after this store compacted").await;
        // Compaction merged the small blocks: their groups emptied and
        // went (a group mostly gone is not sliced again).
        let st = t.api.summary_index_stats();
        assert!(
            st.blocks < 64 && st.groups_sliced == 0,
            "{}: {st:?}",
            t.name
        );
        t.cleanup().await;
    }
}
