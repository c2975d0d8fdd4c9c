//! The RFC 6587 framer as a tokio-util [`Decoder`].
//!
//! A frame is either octet-counted (`MSG-LEN SP MSG`) or delimited by LF,
//! CRLF or NUL; in [`FramingMode::Auto`] each frame decides for itself, so one
//! connection may mix them (as relays that forward from several senders do).
//! A frame that starts with `[1-9][0-9]* SP <` is octet-counted; anything
//! else is delimited. Requiring the `<` of a PRI after the length keeps a
//! PRI-less line that happens to start with a number (`200 OK ...`) from
//! being read as a length.
//!
//! Memory is bounded by the maximum frame size: an octet-counted frame is
//! buffered (with one `reserve` for its announced size) only when it fits,
//! the length prefix has at most 10 digits, and a delimited frame is searched
//! for its delimiter only up to the maximum.
//!
//! Recovery is defined and reported, never silent: every bad frame is an
//! item ([`Frame::Bad`]) with what happened and the counters, then
//! - an octet-counted frame over the maximum is skipped by its length,
//!   without buffering it, and framing resumes right after it;
//! - a delimited frame over the maximum is skipped up to the next LF or NUL;
//! - in [`FramingMode::OctetCounting`], a missing or malformed length makes
//!   the framer skip to the next LF or NUL (the only resynchronisation point
//!   a bare octet-counted stream has);
//! - at the end of the stream, a last delimited frame without its delimiter
//!   is delivered; a truncated octet-counted frame is reported with the bytes
//!   that arrived.

use bytes::{Buf, BytesMut};
use memchr::memchr2;
use tokio_util::codec::Decoder;

use super::frame::{BadFrame, BadFrameKind, Frame, FramingStats};

/// Most digits accepted in an octet-counting MSG-LEN.
pub const MAX_LENGTH_DIGITS: usize = 10;

/// Default maximum frame size (64 KiB, the largest frame most senders write).
pub const DEFAULT_MAX_FRAME_LEN: usize = 64 * 1024;

/// Which framings to accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FramingMode {
    /// Octet counting or LF/CRLF/NUL delimiters, decided per frame.
    #[default]
    Auto,
    /// Only octet counting (RFC 6587 §3.4.1, RFC 5425).
    OctetCounting,
    /// Only LF/CRLF/NUL delimiters (RFC 6587 §3.4.2).
    NonTransparent,
}

/// Framer configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramingConfig {
    /// Largest frame delivered, in bytes (without prefix or delimiter).
    pub max_frame_len: usize,
    /// Which framings to accept.
    pub mode: FramingMode,
}

