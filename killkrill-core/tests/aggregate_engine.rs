//! Table-driven tests of the engine's behaviour: lateness routing,
//! cardinality limits and their report, the open-window bound, rejected
//! samples, and the self-metrics sent to the `metrics` facade.

// Test helpers outside #[test] functions panic on purpose: that is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use killkrill_core::aggregate::{
    AggregateConfig, Aggregator, BatchId, CardinalityOffender, LatePolicy, RejectReason,
};
use killkrill_core::event::{Labels, MetricSample, Tenant, Timestamp};

fn engine(json: serde_json::Value) -> Aggregator {
    serde_json::from_value::<AggregateConfig>(json)
        .unwrap()
        .build()
        .unwrap()
}

fn s(tenant: &str, name: &str, label: &str, secs: i64, v: f64) -> MetricSample {
    MetricSample {
        tenant: Some(Tenant::new(tenant).unwrap()),
        name: name.into(),
        labels: Labels::from_pairs([("id", label)]),
        value: v,
        timestamp: Some(Timestamp::from_secs(secs)),
        ..MetricSample::default()
    }
}

#[test]
fn lateness_routing_table() {
    // Resolutions 10s and 1m, lateness 10s; a first sample at t=100 makes
    // the watermark 90: the 10s window [80,90) is closed, [90,100) open;
    // the 1m window [0,60) is closed, [60,120) open.
    // (policy, sample time, late resolutions as "10s,1m" indices, late partials flushed)
    let cases: &[(LatePolicy, i64, &[usize], usize)] = &[
        (LatePolicy::Drop, 95, &[], 0),
        (LatePolicy::Drop, 85, &[0], 0),
        (LatePolicy::Drop, 50, &[0, 1], 0),
        (LatePolicy::Output, 95, &[], 0),
        (LatePolicy::Output, 85, &[0], 0),
        (LatePolicy::Output, 50, &[0, 1], 0),
        (LatePolicy::Aggregate, 95, &[], 0),
        (LatePolicy::Aggregate, 85, &[0], 1),
        (LatePolicy::Aggregate, 50, &[0, 1], 2),
        // Exactly at the watermark: [90,100) ends at 100 > 90, on time.
        (LatePolicy::Drop, 90, &[], 0),
        // A window ending exactly at the watermark is closed.
        (LatePolicy::Drop, 89, &[0], 0),
    ];
    for (policy, t, late, late_partials) in cases {
        let mut e = engine(serde_json::json!({
            "resolutions": ["1m", "10s"], "allowed_lateness": "10s", "late_samples": policy,
        }));
        e.aggregate(BatchId(1), &[s("t", "m", "a", 100, 1.0)]);
        let r = e.aggregate(BatchId(2), &[s("t", "m", "a", *t, 2.0)]);
        let is_late = !late.is_empty();
        let c = e.counters();
        let what = format!("{policy:?} t={t}");
        assert_eq!(r.late_count, u64::from(is_late), "{what}");
        assert_eq!(c.late, u64::from(is_late), "{what}");
        assert!(r.rejected.is_empty(), "{what}");
        // Aggregated into the on-time resolution(s) whenever one is left.
        assert_eq!(r.aggregated, u64::from(late.len() < 2), "{what}");
        match policy {
            LatePolicy::Drop => assert_eq!(c.late_dropped, u64::from(is_late), "{what}"),
            LatePolicy::Output => {
                assert_eq!(c.late_output, u64::from(is_late), "{what}");
                let got: Vec<(usize, Vec<usize>)> = r
                    .late
                    .iter()
                    .map(|l| (l.index, l.resolutions.iter().collect()))
                    .collect();
                let want: Vec<(usize, Vec<usize>)> = if is_late {
                    vec![(0, late.to_vec())]
                } else {
                    vec![]
                };
                assert_eq!(got, want, "{what}");
            }
            LatePolicy::Aggregate => assert_eq!(c.late_aggregated, u64::from(is_late), "{what}"),
        }
        if *policy != LatePolicy::Output {
            assert!(r.late.is_empty(), "{what}");
        }
        let f = e.flush();
        let late_keys: Vec<_> = f.partials.iter().filter(|p| p.key.late).collect();
        assert_eq!(late_keys.len(), *late_partials, "{what}");
        for p in late_keys {
            assert_eq!(p.rollup.count(), 1);
            assert_eq!(p.rollup.sum(), 2.0);
        }
        if is_late {
            let by_metric = e.late_by_metric(10);
            assert_eq!(by_metric.len(), 1);
            assert_eq!(
                (
                    by_metric[0].tenant.as_str(),
                    by_metric[0].metric.as_str(),
                    by_metric[0].count
                ),
                ("t", "m", 1)
            );
        }
    }
}

