//! Loki JSON push decoding must never panic, and every accepted entry is a record.
#![no_main]

use killkrill_core::loki::{Limits, LokiEncoding, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(records) = decode(data, LokiEncoding::Json, &Limits::default()) {
        assert!(records.iter().all(|r| r.message.is_some()));
    }
});
