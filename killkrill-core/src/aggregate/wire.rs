//! The binary primitives of the stored sketch and rollup blobs.
//!
//! Sketches and rollups are stored as blobs in rollup rows on three
//! databases and read back by every worker and query server, including ones
//! running a different Killkrill version, so the encoding is explicit
//! (little-endian, LEB128 varints, zig-zag for signed numbers) rather than
//! whatever a serde format happens to do. The reader treats its input as
//! untrusted: every read is bounds-checked and every error names the byte
//! offset and what was expected there, and nothing in here can panic.

/// A blob could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {blob} blob at byte {offset}: {what}")]
pub struct DecodeError {
    /// Which kind of blob (`sketch`, `rollup`).
    pub blob: &'static str,
    /// Byte offset of the first byte that does not fit.
    pub offset: usize,
    /// What was expected there, or which limit was exceeded.
    pub what: String,
}

/// Appends primitives to a byte vector.
pub(crate) struct Writer<'a>(pub(crate) &'a mut Vec<u8>);

impl Writer<'_> {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    pub(crate) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    pub(crate) fn zigzag(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }

    pub(crate) fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_bits().to_le_bytes());
    }

    pub(crate) fn u32_le(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
}

/// Reads primitives from untrusted bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    blob: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], blob: &'static str) -> Self {
        Reader { buf, pos: 0, blob }
    }

    /// The current offset.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// An error at `offset`.
    pub(crate) fn error_at(&self, offset: usize, what: impl Into<String>) -> DecodeError {
        DecodeError {
            blob: self.blob,
            offset,
            what: what.into(),
        }
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        match self.buf.get(self.pos) {
            Some(b) => {
                self.pos += 1;
                Ok(*b)
            }
            None => Err(self.error_at(self.pos, format!("{what}: unexpected end of input"))),
        }
    }

    pub(crate) fn varint(&mut self, what: &str) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.u8(what)?;
            if i == 9 && b > 1 {
                return Err(self.error_at(start, format!("{what}: varint longer than 64 bits")));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.error_at(start, format!("{what}: varint longer than 10 bytes")))
    }

    /// A varint that must be at most `max`.
    pub(crate) fn bounded(&mut self, what: &str, max: u64) -> Result<u64, DecodeError> {
        let start = self.pos;
        let v = self.varint(what)?;
        if v > max {
            return Err(self.error_at(start, format!("{what} {v} exceeds the limit {max}")));
        }
        Ok(v)
    }

    pub(crate) fn zigzag(&mut self, what: &str) -> Result<i64, DecodeError> {
        let v = self.varint(what)?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    pub(crate) fn f64(&mut self, what: &str) -> Result<f64, DecodeError> {
        let bytes = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(bytes);
        Ok(f64::from_bits(u64::from_le_bytes(a)))
    }

    /// A finite `f64`.
    pub(crate) fn finite(&mut self, what: &str) -> Result<f64, DecodeError> {
        let start = self.pos;
        let v = self.f64(what)?;
        if !v.is_finite() {
            return Err(self.error_at(start, format!("{what}: expected a finite number")));
        }
        Ok(v)
    }

    pub(crate) fn u32_le(&mut self, what: &str) -> Result<u32, DecodeError> {
        let bytes = self.take(4, what)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(bytes);
        Ok(u32::from_le_bytes(a))
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        match self.buf.get(self.pos..self.pos + n) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(self.error_at(self.pos, format!("{what}: unexpected end of input"))),
        }
    }

    /// Checks the two-byte header (kind tag, version).
    pub(crate) fn header(&mut self, tag: u8, version: u8) -> Result<(), DecodeError> {
        let t = self.u8("type tag")?;
        if t != tag {
            return Err(self.error_at(0, format!("expected type tag {tag:#04x}, found {t:#04x}")));
        }
        let v = self.u8("version")?;
        if v != version {
            return Err(self.error_at(
                1,
                format!("unsupported version {v} (this build reads {version})"),
            ));
        }
        Ok(())
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.pos != self.buf.len() {
            return Err(self.error_at(
                self.pos,
                format!("{} trailing bytes", self.buf.len() - self.pos),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_and_errors() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            Writer(&mut b).varint(v);
            let mut r = Reader::new(&b, "test");
            assert_eq!(r.varint("v").unwrap(), v);
            r.finish().unwrap();
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -123456789] {
            let mut b = Vec::new();
            Writer(&mut b).zigzag(v);
            assert_eq!(Reader::new(&b, "test").zigzag("v").unwrap(), v);
        }
        let cases: &[(&[u8], &str)] = &[
            (
                &[0x80],
                "invalid test blob at byte 1: v: unexpected end of input",
            ),
            (
                &[0xff; 11],
                "invalid test blob at byte 0: v: varint longer than 64 bits",
            ),
            (
                &[],
                "invalid test blob at byte 0: v: unexpected end of input",
            ),
        ];
        for (bytes, want) in cases {
            let e = Reader::new(bytes, "test").varint("v").unwrap_err();
            assert_eq!(e.to_string(), *want);
        }
    }
}
