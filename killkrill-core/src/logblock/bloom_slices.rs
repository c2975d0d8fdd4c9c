//! The token filters of up to 64 blocks, bit-sliced: one test per group.
//!
//! A full-text query over a day tests every block's [`Bloom`] filter (≈2,400
//! for 10M records); a token in no block costs about two cache misses per
//! filter, scattered over tens of megabytes, plus the walk to each filter.
//! [`BloomSlices`] stores, for each bit position of a common width, one
//! 64-bit word whose bit `j` says whether member `j`'s filter has that bit
//! set (the layout of BitFunnel's bit-sliced signatures). A key's probes then
//! read `k` words for the whole group, and their AND is the set of members
//! that may hold it — usually none after a few words.
//!
//! Filters are sized per block, so members are *resampled* to the group's
//! width `M`: position `p` of the group stands for the member bits its
//! probes could have hit, `⌊p·b/M⌋ ..= ⌊((p+1)·b − 1)/M⌋` for a member of `b`
//! bits (the probe reduction `⌊h·bits/2⁶⁴⌋` is monotone in `bits`), and is
//! set when any of them is. The group tests the first `k` probes with `k`
//! the smallest of its members'. So a member whose filter may hold a key is
//! always a candidate — the slices never say no when the filter would say
//! yes. For filters [`Bloom::with_capacity`] sizes (powers of two, one `k`
//! per false-positive target) the resampling is exact; other sizes pass
//! more keys than their own filter would. Filters of older builds (probes
//! `h mod bits`) cannot be resampled: those members are always candidates.

use super::Bloom;

/// Most members of a group.
pub const GROUP_MEMBERS: usize = 64;

/// Bit-sliced token filters of up to [`GROUP_MEMBERS`] blocks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BloomSlices {
    /// Width every member is resampled to, in bits (a multiple of 64).
    width: u64,
    /// Probes tested: the smallest `k` of the resampled members.
    k: u8,
    /// One word per bit position.
    words: Vec<u64>,
    /// Members represented in `words`.
    sliced: u64,
    /// Members that are always candidates (no filter, or one that cannot
    /// be resampled).
    always: u64,
    /// Sliced members the slices answer for exactly as their own filter
    /// (a power-of-two divisor of the width, the group's `k`, or empty).
    exact: u64,
}

impl BloomSlices {
    /// Slices `filters` (member `j` is `filters[j]`; `None`: no filter, an
    /// always-candidate). The width is the largest member's, unless that is
    /// over twice the members' mean: then the outsized members are folded
    /// (correct, less selective), so the slices take at most about twice
    /// the members' bytes. Filters sized by [`Bloom::with_capacity`] are
    /// powers of two with the same `k`, so resampling is exact: each member
    /// keeps its own false-positive rate. Filters of other sizes (builds
    /// before 2026-11-27) straddle two member bits per position and pass
    /// more keys (about 5% where their own rate is 0.1%).
    ///
    /// # Panics
    /// With more than [`GROUP_MEMBERS`] filters.
    pub fn build(filters: &[Option<&Bloom>]) -> Self {
        assert!(filters.len() <= GROUP_MEMBERS, "at most 64 members");
        let mut out = BloomSlices::default();
        let mut regular: Vec<(usize, &Bloom)> = Vec::with_capacity(filters.len());
        for (j, f) in filters.iter().enumerate() {
            match f {
                Some(b) if !b.is_modulo() => {
                    out.sliced |= 1 << j;
                    if b.bits() > 0 {
                        regular.push((j, b));
                    }
                }
                _ => out.always |= 1 << j,
            }
        }
        out.exact = out.sliced;
        if regular.is_empty() {
            return out;
        }
        let width = Self::width_of(regular.iter().map(|(_, b)| b.bits()));
        out.width = width;
        out.k = regular.iter().map(|(_, b)| b.k()).min().unwrap_or(1);
        for (j, b) in &regular {
            if b.bits() > width || width % b.bits() != 0 || b.k() != out.k {
                out.exact &= !(1 << j);
            }
        }
        let cols = (width / 64) as usize;
        out.words = vec![0u64; width as usize];
        let mut row = vec![0u64; cols];
        // Column `c` of 64 positions is a 64×64 tile, rows are members:
        // transposed in place, row `r` becomes position `64c + r`.
        for (j, b) in regular {
            resample(b, width, &mut row);
            for (c, w) in row.iter().enumerate() {
                out.words[c * 64 + j] = *w;
            }
        }
        for tile in out.words.chunks_exact_mut(64) {
            let tile: &mut [u64; 64] = tile.try_into().expect("64 words");
            transpose64(tile);
        }
        out
    }

