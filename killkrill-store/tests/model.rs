//! Model-based property test: any records, written in any batching
//! (including a batch delivered twice, before and after compaction), then
//! compacted, queried with any filter and page size, page after page, give
//! exactly what a naive in-memory filter and sort of the same records gives.
//! Runs on the in-memory store, SQLite, and PostgreSQL / MySQL when their
//! URLs are set.
#![allow(clippy::print_stderr)]

mod support;

use std::sync::atomic::{AtomicU64, Ordering};

use killkrill_core::event::{
    EventId, FieldValue, LogRecord, NANOS_PER_SEC, SdElement, Severity, Tenant, Timestamp,
};
use killkrill_core::logblock::BlockOptions;
use killkrill_core::logquery::{LogFilter, LogQuery, Order};
use killkrill_core::storage::{CompactionOptions, TimeRange, compact_tenant};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use support::{Backend, naive, walk};

const T0: i64 = 1_764_000_000 * NANOS_PER_SEC;
const WORDS: [&str; 6] = ["alpha", "Beta", "gamma", "delta", "ERR", "x1"];

/// ts, id, severity, host, app, source, words, invalid UTF-8, sd, attribute.
type RawRecord = (i64, u128, Option<u8>, u8, u8, u8, Vec<usize>, bool, u8, u8);
/// filter, order, page size, optional range in tenths of a second.
type CaseQuery = (LogFilter, Order, usize, Option<(i64, i64)>);

#[derive(Debug, Clone)]
struct Case {
    records: Vec<LogRecord>,
    cuts: Vec<bool>,
    shuffle: Vec<u32>,
    dup: Option<usize>,
    block: usize,
    compact: Option<(usize, usize)>,
    queries: Vec<CaseQuery>,
}

fn arb_record() -> impl Strategy<Value = RawRecord> {
    (
        0i64..40,
        any::<u128>(),
        prop::option::of(0u8..8),
        0u8..4,
        0u8..3,
        0u8..2,
        prop::collection::vec(0usize..WORDS.len(), 0..4),
        any::<bool>(),
        0u8..3,
        0u8..3,
    )
}

fn build(tenant: &Tenant, raw: &RawRecord) -> LogRecord {
    let (ts, id, sev, host, app, source, words, bad_utf8, sd, attr) = raw;
    let pick = |i: u8, from: &[&str]| from.get(usize::from(i)).map(|s| (*s).to_owned());
    let mut message: Vec<u8> = words
        .iter()
        .map(|&w| WORDS[w])
        .collect::<Vec<_>>()
        .join(" ")
        .into_bytes();
    if *bad_utf8 {
        message.extend_from_slice(b" \xff\xfe");
    }
    LogRecord {
        id: Some(EventId::from_u128(*id)),
        tenant: Some(tenant.clone()),
        timestamp: Timestamp::from_nanos(T0 + ts * NANOS_PER_SEC / 10),
        severity: sev.and_then(Severity::from_code),
        host: pick(*host, &["a", "b", "c"]),
        app: pick(*app, &["x", "y"]),
        source: pick(*source, &["s1"]),
        structured_data: match sd {
            0 => Vec::new(),
            n => vec![SdElement {
                id: "origin".into(),
                params: vec![
                    ("ip".into(), format!("10.0.0.{n}")),
                    ("ip".into(), "10.9.9.9".into()),
                ],
            }],
        },
        message: if words.is_empty() && !bad_utf8 {
            None
        } else {
            Some(message)
        },
        attributes: match attr {
            0 => Vec::new(),
            n => vec![
                ("user".into(), FieldValue::Int(i64::from(*n))),
                ("ok".into(), FieldValue::Bool(n % 2 == 0)),
            ],
        },
        ..LogRecord::default()
    }
}

fn arb_filter() -> impl Strategy<Value = LogFilter> {
    prop_oneof![1 => Just(LogFilter::default()), 2 => arb_some_filter()]
}

fn arb_some_filter() -> impl Strategy<Value = LogFilter> {
    (
        prop::option::of(0u8..8),
        prop::option::of(prop::sample::select(vec!["a", "b", "c", "zz"])),
        prop::option::of(prop::sample::select(vec!["x", "y"])),
        prop::option::of(Just("s1")),
        prop::option::of(prop::sample::select(vec![
            ("origin.ip", "10.0.0.1"),
            ("origin.ip", "10.9.9.9"),
            ("user", "2"),
            ("ok", "true"),
        ])),
        prop::option::of(prop::sample::select(vec![
            "alpha",
            "beta GAMMA",
            "err",
            "10",
            "nothing",
            "x1 alpha",
        ])),
    )
        .prop_map(|(sev, host, app, source, field, text)| LogFilter {
            min_severity: sev.and_then(Severity::from_code),
            host: host.map(str::to_owned),
            app: app.map(str::to_owned),
            source: source.map(str::to_owned),
            fields: field
                .map(|(n, v)| vec![(n.to_owned(), v.to_owned())])
                .unwrap_or_default(),
            text: text.map(str::to_owned),
        })
}

