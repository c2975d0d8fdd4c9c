//! Finding the end of short tokens eight bytes at a time.
//!
//! Syslog fields are short (a host name, an SD-ID, a parameter value) and of
//! varying length, so a byte-at-a-time loop spends most of its time on the
//! mispredicted branch that ends it, and `memchr`'s per-call setup costs more
//! than the search. These functions test eight bytes per step with integer
//! arithmetic ("SWAR"): a token shorter than eight bytes is found in one step
//! whose branch is predictable. Classic bit tricks, no `unsafe`.
//!
//! Each `*_mask` sets the high bit of every byte that matches; the borrow of
//! the subtraction can only set false bits *above* a real match, so the
//! lowest set bit, which is all we use, is exact.

use wide::u8x16;

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Bytes equal to `x`.
#[inline(always)]
pub(crate) const fn eq_mask(v: u64, x: u8) -> u64 {
    let t = v ^ (LO * x as u64);
    t.wrapping_sub(LO) & !t & HI
}

/// Bytes below `x` (for `x <= 0x80`; bytes >= 0x80 never match).
#[inline(always)]
const fn lt_mask(v: u64, x: u8) -> u64 {
    v.wrapping_sub(LO * x as u64) & !v & HI
}

/// Bytes outside printable US-ASCII (33..=126).
#[inline(always)]
const fn non_print_mask(v: u64) -> u64 {
    lt_mask(v, 0x21) | (v & HI) | eq_mask(v, 0x7f)
}

/// The first position in `from..end` whose byte `mask` flags, or `end`
/// (`end <= b.len()`).
#[inline(always)]
fn find(
    b: &[u8],
    from: usize,
    end: usize,
    mask: impl Fn(u64) -> u64,
    byte: impl Fn(u8) -> bool,
) -> usize {
    let mut i = from;
    while i + 8 <= b.len() && i < end {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i..i + 8]);
        let m = mask(u64::from_le_bytes(w));
        if m != 0 {
            return (i + (m.trailing_zeros() / 8) as usize).min(end);
        }
        i += 8;
    }
    while i < end && !byte(b[i]) {
        i += 1;
    }
    i.min(end)
}

/// End of an SD-NAME (printable US-ASCII except `=`, `]`, `"`), at most `end`.
#[inline]
pub(crate) fn sd_name_end(b: &[u8], from: usize, end: usize) -> usize {
    find(
        b,
        from,
        end,
        |v| non_print_mask(v) | eq_mask(v, b'=') | eq_mask(v, b']') | eq_mask(v, b'"'),
        |c| !(33..=126).contains(&c) || matches!(c, b'=' | b']' | b'"'),
    )
}

/// The next `"` or `\` at or after `from`, or `b.len()`.
#[inline]
pub(crate) fn quote_or_backslash(b: &[u8], from: usize) -> usize {
    find(
        b,
        from,
        b.len(),
        |v| eq_mask(v, b'"') | eq_mask(v, b'\\'),
        |c| matches!(c, b'"' | b'\\'),
    )
}

/// The next `x` at or after `from`, at most `end`.
#[inline]
pub(crate) fn byte_end(b: &[u8], from: usize, end: usize, x: u8) -> usize {
    find(b, from, end, |v| eq_mask(v, x), |c| c == x)
}

/// Stop bitmaps of a 64-byte block: bit k describes byte k of the block.
pub(crate) trait Classes: Copy {
    /// Classifies one block (bytes past the input are zero).
    fn of(block: &[u8; 64]) -> Self;

    /// Every mask moved down by `by` bits (`by < 64`), with the bits from
    /// `valid` (< 64) up set: positions past the end of the input.
    fn past_end(self, by: u32, valid: u32) -> Self;
}

/// Equal-to-`x` lanes.
#[inline(always)]
fn eq(v: u8x16, x: u8) -> u8x16 {
    v.simd_eq(u8x16::splat(x))
}

/// Lanes outside printable US-ASCII (33..=126).
#[inline(always)]
fn non_print(v: u8x16) -> u8x16 {
    v.simd_lt(u8x16::splat(0x21)) | v.simd_gt(u8x16::splat(0x7e))
}

