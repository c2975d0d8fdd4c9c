//! The sample chunk codec: delta-of-delta timestamps and Gorilla XOR values.
//!
//! Why this codec: it is what Prometheus, VictoriaMetrics (in spirit) and
//! Facebook's Gorilla use for exactly this data. Regular scrapes make the
//! delta-of-delta of timestamps 0 (one bit per timestamp) and slowly changing
//! values XOR to a few meaningful bits, so a typical sample takes 1–3 bytes
//! instead of 16, and values go through as raw IEEE-754 bits: NaN payloads
//! (Prometheus' staleness marker `0x7ff0000000000002`), signed zeros and
//! ±Inf come back bit for bit.
//!
//! Layout: a version byte, a unit byte, the sample count as a LEB128 varint,
//! then a bit stream (most significant bit first):
//! - timestamps are divided by the unit (1 s, 1 ms, 1 µs or 1 ns: the
//!   largest that divides every timestamp of the chunk; Prometheus sends
//!   milliseconds, so jitter costs few bits);
//! - sample 0: 64-bit timestamp, 64-bit value;
//! - then per sample, the timestamp as delta-of-delta (the first delta is
//!   taken against 0): `0` for 0; `10` + 14 bits, `110` + 24 bits,
//!   `1110` + 36 bits (two's complement) or `1111` + 64 bits;
//! - and the value XORed with the previous one: `0` for equal; `10` + the
//!   meaningful bits when they fit the previous leading/trailing-zero
//!   window; else `11` + 5 bits of leading zeros + 6 bits of (length − 1) +
//!   the meaningful bits.
//!
//! All arithmetic wraps, so any sequence of timestamps round-trips (chunks
//! hold sorted, unique ones, but the codec does not rely on it). Decoding
//! validates untrusted input and never panics.

/// Current chunk encoding version.
const VERSION: u8 = 1;
/// Timestamp units, by code.
const UNITS: [i64; 4] = [1, 1_000, 1_000_000, 1_000_000_000];

/// A chunk that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt sample chunk: {0}")]
pub struct ChunkDecodeError(pub &'static str);

struct BitWriter {
    buf: Vec<u8>,
    /// Bits used in the last byte; 0 means the next bit starts a new byte.
    used: u32,
}

impl BitWriter {
    #[inline]
    fn put(&mut self, value: u64, bits: u32) {
        let mut remaining = bits;
        while remaining > 0 {
            if self.used == 0 {
                self.buf.push(0);
            }
            let free = 8 - self.used;
            let take = remaining.min(free);
            let chunk = ((value >> (remaining - take)) & ((1u64 << take) - 1)) as u8;
            if let Some(last) = self.buf.last_mut() {
                *last |= chunk << (free - take);
            }
            self.used = (self.used + take) % 8;
            remaining -= take;
        }
    }

    #[inline]
    fn bit(&mut self, b: bool) {
        self.put(u64::from(b), 1);
    }
}

struct BitReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn remaining(&self) -> usize {
        self.buf.len() * 8 - self.pos
    }

    #[inline]
    fn get(&mut self, bits: u32) -> Result<u64, ChunkDecodeError> {
        if bits as usize > self.remaining() {
            return Err(ChunkDecodeError("truncated bit stream"));
        }
        let mut out = 0u64;
        let mut remaining = bits;
        while remaining > 0 {
            let byte = self.buf[self.pos / 8];
            let off = (self.pos % 8) as u32;
            let avail = 8 - off;
            let take = remaining.min(avail);
            let chunk = (byte >> (avail - take)) & (((1u16 << take) - 1) as u8);
            out = (out << take) | u64::from(chunk);
            self.pos += take as usize;
            remaining -= take;
        }
        Ok(out)
    }

    #[inline]
    fn bit(&mut self) -> Result<bool, ChunkDecodeError> {
        Ok(self.get(1)? == 1)
    }
}

