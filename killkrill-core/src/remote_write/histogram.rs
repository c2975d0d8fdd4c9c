//! Native histograms kept as classic histogram series.
//!
//! Killkrill stores samples, not native histogram objects, so a native histogram
//! becomes the series a classic histogram has — `x_count`, `x_sum` and cumulative
//! `x_bucket{le="…"}` — which `histogram_quantile`, rollups and every store already
//! handle. Nothing is dropped: each populated bucket keeps its exact count, and the
//! bucket boundaries are the ones the histogram's schema defines:
//!
//! - exponential schemas −4..=8: positive bucket `i` is `(b^(i-1), b^i]` with
//!   `b = 2^(2^-schema)`, negative bucket `i` mirrors it below zero, and the zero
//!   bucket is `[-zero_threshold, zero_threshold]`; they become `le` = the upper
//!   bound of each, in ascending order;
//! - custom buckets (schema −53): `le` is `custom_values[i]`, and `+Inf` past the end.
//!
//! What is lost is only the "native" shape (the schema number and reset hint); a
//! gauge histogram (reset hint GAUGE) becomes `x_gcount`/`x_gsum` with type
//! `gaugehistogram`, as OpenMetrics names them. Integer histograms send bucket
//! deltas; float histograms send absolute counts; both are accepted.

use crate::event::format_float;

/// A native histogram's fields, borrowed from either protocol version's message.
pub(super) struct NativeHistogram<'a> {
    pub count: f64,
    pub sum: f64,
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: f64,
    pub negative_spans: Vec<(i32, u32)>,
    pub negative_deltas: &'a [i64],
    pub negative_counts: &'a [f64],
    pub positive_spans: Vec<(i32, u32)>,
    pub positive_deltas: &'a [i64],
    pub positive_counts: &'a [f64],
    pub custom_values: &'a [f64],
    pub gauge: bool,
}

/// Schema number of custom-bucket histograms.
const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// The classic form: `(le, cumulative count)` in ascending `le`, ending with `+Inf`.
#[derive(Debug)]
pub(super) struct ClassicBuckets {
    pub buckets: Vec<(String, f64)>,
}

impl NativeHistogram<'_> {
    /// Converts to cumulative classic buckets.
    ///
    /// # Errors
    /// A description of what is inconsistent: spans that do not cover the counts,
    /// both deltas and counts, a negative bucket count, an unknown schema, a custom
    /// bucket index past `custom_values`.
    pub fn to_classic(&self) -> Result<ClassicBuckets, String> {
        let custom = self.schema == CUSTOM_BUCKETS_SCHEMA;
        if !custom && !(-4..=8).contains(&self.schema) {
            return Err(format!(
                "unsupported schema {} (expected -4..=8, or -53 for custom buckets)",
                self.schema
            ));
        }
        let neg = bucket_counts(
            "negative",
            &self.negative_spans,
            self.negative_deltas,
            self.negative_counts,
        )?;
        let pos = bucket_counts(
            "positive",
            &self.positive_spans,
            self.positive_deltas,
            self.positive_counts,
        )?;
        let mut bounds: Vec<(f64, f64)> = Vec::with_capacity(neg.len() + pos.len() + 2);
        if custom {
            if !neg.is_empty() {
                return Err("custom-bucket histogram (schema -53) has negative buckets".into());
            }
            if !self.custom_values.is_sorted_by(|a, b| a < b) {
                return Err("custom_values are not strictly increasing".into());
            }
            for (idx, c) in pos {
                let le = match usize::try_from(idx) {
                    Ok(i) if i < self.custom_values.len() => self.custom_values[i],
                    Ok(i) if i == self.custom_values.len() => f64::INFINITY,
                    _ => {
                        return Err(format!(
                            "bucket index {idx} outside custom_values (length {})",
                            self.custom_values.len()
                        ));
                    }
                };
                bounds.push((le, c));
            }
        } else {
            // Most negative first: higher index = larger magnitude.
            for (k, &(idx, c)) in neg.iter().enumerate().rev() {
                // Negative bucket `idx` is [-b^idx, -b^(idx-1)): its `le` is
                // the lower magnitude. i32::MIN has no bucket below it.
                let below = idx
                    .checked_sub(1)
                    .ok_or_else(|| format!("negative bucket {k}: index {idx} is out of range"))?;
                bounds.push((-upper_bound(below, self.schema), c));
            }
            if self.zero_count != 0.0 || self.zero_threshold != 0.0 || !neg.is_empty() {
                bounds.push((self.zero_threshold, self.zero_count));
            }
            for (idx, c) in pos {
                bounds.push((upper_bound(idx, self.schema), c));
            }
        }
        let mut buckets: Vec<(String, f64)> = Vec::with_capacity(bounds.len() + 1);
        let mut last_le = f64::NEG_INFINITY;
        let mut cumulative = 0.0;
        for (le, c) in bounds {
            cumulative += c;
            if le == last_le {
                if let Some(b) = buckets.last_mut() {
                    b.1 = cumulative; // same boundary twice: keep one, cumulative
                }
                continue;
            }
            if le < last_le {
                return Err(format!(
                    "bucket boundaries not increasing at le={}",
                    format_float(le)
                ));
            }
            last_le = le;
            buckets.push((le_label(le), cumulative));
        }
        match buckets.last_mut() {
            Some(b) if last_le == f64::INFINITY => b.1 = self.count.max(cumulative),
            _ => buckets.push(("+Inf".to_owned(), self.count.max(cumulative))),
        }
        Ok(ClassicBuckets { buckets })
    }
}

