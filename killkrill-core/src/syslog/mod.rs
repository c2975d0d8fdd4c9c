//! Syslog parsing: RFC 5424 and RFC 3164/BSD, zero-copy over `&[u8]`.
//!
//! ```
//! use killkrill_core::syslog::{ParseOptions, SyslogParser, Protocol};
//! use killkrill_core::event::{Severity, Timestamp};
//!
//! let parser = SyslogParser::new(ParseOptions::default());
//! let frame = br#"<165>1 2003-10-11T22:14:15.003Z web1 evntslog - ID47 [ex@32473 iut="3"] An event"#;
//! let msg = parser.parse_lenient(frame);
//! assert_eq!(msg.protocol, Protocol::Rfc5424);
//! assert_eq!(msg.severity, Some(Severity::Notice));
//! assert_eq!(msg.hostname, Some("web1"));
//! assert_eq!(msg.structured_data.element("ex@32473").unwrap().param("iut").unwrap(), "3");
//! assert_eq!(msg.message, Some(&b"An event"[..]));
//!
//! // Into the owned event model; the receive time is used only when the
//! // message has no timestamp of its own.
//! let record = msg.to_record(Timestamp::now());
//! assert_eq!(record.host.as_deref(), Some("web1"));
//! ```
//!
//! # Why it is built this way
//!
//! - **Framing is elsewhere.** A parser gets exactly one message; how bytes
//!   on a TCP stream become messages is [`crate::framing`]'s job, so the same
//!   parser serves UDP, TCP, TLS, files and embedders.
//! - **Borrowed, not copied.** [`SyslogMessage`] points into the frame; the
//!   structured data is validated but only unescaped when read. A receiver
//!   that filters or counts messages never allocates; one that keeps them
//!   calls [`SyslogMessage::to_record`] once.
//! - **Lenient never loses, strict never guesses.** One grammar per format.
//!   Strict mode rejects anything outside it with a [`ParseError`] that names
//!   the column and what was expected. Lenient mode (the default) never
//!   fails: a message it cannot parse is kept whole as the message, with the
//!   header fields that were complete before the failure and
//!   [`SyslogMessage::parse_error`] set. Lenient mode does not "repair"
//!   messages by dropping the parts it does not understand.
//! - **RFC 3164 is a family, not a grammar.** Its variants (no PRI, no
//!   timestamp, RFC 3339 timestamps, Cisco sequence numbers, IPv6 hosts,
//!   `tag[pid]:`) are recognised by shape; see `rfc3164.rs` and
//!   `bsd_timestamp.rs` for the exact rules, and `docs/src/syslog.md`.
//! - **Auto-detection** is the one the RFCs allow: `<PRI>1 ` starts RFC 5424,
//!   anything else is RFC 3164.

mod bsd_timestamp;
mod byte_scan;
mod error;
mod format;
mod key_value;
mod message;
mod msg_body;
mod options;
mod pri;
mod rfc3164;
mod rfc5424;
mod structured_data;
mod timestamp;
mod to_record;

pub use bsd_timestamp::infer_year;
pub use error::{ParseError, ParseErrorKind};
pub use format::format_rfc5424;
pub use jiff::tz::TimeZone;
pub use key_value::{KeyValue, KeyValues};
pub use message::{Protocol, SyslogMessage};
pub use msg_body::BOM;
pub use options::{Clock, Format, Mode, ParseOptions, UnknownTimeZone, time_zone_by_name};
pub use structured_data::{
    MAX_SD_NAME, SdElementRef, SdElements, SdParamRef, SdParams, StructuredData,
};
pub use to_record::SEQUENCE_ATTRIBUTE;

/// A configured syslog parser. Cheap to clone, `Send + Sync`, and stateless
/// between messages, so one instance can serve every connection.
#[derive(Debug, Clone)]
pub struct SyslogParser {
    options: ParseOptions,
    now: bsd_timestamp::Now,
}

impl Default for SyslogParser {
    fn default() -> Self {
        SyslogParser::new(ParseOptions::default())
    }
}

impl SyslogParser {
    /// A parser with these options.
    pub fn new(options: ParseOptions) -> Self {
        let now = bsd_timestamp::Now::new(&options);
        SyslogParser { options, now }
    }

    /// The options in use.
    pub fn options(&self) -> &ParseOptions {
        &self.options
    }

