//! Binary operators: arithmetic, comparison (filtering or `bool`) and set
//! operators between scalars and vectors, with Prometheus's vector matching
//! (`on`/`ignoring`, `group_left`/`group_right`) and its error messages.

use std::collections::{HashMap, HashSet};

use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use crate::engine::Ctx;
use crate::error::QueryError;
use crate::eval::{check_unique, eval};
use crate::labels::{self, Labels, METRIC_NAME, display, drop_name};
use crate::value::{Sample, Value};

fn is_comparison(op: &str) -> bool {
    matches!(op, "==" | "!=" | ">" | "<" | ">=" | "<=")
}

fn drops_name(op: &str) -> bool {
    matches!(op, "+" | "-" | "*" | "/" | "%" | "^" | "atan2")
}

/// `(value, keep)` of `l op r`, as Prometheus's `vectorElemBinop`.
pub(crate) fn elem(op: &str, l: f64, r: f64) -> Result<(f64, bool), QueryError> {
    Ok(match op {
        "+" => (l + r, true),
        "-" => (l - r, true),
        "*" => (l * r, true),
        "/" => (l / r, true),
        "%" => (l % r, true),
        "^" => (l.powf(r), true),
        "atan2" => (l.atan2(r), true),
        "==" => (l, l == r),
        "!=" => (l, l != r),
        ">" => (l, l > r),
        "<" => (l, l < r),
        ">=" => (l, l >= r),
        "<=" => (l, l <= r),
        other => {
            return Err(QueryError::Unsupported(format!(
                "binary operator \"{other}\" is not supported"
            )));
        }
    })
}

pub(crate) fn eval_binary(ctx: &Ctx, b: &BinaryExpr, ts: i64) -> Result<Value, QueryError> {
    let op = b.op.to_string();
    let return_bool = b.return_bool();
    let lhs = eval(ctx, &b.lhs, ts)?;
    let rhs = eval(ctx, &b.rhs, ts)?;
    let out = match (lhs, rhs) {
        (Value::Scalar(l), Value::Scalar(r)) => {
            let (v, keep) = elem(&op, l, r)?;
            let v = if is_comparison(&op) {
                if keep { 1.0 } else { 0.0 }
            } else {
                v
            };
            return Ok(Value::Scalar(v));
        }
        (Value::Vector(l), Value::Scalar(r)) => vector_scalar(&op, l, r, false, return_bool)?,
        (Value::Scalar(l), Value::Vector(r)) => vector_scalar(&op, r, l, true, return_bool)?,
        (Value::Vector(l), Value::Vector(r)) => {
            let matching = b.modifier.as_ref().and_then(|m| m.matching.as_ref());
            match op.as_str() {
                "and" => set_and_unless(l, &r, matching, true),
                "unless" => set_and_unless(l, &r, matching, false),
                "or" => set_or(l, r, matching),
                _ => {
                    let card = b
                        .modifier
                        .as_ref()
                        .map_or(VectorMatchCardinality::OneToOne, |m| m.card.clone());
                    vector_vector(&op, l, r, matching, &card, return_bool)?
                }
            }
        }
        (l, r) => {
            return Err(QueryError::exec(format!(
                "binary operator \"{op}\" between {} and {}",
                l.type_name(),
                r.type_name()
            )));
        }
    };
    check_unique(&out)?;
    Ok(Value::Vector(out))
}

fn vector_scalar(
    op: &str,
    v: Vec<Sample>,
    scalar: f64,
    scalar_left: bool,
    return_bool: bool,
) -> Result<Vec<Sample>, QueryError> {
    let mut out = Vec::with_capacity(v.len());
    for mut s in v {
        let (l, r) = if scalar_left {
            (scalar, s.v)
        } else {
            (s.v, scalar)
        };
        let (mut value, mut keep) = elem(op, l, r)?;
        if is_comparison(op) && scalar_left {
            value = r;
        }
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if keep {
            s.v = value;
            if drops_name(op) || return_bool {
                drop_name(&mut s.labels);
            }
            out.push(s);
        }
    }
    Ok(out)
}