/// An `le` value as Prometheus writes it for buckets it converts (OpenMetrics float
/// form): integral values keep a `.0` (`1.0`, `10.0`), others their shortest form.
fn le_label(le: f64) -> String {
    let mut s = format_float(le);
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        s.push_str(".0");
    }
    s
}

/// The upper bound of exponential bucket `idx` under `schema`: `2^(idx * 2^-schema)`.
fn upper_bound(idx: i32, schema: i32) -> f64 {
    if schema <= 0 {
        // Exact powers of two; saturate to ±∞/0 like the float range does.
        let exp = i64::from(idx) << (-schema);
        2f64.powi(exp.clamp(-2000, 2000) as i32)
    } else {
        2f64.powf(f64::from(idx) / f64::from(1u32 << schema))
    }
}

/// `(bucket index, count)` of each populated bucket, from spans plus deltas or counts.
fn bucket_counts(
    side: &str,
    spans: &[(i32, u32)],
    deltas: &[i64],
    counts: &[f64],
) -> Result<Vec<(i32, f64)>, String> {
    if !deltas.is_empty() && !counts.is_empty() {
        return Err(format!("{side} buckets have both deltas and counts"));
    }
    let n = deltas.len().max(counts.len());
    let announced: u64 = spans.iter().map(|&(_, len)| u64::from(len)).sum();
    if announced != n as u64 {
        return Err(format!(
            "{side} spans cover {announced} buckets but {n} counts were sent"
        ));
    }
    let mut out = Vec::with_capacity(n);
    let mut idx: i64 = 0;
    let mut k = 0usize;
    let mut running: i64 = 0;
    for (s, &(offset, len)) in spans.iter().enumerate() {
        idx += i64::from(offset);
        if s > 0 && offset < 0 {
            return Err(format!("{side} span {s} has a negative offset"));
        }
        for _ in 0..len {
            let count = if deltas.is_empty() {
                counts[k]
            } else {
                running = running
                    .checked_add(deltas[k])
                    .ok_or_else(|| format!("{side} bucket {k}: count overflows"))?;
                running as f64
            };
            if count < 0.0 || count.is_nan() {
                return Err(format!(
                    "{side} bucket {k} has count {}",
                    format_float(count)
                ));
            }
            let i = i32::try_from(idx)
                .map_err(|_| format!("{side} bucket index {idx} out of range"))?;
            out.push((i, count));
            idx += 1;
            k += 1;
        }
        // The next span's offset is relative to the bucket after this span.
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h<'a>() -> NativeHistogram<'a> {
        NativeHistogram {
            count: 0.0,
            sum: 0.0,
            schema: 0,
            zero_threshold: 0.0,
            zero_count: 0.0,
            negative_spans: vec![],
            negative_deltas: &[],
            negative_counts: &[],
            positive_spans: vec![],
            positive_deltas: &[],
            positive_counts: &[],
            custom_values: &[],
            gauge: false,
        }
    }

    fn classic(x: &NativeHistogram) -> Vec<(String, f64)> {
        x.to_classic().unwrap().buckets
    }

    #[test]
    fn exponential_integer_histogram() {
        // schema 0: bucket i is (2^(i-1), 2^i]. Buckets 0,1 then (gap of 1) 3.
        let mut x = h();
        x.count = 9.0;
        x.zero_threshold = 0.001;
        x.zero_count = 1.0;
        x.positive_spans = vec![(0, 2), (1, 1)];
        x.positive_deltas = &[2, 1, -2]; // counts 2, 3, 1
        x.negative_spans = vec![(1, 1)];
        x.negative_deltas = &[2]; // bucket 1 below zero: [-2, -1)
        let want: Vec<(String, f64)> = [
            ("-1.0", 2.0),
            ("0.001", 3.0),
            ("1.0", 5.0),
            ("2.0", 8.0),
            ("8.0", 9.0),
            ("+Inf", 9.0),
        ]
        .iter()
        .map(|(l, c)| ((*l).to_owned(), *c))
        .collect();
        assert_eq!(classic(&x), want);
    }

    #[test]
    fn schema_bounds() {
        assert_eq!(upper_bound(1, 0), 2.0);
        assert_eq!(upper_bound(-1, 0), 0.5);
        assert_eq!(upper_bound(1, -2), 16.0);
        assert!((upper_bound(1, 1) - std::f64::consts::SQRT_2).abs() < 1e-15);
        assert_eq!(upper_bound(4, 2), 2.0);
    }

    #[test]
    fn custom_buckets_float_counts() {
        let mut x = h();
        x.schema = -53;
        x.count = 10.0;
        x.custom_values = &[0.1, 0.5, 1.0];
        x.positive_spans = vec![(0, 2), (1, 1)];
        x.positive_counts = &[1.0, 2.0, 7.0]; // le 0.1, 0.5, +Inf
        let want: Vec<(String, f64)> = [("0.1", 1.0), ("0.5", 3.0), ("+Inf", 10.0)]
            .iter()
            .map(|(l, c)| ((*l).to_owned(), *c))
            .collect();
        assert_eq!(classic(&x), want);
    }

    #[test]
    fn errors() {
        let mut x = h();
        x.schema = 9;
        assert!(x.to_classic().unwrap_err().contains("unsupported schema 9"));
        let mut x = h();
        x.positive_spans = vec![(0, 3)];
        x.positive_deltas = &[1];
        assert!(
            x.to_classic()
                .unwrap_err()
                .contains("cover 3 buckets but 1")
        );
        let mut x = h();
        x.positive_spans = vec![(0, 2)];
        x.positive_deltas = &[1, -2];
        assert!(
            x.to_classic()
                .unwrap_err()
                .contains("bucket 1 has count -1")
        );
        let mut x = h();
        x.schema = -53;
        x.custom_values = &[1.0];
        x.positive_spans = vec![(2, 1)];
        x.positive_counts = &[1.0];
        assert!(
            x.to_classic()
                .unwrap_err()
                .contains("outside custom_values")
        );
        let mut x = h();
        x.positive_spans = vec![(0, 1)];
        x.positive_deltas = &[1];
        x.positive_counts = &[1.0];
        assert!(
            x.to_classic()
                .unwrap_err()
                .contains("both deltas and counts")
        );
        // A negative span starting at i32::MIN: no bucket below it (this
        // overflowed `idx - 1` before).
        let mut x = h();
        x.negative_spans = vec![(i32::MIN, 1)];
        x.negative_deltas = &[1];
        assert_eq!(
            x.to_classic().unwrap_err(),
            "negative bucket 0: index -2147483648 is out of range"
        );
        x.negative_spans = vec![(i32::MIN + 1, 1)];
        assert!(x.to_classic().is_ok(), "the lowest representable bucket");
    }
}
