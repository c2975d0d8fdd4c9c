//! The aggregation config: typed, strict, validated once.
//!
//! The serde types here are the user reference (their doc comments are
//! copied into `docs/src/aggregation.md`); unknown keys are errors, durations
//! are humantime strings (`"10s"`, `"1m"`, `"1h 30m"`), and
//! [`AggregateConfig::build`] checks everything once and returns the running
//! [`Aggregator`] or an error that names the offending key.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::engine::Aggregator;
use super::sketch::{SketchParams, SketchParamsError};
use super::window::{MAX_RESOLUTIONS, Resolution};

/// The longest allowed lateness (it bounds how long windows stay open).
pub const MAX_ALLOWED_LATENESS: Duration = Duration::from_secs(7 * 86_400);

/// A duration written as a humantime string (`"10s"`, `"1m"`, `"1h 30m"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        humantime::parse_duration(&s)
            .map(HumanDuration)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid duration {s:?}: {e} (write e.g. \"10s\", \"1m\", \"1h\")"
                ))
            })
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl From<Duration> for HumanDuration {
    fn from(d: Duration) -> Self {
        HumanDuration(d)
    }
}

/// What happens to a sample whose window has already closed. Every late
/// sample is counted per tenant and metric whatever the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatePolicy {
    /// Drop it for the closed resolutions (counted as `late_dropped`).
    #[default]
    Drop,
    /// Return it in [`BatchReport::late`](super::BatchReport::late) so the
    /// caller can send it elsewhere (counted as `late_output`).
    Output,
    /// Aggregate it into a separate *late* partial rollup (its key has
    /// `late = true`) that compaction merges into the closed window
    /// (counted as `late_aggregated`).
    Aggregate,
}

/// Quantile sketch settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SketchConfig {
    /// Keep a DDSketch per rollup (quantiles). Default `true`.
    pub enabled: bool,
    /// Relative accuracy α of quantile estimates, `0.0001 ≤ α < 0.5`.
    /// Default `0.01` (1 %).
    pub relative_accuracy: f64,
    /// Buckets per store before the lowest ones collapse, `16..=65536`.
    /// Default `2048` (17 orders of magnitude at 1 %).
    pub max_buckets: u32,
}

impl Default for SketchConfig {
    fn default() -> Self {
        SketchConfig {
            enabled: true,
            relative_accuracy: 0.01,
            max_buckets: 2048,
        }
    }
}

/// The `aggregate` section of the Killkrill config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AggregateConfig {
    /// Window widths, all computed at once, aligned to the Unix epoch.
    /// 1 to 16 distinct durations. Default `["10s", "1m", "5m", "1h"]`.
    pub resolutions: Vec<HumanDuration>,
    /// How far behind its tenant's latest event time a sample may be and
    /// still count for its window. At most 7 days. Default `"30s"`.
    pub allowed_lateness: HumanDuration,
    /// What happens to late samples: `"drop"` (default), `"output"` or
    /// `"aggregate"`.
    pub late_samples: LatePolicy,
    /// Most live series per metric name and tenant; samples of further new
    /// series are rejected and counted. Default `10000`.
    pub max_series_per_metric: u32,
    /// Most open windows (series × resolutions × window starts) held in
    /// memory; samples that would open more are rejected and counted.
    /// Default `1000000`.
    pub max_open_windows: usize,
    /// Quantile sketch settings.
    pub sketch: SketchConfig,
}

impl Default for AggregateConfig {
    fn default() -> Self {
        AggregateConfig {
            resolutions: ["10s", "1m", "5m", "1h"]
                .iter()
                .map(|s| {
                    HumanDuration(humantime::parse_duration(s).expect("valid default duration"))
                })
                .collect(),
            allowed_lateness: HumanDuration(Duration::from_secs(30)),
            late_samples: LatePolicy::Drop,
            max_series_per_metric: 10_000,
            max_open_windows: 1_000_000,
            sketch: SketchConfig::default(),
        }
    }
}

/// A config value is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("aggregate config: `{key}`: {message}")]
pub struct ConfigError {
    /// The offending key, e.g. `resolutions[2]` or `sketch.max_buckets`.
    pub key: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl fmt::Display) -> Self {
        ConfigError {
            key: key.into(),
            message: message.to_string(),
        }
    }
}

/// The validated settings the engine runs with.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Ascending.
    pub(crate) resolutions: Vec<Resolution>,
    pub(crate) lateness: i64,
    pub(crate) late: LatePolicy,
    pub(crate) max_series_per_metric: u32,
    pub(crate) max_open_windows: usize,
    pub(crate) sketch: Option<SketchParams>,
}

impl AggregateConfig {
    /// Validates the config and builds the engine.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key: no or more than 16 resolutions, a zero,
    /// over-long or duplicate resolution, a lateness over 7 days, sketch
    /// parameters out of range, or a zero limit.
    pub fn build(&self) -> Result<Aggregator, ConfigError> {
        Ok(Aggregator::new(self.settings()?))
    }

