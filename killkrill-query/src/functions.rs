//! Function calls: which functions exist, and the instant-vector ones.
//! Range functions compute in [`crate::range_functions`].

use promql_parser::parser::{Call, Expr, MatrixSelector, SubqueryExpr};
use regex::Regex;

use crate::engine::{Ctx, duration_ms, window};
use crate::error::QueryError;
use crate::eval::{check_unique, eval_scalar, eval_string, eval_vector, unparen};
use crate::labels::{self, Labels, METRIC_NAME, drop_name};
use crate::range_functions as rf;
use crate::value::{Sample, Value};

const RANGE_FUNCTIONS: &[&str] = &[
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "deriv",
    "resets",
    "changes",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "last_over_time",
    "quantile_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "present_over_time",
    "absent_over_time",
    "predict_linear",
    "double_exponential_smoothing",
];

const MATH_FUNCTIONS: &[&str] = &[
    "abs", "ceil", "floor", "sqrt", "exp", "ln", "log2", "log10", "sgn", "acos", "acosh", "asin",
    "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh", "tan", "tanh", "deg", "rad",
];

const DATE_FUNCTIONS: &[&str] = &[
    "minute",
    "hour",
    "day_of_week",
    "day_of_month",
    "day_of_year",
    "days_in_month",
    "month",
    "year",
];

const OTHER_FUNCTIONS: &[&str] = &[
    "round",
    "clamp",
    "clamp_min",
    "clamp_max",
    "label_replace",
    "label_join",
    "time",
    "vector",
    "scalar",
    "absent",
    "sort",
    "sort_desc",
    "timestamp",
    "histogram_quantile",
    "pi",
];

/// Every function this evaluator implements.
pub fn supported() -> impl Iterator<Item = &'static str> {
    RANGE_FUNCTIONS
        .iter()
        .chain(MATH_FUNCTIONS)
        .chain(DATE_FUNCTIONS)
        .chain(OTHER_FUNCTIONS)
        .copied()
}

pub(crate) fn check_supported(name: &str) -> Result<(), QueryError> {
    if supported().any(|f| f == name) {
        Ok(())
    } else {
        Err(QueryError::Unsupported(format!(
            "function \"{name}\" is not supported by Killkrill's PromQL engine"
        )))
    }
}

fn arg(c: &Call, i: usize) -> Result<&Expr, QueryError> {
    c.args
        .args
        .get(i)
        .map(|b| b.as_ref())
        .ok_or_else(|| QueryError::BadData(format!("{}: missing argument {}", c.func.name, i + 1)))
}

