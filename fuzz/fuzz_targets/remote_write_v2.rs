//! Remote write 2.0 decoding must never panic: the input is tried as the
//! protobuf message itself (snappy-compressed here, so the fuzzer explores the
//! message rather than the compression) and as a raw body (the snappy layer).
#![no_main]

use killkrill_core::remote_write::{Limits, RemoteWriteVersion, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let v = RemoteWriteVersion::V2;
    if let Ok(body) = snap::raw::Encoder::new().compress_vec(data) {
        if let Ok(b) = decode(&body, v, &limits) {
            assert_eq!(
                b.report.samples + b.report.histogram_samples,
                b.samples.len() as u64
            );
        }
    }
    let _ = decode(data, v, &limits);
});