#[test]
fn watermarks_are_per_tenant() {
    let mut e = engine(serde_json::json!({"resolutions": ["10s"], "allowed_lateness": "0s"}));
    e.aggregate(BatchId(1), &[s("fast", "m", "a", 1000, 1.0)]);
    // Another tenant far behind is not late: its own watermark is unset.
    let r = e.aggregate(
        BatchId(2),
        &[s("slow", "m", "a", 5, 1.0), s("fast", "m", "a", 5, 1.0)],
    );
    assert_eq!(r.aggregated, 1);
    assert_eq!(r.late_count, 1);
    let late = e.late_by_metric(5);
    assert_eq!(late[0].tenant.as_str(), "fast");
}

#[test]
fn cardinality_limit_table() {
    // Limit 2 series per metric and tenant; 1m windows, no lateness.
    // (tenant, metric, label, time, expected rejection)
    let steps: &[(&str, &str, &str, i64, bool)] = &[
        ("t1", "m", "a", 0, false),
        ("t1", "m", "b", 1, false),
        ("t1", "m", "a", 2, false), // existing series: fine
        ("t1", "m", "c", 3, true),  // third series of m in t1
        ("t1", "m", "d", 4, true),
        ("t1", "m", "c", 5, true),
        ("t1", "n", "c", 6, false), // another metric
        ("t2", "m", "c", 7, false), // another tenant
        ("t1", "m", "b", 59, false),
        // b moves on to [60,120); event time 60 closes [0,60) for t1, so a
        // (whose last window was [0,60)) stops counting.
        ("t1", "m", "b", 60, false),
        ("t1", "m", "c", 61, false),
        ("t1", "m", "d", 62, true),
    ];
    let mut e = engine(serde_json::json!({
        "resolutions": ["1m"], "allowed_lateness": "0s", "max_series_per_metric": 2,
    }));
    for (i, (tenant, metric, label, t, rejected)) in steps.iter().enumerate() {
        let r = e.aggregate(BatchId(i as u128), &[s(tenant, metric, label, *t, 1.0)]);
        let got: Vec<RejectReason> = r.rejected.iter().map(|x| x.reason).collect();
        let want = if *rejected {
            vec![RejectReason::Cardinality]
        } else {
            vec![]
        };
        assert_eq!(
            got, want,
            "step {i}: {tenant} {metric}{{id={label}}} at {t}"
        );
    }
    assert_eq!(e.counters().rejected_cardinality, 4);
    let offenders = e.cardinality_offenders(10);
    assert_eq!(
        offenders,
        vec![CardinalityOffender {
            tenant: Tenant::new("t1").unwrap(),
            metric: "m".into(),
            rejected_samples: 4,
            live_series: 2,
        }]
    );
    assert!(e.cardinality_offenders(0).is_empty());
}

#[test]
fn flush_evicts_closed_windows_and_forgets_series() {
    let mut e = engine(serde_json::json!({"resolutions": ["10s", "1m"], "allowed_lateness": "5s"}));
    let batch: Vec<MetricSample> = (0..5)
        .map(|i| s("t", "m", &format!("s{i}"), 1, 1.0))
        .collect();
    e.aggregate(BatchId(1), &batch);
    assert_eq!((e.open_windows(), e.series_count()), (10, 5));
    let f = e.flush();
    assert_eq!(f.partials.len(), 10);
    assert_eq!(f.batches, vec![BatchId(1)]);
    assert_eq!(e.open_windows(), 10, "still open: watermark is -4s");
    // t=15 → watermark 10: the 10s windows [0,10) close; 1m stays open.
    e.aggregate(BatchId(2), &[s("t", "m", "s0", 15, 1.0)]);
    let f = e.flush();
    assert_eq!(f.partials.len(), 2);
    assert_eq!(e.open_windows(), 5 + 1);
    assert_eq!(e.counters().windows_closed, 5);
    // t=70 → watermark 65: everything before 60 closes.
    e.aggregate(BatchId(3), &[s("t", "m", "s0", 70, 1.0)]);
    e.flush();
    assert_eq!(
        (e.open_windows(), e.series_count(), e.metric_count()),
        (2, 1, 1)
    );
    assert_eq!(
        f.high_water,
        vec![(Tenant::new("t").unwrap(), Timestamp::from_secs(15))]
    );
}

