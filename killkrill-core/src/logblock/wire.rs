//! Varints, zigzag and length-prefixed strings: the byte-level vocabulary of
//! block payloads and summaries.
//!
//! Reading never panics and never trusts a length: every read is checked
//! against the remaining input, so a damaged payload is an error that names
//! the offset, not a crash or a huge allocation.

use super::BlockError;

/// Appends `v` as an unsigned LEB128 varint.
#[inline]
pub(crate) fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Zigzag-maps a signed value so small magnitudes give small varints.
#[inline]
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline]
pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends a varint length and the bytes.
#[inline]
pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u64(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A bounds-checked cursor over bytes.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn err(&self, detail: impl Into<String>) -> BlockError {
        BlockError::corrupt(self.what, self.pos, detail)
    }

    #[inline]
    pub(crate) fn u64(&mut self) -> Result<u64, BlockError> {
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err("varint runs past the end"));
            };
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(self.err("varint longer than 64 bits"));
            }
            v |= u64::from(b & 0x7F) << shift;
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(self.err("varint longer than 64 bits"));
            }
        }
    }

    /// A varint that must be at most `max` (a count or a length).
    #[inline]
    pub(crate) fn len(&mut self, max: usize) -> Result<usize, BlockError> {
        let v = self.u64()?;
        if v > max as u64 {
            return Err(self.err(format!("length {v} exceeds {max}")));
        }
        Ok(v as usize)
    }

    #[inline]
    pub(crate) fn u8(&mut self) -> Result<u8, BlockError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| self.err("byte runs past the end"))?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], BlockError> {
        if self.buf.len() - self.pos < n {
            return Err(self.err(format!("{n} bytes run past the end")));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], BlockError> {
        let n = self.len(self.buf.len() - self.pos)?;
        self.take(n)
    }

    #[inline]
    pub(crate) fn str(&mut self) -> Result<&'a str, BlockError> {
        let at = self.pos;
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|_| BlockError::corrupt(self.what, at, "invalid UTF-8"))
    }

    pub(crate) fn f64(&mut self) -> Result<f64, BlockError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_and_bounds() {
        let cases = [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX];
        let mut out = Vec::new();
        for v in cases {
            put_u64(&mut out, v);
        }
        let mut r = Reader::new(&out, "test");
        for v in cases {
            assert_eq!(r.u64().unwrap(), v);
        }
        assert!(r.is_empty());
        assert!(Reader::new(&[0x80], "t").u64().is_err());
        assert!(Reader::new(&[0xFF; 11], "t").u64().is_err());
        assert!(Reader::new(&[5, b'a'], "t").bytes().is_err());
        assert!(Reader::new(&[2, 0xFF, 0xFE], "t").str().is_err());
    }

    #[test]
    fn zigzag_round_trip() {
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -1000] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }
}
