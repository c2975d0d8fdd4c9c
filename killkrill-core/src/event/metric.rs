//! Metric samples, label sets and family metadata.
//!
//! A sample is one `(name, labels, value, timestamp)` point, the unit that
//! Prometheus remote_write, the exposition formats and scrapes all reduce to.
//! Histogram and summary families arrive as their component series
//! (`x_bucket{le=..}`, `x_sum`, `x_count`, `x{quantile=..}`), exactly as
//! Prometheus stores them, with the family's [`MetricType`] attached.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::Serialize;

/// Names and label values: inline up to 24 bytes, so the typical label costs
/// no allocation (decoding a remote_write request used to spend most of its
/// time allocating these strings).
pub use compact_str::CompactString as MetricText;
use serde::ser::{SerializeMap, Serializer};

use super::fields::format_float;
use super::{Tenant, Timestamp};

/// The type of the family a sample belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum MetricType {
    /// Monotonic counter.
    Counter,
    /// Gauge.
    Gauge,
    /// Cumulative histogram.
    Histogram,
    /// Gauge histogram (OpenMetrics).
    GaugeHistogram,
    /// Summary with quantiles.
    Summary,
    /// Info (OpenMetrics): a constant 1 with informative labels.
    Info,
    /// State set (OpenMetrics): one series per state, value 0 or 1.
    StateSet,
    /// Untyped (text format) / unknown (OpenMetrics).
    #[default]
    Unknown,
}

impl MetricType {
    /// The name as OpenMetrics spells it; `unknown` for untyped.
    pub const fn name(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }

    /// Parses a type name (`untyped` is accepted for `unknown`).
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "gaugehistogram" => MetricType::GaugeHistogram,
            "summary" => MetricType::Summary,
            "info" => MetricType::Info,
            "stateset" => MetricType::StateSet,
            "unknown" | "untyped" => MetricType::Unknown,
            _ => return None,
        })
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for MetricType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// One label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    /// Label name.
    pub name: MetricText,
    /// Label value.
    pub value: MetricText,
}

/// A label set, sorted by name with unique names, never containing `__name__`
/// (the metric name is kept apart in [`MetricSample::name`]).
///
/// The labels are shared: a clone is a reference count, not a copy. A
/// remote_write series, or a run of one series in a queue body, hands the
/// same set to each of its samples, so the samples of one series cost one
/// label set, and code that walks samples can tell "same series as the
/// previous sample" with [`Labels::shares`] instead of comparing labels.
/// Equality, order and hashing are those of the label slice (as when this
/// was a `Vec`), whether or not two sets are shared.
#[derive(Clone, Default)]
pub struct Labels(Option<Arc<[Label]>>);

impl Labels {
    /// An empty label set.
    pub const fn new() -> Self {
        Labels(None)
    }

    fn wrap(v: Vec<Label>) -> Self {
        if v.is_empty() {
            Labels(None)
        } else {
            Labels(Some(v.into()))
        }
    }

