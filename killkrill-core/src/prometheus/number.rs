//! Numbers of the exposition formats: sample values and timestamps.
//!
//! Both formats take the same value grammar: a decimal float (`1`, `-1.5`,
//! `.5`, `1.`, `1e-3`), `Inf`/`Infinity` with an optional sign and `NaN`
//! without one, case-insensitively. That is OpenMetrics' ABNF and also what
//! Prometheus' Go text parser accepts (`strconv.ParseFloat` minus hex floats
//! and underscores, which it rejects explicitly). The standard library's
//! float parser is correctly rounded and fast; the only thing it accepts
//! beyond that grammar is a signed NaN, which is filtered here.
//!
//! Timestamps differ: the text format has integer milliseconds, OpenMetrics
//! has a decimal number of seconds. Both are converted exactly (no float
//! rounding) to `i128` nanoseconds, saturating, so a valid but absurd
//! timestamp still parses and orders correctly; turning it into a storable
//! [`crate::event::Timestamp`] is a separate, reported step.

/// Parses a sample value. `None` when `s` is not a number of the grammar.
#[inline]
pub(crate) fn parse_value(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let first = *b.first()?;
    if first.is_ascii_digit() || first == b'.' {
        // Fast path for plain numbers: every byte is a digit, `.`, `e`, sign.
        return parse_decimal(s);
    }
    let (neg, rest) = match first {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if rest.eq_ignore_ascii_case("inf") || rest.eq_ignore_ascii_case("infinity") {
        return Some(if neg {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if rest.len() == s.len() && s.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    parse_decimal(s)
}

/// Powers of ten that are exact in an f64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

#[inline]
fn parse_decimal(s: &str) -> Option<f64> {
    // Fast path (Clinger): `[sign]digits[.digits]` whose digits form an
    // integer below 2^53 with at most 22 after the point. Both the integer
    // and the power of ten are exact, so one division rounds correctly.
    let b = s.as_bytes();
    let (neg, mut i) = match b.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let mut m: u64 = 0;
    let mut digits = 0u32;
    let mut frac = 0usize;
    let mut dot = false;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() {
            if digits == 19 {
                return parse_std(s);
            }
            m = m * 10 + u64::from(c - b'0');
            digits += 1;
            frac += usize::from(dot);
        } else if c == b'.' && !dot {
            dot = true;
        } else {
            break;
        }
        i += 1;
    }
    // Optional exponent: `e`, sign, one to three digits.
    let mut exp: i64 = 0;
    if i < b.len() {
        if b[i] != b'e' && b[i] != b'E' {
            return parse_std(s);
        }
        i += 1;
        let eneg = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 3 {
            exp = exp * 10 + i64::from(b[i] - b'0');
            i += 1;
        }
        if i == start || i < b.len() {
            return parse_std(s);
        }
        if eneg {
            exp = -exp;
        }
    }
    let e = exp - frac as i64;
    if digits == 0 || m > 1 << 53 || !(-22..=22).contains(&e) {
        return parse_std(s);
    }
    let v = if e < 0 {
        m as f64 / POW10[(-e) as usize]
    } else {
        m as f64 * POW10[e as usize]
    };
    Some(if neg { -v } else { v })
}

/// The general case: exponents, long mantissas.
#[cold]
fn parse_std(s: &str) -> Option<f64> {
    if !s
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    s.parse::<f64>().ok()
}

/// True when `s` is exactly `+Inf` or `-Inf` or is finite: OpenMetrics wants
/// the canonical spelling for infinite `le` and `quantile` values.
pub(crate) fn is_canonical_if_infinite(s: &str, v: f64) -> bool {
    v.is_finite() || s == "+Inf" || s == "-Inf"
}

/// Parses a text-format timestamp: an integer number of milliseconds that
/// fits in an i64, with an optional sign. Returns nanoseconds.
pub(crate) fn parse_millis(s: &str) -> Option<i128> {
    let ms: i64 = s.parse().ok()?;
    if s.starts_with('+') && s.len() == 1 {
        return None;
    }
    // An i64 of milliseconds times 10^6 never reaches i128::MIN, which
    // stands for "no timestamp".
    Some(i128::from(ms) * 1_000_000)
}

/// Parses an OpenMetrics timestamp: a decimal number of seconds
/// (`realnumber`: no Inf/NaN). Returns nanoseconds, truncated toward zero
/// below one nanosecond and saturated at the i128 range.
pub(crate) fn parse_seconds(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    let mut i = 0;
    let neg = match b.first()? {
        b'-' => {
            i = 1;
            true
        }
        b'+' => {
            i = 1;
            false
        }
        _ => false,
    };
    // Mantissa digits are accumulated up to 36 of them; beyond that integer
    // digits only scale and fraction digits are below a nanosecond anyway.
    const CAP: i128 = 10i128.pow(36);
    let mut mant: i128 = 0;
    let mut exp10: i64 = 0;
    let mut digits = 0usize;
    let mut seen_dot = false;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() {
            digits += 1;
            if mant < CAP {
                mant = mant * 10 + i128::from(c - b'0');
                if seen_dot {
                    exp10 -= 1;
                }
            } else if !seen_dot {
                exp10 += 1;
            }
        } else if c == b'.' && !seen_dot {
            seen_dot = true;
        } else {
            break;
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    if i < b.len() {
        if b[i] != b'e' && b[i] != b'E' {
            return None;
        }
        i += 1;
        let eneg = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        if i >= b.len() {
            return None;
        }
        let mut e: i64 = 0;
        while i < b.len() {
            let c = b[i];
            if !c.is_ascii_digit() {
                return None;
            }
            e = (e * 10 + i64::from(c - b'0')).min(100_000);
            i += 1;
        }
        exp10 += if eneg { -e } else { e };
    }
    let e = exp10 + 9;
    let v = if mant == 0 {
        0
    } else if e >= 0 {
        if e > 38 {
            i128::MAX
        } else {
            mant.checked_mul(10i128.pow(e as u32)).unwrap_or(i128::MAX)
        }
    } else if e < -38 {
        0
    } else {
        mant / 10i128.pow((-e) as u32)
    };
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: i128 = 1_000_000_000;

    #[test]
    fn values() {
        let ok: &[(&str, f64)] = &[
            ("1", 1.0),
            ("-1.5", -1.5),
            (".5", 0.5),
            ("1.", 1.0),
            ("1e3", 1000.0),
            ("1E-3", 0.001),
            ("+2", 2.0),
            ("0000001.2e-1", 0.12),
            ("+Inf", f64::INFINITY),
            ("-inf", f64::NEG_INFINITY),
            ("Infinity", f64::INFINITY),
            ("-INFINITY", f64::NEG_INFINITY),
            ("9223372036854775808", 9223372036854775808.0),
            ("0.000135819", 0.000135819),
            ("44.985611511", 44.985611511),
            ("-0", -0.0),
            ("0.1", 0.1),
            ("9007199254740993", 9007199254740992.0),
            ("1.7976931348623157e308", f64::MAX),
            ("2.279966416e+09", 2.279966416e9),
            ("1.9429106442e+10", 1.9429106442e10),
            ("7.6238e-05", 7.6238e-5),
            ("1e22", 1e22),
            ("1e23", 1e23),
            ("123456789e-30", 123456789e-30),
            ("1.e5", 1e5),
            ("5e-324", 5e-324),
        ];
        for (s, v) in ok {
            assert_eq!(parse_value(s).map(f64::to_bits), Some(v.to_bits()), "{s}");
            assert_eq!(parse_value(s), s.parse::<f64>().ok(), "{s}");
        }
        for s in ["NaN", "nan", "NAN"] {
            assert!(parse_value(s).is_some_and(f64::is_nan), "{s}");
        }
        for s in [
            "", "a", "-NaN", "+nan", "1_2", "0x1p-3", "0x1", "0b1", "0o1", "1.1.1", "1z", "e5",
            ".", "1e", "1e+", "1e5.", ".e5", "1e1e1", "Infinit", "in", " 1", "1 ", "1\t",
        ] {
            assert_eq!(parse_value(s).map(f64::to_bits), None, "{s:?}");
        }
    }

    proptest::proptest! {
        /// The fast path agrees with the standard library, bit for bit.
        #[test]
        fn fast_path_matches_std(
            neg in proptest::bool::ANY,
            int in "[0-9]{1,18}",
            frac in proptest::option::of("[0-9]{0,12}"),
            exp in proptest::option::of(-40i32..40),
        ) {
            let mut s = String::new();
            if neg {
                s.push('-');
            }
            s.push_str(&int);
            if let Some(f) = frac {
                s.push('.');
                s.push_str(&f);
            }
            if let Some(e) = exp {
                s.push_str(&format!("e{e:+}"));
            }
            let want = s.parse::<f64>().ok().map(f64::to_bits);
            proptest::prop_assert_eq!(parse_value(&s).map(f64::to_bits), want, "{}", s);
        }
    }

    #[test]
    fn seconds() {
        let ok: &[(&str, i128)] = &[
            ("0", 0),
            ("000", 0),
            ("1", NS),
            ("1.1", 1_100_000_000),
            ("1.5e3", 1_500 * NS),
            ("-1", -NS),
            ("0.0000000001", 0),
            ("0.0000000010", 1),
            ("1234567890", 1_234_567_890 * NS),
            ("1.520430000123e+09", 1_520_430_000_123_000_000),
            (
                "12345678901234567890.1234567890",
                12_345_678_901_234_567_890_123_456_789,
            ),
            ("1e100", i128::MAX),
            (".5", 500_000_000),
        ];
        for (s, v) in ok {
            assert_eq!(parse_seconds(s), Some(*v), "{s}");
        }
        for s in [
            "", "z", "1z", "1_2", "1.1.1", "NaN", "Inf", "-Inf", "0x1p-3", "1e", ".",
        ] {
            assert_eq!(parse_seconds(s), None, "{s:?}");
        }
    }

    #[test]
    fn millis() {
        assert_eq!(parse_millis("103948"), Some(103_948_000_000));
        assert_eq!(parse_millis("-2"), Some(-2_000_000));
        assert_eq!(
            parse_millis("9223372036854775807"),
            Some(i128::from(i64::MAX) * 1_000_000)
        );
        for s in ["", "+", "2.72", "9223372036854775808", "1e3", "NaN"] {
            assert_eq!(parse_millis(s), None, "{s:?}");
        }
    }
}
