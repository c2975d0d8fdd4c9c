//! The exactness invariant: partial rollups of any split of a stream, merged
//! in any grouping and order, equal the rollups of the whole stream — and
//! the counter increase equals a naive reference.

// Test helpers outside #[test] functions panic on purpose: that is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use killkrill_core::aggregate::{
    AggregateConfig, BatchId, Flush, LatePolicy, PartialRollup, Rollup, RollupKey, merge_partials,
};
use killkrill_core::event::{Labels, MetricSample, Tenant, Timestamp};
use proptest::prelude::*;

fn config(late: LatePolicy, lateness: &str) -> AggregateConfig {
    serde_json::from_value(serde_json::json!({
        "resolutions": ["10s", "1m", "7s"],
        "allowed_lateness": lateness,
        "late_samples": late,
        "sketch": {"max_buckets": 64},
    }))
    .unwrap()
}

/// (series index, time in ms, value)
type Raw = (u8, i64, f64);

fn sample((series, ms, v): Raw) -> MetricSample {
    let tenant = if series % 2 == 0 { "a" } else { "b" };
    MetricSample {
        tenant: Some(Tenant::new(tenant).unwrap()),
        name: if series < 4 {
            "requests_total".into()
        } else {
            "latency".into()
        },
        labels: Labels::from_pairs([("instance", format!("i{}", series % 3))]),
        value: v,
        timestamp: Some(Timestamp::from_millis(ms)),
        ..MetricSample::default()
    }
}

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -1e6f64..1e6,
        1 => any::<f64>().prop_filter("finite", |x| x.is_finite()),
        1 => Just(0.0),
        1 => (0u32..50).prop_map(f64::from),
    ]
}

/// Mostly increasing times with jitter backwards (out-of-order and late).
fn stream() -> impl Strategy<Value = Vec<Raw>> {
    proptest::collection::vec((0u8..6, -3_000i64..9_000, finite()), 1..150).prop_map(|v| {
        let mut t = 0i64;
        v.into_iter()
            .map(|(s, step, x)| {
                t += step.max(0);
                (s, (t + step.min(0) * 20).max(0), x)
            })
            .collect()
    })
}

/// Merges in a random binary tree given by `order` and `splits`.
fn tree_merge(parts: &[Rollup], picks: &[usize]) -> Rollup {
    let mut pool: Vec<Rollup> = parts.to_vec();
    let mut k = 0;
    while pool.len() > 1 {
        let i = picks.get(k).copied().unwrap_or(0) % pool.len();
        let a = pool.swap_remove(i);
        let j = picks.get(k + 1).copied().unwrap_or(0) % pool.len();
        pool[j].merge(&a).unwrap();
        k += 2;
    }
    pool.pop().unwrap()
}

fn run_whole(cfg: &AggregateConfig, raw: &[Raw]) -> Flush {
    let mut e = cfg.build().unwrap();
    let samples: Vec<MetricSample> = raw.iter().copied().map(sample).collect();
    e.aggregate(BatchId(0), &samples);
    e.flush()
}

fn run_split(
    cfg: &AggregateConfig,
    raw: &[Raw],
    cuts: &[usize],
    flush_every: usize,
) -> Vec<PartialRollup> {
    let mut e = cfg.build().unwrap();
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (raw.len() + 1)).collect();
    bounds.push(0);
    bounds.push(raw.len());
    bounds.sort_unstable();
    let mut out = Vec::new();
    for (n, w) in bounds.windows(2).enumerate() {
        let batch: Vec<MetricSample> = raw[w[0]..w[1]].iter().copied().map(sample).collect();
        e.aggregate(BatchId(n as u128), &batch);
        if n % flush_every.max(1) == 0 {
            out.extend(e.flush().partials);
        }
    }
    out.extend(e.flush().partials);
    out
}

