//! Subqueries (`expr[range:step]`): the inner expression evaluated at every
//! multiple of the step inside the window, as Prometheus aligns them to
//! absolute time. Consecutive outer steps share most inner points, so each
//! is evaluated once per query and kept until it leaves the window.

use std::collections::HashMap;

use crate::engine::{Ctx, at_ms, duration_ms, offset_ms};
use crate::error::QueryError;
use crate::labels::Labels;
use crate::source::Series;

impl Ctx {
    /// Evaluates a subquery at `ts`: its expression at every multiple of its
    /// step inside `[ref - range, ref]` (Prometheus aligns subquery steps to
    /// absolute time), as series. Returns the series and the window.
    pub(crate) fn eval_subquery(
        &self,
        sq: &promql_parser::parser::SubqueryExpr,
        ts: i64,
    ) -> Result<(Vec<Series>, i64, i64), QueryError> {
        let base = match &sq.at {
            Some(at) => at_ms(at, self.start, self.end),
            None => ts,
        };
        let hi = base - offset_ms(sq.offset.as_ref());
        let lo = hi - duration_ms(sq.range);
        let step = sq.step.map_or(self.sub_step, duration_ms).max(1);
        let node = std::ptr::from_ref(sq) as usize;
        let mut t = lo.div_euclid(step) * step;
        if t < lo {
            t += step;
        }
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut out: Vec<Series> = Vec::new();
        self.sub_cache
            .borrow_mut()
            .retain(|(n, at), _| *n != node || *at >= lo);
        while t <= hi {
            self.check_deadline()?;
            let cached = self.sub_cache.borrow().get(&(node, t)).cloned();
            let samples = match cached {
                Some(v) => v,
                None => {
                    let v = crate::eval::eval_vector(self, &sq.expr, t)?;
                    self.sub_points.set(self.sub_points.get() + v.len());
                    if self.sub_points.get() > self.max_samples {
                        metrics::counter!("killkrill_query_limit_exceeded_total", "limit" => "max_samples")
                            .increment(1);
                        return Err(QueryError::TooManySamples {
                            limit: self.max_samples,
                        });
                    }
                    self.sub_cache.borrow_mut().insert((node, t), v.clone());
                    v
                }
            };
            for s in samples {
                match index.get(&s.labels) {
                    Some(&i) => out[i].points.push((t, s.v)),
                    None => {
                        index.insert(s.labels.clone(), out.len());
                        out.push(Series {
                            labels: s.labels,
                            points: vec![(t, s.v)],
                        });
                    }
                }
            }
            t += step;
        }
        Ok((out, lo, hi))
    }
}
