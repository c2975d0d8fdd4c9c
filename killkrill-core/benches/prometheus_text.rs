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

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use killkrill_core::prometheus::{ParseOptions, Parser, parse_families};

fn input() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/corpora/prometheus/alltypes.237mfs.prom.txt"
    );
    std::fs::read_to_string(path).expect("the alltypes corpus file is readable")
}

fn bench(c: &mut Criterion) {
    let text = input();
    let mut g = c.benchmark_group("prometheus_text_alltypes_237mfs");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("killkrill_borrowed", |b| {
        b.iter(|| {
            let mut acc = 0usize;
            let mut sum = 0.0f64;
            for s in Parser::new(black_box(&text), ParseOptions::text()) {
                let s = s.expect("the corpus parses");
                sum += s.value;
                for (name, value) in s.labels.iter() {
                    acc += name.len() + value.len();
                }
            }
            (acc, sum)
        })
    });
    g.bench_function("killkrill_owned", |b| {
        b.iter(|| {
            parse_families(black_box(&text), ParseOptions::text()).expect("the corpus parses")
        })
    });
    g.bench_function("prometheus_parse_0_2_5", |b| {
        b.iter(|| {
            prometheus_parse::Scrape::parse(black_box(&text).lines().map(|l| Ok(l.to_owned())))
                .expect("the corpus parses")
        })
    });
    g.bench_function("memchr_lines", |b| {
        b.iter(|| memchr::memchr_iter(b'\n', black_box(text.as_bytes())).count())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
