//! The PRI part, `<0>` .. `<191>`: facility * 8 + severity.
//!
//! Both RFCs share it. It is checked digit by digit (no leading zero, at most
//! three digits, at most 191) so the error column is the byte that made the
//! value impossible, as go-syslog reports it.

use super::error::{ParseError, ParseErrorKind};
use crate::event::{Facility, Severity};

/// Parses `<PRIVAL>` at `pos`; returns the value and the position after `>`.
/// Always inlined: the fast path is a few instructions, and as a call it
/// cost the RFC 3164 and RFC 5424 parsers about 15 instructions a message.
#[inline(always)]
pub(crate) fn parse_pri(b: &[u8], pos: usize) -> Result<(u8, usize), ParseError> {
    // The common case, `<d>` to `<ddd>` within range, without the per-digit
    // error bookkeeping; anything else takes the careful path below.
    if let Some(&[b'<', d1 @ b'1'..=b'9', c2, c3, c4]) = b.get(pos..pos + 5) {
        let d1 = d1 - b'0';
        match (c2, c3, c4) {
            (b'>', _, _) => return Ok((d1, pos + 3)),
            (b'0'..=b'9', b'>', _) => return Ok((d1 * 10 + (c2 - b'0'), pos + 4)),
            (b'0'..=b'9', b'0'..=b'9', b'>') => {
                let v = u16::from(d1) * 100 + u16::from(c2 - b'0') * 10 + u16::from(c3 - b'0');
                if v <= 191 {
                    return Ok((v as u8, pos + 5));
                }
            }
            _ => {}
        }
    }
    parse_pri_careful(b, pos)
}

/// [`parse_pri`] with the error column of every failure.
fn parse_pri_careful(b: &[u8], pos: usize) -> Result<(u8, usize), ParseError> {
    if b.get(pos) != Some(&b'<') {
        return Err(ParseError::new(
            ParseErrorKind::Pri,
            pos,
            "'<' to start PRI",
        ));
    }
    let prival =
        |col: usize, what: &'static str| ParseError::new(ParseErrorKind::Prival, col, what);
    let mut i = pos + 1;
    let first = match b.get(i) {
        Some(c @ b'0'..=b'9') => c - b'0',
        _ => return Err(prival(i, "a PRI digit")),
    };
    i += 1;
    if first == 0 {
        return match b.get(i) {
            Some(b'>') => Ok((0, i + 1)),
            _ => Err(prival(i, "'>' after PRI 0 (no leading zeros)")),
        };
    }
    let mut value = u32::from(first);
    loop {
        match b.get(i) {
            Some(b'>') => return Ok((value as u8, i + 1)),
            Some(c @ b'0'..=b'9') => {
                let next = value * 10 + u32::from(c - b'0');
                if i - pos > 3 {
                    return Err(prival(i, "'>' after at most 3 PRI digits"));
                }
                if next > 191 {
                    return Err(prival(i, "a PRI value of at most 191"));
                }
                value = next;
                i += 1;
            }
            _ => return Err(prival(i, "'>' to end PRI")),
        }
    }
}

/// Splits a PRI value (0..=191) into facility and severity.
pub(crate) fn split_pri(value: u8) -> (Option<Facility>, Option<Severity>) {
    (
        Facility::from_code(value >> 3),
        Severity::from_code(value & 7),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let ok: &[(&str, u8, usize)] = &[
            ("<0>", 0, 3),
            ("<13>", 13, 4),
            ("<191>", 191, 5),
            ("<7>x", 7, 3),
        ];
        for (text, value, end) in ok {
            assert_eq!(
                parse_pri(text.as_bytes(), 0).unwrap(),
                (*value, *end),
                "{text}"
            );
        }
        let bad: &[(&str, ParseErrorKind, usize)] = &[
            ("", ParseErrorKind::Pri, 0),
            ("13>", ParseErrorKind::Pri, 0),
            ("<>", ParseErrorKind::Prival, 1),
            ("<192>", ParseErrorKind::Prival, 3),
            ("<1900>", ParseErrorKind::Prival, 4),
            ("<002>", ParseErrorKind::Prival, 2),
            ("<87]", ParseErrorKind::Prival, 3),
            ("<12", ParseErrorKind::Prival, 3),
        ];
        for (text, kind, col) in bad {
            let e = parse_pri(text.as_bytes(), 0).unwrap_err();
            assert_eq!((e.kind(), e.column()), (*kind, *col), "{text}");
        }
    }

    #[test]
    fn fast_path_agrees_with_the_careful_path() {
        for tail in ["", "x", "xx", " 1 -"] {
            for body in (0..=999)
                .map(|v| v.to_string())
                .chain(["00", "01", "007", "0", "", "a", "1a", "19a", "1000"].map(String::from))
            {
                let text = format!("<{body}>{tail}");
                assert_eq!(
                    parse_pri(text.as_bytes(), 0),
                    parse_pri_careful(text.as_bytes(), 0),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn split() {
        assert_eq!(
            split_pri(165),
            (Some(Facility::Local4), Some(Severity::Notice))
        );
    }
}
