//! BatchCodec::decode on arbitrary bytes: never panics, never allocates
//! without bound, and whatever it accepts re-encodes to bytes that decode to
//! the same batch (byte-identical re-encoding, which also covers NaN bits).
//!
//! The first input byte picks a framing so the fuzzer reaches the body
//! quickly: raw bytes, or a valid header (format version 1 or 2, plain or
//! zstd) + body.
#![no_main]

use killkrill_core::pipeline::{BatchCodec, Compression};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut input = Vec::with_capacity(rest.len() + 21);
    match mode % 5 {
        0 => input.extend_from_slice(rest),
        m => {
            input.extend_from_slice(b"KKB");
            input.push(if m <= 2 { 1 } else { 2 });
            input.push(if m % 2 == 1 { 0 } else { 1 });
            input.extend_from_slice(&[0x42; 16]);
            input.extend_from_slice(rest);
        }
    }
    let codec = BatchCodec::new().with_max_decoded_bytes(1 << 20);
    if let Ok(batch) = codec.decode(&input) {
        let plain = BatchCodec::new();
        let once = plain.encode_to_vec(&batch).expect("plain encoding cannot fail");
        let again = plain.decode(&once).expect("an encoded batch decodes");
        assert_eq!(plain.encode_to_vec(&again).expect("encode"), once);
        let packed = BatchCodec::new()
            .with_compression(Compression::Zstd(1))
            .encode_to_vec(&batch)
            .expect("zstd encode");
        let unpacked = plain.decode(&packed).expect("zstd batch decodes");
        assert_eq!(plain.encode_to_vec(&unpacked).expect("encode"), once);
    }
});
