//! What the framer hands out: a message's bytes, or a report of a frame it
//! could not deliver, plus the counters behind both.

use std::fmt;

use bytes::Bytes;

/// One item from [`SyslogFramer`](super::SyslogFramer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The bytes of one message, without its length prefix or delimiter.
    Message(Bytes),
    /// A frame that could not be delivered whole; see [`BadFrame`].
    Bad(BadFrame),
}

/// A frame the framer could not deliver whole, and what it did about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFrame {
    /// What went wrong.
    pub kind: BadFrameKind,
    /// 1-based number of this frame on the stream (messages and bad frames
    /// are numbered together; empty frames are not numbered).
    pub frame: u64,
    /// Byte offset on the stream where the frame started.
    pub offset: u64,
    /// The bytes that could be kept (the start of a truncated last frame);
    /// `None` when the frame's bytes were discarded.
    pub kept: Option<Bytes>,
    /// The counters after this frame.
    pub stats: FramingStats,
}

/// Why a frame was bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadFrameKind {
    /// The frame is longer than the configured maximum. An octet-counted
    /// frame (`declared` is its MSG-LEN) is skipped by its length; a
    /// delimited frame is skipped up to the next delimiter.
    TooLong {
        /// The MSG-LEN of an octet-counted frame; `None` for a delimited frame.
        declared: Option<u64>,
        /// The configured maximum.
        max: usize,
    },
    /// Octet-counting only: the stream does not continue with
    /// `MSG-LEN SP`. The framer skips to the next LF or NUL.
    BadLength {
        /// What was found: a byte, or `None` for the end of the stream.
        found: Option<u8>,
        /// What was expected (`MSG-LEN` or `a space`).
        expected: &'static str,
    },
    /// The stream ended inside an octet-counted frame.
    Truncated {
        /// Its MSG-LEN.
        declared: u64,
        /// The bytes that arrived (in [`BadFrame::kept`]).
        received: usize,
    },
}

impl fmt::Display for BadFrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BadFrameKind::TooLong {
                declared: Some(n),
                max,
            } => write!(
                f,
                "octet count {n} exceeds the maximum frame size {max}; skipped {n} bytes"
            ),
            BadFrameKind::TooLong {
                declared: None,
                max,
            } => write!(
                f,
                "frame exceeds the maximum frame size {max} without a delimiter; skipped to the next LF or NUL"
            ),
            BadFrameKind::BadLength { found, expected } => {
                match found {
                    Some(c) if c.is_ascii_graphic() => write!(f, "found {:?}", c as char)?,
                    Some(b' ') => f.write_str("found a space")?,
                    Some(c) => write!(f, "found byte 0x{c:02x}")?,
                    None => f.write_str("found the end of the stream")?,
                }
                write!(
                    f,
                    " where {expected} was expected (octet counting); skipped to the next LF or NUL"
                )
            }
            BadFrameKind::Truncated { declared, received } => write!(
                f,
                "stream ended after {received} of the {declared} bytes of an octet-counted frame"
            ),
        }
    }
}

impl fmt::Display for BadFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad frame at byte {}: {}", self.offset, self.kind)
    }
}

/// Counters of one framer (one connection). The bytes of bad frames that
/// were not delivered are counted in `discarded_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FramingStats {
    /// Bytes consumed from the stream (messages, prefixes, delimiters and
    /// discarded bytes).
    pub bytes: u64,
    /// Messages delivered.
    pub messages: u64,
    /// Of those, octet-counted.
    pub octet_counted: u64,
    /// Of those, delimited by LF, CRLF or NUL.
    pub non_transparent: u64,
    /// Bad frames reported.
    pub bad_frames: u64,
    /// Bytes of bad frames that were skipped, not delivered.
    pub discarded_bytes: u64,
    /// Empty frames (a delimiter right after another) skipped.
    pub empty_frames: u64,
}
