//! A minimal protobuf wire-format reader over a byte slice, for the remote write
//! 1.0 hot path (`v1_reader.rs`): it hands out `&str`s that point into the
//! decompressed body instead of allocating a `String` per label as generated code
//! must. It follows prost's rules exactly (varint limits, key checks, wire-type
//! checks, group skipping with a recursion limit, UTF-8 validation), so both
//! decoders accept and reject the same bytes — a differential fuzz target checks it.

use std::fmt;

/// Wire types.
pub(super) const VARINT: u8 = 0;
pub(super) const FIXED64: u8 = 1;
pub(super) const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// prost's recursion limit.
pub(super) const RECURSION_LIMIT: u32 = 100;

/// Malformed protobuf at a byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct WireError {
    pub what: &'static str,
    pub offset: usize,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.offset)
    }
}

/// Reads fields from one message's bytes.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf` in the whole body, for error positions.
    base: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Absolute offset of the next byte.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub fn err(&self, what: &'static str) -> WireError {
        WireError {
            what,
            offset: self.offset(),
        }
    }

    #[inline]
    pub fn varint(&mut self) -> Result<u64, WireError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err("truncated varint"));
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                if i == 9 && b >= 0x02 {
                    return Err(self.err("varint overflows 64 bits"));
                }
                return Ok(value);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    /// A field key: `(field number, wire type)`.
    #[inline]
    pub fn key(&mut self) -> Result<(u32, u8), WireError> {
        let at = self.offset();
        let key = self.varint()?;
        let bad = |what| WireError { what, offset: at };
        if key > u64::from(u32::MAX) {
            return Err(bad("field key over 32 bits"));
        }
        let wire = (key & 7) as u8;
        if wire > FIXED32 {
            return Err(bad("invalid wire type"));
        }
        let field = (key as u32) >> 3;
        if field == 0 {
            return Err(bad("field number 0"));
        }
        Ok((field, wire))
    }

    /// A length-delimited payload and its absolute offset.
    #[inline]
    pub fn bytes(&mut self) -> Result<(&'a [u8], usize), WireError> {
        let len = self.varint()?;
        if len > (self.buf.len() - self.pos) as u64 {
            return Err(self.err("length past the end of the message"));
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok((&self.buf[start..self.pos], self.base + start))
    }

    /// A UTF-8 string field.
    #[inline]
    pub fn str(&mut self) -> Result<&'a str, WireError> {
        let (b, at) = self.bytes()?;
        std::str::from_utf8(b).map_err(|_| WireError {
            what: "string is not valid UTF-8",
            offset: at,
        })
    }

    #[inline]
    pub fn fixed64(&mut self) -> Result<u64, WireError> {
        let Some(b) = self.buf.get(self.pos..self.pos + 8) else {
            return Err(self.err("truncated 64-bit value"));
        };
        self.pos += 8;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Checks that a known field came with its declared wire type.
    #[inline]
    pub fn expect(&self, got: u8, want: u8) -> Result<(), WireError> {
        if got == want {
            Ok(())
        } else {
            Err(self.err("unexpected wire type for a known field"))
        }
    }

    /// Skips an unknown field. `budget` is the recursion budget left at this depth.
    pub fn skip(&mut self, wire: u8, field: u32, budget: u32) -> Result<(), WireError> {
        if budget == 0 {
            return Err(self.err("recursion limit reached"));
        }
        let len = match wire {
            VARINT => {
                self.varint()?;
                0
            }
            FIXED64 => 8,
            FIXED32 => 4,
            LEN => self.varint()?,
            START_GROUP => loop {
                let (inner, w) = self.key()?;
                if w == END_GROUP {
                    if inner != field {
                        return Err(self.err("unexpected end-group tag"));
                    }
                    break 0;
                }
                self.skip(w, inner, budget - 1)?;
            },
            _ => return Err(self.err("unexpected end-group tag")),
        };
        if len > (self.buf.len() - self.pos) as u64 {
            return Err(self.err("field past the end of the message"));
        }
        self.pos += len as usize;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_like_prost() {
        let cases: &[(&[u8], Result<u64, &str>)] = &[
            (&[0], Ok(0)),
            (&[0x96, 0x01], Ok(150)),
            (
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
                Ok(u64::MAX),
            ),
            (
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
                Err("varint overflows 64 bits"),
            ),
            (&[0x80; 11], Err("varint longer than 10 bytes")),
            (&[0x80], Err("truncated varint")),
        ];
        for (bytes, want) in cases {
            let got = Reader::new(bytes, 0).varint().map_err(|e| e.what);
            assert_eq!(got, *want, "{bytes:?}");
        }
    }

    #[test]
    fn keys_and_skips() {
        assert_eq!(Reader::new(&[0x0a], 0).key(), Ok((1, LEN)));
        assert_eq!(
            Reader::new(&[0x02], 0).key().unwrap_err().what,
            "field number 0"
        );
        assert_eq!(
            Reader::new(&[0x0e], 0).key().unwrap_err().what,
            "invalid wire type"
        );
        // Group 1 holding a varint field 2, then its end.
        let mut r = Reader::new(&[0x10, 0x05, 0x0c, 0x08], 0);
        r.skip(START_GROUP, 1, RECURSION_LIMIT).unwrap();
        assert_eq!(r.varint(), Ok(8));
        let mut r = Reader::new(&[0x14], 0);
        assert_eq!(
            r.skip(START_GROUP, 1, RECURSION_LIMIT).unwrap_err().what,
            "unexpected end-group tag"
        );
        let mut r = Reader::new(&[0x05, 1, 2], 0);
        assert_eq!(
            r.skip(LEN, 1, RECURSION_LIMIT).unwrap_err().what,
            "field past the end of the message"
        );
    }
}
