//! The MSG part shared by both formats: BOM handling and go-syslog's
//! "compliant MSG" check.
//!
//! RFC 5424 §6.4 says a MSG that starts with the UTF-8 BOM is UTF-8. The BOM
//! is a marker, not text, so it is removed from the message and remembered
//! in [`SyslogMessage::bom`](super::SyslogMessage::bom) (a formatter can put
//! it back byte for byte).

use super::error::{ParseError, ParseErrorKind};

/// The UTF-8 byte order mark.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Splits a leading BOM off `msg`: `(without_bom, had_bom)`.
#[inline]
pub(crate) fn strip_bom(msg: &[u8]) -> (&[u8], bool) {
    match msg.strip_prefix(BOM) {
        Some(rest) => (rest, true),
        None => (msg, false),
    }
}

/// Checks that `text` (the MSG after its BOM, starting at column `col`) is
/// UTF-8. The error points at the byte where the encoding became impossible:
/// an invalid lead byte itself, or the first byte that does not continue a
/// valid lead byte.
pub(crate) fn check_compliant(text: &[u8], col: usize) -> Result<(), ParseError> {
    match std::str::from_utf8(text) {
        Ok(_) => Ok(()),
        Err(e) => {
            let start = e.valid_up_to();
            let lead = text[start];
            let at = match e.error_len() {
                // A lead byte that can start a sequence: the offender is the
                // first byte after the valid prefix of that sequence.
                Some(n) if (0xC2..=0xF4).contains(&lead) => start + n,
                Some(_) => start,
                None => text.len(),
            };
            Err(ParseError::new(
                ParseErrorKind::MsgNotCompliant,
                col + at,
                "valid UTF-8 after the BOM",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compliant_columns() {
        let cases: &[(&[u8], Option<usize>)] = &[
            (b"plain", None),
            ("κόσμε".as_bytes(), None),
            (b"\xC1", Some(0)),
            (b"\xC3\x28", Some(1)),
            (b"\xE2\x82\x28", Some(2)),
            (b"\xF0\x28\x8C\xBC", Some(1)),
            (b"\xED\xA0\x80", Some(1)),
            (b"ch\xE4\xE4s", Some(3)),
            (b"\xFE", Some(0)),
            (b"ok\xE2\x82", Some(4)),
        ];
        for (text, col) in cases {
            let got = check_compliant(text, 0).err().map(|e| e.column());
            assert_eq!(got, *col, "{text:x?}");
        }
    }

    #[test]
    fn bom() {
        assert_eq!(strip_bom(b"\xEF\xBB\xBFhi"), (&b"hi"[..], true));
        assert_eq!(strip_bom(b"hi"), (&b"hi"[..], false));
    }
}
