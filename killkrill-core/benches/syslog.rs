//! Syslog parsing: killkrill against syslog_loose 0.23 on the same corpus of
//! realistic ~200-byte messages, in one run.
//!
//! Both sides produce structured fields with a parsed timestamp: syslog_loose
//! builds its `Message` (structured data in a `Vec`); killkrill parses and
//! then walks every SD element and parameter (unescaping values), so neither
//! side skips work the other does. Both get a fixed year and a fixed UTC
//! zone. Run: `cargo bench --workspace --bench syslog`.

use std::hint::black_box;

use chrono::FixedOffset;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use killkrill_core::event::Timestamp;
use killkrill_core::syslog::{Clock, ParseOptions, SyslogMessage, SyslogParser};
use syslog_loose::{Variant, parse_message_with_year_tz};

const HOSTS: [&str; 4] = [
    "web-042.prod.example.com",
    "db-7.eu-west-1.internal",
    "lb01",
    "10.0.3.17",
];
const APPS: [&str; 4] = ["nginx", "postgres", "haproxy", "sshd"];

/// RFC 5424 messages with two SD elements, ~200 bytes each.
fn rfc5424_corpus() -> Vec<String> {
    (0..64)
        .map(|i| {
            format!(
                "<{pri}>1 2026-11-25T17:{m:02}:{s:02}.{us:06}Z {host} {app} {pid} ACCESS [req@32473 id=\"{i:08x}\" path=\"/api/v1/items/{i}\" status=\"{st}\"][origin ip=\"10.0.{a}.{b}\"] GET /api/v1/items?page={i} took {ms}ms bytes={by}",
                pri = 128 + i % 64,
                m = i % 60,
                s = (i * 7) % 60,
                us = i * 15_511,
                host = HOSTS[i % 4],
                app = APPS[i % 4],
                pid = 1000 + i * 37,
                st = [200, 404, 500, 302][i % 4],
                a = i % 256,
                b = (i * 3) % 256,
                ms = i * 3 % 97,
                by = 1000 + i * 131,
            )
        })
        .collect()
}

/// RFC 3164 messages (`tag[pid]:` and plain tags), ~200 bytes each.
fn rfc3164_corpus() -> Vec<String> {
    (0..64)
        .map(|i| {
            format!(
                "<{pri}>Nov {d:>2} 17:{m:02}:{s:02} {host} {app}[{pid}]: Accepted publickey for deploy from 10.0.{a}.{b} port {port} ssh2: ED25519 SHA256:Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0{i:04x} session={i}",
                pri = 32 + i % 64,
                d = 1 + i % 28,
                m = i % 60,
                s = (i * 7) % 60,
                host = HOSTS[i % 4],
                app = APPS[i % 4],
                pid = 1000 + i * 37,
                a = i % 256,
                b = (i * 3) % 256,
                port = 40000 + i * 17,
            )
        })
        .collect()
}

/// What a consumer reads from a killkrill message: every field, every SD value.
fn consume(m: &SyslogMessage<'_>) -> usize {
    let mut n = m.hostname.map_or(0, str::len)
        + m.appname.map_or(0, str::len)
        + m.message.map_or(0, <[u8]>::len);
    for el in m.structured_data.elements() {
        n += el.id().len();
        for p in el.params() {
            n += p.name().len() + p.value().len();
        }
    }
    n + m.timestamp.map_or(0, |t| t.as_nanos() as usize & 1)
}

fn bench(c: &mut Criterion) {
    let now = Timestamp::parse_rfc3339("2026-11-26T00:00:00Z").expect("now");
    let parser = SyslogParser::new(ParseOptions::default().with_clock(Clock::Fixed(now)));
    let utc = FixedOffset::east_opt(0).expect("UTC");
    for (name, corpus) in [("rfc5424", rfc5424_corpus()), ("rfc3164", rfc3164_corpus())] {
        let avg = corpus.iter().map(String::len).sum::<usize>() / corpus.len();
        let mut g = c.benchmark_group(format!("syslog_parse/{name} (avg {avg} bytes)"));
        g.throughput(Throughput::Elements(corpus.len() as u64));
        g.bench_function("killkrill", |b| {
            b.iter(|| {
                for msg in &corpus {
                    let m = parser.parse_lenient(black_box(msg.as_bytes()));
                    black_box(consume(&m));
                }
            })
        });
        g.bench_function("killkrill_parse_only", |b| {
            b.iter(|| {
                for msg in &corpus {
                    black_box(parser.parse_lenient(black_box(msg.as_bytes())));
                }
            })
        });
        g.bench_function("syslog_loose", |b| {
            b.iter(|| {
                for msg in &corpus {
                    let m = parse_message_with_year_tz(
                        black_box(msg.as_str()),
                        |_| 2026,
                        Some(utc),
                        Variant::Either,
                    );
                    black_box(&m);
                }
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
