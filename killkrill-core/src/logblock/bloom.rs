//! A plain bloom filter over 64-bit hashes, sized per block.
//!
//! Each block sizes its own filter from its number of distinct keys and a
//! target false-positive rate, so a block of repetitive messages gets a small
//! filter and a block full of request ids a big one. Probe positions come
//! from one 64-bit hash by Kirsch–Mitzenmacher double hashing
//! (`h1 + i·h2`), which is as good as k independent hashes for this use.
//!
//! A probe `h` picks bit `⌊h · bits / 2⁶⁴⌋` (a multiply and a shift).
//! Filters written before 2026-11-26 picked bit `h mod bits`: a 64-bit
//! division per probe, ten probes per key at the default 0.1% target, which
//! was a large share of the encoder's time (see
//! docs/src/benchmarks/storage.md). Both still read; new filters use the
//! multiply.
//!
//! Serialised form: one byte — `k`, plus 0x80 for the multiply reduction —,
//! bit count (varint), then the bit array as little-endian 64-bit words.

use super::BlockError;
use super::wire::{Reader, put_u64};

/// A bloom filter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bloom {
    k: u8,
    bits: u64,
    words: Vec<u64>,
    /// Probe reduction: `h mod bits` (filters of older builds) when set.
    modulo: bool,
}

/// Flag in the serialised `k` byte: probes use the multiply reduction.
const MULTIPLY: u8 = 0x80;

/// Largest filter accepted when decoding (bits): 64 Mbit = 8 MiB.
const MAX_BITS: u64 = 1 << 26;

impl Bloom {
    /// A filter for `n` distinct keys at false-positive rate about `fp`
    /// (e.g. 0.01).
    ///
    /// The size is a power of two — the smallest at or above ¾ of the
    /// optimal `n·ln(1/fp)/ln²2` bits — and `k` is `log2(1/fp)` whatever
    /// the size, so every filter built for the same `fp` probes the same
    /// way and filters of different blocks line up bit for bit (a filter of
    /// `2ʲ` bits is a prefix-reduction of one of `2ᴶ`: the multiply
    /// reduction makes bit `p` of the bigger one bit `p >> (J−j)` of the
    /// smaller). That is what lets the summary index slice 64 blocks'
    /// filters into one exact group filter
    /// ([`BloomSlices`](super::BloomSlices)). The price: the size is
    /// between 0.75 and 1.5 times the optimum, so with `k` fixed the rate
    /// is between about 0.005% and 0.65% at the default 0.1%.
    pub fn with_capacity(n: usize, fp: f64) -> Self {
        if n == 0 {
            return Bloom::default();
        }
        let fp = fp.clamp(1e-6, 0.5);
        let ln2 = std::f64::consts::LN_2;
        let optimal = (-(n as f64) * fp.ln()) / (ln2 * ln2);
        let bits = ((0.75 * optimal).ceil() as u64)
            .clamp(64, MAX_BITS)
            .next_power_of_two();
        let k = (-fp.log2()).round().clamp(1.0, 16.0) as u8;
        Bloom {
            k,
            bits,
            words: vec![0u64; (bits / 64) as usize],
            modulo: false,
        }
    }

    /// The bit probe `h` sets.
    #[inline]
    fn bit(&self, h: u64) -> u64 {
        if self.modulo {
            h % self.bits
        } else {
            ((u128::from(h) * u128::from(self.bits)) >> 64) as u64
        }
    }

    /// Adds a key by its hash.
    #[inline]
    pub fn insert(&mut self, hash: u64) {
        if self.bits == 0 {
            return;
        }
        let (mut h, step) = Self::probes(hash);
        for _ in 0..self.k {
            let bit = self.bit(h);
            self.words[(bit / 64) as usize] |= 1 << (bit % 64);
            h = h.wrapping_add(step);
        }
    }

    /// Whether the key may have been added (false means certainly not).
    #[inline]
    pub fn may_contain(&self, hash: u64) -> bool {
        if self.bits == 0 {
            return false;
        }
        let (mut h, step) = Self::probes(hash);
        for _ in 0..self.k {
            let bit = self.bit(h);
            if self.words[(bit / 64) as usize] & (1 << (bit % 64)) == 0 {
                return false;
            }
            h = h.wrapping_add(step);
        }
        true
    }

    /// Probes per key.
    pub fn k(&self) -> u8 {
        self.k
    }

    /// Size of the bit array in bits.
    pub fn bits(&self) -> u64 {
        self.bits
    }

    /// Whether probes use `h mod bits` (filters of older builds).
    pub fn is_modulo(&self) -> bool {
        self.modulo
    }

    pub(super) fn words(&self) -> &[u64] {
        &self.words
    }