/// The matching signature of a label set.
fn signature(l: &[(String, String)], matching: Option<&LabelModifier>) -> Labels {
    match matching {
        Some(LabelModifier::Include(ls)) => l
            .iter()
            .filter(|(k, _)| ls.labels.iter().any(|n| n == k))
            .cloned()
            .collect(),
        Some(LabelModifier::Exclude(ls)) => l
            .iter()
            .filter(|(k, _)| k != METRIC_NAME && !ls.labels.iter().any(|n| n == k))
            .cloned()
            .collect(),
        None => l
            .iter()
            .filter(|(k, _)| k != METRIC_NAME)
            .cloned()
            .collect(),
    }
}

fn set_and_unless(
    l: Vec<Sample>,
    r: &[Sample],
    matching: Option<&LabelModifier>,
    and: bool,
) -> Vec<Sample> {
    let right: HashSet<Labels> = r.iter().map(|s| signature(&s.labels, matching)).collect();
    l.into_iter()
        .filter(|s| right.contains(&signature(&s.labels, matching)) == and)
        .collect()
}

fn set_or(l: Vec<Sample>, r: Vec<Sample>, matching: Option<&LabelModifier>) -> Vec<Sample> {
    let left: HashSet<Labels> = l.iter().map(|s| signature(&s.labels, matching)).collect();
    let mut out = l;
    out.extend(
        r.into_iter()
            .filter(|s| !left.contains(&signature(&s.labels, matching))),
    );
    out
}

fn vector_vector(
    op: &str,
    l: Vec<Sample>,
    r: Vec<Sample>,
    matching: Option<&LabelModifier>,
    card: &VectorMatchCardinality,
    return_bool: bool,
) -> Result<Vec<Sample>, QueryError> {
    let one_to_many = matches!(card, VectorMatchCardinality::OneToMany(_));
    let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
    let include: &[String] = card.labels().map_or(&[], |ls| ls.labels.as_slice());
    let (many, one) = if one_to_many { (r, l) } else { (l, r) };
    let mut right: HashMap<Labels, &Sample> = HashMap::with_capacity(one.len());
    for s in &one {
        let sig = signature(&s.labels, matching);
        if let Some(prev) = right.get(&sig) {
            let side = if one_to_many { "left" } else { "right" };
            return Err(QueryError::exec(format!(
                "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                display(&sig),
                display(&prev.labels),
                display(&s.labels)
            )));
        }
        right.insert(sig, s);
    }
    let mut matched: HashMap<Labels, HashSet<Labels>> = HashMap::new();
    let mut out = Vec::new();
    for ls in many {
        let sig = signature(&ls.labels, matching);
        let Some(rs) = right.get(&sig) else { continue };
        let (vl, vr) = if one_to_many {
            (rs.v, ls.v)
        } else {
            (ls.v, rs.v)
        };
        let (mut value, keep) = elem(op, vl, vr)?;
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        let mut metric = ls.labels.clone();
        if drops_name(op) || return_bool {
            drop_name(&mut metric);
        }
        if one_to_one {
            match matching {
                Some(LabelModifier::Include(on)) => {
                    metric.retain(|(k, _)| on.labels.iter().any(|n| n == k));
                }
                Some(LabelModifier::Exclude(ign)) => {
                    metric.retain(|(k, _)| !ign.labels.iter().any(|n| n == k));
                }
                None => {}
            }
        }
        for name in include {
            labels::set(&mut metric, name, labels::get(&rs.labels, name));
        }
        if one_to_one {
            if matched.insert(sig, HashSet::new()).is_some() {
                return Err(QueryError::exec(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                ));
            }
        } else {
            let set = matched.entry(sig).or_default();
            if !set.insert(metric.clone()) {
                return Err(QueryError::exec(
                    "multiple matches for labels: grouping labels must ensure unique matches",
                ));
            }
        }
        out.push(Sample {
            labels: metric,
            t: ls.t,
            v: value,
        });
    }
    Ok(out)
}