fn fits(v: i64, bits: u32) -> bool {
    let lim = 1i64 << (bits - 1);
    (-lim..lim).contains(&v)
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

fn unit_of(ts: &[i64]) -> u8 {
    for code in (1..UNITS.len()).rev() {
        if ts.iter().all(|t| t % UNITS[code] == 0) {
            return code as u8;
        }
    }
    0
}

/// Encodes `(timestamp ns, value)` points.
pub fn encode_samples(points: &[(i64, f64)]) -> Vec<u8> {
    let ts: Vec<i64> = points.iter().map(|p| p.0).collect();
    let unit = unit_of(&ts);
    let div = UNITS[unit as usize];
    let mut w = BitWriter {
        buf: Vec::with_capacity(8 + points.len() * 2),
        used: 0,
    };
    w.buf.push(VERSION);
    w.buf.push(unit);
    let mut n = points.len() as u64;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            w.buf.push(b);
            break;
        }
        w.buf.push(b | 0x80);
    }
    let (mut prev_t, mut prev_d, mut prev_v) = (0i64, 0i64, 0u64);
    let (mut lead, mut trail) = (u32::MAX, 0u32);
    for (i, &(t, v)) in points.iter().enumerate() {
        let t = t / div;
        let v = v.to_bits();
        if i == 0 {
            w.put(t as u64, 64);
            w.put(v, 64);
        } else {
            let d = t.wrapping_sub(prev_t);
            let dod = d.wrapping_sub(prev_d);
            if dod == 0 {
                w.bit(false);
            } else if fits(dod, 14) {
                w.put(0b10, 2);
                w.put(dod as u64, 14);
            } else if fits(dod, 24) {
                w.put(0b110, 3);
                w.put(dod as u64, 24);
            } else if fits(dod, 36) {
                w.put(0b1110, 4);
                w.put(dod as u64, 36);
            } else {
                w.put(0b1111, 4);
                w.put(dod as u64, 64);
            }
            prev_d = d;
            let x = v ^ prev_v;
            if x == 0 {
                w.bit(false);
            } else {
                let l = x.leading_zeros().min(31);
                let tz = x.trailing_zeros();
                if lead != u32::MAX && l >= lead && tz >= trail {
                    w.put(0b10, 2);
                    w.put(x >> trail, 64 - lead - trail);
                } else {
                    lead = l;
                    trail = tz;
                    let sig = 64 - l - tz;
                    w.put(0b11, 2);
                    w.put(u64::from(l), 5);
                    w.put(u64::from(sig - 1), 6);
                    w.put(x >> tz, sig);
                }
            }
        }
        prev_t = t;
        prev_v = v;
    }
    w.buf
}

