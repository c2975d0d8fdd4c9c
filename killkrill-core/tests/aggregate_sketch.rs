//! Property tests of the DDSketch and of the stored blobs: relative error
//! bound against exact quantiles, exact associative/commutative merging,
//! serialisation round trips, and decoding of arbitrary bytes never panics.

// Test helpers outside #[test] functions panic on purpose: that is the failure report.
#![allow(clippy::unwrap_used)]

use killkrill_core::aggregate::{DdSketch, Point, Rollup, SketchParams};
use killkrill_core::event::Timestamp;
use proptest::prelude::*;

/// Values with negatives, zeros and 18 orders of magnitude.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        1 => Just(0.0),
        1 => Just(-0.0),
        8 => (any::<bool>(), -9.0f64..9.0, 1.0f64..10.0)
            .prop_map(|(neg, e, m)| if neg { -m * 10f64.powf(e) } else { m * 10f64.powf(e) }),
        2 => (-1000i32..1000).prop_map(f64::from),
    ]
}

fn sketch(params: SketchParams, xs: &[f64]) -> DdSketch {
    let mut s = DdSketch::new(params);
    for x in xs {
        s.add(*x);
    }
    s
}

const QS: [f64; 11] = [0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every quantile is within α (relative) of the exact value of rank
    /// ⌊q·(n−1)⌋, with enough buckets that nothing collapses.
    #[test]
    fn quantiles_within_relative_error(
        xs in proptest::collection::vec(value(), 1..400),
        alpha in prop_oneof![Just(0.001), Just(0.005), Just(0.01), Just(0.02), Just(0.05)],
    ) {
        let params = SketchParams::new(alpha, 65_536).unwrap();
        let s = sketch(params, &xs);
        let mut sorted = xs.clone();
        sorted.sort_by(f64::total_cmp);
        for q in QS {
            let exact = sorted[(q * (sorted.len() - 1) as f64).floor() as usize];
            let got = s.quantile(q).unwrap();
            let bound = alpha * exact.abs() * (1.0 + 1e-9);
            prop_assert!((got - exact).abs() <= bound, "q {} exact {} got {} alpha {}", q, exact, got, alpha);
        }
        prop_assert_eq!(s.min(), Some(sorted[0]));
        prop_assert_eq!(s.max(), Some(sorted[sorted.len() - 1]));
        prop_assert_eq!(s.count(), xs.len() as u64);
    }

    /// Merging is exact: any split, any grouping, any order gives the
    /// sketch built from all values at once — also when the stores collapse
    /// (few buckets).
    #[test]
    fn merge_is_associative_commutative_and_exact(
        xs in proptest::collection::vec(value(), 0..300),
        cuts in (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
        max_buckets in prop_oneof![Just(16u32), Just(64), Just(2048)],
    ) {
        let params = SketchParams::new(0.01, max_buckets).unwrap();
        let (mut i, mut j) = (cuts.0.index(xs.len() + 1), cuts.1.index(xs.len() + 1));
        if i > j { std::mem::swap(&mut i, &mut j); }
        let (a, b, c) = (sketch(params, &xs[..i]), sketch(params, &xs[i..j]), sketch(params, &xs[j..]));
        let whole = sketch(params, &xs);
        let mut ab_c = a.clone(); ab_c.merge(&b).unwrap(); ab_c.merge(&c).unwrap();
        let mut bc = b.clone(); bc.merge(&c).unwrap();
        let mut a_bc = a.clone(); a_bc.merge(&bc).unwrap();
        let mut c_ba = c.clone(); c_ba.merge(&b).unwrap(); c_ba.merge(&a).unwrap();
        let mut ca = c.clone(); ca.merge(&a).unwrap();
        let mut b_ca = b.clone(); b_ca.merge(&ca).unwrap();
        for m in [&ab_c, &a_bc, &c_ba, &b_ca] {
            prop_assert_eq!(m, &whole);
            for q in QS {
                prop_assert_eq!(m.quantile(q).map(f64::to_bits), whole.quantile(q).map(f64::to_bits));
            }
        }
    }

    #[test]
    fn sketch_round_trip(xs in proptest::collection::vec(value(), 0..300), max_buckets in 16u32..200) {
        let s = sketch(SketchParams::new(0.02, max_buckets).unwrap(), &xs);
        let bytes = s.to_bytes();
        prop_assert_eq!(DdSketch::from_bytes(&bytes).unwrap(), s);
    }

    /// Arbitrary bytes and single-byte corruptions of valid blobs decode to
    /// an error or a valid value, never a panic; a decoded value re-encodes
    /// to the same bytes.
    #[test]
    fn decoding_untrusted_bytes_never_panics(
        xs in proptest::collection::vec(value(), 1..50),
        noise in proptest::collection::vec(any::<u8>(), 0..200),
        flip in (any::<prop::sample::Index>(), any::<u8>()),
    ) {
        if let Ok(d) = DdSketch::from_bytes(&noise) {
            prop_assert_eq!(DdSketch::from_bytes(&d.to_bytes()).unwrap(), d);
        }
        if let Ok(d) = Rollup::from_bytes(&noise) {
            prop_assert_eq!(Rollup::from_bytes(&d.to_bytes()).unwrap(), d);
        }
        let s = sketch(SketchParams::default(), &xs);
        let pts = xs.iter().enumerate().map(|(i, x)| Point::new(Timestamp::from_secs(i as i64), *x));
        let r = Rollup::from_points(pts, Some(SketchParams::default())).unwrap();
        let rb = r.to_bytes();
        prop_assert_eq!(Rollup::from_bytes(&rb).unwrap(), r);
        for mut bytes in [s.to_bytes(), rb] {
            let at = flip.0.index(bytes.len());
            bytes[at] ^= flip.1;
            if let Ok(d) = DdSketch::from_bytes(&bytes) {
                prop_assert_eq!(DdSketch::from_bytes(&d.to_bytes()).unwrap(), d);
            }
            if let Ok(d) = Rollup::from_bytes(&bytes) {
                prop_assert_eq!(Rollup::from_bytes(&d.to_bytes()).unwrap(), d);
            }
        }
    }
}

/// Collapsing keeps the upper quantiles accurate when the values span more
/// orders of magnitude than the buckets cover.
#[test]
fn collapsing_keeps_upper_quantiles() {
    let params = SketchParams::new(0.01, 256).unwrap(); // covers a factor of ~166
    let xs: Vec<f64> = (0..10_000)
        .map(|i| 10f64.powf(-6.0 + 12.0 * f64::from(i) / 10_000.0))
        .collect();
    let s = sketch(params, &xs);
    for q in [0.9, 0.95, 0.99, 1.0] {
        let exact = xs[(q * (xs.len() - 1) as f64).floor() as usize];
        let got = s.quantile(q).unwrap();
        assert!(
            (got - exact).abs() <= 0.01 * exact,
            "q {q}: {got} vs {exact}"
        );
    }
    // The low end collapsed: its estimate is far off (and says so by design).
    let low = s.quantile(0.01).unwrap();
    assert!(low > 1e-5, "{low}");
}

/// Against the `sketches-ddsketch` crate with the same α: both estimates of
/// each quantile are within α of the truth.
#[test]
fn agrees_with_sketches_ddsketch_within_alpha() {
    let xs: Vec<f64> = (1..=5000).map(|i| f64::from(i).powf(1.7) / 3.0).collect();
    let mine = sketch(SketchParams::default(), &xs);
    let mut theirs = sketches_ddsketch::DDSketch::new(sketches_ddsketch::Config::defaults());
    for x in &xs {
        theirs.add(*x);
    }
    for q in [0.1, 0.5, 0.9, 0.99] {
        let exact = xs[(q * (xs.len() - 1) as f64).floor() as usize];
        let a = mine.quantile(q).unwrap();
        let b = theirs.quantile(q).unwrap().unwrap();
        assert!(
            (a - exact).abs() <= 0.01 * exact,
            "mine q {q}: {a} vs {exact}"
        );
        assert!(
            (b - exact).abs() <= 0.0101 * exact,
            "theirs q {q}: {b} vs {exact}"
        );
    }
}