pub(crate) fn eval(ctx: &Ctx, c: &Call, ts: i64) -> Result<Value, QueryError> {
    let name = c.func.name;
    if RANGE_FUNCTIONS.contains(&name) {
        return eval_range_function(ctx, c, ts).map(Value::Vector);
    }
    if MATH_FUNCTIONS.contains(&name) {
        let f: fn(f64) -> f64 = match name {
            "abs" => f64::abs,
            "ceil" => f64::ceil,
            "floor" => f64::floor,
            "sqrt" => f64::sqrt,
            "exp" => f64::exp,
            "ln" => f64::ln,
            "log2" => f64::log2,
            "log10" => f64::log10,
            "acos" => f64::acos,
            "acosh" => f64::acosh,
            "asin" => f64::asin,
            "asinh" => f64::asinh,
            "atan" => f64::atan,
            "atanh" => f64::atanh,
            "cos" => f64::cos,
            "cosh" => f64::cosh,
            "sin" => f64::sin,
            "sinh" => f64::sinh,
            "tan" => f64::tan,
            "tanh" => f64::tanh,
            "deg" => |x: f64| x * 180.0 / std::f64::consts::PI,
            "rad" => |x: f64| x * std::f64::consts::PI / 180.0,
            _ => sgn,
        };
        return map_values(eval_vector(ctx, arg(c, 0)?, ts)?, f);
    }
    if DATE_FUNCTIONS.contains(&name) {
        let v = match c.args.args.first() {
            Some(e) => eval_vector(ctx, e, ts)?,
            None => vec![Sample {
                labels: Vec::new(),
                t: ts,
                v: ts as f64 / 1000.0,
            }],
        };
        return map_values(v, |x| date_part(name, x));
    }
    let out = match name {
        "time" => return Ok(Value::Scalar(ts as f64 / 1000.0)),
        "pi" => return Ok(Value::Scalar(std::f64::consts::PI)),
        "vector" => vec![Sample {
            labels: Vec::new(),
            t: ts,
            v: eval_scalar(ctx, arg(c, 0)?, ts)?,
        }],
        "scalar" => {
            let v = eval_vector(ctx, arg(c, 0)?, ts)?;
            return Ok(Value::Scalar(if v.len() == 1 { v[0].v } else { f64::NAN }));
        }
        "round" => {
            let to_nearest = match c.args.args.get(1) {
                Some(e) => eval_scalar(ctx, e, ts)?,
                None => 1.0,
            };
            let inv = 1.0 / to_nearest;
            let v = eval_vector(ctx, arg(c, 0)?, ts)?;
            return map_values(v, |x| (x * inv + 0.5).floor() / inv);
        }
        "clamp" => {
            let v = eval_vector(ctx, arg(c, 0)?, ts)?;
            let lo = eval_scalar(ctx, arg(c, 1)?, ts)?;
            let hi = eval_scalar(ctx, arg(c, 2)?, ts)?;
            if hi < lo {
                return Ok(Value::Vector(Vec::new()));
            }
            return map_values(v, |x| go_max(lo, go_min(hi, x)));
        }
        "clamp_min" => {
            let v = eval_vector(ctx, arg(c, 0)?, ts)?;
            let lo = eval_scalar(ctx, arg(c, 1)?, ts)?;
            return map_values(v, |x| go_max(lo, x));
        }
        "clamp_max" => {
            let v = eval_vector(ctx, arg(c, 0)?, ts)?;
            let hi = eval_scalar(ctx, arg(c, 1)?, ts)?;
            return map_values(v, |x| go_min(hi, x));
        }
        "timestamp" => {
            // A selector argument yields its samples' own times; anything else the step time.
            let direct = matches!(arg(c, 0)?, Expr::VectorSelector(_));
            let mut v = eval_vector(ctx, arg(c, 0)?, ts)?;
            for s in &mut v {
                drop_name(&mut s.labels);
                s.v = if direct { s.t } else { ts } as f64 / 1000.0;
                s.t = ts;
            }
            v
        }
        "sort" | "sort_desc" => {
            let mut v = eval_vector(ctx, arg(c, 0)?, ts)?;
            let desc = name == "sort_desc";
            v.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Less,
                (false, true) => std::cmp::Ordering::Greater,
                _ if desc => b.v.total_cmp(&a.v),
                _ => a.v.total_cmp(&b.v),
            });
            return Ok(Value::Vector(v));
        }
        "absent" => {
            let e = arg(c, 0)?;
            if !eval_vector(ctx, e, ts)?.is_empty() {
                Vec::new()
            } else {
                vec![Sample {
                    labels: absent_labels(e),
                    t: ts,
                    v: 1.0,
                }]
            }
        }
        "label_replace" => label_replace(ctx, c, ts)?,
        "label_join" => label_join(ctx, c, ts)?,
        "histogram_quantile" => {
            let q = eval_scalar(ctx, arg(c, 0)?, ts)?;
            crate::histogram::histogram_quantile(q, eval_vector(ctx, arg(c, 1)?, ts)?, ts)
        }
        other => {
            return Err(QueryError::Unsupported(format!(
                "function \"{other}\" is not supported by Killkrill's PromQL engine"
            )));
        }
    };
    check_unique(&out)?;
    Ok(Value::Vector(out))
}

/// A calendar field of a Unix time in seconds, in UTC (Prometheus's
/// `minute()`, `hour()`, ... functions; the time is truncated to seconds).
fn date_part(name: &str, secs: f64) -> f64 {
    if !secs.is_finite() {
        return f64::NAN;
    }
    let Ok(t) = jiff::Timestamp::from_second(secs as i64) else {
        return f64::NAN;
    };
    let d = t.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    f64::from(match name {
        "minute" => i32::from(d.minute()),
        "hour" => i32::from(d.hour()),
        "day_of_week" => i32::from(d.weekday().to_sunday_zero_offset()),
        "day_of_month" => i32::from(d.day()),
        "day_of_year" => i32::from(d.day_of_year()),
        "days_in_month" => i32::from(d.days_in_month()),
        "month" => i32::from(d.month()),
        _ => i32::from(d.year()),
    })
}

fn sgn(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        x
    }
}

/// Go's `math.Max`: NaN wins.
pub(crate) fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN wins.
pub(crate) fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn map_values(mut v: Vec<Sample>, f: impl Fn(f64) -> f64) -> Result<Value, QueryError> {
    for s in &mut v {
        drop_name(&mut s.labels);
        s.v = f(s.v);
    }
    check_unique(&v)?;
    Ok(Value::Vector(v))
}

/// Labels of `absent(selector)`: the equality matchers, unless a label is matched twice.
fn absent_labels(e: &Expr) -> Labels {
    let vs = match e {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Vec::new(),
    };
    let mut out: Labels = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        let is_eq = matches!(m.op, promql_parser::label::MatchOp::Equal);
        if is_eq && !seen.contains(&m.name.as_str()) {
            labels::set(&mut out, &m.name, &m.value);
            seen.push(&m.name);
        } else {
            labels::set(&mut out, &m.name, "");
        }
    }
    out
}

