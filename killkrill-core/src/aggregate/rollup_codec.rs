//! The stored form of a rollup: one versioned blob with everything needed to
//! merge it again exactly (the exact sum's limbs, first/last, counter
//! segments and the sketch), so partials written by one worker version can be
//! merged by another. Decoding validates untrusted input and never panics.

use super::counter::{CounterState, Point, Segment};
use super::exact_sum::{ExactSum, MAX_LIMB};
use super::rollup::Rollup;
use super::sketch::DdSketch;
use super::wire::{DecodeError, Reader, Writer};
use crate::event::Timestamp;

/// Type tag of an encoded rollup.
const TAG: u8 = 0xd0;
/// Current rollup encoding version.
const VERSION: u8 = 1;
/// Flag bit: a sketch follows.
const HAS_SKETCH: u8 = 1;
/// Flag bit: the segment has a `prev` point.
const HAS_PREV: u8 = 1;

impl Rollup {
    /// The compact, versioned binary form (the blob stored in rollup rows).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        let mut w = Writer(&mut out);
        w.u8(TAG);
        w.u8(VERSION);
        w.u8(if self.sketch.is_some() { HAS_SKETCH } else { 0 });
        w.varint(self.count);
        exact_sum(&mut w, &self.sum);
        w.f64(self.min);
        w.f64(self.max);
        point(&mut w, self.first);
        point(&mut w, self.last);
        w.varint(self.counter.out_of_order);
        w.varint(self.counter.segments.len() as u64);
        for s in &self.counter.segments {
            w.u8(if s.prev.is_some() { HAS_PREV } else { 0 });
            if let Some(p) = s.prev {
                point(&mut w, p);
            }
            point(&mut w, s.first);
            point(&mut w, s.last);
            w.varint(s.resets);
            exact_sum(&mut w, &s.correction);
        }
        if let Some(sk) = &self.sketch {
            sk.encode_into(&mut out);
        }
        out
    }

    /// Decodes and validates a rollup from untrusted bytes.
    ///
    /// # Errors
    /// [`DecodeError`] naming the byte offset when the input is truncated,
    /// has trailing bytes, an unknown tag, version or flag, non-finite or
    /// inconsistent values (min above max, first after last, more segments
    /// than samples), an exact sum outside its range, or a bad sketch.
    pub fn from_bytes(bytes: &[u8]) -> Result<Rollup, DecodeError> {
        let mut r = Reader::new(bytes, "rollup");
        r.header(TAG, VERSION)?;
        let at = r.pos();
        let flags = r.u8("flags")?;
        if flags & !HAS_SKETCH != 0 {
            return Err(r.error_at(at, format!("unknown flags {flags:#04x}")));
        }
        let at = r.pos();
        let count = r.varint("count")?;
        if count == 0 {
            return Err(r.error_at(at, "count must be at least 1"));
        }
        let sum = read_exact_sum(&mut r)?;
        let at = r.pos();
        let min = r.finite("min")?;
        let max = r.finite("max")?;
        if min.total_cmp(&max).is_gt() {
            return Err(r.error_at(at, "min is greater than max"));
        }
        let at = r.pos();
        let first = read_point(&mut r)?;
        let last = read_point(&mut r)?;
        if first.total_cmp(&last).is_gt() {
            return Err(r.error_at(at, "first is after last"));
        }
        let out_of_order = r.bounded("out-of-order count", count)?;
        let n = r.bounded("segment count", count - out_of_order)? as usize;
        let mut segments = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let at = r.pos();
            let f = r.u8("segment flags")?;
            if f & !HAS_PREV != 0 {
                return Err(r.error_at(at, format!("unknown segment flags {f:#04x}")));
            }
            let prev = if f & HAS_PREV != 0 {
                Some(read_point(&mut r)?)
            } else {
                None
            };
            let at = r.pos();
            let sfirst = read_point(&mut r)?;
            let slast = read_point(&mut r)?;
            if sfirst.total_cmp(&slast).is_gt() {
                return Err(r.error_at(at, "segment first is after its last"));
            }
            let resets = r.bounded("resets", count)?;
            let correction = read_exact_sum(&mut r)?;
            segments.push(Segment {
                prev,
                first: sfirst,
                last: slast,
                correction,
                resets,
            });
        }
        let sketch = if flags & HAS_SKETCH != 0 {
            let at = r.pos();
            let s = DdSketch::decode(&mut r)?;
            if s.count() != count {
                return Err(r.error_at(
                    at,
                    format!("sketch holds {} values, rollup {count}", s.count()),
                ));
            }
            Some(s)
        } else {
            None
        };
        r.finish()?;
        Ok(Rollup {
            count,
            sum,
            min,
            max,
            first,
            last,
            counter: CounterState {
                segments,
                out_of_order,
            },
            sketch,
        })
    }
}

