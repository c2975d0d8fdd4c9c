//! Telling a single object, an array and NDJSON apart from the body alone.
//!
//! Senders seldom set a content type that distinguishes them
//! (`application/json` is used for all three), so the body decides:
//!
//! 1. A UTF-8 byte-order mark and leading whitespace are skipped. Nothing
//!    left: [`Shape::Empty`], zero records.
//! 2. `[` first: [`Shape::Array`], each element a record.
//! 3. `{` first, and the first line does not close the value it opens
//!    (`{` alone, or `{"a": 1,` — a pretty-printed object), with more
//!    content after it: [`Shape::Object`], the whole body is one record.
//! 4. Otherwise [`Shape::Ndjson`]: each non-blank line is a record. A
//!    compact single object is an NDJSON body of one line; a line that is
//!    not an object is that line's error.
//!
//! Rule 3 costs one scan of the first line (no allocation) and only when
//! the body has more than one line.

use serde::de::IgnoredAny;

/// The three body shapes (and the empty body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// Only whitespace (or nothing).
    Empty,
    /// One JSON object spread over several lines.
    Object,
    /// A JSON array of objects.
    Array,
    /// One JSON object per line.
    Ndjson,
}

impl Shape {
    /// Lower-case name: `empty`, `object`, `array`, `ndjson`.
    pub const fn name(self) -> &'static str {
        match self {
            Shape::Empty => "empty",
            Shape::Object => "object",
            Shape::Array => "array",
            Shape::Ndjson => "ndjson",
        }
    }
}

/// The UTF-8 byte-order mark, skipped at the start of a body.
pub(crate) const BOM: &[u8] = b"\xef\xbb\xbf";

/// JSON whitespace.
#[inline]
pub(crate) const fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Length of the byte-order mark at the start of `body` (0 or 3).
pub(crate) fn bom_len(body: &[u8]) -> usize {
    if body.starts_with(BOM) { BOM.len() } else { 0 }
}

/// The shape of `body` (see the module docs for the rules).
pub fn detect_shape(body: &[u8]) -> Shape {
    let start = bom_len(body);
    let Some(first) = body[start..].iter().position(|&b| !is_ws(b)) else {
        return Shape::Empty;
    };
    let rest = &body[start + first..];
    match rest[0] {
        b'[' => Shape::Array,
        b'{' => {
            let line_end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            let more = rest[line_end..].iter().any(|&b| !is_ws(b));
            if more && line_opens_unclosed_value(&rest[..line_end]) {
                Shape::Object
            } else {
                Shape::Ndjson
            }
        }
        _ => Shape::Ndjson,
    }
}

/// True when `line` starts a JSON value that does not end within it: the
/// first line of a pretty-printed object rather than an NDJSON record.
pub fn line_opens_unclosed_value(line: &[u8]) -> bool {
    let mut de = serde_json::Deserializer::from_slice(line);
    match serde::Deserialize::deserialize(&mut de) {
        Ok(IgnoredAny) => false,
        Err(e) => e.is_eof(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let cases: &[(&[u8], Shape)] = &[
            (b"", Shape::Empty),
            (b" \r\n\t\n", Shape::Empty),
            (b"\xef\xbb\xbf\n", Shape::Empty),
            (b"[]", Shape::Array),
            (b"  \n[{\"a\":1}]", Shape::Array),
            (b"\xef\xbb\xbf[{}]", Shape::Array),
            (b"{\"a\":1}", Shape::Ndjson),
            (b"{\"a\":1}\n", Shape::Ndjson),
            (b"{\"a\":1}\r\n\r\n", Shape::Ndjson),
            (b"{\"a\":1}\n{\"a\":2}\n", Shape::Ndjson),
            (b"{\"a\":1} x\n{\"a\":2}", Shape::Ndjson),
            (b"{\"a\":\n1}", Shape::Object),
            (b"{\n  \"a\": 1\n}\n", Shape::Object),
            (b"\n\n{\r\n\"a\":1}", Shape::Object),
            (b"{\"a\":1\n{\"b\":2}", Shape::Object),
            (b"{\"a\":1", Shape::Ndjson),
            (b"{\"a\" 1\n}", Shape::Ndjson),
            (b"hello\nworld", Shape::Ndjson),
            (b"\"s\"", Shape::Ndjson),
        ];
        for (body, shape) in cases {
            assert_eq!(
                detect_shape(body),
                *shape,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
