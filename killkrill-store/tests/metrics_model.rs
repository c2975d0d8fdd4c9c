//! Model-based property test for metrics: any samples (duplicates, several
//! values for one timestamp, NaN/staleness markers, ±Inf), written in any
//! batching (one batch delivered twice), then queried with any matchers and
//! time range, give exactly what the in-memory model gives: the same write
//! reports, series, points (bit for bit), label names and values.
//! Runs SQLite always and PostgreSQL / MySQL when their URLs are set.
#![allow(clippy::print_stderr, clippy::unwrap_used)]

mod metric_support;
mod support;

use std::sync::atomic::{AtomicU64, Ordering};

use killkrill_core::event::{MetricSample, NANOS_PER_SEC, Tenant, Timestamp};
use killkrill_core::storage::{LabelMatcher, MatchOp, MemoryMetricStore, MetricStore, TimeRange};
use metric_support::{MetricBackend, STALE, T0, bits, sample};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// 20 minutes: 40 steps cross several hours (series seen ranges).
const STEP: i64 = 1_200 * NANOS_PER_SEC;

/// name, job, env, step, value.
type RawSample = (u8, u8, u8, i64, u8);

fn value(v: u8) -> f64 {
    match v {
        0 => 0.0,
        1 => 1.0,
        2 => 2.5,
        3 => -1.0,
        4 => f64::from_bits(STALE),
        5 => f64::INFINITY,
        6 => f64::NEG_INFINITY,
        7 => -0.0,
        n => f64::from(n) * 1.25,
    }
}

fn build(raw: &RawSample) -> MetricSample {
    let (name, job, env, step, v) = *raw;
    let mut labels: Vec<(&str, &str)> = Vec::new();
    if let Some(j) = ["x", "y"].get(usize::from(job)) {
        labels.push(("job", j));
    }
    if env == 1 {
        labels.push(("env", "p"));
    }
    // Sub-step offsets keep some timestamps off the millisecond grid.
    let off = if v % 3 == 0 { 7 } else { 0 };
    sample(
        ["a", "b", "c"][usize::from(name)],
        &labels,
        T0 + step * STEP + off,
        value(v),
    )
}

fn matcher_pool() -> Vec<LabelMatcher> {
    let m = |n: &str, op, v: &str| LabelMatcher::new(n, op, v).unwrap();
    vec![
        m("__name__", MatchOp::Eq, "a"),
        m("__name__", MatchOp::Re, "a|c"),
        m("__name__", MatchOp::Nre, "b"),
        m("job", MatchOp::Eq, "x"),
        m("job", MatchOp::Ne, "x"),
        m("job", MatchOp::Re, "x|y"),
        m("job", MatchOp::Nre, "y"),
        m("env", MatchOp::Eq, ""),
        m("env", MatchOp::Re, ".+"),
        m("job", MatchOp::Re, ".*"),
    ]
}

/// Indexes into the matcher pool, optional range in steps.
type Query = (Vec<usize>, Option<(i64, i64)>);

#[derive(Debug, Clone)]
struct Case {
    samples: Vec<RawSample>,
    cuts: Vec<bool>,
    dup: Option<usize>,
    queries: Vec<Query>,
}

fn arb_case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec((0u8..3, 0u8..3, 0u8..2, 0i64..40, 0u8..12), 0..80),
        prop::collection::vec(prop::bool::weighted(0.2), 80),
        prop::option::of(0usize..10),
        prop::collection::vec(
            (
                prop::collection::vec(0usize..10, 0..3),
                prop::option::of((-2i64..42, -2i64..42)),
            ),
            1..5,
        ),
    )
        .prop_map(|(samples, cuts, dup, queries)| Case {
            samples,
            cuts,
            dup,
            queries,
        })
}

fn batches(case: &Case) -> Vec<Vec<MetricSample>> {
    let mut out: Vec<Vec<MetricSample>> = vec![Vec::new()];
    for (i, raw) in case.samples.iter().enumerate() {
        if case.cuts[i] && out.last().is_some_and(|b| !b.is_empty()) {
            out.push(Vec::new());
        }
        if let Some(b) = out.last_mut() {
            b.push(build(raw));
        }
    }
    if let Some(d) = case.dup
        && let Some(b) = out.get(d % out.len()).cloned()
    {
        out.push(b);
    }
    out
}

