//! The primitives of the batch format: LEB128 varints, zigzag, length-prefixed
//! bytes and strings, and a bounds-checked reader over untrusted input.
//!
//! The reader never indexes past its slice and never allocates more than the
//! input could possibly hold: a length or count is checked against the bytes
//! that remain before anything is reserved, so a 10-byte input cannot make the
//! decoder allocate gigabytes.

use super::CodecError;

/// Appends primitives to a byte vector.
pub(super) struct Writer<'a> {
    pub(super) out: &'a mut Vec<u8>,
}

impl Writer<'_> {
    #[inline]
    pub(super) fn u8(&mut self, b: u8) {
        self.out.push(b);
    }

    #[inline]
    pub(super) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    #[inline]
    pub(super) fn varint128(&mut self, mut v: u128) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    #[inline]
    pub(super) fn zigzag(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }

    #[inline]
    pub(super) fn zigzag128(&mut self, v: i128) {
        self.varint128(((v << 1) ^ (v >> 127)) as u128);
    }

    #[inline]
    pub(super) fn len(&mut self, n: usize) {
        self.varint(n as u64);
    }

    #[inline]
    pub(super) fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.out.extend_from_slice(b);
    }

    #[inline]
    pub(super) fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// `None` as 0, `Some(s)` as `len + 1` followed by the bytes.
    #[inline]
    pub(super) fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.varint(s.len() as u64 + 1);
                self.out.extend_from_slice(s.as_bytes());
            }
        }
    }

    #[inline]
    pub(super) fn f64(&mut self, v: f64) {
        self.out.extend_from_slice(&v.to_bits().to_le_bytes());
    }
}

/// Reads primitives from untrusted bytes; every failure names the offset.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(super) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    fn truncated(&self, expected: &'static str) -> CodecError {
        CodecError::Truncated {
            offset: self.pos,
            expected,
        }
    }

    pub(super) fn invalid(&self, at: usize, what: &'static str) -> CodecError {
        CodecError::Invalid { offset: at, what }
    }

    #[inline]
    pub(super) fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        let b = *self.buf.get(self.pos).ok_or_else(|| self.truncated(what))?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    pub(super) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        if n > self.remaining() {
            return Err(self.truncated(what));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    pub(super) fn varint(&mut self, what: &'static str) -> Result<u64, CodecError> {
        let start = self.pos;
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8(what)?;
            let bits = u64::from(b & 0x7F);
            if shift == 63 && bits > 1 {
                return Err(self.invalid(start, "varint longer than 64 bits"));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.invalid(start, "varint longer than 64 bits"))
    }

    pub(super) fn varint128(&mut self, what: &'static str) -> Result<u128, CodecError> {
        let start = self.pos;
        let mut v: u128 = 0;
        for shift in (0..128).step_by(7) {
            let b = self.u8(what)?;
            let bits = u128::from(b & 0x7F);
            if shift == 126 && bits > 3 {
                return Err(self.invalid(start, "varint longer than 128 bits"));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.invalid(start, "varint longer than 128 bits"))
    }

    #[inline]
    pub(super) fn zigzag(&mut self, what: &'static str) -> Result<i64, CodecError> {
        let v = self.varint(what)?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    pub(super) fn zigzag128(&mut self, what: &'static str) -> Result<i128, CodecError> {
        let v = self.varint128(what)?;
        Ok(((v >> 1) as i128) ^ -((v & 1) as i128))
    }

    /// A count of items that each take at least `min_item_bytes` bytes:
    /// rejected when the rest of the input could not hold that many, so a
    /// caller may reserve capacity for it.
    #[inline]
    pub(super) fn count(
        &mut self,
        min_item_bytes: usize,
        what: &'static str,
    ) -> Result<usize, CodecError> {
        let at = self.pos;
        let n = self.varint(what)?;
        let max = (self.remaining() / min_item_bytes.max(1)) as u64;
        if n > max {
            return Err(self.invalid(at, what));
        }
        Ok(n as usize)
    }

    #[inline]
    pub(super) fn len(&mut self, what: &'static str) -> Result<usize, CodecError> {
        let at = self.pos;
        let n = self.varint(what)?;
        if n > self.remaining() as u64 {
            return Err(CodecError::Truncated {
                offset: at,
                expected: what,
            });
        }
        Ok(n as usize)
    }

    #[inline]
    pub(super) fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], CodecError> {
        let n = self.len(what)?;
        self.take(n, what)
    }

    #[inline]
    pub(super) fn string(&mut self, what: &'static str) -> Result<String, CodecError> {
        self.str(what).map(str::to_owned)
    }

    /// A length-prefixed UTF-8 string, borrowed from the input.
    #[inline]
    pub(super) fn str(&mut self, what: &'static str) -> Result<&'a str, CodecError> {
        let at = self.pos;
        let b = self.bytes(what)?;
        std::str::from_utf8(b).map_err(|_| self.invalid(at, what))
    }

    #[inline]
    pub(super) fn opt_string(&mut self, what: &'static str) -> Result<Option<String>, CodecError> {
        let at = self.pos;
        let n = self.varint(what)?;
        if n == 0 {
            return Ok(None);
        }
        let n = n - 1;
        if n > self.remaining() as u64 {
            return Err(CodecError::Truncated {
                offset: at,
                expected: what,
            });
        }
        let b = self.take(n as usize, what)?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(Some(s.to_owned())),
            Err(_) => Err(self.invalid(at, what)),
        }
    }

    #[inline]
    pub(super) fn f64(&mut self, what: &'static str) -> Result<f64, CodecError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_bits(u64::from_le_bytes(a)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            Writer { out: &mut out }.varint(v);
            assert_eq!(Reader::new(&out).varint("v").unwrap(), v, "{v}");
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            Writer { out: &mut out }.zigzag(v);
            assert_eq!(Reader::new(&out).zigzag("v").unwrap(), v, "{v}");
        }
        for v in [0i128, -1, i128::MIN, i128::MAX] {
            let mut out = Vec::new();
            Writer { out: &mut out }.zigzag128(v);
            assert_eq!(Reader::new(&out).zigzag128("v").unwrap(), v, "{v}");
        }
    }

    #[test]
    fn overlong_and_truncated_varints_are_errors() {
        let eleven = [0xFFu8; 11];
        assert!(matches!(
            Reader::new(&eleven).varint("v"),
            Err(CodecError::Invalid { offset: 0, .. })
        ));
        // 10th byte may only carry one bit.
        let mut too_big = [0xFFu8; 10];
        too_big[9] = 0x02;
        assert!(Reader::new(&too_big).varint("v").is_err());
        assert!(matches!(
            Reader::new(&[0x80]).varint("v"),
            Err(CodecError::Truncated { offset: 1, .. })
        ));
    }

    #[test]
    fn counts_and_lengths_are_checked_against_the_input() {
        // Claims 1000 items in 3 bytes.
        let mut out = Vec::new();
        Writer { out: &mut out }.varint(1000);
        out.extend_from_slice(&[0, 0, 0]);
        assert!(Reader::new(&out).count(1, "items").is_err());
        // Claims a 5-byte string with 2 bytes left.
        assert!(matches!(
            Reader::new(&[5, b'a', b'b']).string("s"),
            Err(CodecError::Truncated { offset: 0, .. })
        ));
        assert!(matches!(
            Reader::new(&[2, 0xff, 0xfe]).string("host"),
            Err(CodecError::Invalid {
                offset: 0,
                what: "host"
            })
        ));
    }
}
