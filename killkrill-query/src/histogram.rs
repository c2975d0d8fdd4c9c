//! `histogram_quantile` over classic (`le`-labelled) buckets, as Prometheus's
//! `bucketQuantile`: buckets sorted, equal bounds merged, counts forced
//! monotonic, linear interpolation inside the bucket that holds the rank.

use std::collections::HashMap;

use crate::labels::{Labels, METRIC_NAME};
use crate::value::Sample;

/// Computes the φ-quantile for each bucket group of `v` (grouped by all labels but `le`).
pub(crate) fn histogram_quantile(q: f64, v: Vec<Sample>, ts: i64) -> Vec<Sample> {
    let mut order: Vec<Labels> = Vec::new();
    let mut groups: HashMap<Labels, Vec<(f64, f64)>> = HashMap::new();
    for s in v {
        let le = crate::labels::get(&s.labels, "le");
        let Some(upper) = parse_le(le) else { continue };
        let key: Labels = s
            .labels
            .into_iter()
            .filter(|(k, _)| k != "le" && k != METRIC_NAME)
            .collect();
        let entry = groups.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            Vec::new()
        });
        entry.push((upper, s.v));
    }
    let mut out = Vec::with_capacity(order.len());
    for key in order {
        if let Some(mut buckets) = groups.remove(&key) {
            out.push(Sample {
                labels: key,
                t: ts,
                v: bucket_quantile(q, &mut buckets),
            });
        }
    }
    out
}

fn parse_le(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse::<f64>().ok(),
    }
}

/// `buckets` are `(upper bound, cumulative count)`.
pub(crate) fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    match buckets.last() {
        Some(b) if b.0 == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    // Merge buckets with the same upper bound.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(ub, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += c,
            _ => merged.push((ub, c)),
        }
    }
    // Force monotonic counts.
    let mut max = f64::NEG_INFINITY;
    for b in &mut merged {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
    if merged.len() < 2 {
        return f64::NAN;
    }
    let observations = merged[merged.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = merged[..merged.len() - 1].partition_point(|x| x.1 < rank);
    if b == merged.len() - 1 {
        return merged[merged.len() - 2].0;
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return merged[0].0;
    }
    let mut start = 0.0;
    let end = merged[b].0;
    let mut count = merged[b].1;
    if b > 0 {
        start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_inside_bucket() {
        // 10 observations <= 0.1, 20 <= 0.5, 30 total.
        let mut b = vec![(0.1, 10.0), (0.5, 20.0), (f64::INFINITY, 30.0)];
        // rank 15 -> bucket (0.1, 0.5], 5 of 10 -> 0.1 + 0.4*0.5 = 0.3
        assert!((bucket_quantile(0.5, &mut b) - 0.3).abs() < 1e-12);
        // rank 30 -> +Inf bucket -> highest finite bound
        assert_eq!(bucket_quantile(1.0, &mut b), 0.5);
        // rank 3 -> first bucket, lower bound 0: 0.1*3/10
        assert!((bucket_quantile(0.1, &mut b) - 0.03).abs() < 1e-12);
    }

    #[test]
    fn invalid_inputs() {
        assert!(bucket_quantile(0.5, &mut [(0.1, 1.0), (0.5, 2.0)]).is_nan());
        assert!(bucket_quantile(0.5, &mut [(0.1, 0.0), (f64::INFINITY, 0.0)]).is_nan());
        assert_eq!(
            bucket_quantile(-1.0, &mut [(f64::INFINITY, 1.0)]),
            f64::NEG_INFINITY
        );
        // Non-monotonic counts are repaired: (0.1,10),(0.5,8)->10,(Inf,20).
        let mut b = vec![(0.1, 10.0), (0.5, 8.0), (f64::INFINITY, 20.0)];
        assert_eq!(bucket_quantile(0.75, &mut b), 0.5);
    }
}
