//! The RFC 6587 framer on arbitrary bytes in arbitrary chunks and modes: no
//! panic, frames within the limit, and every byte accounted for.
#![no_main]

use bytes::BytesMut;
use killkrill_core::framing::{Frame, FramingConfig, FramingMode, SyslogFramer};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, data)) = data.split_first() else {
        return;
    };
    let mode = [
        FramingMode::Auto,
        FramingMode::OctetCounting,
        FramingMode::NonTransparent,
    ][usize::from(ctl % 3)];
    let max = 1 + usize::from(ctl / 3) % 64;
    let chunk = 1 + usize::from(ctl) % 17;
    let mut framer = SyslogFramer::new(FramingConfig {
        max_frame_len: max,
        mode,
    });
    let mut buf = BytesMut::new();
    let mut messages = 0u64;
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Some(f) = framer.decode(&mut buf).expect("no I/O") {
            if let Frame::Message(m) = f {
                assert!(m.len() <= max);
                messages += 1;
            }
        }
    }
    while let Some(f) = framer.decode_eof(&mut buf).expect("no I/O") {
        if let Frame::Message(m) = f {
            assert!(m.len() <= max);
            messages += 1;
        }
    }
    assert!(buf.is_empty());
    assert_eq!(framer.stats().bytes, data.len() as u64);
    assert_eq!(framer.stats().messages, messages);
});