    /// Builds a label set from pairs in any order. A later pair with the same
    /// name replaces an earlier one; `__name__` is dropped (use the sample's
    /// name); empty values are dropped, as Prometheus treats `l=""` as no label.
    pub fn from_pairs<N: Into<MetricText>, V: Into<MetricText>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut v: Vec<Label> = pairs
            .into_iter()
            .map(|(n, val)| Label {
                name: n.into(),
                value: val.into(),
            })
            .filter(|l| l.name != "__name__")
            .collect();
        // A stable sort keeps equal names in arrival order; dedup then moves
        // each later value into the first of its run. O(n log n), where a
        // scan per pair was quadratic in the labels a sender chose to send.
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v.dedup_by(|later, kept| {
            let same = later.name == kept.name;
            if same {
                std::mem::swap(&mut later.value, &mut kept.value);
            }
            same
        });
        v.retain(|l| !l.value.is_empty());
        Labels::wrap(v)
    }

    /// Wraps labels that are already sorted by name, unique and non-empty.
    /// Debug builds check it.
    pub fn from_sorted(v: Vec<Label>) -> Self {
        debug_assert!(
            v.windows(2).all(|w| w[0].name < w[1].name),
            "labels not sorted/unique"
        );
        Labels::wrap(v)
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        let v = self.as_slice();
        v.binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| v[i].value.as_str())
    }

    /// Sets `name` to `value` (an empty value removes it), keeping the order.
    /// Copies the labels when they are shared (copy on write): other holders
    /// keep the set they had.
    pub fn set(&mut self, name: &str, value: &str) {
        let at = self
            .as_slice()
            .binary_search_by(|l| l.name.as_str().cmp(name));
        let mut v = match at {
            Ok(i) if self.as_slice()[i].value == value => return,
            Err(_) if value.is_empty() => return,
            _ => self.as_slice().to_vec(),
        };
        match at {
            Ok(i) if value.is_empty() => {
                v.remove(i);
            }
            Ok(i) => v[i].value = value.into(),
            Err(i) => v.insert(
                i,
                Label {
                    name: name.into(),
                    value: value.into(),
                },
            ),
        }
        *self = Labels::wrap(v);
    }

    /// The labels in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.as_slice().iter()
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// True when there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The labels as a slice.
    pub fn as_slice(&self) -> &[Label] {
        self.0.as_deref().unwrap_or(&[])
    }

    /// True when `self` and `other` are one shared set (one is a clone of
    /// the other, or both are empty): then they are equal without comparing
    /// a label. False says nothing: unshared sets may still be equal.
    #[inline]
    pub fn shares(&self, other: &Labels) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl PartialEq for Labels {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.shares(other) || self.as_slice() == other.as_slice()
    }
}

impl Eq for Labels {}

impl Hash for Labels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Labels {
    fn cmp(&self, other: &Self) -> Ordering {
        if self.shares(other) {
            return Ordering::Equal;
        }
        self.as_slice().cmp(other.as_slice())
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Labels").field(&self.as_slice()).finish()
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.len()))?;
        for l in self.iter() {
            m.serialize_entry(&l.name, &l.value)?;
        }
        m.end()
    }
}

/// One metric sample.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricSample {
    /// Assigned by the receiver from the caller's credentials.
    pub tenant: Option<Tenant>,
    /// Series name, e.g. `http_requests_total` or `x_bucket`.
    pub name: MetricText,
    /// Labels without `__name__`.
    pub labels: Labels,
    /// The value; NaN and ±Inf are allowed (staleness markers are NaN).
    pub value: f64,
    /// Sample time; `None` means "when received" (exposition text without a
    /// timestamp), filled in by the receiver.
    pub timestamp: Option<Timestamp>,
    /// Type of the family this series belongs to.
    pub kind: MetricType,
}

impl Serialize for MetricSample {
    /// `{"name":…, "labels":{…}, "value":…, "timestamp": ns | null, "type":…}`;
    /// NaN and ±Inf values as the strings `NaN`, `+Inf`, `-Inf`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some(t) = &self.tenant {
            m.serialize_entry("tenant", t)?;
        }
        m.serialize_entry("name", &self.name)?;
        m.serialize_entry("labels", &self.labels)?;
        if self.value.is_finite() {
            m.serialize_entry("value", &self.value)?;
        } else {
            m.serialize_entry("value", &format_float(self.value))?;
        }
        m.serialize_entry("timestamp", &self.timestamp.map(Timestamp::as_nanos))?;
        m.serialize_entry("type", &self.kind)?;
        m.end()
    }
}

/// Metadata of a metric family (from `# HELP`/`# TYPE`/`# UNIT` or
/// remote_write metadata).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct MetricMetadata {
    /// Family name (without `_bucket`/`_total`/... suffixes where the format strips them).
    pub family: String,
    /// Family type.
    #[serde(rename = "type")]
    pub kind: MetricType,
    /// HELP text, unescaped.
    pub help: Option<String>,
    /// UNIT (OpenMetrics).
    pub unit: Option<String>,
}

