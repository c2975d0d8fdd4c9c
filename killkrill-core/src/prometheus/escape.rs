//! Backslash escapes in label values and HELP text.
//!
//! Both formats escape `\\`, `\"` and `\n`. They differ on anything else
//! after a backslash: Prometheus' text parser rejects it, OpenMetrics keeps
//! it as the two characters it is. Values without a backslash — nearly all
//! of them — are returned borrowed, so the common case never allocates.

use std::borrow::Cow;

use super::error::{ErrorKind, Found};

/// Finds the closing `"` of a quoted string whose content starts at `start`.
/// Returns the index of that quote and whether a backslash occurred.
/// With `strict` only the three defined escapes are allowed.
///
/// Errors carry the byte position in `s` to blame.
#[inline]
pub(crate) fn scan_quoted(
    s: &str,
    start: usize,
    strict: bool,
) -> Result<(usize, bool), (usize, ErrorKind)> {
    let b = s.as_bytes();
    let mut i = start;
    let mut escaped = false;
    loop {
        match find_quote_or_backslash(b, i) {
            None => {
                return Err((
                    b.len(),
                    ErrorKind::Expected {
                        expected: "`\"` to close the label value",
                        found: Found::EndOfLine,
                    },
                ));
            }
            Some(at) if b[at] == b'"' => return Ok((at, escaped)),
            Some(at) => {
                escaped = true;
                match b.get(at + 1) {
                    None => {
                        return Err((
                            at + 1,
                            ErrorKind::Expected {
                                expected: "an escaped character after `\\`",
                                found: Found::EndOfLine,
                            },
                        ));
                    }
                    Some(b'\\' | b'"' | b'n') => {}
                    Some(_) if strict => {
                        let c = s[at + 1..].chars().next().unwrap_or('?');
                        return Err((at, ErrorKind::InvalidEscape(c)));
                    }
                    Some(_) => {}
                }
                i = at + 2;
            }
        }
    }
}

/// Index of the first `"` or `\\` at or after `i`. Label values are
/// mostly short, where checking eight bytes at a time in a register beats
/// setting up a vector search; long values go to `memchr2`.
#[inline]
fn find_quote_or_backslash(b: &[u8], i: usize) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let limit = b.len().min(i + 64);
    let mut j = i;
    while j + 8 <= limit {
        let w = u64::from_le_bytes(b[j..j + 8].try_into().expect("an 8-byte slice"));
        let q = w ^ (LO * u64::from(b'"'));
        let s = w ^ (LO * u64::from(b'\\'));
        // The lowest byte flagged by either zero-byte test is exact.
        let m = ((q.wrapping_sub(LO) & !q) | (s.wrapping_sub(LO) & !s)) & HI;
        if m != 0 {
            return Some(j + (m.trailing_zeros() / 8) as usize);
        }
        j += 8;
    }
    while j < limit {
        if b[j] == b'"' || b[j] == b'\\' {
            return Some(j);
        }
        j += 1;
    }
    if limit == b.len() {
        return None;
    }
    memchr::memchr2(b'"', b'\\', &b[limit..]).map(|n| limit + n)
}

/// Checks HELP text escapes (only needed in strict text mode).
pub(crate) fn check_help_escapes(s: &str) -> Result<(), (usize, ErrorKind)> {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(n) = memchr::memchr(b'\\', &b[i..]) {
        let at = i + n;
        match b.get(at + 1) {
            Some(b'\\' | b'n' | b'"') => i = at + 2,
            Some(_) => {
                let c = s[at + 1..].chars().next().unwrap_or('?');
                return Err((at, ErrorKind::InvalidEscape(c)));
            }
            None => {
                return Err((
                    at + 1,
                    ErrorKind::Expected {
                        expected: "an escaped character after `\\`",
                        found: Found::EndOfLine,
                    },
                ));
            }
        }
    }
    Ok(())
}

/// Undoes `\\`, `\"` and `\n`; any other backslash is kept as written.
/// Borrowed when there is nothing to undo.
#[inline]
pub(crate) fn unescape(raw: &str) -> Cow<'_, str> {
    if !raw.as_bytes().contains(&b'\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('n') => out.push('\n'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// Writes a label value with `\\`, `\"` and `\n` escaped.
pub(crate) fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Writes HELP text escaped: `\\` and `\n`, plus `\"` when `quote` (OpenMetrics).
pub(crate) fn escape_help(out: &mut String, v: &str, quote: bool) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' if quote => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescaping() {
        for (raw, want) in [
            ("plain", "plain"),
            (r#"b\"a\nr"#, "b\"a\nr"),
            (r"b\\a\z", r"b\a\z"),
            (r"\\\n", "\\\n"),
            (r"\foo", r"\foo"),
        ] {
            assert_eq!(unescape(raw), want, "{raw}");
        }
        assert!(matches!(unescape("x"), Cow::Borrowed(_)));
    }

    #[test]
    fn scanning() {
        assert_eq!(scan_quoted(r#"ab"c"#, 0, true), Ok((2, false)));
        assert_eq!(scan_quoted(r#"a\"b" x"#, 0, true), Ok((4, true)));
        assert_eq!(
            scan_quoted(r#"a\tb""#, 0, true),
            Err((1, ErrorKind::InvalidEscape('t')))
        );
        assert_eq!(scan_quoted(r#"a\tb""#, 0, false), Ok((4, true)));
        assert!(scan_quoted("abc", 0, true).is_err());
        assert!(scan_quoted("abc\\", 0, false).is_err());
    }

    #[test]
    fn finds_quotes_and_backslashes_at_every_offset() {
        for len in 0..80 {
            for at in 0..=len {
                for c in [b'"', b'\\'] {
                    let mut v = vec![b'a'; len];
                    if at < len {
                        v[at] = c;
                    }
                    v.extend_from_slice("é\"".as_bytes());
                    let want = if at < len { at } else { len + 2 };
                    assert_eq!(find_quote_or_backslash(&v, 0), Some(want), "{len} {at}");
                }
            }
        }
        assert_eq!(find_quote_or_backslash(b"abc", 0), None);
        assert_eq!(find_quote_or_backslash(&[b'x'; 100], 3), None);
    }

    #[test]
    fn escaping_round_trips() {
        for v in ["a\\b\"c\nd", "plain", "\\n", "ünï"] {
            let mut s = String::new();
            escape_label_value(&mut s, v);
            assert_eq!(unescape(&s), v);
        }
    }
}
