//! Loki stream labels in Prometheus label syntax: `{job="api", env="prod"}`.
//!
//! Protobuf pushes carry a stream's labels as this text (JSON pushes as an object).
//! Values are Go-style quoted strings — double quotes with `\"`, `\\`, `\n`, `\t`,
//! `\xHH`, `\uHHHH`, … escapes, single quotes likewise, or backticks with no
//! escapes — as the PromQL parser Loki uses accepts them. Names follow Prometheus'
//! `[a-zA-Z_][a-zA-Z0-9_]*`. A duplicate name, an empty set or anything malformed is
//! an error with the byte offset.

use std::collections::HashSet;

/// Parses `{name="value", ...}` into pairs in the order written.
///
/// # Errors
/// A message with the 0-based byte offset and what was expected there.
pub fn parse_labels(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
    };
    p.ws();
    p.expect(b'{', "'{' to open the label set")?;
    let mut out: Vec<(String, String)> = Vec::new();
    // Names are plain slices of `text` (no escapes), so a set of slices finds
    // duplicates in O(n) however many labels a hostile string holds.
    let mut seen: HashSet<&str> = HashSet::new();
    loop {
        p.ws();
        if p.peek() == Some(b'}') {
            p.i += 1;
            break;
        }
        let at = p.i;
        let name = p.name()?;
        let name_end = p.i;
        p.ws();
        p.expect(b'=', "'=' after the label name")?;
        p.ws();
        let value = p.string()?;
        if !seen.insert(text.get(at..name_end).unwrap_or_default()) {
            return Err(format!("byte {at}: duplicate label name {name:?}"));
        }
        out.push((name, value));
        p.ws();
        match p.peek() {
            Some(b',') => p.i += 1,
            Some(b'}') => {}
            _ => return Err(p.err("',' or '}' after a label")),
        }
    }
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("the end after '}'"));
    }
    if out.is_empty() {
        return Err("at least one label pair is required per stream".to_owned());
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn err(&self, expected: &str) -> String {
        match self.text[self.i..].chars().next() {
            Some(c) => format!("byte {}: expected {expected}, found {c:?}", self.i),
            None => format!("byte {}: expected {expected}, found the end", self.i),
        }
    }

    fn expect(&mut self, b: u8, what: &str) -> Result<(), String> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    fn name(&mut self) -> Result<String, String> {
        let start = self.i;
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => self.i += 1,
            _ => return Err(self.err("a label name")),
        }
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_') {
            self.i += 1;
        }
        Ok(self.text[start..self.i].to_owned())
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = match self.peek() {
            Some(q @ (b'"' | b'\'' | b'`')) => q,
            _ => return Err(self.err("a quoted label value")),
        };
        let open = self.i;
        self.i += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.text[self.i..].chars().next() else {
                self.i = open;
                return Err(self.err("a closing quote for the value starting here"));
            };
            if c as u32 == u32::from(quote) {
                self.i += 1;
                return Ok(out);
            }
            if c == '\\' && quote != b'`' {
                self.i += 1;
                out.push(self.escape(quote)?);
                continue;
            }
            if c == '\n' && quote != b'`' {
                return Err(self.err("a closing quote before the end of the line"));
            }
            out.push(c);
            self.i += c.len_utf8();
        }
    }

    /// After a backslash: one escape sequence, as Go's strconv.Unquote reads it.
    fn escape(&mut self, quote: u8) -> Result<char, String> {
        let Some(c) = self.peek() else {
            return Err(self.err("an escape sequence"));
        };
        self.i += 1;
        let simple = match c {
            b'a' => Some('\x07'),
            b'b' => Some('\x08'),
            b'f' => Some('\x0c'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            b'v' => Some('\x0b'),
            b'\\' => Some('\\'),
            q if q == quote => Some(q as char),
            _ => None,
        };
        if let Some(ch) = simple {
            return Ok(ch);
        }
        let (digits, radix) = match c {
            b'x' => (2, 16),
            b'u' => (4, 16),
            b'U' => (8, 16),
            b'0'..=b'7' => {
                self.i -= 1;
                (3, 8)
            }
            _ => {
                self.i -= 1;
                return Err(self.err("a valid escape (\\n, \\t, \\\\, \\\", \\xHH, \\uHHHH, ...)"));
            }
        };
        let start = self.i;
        let hex = self
            .text
            .get(start..start + digits)
            .filter(|h| h.bytes().all(|b| (b as char).is_digit(radix)))
            .ok_or_else(|| self.err("the digits of an escape sequence"))?;
        let code = u32::from_str_radix(hex, radix).map_err(|e| e.to_string())?;
        self.i += digits;
        char::from_u32(code).ok_or_else(|| format!("byte {start}: escape is not a valid character"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)]);
        let cases: &[Case] = &[
            (r#"{job="api"}"#, &[("job", "api")]),
            (
                r#"{job="api", env="prod"}"#,
                &[("job", "api"), ("env", "prod")],
            ),
            (r#" { a = "1" , b="2", } "#, &[("a", "1"), ("b", "2")]),
            (
                r#"{a="q\"uote\\ \n\t\x41\u00e9\U0001F600\101"}"#,
                &[("a", "q\"uote\\ \n\tAé😀A")],
            ),
            (
                r#"{a='it\'s', b=`raw\n`}"#,
                &[("a", "it's"), ("b", "raw\\n")],
            ),
            (r#"{_x1="é"}"#, &[("_x1", "é")]),
            (r#"{a=""}"#, &[("a", "")]),
        ];
        for (input, want) in cases {
            let got = parse_labels(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            let got: Vec<_> = got.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            assert_eq!(got, *want, "{input}");
        }
    }

    #[test]
    fn invalid() {
        let cases: &[(&str, &str)] = &[
            (
                "",
                "byte 0: expected '{' to open the label set, found the end",
            ),
            ("job=\"a\"", "byte 0: expected '{'"),
            ("{}", "at least one label pair is required"),
            (
                "{job}",
                "byte 4: expected '=' after the label name, found '}'",
            ),
            (
                "{job=api}",
                "byte 5: expected a quoted label value, found 'a'",
            ),
            ("{job=\"api}", "byte 5: expected a closing quote"),
            ("{1a=\"x\"}", "byte 1: expected a label name, found '1'"),
            (
                "{a=\"x\" b=\"y\"}",
                "byte 7: expected ',' or '}' after a label, found 'b'",
            ),
            ("{a=\"x\", a=\"y\"}", "byte 8: duplicate label name \"a\""),
            ("{a=\"\\q\"}", "byte 5: expected a valid escape"),
            (
                "{a=\"\\xZZ\"}",
                "byte 6: expected the digits of an escape sequence",
            ),
            ("{a=\"\\uD800\"}", "escape is not a valid character"),
            ("{a=\"x\"} extra", "byte 8: expected the end after '}'"),
        ];
        for (input, want) in cases {
            let e = parse_labels(input).unwrap_err();
            assert!(
                e.starts_with(want) || e.contains(want),
                "{input}: got {e:?}, want {want:?}"
            );
        }
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::parse_labels;

    /// Go-style double-quoted string, as Promtail writes label values.
    fn quote(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    proptest! {
        /// Any label set written in Prometheus label syntax parses back to itself.
        #[test]
        fn round_trip(labels in prop::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,8}", "\\PC{0,10}|[\"\\\\\n\t\u{1}]{0,4}", 1..6)) {
            let text = format!(
                "{{{}}}",
                labels.iter().map(|(n, v)| format!("{n}={}", quote(v))).collect::<Vec<_>>().join(", ")
            );
            let got = parse_labels(&text).unwrap();
            let want: Vec<(String, String)> = labels.into_iter().collect();
            prop_assert_eq!(got, want);
        }
    }
}
