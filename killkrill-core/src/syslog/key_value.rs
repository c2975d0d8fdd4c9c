//! `key=value` pairs in a message body (FortiGate, Palo Alto, iptables,
//! Cisco ASA "key=value" logging).
//!
//! The pairs stay in the message: it is the record of what was sent, and
//! copying every pair into attributes would double the bytes stored for
//! these (often long) messages. Callers that want them as fields iterate
//! [`SyslogMessage::key_values`] without allocating, or call
//! [`KeyValues::to_attributes`].
//!
//! A pair is `key=value` or `key="quoted value"` separated by spaces; a key
//! is ASCII letters, digits, `_`, `-` and `.`. Words that are not pairs are
//! skipped. Quoted values end at the next `"` (these senders do not escape).

use memchr::memchr;

use super::message::SyslogMessage;
use crate::event::FieldValue;

/// One `key=value` pair, borrowed from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyValue<'a> {
    /// The key.
    pub key: &'a str,
    /// The value without surrounding quotes.
    pub value: &'a str,
}

/// Iterator over the `key=value` pairs of a message body.
#[derive(Debug, Clone)]
pub struct KeyValues<'a> {
    rest: &'a [u8],
}

impl<'a> SyslogMessage<'a> {
    /// The `key=value` pairs in the message body.
    pub fn key_values(&self) -> KeyValues<'a> {
        KeyValues::new(self.message.unwrap_or_default())
    }
}

impl<'a> KeyValues<'a> {
    /// Pairs in `text`.
    pub fn new(text: &'a [u8]) -> Self {
        KeyValues { rest: text }
    }

    /// The pairs as string attributes, in order.
    pub fn to_attributes(self) -> Vec<(String, FieldValue)> {
        self.map(|kv| (kv.key.to_owned(), FieldValue::Str(kv.value.to_owned())))
            .collect()
    }

    fn skip_word(&mut self) {
        let n = memchr(b' ', self.rest).unwrap_or(self.rest.len());
        self.rest = &self.rest[n..];
    }
}

#[inline]
fn is_key(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

impl<'a> Iterator for KeyValues<'a> {
    type Item = KeyValue<'a>;

    fn next(&mut self) -> Option<KeyValue<'a>> {
        loop {
            let start = self.rest.iter().position(|&c| c != b' ')?;
            self.rest = &self.rest[start..];
            let klen = self
                .rest
                .iter()
                .position(|&c| !is_key(c))
                .unwrap_or(self.rest.len());
            if klen == 0 || self.rest.get(klen) != Some(&b'=') {
                self.skip_word();
                if self.rest.is_empty() {
                    return None;
                }
                continue;
            }
            let key = std::str::from_utf8(&self.rest[..klen]).ok()?;
            let after = &self.rest[klen + 1..];
            let (value, consumed) = if after.first() == Some(&b'"') {
                match memchr(b'"', &after[1..]) {
                    Some(q) => (&after[1..=q], q + 2),
                    None => (&after[1..], after.len()),
                }
            } else {
                let n = memchr(b' ', after).unwrap_or(after.len());
                (&after[..n], n)
            };
            self.rest = &after[consumed..];
            match std::str::from_utf8(value) {
                Ok(value) => return Some(KeyValue { key, value }),
                Err(_) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fortigate_and_iptables_bodies() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            (
                r#"date=2019-05-10 time=11:37:47 devname="FG 100E" logid="0000000013" srcip=10.1.100.11"#,
                &[
                    ("date", "2019-05-10"),
                    ("time", "11:37:47"),
                    ("devname", "FG 100E"),
                    ("logid", "0000000013"),
                    ("srcip", "10.1.100.11"),
                ],
            ),
            (
                "[WAN]IN=eth0 OUT= MAC=b4:fb SYN URGP=0",
                &[("OUT", ""), ("MAC", "b4:fb"), ("URGP", "0")],
            ),
            ("no pairs here", &[]),
            (r#"k="unterminated"#, &[("k", "unterminated")]),
        ];
        for (text, want) in cases {
            let got: Vec<(&str, &str)> = KeyValues::new(text.as_bytes())
                .map(|kv| (kv.key, kv.value))
                .collect();
            assert_eq!(got, *want, "{text}");
        }
    }
}
