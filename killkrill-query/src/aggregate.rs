//! Aggregation operators (`sum by (job) (...)` and friends), with
//! Prometheus's grouping rules: `by` keeps only the listed labels, `without`
//! drops the listed ones and the metric name; groups come out in the order
//! they were first seen.

use std::collections::HashMap;

use promql_parser::parser::{AggregateExpr, LabelModifier};

use crate::engine::Ctx;
use crate::error::QueryError;
use crate::eval::{eval_scalar, eval_string, eval_vector};
use crate::labels::{self, Labels, METRIC_NAME};
use crate::range_functions::quantile;
use crate::value::{Sample, Value, format_float};

const SUPPORTED: &[&str] = &[
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
];

pub(crate) fn check_supported(a: &AggregateExpr) -> Result<(), QueryError> {
    let op = a.op.to_string();
    if SUPPORTED.contains(&op.as_str()) {
        Ok(())
    } else {
        Err(QueryError::Unsupported(format!(
            "aggregation \"{op}\" is not supported by Killkrill's PromQL engine"
        )))
    }
}

/// Whether a label takes part in the group key.
fn in_key(name: &str, modifier: Option<&LabelModifier>) -> bool {
    match modifier {
        None => false,
        Some(LabelModifier::Include(ls)) => ls.labels.iter().any(|l| l == name),
        Some(LabelModifier::Exclude(ls)) => {
            name != METRIC_NAME && !ls.labels.iter().any(|l| l == name)
        }
    }
}

/// The group key of a label set.
pub(crate) fn group_key(labels: &[(String, String)], modifier: Option<&LabelModifier>) -> Labels {
    labels
        .iter()
        .filter(|(k, _)| in_key(k, modifier))
        .cloned()
        .collect()
}

/// Hash of the group key without building it (the hot path of
/// `sum by (...)` over many series: no allocation per input sample).
fn group_hash(labels: &[(String, String)], modifier: Option<&LabelModifier>) -> u64 {
    key_hash(labels.iter().filter(|(k, _)| in_key(k, modifier)))
}

fn key_hash<'a>(pairs: impl Iterator<Item = &'a (String, String)>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    for (k, v) in pairs {
        k.hash(&mut h);
        v.hash(&mut h);
    }
    h.finish()
}

/// Whether `labels` fall into the group whose key is `key`.
fn same_group(
    key: &[(String, String)],
    labels: &[(String, String)],
    modifier: Option<&LabelModifier>,
) -> bool {
    key.iter()
        .eq(labels.iter().filter(|(k, _)| in_key(k, modifier)))
}

struct Group {
    labels: Labels,
    value: f64,
    mean: f64,
    count: f64,
    samples: Vec<Sample>,
    values: Vec<f64>,
}

pub(crate) fn eval(ctx: &Ctx, a: &AggregateExpr, ts: i64) -> Result<Value, QueryError> {
    let op = a.op.to_string();
    let modifier = a.modifier.as_ref();
    let mut k = 0usize;
    let mut q = 0.0;
    let mut value_label = String::new();
    if let Some(p) = &a.param {
        match op.as_str() {
            "topk" | "bottomk" => {
                let kf = eval_scalar(ctx, p, ts)?;
                if kf.is_nan() || kf >= 9.2e18 || kf <= -9.2e18 {
                    return Err(QueryError::exec(format!(
                        "Scalar value {} overflows int64",
                        format_float(kf)
                    )));
                }
                if kf < 1.0 {
                    return Ok(Value::Vector(Vec::new()));
                }
                k = kf as usize;
            }
            "quantile" => q = eval_scalar(ctx, p, ts)?,
            "count_values" => {
                value_label = eval_string(ctx, p, ts)?;
                if value_label.is_empty()
                    || !value_label.chars().enumerate().all(|(i, c)| {
                        c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())
                    })
                {
                    return Err(QueryError::exec(format!(
                        "invalid label name {value_label:?}"
                    )));
                }
            }
            _ => {}
        }
    }
    let input = eval_vector(ctx, &a.expr, ts)?;
    let mut index: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    for s in input {
        let (hash, found, key) = if op == "count_values" {
            let mut key = group_key(&s.labels, modifier);
            labels::set(&mut key, &value_label, &format_float(s.v));
            let hash = key_hash(key.iter());
            let found = index
                .get(&hash)
                .and_then(|c| c.iter().copied().find(|&i| groups[i].labels == key));
            (hash, found, Some(key))
        } else {
            let hash = group_hash(&s.labels, modifier);
            let found = index.get(&hash).and_then(|c| {
                c.iter()
                    .copied()
                    .find(|&i| same_group(&groups[i].labels, &s.labels, modifier))
            });
            (hash, found, None)
        };
        let gi = match found {
            Some(i) => i,
            None => {
                let key = key.unwrap_or_else(|| group_key(&s.labels, modifier));
                index.entry(hash).or_default().push(groups.len());
                groups.push(Group {
                    labels: key,
                    value: s.v,
                    mean: s.v,
                    count: 1.0,
                    samples: Vec::new(),
                    values: Vec::new(),
                });
                let g = groups
                    .last_mut()
                    .ok_or_else(|| QueryError::exec("empty group"))?;
                match op.as_str() {
                    "stddev" | "stdvar" => g.value = 0.0,
                    "topk" | "bottomk" => g.samples.push(s),
                    "quantile" => g.values.push(s.v),
                    _ => {}
                }
                continue;
            }
        };
        let g = &mut groups[gi];
        g.count += 1.0;
        match op.as_str() {
            "sum" => g.value += s.v,
            "avg" => {
                if g.mean.is_infinite() {
                    if s.v.is_infinite() && (g.mean > 0.0) == (s.v > 0.0) {
                        continue;
                    }
                    if !s.v.is_infinite() && !s.v.is_nan() {
                        continue;
                    }
                }
                g.mean += s.v / g.count - g.mean / g.count;
            }
            "max" if g.value < s.v || g.value.is_nan() => g.value = s.v,
            "min" if g.value > s.v || g.value.is_nan() => g.value = s.v,
            "stddev" | "stdvar" => {
                let delta = s.v - g.mean;
                g.mean += delta / g.count;
                g.value += delta * (s.v - g.mean);
            }
            "topk" | "bottomk" => g.samples.push(s),
            "quantile" => g.values.push(s.v),
            _ => {}
        }
    }
    let mut out = Vec::with_capacity(groups.len());
    for mut g in groups {
        let v = match op.as_str() {
            "sum" | "min" | "max" => g.value,
            "avg" => g.mean,
            "count" | "count_values" => g.count,
            "group" => 1.0,
            "stdvar" => g.value / g.count,
            "stddev" => (g.value / g.count).sqrt(),
            "quantile" => quantile(q, &mut g.values),
            "topk" | "bottomk" => {
                let desc = op == "topk";
                g.samples
                    .sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Greater,
                        (false, true) => std::cmp::Ordering::Less,
                        _ if desc => b.v.total_cmp(&a.v),
                        _ => a.v.total_cmp(&b.v),
                    });
                g.samples.truncate(k);
                for mut s in g.samples {
                    s.t = ts;
                    out.push(s);
                }
                continue;
            }
            other => {
                return Err(QueryError::Unsupported(format!(
                    "aggregation \"{other}\" is not supported by Killkrill's PromQL engine"
                )));
            }
        };
        out.push(Sample {
            labels: g.labels,
            t: ts,
            v,
        });
    }
    Ok(Value::Vector(out))
}