    pub(crate) fn settings(&self) -> Result<Settings, ConfigError> {
        if self.resolutions.is_empty() {
            return Err(ConfigError::new(
                "resolutions",
                "at least one resolution is required",
            ));
        }
        if self.resolutions.len() > MAX_RESOLUTIONS {
            return Err(ConfigError::new(
                "resolutions",
                format!(
                    "{} resolutions given, at most {MAX_RESOLUTIONS} are supported",
                    self.resolutions.len()
                ),
            ));
        }
        let mut resolutions: Vec<Resolution> = Vec::with_capacity(self.resolutions.len());
        for (i, d) in self.resolutions.iter().enumerate() {
            let key = format!("resolutions[{i}]");
            let Some(r) = Resolution::new(d.0) else {
                return Err(ConfigError::new(
                    key,
                    "must be longer than zero and at most 10000 days",
                ));
            };
            if let Some(j) = resolutions.iter().position(|x| *x == r) {
                return Err(ConfigError::new(
                    key,
                    format!("duplicates resolutions[{j}] ({r})"),
                ));
            }
            resolutions.push(r);
        }
        resolutions.sort();
        if self.allowed_lateness.0 > MAX_ALLOWED_LATENESS {
            return Err(ConfigError::new(
                "allowed_lateness",
                format!(
                    "{} is longer than the maximum of 7 days",
                    humantime::format_duration(self.allowed_lateness.0)
                ),
            ));
        }
        let sketch = if self.sketch.enabled {
            match SketchParams::new(self.sketch.relative_accuracy, self.sketch.max_buckets) {
                Ok(p) => Some(p),
                Err(e @ SketchParamsError::RelativeAccuracy(_)) => {
                    return Err(ConfigError::new("sketch.relative_accuracy", e));
                }
                Err(e @ SketchParamsError::MaxBuckets(_)) => {
                    return Err(ConfigError::new("sketch.max_buckets", e));
                }
            }
        } else {
            None
        };
        if self.max_series_per_metric == 0 {
            return Err(ConfigError::new(
                "max_series_per_metric",
                "must be at least 1",
            ));
        }
        if self.max_open_windows == 0 {
            return Err(ConfigError::new("max_open_windows", "must be at least 1"));
        }
        Ok(Settings {
            resolutions,
            lateness: self.allowed_lateness.0.as_nanos() as i64,
            late: self.late_samples,
            max_series_per_metric: self.max_series_per_metric,
            max_open_windows: self.max_open_windows,
            sketch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(json: &str) -> Result<Aggregator, String> {
        let c: AggregateConfig = serde_json::from_str(json).map_err(|e| e.to_string())?;
        c.build().map_err(|e| e.to_string())
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (
                r#"{"resolutions": []}"#,
                "aggregate config: `resolutions`: at least one resolution is required",
            ),
            (
                r#"{"resolutions": ["10s", "0s"]}"#,
                "`resolutions[1]`: must be longer than zero",
            ),
            (
                r#"{"resolutions": ["1m", "60s"]}"#,
                "`resolutions[1]`: duplicates resolutions[0] (1m)",
            ),
            (
                r#"{"resolutions": ["10 parsecs"]}"#,
                "invalid duration \"10 parsecs\"",
            ),
            (
                r#"{"resolutions": [10]}"#,
                "invalid type: integer `10`, expected a string",
            ),
            (
                r#"{"allowed_lateness": "8days"}"#,
                "`allowed_lateness`: 8days is longer than the maximum of 7 days",
            ),
            (
                r#"{"late_samples": "keep"}"#,
                "unknown variant `keep`, expected one of `drop`, `output`, `aggregate`",
            ),
            (
                r#"{"sketch": {"relative_accuracy": 0.5}}"#,
                "`sketch.relative_accuracy`: relative accuracy 0.5 is outside",
            ),
            (
                r#"{"sketch": {"max_buckets": 8}}"#,
                "`sketch.max_buckets`: max buckets 8 is outside 16..=65536",
            ),
            (r#"{"sketch": {"buckets": 8}}"#, "unknown field `buckets`"),
            (
                r#"{"max_series_per_metric": 0}"#,
                "`max_series_per_metric`: must be at least 1",
            ),
            (
                r#"{"max_open_windows": 0}"#,
                "`max_open_windows`: must be at least 1",
            ),
            (r#"{"resolution": ["10s"]}"#, "unknown field `resolution`"),
        ];
        for (json, want) in cases {
            let e = build(json).err().unwrap_or_else(|| panic!("{json} built"));
            assert!(e.contains(want), "{json}: {e:?} lacks {want:?}");
        }
        let many: Vec<String> = (1..=17).map(|i| format!("\"{i}s\"")).collect();
        let e = build(&format!(r#"{{"resolutions": [{}]}}"#, many.join(",")))
            .err()
            .unwrap();
        assert!(e.contains("17 resolutions given, at most 16"), "{e}");
    }

    #[test]
    fn defaults_and_round_trip() {
        let c: AggregateConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, AggregateConfig::default());
        let e = build(r#"{"resolutions": ["1h", "10s", "5m"], "late_samples": "aggregate", "sketch": {"enabled": false}}"#).unwrap();
        let r: Vec<String> = e.resolutions().iter().map(|r| r.to_string()).collect();
        assert_eq!(r, ["10s", "5m", "1h"]);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<AggregateConfig>(&json).unwrap(), c);
    }
}