type LabelPair = (String, String);

/// The range-vector argument of a range function call.
enum RangeArg<'a> {
    Selector(&'a MatrixSelector),
    Subquery(&'a SubqueryExpr),
}

fn range_arg(c: &Call) -> Result<RangeArg<'_>, QueryError> {
    let e = if c.func.name == "quantile_over_time" {
        arg(c, 1)?
    } else {
        arg(c, 0)?
    };
    match unparen(e) {
        Expr::MatrixSelector(ms) => Ok(RangeArg::Selector(ms)),
        Expr::Subquery(sq) => Ok(RangeArg::Subquery(sq)),
        _ => Err(QueryError::Unsupported(format!(
            "{}: the range-vector argument must be a range selector or a subquery",
            c.func.name
        ))),
    }
}

fn range_value(
    name: &str,
    w: &[(i64, f64)],
    lo: i64,
    hi: i64,
    ts: i64,
    params: &[f64],
) -> Result<Option<f64>, QueryError> {
    let param = |i: usize| params.get(i).copied().unwrap_or(f64::NAN);
    Ok(match name {
        "rate" => rf::extrapolated_rate(w, lo, hi, true, true),
        "increase" => rf::extrapolated_rate(w, lo, hi, true, false),
        "delta" => rf::extrapolated_rate(w, lo, hi, false, false),
        "irate" => rf::instant_value(w, true),
        "idelta" => rf::instant_value(w, false),
        "deriv" => rf::deriv(w),
        "resets" => rf::resets(w),
        "changes" => rf::changes(w),
        "avg_over_time" => rf::avg(w),
        "min_over_time" => rf::min(w),
        "max_over_time" => rf::max(w),
        "sum_over_time" => rf::sum(w),
        "count_over_time" => Some(w.len() as f64),
        "last_over_time" => w.last().map(|p| p.1),
        "quantile_over_time" => {
            let mut vals: Vec<f64> = w.iter().map(|p| p.1).collect();
            Some(rf::quantile(param(0), &mut vals))
        }
        "stddev_over_time" => rf::stdvar(w).map(f64::sqrt),
        "stdvar_over_time" => rf::stdvar(w),
        "present_over_time" | "absent_over_time" => Some(1.0),
        "predict_linear" => rf::predict_linear(w, ts, param(0)),
        "double_exponential_smoothing" => rf::double_exponential_smoothing(w, param(0), param(1)),
        other => {
            return Err(QueryError::Unsupported(format!(
                "function \"{other}\" is not supported by Killkrill's PromQL engine"
            )));
        }
    })
}

/// Computes a range function for every series with data in its window,
/// handing `(the series' labels, value)` to `f`; returns whether any series
/// had data in its window.
fn for_each_range_value(
    ctx: &Ctx,
    c: &Call,
    ts: i64,
    f: &mut dyn FnMut(&[LabelPair], f64),
) -> Result<bool, QueryError> {
    let name = c.func.name;
    // Scalar arguments besides the range vector.
    let mut params = Vec::new();
    for (i, e) in c.args.args.iter().enumerate() {
        let is_range = if name == "quantile_over_time" {
            i == 1
        } else {
            i == 0
        };
        if !is_range {
            params.push(eval_scalar(ctx, e, ts)?);
        }
    }
    if name == "double_exponential_smoothing" {
        for (p, what) in params.iter().zip(["smoothing", "trend"]) {
            if !(*p > 0.0 && *p < 1.0) {
                return Err(QueryError::exec(format!(
                    "invalid {what} factor. Expected: 0 < {} < 1, got: {p}",
                    if what == "smoothing" { "sf" } else { "tf" }
                )));
            }
        }
    }
    let mut any = false;
    match range_arg(c)? {
        RangeArg::Selector(ms) => {
            let hi = ctx.ref_time(&ms.vs, ts);
            let lo = hi - duration_ms(ms.range);
            if let Some(r) = ctx.rollups.get(&crate::engine::key(&ms.vs))
                && r.covers(hi)
            {
                for s in &r.series {
                    let Ok(i) = s.windows.binary_search_by_key(&hi, |w| w.0) else {
                        continue;
                    };
                    any = true;
                    if let Some(v) = crate::rollup_plan::value(name, &s.windows[i].1) {
                        f(&s.labels, v);
                    }
                }
                return Ok(any);
            }
            for s in ctx.series(&ms.vs) {
                let w = window(&s.points, lo, hi);
                if w.is_empty() {
                    continue;
                }
                any = true;
                if let Some(v) = range_value(name, &w, lo, hi, ts, &params)? {
                    f(&s.labels, v);
                }
            }
        }
        RangeArg::Subquery(sq) => {
            let (series, lo, hi) = ctx.eval_subquery(sq, ts)?;
            for s in &series {
                any = true;
                if let Some(v) = range_value(name, &s.points, lo, hi, ts, &params)? {
                    f(&s.labels, v);
                }
            }
        }
    }
    Ok(any)
}

