//! A per-request budget for what decoding may allocate.
//!
//! Several wire formats name a label set once and apply it to many events: a
//! remote write series to each of its samples, a 2.0 symbol to every series that
//! refers to it, a Loki stream to each of its entries. Our event model gives every
//! sample and record its own copy, so the decoded size is about *count × label
//! bytes* — a product that per-dimension caps (series, samples, labels) do not
//! bound. One remote write 1.0 request of 150 KB (a series with a 1 MiB label
//! value and a million empty samples) would otherwise ask for a terabyte.
//!
//! So decoders charge a [`DecodeBudget`] for what they are *about* to build, before
//! they clone anything, and refuse the request once the estimate passes the limit.
//! The estimate uses the same per-item costs as
//! [`Batch::approx_bytes`](crate::pipeline::Batch::approx_bytes), which is what the
//! queue bounds, so a budget and a queue size are in the same unit.

use crate::event::Label;

/// Fixed cost charged per sample or record (the struct itself, roughly).
pub const RECORD_OVERHEAD: usize = 64;
/// Fixed cost of one metric label besides its text.
pub const LABEL_OVERHEAD: usize = 48;
/// Fixed cost of one log attribute besides its text.
pub const ATTRIBUTE_OVERHEAD: usize = 56;

/// Estimated bytes of one metric label.
pub fn label_bytes(name: &str, value: &str) -> usize {
    LABEL_OVERHEAD + name.len() + value.len()
}

/// Estimated bytes of one sample named `name` with `labels`.
pub fn sample_bytes(name: &str, labels: &[Label]) -> usize {
    labels.iter().fold(RECORD_OVERHEAD + name.len(), |n, l| {
        n.saturating_add(label_bytes(&l.name, &l.value))
    })
}

/// Estimated bytes of one log attribute holding a string.
pub fn attribute_bytes(name: &str, value: &str) -> usize {
    ATTRIBUTE_OVERHEAD + name.len() + value.len()
}

/// What is left of a request's allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeBudget {
    max: usize,
    used: usize,
}

/// The request would decode into more than its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "decoding would take more than the limit of {max} bytes of memory (labels are copied into every sample or entry); send fewer samples per series or shorter labels, or split the request"
)]
pub struct OverBudget {
    /// The limit.
    pub max: usize,
}

impl DecodeBudget {
    /// A budget of `max` bytes.
    pub const fn new(max: usize) -> Self {
        DecodeBudget { max, used: 0 }
    }

    /// Charges `count` items of `each` bytes, or fails without charging when that
    /// passes the limit (products saturate, so a huge count cannot wrap).
    ///
    /// # Errors
    /// [`OverBudget`] when the total would pass the limit.
    pub fn charge(&mut self, count: usize, each: usize) -> Result<(), OverBudget> {
        let total = self.used.saturating_add(count.saturating_mul(each));
        if total > self.max {
            return Err(OverBudget { max: self.max });
        }
        self.used = total;
        Ok(())
    }

    /// Bytes charged so far.
    pub const fn used(&self) -> usize {
        self.used
    }

    /// The limit.
    pub const fn max(&self) -> usize {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_until_the_limit_and_never_wraps() {
        let mut b = DecodeBudget::new(1000);
        assert_eq!(b.charge(10, 50), Ok(()));
        assert_eq!(b.used(), 500);
        assert_eq!(b.charge(1, 501), Err(OverBudget { max: 1000 }));
        assert_eq!(b.used(), 500, "a refused charge is not kept");
        assert_eq!(
            b.charge(usize::MAX, usize::MAX),
            Err(OverBudget { max: 1000 })
        );
        assert_eq!(b.charge(1, 500), Ok(()));
        assert_eq!(b.charge(0, usize::MAX), Ok(()));
    }

    #[test]
    fn costs_match_the_queue_estimate() {
        let labels = [Label {
            name: "job".into(),
            value: "api".into(),
        }];
        assert_eq!(sample_bytes("up", &labels), 64 + 2 + 48 + 6);
        assert_eq!(attribute_bytes("job", "api"), 56 + 6);
    }
}
