//! Evaluation of one expression at one step: the dispatcher over node kinds.

use std::collections::HashSet;

use promql_parser::parser::Expr;

use crate::engine::{Ctx, duration_ms, window};
use crate::error::QueryError;
use crate::labels::{Labels, display, drop_name};
use crate::source::Series;
use crate::value::{Sample, Value};

/// Evaluates `e` at time `ts` (milliseconds).
pub(crate) fn eval(ctx: &Ctx, e: &Expr, ts: i64) -> Result<Value, QueryError> {
    match e {
        Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
        Expr::StringLiteral(s) => Ok(Value::String(s.val.clone())),
        Expr::Paren(p) => eval(ctx, &p.expr, ts),
        Expr::Unary(u) => match eval(ctx, &u.expr, ts)? {
            Value::Scalar(v) => Ok(Value::Scalar(-v)),
            Value::Vector(mut samples) => {
                for s in &mut samples {
                    drop_name(&mut s.labels);
                    s.v = -s.v;
                }
                check_unique(&samples)?;
                Ok(Value::Vector(samples))
            }
            other => Err(QueryError::exec(format!(
                "unary minus on {}",
                other.type_name()
            ))),
        },
        Expr::VectorSelector(vs) => Ok(Value::Vector(ctx.select_instant(vs, ts))),
        Expr::MatrixSelector(ms) => {
            let r = ctx.ref_time(&ms.vs, ts);
            let lo = r - duration_ms(ms.range);
            let mut out = Vec::new();
            for s in ctx.series(&ms.vs) {
                let w = window(&s.points, lo, r);
                if !w.is_empty() {
                    out.push(Series {
                        labels: s.labels.clone(),
                        points: w.into_owned(),
                    });
                }
            }
            Ok(Value::Matrix(out))
        }
        Expr::Aggregate(a) => crate::aggregate::eval(ctx, a, ts),
        Expr::Binary(b) => crate::binary::eval_binary(ctx, b, ts),
        Expr::Call(c) => crate::functions::eval(ctx, c, ts),
        Expr::Subquery(sq) => Ok(Value::Matrix(ctx.eval_subquery(sq, ts)?.0)),
        Expr::Extension(_) => Err(QueryError::Unsupported(
            "extension expressions are not supported".to_string(),
        )),
    }
}

pub(crate) fn eval_scalar(ctx: &Ctx, e: &Expr, ts: i64) -> Result<f64, QueryError> {
    match eval(ctx, e, ts)? {
        Value::Scalar(v) => Ok(v),
        other => Err(QueryError::exec(format!(
            "expected scalar, got {}",
            other.type_name()
        ))),
    }
}

pub(crate) fn eval_vector(ctx: &Ctx, e: &Expr, ts: i64) -> Result<Vec<Sample>, QueryError> {
    match eval(ctx, e, ts)? {
        Value::Vector(v) => Ok(v),
        other => Err(QueryError::exec(format!(
            "expected instant vector, got {}",
            other.type_name()
        ))),
    }
}

pub(crate) fn eval_string(ctx: &Ctx, e: &Expr, ts: i64) -> Result<String, QueryError> {
    match eval(ctx, e, ts)? {
        Value::String(v) => Ok(v),
        other => Err(QueryError::exec(format!(
            "expected string, got {}",
            other.type_name()
        ))),
    }
}

/// Prometheus refuses a vector with two elements of the same label set
/// (e.g. `rate({__name__=~"a|b"}[1m])` when `a` and `b` share labels).
pub(crate) fn check_unique(samples: &[Sample]) -> Result<(), QueryError> {
    if samples.len() < 2 {
        return Ok(());
    }
    let mut seen: HashSet<&Labels> = HashSet::with_capacity(samples.len());
    for s in samples {
        if !seen.insert(&s.labels) {
            return Err(QueryError::exec(format!(
                "vector cannot contain metrics with the same labelset {}",
                display(&s.labels)
            )));
        }
    }
    Ok(())
}

/// Unwraps parentheses around an argument.
pub(crate) fn unparen(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}
