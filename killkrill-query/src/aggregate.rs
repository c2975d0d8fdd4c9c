//! Aggregation operators (`sum by (job) (...)` and friends), with
//! Prometheus's grouping rules: `by` keeps only the listed labels, `without`
//! drops the listed ones and the metric name; groups come out in the order
//! they were first seen.

use std::collections::HashMap;

use promql_parser::parser::{AggregateExpr, LabelModifier};

use crate::engine::Ctx;
use crate::error::QueryError;
use crate::eval::{eval_scalar, eval_string, eval_vector};
use crate::labels::{Labels, METRIC_NAME};
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

/// Whether a label takes part in the group key (`name_dropped`: the input's
/// metric name is already gone, as after `rate`).
fn in_key(name: &str, modifier: Option<&LabelModifier>, name_dropped: bool) -> bool {
    if name_dropped && name == METRIC_NAME {
        return false;
    }
    match modifier {
        None => false,
        Some(LabelModifier::Include(ls)) => ls.labels.iter().any(|l| l == name),
        Some(LabelModifier::Exclude(ls)) => {
            name != METRIC_NAME && !ls.labels.iter().any(|l| l == name)
        }
    }
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

struct Group {
    labels: Labels,
    value: f64,
    mean: f64,
    count: f64,
    samples: Vec<Sample>,
    values: Vec<f64>,
}

/// Groups samples and folds each group, without allocating a key per input
/// sample (the hot path of `sum by (...)` over many series): a group is
/// found by the hash of its key labels and confirmed by comparing them.
struct Aggregator<'a> {
    op: &'a str,
    modifier: Option<&'a LabelModifier>,
    value_label: &'a str,
    index: HashMap<u64, Vec<usize>>,
    groups: Vec<Group>,
}

impl<'a> Aggregator<'a> {
    fn new(op: &'a str, modifier: Option<&'a LabelModifier>, value_label: &'a str) -> Self {
        Aggregator {
            op,
            modifier,
            value_label,
            index: HashMap::new(),
            groups: Vec::new(),
        }
    }

    /// The group of a label set, created when new.
    fn group(&mut self, labels: &[(String, String)], name_dropped: bool, v: f64) -> (usize, bool) {
        let modifier = self.modifier;
        if self.op == "count_values" {
            let mut key: Labels = labels
                .iter()
                .filter(|(k, _)| in_key(k, modifier, name_dropped))
                .cloned()
                .collect();
            crate::labels::set(&mut key, self.value_label, &format_float(v));
            let hash = key_hash(key.iter());
            if let Some(i) = self
                .index
                .get(&hash)
                .and_then(|c| c.iter().copied().find(|&i| self.groups[i].labels == key))
            {
                return (i, false);
            }
            return (self.insert(hash, key, v), true);
        }
        let keyed = || {
            labels
                .iter()
                .filter(|(k, _)| in_key(k, modifier, name_dropped))
        };
        let hash = key_hash(keyed());
        if let Some(i) = self.index.get(&hash).and_then(|c| {
            c.iter()
                .copied()
                .find(|&i| self.groups[i].labels.iter().eq(keyed()))
        }) {
            return (i, false);
        }
        (self.insert(hash, keyed().cloned().collect(), v), true)
    }

    fn insert(&mut self, hash: u64, labels: Labels, v: f64) -> usize {
        self.index.entry(hash).or_default().push(self.groups.len());
        self.groups.push(Group {
            labels,
            value: if matches!(self.op, "stddev" | "stdvar") {
                0.0
            } else {
                v
            },
            mean: v,
            count: 1.0,
            samples: Vec::new(),
            values: Vec::new(),
        });
        self.groups.len() - 1
    }

    /// Adds one value (every operator but `topk`/`bottomk`).
    fn add(&mut self, labels: &[(String, String)], name_dropped: bool, v: f64) {
        let (gi, new) = self.group(labels, name_dropped, v);
        let g = &mut self.groups[gi];
        if new {
            if self.op == "quantile" {
                g.values.push(v);
            }
            return;
        }
        g.count += 1.0;
        match self.op {
            "sum" => g.value += v,
            "avg" => {
                if g.mean.is_infinite() {
                    if v.is_infinite() && (g.mean > 0.0) == (v > 0.0) {
                        return;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        return;
                    }
                }
                g.mean += v / g.count - g.mean / g.count;
            }
            "max" if g.value < v || g.value.is_nan() => g.value = v,
            "min" if g.value > v || g.value.is_nan() => g.value = v,
            "stddev" | "stdvar" => {
                let delta = v - g.mean;
                g.mean += delta / g.count;
                g.value += delta * (v - g.mean);
            }
            "quantile" => g.values.push(v),
            _ => {}
        }
    }

    /// Adds a whole sample (`topk`/`bottomk` keep them).
    fn add_sample(&mut self, s: Sample) {
        let (gi, _) = self.group(&s.labels, false, s.v);
        self.groups[gi].samples.push(s);
    }

    fn finish(self, q: f64, k: usize, ts: i64) -> Vec<Sample> {
        let mut out = Vec::with_capacity(self.groups.len());
        for mut g in self.groups {
            let v = match self.op {
                "sum" | "min" | "max" => g.value,
                "avg" => g.mean,
                "stdvar" => g.value / g.count,
                "stddev" => (g.value / g.count).sqrt(),
                "quantile" => quantile(q, &mut g.values),
                "topk" | "bottomk" => {
                    let desc = self.op == "topk";
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
                "group" => 1.0,
                // count, count_values
                _ => g.count,
            };
            out.push(Sample {
                labels: g.labels,
                t: ts,
                v,
            });
        }
        out
    }
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
    check_supported(a)?;
    let mut agg = Aggregator::new(&op, modifier, &value_label);
    if !matches!(op.as_str(), "topk" | "bottomk") {
        // Fused path: a range function straight into the aggregation, with
        // no intermediate vector of relabelled samples.
        if let Some(res) =
            crate::functions::fold_range_function(ctx, &a.expr, ts, &mut |l, dropped, v| {
                agg.add(l, dropped, v)
            })
        {
            res?;
            return Ok(Value::Vector(agg.finish(q, k, ts)));
        }
    }
    for s in eval_vector(ctx, &a.expr, ts)? {
        if matches!(op.as_str(), "topk" | "bottomk") {
            agg.add_sample(s);
        } else {
            agg.add(&s.labels, false, s.v);
        }
    }
    Ok(Value::Vector(agg.finish(q, k, ts)))
}
