//! DDSketch's logarithmic index mapping: value ↔ bucket index.
//!
//! With relative accuracy α, γ = (1 + α) / (1 − α) and bucket `i` holds the
//! magnitudes in (γ^(i−1), γ^i]. Reporting `2γ^i / (1 + γ)` for any value in
//! that bucket is off by at most α relative (Masson, Rim & Lee, "DDSketch",
//! VLDB 2019). The index is `ceil(ln(v) / ln(γ))`: one `ln` per value. The
//! engine computes it once per sample and reuses it for every resolution.
//!
//! Two sketches can be merged only when their mappings are identical, so the
//! mapping is defined by α alone (stored bit for bit in every blob).

/// Smallest accepted relative accuracy (bucket indices stay within `i32`).
pub const MIN_RELATIVE_ACCURACY: f64 = 1e-4;
/// Largest accepted relative accuracy.
pub const MAX_RELATIVE_ACCURACY: f64 = 0.5;

/// The logarithmic mapping for one relative accuracy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogMapping {
    alpha: f64,
    gamma: f64,
    /// 1 / ln(γ).
    multiplier: f64,
}

impl LogMapping {
    /// The mapping for `alpha`, which the caller has validated to lie in
    /// `MIN_RELATIVE_ACCURACY..MAX_RELATIVE_ACCURACY`.
    pub(crate) fn new(alpha: f64) -> Self {
        let gamma = (1.0 + alpha) / (1.0 - alpha);
        LogMapping {
            alpha,
            gamma,
            multiplier: 1.0 / gamma.ln(),
        }
    }

    /// True when `alpha` is a valid relative accuracy.
    pub(crate) fn valid_alpha(alpha: f64) -> bool {
        (MIN_RELATIVE_ACCURACY..MAX_RELATIVE_ACCURACY).contains(&alpha)
    }

    /// The relative accuracy α.
    pub(crate) fn alpha(&self) -> f64 {
        self.alpha
    }

    /// The bucket index of a positive finite magnitude.
    #[inline]
    pub(crate) fn index(&self, magnitude: f64) -> i32 {
        debug_assert!(magnitude > 0.0 && magnitude.is_finite());
        (magnitude.ln() * self.multiplier).ceil() as i32
    }

    /// The representative magnitude of bucket `index`.
    pub(crate) fn value(&self, index: i32) -> f64 {
        (f64::from(index) / self.multiplier).exp() * (2.0 / (1.0 + self.gamma))
    }

    /// The index range any finite positive `f64` maps into, used to reject
    /// decoded buckets that no value could have produced.
    pub(crate) fn index_range(&self) -> (i32, i32) {
        (self.index(f64::from_bits(1)), self.index(f64::MAX))
    }
}

impl PartialEq for LogMapping {
    fn eq(&self, other: &Self) -> bool {
        self.alpha.to_bits() == other.alpha.to_bits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn representative_is_within_alpha() {
        for alpha in [0.0001, 0.001, 0.01, 0.05, 0.2] {
            let m = LogMapping::new(alpha);
            for v in [
                f64::from_bits(1),
                1e-300,
                1e-9,
                0.5,
                1.0,
                1.000_001,
                3.0,
                1234.5678,
                1e12,
                1e300,
                f64::MAX / 2.0,
            ] {
                let r = m.value(m.index(v));
                let err = (r - v).abs() / v;
                assert!(
                    err <= alpha * (1.0 + 1e-9),
                    "alpha {alpha} v {v} r {r} err {err}"
                );
            }
        }
    }

    #[test]
    fn index_range_fits_i32() {
        let m = LogMapping::new(MIN_RELATIVE_ACCURACY);
        let (lo, hi) = m.index_range();
        assert!(lo < -3_000_000 && hi > 3_000_000, "{lo} {hi}");
        assert!(lo > i32::MIN / 2 && hi < i32::MAX / 2);
    }
}