/// Applies `f` to the four 16-byte lanes of `block` and joins the masks.
#[inline(always)]
fn join<const N: usize>(block: &[u8; 64], f: impl Fn(u8x16) -> [u8x16; N]) -> [u64; N] {
    let mut out = [0u64; N];
    let (lanes, _) = block.as_chunks::<16>();
    for (k, lane) in lanes.iter().enumerate() {
        let masks = f(u8x16::new(*lane));
        for (o, m) in out.iter_mut().zip(masks) {
            *o |= u64::from(m.to_bitmask()) << (16 * k);
        }
    }
    out
}

/// What RFC 5424's header fields and STRUCTURED-DATA stop at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SdClasses {
    /// Ends an SD-NAME: not printable, `=`, `]` or `"` (a header field
    /// ends at the first of these that is not printable).
    pub name: u64,
    /// Stops a PARAM-VALUE scan: `"`, `\` or `]`.
    pub value: u64,
}

impl Classes for SdClasses {
    #[inline(always)]
    fn of(block: &[u8; 64]) -> Self {
        let [name, value] = join(block, |v| {
            let q = eq(v, b'"') | eq(v, b']');
            [non_print(v) | q | eq(v, b'='), q | eq(v, b'\\')]
        });
        SdClasses { name, value }
    }

    #[inline(always)]
    fn past_end(self, by: u32, valid: u32) -> Self {
        SdClasses {
            name: shift_mask(self.name, by, valid),
            value: shift_mask(self.value, by, valid),
        }
    }
}

/// What an RFC 3164 HOSTNAME or TAG stops at: a byte up to space, `:`,
/// `[` or `]` (bytes above 126 do not stop it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TagClasses {
    /// The stops.
    pub tag: u64,
}

impl Classes for TagClasses {
    #[inline(always)]
    fn of(block: &[u8; 64]) -> Self {
        let [tag] = join(block, |v| {
            [v.simd_lt(u8x16::splat(0x21)) | eq(v, b':') | eq(v, b'[') | eq(v, b']')]
        });
        TagClasses { tag }
    }

    #[inline(always)]
    fn past_end(self, by: u32, valid: u32) -> Self {
        TagClasses {
            tag: shift_mask(self.tag, by, valid),
        }
    }
}

/// A cursor over `b` that classifies 64 bytes at a time (16 per SIMD
/// instruction, through the `wide` crate) and answers "where is the next
/// stop at or after `p`" with a shift and a count of trailing zeros.
///
/// Why: the byte scans above find one token end per call, and each call's
/// load depends on where the previous token ended, so a message's ~15
/// tokens form one long chain of load-compare-count steps. Classifying a
/// block does not depend on the walk (the loads are at known offsets), and
/// the walk from stop to stop is then a few register operations.
pub(crate) struct Blocks<'b, C> {
    b: &'b [u8],
    /// Start of the classified block.
    base: usize,
    classes: C,
}

impl<'b, C: Classes> Blocks<'b, C> {
    /// A cursor whose first block starts at `pos`.
    #[inline]
    pub(crate) fn new(b: &'b [u8], pos: usize) -> Self {
        Blocks {
            b,
            base: pos,
            classes: classify(b, pos),
        }
    }

    /// The first position at or after `p` whose bit `select` sets, or
    /// `b.len()`.
    #[inline(always)]
    pub(crate) fn next(&mut self, mut p: usize, select: impl Fn(&C) -> u64) -> usize {
        loop {
            // One compare for "inside the block": before it, `off` wraps
            // around to a huge value.
            let off = p.wrapping_sub(self.base);
            if off < 64 {
                let m = select(&self.classes) >> off;
                if m != 0 {
                    // Positions past the end are stops, so this is at
                    // most `b.len()`.
                    return p + m.trailing_zeros() as usize;
                }
                p = self.base + 64;
            }
            if p >= self.b.len() {
                return self.b.len();
            }
            self.base = p;
            self.classes = classify(self.b, p);
        }
    }
}