#[allow(clippy::type_complexity)]
fn arb_case() -> impl Strategy<
    Value = (
        Vec<RawRecord>,
        Vec<bool>,
        Vec<u32>,
        Option<usize>,
        usize,
        Option<(usize, usize)>,
        Vec<(LogFilter, bool, usize, Option<(i64, i64)>)>,
    ),
> {
    (
        prop::collection::vec(arb_record(), 0..50),
        prop::collection::vec(any::<bool>(), 50),
        prop::collection::vec(any::<u32>(), 50),
        prop::option::of(0usize..50),
        1usize..6,
        prop::option::of((2usize..12, 1usize..12)),
        prop::collection::vec(
            (
                arb_filter(),
                any::<bool>(),
                1usize..8,
                prop::option::of((0i64..45, 0i64..45)),
            ),
            1..4,
        ),
    )
}

static CASE: AtomicU64 = AtomicU64::new(0);

/// Runs the model on the backend `open` makes (skipped when it makes none).
fn run<F, Fut>(open: F, cases: u32)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Option<Backend>>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let Some(backend) = rt.block_on(open()) else {
        return;
    };
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let name = backend.name;
    let result = runner.run(
        &arb_case(),
        |(raw, cuts, shuffle, dup, block, compact, queries)| {
            let n = CASE.fetch_add(1, Ordering::Relaxed);
            let tenant = Tenant::new(&format!("m{n}")).expect("tenant");
            let case = Case {
                records: raw.iter().map(|r| build(&tenant, r)).collect(),
                cuts,
                shuffle,
                dup,
                block,
                compact,
                queries: queries
                    .into_iter()
                    .map(|(f, newest, limit, range)| {
                        (
                            f,
                            if newest {
                                Order::NewestFirst
                            } else {
                                Order::OldestFirst
                            },
                            limit,
                            range,
                        )
                    })
                    .collect(),
            };
            rt.block_on(check(&backend, &tenant, &case))
                .map_err(TestCaseError::fail)
        },
    );
    rt.block_on(backend.cleanup());
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

async fn check(b: &Backend, tenant: &Tenant, c: &Case) -> Result<(), String> {
    let opts = BlockOptions {
        max_records: c.block,
        threads: 2,
        ..BlockOptions::default()
    };
    // Cut into batches, write them in a shuffled order.
    let mut batches: Vec<Vec<LogRecord>> = vec![Vec::new()];
    for (i, r) in c.records.iter().enumerate() {
        batches.last_mut().expect("non-empty").push(r.clone());
        if c.cuts[i] {
            batches.push(Vec::new());
        }
    }
    batches.retain(|b| !b.is_empty());
    let mut order: Vec<usize> = (0..batches.len()).collect();
    order.sort_by_key(|&i| c.shuffle[i]);
    for &i in &order {
        b.write(batches[i].clone(), &opts).await;
    }
    let dup = c
        .dup
        .filter(|_| !batches.is_empty())
        .map(|d| d % batches.len());
    if let Some(d) = dup {
        let r = b.write(batches[d].clone(), &opts).await;
        if r.blocks_written != 0 {
            return Err(format!(
                "rewrite of batch {d} stored {} blocks",
                r.blocks_written
            ));
        }
    }
    if let Some((target, small)) = c.compact {
        let copts = CompactionOptions {
            target_records: target,
            small_below: small,
            block: opts.clone(),
            ..CompactionOptions::default()
        };
        compact_tenant(b.store.as_ref(), tenant, &copts)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(d) = dup {
            let r = b.write(batches[d].clone(), &opts).await;
            if r.blocks_written != 0 {
                return Err(format!(
                    "rewrite of batch {d} after compaction stored {} blocks",
                    r.blocks_written
                ));
            }
        }
    }
    for (filter, order, limit, range) in &c.queries {
        let range = match range {
            None => TimeRange::ALL,
            Some((a, z)) => TimeRange::new(
                Timestamp::from_nanos(T0 + a * NANOS_PER_SEC / 10),
                Timestamp::from_nanos(T0 + z * NANOS_PER_SEC / 10),
            ),
        };
        let q = LogQuery {
            tenant: tenant.clone(),
            range,
            filter: filter.clone(),
            order: *order,
            limit: *limit,
            cursor: None,
        };
        let want = naive(&c.records, &q);
        let got = walk(b.store.as_ref(), q.clone()).await;
        if got != want {
            return Err(format!(
                "query {q:?}\n got ids {:?}\nwant ids {:?}",
                support::ids(&got),
                support::ids(&want)
            ));
        }
    }
    Ok(())
}

#[test]
fn model_memory() {
    run(|| async { Some(support::memory()) }, 256);
}

#[test]
fn model_sqlite() {
    run(
        || async { Some(support::sqlite(BlockOptions::default()).await) },
        48,
    );
}

#[test]
fn model_postgres() {
    run(|| support::postgres(BlockOptions::default()), 32);
}

#[test]
fn model_mysql() {
    run(|| support::mysql(BlockOptions::default()), 32);
}
