//! Values a PromQL expression evaluates to.

use crate::labels::Labels;
use crate::source::Series;

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Sorted labels.
    pub labels: Labels,
    /// Timestamp in milliseconds (the sample's own for a selector, else the evaluation time).
    pub t: i64,
    /// Value.
    pub v: f64,
}

/// The result of a query, with Prometheus's four result types.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    /// `scalar`: evaluation time (ms) and value.
    Scalar {
        /// Milliseconds.
        t: i64,
        /// Value.
        v: f64,
    },
    /// `string`: evaluation time (ms) and value.
    String {
        /// Milliseconds.
        t: i64,
        /// Value.
        v: String,
    },
    /// `vector`: one sample per series at one time.
    Vector(Vec<Sample>),
    /// `matrix`: series with points (range queries, or a range selector in an instant query).
    Matrix(Vec<Series>),
}

impl QueryValue {
    /// The `resultType` name of the HTTP API.
    pub fn type_name(&self) -> &'static str {
        match self {
            QueryValue::Scalar { .. } => "scalar",
            QueryValue::String { .. } => "string",
            QueryValue::Vector(_) => "vector",
            QueryValue::Matrix(_) => "matrix",
        }
    }
}

/// Intermediate value during evaluation of one step.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Scalar(f64),
    String(String),
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
}

impl Value {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::String(_) => "string",
            Value::Vector(_) => "instant vector",
            Value::Matrix(_) => "range vector",
        }
    }
}

/// Prometheus's staleness marker: a NaN with a specific payload.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Whether a value is a staleness marker.
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// A staleness marker value.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Formats a float the way Prometheus (Go's `strconv.FormatFloat(v, 'f', -1, 64)`) does.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_formatting_matches_go() {
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(0.1), "0.1");
        assert_eq!(format_float(1e21), "1000000000000000000000");
        assert_eq!(format_float(1e-7), "0.0000001");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert!(is_stale(stale_nan()));
        assert!(!is_stale(f64::NAN));
    }
}