    /// Parses one frame in the configured [`Mode`].
    ///
    /// # Errors
    /// Only in [`Mode::Strict`]: the [`ParseError`] of the first byte that
    /// does not fit the grammar. In lenient mode this always returns `Ok`.
    pub fn parse<'a>(&self, frame: &'a [u8]) -> Result<SyslogMessage<'a>, ParseError> {
        match self.options.mode {
            Mode::Strict => self.parse_strict(frame),
            Mode::Lenient => Ok(self.parse_lenient(frame)),
        }
    }

    /// Parses one frame strictly, whatever the configured mode.
    ///
    /// # Errors
    /// The [`ParseError`] of the first byte that does not fit the grammar.
    pub fn parse_strict<'a>(&self, frame: &'a [u8]) -> Result<SyslogMessage<'a>, ParseError> {
        let (protocol, pri_optional) = self.protocol(frame, 0, true);
        let mut msg = SyslogMessage::empty(protocol);
        self.parse_into(frame, 0, pri_optional, true, &mut msg)?;
        Ok(msg)
    }

    /// Parses one frame leniently, whatever the configured mode: never
    /// fails; see [`Mode::Lenient`].
    ///
    /// Inlined so that the message is built directly where the caller keeps
    /// it: returning the 248-byte struct from a non-inlined function cost a
    /// `memcpy` per message.
    #[inline]
    pub fn parse_lenient<'a>(&self, frame: &'a [u8]) -> SyslogMessage<'a> {
        let mut msg = SyslogMessage::empty(Protocol::Rfc3164);
        self.parse_lenient_into(frame, &mut msg);
        msg
    }

    /// [`parse_lenient`](Self::parse_lenient) into `msg`, which must be
    /// [`SyslogMessage::empty`].
    fn parse_lenient_into<'a>(&self, frame: &'a [u8], msg: &mut SyslogMessage<'a>) {
        let start = frame
            .iter()
            .position(|c| !c.is_ascii_whitespace())
            .unwrap_or(frame.len());
        let (protocol, pri_optional) = self.protocol(frame, start, false);
        msg.protocol = protocol;
        if let Err(e) = self.parse_into(frame, start, pri_optional, false, msg) {
            msg.keep_raw(frame, e);
        }
    }

    fn protocol(&self, frame: &[u8], start: usize, strict: bool) -> (Protocol, bool) {
        match self.options.format {
            Format::Rfc5424 => (Protocol::Rfc5424, false),
            Format::Rfc3164 => (Protocol::Rfc3164, false),
            Format::Auto => detect(frame, start, strict),
        }
    }

    fn parse_into<'a>(
        &self,
        frame: &'a [u8],
        start: usize,
        pri_optional: bool,
        strict: bool,
        msg: &mut SyslogMessage<'a>,
    ) -> Result<(), ParseError> {
        match msg.protocol {
            Protocol::Rfc5424 => rfc5424::parse(frame, start, pri_optional, &self.options, msg),
            Protocol::Rfc3164 => {
                rfc3164::parse(frame, start, strict, &self.options, &self.now, msg)
            }
        }
    }
}

/// `<PRI>1 ` is RFC 5424; in lenient mode so is a PRI-less `1 ` followed by
/// a timestamp or `-`. Everything else is RFC 3164.
fn detect(b: &[u8], start: usize, strict: bool) -> (Protocol, bool) {
    let rest = &b[start..];
    // The common case in one 8-byte word: `<`, the first `>` among bytes
    // 1..=4 (an exact lowest match, see `byte_scan`), then `1 `.
    if let Some(w) = rest.first_chunk::<8>()
        && w[0] == b'<'
    {
        const BYTES_1_TO_4: u64 = 0x0000_0080_8080_8000;
        let w = u64::from_le_bytes(*w);
        let gt = byte_scan::eq_mask(w, b'>') & BYTES_1_TO_4;
        // Bytes gt + 1 and gt + 2 (at most byte 6).
        let is_5424 =
            gt != 0 && (w >> (gt.trailing_zeros() + 1)) as u16 == u16::from_le_bytes(*b"1 ");
        return if is_5424 {
            (Protocol::Rfc5424, false)
        } else {
            (Protocol::Rfc3164, false)
        };
    }
    if rest.first() == Some(&b'<') {
        if let Some(gt) = rest.iter().take(5).position(|&c| c == b'>')
            && rest.get(gt + 1..gt + 3) == Some(b"1 ")
        {
            return (Protocol::Rfc5424, false);
        }
        return (Protocol::Rfc3164, false);
    }
    if !strict && rest.starts_with(b"1 ") && matches!(rest.get(2), Some(b'0'..=b'9' | b'-')) {
        return (Protocol::Rfc5424, true);
    }
    (Protocol::Rfc3164, false)
}

