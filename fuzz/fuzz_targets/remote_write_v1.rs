//! Remote write 1.0 decoding must never panic, and the zero-copy reader must agree
//! with prost's generated code on every input (differential): both accept with the
//! same result, or both reject. The input is tried as the protobuf message itself
//! and, snappy-compressed, through the whole decode; and as a raw body (the snappy
//! layer).
#![no_main]

use killkrill_core::remote_write::{
    Limits, RemoteWriteVersion, decode, decode_uncompressed, decode_v1_with_prost,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let v = RemoteWriteVersion::V1;
    let fast = decode_uncompressed(data, v, &limits);
    let reference = decode_v1_with_prost(data, &limits);
    match (&fast, &reference) {
        // Debug text, not ==: NaN values are equal in text but not as f64.
        (Ok(a), Ok(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}")),
        (Err(_), Err(_)) => {}
        _ => panic!("readers disagree: zero-copy {fast:?}, prost {reference:?}"),
    }
    if let Ok(b) = &fast {
        assert_eq!(b.report.samples + b.report.histogram_samples, b.samples.len() as u64);
    }
    if let Ok(body) = snap::raw::Encoder::new().compress_vec(data) {
        assert_eq!(decode(&body, v, &limits).is_ok(), fast.is_ok());
    }
    let _ = decode(data, v, &limits);
});