fn eval_range_function(ctx: &Ctx, c: &Call, ts: i64) -> Result<Vec<Sample>, QueryError> {
    let name = c.func.name;
    let keep_name = name == "last_over_time";
    let mut out = Vec::new();
    let any = for_each_range_value(ctx, c, ts, &mut |l, v| {
        let labels = if keep_name {
            l.to_vec()
        } else {
            l.iter()
                .filter(|(k, _)| k != METRIC_NAME)
                .cloned()
                .collect()
        };
        out.push(Sample { labels, t: ts, v });
    })?;
    if name == "absent_over_time" {
        if any {
            return Ok(Vec::new());
        }
        let labels = match range_arg(c)? {
            RangeArg::Selector(ms) => absent_labels(&Expr::MatrixSelector(ms.clone())),
            RangeArg::Subquery(_) => Vec::new(),
        };
        return Ok(vec![Sample {
            labels,
            t: ts,
            v: 1.0,
        }]);
    }
    let uniform = match range_arg(c)? {
        RangeArg::Selector(ms) => ctx.one_name.contains(&crate::engine::key(&ms.vs)),
        RangeArg::Subquery(_) => false,
    };
    if !keep_name && !uniform {
        check_unique(&out)?;
    }
    Ok(out)
}

/// When `e` is a range function over a range selector whose output cannot
/// contain duplicate label sets, folds its values into `f` as
/// `(the series' labels, whether the metric name counts as dropped, value)`
/// without building the intermediate vector; `None` when `e` is anything
/// else (the caller evaluates it normally).
pub(crate) fn fold_range_function(
    ctx: &Ctx,
    e: &Expr,
    ts: i64,
    f: &mut dyn FnMut(&[LabelPair], bool, f64),
) -> Option<Result<(), QueryError>> {
    let Expr::Call(c) = unparen(e) else {
        return None;
    };
    let name = c.func.name;
    if !RANGE_FUNCTIONS.contains(&name) || name == "absent_over_time" {
        return None;
    }
    let RangeArg::Selector(ms) = range_arg(c).ok()? else {
        return None;
    };
    let keep_name = name == "last_over_time";
    if !keep_name && !ctx.one_name.contains(&crate::engine::key(&ms.vs)) {
        return None;
    }
    Some(for_each_range_value(ctx, c, ts, &mut |l, v| f(l, !keep_name, v)).map(|_| ()))
}

fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn label_replace(ctx: &Ctx, c: &Call, ts: i64) -> Result<Vec<Sample>, QueryError> {
    let mut v = eval_vector(ctx, arg(c, 0)?, ts)?;
    let dst = eval_string(ctx, arg(c, 1)?, ts)?;
    let repl = eval_string(ctx, arg(c, 2)?, ts)?;
    let src = eval_string(ctx, arg(c, 3)?, ts)?;
    let re_text = eval_string(ctx, arg(c, 4)?, ts)?;
    let re = Regex::new(&format!("^(?:{re_text})$")).map_err(|e| {
        QueryError::Execution(format!(
            "invalid regular expression in label_replace(): {re_text}: {e}"
        ))
    })?;
    if !valid_label_name(&dst) {
        return Err(QueryError::Execution(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    for s in &mut v {
        let src_val = labels::get(&s.labels, &src).to_string();
        if let Some(caps) = re.captures(&src_val) {
            let mut res = String::new();
            caps.expand(&repl, &mut res);
            labels::set(&mut s.labels, &dst, &res);
        }
        s.t = ts;
    }
    Ok(v)
}

fn label_join(ctx: &Ctx, c: &Call, ts: i64) -> Result<Vec<Sample>, QueryError> {
    let mut v = eval_vector(ctx, arg(c, 0)?, ts)?;
    let dst = eval_string(ctx, arg(c, 1)?, ts)?;
    let sep = eval_string(ctx, arg(c, 2)?, ts)?;
    let mut srcs = Vec::new();
    for e in c.args.args.iter().skip(3) {
        srcs.push(eval_string(ctx, e, ts)?);
    }
    if !valid_label_name(&dst) {
        return Err(QueryError::Execution(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    for s in &mut v {
        let joined: Vec<&str> = srcs.iter().map(|n| labels::get(&s.labels, n)).collect();
        let joined = joined.join(&sep);
        labels::set(&mut s.labels, &dst, &joined);
        s.t = ts;
    }
    Ok(v)
}