impl Default for FramingConfig {
    fn default() -> Self {
        FramingConfig {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            mode: FramingMode::Auto,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At a frame boundary.
    Start,
    /// An octet-counted frame whose `header` bytes are still in the buffer.
    Octet { header: usize, len: usize },
    /// A delimited frame; the first `scanned` bytes have no delimiter.
    Delimited { scanned: usize },
    /// Skipping an oversized octet-counted frame.
    SkipBytes { remaining: u64 },
    /// Skipping to the next LF or NUL.
    SkipToDelimiter,
}

enum Header {
    Octet {
        len: u64,
        header: usize,
    },
    NeedMore,
    NotOctet,
    Bad {
        found: Option<u8>,
        expected: &'static str,
    },
}

/// RFC 6587 framer for one stream (one TCP/TLS connection or one file).
///
/// ```
/// use bytes::BytesMut;
/// use killkrill_core::framing::{Frame, SyslogFramer};
/// use tokio_util::codec::Decoder;
///
/// let mut framer = SyslogFramer::default();
/// let mut buf = BytesMut::from(&b"16 <1>1 - - - - - -<2>1 - - - - - -\n<3>"[..]);
/// let mut frames = Vec::new();
/// while let Some(f) = framer.decode_eof(&mut buf).expect("no I/O here") {
///     frames.push(f);
/// }
/// assert_eq!(frames.len(), 3);
/// assert_eq!(frames[2], Frame::Message("<3>".into()));
/// assert_eq!(framer.stats().octet_counted, 1);
/// ```
#[derive(Debug, Clone)]
pub struct SyslogFramer {
    config: FramingConfig,
    state: State,
    stats: FramingStats,
    frames: u64,
    frame_start: u64,
}

impl Default for SyslogFramer {
    fn default() -> Self {
        SyslogFramer::new(FramingConfig::default())
    }
}

impl SyslogFramer {
    /// A framer with this configuration.
    pub fn new(config: FramingConfig) -> Self {
        SyslogFramer {
            config,
            state: State::Start,
            stats: FramingStats::default(),
            frames: 0,
            frame_start: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &FramingConfig {
        &self.config
    }

    /// The counters so far.
    pub fn stats(&self) -> FramingStats {
        self.stats
    }

    fn consume(&mut self, src: &mut BytesMut, n: usize) {
        src.advance(n);
        self.stats.bytes += n as u64;
    }

    fn discard(&mut self, src: &mut BytesMut, n: usize) {
        self.consume(src, n);
        self.stats.discarded_bytes += n as u64;
    }

    fn bad(&mut self, kind: BadFrameKind, kept: Option<bytes::Bytes>) -> Frame {
        self.frames += 1;
        self.stats.bad_frames += 1;
        Frame::Bad(BadFrame {
            kind,
            frame: self.frames,
            offset: self.frame_start,
            kept,
            stats: self.stats,
        })
    }

    fn message(&mut self, frame: bytes::Bytes, octet: bool) -> Frame {
        self.frames += 1;
        self.stats.messages += 1;
        if octet {
            self.stats.octet_counted += 1;
        } else {
            self.stats.non_transparent += 1;
        }
        Frame::Message(frame)
    }

    fn header(src: &[u8], auto: bool) -> Header {
        let not = |found: Option<u8>, expected| {
            if auto {
                Header::NotOctet
            } else {
                Header::Bad { found, expected }
            }
        };
        if !matches!(src.first(), Some(b'1'..=b'9')) {
            return not(src.first().copied(), "MSG-LEN");
        }
        let mut len = 0u64;
        let mut i = 0;
        while let Some(c @ b'0'..=b'9') = src.get(i) {
            if i == MAX_LENGTH_DIGITS {
                return not(Some(*c), "a space after at most 10 MSG-LEN digits");
            }
            len = len * 10 + u64::from(c - b'0');
            i += 1;
        }
        match src.get(i) {
            None => return Header::NeedMore,
            Some(b' ') => {}
            Some(&c) => return not(Some(c), "a space after MSG-LEN"),
        }
        if auto {
            match src.get(i + 1) {
                None => return Header::NeedMore,
                Some(b'<') => {}
                Some(_) => return Header::NotOctet,
            }
        }
        Header::Octet { len, header: i + 1 }
    }

    /// Strips a trailing CR from a frame cut at LF.
    fn cut(&mut self, src: &mut BytesMut, at: usize) -> BytesMut {
        let mut frame = src.split_to(at);
        let delim = src.first().copied();
        self.consume(src, 1);
        self.stats.bytes += at as u64;
        if delim == Some(b'\n') && frame.last() == Some(&b'\r') {
            frame.truncate(frame.len() - 1);
        }
        frame
    }
}

impl Decoder for SyslogFramer {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, Self::Error> {
        let max = self.config.max_frame_len;
        loop {
            match self.state {
                State::SkipBytes { remaining } => {
                    let n = remaining.min(src.len() as u64);
                    // n <= src.len(), so it fits in usize.
                    self.discard(src, n as usize);
                    if remaining > n {
                        self.state = State::SkipBytes {
                            remaining: remaining - n,
                        };
                        return Ok(None);
                    }
                    self.state = State::Start;
                }
                State::SkipToDelimiter => match memchr2(b'\n', 0, src) {
                    Some(i) => {
                        self.discard(src, i);
                        self.consume(src, 1);
                        self.state = State::Start;
                    }
                    None => {
                        let n = src.len();
                        self.discard(src, n);
                        return Ok(None);
                    }
                },
                State::Start => {
                    let Some(&first) = src.first() else {
                        return Ok(None);
                    };
                    if first == b'\n' || first == 0 {
                        self.consume(src, 1);
                        self.stats.empty_frames += 1;
                        continue;
                    }
                    if first == b'\r' && src.get(1) == Some(&b'\n') {
                        self.consume(src, 2);
                        self.stats.empty_frames += 1;
                        continue;
                    }
                    self.frame_start = self.stats.bytes;
                    let header = match self.config.mode {
                        FramingMode::NonTransparent => Header::NotOctet,
                        FramingMode::Auto => Self::header(src, true),
                        FramingMode::OctetCounting => Self::header(src, false),
                    };
                    match header {
                        Header::NeedMore => return Ok(None),
                        Header::NotOctet => self.state = State::Delimited { scanned: 0 },
                        Header::Bad { found, expected } => {
                            self.state = State::SkipToDelimiter;
                            return Ok(Some(
                                self.bad(BadFrameKind::BadLength { found, expected }, None),
                            ));
                        }
                        Header::Octet { len, header } => {
                            if len > max as u64 {
                                self.discard(src, header);
                                self.state = State::SkipBytes { remaining: len };
                                let kind = BadFrameKind::TooLong {
                                    declared: Some(len),
                                    max,
                                };
                                return Ok(Some(self.bad(kind, None)));
                            }
                            // len <= max, so it fits in usize.
                            self.state = State::Octet {
                                header,
                                len: len as usize,
                            };
                        }
                    }
                }
                State::Octet { header, len } => {
                    let need = header + len;
                    if src.len() < need {
                        src.reserve(need - src.len());
                        return Ok(None);
                    }
                    self.consume(src, header);
                    let frame = src.split_to(len).freeze();
                    self.stats.bytes += len as u64;
                    self.state = State::Start;
                    return Ok(Some(self.message(frame, true)));
                }
                State::Delimited { scanned } => {
                    // A frame of `max` bytes may be followed by CR and LF.
                    let limit = src.len().min(max + 2);
                    match memchr2(b'\n', 0, &src[scanned..limit]) {
                        Some(k) => {
                            let frame = self.cut(src, scanned + k);
                            self.state = State::Start;
                            if frame.is_empty() {
                                self.stats.empty_frames += 1;
                                continue;
                            }
                            if frame.len() > max {
                                self.stats.discarded_bytes += frame.len() as u64;
                                let kind = BadFrameKind::TooLong {
                                    declared: None,
                                    max,
                                };
                                return Ok(Some(self.bad(kind, None)));
                            }
                            return Ok(Some(self.message(frame.freeze(), false)));
                        }
                        None if src.len() >= max + 2 => {
                            // Skip what was searched; the rest may hold the
                            // delimiter and the next frames.
                            self.discard(src, limit);
                            self.state = State::SkipToDelimiter;
                            let kind = BadFrameKind::TooLong {
                                declared: None,
                                max,
                            };
                            return Ok(Some(self.bad(kind, None)));
                        }
                        None => {
                            self.state = State::Delimited { scanned: limit };
                            return Ok(None);
                        }
                    }
                }
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, Self::Error> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        if src.is_empty() {
            return Ok(None);
        }
        match self.state {
            State::Octet { header, len } => {
                self.consume(src, header);
                let received = src.len();
                let kept = src.split().freeze();
                self.stats.bytes += received as u64;
                self.state = State::Start;
                let kind = BadFrameKind::Truncated {
                    declared: len as u64,
                    received,
                };
                Ok(Some(self.bad(kind, Some(kept))))
            }
            State::Start if self.config.mode == FramingMode::OctetCounting => {
                // A length prefix cut off by the end of the stream.
                let n = src.len();
                self.discard(src, n);
                let kind = BadFrameKind::BadLength {
                    found: None,
                    expected: "a space after MSG-LEN",
                };
                Ok(Some(self.bad(kind, None)))
            }
            State::Start | State::Delimited { .. } => {
                let mut frame = src.split();
                self.stats.bytes += frame.len() as u64;
                if frame.last() == Some(&b'\r') {
                    frame.truncate(frame.len() - 1);
                }
                self.state = State::Start;
                if frame.is_empty() {
                    self.stats.empty_frames += 1;
                    return Ok(None);
                }
                if frame.len() > self.config.max_frame_len {
                    self.stats.discarded_bytes += frame.len() as u64;
                    let kind = BadFrameKind::TooLong {
                        declared: None,
                        max: self.config.max_frame_len,
                    };
                    return Ok(Some(self.bad(kind, None)));
                }
                Ok(Some(self.message(frame.freeze(), false)))
            }
            State::SkipBytes { .. } | State::SkipToDelimiter => {
                // `decode` consumed everything in these states.
                let n = src.len();
                self.discard(src, n);
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames of `input` fed whole; messages as text, bad frames as `!kind`.
    fn run(input: &[u8], max: usize, mode: FramingMode) -> (Vec<String>, FramingStats) {
        let mut f = SyslogFramer::new(FramingConfig {
            max_frame_len: max,
            mode,
        });
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(frame) = f.decode_eof(&mut buf).unwrap() {
            out.push(match frame {
                Frame::Message(m) => String::from_utf8_lossy(&m).into_owned(),
                Frame::Bad(b) => format!("!{:?}@{}#{}", b.kind, b.offset, b.frame),
            });
        }
        (out, f.stats())
    }

    #[test]
    fn table() {
        use FramingMode::{Auto, NonTransparent, OctetCounting};
        #[rustfmt::skip]
        let cases: &[(&[u8], usize, FramingMode, &[&str])] = &[
            (b"<1>a\n<2>b\r\n<3>c\0<4>d", 64, Auto, &["<1>a", "<2>b", "<3>c", "<4>d"]),
            (b"5 <1>ab<2>c\n6 <3>def", 64, Auto, &["<1>ab", "<2>c", "<3>def"]),
            (b"\n\n\r\n<1>a\n\0", 64, Auto, &["<1>a"]),
            (b"200 OK done\n", 64, Auto, &["200 OK done"]),
            (b"2024-01-01 x\n", 64, Auto, &["2024-01-01 x"]),
            (b"12345678901 <1>\n<2>b\n", 64, Auto, &["12345678901 <1>", "<2>b"]),
            (b"20 <1>0123456789abcdefg<2>b\n", 8, Auto, &["!TooLong { declared: Some(20), max: 8 }@0#1", "<2>b"]),
            (b"<1>0123456789\n<2>b\n", 8, Auto, &["!TooLong { declared: None, max: 8 }@0#1", "<2>b"]),
            (b"<1>012345\r\n", 9, Auto, &["<1>012345"]),
            (b"<1>0123456", 8, Auto, &["!TooLong { declared: None, max: 8 }@0#1"]),
            (b"9 <1>ab", 64, Auto, &["!Truncated { declared: 9, received: 5 }@0#1"]),
            (b"5 <1>abx5 <2>cd", 64, OctetCounting, &["<1>ab", "!BadLength { found: Some(120), expected: \"MSG-LEN\" }@7#2"]),
            (b"3 <1>x\n3 <2>", 64, OctetCounting, &["<1>", "!BadLength { found: Some(120), expected: \"MSG-LEN\" }@5#2", "<2>"]),
            (b"5 <1>ab", 64, NonTransparent, &["5 <1>ab"]),
        ];
        for (input, max, mode, want) in cases {
            let (got, _) = run(input, *max, *mode);
            assert_eq!(got, *want, "{}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn counters() {
        let (_, s) = run(b"20 <1>0123456789abcdefg<2>b\n\n", 8, FramingMode::Auto);
        assert_eq!(
            s,
            FramingStats {
                bytes: 29,
                messages: 1,
                octet_counted: 0,
                non_transparent: 1,
                bad_frames: 1,
                discarded_bytes: 23,
                empty_frames: 1,
            }
        );
    }

    #[test]
    fn reserves_for_an_announced_frame() {
        let mut f = SyslogFramer::default();
        let mut buf = BytesMut::from(&b"3000 <1>"[..]);
        assert!(f.decode(&mut buf).unwrap().is_none());
        assert!(buf.capacity() >= 3005);
    }
}