fn by_key(partials: Vec<PartialRollup>) -> BTreeMap<RollupKey, Vec<Rollup>> {
    let mut m: BTreeMap<RollupKey, Vec<Rollup>> = BTreeMap::new();
    for p in partials {
        m.entry(p.key).or_default().push(p.rollup);
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Drop and Output policies: bit-for-bit equal rollups (count, exact
    /// sum, min, max, first, last, counter segments, out-of-order counts,
    /// sketch buckets) for any split, flush cadence, grouping and order.
    #[test]
    fn merge_of_any_split_equals_whole(
        raw in stream(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        flush_every in 1usize..4,
        picks in proptest::collection::vec(any::<usize>(), 0..64),
        late in prop_oneof![Just(LatePolicy::Drop), Just(LatePolicy::Output)],
        lateness in prop_oneof![Just("0s"), Just("5s"), Just("1h")],
    ) {
        let cfg = config(late, lateness);
        let whole = run_whole(&cfg, &raw);
        let split = by_key(run_split(&cfg, &raw, &cuts, flush_every));
        prop_assert_eq!(split.len(), whole.partials.len());
        for p in &whole.partials {
            let parts = split.get(&p.key).expect("key present in the split run");
            let merged = tree_merge(parts, &picks);
            prop_assert_eq!(&merged, &p.rollup, "key {:?}", p.key);
            prop_assert_eq!(merged.sum().to_bits(), p.rollup.sum().to_bits());
            prop_assert_eq!(merged.increase().map(f64::to_bits), p.rollup.increase().map(f64::to_bits));
            prop_assert_eq!(merged.quantile(0.9).map(f64::to_bits), p.rollup.quantile(0.9).map(f64::to_bits));
            // Partial-order independence of merge_partials too.
            let mut rev: Vec<PartialRollup> = parts.iter().rev().map(|r| PartialRollup { key: p.key.clone(), rollup: r.clone() }).collect();
            let n = rev.len();
            rev.rotate_left(picks.first().copied().unwrap_or(0) % n);
            prop_assert_eq!(&merge_partials(&rev).unwrap()[&p.key], &p.rollup);
        }
    }

    /// Aggregate policy: on-time rollups as above; late partials start a
    /// fresh counter chain per flush, so after sealing they agree on
    /// everything except (when late samples arrive out of order) the counter.
    #[test]
    fn late_partials_merge_exactly(
        raw in stream(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        picks in proptest::collection::vec(any::<usize>(), 0..64),
    ) {
        let cfg = config(LatePolicy::Aggregate, "2s");
        let whole = run_whole(&cfg, &raw);
        let split = by_key(run_split(&cfg, &raw, &cuts, 1));
        prop_assert_eq!(split.len(), whole.partials.len());
        for p in &whole.partials {
            let mut merged = tree_merge(&split[&p.key], &picks);
            if !p.key.late {
                prop_assert_eq!(&merged, &p.rollup);
                continue;
            }
            merged.seal();
            let w = &p.rollup;
            prop_assert_eq!(merged.count(), w.count());
            prop_assert_eq!(merged.sum().to_bits(), w.sum().to_bits());
            prop_assert_eq!((merged.min(), merged.max()), (w.min(), w.max()));
            prop_assert_eq!((merged.first(), merged.last()), (w.first(), w.last()));
            prop_assert_eq!(merged.sketch(), w.sketch());
            if w.counter().is_exact() && merged.counter().is_exact() {
                prop_assert_eq!(merged.increase(), w.increase());
            }
        }
    }

    /// In-order counters with resets: the merged increase equals the naive
    /// Prometheus computation (Σ Δ, a decrease counting the new value) over
    /// the window's samples, and so does the number of resets.
    #[test]
    fn counter_increase_matches_naive_reference(
        steps in proptest::collection::vec((1i64..4_000, 0u32..3, 0u32..100), 1..120),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
        picks in proptest::collection::vec(any::<usize>(), 0..64),
    ) {
        // One series, integer values (so the f64 reference is exact).
        let mut t = 0;
        let mut v = 0.0;
        let raw: Vec<Raw> = steps.iter().map(|(dt, kind, x)| {
            t += dt;
            v = match kind { 0 => f64::from(*x), _ => v + f64::from(*x) };
            (0, t, v)
        }).collect();
        let cfg = config(LatePolicy::Drop, "1h");
        let split = by_key(run_split(&cfg, &raw, &cuts, 1));
        for (key, parts) in &split {
            let r = tree_merge(parts, &picks);
            let res = key.resolution.as_nanos();
            let start = key.window_start.as_nanos();
            let in_window: Vec<f64> = raw.iter()
                .filter(|(_, ms, _)| (ms * 1_000_000 - start) >= 0 && (ms * 1_000_000 - start) < res)
                .map(|(_, _, x)| *x)
                .collect();
            let mut inc = 0.0;
            let mut resets = 0;
            for w in in_window.windows(2) {
                if w[1] < w[0] { inc += w[1]; resets += 1; } else { inc += w[1] - w[0]; }
            }
            prop_assert!(r.counter().is_exact());
            prop_assert_eq!(r.increase(), Some(inc), "window {:?}", key);
            prop_assert_eq!(r.counter().resets(), resets);
            prop_assert_eq!(r.count(), in_window.len() as u64);
        }
    }
}

/// Runs of one series: (series, run length, time step in ms, value kind).
fn runs() -> impl Strategy<Value = Vec<Raw>> {
    proptest::collection::vec(
        (0u8..6, 1usize..30, -400i64..3_000, 0u32..4, finite()),
        1..25,
    )
    .prop_map(|runs| {
        let mut t = 0i64;
        let mut out = Vec::new();
        for (series, len, step, kind, x) in runs {
            let mut v = x.abs().min(1e6);
            for k in 0..len {
                // Mostly forwards; a negative step goes back (out of
                // order, late), 0 repeats the timestamp (duplicates).
                t = (t + step.max(-50) * ((k % 3) as i64)).max(0);
                v = match kind {
                    0 => v + 1.0,
                    1 if k % 4 == 3 => 0.0, // a counter reset
                    1 => v + 2.5,
                    2 => x,
                    _ => v - 1.0,
                };
                out.push((series, t, v));
            }
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The run fast path (`aggregate/run.rs`) changes nothing: a batch with
    /// runs of one series' samples gives the same flush — the same
    /// partials in the same order, bit for bit — and the same counters as
    /// the same samples given one per call (where every sample takes the
    /// full path).
    #[test]
    fn runs_equal_samples_one_by_one(
        raw in runs(),
        late in prop_oneof![Just(LatePolicy::Drop), Just(LatePolicy::Output), Just(LatePolicy::Aggregate)],
        lateness in prop_oneof![Just("0s"), Just("5s"), Just("1h")],
    ) {
        let cfg = config(late, lateness);
        let samples: Vec<MetricSample> = raw.iter().copied().map(sample).collect();
        let mut together = cfg.build().unwrap();
        let report = together.aggregate(BatchId(1), &samples);
        let mut alone = cfg.build().unwrap();
        let (mut aggregated, mut late_count) = (0, 0);
        for s in &samples {
            let r = alone.aggregate(BatchId(1), std::slice::from_ref(s));
            aggregated += r.aggregated;
            late_count += r.late_count;
        }
        prop_assert_eq!(report.aggregated, aggregated);
        prop_assert_eq!(report.late_count, late_count);
        prop_assert_eq!(together.counters(), alone.counters());
        prop_assert_eq!(together.open_windows(), alone.open_windows());
        let (a, b) = (together.flush(), alone.flush());
        prop_assert_eq!(a.partials.len(), b.partials.len());
        for (x, y) in a.partials.iter().zip(&b.partials) {
            prop_assert_eq!(&x.key, &y.key);
            prop_assert_eq!(&x.rollup, &y.rollup, "key {:?}", x.key);
            prop_assert_eq!(x.rollup.sum().to_bits(), y.rollup.sum().to_bits());
            prop_assert_eq!(x.rollup.increase().map(f64::to_bits), y.rollup.increase().map(f64::to_bits));
        }
    }
}
