//! Arrays kept as their compact JSON text.
//!
//! An attribute holds one scalar, and flattening an array into `tags.0`,
//! `tags.1`, ... would make a field per element and lose that it was a list.
//! So an array becomes one string attribute holding the array as compact JSON
//! (`["a","b"]`): whitespace dropped, key order and duplicate keys inside
//! kept, strings escaped as serde_json escapes them, numbers in their
//! shortest form. The text is written while the array is parsed — no
//! `Value` tree — and the same limits apply as for the rest of the record:
//! depth, key and string length, and the text itself may be no longer than
//! the string limit.

use std::fmt::{self, Write as _};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::error::Problem;
use super::record::RecordBuilder;

/// Writes the JSON value it is given to `out`. `level` is the nesting level
/// a container at this position has.
pub(crate) struct ArrayText<'b, 'o, 'l> {
    pub(crate) b: &'b mut RecordBuilder<'l>,
    pub(crate) out: &'o mut String,
    pub(crate) level: usize,
}

impl<'l> ArrayText<'_, '_, 'l> {
    fn check_len<E: de::Error>(&mut self) -> Result<(), E> {
        let limit = self.b.limits.max_string_bytes;
        if self.out.len() > limit {
            return Err(self.b.fail(Problem::ArrayTooLong { limit }, true));
        }
        Ok(())
    }

    fn check_level<E: de::Error>(&mut self) -> Result<(), E> {
        let limit = self.b.limits.max_depth;
        if self.level > limit {
            return Err(self.b.fail(Problem::TooDeep { limit }, true));
        }
        Ok(())
    }

    fn write_str<E: de::Error>(&mut self, v: &str) -> Result<(), E> {
        let limit = self.b.limits.max_string_bytes;
        if v.len() > limit {
            return Err(self.b.fail(Problem::StringTooLong { limit }, true));
        }
        write_json_string(self.out, v);
        self.check_len()
    }

    fn write_display<E: de::Error>(&mut self, v: impl fmt::Display) -> Result<(), E> {
        // Writing to a String cannot fail.
        let _ = write!(self.out, "{v}");
        self.check_len()
    }

    fn child(&mut self) -> ArrayText<'_, '_, 'l> {
        ArrayText {
            b: &mut *self.b,
            out: &mut *self.out,
            level: self.level + 1,
        }
    }
}

impl<'de> DeserializeSeed<'de> for ArrayText<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ArrayText<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(mut self, v: bool) -> Result<(), E> {
        self.write_display(v)
    }

    fn visit_i64<E: de::Error>(mut self, v: i64) -> Result<(), E> {
        self.write_display(v)
    }

    fn visit_u64<E: de::Error>(mut self, v: u64) -> Result<(), E> {
        self.write_display(v)
    }

    fn visit_f64<E: de::Error>(mut self, v: f64) -> Result<(), E> {
        // serde_json writes finite floats in their shortest round-trip form
        // (JSON input has no NaN or infinity).
        let text = serde_json::to_string(&v).map_err(E::custom)?;
        self.out.push_str(&text);
        self.check_len()
    }

    fn visit_str<E: de::Error>(mut self, v: &str) -> Result<(), E> {
        self.write_str(v)
    }

    fn visit_unit<E: de::Error>(mut self) -> Result<(), E> {
        self.out.push_str("null");
        self.check_len()
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.check_level()?;
        self.out.push('[');
        let mut first = true;
        loop {
            if !first {
                self.out.push(',');
            }
            if seq.next_element_seed(self.child())?.is_none() {
                if !first {
                    self.out.pop();
                }
                break;
            }
            first = false;
        }
        self.out.push(']');
        self.check_len()
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.check_level()?;
        self.out.push('{');
        let mut first = true;
        loop {
            if !first {
                self.out.push(',');
            }
            let key = KeyText {
                b: &mut *self.b,
                out: &mut *self.out,
            };
            if map.next_key_seed(key)?.is_none() {
                if !first {
                    self.out.pop();
                }
                break;
            }
            first = false;
            map.next_value_seed(self.child())?;
        }
        self.out.push('}');
        self.check_len()
    }
}

/// Writes an object key inside an array as `"key":`.
struct KeyText<'b, 'o, 'l> {
    b: &'b mut RecordBuilder<'l>,
    out: &'o mut String,
}

impl<'de> DeserializeSeed<'de> for KeyText<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyText<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        let limit = self.b.limits.max_string_bytes;
        if v.len() > limit {
            return Err(self.b.fail(Problem::KeyTooLong { limit }, true));
        }
        write_json_string(self.out, v);
        self.out.push(':');
        if self.out.len() > limit {
            return Err(self.b.fail(Problem::ArrayTooLong { limit }, true));
        }
        Ok(())
    }
}

/// Appends `s` as a JSON string literal, escaped exactly as serde_json
/// escapes it (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other control
/// characters as `\u00xx`; everything else as is).
pub(crate) fn write_json_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &c) in bytes.iter().enumerate() {
        let short = match c {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if short.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(c >> 4)]));
            out.push(char::from(HEX[usize::from(c & 0xf)]));
        } else {
            out.push_str(short);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_serde_json() {
        let mut all = String::new();
        for c in 0u32..0x80 {
            all.push(char::from_u32(c).unwrap());
        }
        all.push_str("é€😀\u{2028}");
        let mut ours = String::new();
        write_json_string(&mut ours, &all);
        assert_eq!(ours, serde_json::to_string(&all).unwrap());
    }
}
