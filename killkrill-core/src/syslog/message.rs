//! The parsed message: a borrowed view of one frame.
//!
//! Every text field points into the input; nothing is copied or allocated
//! while parsing. Converting to the owned [`LogRecord`](crate::event::LogRecord)
//! (see `to_record.rs`) is where copies happen, once, when the caller decides
//! to keep the message.

use super::error::ParseError;
use super::structured_data::StructuredData;
use crate::event::{Facility, Severity, Timestamp};

/// Which syslog format a message was read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// RFC 5424 (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`).
    Rfc5424,
    /// RFC 3164 / BSD (`<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG` and its variants).
    Rfc3164,
}

impl Protocol {
    /// `rfc5424` or `rfc3164`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Rfc5424 => "rfc5424",
            Protocol::Rfc3164 => "rfc3164",
        }
    }
}

/// One syslog message, borrowed from the frame it was parsed from.
///
/// Absent fields are `None`: RFC 5424's `-`, or what an RFC 3164 sender left
/// out. In lenient mode a message that did not parse has
/// [`parse_error`](Self::parse_error) set, the whole frame as
/// [`message`](Self::message), and the header fields that were complete
/// before the failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogMessage<'a> {
    /// The format the message was read as.
    pub protocol: Protocol,
    /// From PRI; `None` when the message had no PRI.
    pub facility: Option<Facility>,
    /// From PRI; `None` when the message had no PRI.
    pub severity: Option<Severity>,
    /// RFC 5424 VERSION (1..=999); `None` for RFC 3164.
    pub version: Option<u16>,
    /// The message's own time, in UTC.
    pub timestamp: Option<Timestamp>,
    /// HOSTNAME.
    pub hostname: Option<&'a str>,
    /// APP-NAME (RFC 5424) or TAG (RFC 3164).
    pub appname: Option<&'a str>,
    /// PROCID (RFC 5424) or the `[pid]` after the tag (RFC 3164).
    pub procid: Option<&'a str>,
    /// MSGID (RFC 5424 only).
    pub msgid: Option<&'a str>,
    /// STRUCTURED-DATA (RFC 5424, or rsyslog's `[origin ...]` after an RFC 3164 tag).
    pub structured_data: StructuredData<'a>,
    /// MSG without a leading UTF-8 BOM; `None` when empty. Not necessarily UTF-8.
    pub message: Option<&'a [u8]>,
    /// The MSG started with a UTF-8 BOM (removed from [`message`](Self::message)).
    pub bom: bool,
    /// A sequence number before the timestamp (Cisco IOS `123: *Mar  1 ...`).
    pub sequence: Option<u64>,
    /// Set in lenient mode when the frame could not be parsed and was kept raw.
    pub parse_error: Option<ParseError>,
}

impl<'a> SyslogMessage<'a> {
    /// A message with nothing but its protocol.
    pub const fn empty(protocol: Protocol) -> Self {
        SyslogMessage {
            protocol,
            facility: None,
            severity: None,
            version: None,
            timestamp: None,
            hostname: None,
            appname: None,
            procid: None,
            msgid: None,
            structured_data: StructuredData::EMPTY,
            message: None,
            bom: false,
            sequence: None,
            parse_error: None,
        }
    }

    /// The PRI value (facility * 8 + severity), when the message had one.
    pub fn priority(&self) -> Option<u8> {
        Some(self.facility?.code() * 8 + self.severity?.code())
    }

    /// The message as UTF-8 text, if it is UTF-8.
    pub fn message_str(&self) -> Option<&'a str> {
        self.message.and_then(|m| std::str::from_utf8(m).ok())
    }

    /// Turns this partially parsed message into the lenient "kept raw" form:
    /// the whole frame becomes the message and the error is recorded.
    pub(crate) fn keep_raw(&mut self, frame: &'a [u8], error: ParseError) {
        self.structured_data = StructuredData::EMPTY;
        self.message = if frame.is_empty() { None } else { Some(frame) };
        self.bom = false;
        self.parse_error = Some(error);
    }
}
