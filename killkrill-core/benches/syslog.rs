//! Syslog parsing: killkrill against syslog_loose 0.23 on the same corpus of
//! realistic ~200-byte messages, in one run.
//!
//! Both sides produce structured fields with a parsed timestamp and then
//! read every field and every SD value back: syslog_loose builds its
//! `Message` (structured data in `Vec`s) and the reader walks those `Vec`s
//! (values as stored); killkrill builds its borrowed message with an SD
//! index and the reader walks elements and parameters (`value()`, which
//! unescapes only when needed), so neither side skips work the other does.
//! The `*_parse_only` functions leave the read-back out, on both sides.
//! Both get a fixed year and a fixed UTC zone. Run: `cargo bench --workspace --bench syslog`. After criterion's
//! groups it prints a paired best-of summary (see [`paired_summary`]).

use std::hint::black_box;
use std::time::Instant;

use chrono::FixedOffset;
use criterion::{Criterion, Throughput, criterion_group};
use killkrill_core::event::Timestamp;
use killkrill_core::syslog::{Clock, ParseOptions, SyslogMessage, SyslogParser};
use syslog_loose::{Message, ProcId, Variant, parse_message_with_year_tz};

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
        + m.procid.map_or(0, str::len)
        + m.msgid.map_or(0, str::len)
        + m.message.map_or(0, <[u8]>::len);
    for el in m.structured_data.elements() {
        n += el.id().len();
        for p in el.params() {
            n += p.name().len() + p.value().len();
        }
    }
    n + m.timestamp.map_or(0, |t| t.as_nanos() as usize & 1)
}

/// The same read of a syslog_loose message: every field, every SD value.
/// Its values are read as stored (escapes intact): its unescaping
/// iterator, `StructuredElement::params()`, allocates a `String` per value
/// and would make the baseline look slower than it need be.
fn consume_loose(m: &Message<&str>) -> usize {
    let mut n = m.hostname.map_or(0, str::len)
        + m.appname.map_or(0, str::len)
        + m.procid.as_ref().map_or(0, |p| match p {
            ProcId::PID(pid) => *pid as usize,
            ProcId::Name(name) => name.len(),
        })
        + m.msgid.map_or(0, str::len)
        + m.msg.len();
    for el in &m.structured_data {
        n += el.id.len();
        for (name, value) in &el.params {
            n += name.len() + value.len();
        }
    }
    n + m
        .timestamp
        .map_or(0, |t| t.timestamp_subsec_nanos() as usize & 1)
}

/// syslog_loose's parse, as the baseline calls it, and [`consume_loose`].
#[inline]
fn loose(msg: &str, utc: FixedOffset) -> usize {
    let m = parse_message_with_year_tz(msg, |_| 2026, Some(utc), Variant::Either);
    consume_loose(&m)
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
                    black_box(loose(black_box(msg.as_str()), utc));
                }
            })
        });
        g.bench_function("syslog_loose_parse_only", |b| {
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

/// Best (minimum) ns per message of `f` over one pass of `corpus`.
fn best_of(rounds: usize, corpus: &[String], mut f: impl FnMut(&str)) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        for msg in corpus {
            f(msg);
        }
        best = best.min(t.elapsed().as_nanos() as f64 / corpus.len() as f64);
    }
    best
}

/// The shared machine is noisy, and criterion measures the two parsers at
/// different moments. This summary interleaves them, round by round, and
/// keeps each one's best round, which is what the parser costs when it is
/// not interrupted.
#[allow(clippy::print_stdout)] // a benchmark report
fn paired_summary() {
    let now = Timestamp::parse_rfc3339("2026-11-26T00:00:00Z").expect("now");
    let parser = SyslogParser::new(ParseOptions::default().with_clock(Clock::Fixed(now)));
    let utc = FixedOffset::east_opt(0).expect("UTC");
    for (name, corpus) in [("rfc5424", rfc5424_corpus()), ("rfc3164", rfc3164_corpus())] {
        let (mut kk, mut sl) = (f64::MAX, f64::MAX);
        for _ in 0..300 {
            kk = kk.min(best_of(5, &corpus, |m| {
                black_box(consume(&parser.parse_lenient(black_box(m.as_bytes()))));
            }));
            sl = sl.min(best_of(5, &corpus, |m| {
                black_box(loose(black_box(m), utc));
            }));
        }
        println!(
            "paired best-of-1500 {name}: killkrill {kk:.0} ns/message, syslog_loose {sl:.0} ns/message, ratio {:.2}",
            sl / kk
        );
    }
}

criterion_group!(benches, bench);

/// `KK_SYSLOG_PROFILE=rfc5424|rfc3164|loose5424|loose3164`: parse that
/// corpus 1,000 times, reading every field back, and exit, for instruction
/// counts under `valgrind --tool=callgrind` (repeatable where timings are
/// not). `rfcparse5424`, `looseparse5424` (and `...3164`) parse without
/// reading back.
fn profile(which: &str) {
    let now = Timestamp::parse_rfc3339("2026-11-26T00:00:00Z").expect("now");
    let parser = SyslogParser::new(ParseOptions::default().with_clock(Clock::Fixed(now)));
    let utc = FixedOffset::east_opt(0).expect("UTC");
    let corpus = if which.ends_with("5424") {
        rfc5424_corpus()
    } else {
        rfc3164_corpus()
    };
    let baseline = which.starts_with("loose");
    let parse_only = which.ends_with("parse5424") || which.ends_with("parse3164");
    for _ in 0..1000 {
        for m in &corpus {
            if baseline && parse_only {
                black_box(parse_message_with_year_tz(
                    black_box(m.as_str()),
                    |_| 2026,
                    Some(utc),
                    Variant::Either,
                ));
            } else if baseline {
                black_box(loose(black_box(m.as_str()), utc));
            } else if parse_only {
                black_box(parser.parse_lenient(black_box(m.as_bytes())));
            } else {
                black_box(consume(&parser.parse_lenient(black_box(m.as_bytes()))));
            }
        }
    }
}

fn main() {
    if let Ok(which) = std::env::var("KK_SYSLOG_PROFILE") {
        profile(&which);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
    if std::env::args().any(|a| a == "--bench") {
        paired_summary();
    }
}
