//! A worker killed mid-window: the stored partials, merged, equal a
//! recomputation from the raw samples exactly.
//!
//! The pipeline's contract is simulated faithfully: each batch is
//! aggregated, the engine is flushed, the flush's partials are stored under
//! the flush key *replacing* what that key held, and only then is the batch
//! acknowledged. The worker dies after storing batch K and before
//! acknowledging it, so the queue redelivers K and everything after it to a
//! fresh engine.

// Test helpers outside #[test] functions panic on purpose: that is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use killkrill_core::aggregate::{
    AggregateConfig, Aggregator, BatchId, PartialRollup, Point, Rollup, RollupKey, SeriesKey,
    SketchParams, merge_partials,
};
use killkrill_core::event::{Labels, MetricSample, Tenant, Timestamp};

const SERIES: usize = 40;
const STEP_MS: i64 = 3_000;
const DURATION_MS: i64 = 600_000;
const BATCH: usize = 200;
const KILLED_AT: usize = 17;

fn config() -> AggregateConfig {
    serde_json::from_str(r#"{"resolutions": ["10s", "1m", "5m"], "allowed_lateness": "30s"}"#)
        .unwrap()
}

/// A deterministic stream: counters with resets and gauges whose values are
/// multiples of 1/8, so a naive f64 sum is exact and can serve as reference.
fn stream() -> Vec<MetricSample> {
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut counters = [0.0f64; SERIES];
    let mut out = Vec::new();
    let mut t = 0;
    while t < DURATION_MS {
        for (i, c) in counters.iter_mut().enumerate() {
            let jitter = (i as i64 * 37) % STEP_MS;
            let counter = i % 2 == 0;
            let value = if counter {
                if next() % 23 == 0 {
                    *c = (next() % 5) as f64; // reset
                } else {
                    *c += (next() % 400) as f64 / 8.0;
                }
                *c
            } else {
                ((next() % 2_000_001) as f64 - 1_000_000.0) / 8.0
            };
            out.push(MetricSample {
                tenant: Some(Tenant::new(if i % 4 < 2 { "acme" } else { "globex" }).unwrap()),
                name: if counter {
                    "requests_total".into()
                } else {
                    "temperature".into()
                },
                labels: Labels::from_pairs([("instance", format!("host-{i}"))]),
                value,
                timestamp: Some(Timestamp::from_millis(t + jitter)),
                ..MetricSample::default()
            });
        }
        t += STEP_MS;
    }
    out
}

/// What the pipeline stores: partials per flush key, and high-water marks.
#[derive(Default)]
struct Store {
    partials: BTreeMap<BatchId, Vec<PartialRollup>>,
    high_water: BTreeMap<Tenant, Timestamp>,
    replaced: usize,
}

impl Store {
    /// Aggregates one delivery, flushes, stores (replacing), returns the key.
    fn process(&mut self, engine: &mut Aggregator, id: BatchId, batch: &[MetricSample]) {
        let report = engine.aggregate(id, batch);
        assert!(
            report.rejected.is_empty() && report.late_count == 0,
            "{report:?}"
        );
        let flush = engine.flush();
        let key = flush.key().expect("one batch per flush");
        assert_eq!(key, id);
        if self.partials.insert(key, flush.partials).is_some() {
            self.replaced += 1;
        }
        for (t, hw) in flush.high_water {
            let e = self.high_water.entry(t).or_insert(hw);
            *e = (*e).max(hw);
        }
    }
}

/// The reference: every (series, resolution, window) built from its raw
/// samples in stream order, sealed.
fn recompute(
    samples: &[MetricSample],
    resolutions: &[killkrill_core::aggregate::Resolution],
) -> BTreeMap<RollupKey, Rollup> {
    let mut points: BTreeMap<RollupKey, Vec<Point>> = BTreeMap::new();
    for s in samples {
        let series = std::sync::Arc::new(SeriesKey {
            tenant: s.tenant.clone().unwrap(),
            name: s.name.clone(),
            labels: s.labels.clone(),
        });
        let t = s.timestamp.unwrap();
        for r in resolutions {
            let key = RollupKey {
                series: series.clone(),
                resolution: *r,
                window_start: r.window_start(t),
                late: false,
            };
            points.entry(key).or_default().push(Point::new(t, s.value));
        }
    }
    points
        .into_iter()
        .map(|(k, p)| {
            (
                k,
                Rollup::from_points(p, Some(SketchParams::default())).unwrap(),
            )
        })
        .collect()
}

#[test]
fn worker_killed_mid_window_loses_and_doubles_nothing() {
    let samples = stream();
    let batches: Vec<&[MetricSample]> = samples.chunks(BATCH).collect();
    assert!(batches.len() > KILLED_AT + 5);
    let mut store = Store::default();

    // The first worker: batches 0..=K stored, 0..K acknowledged; killed
    // before acknowledging K.
    let mut worker = config().build().unwrap();
    let mut acked = Vec::new();
    for (i, b) in batches.iter().enumerate().take(KILLED_AT + 1) {
        store.process(&mut worker, BatchId(i as u128), b);
        if i < KILLED_AT {
            acked.push(i);
        }
    }
    let before_restart = store.partials[&BatchId(KILLED_AT as u128)].clone();
    // The kill happens mid-window for every resolution.
    let kill_time = batches[KILLED_AT].last().unwrap().timestamp.unwrap();
    for r in worker.resolutions() {
        assert_ne!(r.window_start(kill_time), kill_time, "{r}");
    }
    assert!(worker.open_windows() > 0);
    drop(worker);

    // A fresh worker: the high-water marks stored with the last flush, then
    // the queue redelivers from the first unacknowledged batch.
    let mut worker = config().build().unwrap();
    for (t, hw) in &store.high_water {
        worker.restore_high_water(t, *hw);
    }
    let first_unacked = acked.len();
    assert_eq!(first_unacked, KILLED_AT);
    for (i, b) in batches.iter().enumerate().skip(first_unacked) {
        store.process(&mut worker, BatchId(i as u128), b);
    }
    assert_eq!(
        store.replaced, 1,
        "the redelivered batch replaced its partials"
    );
    assert_eq!(store.partials.len(), batches.len());
    assert_ne!(
        store.partials[&BatchId(KILLED_AT as u128)],
        before_restart,
        "rewritten by the new worker (no counter link)"
    );

    // Compaction: merge everything stored, seal (the stream is over).
    let all: Vec<&PartialRollup> = store.partials.values().flatten().collect();
    let mut merged = merge_partials(all.iter().copied()).unwrap();
    merged.values_mut().for_each(Rollup::seal);
    let resolutions = config().build().unwrap().resolutions().to_vec();
    let reference = recompute(&samples, &resolutions);
    assert_eq!(merged.len(), reference.len());
    assert_eq!(
        merged, reference,
        "merged partials equal the recomputation, field for field"
    );

    // And against naive arithmetic on the raw values, independently of Rollup.
    let mut checked = 0;
    for (key, r) in &merged {
        let raw: Vec<(Timestamp, f64)> = samples
            .iter()
            .filter(|s| {
                s.name == key.series.name
                    && s.labels == key.series.labels
                    && key.resolution.window_start(s.timestamp.unwrap()) == key.window_start
            })
            .map(|s| (s.timestamp.unwrap(), s.value))
            .collect();
        assert_eq!(r.count(), raw.len() as u64);
        assert_eq!(r.sum(), raw.iter().map(|x| x.1).sum::<f64>());
        assert_eq!(
            r.min(),
            raw.iter().map(|x| x.1).fold(f64::INFINITY, f64::min)
        );
        assert_eq!(
            r.max(),
            raw.iter().map(|x| x.1).fold(f64::NEG_INFINITY, f64::max)
        );
        assert_eq!((r.first().timestamp, r.first().value), raw[0]);
        assert_eq!((r.last().timestamp, r.last().value), raw[raw.len() - 1]);
        let naive: f64 = raw
            .windows(2)
            .map(|w| {
                if w[1].1 < w[0].1 {
                    w[1].1
                } else {
                    w[1].1 - w[0].1
                }
            })
            .sum();
        assert_eq!(r.increase(), Some(naive), "{key:?}");
        assert!(r.counter().is_exact());
        checked += 1;
    }
    assert_eq!(checked, reference.len());

    // Negative control: had the redelivery been added instead of replacing,
    // the windows around the kill would count batch K twice.
    let mut doubled = merge_partials(all.iter().copied().chain(&before_restart)).unwrap();
    doubled.values_mut().for_each(Rollup::seal);
    let extra: u64 = doubled.values().map(Rollup::count).sum::<u64>()
        - merged.values().map(Rollup::count).sum::<u64>();
    assert_eq!(extra, (BATCH * resolutions.len()) as u64);
}
