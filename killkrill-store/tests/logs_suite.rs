//! The shared log storage suite: every test runs on the in-memory
//! reference, SQLite, and PostgreSQL / MySQL when their URLs are set.
#![allow(clippy::print_stderr)]

mod support;

use killkrill_core::event::{LogRecord, NANOS_PER_SEC, Severity, Tenant, Timestamp};
use killkrill_core::logquery::{LogFilter, Order, VolumeQuery, query_logs, query_volume};
use killkrill_core::storage::{
    CompactionOptions, DeadLetterId, DeadLetterStore, NewDeadLetter, RetentionPolicy, TimeRange,
    apply_retention, compact_tenant,
};
use killkrill_store::{DbType, Store, StoreConfig};
use support::*;

const T0: i64 = 1_764_000_000 * NANOS_PER_SEC;

fn dataset(tenant: &Tenant, n: u64) -> Vec<LogRecord> {
    // Timestamps advance ~0.1 s with some ties and some out-of-order records.
    (0..n)
        .map(|i| {
            let jitter = if i % 13 == 0 { -3 * NANOS_PER_SEC } else { 0 };
            record(tenant, i, T0 + (i as i64 / 2) * NANOS_PER_SEC / 10 + jitter)
        })
        .collect()
}

fn filters() -> Vec<(&'static str, LogFilter)> {
    let f = LogFilter::default;
    vec![
        ("none", f()),
        (
            "severity err",
            LogFilter {
                min_severity: Some(Severity::Error),
                ..f()
            },
        ),
        (
            "severity emerg",
            LogFilter {
                min_severity: Some(Severity::Emergency),
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
            "absent host",
            LogFilter {
                host: Some("nope".into()),
                ..f()
            },
        ),
        (
            "app",
            LogFilter {
                app: Some("cron".into()),
                ..f()
            },
        ),
        (
            "source",
            LogFilter {
                source: Some("http".into()),
                ..f()
            },
        ),
        (
            "sd field",
            LogFilter {
                fields: vec![("origin.ip".into(), "10.0.0.1".into())],
                ..f()
            },
        ),
        (
            "attr field",
            LogFilter {
                fields: vec![("user".into(), "2".into())],
                ..f()
            },
        ),
        (
            "text one token",
            LogFilter {
                text: Some("TIMEOUT".into()),
                ..f()
            },
        ),
        (
            "text two tokens",
            LogFilter {
                text: Some("disk full".into()),
                ..f()
            },
        ),
        (
            "text rare",
            LogFilter {
                text: Some("request 77".into()),
                ..f()
            },
        ),
        (
            "text in field value",
            LogFilter {
                text: Some("10.0.0.2".into()),
                ..f()
            },
        ),
        (
            "text absent",
            LogFilter {
                text: Some("zebra".into()),
                ..f()
            },
        ),
        (
            "combined",
            LogFilter {
                min_severity: Some(Severity::Warning),
                host: Some("web1".into()),
                text: Some("user".into()),
                ..f()
            },
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_filter_in_both_orders_matches_the_reference() {
    let opts = small_blocks(16);
    let tenant = Tenant::new("filters").unwrap();
    let other = Tenant::new("other").unwrap();
    let data = dataset(&tenant, 400);
    for b in all(opts.clone()).await {
        for chunk in data.chunks(57) {
            b.write(chunk.to_vec(), &opts).await;
        }
        b.write(dataset(&other, 50), &opts).await;
        for (name, filter) in filters() {
            for order in [Order::NewestFirst, Order::OldestFirst] {
                for limit in [3, 100] {
                    let q = query(&tenant, filter.clone(), order, limit);
                    let want = naive(&data, &q);
                    let got = walk(b.store.as_ref(), q).await;
                    assert_eq!(
                        ids(&got),
                        ids(&want),
                        "{}: {name} {order:?} limit {limit}",
                        b.name
                    );
                    if limit == 100 {
                        assert_eq!(got, want, "{}: {name}: records differ", b.name);
                    }
                }
            }
        }
        // A time range cuts exactly.
        let mut q = query(&tenant, LogFilter::default(), Order::NewestFirst, 10);
        q.range = TimeRange::new(
            Timestamp::from_nanos(T0 + 5 * NANOS_PER_SEC),
            Timestamp::from_nanos(T0 + 9 * NANOS_PER_SEC),
        );
        assert_eq!(
            ids(&walk(b.store.as_ref(), q.clone()).await),
            ids(&naive(&data, &q)),
            "{}: range",
            b.name
        );
        // Tenants never see each other's records.
        let q = query(&other, LogFilter::default(), Order::NewestFirst, 1000);
        let got = walk(b.store.as_ref(), q).await;
        assert_eq!(got.len(), 50);
        assert!(got.iter().all(|r| r.tenant.as_ref() == Some(&other)));
        b.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_limits_and_cursors_are_invalid_queries() {
    let tenant = Tenant::new("limits").unwrap();
    let b = memory();
    for limit in [0, 10_001] {
        let err = query_logs(
            b.store.as_ref(),
            &query(&tenant, LogFilter::default(), Order::NewestFirst, limit),
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("limit must be between 1 and 10000"),
            "{err}"
        );
    }
    assert!(
        "garbage"
            .parse::<killkrill_core::logquery::Cursor>()
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_walks_without_gaps_or_repeats_while_blocks_arrive() {
    let opts = small_blocks(8);
    let tenant = Tenant::new("cursor").unwrap();
    let data = dataset(&tenant, 200);
    for b in all(opts.clone()).await {
        b.write(data.clone(), &opts).await;
        for order in [Order::NewestFirst, Order::OldestFirst] {
            let mut q = query(&tenant, LogFilter::default(), order, 9);
            let mut got: Vec<LogRecord> = Vec::new();
            let mut late: Vec<LogRecord> = Vec::new();
            let mut round = 0u64;
            loop {
                let page = query_logs(b.store.as_ref(), &q).await.unwrap();
                got.extend(page.records);
                match page.next_cursor {
                    Some(c) => q.cursor = Some(c),
                    None => break,
                }
                // New data arrives between pages: records newer than
                // everything (behind the cursor for newest-first, ahead of
                // it for oldest-first) and records older than everything.
                round += 1;
                let base = 1_000_000 * (round + if order == Order::NewestFirst { 0 } else { 1000 });
                let fresh = record(&tenant, base, T0 + 1_000 * NANOS_PER_SEC + round as i64);
                let old = record(&tenant, base + 1, T0 - 1_000 * NANOS_PER_SEC - round as i64);
                b.write(vec![fresh.clone(), old.clone()], &opts).await;
                match order {
                    Order::NewestFirst => late.push(old),
                    Order::OldestFirst => late.push(fresh),
                }
            }
            // Keys strictly monotonic: no repeats, right order.
            for w in got.windows(2) {
                let (a, b2) = ((w[0].timestamp, w[0].id), (w[1].timestamp, w[1].id));
                match order {
                    Order::NewestFirst => assert!(a > b2, "{}: order/repeat at {a:?}", b.name),
                    Order::OldestFirst => assert!(a < b2, "{}: order/repeat at {a:?}", b.name),
                }
            }
            // No gaps: every original record is there, and the records that
            // arrived on the far side of the cursor too.
            let mut want: Vec<LogRecord> = data.clone();
            want.extend(late);
            let q0 = query(&tenant, LogFilter::default(), order, 9);
            let want = naive(&want, &q0);
            let got_ids: std::collections::HashSet<_> = ids(&got).into_iter().collect();
            for r in &want {
                assert!(
                    got_ids.contains(&r.id),
                    "{}: {order:?} missing {:?}",
                    b.name,
                    r.id
                );
            }
        }
        b.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrites_are_no_ops_even_after_compaction() {
    let opts = small_blocks(10);
    let tenant = Tenant::new("idem").unwrap();
    let data = dataset(&tenant, 95);
    let batches: Vec<Vec<LogRecord>> = data.chunks(7).map(<[LogRecord]>::to_vec).collect();
    for b in all(opts.clone()).await {
        let mut written = 0;
        for batch in &batches {
            let r = b.write(batch.clone(), &opts).await;
            assert_eq!(r.blocks_skipped, 0);
            written += r.records_written;
        }
        assert_eq!(written, 95);
        let again = b.write(batches[3].clone(), &opts).await;
        assert_eq!(
            (again.blocks_written, again.blocks_skipped),
            (0, 1),
            "{}",
            b.name
        );
        let copts = CompactionOptions {
            target_records: 40,
            small_below: 20,
            block: opts.clone(),
            ..CompactionOptions::default()
        };
        let rep = compact_tenant(b.store.as_ref(), &tenant, &copts)
            .await
            .unwrap();
        assert!(
            rep.merges >= 2 && rep.blocks_in > rep.blocks_out,
            "{}: {rep:?}",
            b.name
        );
        // Redelivery after the block was merged away: still a no-op.
        for batch in &batches {
            let r = b.write(batch.clone(), &opts).await;
            assert_eq!(
                r.blocks_written, 0,
                "{}: rewrite after compaction stored a block",
                b.name
            );
        }
        let all_q = query(&tenant, LogFilter::default(), Order::OldestFirst, 1000);
        let got = walk(b.store.as_ref(), all_q.clone()).await;
        assert_eq!(got, naive(&data, &all_q), "{}", b.name);
        // Compacting again finds nothing left to merge under the target.
        let rep2 = compact_tenant(b.store.as_ref(), &tenant, &copts)
            .await
            .unwrap();
        assert_eq!(rep2.conflicts, 0);
        assert_eq!(walk(b.store.as_ref(), all_q).await.len(), 95);
        b.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_merges_small_blocks_and_keeps_results() {
    let opts = small_blocks(4);
    let tenant = Tenant::new("compact").unwrap();
    let data = dataset(&tenant, 120);
    for b in all(opts.clone()).await {
        for chunk in data.chunks(3) {
            b.write(chunk.to_vec(), &opts).await;
        }
        let count_blocks = || async {
            let req = killkrill_core::storage::SummaryRequest {
                tenant: &tenant,
                range: TimeRange::ALL,
                order: Order::OldestFirst,
                after: None,
                limit: 10_000,
                with_tokens: false,
                continuation: false,
                tokens: &[],
            };
            b.store.block_summaries(&req).await.unwrap()
        };
        let before = count_blocks().await;
        assert_eq!(before.len(), 40);
        let copts = CompactionOptions {
            target_records: 30,
            small_below: 10,
            block: opts.clone(),
            ..CompactionOptions::default()
        };
        let rep = compact_tenant(b.store.as_ref(), &tenant, &copts)
            .await
            .unwrap();
        let after = count_blocks().await;
        assert_eq!(
            after.len(),
            40 - rep.blocks_in + rep.blocks_out,
            "{}",
            b.name
        );
        assert!(
            after.len() <= 8,
            "{}: {} blocks after compaction",
            b.name,
            after.len()
        );
        assert_eq!(after.iter().map(|s| u64::from(s.count)).sum::<u64>(), 120);
        for (name, filter) in filters() {
            let q = query(&tenant, filter, Order::NewestFirst, 13);
            assert_eq!(
                ids(&walk(b.store.as_ref(), q.clone()).await),
                ids(&naive(&data, &q)),
                "{}: {name}",
                b.name
            );
        }
        // A merge whose source vanished is a conflict, not a change.
        if let Some(sql) = &b.sql {
            use killkrill_core::storage::LogStore as _;
            let err = sql
                .replace_blocks(&tenant, &[killkrill_core::logblock::BlockId(42)], &[])
                .await
                .unwrap_err();
            assert_eq!(
                err.kind(),
                killkrill_core::storage::ErrorKind::Conflict,
                "{}",
                b.name
            );
        }
        b.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_whole_old_blocks_per_tenant() {
    let opts = small_blocks(10);
    let keep = Tenant::new("keep").unwrap();
    let short = Tenant::new("short").unwrap();
    for b in all(opts.clone()).await {
        let old = (0..30)
            .map(|i| record(&short, i, T0 + i as i64))
            .collect::<Vec<_>>();
        let new = (30..60)
            .map(|i| record(&short, i, T0 + 100 * NANOS_PER_SEC + i as i64))
            .collect::<Vec<_>>();
        b.write(old.clone(), &opts).await;
        b.write(new.clone(), &opts).await;
        b.write(
            (0..30).map(|i| record(&keep, i, T0 + i as i64)).collect(),
            &opts,
        )
        .await;
        let now = Timestamp::from_nanos(T0 + 150 * NANOS_PER_SEC);
        let policy = RetentionPolicy {
            default_max_age_nanos: 365 * 86_400 * NANOS_PER_SEC,
            per_tenant: vec![(short.clone(), 100 * NANOS_PER_SEC)],
            registry_max_age_nanos: 100 * 365 * 86_400 * NANOS_PER_SEC,
        };
        let rep = apply_retention(b.store.as_ref(), now, &policy)
            .await
            .unwrap();
        assert_eq!((rep.blocks, rep.registry_entries), (3, 0), "{}", b.name);
        let got = walk(
            b.store.as_ref(),
            query(&short, LogFilter::default(), Order::OldestFirst, 100),
        )
        .await;
        assert_eq!(ids(&got), ids(&new), "{}", b.name);
        let kept = walk(
            b.store.as_ref(),
            query(&keep, LogFilter::default(), Order::OldestFirst, 100),
        )
        .await;
        assert_eq!(kept.len(), 30);
        // The registry forgets ids by write time; then an old batch is new again.
        let forget_all = RetentionPolicy {
            registry_max_age_nanos: -NANOS_PER_SEC * 3600,
            ..policy
        };
        let rep = apply_retention(b.store.as_ref(), Timestamp::now(), &forget_all)
            .await
            .unwrap();
        assert!(rep.registry_entries >= 6, "{}: {rep:?}", b.name);
        b.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_matches_counting_records() {
    let opts = small_blocks(8);
    let tenant = Tenant::new("volume").unwrap();
    let data = dataset(&tenant, 300);
    for b in all(opts.clone()).await {
        b.write(data.clone(), &opts).await;
        for (name, filter) in filters() {
            let range = TimeRange::new(
                Timestamp::from_nanos(T0 - 2 * NANOS_PER_SEC),
                Timestamp::from_nanos(T0 + 14 * NANOS_PER_SEC),
            );
            let q = VolumeQuery {
                tenant: tenant.clone(),
                range,
                filter: filter.clone(),
                step_nanos: 2 * NANOS_PER_SEC,
            };
            let got = query_volume(b.store.as_ref(), &q).await.unwrap();
            let mut lq = query(&tenant, filter, Order::OldestFirst, 10);
            lq.range = range;
            let recs = naive(&data, &lq);
            assert_eq!(got.buckets.len(), 8);
            for bucket in &got.buckets {
                let inside: Vec<&LogRecord> = recs
                    .iter()
                    .filter(|r| {
                        r.timestamp >= bucket.start
                            && r.timestamp.as_nanos() < bucket.start.as_nanos() + 2 * NANOS_PER_SEC
                    })
                    .collect();
                assert_eq!(
                    bucket.total,
                    inside.len() as u64,
                    "{}: {name} at {:?}",
                    b.name,
                    bucket.start
                );
                for code in 0..9u8 {
                    let n = inside
                        .iter()
                        .filter(|r| r.severity.map_or(8, |s| s.code()) == code)
                        .count();
                    assert_eq!(
                        bucket.by_severity[usize::from(code)],
                        n as u64,
                        "{}: {name} sev {code}",
                        b.name
                    );
                }
            }
            if name == "none" || name == "severity err" {
                assert!(got.blocks_from_summary > 0, "{}: {name}: {got:?}", b.name);
            }
        }
        b.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_upsert_list_delete() {
    for b in all(small_blocks(10)).await {
        let Some(store) = &b.sql else { continue };
        let t = Tenant::new("dl").unwrap();
        let letter = |payload: &[u8], at: i64| NewDeadLetter {
            tenant: t.clone(),
            kind: "logs".into(),
            payload: payload.to_vec(),
            error: format!("failed at {at}"),
            attempts: 5,
            failed_at: Timestamp::from_nanos(at),
        };
        let a = store
            .put_dead_letter(&letter(b"batch-a", 10))
            .await
            .unwrap();
        let a2 = store
            .put_dead_letter(&letter(b"batch-a", 20))
            .await
            .unwrap();
        let c = store
            .put_dead_letter(&letter(b"batch-c\xff", 15))
            .await
            .unwrap();
        assert_eq!(a, a2, "{}: same payload, same entry", b.name);
        assert_ne!(a, c);
        let list = store.list_dead_letters(Some(&t), None, 10).await.unwrap();
        assert_eq!(list.len(), 2, "{}", b.name);
        assert_eq!(
            (
                list[0].attempts,
                list[0].first_failure.as_nanos(),
                list[0].last_failure.as_nanos()
            ),
            (10, 10, 20)
        );
        assert_eq!(list[0].error, "failed at 20");
        assert_eq!(list[1].payload, b"batch-c\xff");
        let page2 = store
            .list_dead_letters(None, Some(list[0].id), 10)
            .await
            .unwrap();
        assert_eq!(page2.len(), 1);
        assert_eq!(
            store
                .delete_dead_letters(&[a, DeadLetterId(i64::MAX)])
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .list_dead_letters(Some(&t), None, 10)
                .await
                .unwrap()
                .len(),
            1
        );
        b.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_db_type_and_unreachable_server_are_clear_errors() {
    let env = |k: &str| match k {
        "DB_TYPE" => Some("oracle".to_owned()),
        _ => None,
    };
    let err = StoreConfig::from_env(env, DbType::Sqlite, ".").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown DB_TYPE \"oracle\": expected one of postgres, mysql, sqlite"
    );
    // A server nobody listens on: retried for connect_for_secs, then a
    // retryable error (not a panic, not a hang).
    let mut cfg = StoreConfig::from_url(DbType::Postgres, "postgres://u@127.0.0.1:1/x");
    cfg.retry.connect_for_secs = 1;
    cfg.retry.initial_backoff_ms = 100;
    let started = std::time::Instant::now();
    let err = Store::connect(cfg).await.unwrap_err();
    assert_eq!(
        err.kind(),
        killkrill_core::storage::ErrorKind::Retryable,
        "{err}"
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(900),
        "retried for a second"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_records_encodes_on_workers_and_round_trips_every_field() {
    for b in all(small_blocks(1000)).await {
        let Some(store) = &b.sql else { continue };
        let t = Tenant::new("fields").unwrap();
        let mut recs = dataset(&t, 50);
        recs[3].message = Some(vec![0xff, b'a', 0xfe]);
        recs[4].parse_error = Some("column 7: expected '>'".into());
        recs[5].structured_data = vec![killkrill_core::event::SdElement {
            id: "x@1".into(),
            params: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
        }];
        recs[6].attributes = vec![
            ("z".into(), killkrill_core::event::FieldValue::Float(1.5)),
            ("a".into(), killkrill_core::event::FieldValue::Bool(true)),
            ("n".into(), killkrill_core::event::FieldValue::Null),
        ];
        recs[7].facility = Some(killkrill_core::event::Facility::Local7);
        let rep = store.write_records(recs.clone()).await.unwrap();
        assert_eq!(rep.records_written, 50);
        let q = query(&t, LogFilter::default(), Order::OldestFirst, 100);
        assert_eq!(walk(store, q.clone()).await, naive(&recs, &q), "{}", b.name);
        let mut no_tenant = recs[0].clone();
        no_tenant.tenant = None;
        let err = store.write_records(vec![no_tenant]).await.unwrap_err();
        assert_eq!(err.kind(), killkrill_core::storage::ErrorKind::Invalid);
        b.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_writes_round_trip_through_the_bulk_paths() {
    // Over 1 MiB (in fact 5) of incompressible payload in one write: PostgreSQL takes
    // the binary COPY path, MySQL splits its multi-row INSERTs under the
    // packet size.
    let opts = small_blocks(500);
    let t = Tenant::new("bulk").unwrap();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let data: Vec<LogRecord> = (0..3000)
        .map(|i| {
            let mut r = record(&t, i, T0 + i as i64);
            let mut m = Vec::with_capacity(2048);
            for _ in 0..256 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                m.extend_from_slice(&x.to_le_bytes());
            }
            r.message = Some(m);
            r
        })
        .collect();
    let blocks = killkrill_core::logblock::build_blocks(data.clone(), &opts).unwrap();
    let bytes: usize = blocks.iter().map(|b| b.payload.len()).sum();
    assert!(bytes > 5 << 20, "{bytes}");
    for b in all(opts.clone()).await {
        let rep = b.store.write_blocks(&blocks).await.unwrap();
        assert_eq!(
            (rep.blocks_written, rep.records_written),
            (6, 3000),
            "{}",
            b.name
        );
        let q = query(&t, LogFilter::default(), Order::OldestFirst, 1000);
        assert_eq!(
            walk(b.store.as_ref(), q.clone()).await,
            naive(&data, &q),
            "{}",
            b.name
        );
        assert_eq!(
            b.store.write_blocks(&blocks).await.unwrap().blocks_skipped,
            6
        );
        b.cleanup().await;
    }
}
