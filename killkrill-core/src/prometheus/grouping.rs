//! Series groups: the unit OpenMetrics' ordering rules talk about.
//!
//! A group is a family's samples with the same labels once the label that
//! distinguishes the parts of one metric is removed: `le` for buckets,
//! `quantile` for summary quantiles, the state label for state sets, every
//! label for info. Groups must be contiguous, and within a group timestamps
//! must be all present or all absent and must not go backwards.

use std::borrow::Cow;

use super::labels::LabelSet;

/// The labels of a group, sorted by name: equal sets compare equal
/// whatever order they were written in.
pub(crate) type GroupKey<'a> = Vec<(&'a str, Cow<'a, str>)>;

/// The group key of `labels` without `exclude`.
pub(crate) fn group_key<'a>(labels: &LabelSet<'a>, exclude: Option<&str>) -> GroupKey<'a> {
    let mut v: GroupKey<'a> = labels.iter().filter(|(n, _)| Some(*n) != exclude).collect();
    v.sort_unstable_by(|a, b| a.0.cmp(b.0));
    v
}
