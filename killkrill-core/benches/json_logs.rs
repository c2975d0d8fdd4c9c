//! NDJSON logs per second: Killkrill's JSON logs parser (bytes → finished
//! `LogRecord`s, with aliases, flattening and timestamps) against a plain
//! `serde_json::from_str::<serde_json::Value>` of the same lines, measured
//! in the same run. The baseline does less work — it builds a generic tree
//! and interprets nothing — so it is the bar to beat, not a like-for-like.
//!
//! Lines are realistic application logs: about a dozen fields, one nested
//! object, an RFC 3339 timestamp, 200-300 bytes each.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target cargo bench --workspace --bench json_logs
//! ```

// A bench is a program: it says on stderr what input it measures.
#![allow(clippy::print_stderr)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use killkrill_core::event::{LogRecord, Timestamp};
use killkrill_core::json_logs::{JsonLogLimits, JsonLogParser, Mode};

const LINES: usize = 10_000;

/// A deterministic pseudo-random sequence (64-bit LCG), so every run parses
/// the same bytes.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn lines() -> Vec<String> {
    const LEVELS: [&str; 4] = ["info", "info", "warn", "error"];
    const METHODS: [&str; 3] = ["GET", "POST", "PUT"];
    const PATHS: [&str; 4] = [
        "/api/v1/orders",
        "/api/v1/users",
        "/healthz",
        "/api/v1/cart/items",
    ];
    const SERVICES: [&str; 3] = ["orders-api", "user-svc", "checkout"];
    const MSGS: [&str; 4] = [
        "request completed",
        "upstream responded slowly",
        "cache miss, fetching from origin",
        "payment provider returned an error",
    ];
    let mut rng = Lcg(0x5eed);
    let base = Timestamp::parse_rfc3339("2026-11-25T17:12:36Z")
        .expect("valid timestamp")
        .as_nanos();
    (0..LINES)
        .map(|i| {
            let ts = Timestamp::from_nanos(base + i as i64 * 1_234_567 + rng.next(1_000_000) as i64);
            format!(
                concat!(
                    r#"{{"ts":"{ts}","level":"{level}","msg":"{msg}","service":"{svc}","host":"web-{host}","#,
                    r#""pid":{pid},"trace_id":"{trace:016x}{trace2:016x}","#,
                    r#""http":{{"method":"{method}","path":"{path}/{id}","status":{status},"duration_ms":{dur}.{durf}}},"#,
                    r#""user_id":{user},"cached":{cached}}}"#
                ),
                ts = ts.to_rfc3339(),
                level = LEVELS[rng.next(4) as usize],
                msg = MSGS[rng.next(4) as usize],
                svc = SERVICES[rng.next(3) as usize],
                host = rng.next(16),
                pid = 1000 + rng.next(30000),
                trace = rng.next(u64::MAX),
                trace2 = rng.next(u64::MAX),
                method = METHODS[rng.next(3) as usize],
                path = PATHS[rng.next(4) as usize],
                id = rng.next(100_000),
                status = [200, 200, 201, 404, 500][rng.next(5) as usize],
                dur = rng.next(900),
                durf = rng.next(10),
                user = rng.next(1_000_000),
                cached = rng.next(2) == 1,
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let lines = lines();
    let ndjson = lines.join("\n");
    let array = format!("[{}]", lines.join(","));
    let avg = ndjson.len() / LINES;
    eprintln!(
        "{LINES} lines, {} bytes, {avg} bytes per line on average",
        ndjson.len()
    );
    eprintln!("sample: {}", lines[0]);

    let parser = JsonLogParser::new(JsonLogLimits::DEFAULT, Mode::Strict);
    let received = Timestamp::from_nanos(0);

    // The records must be right before they are timed.
    let mut out: Vec<LogRecord> = Vec::with_capacity(LINES);
    let report = parser
        .parse_body(ndjson.as_bytes(), received, &mut out)
        .expect("bench lines parse");
    assert_eq!(report.records, LINES);
    assert_eq!(out[0].attributes.len(), 7, "{:?}", out[0].attributes);

    // `cargo bench` passes `--bench`; `cargo test --benches` (and nextest)
    // only check that each benchmark runs once, so skip the long pairing.
    if std::env::args().any(|a| a == "--bench") {
        paired(&parser, &ndjson);
    }

    let mut group = c.benchmark_group("json_logs_ndjson");
    group.throughput(Throughput::Elements(LINES as u64));
    group.sample_size(30);

    group.bench_function("killkrill_ndjson_body", |b| {
        let mut out: Vec<LogRecord> = Vec::with_capacity(LINES);
        b.iter(|| {
            out.clear();
            let report = parser
                .parse_body(black_box(ndjson.as_bytes()), received, &mut out)
                .expect("parses");
            black_box(report.records)
        })
    });

    group.bench_function("killkrill_line_parser", |b| {
        let mut out: Vec<LogRecord> = Vec::with_capacity(LINES);
        b.iter(|| {
            out.clear();
            let mut lp = parser.line_parser();
            for (i, line) in lines.iter().enumerate() {
                if let Some(p) = lp
                    .parse_line(black_box(line.as_bytes()), i as u64 + 1, received)
                    .expect("parses")
                {
                    out.push(p.record);
                }
            }
            black_box(out.len())
        })
    });

    group.bench_function("killkrill_array_body", |b| {
        let mut out: Vec<LogRecord> = Vec::with_capacity(LINES);
        b.iter(|| {
            out.clear();
            let report = parser
                .parse_body(black_box(array.as_bytes()), received, &mut out)
                .expect("parses");
            black_box(report.records)
        })
    });

    group.bench_function("baseline_serde_json_value", |b| {
        let mut out: Vec<serde_json::Value> = Vec::with_capacity(LINES);
        b.iter(|| {
            out.clear();
            for line in black_box(ndjson.as_str()).split('\n') {
                out.push(serde_json::from_str::<serde_json::Value>(line).expect("parses"));
            }
            black_box(out.len())
        })
    });

    group.finish();
}

/// The machine is shared: a neighbour's build can slow one criterion
/// benchmark and not the next. So the two contenders are also timed in
/// alternation, round after round, and the medians compared: load that
/// drifts over the run hits both alike.
fn paired(parser: &JsonLogParser, ndjson: &str) {
    const ROUNDS: usize = 25;
    let received = Timestamp::from_nanos(0);
    let mut ours = Vec::with_capacity(ROUNDS);
    let mut base = Vec::with_capacity(ROUNDS);
    let mut records: Vec<LogRecord> = Vec::with_capacity(LINES);
    let mut values: Vec<serde_json::Value> = Vec::with_capacity(LINES);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        records.clear();
        parser
            .parse_body(black_box(ndjson.as_bytes()), received, &mut records)
            .expect("parses");
        black_box(&records);
        ours.push(t.elapsed());

        let t = Instant::now();
        values.clear();
        for line in black_box(ndjson).split('\n') {
            values.push(serde_json::from_str::<serde_json::Value>(line).expect("parses"));
        }
        black_box(&values);
        base.push(t.elapsed());
    }
    ours.sort();
    base.sort();
    let (o, b) = (ours[ROUNDS / 2], base[ROUNDS / 2]);
    let per_sec = |d: Duration| LINES as f64 / d.as_secs_f64();
    eprintln!(
        "paired medians over {ROUNDS} alternating rounds: killkrill {:.0} lines/s, \
         serde_json::Value {:.0} lines/s, killkrill/baseline = {:.2}x",
        per_sec(o),
        per_sec(b),
        b.as_secs_f64() / o.as_secs_f64()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
