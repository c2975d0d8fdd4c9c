//! Loki protobuf push decoding (and the label-syntax parser it feeds) must never
//! panic: the input is tried as the `logproto.PushRequest` (snappy-compressed here)
//! and as a raw body.
#![no_main]

use killkrill_core::loki::{Limits, LokiEncoding, decode, parse_labels};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(body) = snap::raw::Encoder::new().compress_vec(data) {
        let _ = decode(&body, LokiEncoding::Protobuf, &limits);
    }
    let _ = decode(data, LokiEncoding::Protobuf, &limits);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_labels(text);
    }
});