/// Classifies the 64 bytes at `p`; every position past the end of `b` is
/// a stop (the callers clamp what they get to `b.len()`).
#[inline]
fn classify<C: Classes>(b: &[u8], p: usize) -> C {
    if let Some(block) = b.get(p..p + 64)
        && let Ok(block) = <&[u8; 64]>::try_from(block)
    {
        return C::of(block);
    }
    let valid = b.len().saturating_sub(p) as u32;
    // The last 64 bytes of `b`, shifted down to `p`: no copy.
    if valid > 0
        && let Some(start) = b.len().checked_sub(64)
        && let Ok(block) = <&[u8; 64]>::try_from(&b[start..])
    {
        return C::of(block).past_end((p - start) as u32, valid);
    }
    let mut buf = [0u8; 64];
    let rest = b.get(p..).unwrap_or(&[]);
    buf[..rest.len()].copy_from_slice(rest);
    C::of(&buf).past_end(0, valid)
}

/// `mask` moved down by `by` bits, with every bit from `valid` up set.
#[inline(always)]
fn shift_mask(mask: u64, by: u32, valid: u32) -> u64 {
    (mask >> by) | u64::MAX.checked_shl(valid).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The block cursors against the byte-at-a-time definitions, from every
    /// start, over inputs longer than a block, with every byte value.
    #[test]
    fn blocks_agree_with_the_bytewise_definition() {
        let mut inputs: Vec<Vec<u8>> = vec![(0u8..=255).collect(), (0u8..=255).rev().collect()];
        inputs.push(
            br#"web1 app - - [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][x y="\]\"\\"] msg"#
                .to_vec(),
        );
        inputs.push(
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""
                .to_vec(),
        );
        inputs.push(b"short".to_vec());
        inputs.push(Vec::new());
        let np = |c: u8| !(33..=126).contains(&c);
        for b in &inputs {
            for from in 0..=b.len() {
                let slow = |p: &dyn Fn(u8) -> bool, at: usize| {
                    (at..b.len()).find(|&i| p(b[i])).unwrap_or(b.len())
                };
                let mut sd = Blocks::<SdClasses>::new(b, from);
                let mut tag = Blocks::<TagClasses>::new(b, from);
                // Walk forward from `from` the way the parsers do.
                let mut p = from;
                while p <= b.len() {
                    assert_eq!(
                        sd.next(p, |c| c.name),
                        slow(&|c| np(c) || matches!(c, b'=' | b']' | b'"'), p)
                    );
                    assert_eq!(
                        sd.next(p, |c| c.value),
                        slow(&|c| matches!(c, b'"' | b'\\' | b']'), p)
                    );
                    assert_eq!(
                        tag.next(p, |c| c.tag),
                        slow(&|c| c <= b' ' || matches!(c, b':' | b'[' | b']'), p)
                    );
                    p += 1 + p % 7;
                }
            }
        }
    }

    /// Every function against its byte-at-a-time definition, at every
    /// start offset and length of inputs that exercise all byte values.
    #[test]
    fn agrees_with_the_bytewise_definition() {
        let mut inputs: Vec<Vec<u8>> = vec![
            b"abc def".to_vec(),
            b"exampleSDID@32473 iut=\"3\"".to_vec(),
            b"0123456789abcdef0123456789\"x".to_vec(),
            b"\x80\xff\x7f\x00 ]=\"\\:[".to_vec(),
        ];
        inputs.push((0u8..=255).collect());
        inputs.push((0u8..=255).rev().collect());
        for b in &inputs {
            for from in 0..b.len() {
                for end in from..=b.len() {
                    let slow =
                        |p: &dyn Fn(u8) -> bool| (from..end).find(|&i| p(b[i])).unwrap_or(end);
                    assert_eq!(
                        sd_name_end(b, from, end),
                        slow(&|c| !(33..=126).contains(&c) || matches!(c, b'=' | b']' | b'"'))
                    );
                    assert_eq!(byte_end(b, from, end, b'='), slow(&|c| c == b'='));
                }
                let full =
                    |p: &dyn Fn(u8) -> bool| (from..b.len()).find(|&i| p(b[i])).unwrap_or(b.len());
                assert_eq!(
                    quote_or_backslash(b, from),
                    full(&|c| matches!(c, b'"' | b'\\'))
                );
            }
        }
    }
}
