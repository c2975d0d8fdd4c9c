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

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Bytes equal to `x`.
#[inline(always)]
const fn eq_mask(v: u64, x: u8) -> u64 {
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

/// End of a run of printable US-ASCII starting at `from`, at most `end`.
#[inline]
pub(crate) fn print_end(b: &[u8], from: usize, end: usize) -> usize {
    find(b, from, end, non_print_mask, |c| !(33..=126).contains(&c))
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

/// The next `"`, `\` or `]` at or after `from`, or `b.len()`.
#[inline]
pub(crate) fn value_stop(b: &[u8], from: usize) -> usize {
    find(
        b,
        from,
        b.len(),
        |v| eq_mask(v, b'"') | eq_mask(v, b'\\') | eq_mask(v, b']'),
        |c| matches!(c, b'"' | b'\\' | b']'),
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

/// End of an RFC 3164 tag name: bytes above space other than `:`, `[`, `]`.
#[inline]
pub(crate) fn tag_end(b: &[u8], from: usize, end: usize) -> usize {
    find(
        b,
        from,
        end,
        |v| lt_mask(v, 0x21) | eq_mask(v, b':') | eq_mask(v, b'[') | eq_mask(v, b']'),
        |c| c <= b' ' || matches!(c, b':' | b'[' | b']'),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
                    assert_eq!(print_end(b, from, end), slow(&|c| !(33..=126).contains(&c)));
                    assert_eq!(
                        sd_name_end(b, from, end),
                        slow(&|c| !(33..=126).contains(&c) || matches!(c, b'=' | b']' | b'"'))
                    );
                    assert_eq!(byte_end(b, from, end, b'='), slow(&|c| c == b'='));
                    assert_eq!(
                        tag_end(b, from, end),
                        slow(&|c| c <= b' ' || matches!(c, b':' | b'[' | b']'))
                    );
                }
                let full =
                    |p: &dyn Fn(u8) -> bool| (from..b.len()).find(|&i| p(b[i])).unwrap_or(b.len());
                assert_eq!(
                    value_stop(b, from),
                    full(&|c| matches!(c, b'"' | b'\\' | b']'))
                );
                assert_eq!(
                    quote_or_backslash(b, from),
                    full(&|c| matches!(c, b'"' | b'\\'))
                );
            }
        }
    }
}
