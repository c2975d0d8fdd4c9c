//! An exact sum of `f64` values: the piece that makes rollup merging exact.
//!
//! Floating-point addition is not associative: `(a + b) + c` and
//! `a + (b + c)` can differ in the last bit, and with values of very
//! different magnitude by far more (`1e308 + 1e308 - 1e308`). A rollup whose
//! sum is a plain `f64` therefore depends on how its samples were split into
//! partials and in which order the partials were merged — exactly what the
//! redelivery and restart guarantees rule out.
//!
//! [`ExactSum`] keeps the *exact* real sum of every value added, as a
//! fixed-point integer in units of 2⁻¹⁰⁷⁴ (the smallest subnormal), stored in
//! signed 64-bit limbs of 32 bits each with deferred carries (the
//! "superaccumulator" of Neal, 2015). Only the limbs the values actually touch
//! are allocated — metric values of one series usually span two to four limbs
//! — and [`ExactSum::value`] rounds the exact sum once, correctly (round to
//! nearest, ties to even). Adding and merging are therefore associative and
//! commutative bit for bit, and the result is the best `f64` there is.
//!
//! Only finite values are accepted; the engine counts and skips NaN and ±Inf
//! before they get here.

use std::cmp::Ordering;

/// Bits per limb digit.
const LIMB_BITS: u32 = 32;
/// Mask of one limb digit.
const LIMB_MASK: i64 = (1 << LIMB_BITS) - 1;
/// After this many un-normalised additions a carry pass runs, so that no
/// limb can overflow (each addition changes a limb by less than 2³²).
const CARRY_EVERY: u32 = 1 << 30;
/// The exponent of bit 0 of limb 0.
const UNIT_EXP: i64 = -1074;
/// Highest limb index a finite sum can reach: 2098 value bits plus 64 bits of
/// count headroom, in 32-bit limbs.
pub(crate) const MAX_LIMB: i32 = 68;

/// The exact sum of finite `f64` values, rounded once on read.
#[derive(Clone, Default)]
pub struct ExactSum {
    /// Limb `i` weighs `2^(32 * (base + i) - 1074)`.
    limbs: Vec<i64>,
    /// Index of `limbs[0]` in the full limb range.
    base: i32,
    /// Additions since the last carry pass (a bound on limb magnitudes in
    /// units of 2³²).
    pending: u32,
    /// While `limbs` is empty, the sum is exactly this one value (or zero):
    /// most partial rollups hold one sample, and this spares them an
    /// allocation.
    single: Option<f64>,
}

impl ExactSum {
    /// Zero.
    pub const fn new() -> Self {
        ExactSum {
            limbs: Vec::new(),
            base: 0,
            pending: 0,
            single: None,
        }
    }

    /// Adds a finite value exactly. Non-finite values are ignored in release
    /// builds (callers filter them; debug builds assert).
    #[inline]
    pub fn add(&mut self, x: f64) {
        debug_assert!(x.is_finite(), "ExactSum::add({x})");
        if self.limbs.is_empty() {
            match self.single.take() {
                None => {
                    self.single = Some(x);
                    return;
                }
                Some(y) => self.add_limbs(y),
            }
        }
        self.add_limbs(x);
    }

    /// Adds a finite value to the limbs.
    #[inline]
    fn add_limbs(&mut self, x: f64) {
        let bits = x.to_bits();
        let exp_field = ((bits >> 52) & 0x7ff) as i64;
        let frac = bits & ((1u64 << 52) - 1);
        if exp_field == 0x7ff {
            return;
        }
        let (mant, pos) = if exp_field == 0 {
            (frac, 0i64)
        } else {
            (frac | (1u64 << 52), exp_field - 1)
        };
        if mant == 0 {
            return;
        }
        let limb = (pos / LIMB_BITS as i64) as i32;
        let shift = (pos % LIMB_BITS as i64) as u32;
        let wide = (mant as u128) << shift;
        let chunks = [
            (wide as i64) & LIMB_MASK,
            ((wide >> 32) as i64) & LIMB_MASK,
            (wide >> 64) as i64,
        ];
        self.ensure(limb, limb + 2);
        let at = (limb - self.base) as usize;
        let negative = bits >> 63 == 1;
        for (i, c) in chunks.into_iter().enumerate() {
            if negative {
                self.limbs[at + i] -= c;
            } else {
                self.limbs[at + i] += c;
            }
        }
        self.pending += 1;
        if self.pending >= CARRY_EVERY {
            self.carry();
        }
    }

    /// Adds another exact sum (exactly).
    pub fn merge(&mut self, other: &ExactSum) {
        if let Some(y) = other.single {
            self.add(y);
        }
        if other.limbs.is_empty() {
            return;
        }
        if let Some(y) = self.single.take() {
            self.add_limbs(y);
        }
        if self.pending.saturating_add(other.pending) >= CARRY_EVERY {
            self.carry();
        }
        let lo = other.base;
        let hi = other.base + other.limbs.len() as i32 - 1;
        self.ensure(lo, hi);
        let at = (lo - self.base) as usize;
        for (i, l) in other.limbs.iter().enumerate() {
            self.limbs[at + i] += l;
        }
        self.pending += other.pending.max(1);
        if self.pending >= CARRY_EVERY {
            self.carry();
        }
    }