    /// The width members of `bits` (non-empty filters) are resampled to:
    /// the largest, unless over twice the mean (then a power of two near
    /// that: the outsized are folded).
    fn width_of(bits: impl Iterator<Item = u64> + Clone) -> u64 {
        let n = bits.clone().count() as u64;
        if n == 0 {
            return 0;
        }
        let max = bits.clone().max().unwrap_or(64);
        let cap = 2 * bits.sum::<u64>() / n;
        let width = if max <= cap {
            max
        } else if cap.is_power_of_two() {
            cap
        } else {
            cap.next_power_of_two() / 2
        };
        width.max(64).div_ceil(64) * 64
    }

    /// Bytes [`build`](Self::build) would take for `filters` (to check a
    /// budget before building).
    pub fn planned_bytes(filters: &[Option<&Bloom>]) -> usize {
        let bits = filters
            .iter()
            .flatten()
            .filter(|b| !b.is_modulo() && b.bits() > 0)
            .map(|b| b.bits());
        Self::width_of(bits) as usize * 8 + std::mem::size_of::<Self>()
    }

    /// Members the slices answer for exactly as their own filter would: a
    /// member of [`candidates`](Self::candidates) outside this set may still
    /// be ruled out by its own filter.
    pub fn exact(&self) -> u64 {
        self.exact
    }

    /// The members whose filter may hold every key of `keys` (bit `j` for
    /// member `j`); every member for no keys.
    pub fn candidates(&self, keys: &[u64]) -> u64 {
        if keys.is_empty() {
            return self.sliced | self.always;
        }
        let mut mask = if self.width == 0 { 0 } else { self.sliced };
        for &key in keys {
            if mask == 0 {
                break;
            }
            let (mut h, step) = Bloom::probes(key);
            for _ in 0..self.k {
                let p = ((u128::from(h) * u128::from(self.width)) >> 64) as usize;
                mask &= self.words[p];
                if mask == 0 {
                    break;
                }
                h = h.wrapping_add(step);
            }
        }
        mask | self.always
    }

    /// Bytes held.
    pub fn byte_len(&self) -> usize {
        self.words.len() * 8 + std::mem::size_of::<Self>()
    }
}

/// `b` resampled to `width` bits into `row` (`width / 64` words): bit `p`
/// set when any bit of `b` a probe landing on `p` could have hit is.
fn resample(b: &Bloom, width: u64, row: &mut [u64]) {
    row.fill(0);
    let bits = b.bits();
    if bits == width {
        row.copy_from_slice(b.words());
        return;
    }
    let words = b.words();
    // lo = ⌊p·bits/width⌋ and rem = p·bits mod width, stepped per position.
    let (step_q, step_r) = (bits / width, bits % width);
    let (mut lo, mut rem) = (0u64, 0u64);
    for p in 0..width {
        let (mut next_lo, mut next_rem) = (lo + step_q, rem + step_r);
        if next_rem >= width {
            next_rem -= width;
            next_lo += 1;
        }
        // ⌊((p+1)·bits − 1)/width⌋
        let hi = if next_rem == 0 { next_lo - 1 } else { next_lo };
        if any_set(words, lo, hi) {
            row[(p / 64) as usize] |= 1 << (p % 64);
        }
        (lo, rem) = (next_lo, next_rem);
    }
}

