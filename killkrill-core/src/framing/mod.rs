//! Framing: how a byte stream becomes syslog messages (RFC 6587), and how a
//! datagram does.
//!
//! Kept apart from [`crate::syslog`] on purpose: the framer knows nothing of
//! syslog fields, only where one message ends and the next begins, so the
//! same parser serves streams, datagrams and files, and a framing bug cannot
//! hide in a parser (or the other way round).
//!
//! - Streams (TCP, TLS, files, stdin): [`SyslogFramer`], a tokio-util
//!   [`Decoder`](tokio_util::codec::Decoder) that yields [`Frame`]s. Bad
//!   frames are items, not errors, so a stream keeps going after one and the
//!   caller decides how to report it; the `Error` type is only for I/O.
//! - Datagrams (UDP): one datagram is one message; [`datagram_message`]
//!   removes the trailing NUL/LF that some senders (Python's
//!   `SysLogHandler`) append.

mod decoder;
mod frame;

pub use decoder::{
    DEFAULT_MAX_FRAME_LEN, FramingConfig, FramingMode, MAX_LENGTH_DIGITS, SyslogFramer,
};
pub use frame::{BadFrame, BadFrameKind, Frame, FramingStats};

/// The message in one datagram: the payload without trailing NUL, CR or LF
/// bytes (Python's `SysLogHandler` appends a NUL, many others a newline).
pub fn datagram_message(datagram: &[u8]) -> &[u8] {
    let end = datagram
        .iter()
        .rposition(|&c| !matches!(c, 0 | b'\n' | b'\r'))
        .map_or(0, |i| i + 1);
    &datagram[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagram_trailers() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"<156>pyapp: msg\0", b"<156>pyapp: msg"),
            (b"<13>x\n", b"<13>x"),
            (b"<13>x\r\n\0", b"<13>x"),
            (b"<13>x", b"<13>x"),
            (b"\0\n", b""),
            (b"a\0b", b"a\0b"),
        ];
        for (input, want) in cases {
            assert_eq!(datagram_message(input), *want, "{input:?}");
        }
    }
}