    /// The exact sum rounded to the nearest `f64` (ties to even); ±Inf when
    /// its magnitude exceeds `f64::MAX` after rounding.
    pub fn value(&self) -> f64 {
        if self.limbs.is_empty() {
            // `+ 0.0` turns a lone -0.0 into 0.0, as the limbs would.
            return self.single.map_or(0.0, |v| v + 0.0);
        }
        let (base, limbs) = self.canonical();
        let Some(&top) = limbs.last() else {
            return 0.0;
        };
        if top < 0 {
            let mut neg: Vec<i64> = limbs.iter().map(|l| -l).collect();
            let mut b = base;
            normalize(&mut b, &mut neg);
            -magnitude_to_f64(b, &neg)
        } else {
            magnitude_to_f64(base, &limbs)
        }
    }

    /// The canonical form: limbs below the top in `0..2^32`, the top limb
    /// signed and non-zero, no zero limbs at either end. Two sums are equal
    /// exactly when their canonical forms are.
    pub(crate) fn canonical(&self) -> (i32, Vec<i64>) {
        if let Some(y) = self.single {
            let mut t = ExactSum::new();
            t.add_limbs(y);
            return t.canonical();
        }
        let mut limbs = self.limbs.clone();
        let mut base = self.base;
        normalize(&mut base, &mut limbs);
        (base, limbs)
    }

    /// Rebuilds a sum from a canonical form (decoding). The caller has
    /// validated the ranges.
    pub(crate) fn from_canonical(base: i32, limbs: Vec<i64>) -> Self {
        ExactSum {
            limbs,
            base,
            pending: 1,
            single: None,
        }
    }

    /// Makes limbs `lo..=hi` addressable.
    #[inline]
    fn ensure(&mut self, lo: i32, hi: i32) {
        if self.limbs.is_empty() {
            // Room for values a few binades apart without reallocating.
            self.limbs.reserve(6);
            self.base = lo;
            self.limbs.resize((hi - lo + 1) as usize, 0);
            return;
        }
        if lo < self.base {
            let grow = (self.base - lo) as usize;
            self.limbs.splice(0..0, std::iter::repeat_n(0, grow));
            self.base = lo;
        }
        let top = self.base + self.limbs.len() as i32 - 1;
        if hi > top {
            self.limbs.resize(self.limbs.len() + (hi - top) as usize, 0);
        }
    }

    /// Propagates carries in place.
    fn carry(&mut self) {
        normalize(&mut self.base, &mut self.limbs);
        self.pending = 1;
    }
}

/// Brings limbs to canonical form (see [`ExactSum::canonical`]).
fn normalize(base: &mut i32, limbs: &mut Vec<i64>) {
    let n = limbs.len();
    for i in 0..n.saturating_sub(1) {
        let c = limbs[i] >> LIMB_BITS;
        limbs[i] -= c << LIMB_BITS;
        limbs[i + 1] += c;
    }
    // The top limb holds the sign; split off what does not fit in 32 bits.
    while let Some(&top) = limbs.last() {
        let c = top >> LIMB_BITS;
        if c == 0 || c == -1 {
            break;
        }
        let last = limbs.len() - 1;
        limbs[last] = top - (c << LIMB_BITS);
        limbs.push(c);
    }
    // Fold a top of 0 or -1 into the limb below it.
    while limbs.len() >= 2 {
        let top = limbs[limbs.len() - 1];
        if top != 0 && top != -1 {
            break;
        }
        limbs.pop();
        let last = limbs.len() - 1;
        limbs[last] += top << LIMB_BITS;
    }
    if limbs.len() == 1 && limbs[0] == 0 {
        limbs.clear();
    }
    let zeros = limbs.iter().take_while(|l| **l == 0).count();
    if zeros > 0 {
        limbs.drain(..zeros);
        *base += zeros as i32;
    }
    if limbs.is_empty() {
        *base = 0;
    }
}