fn point(w: &mut Writer<'_>, p: Point) {
    w.zigzag(p.timestamp.as_nanos());
    w.f64(p.value);
}

fn read_point(r: &mut Reader<'_>) -> Result<Point, DecodeError> {
    let t = r.zigzag("timestamp")?;
    let v = r.finite("value")?;
    Ok(Point::new(Timestamp::from_nanos(t), v))
}

/// Canonical limbs: count, base, the lower limbs as u32, the signed top.
fn exact_sum(w: &mut Writer<'_>, s: &ExactSum) {
    let (base, limbs) = s.canonical();
    w.varint(limbs.len() as u64);
    if let Some((top, lower)) = limbs.split_last() {
        w.zigzag(i64::from(base));
        for l in lower {
            w.u32_le(*l as u32);
        }
        w.zigzag(*top);
    }
}

fn read_exact_sum(r: &mut Reader<'_>) -> Result<ExactSum, DecodeError> {
    let max = MAX_LIMB as u64 + 2;
    let n = r.bounded("exact sum limbs", max)? as usize;
    if n == 0 {
        return Ok(ExactSum::new());
    }
    let at = r.pos();
    let base = r.zigzag("exact sum base")?;
    if base < 0 || base as u64 + n as u64 > max {
        return Err(r.error_at(
            at,
            format!(
                "exact sum limbs {base}..{} outside 0..{max}",
                base + n as i64
            ),
        ));
    }
    let mut limbs = Vec::with_capacity(n);
    for _ in 1..n {
        limbs.push(i64::from(r.u32_le("exact sum limb")?));
    }
    let at_top = r.pos();
    let top = r.zigzag("exact sum top limb")?;
    let top_ok = (-(1i64 << 32)..(1i64 << 32)).contains(&top) && top != 0 && (n == 1 || top != -1);
    if !top_ok {
        return Err(r.error_at(at_top, "exact sum top limb is not canonical"));
    }
    limbs.push(top);
    if limbs[0] == 0 {
        return Err(r.error_at(at, "exact sum lowest limb is zero (not canonical)"));
    }
    Ok(ExactSum::from_canonical(base as i32, limbs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::sketch::SketchParams;

    fn sample() -> Rollup {
        let pts = [
            (1, 5.0),
            (2, 8.5),
            (3, 2.0),
            (2, 1.0),
            (4, -1e300),
            (5, 1e-300),
        ]
        .map(|(t, v)| Point::new(Timestamp::from_secs(t), v));
        Rollup::from_points(pts, Some(SketchParams::default())).unwrap()
    }

    #[test]
    fn round_trip_and_every_truncation_fails() {
        for r in [
            sample(),
            Rollup::from_points([Point::new(Timestamp::EPOCH, 0.0)], None).unwrap(),
        ] {
            let b = r.to_bytes();
            assert_eq!(Rollup::from_bytes(&b).unwrap(), r);
            for n in 0..b.len() {
                assert!(Rollup::from_bytes(&b[..n]).is_err(), "prefix {n}");
            }
        }
    }

    #[test]
    fn rejects_bad_fields() {
        let good = sample().to_bytes();
        let mut flags = good.clone();
        flags[2] = 0x80;
        let mut zero = good.clone();
        zero[3] = 0;
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (flags, "byte 2: unknown flags 0x80"),
            (zero, "byte 3: count must be at least 1"),
            (
                vec![0xd0, 1, 0, 1, 1],
                "exact sum base: unexpected end of input",
            ),
            (
                vec![0xd0, 1, 0, 1, 1, 200, 1],
                "exact sum limbs 100..101 outside 0..70",
            ),
            (
                vec![0xd0, 1, 0, 1, 80],
                "exact sum limbs 80 exceeds the limit 70",
            ),
        ];
        for (bytes, want) in cases {
            let e = Rollup::from_bytes(&bytes).unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} lacks {want:?}");
        }
    }
}
