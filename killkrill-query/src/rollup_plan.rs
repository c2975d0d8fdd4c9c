//! The rollup planner: which range selectors are answered from the
//! source's rollups instead of raw samples.
//!
//! `count/sum/min/max/avg/last_over_time(x[range])` (a plain range
//! selector, no `@`, not inside a subquery) reads the window
//! `[t - range, t]` at every evaluation time `t` (offset applied). When the
//! source keeps rollups of width `w` with `range` and the step multiples of
//! `w` and the first `t` on a window edge, that window is exactly the
//! rollup windows `[t - range, t)` plus the samples at `t` itself, which
//! the source merges ([`crate::RollupSource::select_windows`]). The widest
//! such `w` is chosen. Evaluation times at or after the source's coverage
//! (`complete_before_ms`: rollups are written after the samples) read raw
//! samples, fetched only for those times. Everything else reads raw
//! samples. What stays exact is in `docs/src/promql.md` ("Rollups").

use std::collections::HashMap;

use promql_parser::parser::Expr;

use crate::engine::{duration_ms, key};
use crate::source::{RollupCoverage, WindowAggregate, WindowQuery, WindowSeries};

/// Functions answered from rollups.
pub(crate) const ROLLUP_FUNCTIONS: [&str; 6] = [
    "count_over_time",
    "sum_over_time",
    "min_over_time",
    "max_over_time",
    "avg_over_time",
    "last_over_time",
];

/// Window aggregates fetched for one selector.
pub(crate) struct RollupData {
    /// The evaluation times they answer (the others read raw samples).
    pub query: WindowQuery,
    pub series: Vec<WindowSeries>,
}

impl RollupData {
    /// Whether the evaluation at reference time `r` is answered from here.
    pub(crate) fn covers(&self, r: i64) -> bool {
        let q = &self.query;
        if q.steps == 0 || r < q.first_ms || r > q.time(q.steps - 1) {
            return false;
        }
        q.steps == 1 || (r - q.first_ms) % q.step_ms == 0
    }
}

/// The value of `func` over one window.
pub(crate) fn value(func: &str, a: &WindowAggregate) -> Option<f64> {
    Some(match func {
        "count_over_time" => a.count as f64,
        "sum_over_time" => a.sum,
        "min_over_time" => a.min,
        "max_over_time" => a.max,
        "avg_over_time" => a.sum / a.count as f64,
        "last_over_time" => a.last,
        _ => return None,
    })
}

/// Which selectors (by node key) may use rollups, with their range (ms).
pub(crate) fn candidates(e: &Expr, out: &mut HashMap<usize, i64>) {
    match e {
        Expr::Call(c) => {
            if ROLLUP_FUNCTIONS.contains(&c.func.name)
                && c.args.args.len() == 1
                && let Expr::MatrixSelector(ms) = c.args.args[0].as_ref()
                && ms.vs.at.is_none()
            {
                out.insert(key(&ms.vs), duration_ms(ms.range));
                return;
            }
            for a in &c.args.args {
                candidates(a, out);
            }
        }
        Expr::Paren(p) => candidates(&p.expr, out),
        Expr::Unary(u) => candidates(&u.expr, out),
        Expr::Binary(b) => {
            candidates(&b.lhs, out);
            candidates(&b.rhs, out);
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                candidates(p, out);
            }
            candidates(&a.expr, out);
        }
        // Inside a subquery the evaluation times are the subquery's.
        Expr::Subquery(_)
        | Expr::MatrixSelector(_)
        | Expr::VectorSelector(_)
        | Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::Extension(_) => {}
    }
}

/// The window query for a selector with `range_ms` evaluated at
/// `first, first + step, ...` (`steps` times), or `None` when no rollup
/// width fits or no evaluation time is covered.
pub(crate) fn window_query(
    cov: &RollupCoverage,
    range_ms: i64,
    first: i64,
    step_ms: i64,
    steps: usize,
) -> Option<WindowQuery> {
    let res = cov
        .resolutions_ms
        .iter()
        .copied()
        .filter(|&w| {
            w > 0
                && range_ms > 0
                && range_ms % w == 0
                && first.rem_euclid(w) == 0
                && (steps <= 1 || step_ms % w == 0)
        })
        .max()?;
    let covered = if first >= cov.complete_before_ms {
        0
    } else if steps <= 1 {
        1
    } else {
        let n = (cov.complete_before_ms - 1 - first) / step_ms + 1;
        usize::try_from(n).unwrap_or(usize::MAX).min(steps)
    };
    (covered > 0).then_some(WindowQuery {
        resolution_ms: res,
        range_ms,
        first_ms: first,
        step_ms,
        steps: covered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_widest_fitting_width_and_the_covered_steps() {
        let cov = RollupCoverage {
            resolutions_ms: vec![10_000, 60_000, 300_000, 3_600_000],
            complete_before_ms: 10 * 3_600_000 + 1,
        };
        let h = 3_600_000;
        let q = window_query(&cov, h, 2 * h, h, 24).unwrap();
        assert_eq!((q.resolution_ms, q.steps), (h, 9));
        // 90 s step: only 10 s windows fit.
        let q = window_query(&cov, 600_000, 0, 90_000, 10).unwrap();
        assert_eq!(q.resolution_ms, 10_000);
        // Unaligned start, a range no width divides, nothing covered.
        assert!(window_query(&cov, h, 2 * h + 1, h, 3).is_none());
        assert!(window_query(&cov, 15_000, 0, 60_000, 3).is_none());
        assert!(window_query(&cov, h, 11 * h, h, 3).is_none());
        let q = window_query(&cov, h, 0, 0, 1).unwrap();
        assert_eq!((q.steps, q.time(0)), (1, 0));
    }
}