/// Parses one frame leniently with the default options (auto-detection,
/// UTC for zone-less RFC 3164 timestamps, the system clock for their year).
pub fn parse(frame: &[u8]) -> SyslogMessage<'_> {
    SyslogParser::default().parse_lenient(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection() {
        let cases: &[(&str, Protocol, bool)] = &[
            ("<13>1 - - - - - -", Protocol::Rfc5424, false),
            ("<13>Feb  5 17:32:18 h t: m", Protocol::Rfc3164, false),
            ("<13>10 x", Protocol::Rfc3164, false),
            (
                "1 2020-05-22T14:59:09Z h a - - - m",
                Protocol::Rfc5424,
                true,
            ),
            ("1 apple", Protocol::Rfc3164, false),
            ("hello", Protocol::Rfc3164, false),
        ];
        for (text, proto, no_pri) in cases {
            assert_eq!(
                detect(text.as_bytes(), 0, false),
                (*proto, *no_pri),
                "{text}"
            );
        }
        assert_eq!(
            detect(b"1 2020-05-22T14:59:09Z h", 0, true),
            (Protocol::Rfc3164, false)
        );
        // The 8-byte fast path against the byte-wise rule, for every PRI
        // shape and every byte after it, with and without room for it.
        let slow = |rest: &[u8]| {
            rest.iter()
                .take(5)
                .position(|&c| c == b'>')
                .is_some_and(|gt| rest.get(gt + 1..gt + 3) == Some(b"1 "))
        };
        for pri in ["<", "<1", "<13", "<191", "<1911", "<>", "<1>>"] {
            for after in ["1 - - -", "1  x x", "1x x x", "12 x x", "1", "", ">1 x x"] {
                for tail in ["", "xxxxxxxx"] {
                    let frame = format!("{pri}>{after}{tail}");
                    let want = if slow(frame.as_bytes()) {
                        Protocol::Rfc5424
                    } else {
                        Protocol::Rfc3164
                    };
                    assert_eq!(detect(frame.as_bytes(), 0, true), (want, false), "{frame}");
                }
            }
        }
    }

    #[test]
    fn lenient_keeps_the_frame_and_the_complete_header_fields() {
        let frame = b"<29>1 2016-01-15T01:00:43Z hn S - - [meta escape=\"]\"] tail";
        let msg = parse(frame);
        assert_eq!(msg.message, Some(&frame[..]));
        assert_eq!(msg.hostname, Some("hn"));
        assert_eq!(msg.appname, Some("S"));
        assert!(msg.structured_data.is_empty());
        let e = msg.parse_error.unwrap();
        assert_eq!((e.kind(), e.column()), (ParseErrorKind::SdParamEscape, 50));
        let strict = SyslogParser::default().parse_strict(frame).unwrap_err();
        assert_eq!(strict, e);
    }

    /// The UTF-8 check of header fields + SD may start early (inside the
    /// ASCII PRI/VERSION/TIMESTAMP); columns and texts must not change,
    /// whatever the lengths.
    #[test]
    fn sd_utf8_check_at_every_length() {
        for host_len in 1..80 {
            for ts in ["-", "2026-11-25T17:01:07.015511Z"] {
                let host = "h".repeat(host_len);
                let good = format!(
                    "<13>1 {ts} {host} app - - [x@1 k=\"é{}\"] m",
                    "v".repeat(host_len % 9)
                );
                let msg = parse(good.as_bytes());
                assert_eq!(msg.parse_error, None, "{good}");
                assert_eq!(msg.hostname, Some(host.as_str()));
                let el = msg.structured_data.element("x@1").unwrap();
                assert_eq!(
                    el.param("k").unwrap(),
                    format!("é{}", "v".repeat(host_len % 9))
                );
                let mut bad = good.clone().into_bytes();
                let at = bad.iter().position(|&c| c == 0xc3).unwrap();
                bad[at] = 0xff;
                let e = SyslogParser::default().parse_strict(&bad).unwrap_err();
                assert_eq!(
                    (e.kind(), e.column()),
                    (ParseErrorKind::SdParam, at),
                    "{host_len} {ts}"
                );
            }
        }
    }

    #[test]
    fn header_fields_may_contain_sd_delimiters() {
        // `=`, `]` and `"` end an SD-NAME but are printable, so they belong
        // to a header field; also across a 64-byte block boundary.
        let host = format!("{}=h]o\"st", "x".repeat(60));
        let frame = format!("<13>1 - {host} a=p]p\" p\"i]d= m]s=g\" [x@1 k=\"v\"] body");
        let msg = parse(frame.as_bytes());
        assert_eq!(msg.parse_error, None);
        assert_eq!(msg.hostname, Some(host.as_str()));
        assert_eq!(msg.appname, Some("a=p]p\""));
        assert_eq!(msg.procid, Some("p\"i]d="));
        assert_eq!(msg.msgid, Some("m]s=g\""));
        assert_eq!(msg.message, Some(&b"body"[..]));
        // An APP-NAME longer than 48 bytes is an error at byte 49 even when
        // a delimiter comes first.
        let long = format!("<13>1 - h {}={} p m - -", "a".repeat(40), "b".repeat(10));
        let e = SyslogParser::default()
            .parse_strict(long.as_bytes())
            .unwrap_err();
        assert_eq!((e.kind(), e.column()), (ParseErrorKind::Appname, 10 + 48));
    }

    #[test]
    fn parser_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SyslogParser>();
        check::<SyslogMessage<'static>>();
    }
}
