//! Block encode/decode against a baseline measured in the same run: the same
//! 4,096 records as canonical JSON lines compressed with the same zstd level
//! (what a naive "compressed rows" store would do).
//!
//! `cargo bench --workspace --bench logblock`
#![allow(clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use killkrill_core::event::{EventIdGenerator, FieldValue, LogRecord, Severity, Tenant, Timestamp};
use killkrill_core::logblock::{BlockOptions, DecodedBlock, build_blocks};

fn records(n: usize) -> Vec<LogRecord> {
    let t = Tenant::new("bench").unwrap();
    let ids = EventIdGenerator::with_prefix(1);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| {
            let ts = Timestamp::from_nanos(1_764_000_000_000_000_000 + i as i64 * 8_640_000);
            let r = next();
            LogRecord {
                id: Some(ids.next(ts)),
                tenant: Some(t.clone()),
                timestamp: ts,
                severity: Severity::from_code((r % 8) as u8),
                host: Some(format!("web{:02}", r % 20)),
                app: Some(["nginx", "api", "worker", "auth"][(r >> 8) as usize % 4].into()),
                procid: Some(((r >> 16) % 30_000).to_string()),
                message: Some(
                    format!(
                        "GET /api/v1/users/{} status={} bytes={} duration={}ms request_id={:016x} upstream connection closed after {} attempts ok ok ok ok ok ok ok ok ok",
                        r % 100_000,
                        [200, 404, 500][(r >> 20) as usize % 3],
                        (r >> 24) % 100_000,
                        (r >> 40) % 5_000,
                        next(),
                        r % 5
                    )
                    .into_bytes(),
                ),
                source: Some("syslog-tcp".into()),
                attributes: vec![("pid".into(), FieldValue::Int((r % 30_000) as i64))],
                ..LogRecord::default()
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let recs = records(4096);
    let opts = BlockOptions {
        threads: 1,
        ..BlockOptions::default()
    };
    let mut g = c.benchmark_group("logblock_4096");
    g.throughput(Throughput::Elements(recs.len() as u64));
    g.bench_function("encode_block", |b| {
        b.iter_batched(
            || recs.clone(),
            |r| build_blocks(r, &opts).unwrap(),
            criterion::BatchSize::LargeInput,
        )
    });
    g.bench_function("baseline_json_lines_zstd_encode", |b| {
        b.iter_batched(
            || recs.clone(),
            |r| {
                let mut out = Vec::with_capacity(r.len() * 400);
                for rec in &r {
                    rec.write_json(&mut out).unwrap();
                    out.push(b'\n');
                }
                zstd::bulk::compress(&out, 1).unwrap()
            },
            criterion::BatchSize::LargeInput,
        )
    });
    let block = build_blocks(recs.clone(), &opts).unwrap().remove(0);
    let tenant = Tenant::new("bench").unwrap();
    g.bench_function("decode_block_all_records", |b| {
        b.iter(|| {
            DecodedBlock::decode(&tenant, &block.payload)
                .unwrap()
                .records()
                .unwrap()
        })
    });
    let mut lines = Vec::new();
    for rec in &recs {
        rec.write_json(&mut lines).unwrap();
        lines.push(b'\n');
    }
    let json = zstd::bulk::compress(&lines, 1).unwrap();
    g.bench_function("baseline_json_lines_zstd_decode", |b| {
        b.iter(|| {
            let raw = zstd::bulk::decompress(&json, lines.len()).unwrap();
            raw.split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice::<LogRecord>(l).unwrap())
                .collect::<Vec<_>>()
        })
    });
    g.finish();
    eprintln_sizes(block.payload.len(), json.len(), recs.len());
}

#[allow(clippy::print_stderr)]
fn eprintln_sizes(block: usize, json: usize, n: usize) {
    eprintln!(
        "payload bytes/record: block {:.1}, baseline json+zstd {:.1}",
        block as f64 / n as f64,
        json as f64 / n as f64
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