async fn check(
    store: &dyn MetricStore,
    sql: Option<&killkrill_store::Store>,
    tenant: &Tenant,
    case: &Case,
) -> Result<(), String> {
    let model = MemoryMetricStore::new();
    for b in batches(case) {
        let want = model
            .write_samples(tenant, &b)
            .await
            .map_err(|e| e.to_string())?;
        let got = store
            .write_samples(tenant, &b)
            .await
            .map_err(|e| e.to_string())?;
        if got != want {
            return Err(format!("write report {got:?} != model {want:?}"));
        }
    }
    queries(store, &model, tenant, case).await?;
    // The same answers after the head (small chunks) is merged into full
    // chunks, up to a cutoff inside the data, then all of it.
    if let Some(sql) = sql {
        for cut in [T0 + 3 * STEP, i64::MAX] {
            sql.compact_metric_head(tenant, Timestamp::from_nanos(cut))
                .await
                .map_err(|e| e.to_string())?;
            queries(store, &model, tenant, case)
                .await
                .map_err(|e| format!("after compacting the head before {cut}: {e}"))?;
        }
    }
    Ok(())
}

async fn queries(
    store: &dyn MetricStore,
    model: &MemoryMetricStore,
    tenant: &Tenant,
    case: &Case,
) -> Result<(), String> {
    let pool = matcher_pool();
    for (ms, r) in &case.queries {
        let matchers: Vec<LabelMatcher> = ms.iter().map(|i| pool[*i].clone()).collect();
        let range = match r {
            None => TimeRange::ALL,
            Some((a, b)) => TimeRange::new(
                Timestamp::from_nanos(T0 + a * STEP),
                Timestamp::from_nanos(T0 + b * STEP),
            ),
        };
        let what = format!(
            "{:?} {range:?}",
            matchers.iter().map(ToString::to_string).collect::<Vec<_>>()
        );
        let e = |e: killkrill_core::storage::StoreError| e.to_string();
        let (gs, ws) = (
            store
                .select_series(tenant, &matchers, range)
                .await
                .map_err(e)?,
            model
                .select_series(tenant, &matchers, range)
                .await
                .map_err(e)?,
        );
        if gs != ws {
            return Err(format!("series for {what}: {gs:?} != model {ws:?}"));
        }
        let (gp, wp) = (
            store
                .select_samples(tenant, &matchers, range)
                .await
                .map_err(e)?,
            model
                .select_samples(tenant, &matchers, range)
                .await
                .map_err(e)?,
        );
        let key = |v: &[killkrill_core::storage::Series]| -> Vec<(u64, Vec<(i64, u64)>)> {
            v.iter().map(|s| (s.id.0, bits(&s.points))).collect()
        };
        if key(&gp) != key(&wp) {
            return Err(format!(
                "samples for {what}: {:?} != model {:?}",
                key(&gp),
                key(&wp)
            ));
        }
        let (gn, wn) = (
            store
                .label_names(tenant, &matchers, range)
                .await
                .map_err(e)?,
            model
                .label_names(tenant, &matchers, range)
                .await
                .map_err(e)?,
        );
        if gn != wn {
            return Err(format!("label names for {what}: {gn:?} != model {wn:?}"));
        }
        let (gv, wv) = (
            store
                .label_values(tenant, "job", &matchers, range)
                .await
                .map_err(e)?,
            model
                .label_values(tenant, "job", &matchers, range)
                .await
                .map_err(e)?,
        );
        if gv != wv {
            return Err(format!("label values for {what}: {gv:?} != model {wv:?}"));
        }
    }
    Ok(())
}

static CASE: AtomicU64 = AtomicU64::new(0);

fn run<F, Fut>(open: F, cases: u32)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Option<MetricBackend>>,
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
    let result = runner.run(&arb_case(), |case| {
        let n = CASE.fetch_add(1, Ordering::Relaxed);
        let tenant = Tenant::new(&format!("mm{n}")).expect("tenant");
        rt.block_on(check(
            backend.store.as_ref(),
            backend.sql_store(),
            &tenant,
            &case,
        ))
        .map_err(TestCaseError::fail)
    });
    rt.block_on(backend.cleanup());
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

#[test]
fn model_sqlite() {
    run(|| async { Some(metric_support::sqlite().await) }, 64);
}

#[test]
fn model_postgres() {
    run(metric_support::postgres, 48);
}

#[test]
fn model_mysql() {
    run(metric_support::mysql, 48);
}