/// An exemplar attached to a sample (OpenMetrics, remote_write).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Exemplar {
    /// Exemplar labels (e.g. `trace_id`).
    pub labels: Labels,
    /// Exemplar value.
    pub value: f64,
    /// Exemplar time, if given.
    pub timestamp: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_sorted_unique_and_without_name() {
        let l = Labels::from_pairs([
            ("b", "2"),
            ("a", "1"),
            ("__name__", "x"),
            ("b", "3"),
            ("e", ""),
        ]);
        let names: Vec<_> = l
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(names, [("a", "1"), ("b", "3")]);
        assert_eq!(l.get("b"), Some("3"));
        assert_eq!(l.get("c"), None);
        let mut l = l;
        l.set("c", "9");
        l.set("a", "");
        assert_eq!(serde_json::to_string(&l).unwrap(), r#"{"b":"3","c":"9"}"#);
        // The last of several equal names wins, also when it is empty.
        let l = Labels::from_pairs([("k", "1"), ("z", "z"), ("k", "2"), ("k", "3")]);
        assert_eq!(l.get("k"), Some("3"));
        let l = Labels::from_pairs([("k", "1"), ("k", "")]);
        assert!(l.is_empty());
        // Many labels: sorted and unique (this was a scan per pair).
        let many: Vec<(String, String)> = (0..50_000)
            .rev()
            .map(|i| (format!("l{i:05}"), "v".to_owned()))
            .collect();
        let l = Labels::from_pairs(many);
        assert_eq!(l.len(), 50_000);
        assert!(l.as_slice().windows(2).all(|w| w[0].name < w[1].name));
    }

    #[test]
    fn shared_labels_compare_hash_and_order_as_their_slice() {
        use std::hash::BuildHasher;
        let a = Labels::from_pairs([("job", "node"), ("instance", "h:9100")]);
        let shared = a.clone();
        let copy = Labels::from_sorted(a.as_slice().to_vec());
        assert!(a.shares(&shared));
        assert!(!a.shares(&copy));
        assert!(Labels::new().shares(&Labels::from_pairs([("e", "")])));
        let h = std::collections::hash_map::RandomState::new();
        let slice_hash = h.hash_one(a.as_slice());
        for b in [&shared, &copy] {
            assert_eq!(&a, b);
            assert_eq!(a.cmp(b), Ordering::Equal);
            assert_eq!(h.hash_one(b), slice_hash);
        }
        let other = Labels::from_pairs([("job", "node"), ("instance", "h:9101")]);
        assert_ne!(a, other);
        assert_eq!(a.cmp(&other), a.as_slice().cmp(other.as_slice()));
        assert_eq!(format!("{:?}", Labels::new()), "Labels([])");
    }

    #[test]
    fn set_copies_shared_labels_on_write() {
        let a = Labels::from_pairs([("job", "node")]);
        let mut b = a.clone();
        b.set("job", "node");
        assert!(b.shares(&a), "setting the same value copies nothing");
        b.set("job", "api");
        b.set("cpu", "0");
        assert_eq!(a.get("job"), Some("node"));
        assert_eq!(a.len(), 1);
        assert_eq!(b.get("job"), Some("api"));
        assert_eq!(b.get("cpu"), Some("0"));
        b.set("cpu", "");
        b.set("job", "");
        assert!(b.is_empty());
        assert_eq!(b, Labels::new());
    }

    #[test]
    fn sample_json_form() {
        let s = MetricSample {
            tenant: None,
            name: "x_bucket".into(),
            labels: Labels::from_pairs([("le", "+Inf")]),
            value: f64::NAN,
            timestamp: Some(Timestamp::from_millis(1500)),
            kind: MetricType::Histogram,
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"name":"x_bucket","labels":{"le":"+Inf"},"value":"NaN","timestamp":1500000000,"type":"histogram"}"#
        );
        let g = MetricSample {
            value: 2.5,
            timestamp: None,
            kind: MetricType::Gauge,
            name: "g".into(),
            ..MetricSample::default()
        };
        assert_eq!(
            serde_json::to_string(&g).unwrap(),
            r#"{"name":"g","labels":{},"value":2.5,"timestamp":null,"type":"gauge"}"#
        );
    }

    #[test]
    fn type_names() {
        for t in [
            MetricType::Counter,
            MetricType::Gauge,
            MetricType::Histogram,
            MetricType::GaugeHistogram,
            MetricType::Summary,
            MetricType::Info,
            MetricType::StateSet,
            MetricType::Unknown,
        ] {
            assert_eq!(MetricType::from_name(t.name()), Some(t));
        }
        assert_eq!(MetricType::from_name("untyped"), Some(MetricType::Unknown));
        assert_eq!(MetricType::from_name("Counter"), None);
    }
}
