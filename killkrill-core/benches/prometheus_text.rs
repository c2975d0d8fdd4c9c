//! Prometheus text parsing of `alltypes.237mfs.prom.txt` (the file
//! Prometheus' own parser benchmarks use): killkrill against the
//! `prometheus-parse` crate 0.2.5 in the same run, with throughput in bytes.
//!
//! - `killkrill_borrowed`: the streaming parser, touching every sample's
//!   value and every label (name and value) — what a receiver that filters
//!   or hashes series does before deciding to keep them.
//! - `killkrill_owned`: the same parse, converted into owned event-model
//!   families (`MetricSample` with `String` labels) — comparable to what
//!   `prometheus-parse` returns.
//! - `prometheus_parse_0_2_5`: `Scrape::parse` over the lines (its API takes
//!   an iterator of owned lines).
//! - `memchr_lines`: only counting newlines, a floor for any line parser.
//!
//! The build machine is shared and its load changes during a run, which
//! skews criterion's back-to-back measurements. So before criterion runs,
//! `interleaved` times the three parsers alternately, many rounds, and
//! prints the minimum of each and their ratios: the minimum is the run
//! least disturbed by other processes, and alternating exposes all three to
//! the same load.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use killkrill_core::prometheus::{ParseOptions, Parser, parse_families};

fn input() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/corpora/prometheus/alltypes.237mfs.prom.txt"
    );
    std::fs::read_to_string(path).expect("the alltypes corpus file is readable")
}

fn borrowed(text: &str) -> (usize, f64) {
    let mut acc = 0usize;
    let mut sum = 0.0f64;
    for s in Parser::new(black_box(text), ParseOptions::text()) {
        let s = s.expect("the corpus parses");
        sum += s.value;
        for (name, value) in s.labels.iter() {
            acc += name.len() + value.len();
        }
    }
    (acc, sum)
}

fn baseline(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(black_box(text).lines().map(|l| Ok(l.to_owned())))
        .expect("the corpus parses")
}

fn time<T>(f: impl Fn() -> T) -> Duration {
    let start = Instant::now();
    black_box(f());
    start.elapsed()
}

#[allow(clippy::print_stdout)]
fn interleaved(text: &str) {
    let mut best = [Duration::MAX; 3];
    for _ in 0..300 {
        let t = [
            time(|| borrowed(text)),
            time(|| parse_families(black_box(text), ParseOptions::text())),
            time(|| baseline(text)),
        ];
        for (b, t) in best.iter_mut().zip(t) {
            *b = (*b).min(t);
        }
    }
    let mbs = |d: Duration| text.len() as f64 / d.as_secs_f64() / (1024.0 * 1024.0);
    let ratio = |d: Duration| best[2].as_secs_f64() / d.as_secs_f64();
    println!(
        "interleaved minimum of 300 rounds over {} bytes:\n  killkrill_borrowed {:?} ({:.0} MiB/s, {:.1}x)\n  killkrill_owned    {:?} ({:.0} MiB/s, {:.1}x)\n  prometheus_parse   {:?} ({:.0} MiB/s)",
        text.len(),
        best[0],
        mbs(best[0]),
        ratio(best[0]),
        best[1],
        mbs(best[1]),
        ratio(best[1]),
        best[2],
        mbs(best[2]),
    );
}

fn bench(c: &mut Criterion) {
    let text = input();
    // Only in a real benchmark run: not when the test runner runs each
    // benchmark once, nor under `--profile-time`.
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--profile-time") {
        interleaved(&text);
    }
    let mut g = c.benchmark_group("prometheus_text_alltypes_237mfs");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("killkrill_borrowed", |b| b.iter(|| borrowed(&text)));
    g.bench_function("killkrill_owned", |b| {
        b.iter(|| {
            parse_families(black_box(&text), ParseOptions::text()).expect("the corpus parses")
        })
    });
    g.bench_function("prometheus_parse_0_2_5", |b| b.iter(|| baseline(&text)));
    g.bench_function("memchr_lines", |b| {
        b.iter(|| memchr::memchr_iter(b'\n', black_box(text.as_bytes())).count())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