#[test]
fn open_window_bound_rejects_and_recovers() {
    let mut e = engine(serde_json::json!({
        "resolutions": ["10s", "1m"], "allowed_lateness": "0s", "max_open_windows": 4,
    }));
    let r = e.aggregate(
        BatchId(1),
        &[
            s("t", "m", "a", 1, 1.0),
            s("t", "m", "b", 1, 1.0),
            s("t", "m", "c", 1, 1.0),
        ],
    );
    assert_eq!(r.rejected.len(), 1);
    assert_eq!(
        (r.rejected[0].index, r.rejected[0].reason),
        (2, RejectReason::OpenWindows)
    );
    assert!(e.needs_flush());
    // Same series, same windows: no new window needed, accepted.
    let r = e.aggregate(BatchId(2), &[s("t", "m", "a", 2, 1.0)]);
    assert!(r.rejected.is_empty());
    // After t=60 everything closes; flushing frees the memory.
    e.aggregate(BatchId(3), &[s("t", "x", "z", 60, 1.0)]);
    assert_eq!(
        e.counters().rejected_open_windows,
        2,
        "t=60 needs 2 windows too"
    );
    e.flush();
    let r = e.aggregate(BatchId(4), &[s("t", "m", "c", 61, 1.0)]);
    assert!(r.rejected.is_empty(), "{r:?}");
    assert_eq!(e.open_windows(), 2);
}

#[test]
fn rejected_samples_are_reported_and_counted() {
    let mut e = engine(serde_json::json!({"resolutions": ["10s"]}));
    let mut no_time = s("t", "m", "a", 1, 1.0);
    no_time.timestamp = None;
    let r = e.aggregate(
        BatchId(1),
        &[
            s("t", "m", "a", 1, f64::NAN),
            s("t", "m", "a", 1, f64::INFINITY),
            no_time,
            s("t", "m", "a", 1, 2.0),
        ],
    );
    let got: Vec<(usize, RejectReason)> = r.rejected.iter().map(|x| (x.index, x.reason)).collect();
    assert_eq!(
        got,
        [
            (0, RejectReason::NonFinite),
            (1, RejectReason::NonFinite),
            (2, RejectReason::MissingTimestamp)
        ]
    );
    let c = e.counters();
    assert_eq!(
        (
            c.received,
            c.aggregated,
            c.rejected_non_finite,
            c.rejected_missing_timestamp
        ),
        (4, 1, 2, 1)
    );
    // A sample without tenant belongs to the default tenant.
    let mut anon = s("t", "m", "a", 1, 1.0);
    anon.tenant = None;
    e.aggregate(BatchId(2), &[anon]);
    let f = e.flush();
    let tenants: Vec<&str> = f
        .partials
        .iter()
        .map(|p| p.key.series.tenant.as_str())
        .collect();
    // Series come out in the order they were first seen since the last flush.
    assert_eq!(tenants, ["t", "default"]);
}

/// A recorder that keeps counter totals and gauge values by name and labels.
#[derive(Default, Clone)]
struct Capture(Arc<Mutex<BTreeMap<String, f64>>>);

struct Handle(String, Arc<Mutex<BTreeMap<String, f64>>>, bool);

impl metrics::CounterFn for Handle {
    fn increment(&self, v: u64) {
        *self.1.lock().unwrap().entry(self.0.clone()).or_default() += v as f64;
    }
    fn absolute(&self, v: u64) {
        self.1.lock().unwrap().insert(self.0.clone(), v as f64);
    }
}