/// Rounds a non-negative canonical magnitude to `f64`.
fn magnitude_to_f64(base: i32, limbs: &[i64]) -> f64 {
    let n = limbs.len();
    let take = n.min(3);
    let mut acc: u128 = 0;
    for l in limbs[n - take..].iter().rev() {
        acc = (acc << LIMB_BITS) | (*l as u64 as u128);
    }
    let sticky = limbs[..n - take].iter().any(|l| *l != 0);
    let acc_exp = (base as i64 + (n - take) as i64) * LIMB_BITS as i64 + UNIT_EXP;
    let bit_len = 128 - acc.leading_zeros() as i64;
    let (mut mant, mut exp) = if bit_len <= 53 {
        (acc as u64, acc_exp)
    } else {
        let shift = (bit_len - 53) as u32;
        let kept = (acc >> shift) as u64;
        let rem = acc & ((1u128 << shift) - 1);
        let half = 1u128 << (shift - 1);
        let up = match rem.cmp(&half) {
            Ordering::Greater => true,
            Ordering::Equal => sticky || kept & 1 == 1,
            Ordering::Less => false,
        };
        let mut m = kept + u64::from(up);
        let mut e = acc_exp + shift as i64;
        if m == 1 << 53 {
            m >>= 1;
            e += 1;
        }
        (m, e)
    };
    if mant == 0 {
        return 0.0;
    }
    // Normalise the mantissa to 53 bits; a subnormal result is exact here
    // because every input is a multiple of 2^-1074.
    let lz = mant.leading_zeros() as i64 - 11;
    mant <<= lz;
    exp -= lz;
    if exp < UNIT_EXP {
        mant >>= (UNIT_EXP - exp) as u32;
        return f64::from_bits(mant);
    }
    let biased = exp + 1075;
    if biased <= 0 {
        // Cannot happen for exp >= -1074 with a 53-bit mantissa; keep total.
        return f64::from_bits(mant >> 1);
    }
    if biased >= 0x7ff {
        return f64::INFINITY;
    }
    f64::from_bits(((biased as u64) << 52) | (mant & ((1u64 << 52) - 1)))
}

impl PartialEq for ExactSum {
    fn eq(&self, other: &Self) -> bool {
        self.canonical() == other.canonical()
    }
}

impl Eq for ExactSum {}

impl std::fmt::Debug for ExactSum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExactSum({:e})", self.value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sum(xs: &[f64]) -> f64 {
        let mut s = ExactSum::new();
        for x in xs {
            s.add(*x);
        }
        s.value()
    }

    #[test]
    fn exact_cases() {
        let tiny = f64::from_bits(1);
        let cases: &[(&[f64], f64)] = &[
            (&[], 0.0),
            (&[0.0, -0.0], 0.0),
            (&[1.0, 2.0, 3.5], 6.5),
            (&[0.1, 0.2], 0.30000000000000004),
            (&[0.1, 0.2, -0.3], 2.7755575615628914e-17),
            (&[1e308, 1e308, -1e308], 1e308),
            (&[1e308, 1e308], f64::INFINITY),
            (&[-1e308, -1e308], f64::NEG_INFINITY),
            (&[1.0, 1e-300, -1.0], 1e-300),
            (&[tiny, tiny, tiny], 3.0 * tiny),
            (&[f64::MIN_POSITIVE, -tiny], f64::MIN_POSITIVE - tiny),
            (&[1.0, -1.0], 0.0),
            (&[-5.0, 2.0], -3.0),
            (&[2f64.powi(53), 1.0], 2f64.powi(53)),
            (&[2f64.powi(53), 1.0, 1.0], 2f64.powi(53) + 2.0),
            (&[2f64.powi(53), 1.0, 1e-30], 2f64.powi(53) + 2.0),
            (&[f64::MAX, f64::MAX, -f64::MAX], f64::MAX),
            (&[-0.5, -0.25], -0.75),
        ];
        for (xs, want) in cases {
            assert_eq!(sum(xs).to_bits(), want.to_bits(), "{xs:?}");
        }
    }

    #[test]
    fn many_additions_trigger_carries() {
        let mut s = ExactSum::new();
        for _ in 0..3_000_000 {
            s.add(4294967295.0);
            s.add(-1.5);
        }
        assert_eq!(s.value(), 3_000_000.0 * 4294967293.5);
    }

    fn dyadic() -> impl Strategy<Value = (i32, i32)> {
        (any::<i32>(), -60i32..28)
    }

    proptest! {
        /// Against an independent exact reference: dyadic values m·2^k sum
        /// exactly in i128 fixed point with 60 fractional bits (k < 28 keeps the
        /// total below 2^127), and Rust's
        /// i128→f64 conversion rounds to nearest even.
        #[test]
        fn matches_fixed_point_reference(vals in proptest::collection::vec(dyadic(), 0..200)) {
            let mut fixed: i128 = 0;
            let mut s = ExactSum::new();
            for (m, k) in &vals {
                let x = (*m as f64) * 2f64.powi(*k);
                s.add(x);
                fixed += (*m as i128) << (k + 60);
            }
            let want = (fixed as f64) * 2f64.powi(-60);
            prop_assert_eq!(s.value().to_bits(), want.to_bits());
        }

        #[test]
        fn merge_is_exact_for_any_split(
            vals in proptest::collection::vec(any::<f64>().prop_filter("finite", |x| x.is_finite()), 0..100),
            cut in any::<prop::sample::Index>(),
        ) {
            let cut = if vals.is_empty() { 0 } else { cut.index(vals.len() + 1) };
            let mut whole = ExactSum::new();
            for x in &vals { whole.add(*x); }
            let (mut a, mut b) = (ExactSum::new(), ExactSum::new());
            for x in &vals[..cut] { a.add(*x); }
            for x in vals[cut..].iter().rev() { b.add(*x); }
            let mut ba = b.clone();
            ba.merge(&a);
            a.merge(&b);
            prop_assert_eq!(&a, &whole);
            prop_assert_eq!(&ba, &whole);
            prop_assert_eq!(a.value().to_bits(), whole.value().to_bits());
        }
    }
}
