//! `sample`: keep 1 in N log records, always keeping the severe ones.
//!
//! ```toml
//! [[transforms]]
//! type = "sample"
//! rate = 10                    # keep 1 in 10
//! keep_severity_at_least = "err"   # default; records at err or worse are always kept
//! ```
//!
//! The choice is a hash of the event id, not a random draw: a redelivered
//! batch keeps exactly the same records (so the store's idempotency holds),
//! and every worker agrees. Records without an id (not yet assigned by a
//! receiver) are hashed by timestamp and message instead. Dropped records are
//! counted with reason `sampled`.

use serde::Deserialize;

use super::{ConfigError, Ctx, Transform};
use crate::event::{LogRecord, Severity};
use crate::pipeline::{Batch, self_metrics};

/// Config of `sample`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleConfig {
    /// Keep 1 in `rate` records (1 keeps everything).
    pub rate: u64,
    /// Always keep records at this severity or more severe; default `err`.
    /// Records without a severity are sampled.
    pub keep_severity_at_least: Option<String>,
}

/// The running `sample`.
pub struct Sample {
    name: String,
    rate: u64,
    keep: Severity,
}

impl SampleConfig {
    pub(crate) fn build(&self, cx: &Ctx<'_>) -> Result<Sample, ConfigError> {
        if self.rate == 0 {
            return Err(cx.err("rate", "must be at least 1 (keep 1 in rate)"));
        }
        let keep = match &self.keep_severity_at_least {
            None => Severity::Error,
            Some(s) => Severity::from_name(s).ok_or_else(|| {
                cx.err(
                    "keep_severity_at_least",
                    format!("unknown severity {s:?}: expected emerg, alert, crit, err, warning, notice, info or debug"),
                )
            })?,
        };
        Ok(Sample {
            name: cx.name.clone(),
            rate: self.rate,
            keep,
        })
    }
}

/// SplitMix64's finaliser: a fast, well-mixed 64-bit hash of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn event_hash(r: &LogRecord) -> u64 {
    match r.id {
        Some(id) => {
            let b = id.as_u128();
            mix((b as u64) ^ mix((b >> 64) as u64))
        }
        None => {
            // FNV-1a over the message, seeded with the timestamp.
            let mut h = 0xcbf2_9ce4_8422_2325u64 ^ r.timestamp.as_nanos() as u64;
            for &byte in r.message.as_deref().unwrap_or_default() {
                h = (h ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
            }
            mix(h)
        }
    }
}

impl Sample {
    fn keeps(&self, r: &LogRecord) -> bool {
        self.rate == 1
            || r.severity.is_some_and(|s| s <= self.keep)
            || event_hash(r).is_multiple_of(self.rate)
    }
}

impl Transform for Sample {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply(&self, batch: &mut Batch) {
        let before = batch.logs.len();
        batch.logs.retain(|r| self.keeps(r));
        self_metrics::dropped("transform", "sampled", before - batch.logs.len());
    }
}