impl metrics::GaugeFn for Handle {
    fn increment(&self, v: f64) {
        *self.1.lock().unwrap().entry(self.0.clone()).or_default() += v;
    }
    fn decrement(&self, v: f64) {
        *self.1.lock().unwrap().entry(self.0.clone()).or_default() -= v;
    }
    fn set(&self, v: f64) {
        assert!(self.2);
        self.1.lock().unwrap().insert(self.0.clone(), v);
    }
}

impl Capture {
    fn handle(&self, key: &metrics::Key, gauge: bool) -> Arc<Handle> {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        Arc::new(Handle(
            format!("{}{{{}}}", key.name(), labels.join(",")),
            self.0.clone(),
            gauge,
        ))
    }
}

impl metrics::Recorder for Capture {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(self.handle(key, false))
    }
    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::from_arc(self.handle(key, true))
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

#[test]
fn self_metrics_reach_the_facade() {
    let cap = Capture::default();
    metrics::with_local_recorder(&cap, || {
        let mut e = engine(serde_json::json!({
            "resolutions": ["10s"], "allowed_lateness": "0s", "max_series_per_metric": 1,
        }));
        e.aggregate(
            BatchId(1),
            &[
                s("t", "m", "a", 20, 1.0),
                s("t", "m", "b", 20, 1.0),
                s("t", "m", "a", 5, 1.0),
                s("t", "m", "a", 1, f64::NAN),
            ],
        );
        e.aggregate(BatchId(2), &[s("t", "m", "a", 35, 1.0)]);
        e.flush();
    });
    let got = cap.0.lock().unwrap().clone();
    let want: BTreeMap<String, f64> = [
        ("killkrill_aggregate_samples_total{outcome=received}", 5.0),
        ("killkrill_aggregate_samples_total{outcome=aggregated}", 2.0),
        ("killkrill_aggregate_late_samples_total{action=drop}", 1.0),
        (
            "killkrill_aggregate_rejected_samples_total{reason=cardinality}",
            1.0,
        ),
        (
            "killkrill_aggregate_rejected_samples_total{reason=non_finite}",
            1.0,
        ),
        ("killkrill_aggregate_windows_closed_total{}", 1.0),
        ("killkrill_aggregate_partials_flushed_total{}", 2.0),
        ("killkrill_aggregate_open_windows{}", 1.0),
        ("killkrill_aggregate_series{}", 1.0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(got, want);
}

/// A series' samples that share one label set (a decoded run) aggregate
/// exactly like samples that each carry a copy: the engine looks the
/// series up once per run, also when the run's series is new, rejected,
/// or continues into the next batch.
#[test]
fn runs_of_shared_labels_aggregate_like_copies() {
    let config = serde_json::json!({
        "resolutions": ["10s", "1m"], "allowed_lateness": "0s", "max_series_per_metric": 2,
    });
    // (label, first second, samples in the run)
    let runs: &[(&str, i64, i64)] = &[("a", 0, 4), ("b", 2, 3), ("c", 3, 3), ("a", 5, 2)];
    let mut shared = Vec::new();
    let mut copies = Vec::new();
    for (label, t0, n) in runs {
        let first = s("t", "m", label, *t0, 1.0);
        for i in 0..*n {
            let one = MetricSample {
                value: i as f64,
                timestamp: Some(Timestamp::from_secs(t0 + i)),
                ..first.clone()
            };
            copies.push(MetricSample {
                labels: Labels::from_pairs([("id", *label)]),
                ..one.clone()
            });
            shared.push(one);
        }
    }
    assert!(shared[0].labels.shares(&shared[1].labels));
    assert!(!copies[0].labels.shares(&copies[1].labels));
    let (mut e1, mut e2) = (engine(config.clone()), engine(config));
    // The second batch starts inside the last run of `a`.
    for (batch, range) in [(1, 0..11), (2, 11..12)] {
        let r1 = e1.aggregate(BatchId(batch), &shared[range.clone()]);
        let r2 = e2.aggregate(BatchId(batch), &copies[range]);
        assert_eq!(r1, r2);
    }
    assert_eq!(e1.counters().rejected_cardinality, 3, "the run of c");
    assert_eq!(e1.counters(), e2.counters());
    assert_eq!(e1.flush(), e2.flush());
    assert_eq!(e1.series_count(), 2);
}
