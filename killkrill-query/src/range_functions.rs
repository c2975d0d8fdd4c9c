//! Functions over a range of samples (`rate(x[5m])`, `*_over_time`, ...),
//! written after Prometheus's `promql/functions.go` so the numbers agree,
//! including its extrapolation rules and its NaN and infinity handling.

/// Neumaier-compensated summation step, as Prometheus's `kahanSumInc`.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// `rate`, `increase` and `delta`: the change over the window, extrapolated
/// to the window's edges when the first/last samples are close to them
/// (within 1.1 average intervals), else by half an interval; counters are
/// not extrapolated below zero. `None` with fewer than two samples.
pub(crate) fn extrapolated_rate(
    points: &[(i64, f64)],
    range_start: i64,
    range_end: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (first_t, first_v) = points[0];
    let (last_t, last_v) = points[points.len() - 1];
    let mut result = last_v - first_v;
    if is_counter {
        let mut prev = first_v;
        for &(_, v) in &points[1..] {
            if v < prev {
                result += prev;
            }
            prev = v;
        }
    }
    let mut duration_to_start = (first_t - range_start) as f64 / 1000.0;
    let duration_to_end = (range_end - last_t) as f64 / 1000.0;
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let avg_between = sampled / (points.len() - 1) as f64;
    if is_counter && result > 0.0 && first_v >= 0.0 {
        let to_zero = sampled * (first_v / result);
        if to_zero < duration_to_start {
            duration_to_start = to_zero;
        }
    }
    let threshold = avg_between * 1.1;
    let mut interval = sampled;
    interval += if duration_to_start < threshold {
        duration_to_start
    } else {
        avg_between / 2.0
    };
    interval += if duration_to_end < threshold {
        duration_to_end
    } else {
        avg_between / 2.0
    };
    let mut factor = interval / sampled;
    if is_rate {
        factor /= (range_end - range_start) as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate` and `idelta`: from the last two samples.
pub(crate) fn instant_value(points: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (lt, lv) = points[points.len() - 1];
    let (pt, pv) = points[points.len() - 2];
    let mut result = if is_rate && lv < pv { lv } else { lv - pv };
    let interval = lt - pt;
    if interval == 0 {
        return None;
    }
    if is_rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// Least-squares slope and intercept, x in seconds relative to `intercept_time`.
pub(crate) fn linear_regression(points: &[(i64, f64)], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sxy, mut cxy, mut sx2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = points[0].1;
    let mut const_y = true;
    for (i, &(t, v)) in points.iter().enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_time) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(v, sy, cy);
        (sxy, cxy) = kahan_inc(x * v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let sx = sx + cx;
    let sy = sy + cy;
    let sxy = sxy + cxy;
    let sx2 = sx2 + cx2;
    let cov_xy = sxy - sx * sy / n;
    let var_x = sx2 - sx * sx / n;
    let slope = cov_xy / var_x;
    let intercept = sy / n - slope * sx / n;
    (slope, intercept)
}

/// `deriv`: per-second slope by simple linear regression.
pub(crate) fn deriv(points: &[(i64, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    Some(linear_regression(points, points[0].0).0)
}

/// `predict_linear`: the regression line's value `seconds` after `ts`.
pub(crate) fn predict_linear(points: &[(i64, f64)], ts: i64, seconds: f64) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (slope, intercept) = linear_regression(points, ts);
    Some(slope * seconds + intercept)
}

/// `double_exponential_smoothing` (Prometheus 2's `holt_winters`), with
/// smoothing factor `sf` and trend factor `tf`, both in (0, 1).
pub(crate) fn double_exponential_smoothing(points: &[(i64, f64)], sf: f64, tf: f64) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (mut s0, mut s1) = (0.0, points[0].1);
    let mut b = points[1].1 - points[0].1;
    for (i, &(_, v)) in points.iter().enumerate().skip(1) {
        let x = sf * v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        (s0, s1) = (s1, x + y);
    }
    Some(s1)
}

/// `resets`: how often the value went down.
pub(crate) fn resets(points: &[(i64, f64)]) -> Option<f64> {
    let first = points.first()?;
    let mut n = 0u32;
    let mut prev = first.1;
    for &(_, v) in &points[1..] {
        if v < prev {
            n += 1;
        }
        prev = v;
    }
    Some(f64::from(n))
}

/// `changes`: how often the value changed (NaN to NaN is no change).
pub(crate) fn changes(points: &[(i64, f64)]) -> Option<f64> {
    let first = points.first()?;
    let mut n = 0u32;
    let mut prev = first.1;
    for &(_, v) in &points[1..] {
        if !(v == prev || (v.is_nan() && prev.is_nan())) {
            n += 1;
        }
        prev = v;
    }
    Some(f64::from(n))
}

/// `avg_over_time`: incremental, compensated mean (no overflow on large values).
pub(crate) fn avg(points: &[(i64, f64)]) -> Option<f64> {
    if points.is_empty() {
        return None;
    }
    let (mut mean, mut count, mut c) = (0.0f64, 0.0f64, 0.0f64);
    for &(_, v) in points {
        count += 1.0;
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                continue;
            }
        }
        (mean, c) = kahan_inc(v / count - mean / count, mean, c);
    }
    if mean.is_infinite() {
        return Some(mean);
    }
    Some(mean + c)
}

/// `sum_over_time`, compensated.
pub(crate) fn sum(points: &[(i64, f64)]) -> Option<f64> {
    if points.is_empty() {
        return None;
    }
    let (mut s, mut c) = (0.0, 0.0);
    for &(_, v) in points {
        (s, c) = kahan_inc(v, s, c);
    }
    if s.is_infinite() {
        return Some(s);
    }
    Some(s + c)
}

/// `min_over_time` (NaN only when every value is NaN).
pub(crate) fn min(points: &[(i64, f64)]) -> Option<f64> {
    let mut m = points.first()?.1;
    for &(_, v) in points {
        if v < m || m.is_nan() {
            m = v;
        }
    }
    Some(m)
}

/// `max_over_time` (NaN only when every value is NaN).
pub(crate) fn max(points: &[(i64, f64)]) -> Option<f64> {
    let mut m = points.first()?.1;
    for &(_, v) in points {
        if v > m || m.is_nan() {
            m = v;
        }
    }
    Some(m)
}

/// `stdvar_over_time`: population variance, Welford with compensation.
pub(crate) fn stdvar(points: &[(i64, f64)]) -> Option<f64> {
    if points.is_empty() {
        return None;
    }
    let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(_, v) in points {
        count += 1.0;
        let delta = v - (mean + cmean);
        (mean, cmean) = kahan_inc(delta / count, mean, cmean);
        (aux, caux) = kahan_inc(delta * (v - (mean + cmean)), aux, caux);
    }
    Some((aux + caux) / count)
}

/// Prometheus's quantile over values: linear interpolation between closest ranks.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| {
        // Go's sort puts NaN first for this comparator (Less: a < b || isNaN(a)).
        match (a.is_nan(), b.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            _ => a.total_cmp(b),
        }
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(vals: &[(i64, f64)]) -> Vec<(i64, f64)> {
        vals.to_vec()
    }

    #[test]
    fn rate_exact_window_no_extrapolation_needed() {
        // Samples every 15 s over a 60 s window ending at 60 s: 0,15,...,60 s
        // with values 0,15,...,60 -> increase 60 over 60 s, rate 1/s.
        let p: Vec<(i64, f64)> = (0..=4).map(|i| (i * 15_000, (i * 15) as f64)).collect();
        let r = extrapolated_rate(&p, 0, 60_000, true, true);
        assert_eq!(r, Some(1.0));
        let inc = extrapolated_rate(&p, 0, 60_000, true, false);
        assert_eq!(inc, Some(60.0));
    }

    #[test]
    fn rate_extrapolates_by_half_interval_when_far_from_edges() {
        // Window [0, 100 s], samples at 30,40,50 s values 10,20,30.
        // sampled=20, avg=10, threshold=11; start gap 30 >= 11 -> +5; end gap 50 -> +5.
        // Counter: to zero = 20*(10/20)=10 < 30 -> start gap becomes 10 (< 11) -> +10.
        // interval = 20+10+5 = 35; increase = 20*35/20 = 35.
        let p = pts(&[(30_000, 10.0), (40_000, 20.0), (50_000, 30.0)]);
        assert_eq!(extrapolated_rate(&p, 0, 100_000, true, false), Some(35.0));
        // delta (gauge): no zero clamp: interval 20+5+5=30 -> 30.
        assert_eq!(extrapolated_rate(&p, 0, 100_000, false, false), Some(30.0));
    }

    #[test]
    fn rate_handles_counter_reset() {
        // 0,10,20 then reset to 5: increase = 20 + 5 = 25 over samples at 0..30 s.
        let p = pts(&[(0, 0.0), (10_000, 10.0), (20_000, 20.0), (30_000, 5.0)]);
        assert_eq!(extrapolated_rate(&p, 0, 30_000, true, false), Some(25.0));
        assert_eq!(extrapolated_rate(&p[..1], 0, 30_000, true, false), None);
    }

    #[test]
    fn irate_idelta() {
        let p = pts(&[(0, 1.0), (10_000, 5.0), (20_000, 25.0)]);
        assert_eq!(instant_value(&p, true), Some(2.0));
        assert_eq!(instant_value(&p, false), Some(20.0));
        let reset = pts(&[(0, 10.0), (5_000, 4.0)]);
        assert_eq!(instant_value(&reset, true), Some(0.8));
        assert_eq!(instant_value(&reset, false), Some(-6.0));
    }

    #[test]
    fn predict_and_smooth() {
        // y = 2 + 0.5 x (x in s from 0): at ts = 20 s plus 10 s -> 2 + 0.5*30 = 17.
        let p = pts(&[(0, 2.0), (10_000, 7.0), (20_000, 12.0)]);
        assert_eq!(predict_linear(&p, 20_000, 10.0), Some(17.0));
        assert_eq!(predict_linear(&p[..1], 0, 1.0), None);
        // sf = tf = 0.5 on 1, 2, 4: s1=1, b=1; i=1: x=1, y=0.5*(1+1)=1 -> s=2;
        // i=2: b=0.5*(2-1)+0.5*1=1, x=2, y=0.5*(2+1)=1.5 -> s=3.5.
        let q = pts(&[(0, 1.0), (1, 2.0), (2, 4.0)]);
        assert_eq!(double_exponential_smoothing(&q, 0.5, 0.5), Some(3.5));
    }

    #[test]
    fn deriv_resets_changes() {
        let p = pts(&[(0, 1.0), (10_000, 3.0), (20_000, 5.0)]);
        assert_eq!(deriv(&p), Some(0.2));
        let q = pts(&[(0, 3.0), (1, 1.0), (2, 1.0), (3, 4.0), (4, 2.0)]);
        assert_eq!(resets(&q), Some(2.0));
        assert_eq!(changes(&q), Some(3.0));
        assert_eq!(resets(&[]), None);
    }

    #[test]
    fn over_time_aggregates() {
        let p = pts(&[
            (0, 2.0),
            (1, 4.0),
            (2, 4.0),
            (3, 4.0),
            (4, 5.0),
            (5, 5.0),
            (6, 7.0),
            (7, 9.0),
        ]);
        assert_eq!(avg(&p), Some(5.0));
        assert_eq!(sum(&p), Some(40.0));
        assert_eq!(min(&p), Some(2.0));
        assert_eq!(max(&p), Some(9.0));
        assert_eq!(stdvar(&p), Some(4.0));
        let mut v: Vec<f64> = p.iter().map(|x| x.1).collect();
        assert_eq!(quantile(0.5, &mut v), 4.5);
        assert_eq!(quantile(0.0, &mut v), 2.0);
        assert_eq!(quantile(1.0, &mut v), 9.0);
        assert_eq!(quantile(1.5, &mut v), f64::INFINITY);
        let nan_first = pts(&[(0, f64::NAN), (1, 3.0)]);
        assert_eq!(max(&nan_first), Some(3.0));
        assert_eq!(min(&nan_first), Some(3.0));
    }
}