    /// First probe and step of `hash`'s probe sequence (`h1 + i·h2`).
    #[inline]
    pub(super) fn probes(hash: u64) -> (u64, u64) {
        // Second hash: a multiplicative remix; forced odd so it never sticks.
        let h2 = (hash.rotate_left(32).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
        (hash, h2)
    }

    /// Size of the bit array in bytes.
    pub fn byte_len(&self) -> usize {
        self.words.len() * 8
    }

    /// Appends the serialised form.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(if self.modulo {
            self.k
        } else {
            self.k | MULTIPLY
        });
        put_u64(out, self.bits);
        out.reserve(self.words.len() * 8);
        for w in &self.words {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, BlockError> {
        let flags = r.u8()?;
        let (k, modulo) = (flags & !MULTIPLY, flags & MULTIPLY == 0);
        let bits = r.u64()?;
        if bits % 64 != 0 || bits > MAX_BITS || (bits > 0 && k == 0) || k > 16 {
            return Err(r.err(format!("bloom with {bits} bits and k={k}")));
        }
        let raw = r.take((bits / 8) as usize)?;
        let words = raw
            .chunks_exact(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                u64::from_le_bytes(a)
            })
            .collect();
        Ok(Bloom {
            k,
            bits,
            words,
            modulo,
        })
    }

    /// Decodes a filter written by [`write`](Self::write).
    ///
    /// # Errors
    /// [`BlockError::Corrupt`] when the bytes are not a filter.
    pub fn from_bytes(b: &[u8]) -> Result<Self, BlockError> {
        let mut r = Reader::new(b, "bloom");
        let f = Self::read(&mut r)?;
        if !r.is_empty() {
            return Err(r.err("trailing bytes"));
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logblock::token_hash;

    #[test]
    fn no_false_negatives_and_bounded_false_positives() {
        let n = 5_000;
        let mut b = Bloom::with_capacity(n, 0.01);
        for i in 0..n {
            b.insert(token_hash(format!("tok{i}").as_bytes()));
        }
        for i in 0..n {
            assert!(b.may_contain(token_hash(format!("tok{i}").as_bytes())));
        }
        let fp = (0..100_000)
            .filter(|i| b.may_contain(token_hash(format!("other{i}").as_bytes())))
            .count();
        assert!(fp < 1_500, "false positives {fp} of 100000 at target 1%");
        let back = {
            let mut out = Vec::new();
            b.write(&mut out);
            Bloom::from_bytes(&out).unwrap()
        };
        assert_eq!(back, b);
    }

    /// A filter as builds before the multiply reduction wrote it: `k`
    /// without the flag, probes `h mod bits`.
    fn old_format(keys: &[u64], k: u8, bits: u64) -> Vec<u8> {
        let mut words = vec![0u64; (bits / 64) as usize];
        for &key in keys {
            let (mut h, step) = Bloom::probes(key);
            for _ in 0..k {
                let bit = h % bits;
                words[(bit / 64) as usize] |= 1 << (bit % 64);
                h = h.wrapping_add(step);
            }
        }
        let mut out = vec![k];
        put_u64(&mut out, bits);
        for w in &words {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    #[test]
    fn filters_of_older_builds_still_answer() {
        let keys: Vec<u64> = (0..2_000)
            .map(|i| token_hash(format!("tok{i}").as_bytes()))
            .collect();
        let bytes = old_format(&keys, 10, 30_016);
        let b = Bloom::from_bytes(&bytes).unwrap();
        assert!(keys.iter().all(|&k| b.may_contain(k)));
        let fp = (0..100_000)
            .filter(|i| b.may_contain(token_hash(format!("other{i}").as_bytes())))
            .count();
        assert!(fp < 300, "false positives {fp} of 100000 at ~0.1%");
        // Written back byte for byte.
        let mut out = Vec::new();
        b.write(&mut out);
        assert_eq!(out, bytes);
        // The new reduction sets other bits for the same keys.
        let mut new = Bloom::with_capacity(keys.len(), 0.001);
        for &k in &keys {
            new.insert(k);
        }
        let mut new_bytes = Vec::new();
        new.write(&mut new_bytes);
        assert_eq!(new_bytes[0], new.k | MULTIPLY);
        assert_ne!(new.words, b.words);
        assert_eq!(Bloom::from_bytes(&new_bytes).unwrap(), new);
    }

    #[test]
    fn empty_filter_contains_nothing_and_bad_bytes_are_errors() {
        let b = Bloom::with_capacity(0, 0.01);
        assert!(!b.may_contain(1));
        let mut out = Vec::new();
        b.write(&mut out);
        assert_eq!(Bloom::from_bytes(&out).unwrap(), b);
        assert!(Bloom::from_bytes(&[7, 64, 0]).is_err());
        assert!(Bloom::from_bytes(&[7, 65]).is_err());
    }
}