/// Whether any bit in `lo..=hi` of `words` is set.
#[inline]
fn any_set(words: &[u64], lo: u64, hi: u64) -> bool {
    let (wl, wh) = ((lo / 64) as usize, (hi / 64) as usize);
    let low_mask = !0u64 << (lo % 64);
    let high_mask = !0u64 >> (63 - hi % 64);
    if wl == wh {
        return words[wl] & low_mask & high_mask != 0;
    }
    words[wl] & low_mask != 0
        || words[wl + 1..wh].iter().any(|&w| w != 0)
        || words[wh] & high_mask != 0
}

/// Transposes a 64×64 bit matrix in place: bit `c` of row `r` becomes bit
/// `r` of row `c`.
fn transpose64(m: &mut [u64; 64]) {
    let mut j = 32;
    let mut mask: u64 = 0x0000_0000_FFFF_FFFF;
    while j != 0 {
        let mut k = 0;
        while k < 64 {
            let t = ((m[k] >> j) ^ m[k + j]) & mask;
            m[k] ^= t << j;
            m[k + j] ^= t;
            k = (k + j + 1) & !j;
        }
        j >>= 1;
        mask ^= mask << j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logblock::token_hash;

    fn filter(keys: std::ops::Range<usize>, tag: &str, fp: f64) -> Bloom {
        let mut b = Bloom::with_capacity(keys.len(), fp);
        for i in keys {
            b.insert(token_hash(format!("{tag}{i}").as_bytes()));
        }
        b
    }

    #[test]
    fn transpose_moves_every_bit() {
        let mut m = [0u64; 64];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for r in &mut m {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *r = x;
        }
        let orig = m;
        transpose64(&mut m);
        for (r, row) in orig.iter().enumerate() {
            for (c, col) in m.iter().enumerate() {
                assert_eq!((row >> c) & 1, (col >> r) & 1, "({r},{c})");
            }
        }
    }

    /// Members of different sizes (smaller, equal, larger than the width,
    /// empty), an old-format filter and a missing one: for every key of
    /// every member and many keys of none, a member whose own filter may
    /// hold the keys is a candidate, and the slices rule out most others.
    #[test]
    fn never_rules_out_what_a_member_filter_allows() {
        // Mostly 0.1% filters (k = 10); every 10th at 1% (k = 7, so the
        // group tests 7 probes); every 7th of a size that is no power of two
        // (as builds of 2026-11-26 wrote them: one group bit spans two of
        // its bits).
        let mut filters: Vec<Bloom> = (0..60)
            .map(|j| {
                let n = 200 + (j * 37) % 900;
                let keys = j * 1000..j * 1000 + n;
                if j % 7 == 3 {
                    let mut bytes = vec![0x8A, 0xC0, 0xEA, 0x01]; // k 10, 30,016 bits
                    bytes.extend(std::iter::repeat_n(0u8, 30_016 / 8));
                    let mut b = Bloom::from_bytes(&bytes).unwrap();
                    for i in keys {
                        b.insert(token_hash(format!("k{i}").as_bytes()));
                    }
                    b
                } else {
                    filter(keys, "k", if j % 10 == 5 { 0.01 } else { 0.001 })
                }
            })
            .collect();
        filters.push(filter(0..5_000, "big", 0.001)); // folded (~7x the mean)
        filters.push(Bloom::with_capacity(0, 0.01)); // empty
        let old = Bloom::from_bytes(&{
            // `k` without the multiply flag: an old-format filter.
            let mut v = vec![3u8, 0x80, 0x01];
            v.extend(std::iter::repeat_n(0u8, 16));
            v
        })
        .unwrap();
        assert!(old.is_modulo());
        let mut refs: Vec<Option<&Bloom>> = filters.iter().map(Some).collect();
        refs.push(Some(&old));
        refs.push(None);
        let s = BloomSlices::build(&refs);
        assert!(s.width > 0 && s.width.is_multiple_of(64));
        assert_eq!(s.k, 7);
        // Exact: power-of-two divisors of the width with the group's k, and
        // the empty filter; not the 30,016-bit ones, the folded, the old.
        for (j, f) in refs.iter().enumerate() {
            let exact = f.is_some_and(|b| {
                b.bits() == 0 || (!b.is_modulo() && b.k() == 7 && s.width.is_multiple_of(b.bits()))
            });
            assert_eq!(s.exact() & (1 << j) != 0, exact, "member {j}");
        }
        assert_eq!(s.exact() & (1 << 60), 0, "folded");
        assert_ne!(s.exact() & (1 << 5), 0, "a 1% member");
        let check = |keys: &[u64]| {
            let got = s.candidates(keys);
            for (j, f) in refs.iter().enumerate() {
                let may = f.is_none_or(|b| b.is_modulo() || keys.iter().all(|&k| b.may_contain(k)));
                if may {
                    assert_ne!(got & (1 << j), 0, "member {j} ruled out for {keys:?}");
                }
            }
            got
        };
        let (mut spurious, mut tried) = (0u32, 0u32);
        for j in 0..60 {
            for i in (j * 1000..j * 1000 + 200).step_by(7) {
                let key = token_hash(format!("k{i}").as_bytes());
                let got = check(&[key]);
                assert_ne!(got & (1 << j), 0);
                // A key and a token of nobody: only false positives.
                check(&[key, token_hash(b"nobody-has-this")]);
            }
        }
        for i in 0..5_000 {
            check(&[token_hash(format!("big{i}").as_bytes())]);
            let got = check(&[token_hash(format!("absent{i}").as_bytes())]);
            // The always-candidates, and false positives.
            let always = (1u64 << 62) | (1 << 63);
            assert_eq!(got & always, always);
            spurious += (got & !always).count_ones();
            tried += 62;
        }
        // Members up to the width keep about their own filter's rate
        // (0.1%); the folded ones are less selective (in this deliberately
        // uneven group, 200 to 1,100 keys and one of 5,000: about 6%).
        let rate = f64::from(spurious) / f64::from(tried);
        assert!(rate < 0.10, "false-positive rate {rate}");
        assert_eq!(s.candidates(&[]), u64::MAX);
    }

    /// Members sized by `with_capacity` (powers of two, one `k`): the
    /// slices answer exactly as the members' own filters, keys of theirs
    /// and of nobody.
    #[test]
    fn power_of_two_members_are_exact_and_empty_groups_hold_nothing() {
        let a = filter(0..500, "a", 0.01);
        let b = filter(0..500, "b", 0.01);
        let c = filter(0..1_000, "c", 0.01);
        let d = filter(0..90, "d", 0.01);
        assert_eq!(a.bits(), b.bits());
        assert!(c.bits() > a.bits() && d.bits() < a.bits());
        let members = [&a, &b, &c, &d];
        let s = BloomSlices::build(&members.map(Some));
        for tag in ["x", "a", "c", "d"] {
            for i in 0..5_000 {
                let key = token_hash(format!("{tag}{i}").as_bytes());
                let want = members
                    .iter()
                    .enumerate()
                    .map(|(j, m)| u64::from(m.may_contain(key)) << j)
                    .sum::<u64>();
                assert_eq!(s.candidates(&[key]), want, "{tag}{i}");
            }
        }
        let e = BloomSlices::build(&[]);
        assert_eq!(e.candidates(&[1]), 0);
        let only_empty = Bloom::with_capacity(0, 0.01);
        let e = BloomSlices::build(&[Some(&only_empty), None]);
        assert_eq!(e.candidates(&[1]), 0b10);
        assert_eq!(e.candidates(&[]), 0b11);
    }
}
