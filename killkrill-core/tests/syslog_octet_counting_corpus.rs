//! Every stream of `testdata/corpora/syslog/octet_counting.json` through the
//! framer in octet-counting mode, fed whole and one byte at a time.
//!
//! go-syslog's octet-counting parser stops at the first error in strict mode
//! and goes on in best-effort mode. Our framer always goes on (bad frames are
//! items), so each stream is checked against the best-effort list, and the
//! strict list is checked as the prefix up to its first error. Framing errors
//! map as: `unexpected_token` → [`BadFrameKind::BadLength`],
//! `msglen_exceeds_max` → `TooLong`, `truncated_frame` → `Truncated` (whose
//! kept bytes best-effort parsing reads, as go-syslog does). An empty stream
//! is zero frames for us, not an error: a connection that closes without
//! sending is not a bad frame.

mod corpus;

use bytes::BytesMut;
use killkrill_core::framing::{BadFrameKind, Frame, FramingConfig, FramingMode, SyslogFramer};
use killkrill_core::syslog::{Format, ParseOptions, SyslogParser};
use serde_json::Value;
use tokio_util::codec::Decoder;

fn frames(input: &[u8], max: usize, chunk: usize) -> Vec<Frame> {
    let mut framer = SyslogFramer::new(FramingConfig {
        max_frame_len: max,
        mode: FramingMode::OctetCounting,
    });
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        while let Some(f) = framer.decode(&mut buf).expect("no I/O") {
            out.push(f);
        }
    }
    while let Some(f) = framer.decode_eof(&mut buf).expect("no I/O") {
        out.push(f);
    }
    out
}

fn found(token: &str) -> Option<u8> {
    match token {
        "EOF" => None,
        "WS" => Some(b' '),
        t => Some(
            t.strip_prefix("ILLEGAL(")
                .and_then(|r| r.strip_suffix(')'))
                .expect("token")
                .as_bytes()[0],
        ),
    }
}

/// Checks one of our frames against one corpus frame; `strict` selects how a
/// truncated frame is compared.
fn check(f: &Frame, exp: &Value, strict: bool, ctx: &str, errs: &mut Vec<String>) {
    let p = SyslogParser::new(ParseOptions::default().with_format(Format::Rfc5424));
    let err = &exp["error"];
    match f {
        Frame::Message(bytes) => {
            if !err.is_null() && err["layer"] != "rfc5424" {
                errs.push(format!("{ctx}: got a message, want framing error {err}"));
                return;
            }
            match p.parse_strict(bytes) {
                Ok(m) if err.is_null() => corpus::check_full(&m, &exp["message"], ctx, errs),
                Ok(_) => errs.push(format!("{ctx}: parsed, want error {err}")),
                Err(e) if err.is_null() => {
                    errs.push(format!("{ctx}: rejected ({e}), want a message"))
                }
                Err(e) => {
                    if (e.kind().as_str(), e.column() as u64)
                        != (
                            err["kind"].as_str().unwrap_or(""),
                            err["column"].as_u64().unwrap_or(0),
                        )
                    {
                        errs.push(format!("{ctx}: {e}, want {err}"));
                    }
                    if !strict {
                        let lenient = p.parse_lenient(bytes);
                        corpus::check_header(&lenient, &exp["message"], true, ctx, errs);
                    }
                }
            }
        }
        Frame::Bad(bad) => match (bad.kind, err["kind"].as_str()) {
            (BadFrameKind::BadLength { found: got, .. }, Some("unexpected_token")) => {
                let want = found(err["found"].as_str().unwrap_or(""));
                if got != want {
                    errs.push(format!("{ctx}: found {got:?}, want {want:?}"));
                }
            }
            (BadFrameKind::TooLong { declared, max }, Some("msglen_exceeds_max")) => {
                if (declared, max as u64)
                    != (err["size"].as_u64(), err["max"].as_u64().unwrap_or(0))
                {
                    errs.push(format!("{ctx}: too long {declared:?}/{max}, want {err}"));
                }
            }
            (BadFrameKind::Truncated { declared, .. }, Some("truncated_frame")) if strict => {
                if Some(declared) != err["octets"].as_u64() {
                    errs.push(format!("{ctx}: truncated {declared}, want {err}"));
                }
            }
            (BadFrameKind::Truncated { .. }, _) if !strict => {
                // Best effort parses what arrived, as go-syslog does.
                let kept = bad.kept.clone().unwrap_or_default();
                check(&Frame::Message(kept), exp, false, ctx, errs);
            }
            (kind, _) => errs.push(format!("{ctx}: got {kind:?}, want {err}")),
        },
    }
}

#[test]
fn octet_counting_corpus() {
    let cases = corpus::load("octet_counting");
    assert_eq!(cases.len(), 17);
    let mut errs = Vec::new();
    let mut checked = 0;
    for case in &cases {
        let id = case["id"].as_str().expect("id");
        let input = case["input"].as_str().expect("input").as_bytes();
        let max = case["max_message_length"].as_u64().expect("max") as usize;
        let best = case["best_effort"].as_array().expect("best_effort");
        let strict = case["strict"].as_array().expect("strict");
        for chunk in [input.len(), 1, 7] {
            let got = frames(input, max, chunk);
            let ctx = format!("{id} (chunks of {chunk})");
            if input.is_empty() {
                assert!(got.is_empty(), "{ctx}: an empty stream has no frames");
                continue;
            }
            if got.len() != best.len() {
                errs.push(format!(
                    "{ctx}: {} frames, want {}: {got:?}",
                    got.len(),
                    best.len()
                ));
                continue;
            }
            for (i, (f, exp)) in got.iter().zip(best).enumerate() {
                check(f, exp, false, &format!("{ctx} frame {}", i + 1), &mut errs);
            }
            for (i, (f, exp)) in got.iter().zip(strict).enumerate() {
                check(
                    f,
                    exp,
                    true,
                    &format!("{ctx} strict frame {}", i + 1),
                    &mut errs,
                );
            }
            checked += 1;
        }
    }
    corpus::finish("octet_counting.json", checked, &errs);
}