/// Decodes a chunk into `(timestamp ns, value)` points, appending to `out`.
///
/// # Errors
/// [`ChunkDecodeError`] for an unknown version or unit, a count the data
/// cannot hold, a truncated stream or more than 7 bits of trailing padding.
pub fn decode_samples(data: &[u8], out: &mut Vec<(i64, f64)>) -> Result<(), ChunkDecodeError> {
    let [version, unit, rest @ ..] = data else {
        return Err(ChunkDecodeError("shorter than its header"));
    };
    if *version != VERSION {
        return Err(ChunkDecodeError("unknown version"));
    }
    let div = *UNITS
        .get(usize::from(*unit))
        .ok_or(ChunkDecodeError("unknown timestamp unit"))?;
    let mut n = 0u64;
    let mut shift = 0u32;
    let mut i = 0usize;
    loop {
        let b = *rest.get(i).ok_or(ChunkDecodeError("truncated count"))?;
        i += 1;
        if shift > 56 {
            return Err(ChunkDecodeError("count varint too long"));
        }
        n |= u64::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            break;
        }
    }
    let mut r = BitReader {
        buf: &rest[i..],
        pos: 0,
    };
    if n == 0 {
        return if r.buf.is_empty() {
            Ok(())
        } else {
            Err(ChunkDecodeError("trailing bytes"))
        };
    }
    // Every sample after the first takes at least two bits.
    if n.saturating_sub(1).saturating_mul(2).saturating_add(128) > r.remaining() as u64 {
        return Err(ChunkDecodeError("count larger than the data"));
    }
    out.reserve(n as usize);
    let mut t = r.get(64)? as i64;
    let mut v = r.get(64)?;
    out.push((t.wrapping_mul(div), f64::from_bits(v)));
    let mut d = 0i64;
    let (mut lead, mut trail) = (u32::MAX, 0u32);
    for _ in 1..n {
        let dod = if !r.bit()? {
            0
        } else if !r.bit()? {
            sign_extend(r.get(14)?, 14)
        } else if !r.bit()? {
            sign_extend(r.get(24)?, 24)
        } else if !r.bit()? {
            sign_extend(r.get(36)?, 36)
        } else {
            r.get(64)? as i64
        };
        d = d.wrapping_add(dod);
        t = t.wrapping_add(d);
        if r.bit()? {
            let x = if !r.bit()? {
                if lead == u32::MAX {
                    return Err(ChunkDecodeError("value window used before it was set"));
                }
                r.get(64 - lead - trail)? << trail
            } else {
                lead = r.get(5)? as u32;
                let sig = r.get(6)? as u32 + 1;
                if lead + sig > 64 {
                    return Err(ChunkDecodeError("value window wider than 64 bits"));
                }
                trail = 64 - lead - sig;
                r.get(sig)? << trail
            };
            v ^= x;
        }
        out.push((t.wrapping_mul(div), f64::from_bits(v)));
    }
    if r.remaining() >= 8 {
        return Err(ChunkDecodeError("trailing bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STALE: u64 = 0x7ff0_0000_0000_0002;

    fn round_trip(points: &[(i64, f64)]) -> Vec<u8> {
        let data = encode_samples(points);
        let mut out = Vec::new();
        decode_samples(&data, &mut out).unwrap();
        let bits = |v: &[(i64, f64)]| v.iter().map(|p| (p.0, p.1.to_bits())).collect::<Vec<_>>();
        assert_eq!(bits(&out), bits(points));
        data
    }

    #[test]
    fn special_values_keep_their_bits() {
        let specials = [
            f64::from_bits(STALE),
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            f64::MAX,
            5e-324,
        ];
        let pts: Vec<(i64, f64)> = specials
            .iter()
            .enumerate()
            .map(|(i, v)| (i as i64 * 15_000_000_000, *v))
            .collect();
        round_trip(&pts);
        round_trip(&[]);
        round_trip(&[(i64::MIN, 1.0), (i64::MAX, 2.0), (0, 3.0), (i64::MIN, 4.0)]);
    }

    #[test]
    fn regular_scrapes_are_small() {
        let pts: Vec<(i64, f64)> = (0..120)
            .map(|i| {
                (
                    1_764_000_000_000_000_000 + i * 15_000_000_000,
                    1000.0 + (i / 10) as f64,
                )
            })
            .collect();
        let data = round_trip(&pts);
        assert!(data.len() < 120 * 2, "{} bytes for 120 samples", data.len());
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let data = encode_samples(&[(1, 1.0), (2, 2.0), (4, 7.5)]);
        let mut out = Vec::new();
        for cut in 0..data.len() {
            assert!(decode_samples(&data[..cut], &mut out).is_err(), "cut {cut}");
        }
        let mut long = data.clone();
        long.push(0);
        assert!(decode_samples(&long, &mut out).is_err());
        assert!(decode_samples(&[9, 0, 0], &mut out).is_err());
        assert!(decode_samples(&[1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f], &mut out).is_err());
    }

    fn arb_value() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            (0u64..1000).prop_map(|v| v as f64),
            Just(f64::from_bits(STALE)),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
        ]
    }

    fn arb_ts() -> impl Strategy<Value = i64> {
        prop_oneof![
            any::<i64>(),
            (0i64..10_000).prop_map(|v| v * 1_000_000),
            (0i64..10_000).prop_map(|v| v * 15_000_000_000 + 7),
        ]
    }

    proptest! {
        #[test]
        fn any_points_round_trip(mut pts in prop::collection::vec((arb_ts(), arb_value()), 0..300), sort in any::<bool>()) {
            if sort {
                pts.sort_by_key(|p| p.0);
            }
            round_trip(&pts);
        }

        #[test]
        fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut out = Vec::new();
            let _ = decode_samples(&data, &mut out);
        }
    }
}
