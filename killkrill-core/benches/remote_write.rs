//! Remote write 1.0 decoding throughput in samples/s, on a request shaped like the
//! ones Prometheus sends: 2,000 series with 8 labels each (`__name__` plus job,
//! instance, namespace, pod, container, method, code), 3 samples per series.
//!
//! The stages are measured in the same run so the cost of each is visible:
//! `snappy` (decompression only), `snappy+prost` (plus protobuf decoding into the
//! generated structs) and `decode` (the whole thing, into `MetricSample`s).
//!
//! Run: `cargo bench --workspace --bench remote_write`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use killkrill_core::remote_write::{Limits, RemoteWriteVersion, decode};
use killkrill_proto::prometheus as pb;
use prost::Message;

const SERIES: usize = 2_000;
const SAMPLES_PER_SERIES: usize = 3;

fn request() -> pb::WriteRequest {
    let methods = ["GET", "POST", "PUT", "DELETE"];
    let codes = ["200", "201", "404", "500", "503"];
    let timeseries = (0..SERIES)
        .map(|i| {
            let labels = [
                ("__name__", format!("http_server_requests_{}_total", i % 50)),
                ("code", codes[i % codes.len()].to_owned()),
                ("container", format!("app-{}", i % 7)),
                ("instance", format!("10.1.{}.{}:9090", i / 250, i % 250)),
                ("job", "kubernetes-pods".to_owned()),
                ("method", methods[i % methods.len()].to_owned()),
                ("namespace", format!("team-{}", i % 12)),
                ("pod", format!("app-{}-7d9f8b6c5-{:05x}", i % 7, i * 7919)),
            ];
            pb::TimeSeries {
                labels: labels
                    .into_iter()
                    .map(|(name, value)| pb::Label {
                        name: name.to_owned(),
                        value,
                    })
                    .collect(),
                samples: (0..SAMPLES_PER_SERIES)
                    .map(|k| pb::Sample {
                        value: (i * 31 + k) as f64 * 1.5,
                        timestamp: 1_764_090_756_000 + (k as i64) * 15_000,
                    })
                    .collect(),
                ..Default::default()
            }
        })
        .collect();
    pb::WriteRequest {
        timeseries,
        metadata: vec![],
    }
}

#[allow(clippy::print_stderr)] // the bench binary reports its input size
fn bench(c: &mut Criterion) {
    let raw = request().encode_to_vec();
    let body = snap::raw::Encoder::new()
        .compress_vec(&raw)
        .expect("compressible");
    let limits = Limits::default();
    let samples = (SERIES * SAMPLES_PER_SERIES) as u64;
    let mut g = c.benchmark_group("remote_write_v1");
    g.throughput(Throughput::Elements(samples));
    g.bench_function("snappy", |b| {
        b.iter(|| {
            snap::raw::Decoder::new()
                .decompress_vec(black_box(&body))
                .expect("valid")
        })
    });
    g.bench_function("snappy+prost", |b| {
        b.iter(|| {
            let raw = snap::raw::Decoder::new()
                .decompress_vec(black_box(&body))
                .expect("valid");
            pb::WriteRequest::decode(raw.as_slice()).expect("valid")
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            let batch = decode(black_box(&body), RemoteWriteVersion::V1, &limits).expect("valid");
            assert_eq!(batch.samples.len() as u64, samples);
            batch
        })
    });
    g.finish();
    eprintln!(
        "request: {SERIES} series x {SAMPLES_PER_SERIES} samples, {} bytes protobuf, {} bytes snappy",
        raw.len(),
        body.len()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
