//! The conformance test's data: one hour of samples at 15 s — counters with
//! resets and per-series scrape offsets, gauges, series with irregular
//! scrapes and NaNs, an `up` series that stops, an info metric and a classic
//! histogram — as OpenMetrics for promtool and as a `MemorySource`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use killkrill_query::MemorySource;

const STEP: i64 = 15_000;
const SPAN: i64 = 3_600_000;

type GenSeries = (Vec<(String, String)>, Vec<(i64, f64)>);

pub struct Gen {
    pub base: i64,
    series: Vec<GenSeries>,
}

/// Deterministic pseudo-random numbers (splitmix64).
fn rnd(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut l: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.sort();
    l
}

impl Gen {
    pub fn new(base: i64) -> Self {
        let mut g = Gen {
            base,
            series: Vec::new(),
        };
        let mut idx = 0u64;
        // Counters with resets; per-series scrape offsets (some aligned to the step).
        for job in ["api", "web", "db"] {
            for inst in ["i0", "i1", "i2"] {
                for code in ["200", "500"] {
                    idx += 1;
                    let offset =
                        ((idx * 1_379) % 15) as i64 * 1_000 * i64::from(!idx.is_multiple_of(4));
                    let mut v = 0.0;
                    let mut pts = Vec::new();
                    for i in 0..(SPAN / STEP) {
                        let t = base + offset + i * STEP;
                        v += (rnd(idx * 10_000 + i as u64) * 10.0).floor()
                            * if code == "500" { 0.1 } else { 1.0 };
                        if inst == "i1" && (i == 80 || i == 170) {
                            v = rnd(idx + i as u64) * 3.0;
                        }
                        pts.push((t, v));
                    }
                    g.push(
                        &[
                            ("__name__", "kk_requests_total"),
                            ("job", job),
                            ("instance", inst),
                            ("code", code),
                        ],
                        pts,
                    );
                }
            }
        }
        // Gauges.
        for (r, room) in ["r0", "r1", "r2", "r3"].iter().enumerate() {
            idx += 1;
            let offset = (r as i64) * 3_500;
            let pts = (0..(SPAN / STEP))
                .map(|i| {
                    let t = base + offset + i * STEP;
                    let v = 15.0
                        + 10.0 * ((i as f64) / 17.0 + r as f64).sin()
                        + (rnd(idx * 7_777 + i as u64) * 20.0).round() / 10.0;
                    (t, v)
                })
                .collect();
            g.push(
                &[("__name__", "kk_temperature_celsius"), ("room", room)],
                pts,
            );
        }
        // Up, one instance stops after 40 minutes; info metric.
        for job in ["api", "web"] {
            for inst in ["i0", "i1"] {
                idx += 1;
                let end = if job == "web" && inst == "i1" {
                    160
                } else {
                    SPAN / STEP
                };
                let pts = (0..end)
                    .map(|i| {
                        (
                            base + i * STEP,
                            if rnd(idx * 31 + i as u64) < 0.1 {
                                0.0
                            } else {
                                1.0
                            },
                        )
                    })
                    .collect();
                g.push(
                    &[("__name__", "kk_up"), ("job", job), ("instance", inst)],
                    pts,
                );
            }
            let pts = (0..(SPAN / STEP)).map(|i| (base + i * STEP, 1.0)).collect();
            let version = if job == "api" { "1.2.3" } else { "2.0.0" };
            g.push(
                &[("__name__", "kk_info"), ("job", job), ("version", version)],
                pts,
            );
        }
        // Irregular scrapes (gaps, so rate extrapolation takes its other branches) and NaNs.
        for inst in ["s0", "s1"] {
            idx += 1;
            let mut v = 100.0;
            let mut pts = Vec::new();
            let mut flaky = Vec::new();
            for i in 0..(SPAN / STEP) {
                let r = rnd(idx * 4_242 + i as u64);
                if r < 0.35 {
                    continue;
                }
                let t = base + i * STEP + (r * 4_000.0) as i64;
                v += (r * 50.0).floor();
                pts.push((t, v));
                flaky.push((t, if r > 0.9 { f64::NAN } else { r * 10.0 }));
            }
            g.push(&[("__name__", "kk_sparse_total"), ("instance", inst)], pts);
            g.push(&[("__name__", "kk_flaky"), ("instance", inst)], flaky);
        }
        // Classic histogram per job.
        let bounds = ["0.05", "0.1", "0.25", "0.5", "1", "+Inf"];
        for (j, job) in ["api", "web"].iter().enumerate() {
            let mut counts = [0.0f64; 6];
            let mut sum = 0.0;
            let mut series: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 8];
            for i in 0..(SPAN / STEP) {
                let t = base + 2_000 * j as i64 + i * STEP;
                let n = (rnd(j as u64 * 99_991 + i as u64) * 20.0).floor() as usize;
                for k in 0..n {
                    let x = rnd(i as u64 * 1_000 + k as u64 + j as u64 * 7) * 0.8;
                    sum += x;
                    for (b, bound) in bounds.iter().enumerate() {
                        let ub: f64 = if *bound == "+Inf" {
                            f64::INFINITY
                        } else {
                            bound.parse().unwrap()
                        };
                        if x <= ub {
                            counts[b] += 1.0;
                        }
                    }
                }
                for b in 0..6 {
                    series[b].push((t, counts[b]));
                }
                series[6].push((t, sum));
                series[7].push((t, counts[5]));
            }
            for (b, bound) in bounds.iter().enumerate() {
                g.push(
                    &[
                        ("__name__", "kk_latency_seconds_bucket"),
                        ("job", job),
                        ("le", bound),
                    ],
                    series[b].clone(),
                );
            }
            g.push(
                &[("__name__", "kk_latency_seconds_sum"), ("job", job)],
                series[6].clone(),
            );
            g.push(
                &[("__name__", "kk_latency_seconds_count"), ("job", job)],
                series[7].clone(),
            );
        }
        g
    }

    fn push(&mut self, l: &[(&str, &str)], pts: Vec<(i64, f64)>) {
        self.series.push((labels(l), pts));
    }

    /// OpenMetrics text, one family per metric name, series contiguous.
    pub fn openmetrics(&self) -> String {
        let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, (l, _)) in self.series.iter().enumerate() {
            let name = l
                .iter()
                .find(|(k, _)| k == "__name__")
                .map(|(_, v)| v.as_str())
                .unwrap();
            by_name.entry(name).or_default().push(i);
        }
        let mut out = String::new();
        for (name, idxs) in by_name {
            for i in idxs {
                let (l, pts) = &self.series[i];
                let lbl: Vec<String> = l
                    .iter()
                    .filter(|(k, _)| k != "__name__")
                    .map(|(k, v)| format!("{k}=\"{v}\""))
                    .collect();
                for (t, v) in pts {
                    writeln!(
                        out,
                        "{name}{{{}}} {v:?} {}.{:03}",
                        lbl.join(","),
                        t / 1000,
                        t % 1000
                    )
                    .unwrap();
                }
            }
        }
        out.push_str("# EOF\n");
        out
    }

    pub fn memory(&self) -> MemorySource {
        let mut m = MemorySource::new();
        for (l, pts) in &self.series {
            m.add(l.clone(), pts.clone());
        }
        m
    }

    pub fn secs(&self, offset_ms: i64) -> String {
        let t = self.base + offset_ms;
        format!("{}.{:03}", t / 1000, t % 1000)
    }
}
