//! Samples/s through the aggregation engine, with baselines measured in the
//! same run:
//!
//! - `group_hashmap`: only hashing and grouping each sample into a std
//!   `HashMap` per (series, resolution, window) with f64 count/sum/min/max —
//!   the least any windowed aggregator must do;
//! - `sketches_ddsketch`: inserting the same values into the
//!   `sketches-ddsketch` crate, one sketch per (series, resolution).
//!
//! Input: 1,000 series (10 metric names × 100 label sets of 3 labels, one
//! tenant) scraped every 10 s, 100 batches of 1,000 samples (1,000 s of
//! data), 3 resolutions (10 s, 1 min, 1 h), the engine flushed after every
//! batch (the simplest idempotency scheme: flush key = batch id) or after
//! every 10 batches (a flush covering several batches, with a ledger).
//! `engine_sketch_on_runs_of_10` takes the same values as a remote_write
//! request of a fast scrape carries them: each series' 10 next samples
//! together, 1 s apart, 100 series per batch of 1,000 (the engine's run
//! fast path, `aggregate/run.rs`).
//!
//! Run: `cargo bench --workspace --bench aggregate`

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use killkrill_core::aggregate::{AggregateConfig, BatchId};
use killkrill_core::event::{Labels, MetricSample, Tenant, Timestamp};

const SERIES: usize = 1_000;
const BATCHES: usize = 100;
const RESOLUTIONS_NS: [i64; 3] = [10_000_000_000, 60_000_000_000, 3_600_000_000_000];

fn input() -> Vec<Vec<MetricSample>> {
    let tenant = Tenant::new("acme").expect("valid tenant");
    let names = [
        "http_requests_total",
        "http_request_duration_seconds",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "node_network_receive_bytes_total",
        "go_goroutines",
        "db_query_duration_seconds",
        "queue_depth",
        "cache_hits_total",
        "temperature_celsius",
    ];
    let label_sets: Vec<Labels> = (0..SERIES / names.len())
        .map(|i| {
            Labels::from_pairs([
                ("instance", format!("10.0.{}.{}:9100", i / 10, i % 10)),
                ("job", format!("service-{}", i % 7)),
                ("method", ["GET", "POST", "PUT"][i % 3].to_string()),
            ])
        })
        .collect();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / (1u64 << 53) as f64
    };
    let start = Timestamp::parse_rfc3339("2026-11-25T12:00:00Z")
        .expect("valid time")
        .as_nanos();
    let mut counters = vec![0.0f64; SERIES];
    (0..BATCHES)
        .map(|b| {
            let t = start + b as i64 * 10_000_000_000;
            (0..SERIES)
                .map(|i| {
                    let name = names[i % names.len()];
                    let value = if name.ends_with("_total") {
                        counters[i] += (next() * 100.0).floor();
                        counters[i]
                    } else {
                        // Log-normal-ish latencies and sizes: 1e-4 .. 1e4.
                        10f64.powf(next() * 8.0 - 4.0)
                    };
                    MetricSample {
                        tenant: Some(tenant.clone()),
                        name: name.into(),
                        labels: label_sets[i / names.len()].clone(),
                        value,
                        timestamp: Some(Timestamp::from_nanos(t + (i as i64 % 1000) * 1_000_000)),
                        ..MetricSample::default()
                    }
                })
                .collect()
        })
        .collect()
}

/// The same samples regrouped in runs: 10 consecutive samples of a series
/// together, re-timed 1 s apart inside the 10 s their batches covered.
fn runs_of_10(batches: &[Vec<MetricSample>]) -> Vec<Vec<MetricSample>> {
    let mut out = Vec::with_capacity(batches.len());
    for ten in batches.chunks(10) {
        let block = ten[0][0].timestamp.expect("timestamped").as_nanos();
        for first in (0..SERIES).step_by(100) {
            let mut b = Vec::with_capacity(1_000);
            for i in first..first + 100 {
                for (j, batch) in ten.iter().enumerate() {
                    let mut s = batch[i].clone();
                    s.timestamp = Some(Timestamp::from_nanos(
                        block + j as i64 * 1_000_000_000 + (i as i64 % 1000) * 1_000_000,
                    ));
                    b.push(s);
                }
            }
            out.push(b);
        }
    }
    out
}

fn config(sketch: bool) -> AggregateConfig {
    serde_json::from_value(serde_json::json!({
        "resolutions": ["10s", "1m", "1h"],
        "allowed_lateness": "30s",
        "sketch": {"enabled": sketch},
    }))
    .expect("valid config")
}

#[derive(Clone, Copy)]
struct Agg {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

fn bench(c: &mut Criterion) {
    let batches = input();
    let runs = runs_of_10(&batches);
    let total = (SERIES * BATCHES) as u64;
    let mut g = c.benchmark_group("aggregate");
    g.throughput(Throughput::Elements(total));
    g.sample_size(15);
    g.measurement_time(Duration::from_secs(8));

    let cases = [
        ("engine_sketch_on", true, 1, &batches),
        ("engine_sketch_off", false, 1, &batches),
        ("engine_sketch_on_flush_every_10", true, 10, &batches),
        ("engine_sketch_on_runs_of_10", true, 1, &runs),
    ];
    for (name, sketch, flush_every, batches) in cases {
        let cfg = config(sketch);
        g.bench_function(name, |b| {
            b.iter_batched(
                || cfg.build().expect("valid config"),
                |mut engine| {
                    let mut partials = 0;
                    for (i, batch) in batches.iter().enumerate() {
                        let r = engine.aggregate(BatchId(i as u128), batch);
                        debug_assert!(r.rejected.is_empty());
                        if (i + 1) % flush_every == 0 {
                            partials += engine.flush().partials.len();
                        }
                    }
                    black_box(partials + engine.flush().partials.len())
                },
                BatchSize::LargeInput,
            );
        });
    }

    g.bench_function("baseline_group_hashmap", |b| {
        b.iter(|| {
            let mut groups: HashMap<(&str, &str, &Labels, i64, i64), Agg> = HashMap::new();
            for batch in &batches {
                for s in batch {
                    let t = s.timestamp.expect("timestamped").as_nanos();
                    let tenant = s.tenant.as_ref().map_or("default", Tenant::as_str);
                    for r in RESOLUTIONS_NS {
                        let w = t - t.rem_euclid(r);
                        let a = groups
                            .entry((tenant, &s.name, &s.labels, r, w))
                            .or_insert(Agg {
                                count: 0,
                                sum: 0.0,
                                min: f64::INFINITY,
                                max: f64::NEG_INFINITY,
                            });
                        a.count += 1;
                        a.sum += s.value;
                        a.min = a.min.min(s.value);
                        a.max = a.max.max(s.value);
                    }
                }
            }
            black_box(groups.len())
        });
    });

    g.bench_function("baseline_sketches_ddsketch_insert", |b| {
        b.iter_batched(
            || {
                (0..SERIES * RESOLUTIONS_NS.len())
                    .map(
                        |_| sketches_ddsketch::DDSketch::new(sketches_ddsketch::Config::defaults()),
                    )
                    .collect::<Vec<_>>()
            },
            |mut sketches| {
                for batch in &batches {
                    for (i, s) in batch.iter().enumerate() {
                        for k in 0..RESOLUTIONS_NS.len() {
                            sketches[i * RESOLUTIONS_NS.len() + k].add(s.value);
                        }
                    }
                }
                black_box(sketches.len())
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
