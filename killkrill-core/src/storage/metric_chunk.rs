//! Turning a batch of samples into per-series chunks: the write path every
//! metric store shares, so the in-memory model and the SQL stores agree on
//! what a write is.
//!
//! Per series the samples are sorted by time; exact duplicates go and, for
//! one timestamp with several values, the greatest in IEEE total order is
//! kept (the rule reads apply across chunks too). The points are cut into
//! chunks of at most [`MAX_CHUNK_SAMPLES`] and encoded with
//! [`sample_codec`](super::sample_codec). A chunk's id is xxh3-128 of the
//! tenant, the series id and the encoded bytes: the same samples give the
//! same chunk, so storing a redelivered batch is an insert-if-absent no-op.

use std::collections::HashMap;

use super::metric_store::{MAX_METRIC_NAME_LEN, SeriesId, series_id};
use super::sample_codec::encode_samples;
use super::{ErrorKind, StoreError};
use crate::event::{Labels, MetricSample, MetricText, Tenant};

/// Most samples in one chunk (a 120-sample chunk is ~30 minutes of a 15 s
/// scrape; bigger chunks make fewer rows for bulk backfills).
pub const MAX_CHUNK_SAMPLES: usize = 1024;

/// One encoded chunk of one series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleChunk {
    /// Content-derived id (see the module docs).
    pub id: [u8; 16],
    /// First sample time (ns).
    pub min_ts: i64,
    /// Last sample time (ns).
    pub max_ts: i64,
    /// Number of samples.
    pub count: u32,
    /// Encoded samples.
    pub data: Vec<u8>,
}

/// One series of a prepared batch.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedSeries {
    /// Series id.
    pub id: SeriesId,
    /// Metric name.
    pub name: MetricText,
    /// Labels.
    pub labels: Labels,
    /// Its samples, sorted, one per timestamp.
    pub points: Vec<(i64, f64)>,
    /// The encoded chunks of `points`.
    pub chunks: Vec<SampleChunk>,
}

/// A batch ready to store: series in id order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PreparedBatch {
    /// The series.
    pub series: Vec<PreparedSeries>,
    /// Samples after removing duplicates.
    pub samples: u64,
}

/// The chunk id of `data` for a series of a tenant.
pub fn chunk_id(tenant: &Tenant, series: SeriesId, data: &[u8]) -> [u8; 16] {
    let mut h = xxhash_rust::xxh3::Xxh3Default::new();
    h.update(tenant.as_str().as_bytes());
    h.update(&[0xFF]);
    h.update(&series.0.to_le_bytes());
    h.update(data);
    h.digest128().to_le_bytes()
}

/// Sorts points by time and keeps one value per timestamp (the greatest in
/// IEEE total order).
pub fn canonical_points(points: &mut Vec<(i64, f64)>) {
    points.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    // Keep the last of each run of equal timestamps.
    let mut w = 0usize;
    for i in 0..points.len() {
        if i + 1 < points.len() && points[i + 1].0 == points[i].0 {
            continue;
        }
        points[w] = points[i];
        w += 1;
    }
    points.truncate(w);
}

/// Validates and groups samples into per-series chunks.
///
/// # Errors
/// [`ErrorKind::Invalid`] naming the first sample without a timestamp, with
/// an empty name or of another tenant, or two different series with the
/// same 64-bit id (astronomically unlikely; refused rather than mixed).
pub fn prepare_samples(
    tenant: &Tenant,
    samples: &[MetricSample],
) -> Result<PreparedBatch, StoreError> {
    prepare_sample_parts(tenant, &[samples], &[])
}

/// [`prepare_samples`] over the concatenation of `parts` (the batches of
/// one worker group, not copied into one slice). `ids` is empty, or holds
/// for every part the [`series_id`] of each of its samples (computed once
/// by a caller that needs them too); sample indices in errors count across
/// the parts.
///
/// # Errors
/// As [`prepare_samples`]; [`ErrorKind::Invalid`] too when `ids` is given
/// but does not match `parts` in shape.
pub fn prepare_sample_parts(
    tenant: &Tenant,
    parts: &[&[MetricSample]],
    ids: &[&[SeriesId]],
) -> Result<PreparedBatch, StoreError> {
    if !ids.is_empty()
        && (ids.len() != parts.len() || ids.iter().zip(parts).any(|(i, p)| i.len() != p.len()))
    {
        return Err(StoreError::invalid(
            "series ids given for a write do not match its samples",
        ));
    }
    let mut index: HashMap<SeriesId, usize> = HashMap::new();
    let mut series: Vec<PreparedSeries> = Vec::new();
    let mut i = 0usize;
    for (pi, part) in parts.iter().enumerate() {
        // The previous sample and its series' index: a sample of the same
        // run (labels shared, decoded from one run of a queue body) joins
        // that series without a lookup or a comparison of its labels.
        let mut prev: Option<(&MetricSample, SeriesId, usize)> = None;
        for (si, s) in part.iter().enumerate() {
            let id = match ids.get(pi) {
                Some(ids) => {
                    debug_assert_eq!(ids[si], series_id(&s.name, &s.labels));
                    ids[si]
                }
                None => series_id(&s.name, &s.labels),
            };
            let run = prev
                .filter(|(p, pid, _)| *pid == id && p.labels.shares(&s.labels) && p.name == s.name)
                .map(|(_, _, at)| at);
            let at = add_sample(tenant, i, s, id, run, &mut index, &mut series)?;
            prev = Some((s, id, at));
            i += 1;
        }
    }
    let mut total = 0u64;
    for p in &mut series {
        canonical_points(&mut p.points);
        total += p.points.len() as u64;
        p.chunks = p
            .points
            .chunks(MAX_CHUNK_SAMPLES)
            .map(|c| {
                let data = encode_samples(c);
                SampleChunk {
                    id: chunk_id(tenant, p.id, &data),
                    min_ts: c[0].0,
                    max_ts: c[c.len() - 1].0,
                    count: c.len() as u32,
                    data,
                }
            })
            .collect();
    }
    series.sort_unstable_by_key(|s| s.id);
    Ok(PreparedBatch {
        series,
        samples: total,
    })
}

/// Validates sample `i` (of series `id`) and adds it to its series, at
/// `run` when the caller knows it (the previous sample's series, with the
/// same name and the same shared labels); returns the series' index.
fn add_sample(
    tenant: &Tenant,
    i: usize,
    s: &MetricSample,
    id: SeriesId,
    run: Option<usize>,
    index: &mut HashMap<SeriesId, usize>,
    series: &mut Vec<PreparedSeries>,
) -> Result<usize, StoreError> {
    let Some(ts) = s.timestamp else {
        return Err(StoreError::invalid(format!(
            "metric sample {i} ({}) has no timestamp",
            s.name
        )));
    };
    if s.name.is_empty() || s.name.len() > MAX_METRIC_NAME_LEN {
        return Err(StoreError::invalid(format!(
            "metric sample {i} has an empty name or one longer than {MAX_METRIC_NAME_LEN} bytes"
        )));
    }
    if let Some(t) = &s.tenant
        && t != tenant
    {
        return Err(StoreError::invalid(format!(
            "metric sample {i} belongs to tenant {t}, not {tenant}"
        )));
    }
    if let Some(at) = run {
        series[at].points.push((ts.as_nanos(), s.value));
        return Ok(at);
    }
    match index.get(&id) {
        Some(&at) => {
            let p = &mut series[at];
            if p.name != s.name || p.labels != s.labels {
                return Err(StoreError::new(
                    ErrorKind::Invalid,
                    format!("series id collision between {} and {}", p.name, s.name),
                ));
            }
            p.points.push((ts.as_nanos(), s.value));
            Ok(at)
        }
        None => {
            index.insert(id, series.len());
            series.push(PreparedSeries {
                id,
                name: s.name.clone(),
                labels: s.labels.clone(),
                points: vec![(ts.as_nanos(), s.value)],
                chunks: Vec::new(),
            });
            Ok(series.len() - 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Timestamp;

    fn sample(name: &str, job: &str, t: i64, v: f64) -> MetricSample {
        MetricSample {
            name: name.into(),
            labels: Labels::from_pairs([("job", job)]),
            value: v,
            timestamp: Some(Timestamp::from_nanos(t)),
            ..MetricSample::default()
        }
    }

    #[test]
    fn groups_sorts_dedupes_and_ids_are_stable() {
        let t = Tenant::new("t1").unwrap();
        let batch = vec![
            sample("up", "a", 3, 1.0),
            sample("up", "b", 1, 1.0),
            sample("up", "a", 1, 5.0),
            sample("up", "a", 3, 2.0),
            sample("up", "a", 3, 1.0),
        ];
        let p = prepare_samples(&t, &batch).unwrap();
        assert_eq!(p.samples, 3);
        assert_eq!(p.series.len(), 2);
        let a = p
            .series
            .iter()
            .find(|s| s.labels.get("job") == Some("a"))
            .unwrap();
        assert_eq!(a.points, vec![(1, 5.0), (3, 2.0)]);
        assert_eq!(
            (a.chunks[0].min_ts, a.chunks[0].max_ts, a.chunks[0].count),
            (1, 3, 2)
        );
        let mut shuffled = batch.clone();
        shuffled.reverse();
        assert_eq!(
            prepare_samples(&t, &shuffled).unwrap(),
            p,
            "order does not matter"
        );
        let other = prepare_samples(&Tenant::new("t2").unwrap(), &batch).unwrap();
        assert_ne!(other.series[0].chunks[0].id, p.series[0].chunks[0].id);
        // Fixed forever: ids are stored.
        assert_eq!(
            series_id("up", &Labels::from_pairs([("job", "a")])).0,
            series_id("up", &Labels::from_pairs([("job", "a")])).0
        );
        assert_ne!(
            series_id("up", &Labels::new()),
            series_id("up", &Labels::from_pairs([("b", "c")]))
        );
    }

    /// Samples of one run share their labels (as decoded from a queue
    /// body) and join their series without a lookup: the result is the
    /// same as with every sample's labels its own, across parts too.
    #[test]
    fn runs_with_shared_labels_group_as_unshared_ones() {
        let t = Tenant::new("t1").unwrap();
        let (a, b) = (
            Labels::from_pairs([("job", "a")]),
            Labels::from_pairs([("job", "b")]),
        );
        let shared = |labels: &Labels, name: &str, ts: i64, v: f64| MetricSample {
            name: name.into(),
            labels: labels.clone(),
            value: v,
            timestamp: Some(Timestamp::from_nanos(ts)),
            ..MetricSample::default()
        };
        let first = vec![
            shared(&a, "up", 1, 1.0),
            shared(&a, "up", 2, 2.0),
            shared(&a, "down", 2, 7.0), // same labels, another series
            shared(&b, "up", 1, 3.0),
            shared(&b, "up", 2, 4.0),
        ];
        let second = vec![shared(&a, "up", 3, 5.0), shared(&a, "up", 4, 6.0)];
        let own = |v: &[MetricSample]| -> Vec<MetricSample> {
            v.iter()
                .map(|s| MetricSample {
                    labels: Labels::from_pairs(
                        s.labels
                            .iter()
                            .map(|l| (l.name.to_string(), l.value.to_string())),
                    ),
                    ..s.clone()
                })
                .collect()
        };
        let got = prepare_sample_parts(&t, &[&first, &second], &[]).unwrap();
        let want = prepare_sample_parts(&t, &[&own(&first), &own(&second)], &[]).unwrap();
        assert_eq!(got, want);
        assert_eq!(got.samples, 7);
        assert_eq!(got.series.len(), 3);
        let up_a = got
            .series
            .iter()
            .find(|s| s.name == "up" && s.labels.get("job") == Some("a"))
            .unwrap();
        assert_eq!(up_a.points, vec![(1, 1.0), (2, 2.0), (3, 5.0), (4, 6.0)]);
    }

    #[test]
    fn bad_samples_are_named() {
        let t = Tenant::new("t1").unwrap();
        let mut s = sample("up", "a", 1, 1.0);
        s.timestamp = None;
        let e = prepare_samples(&t, &[sample("up", "a", 1, 1.0), s]).unwrap_err();
        assert!(
            e.to_string().contains("sample 1 (up) has no timestamp"),
            "{e}"
        );
        let mut s = sample("up", "a", 1, 1.0);
        s.tenant = Some(Tenant::new("other").unwrap());
        assert_eq!(
            prepare_samples(&t, &[s]).unwrap_err().kind(),
            ErrorKind::Invalid
        );
    }

    #[test]
    fn long_series_are_cut_into_chunks() {
        let t = Tenant::new("t1").unwrap();
        let batch: Vec<MetricSample> = (0..(MAX_CHUNK_SAMPLES as i64 * 2 + 5))
            .map(|i| sample("up", "a", i * 1000, i as f64))
            .collect();
        let p = prepare_samples(&t, &batch).unwrap();
        let counts: Vec<u32> = p.series[0].chunks.iter().map(|c| c.count).collect();
        assert_eq!(counts, [1024, 1024, 5]);
    }

    #[test]
    fn parts_with_ids_prepare_as_the_joined_batch() {
        let t = Tenant::new("t1").unwrap();
        let a = vec![sample("up", "a", 3, 1.0), sample("up", "b", 1, 2.0)];
        let b = vec![sample("up", "a", 1, 5.0), sample("down", "a", 2, 1.0)];
        let joined: Vec<MetricSample> = a.iter().chain(&b).cloned().collect();
        let ids = |v: &[MetricSample]| -> Vec<SeriesId> {
            v.iter().map(|s| series_id(&s.name, &s.labels)).collect()
        };
        let (ia, ib) = (ids(&a), ids(&b));
        let want = prepare_samples(&t, &joined).unwrap();
        assert_eq!(prepare_sample_parts(&t, &[&a, &b], &[]).unwrap(), want);
        assert_eq!(
            prepare_sample_parts(&t, &[&a, &b], &[&ia, &ib]).unwrap(),
            want
        );
        // Ids that do not match the parts in shape are refused.
        let e = prepare_sample_parts(&t, &[&a, &b], &[&ia]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        let e = prepare_sample_parts(&t, &[&a, &b], &[&ia, &ib[..1]]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        // Sample numbers in errors count across the parts.
        let mut bad = sample("up", "c", 1, 1.0);
        bad.timestamp = None;
        let e = prepare_sample_parts(&t, &[&a, &[bad]], &[]).unwrap_err();
        assert!(e.to_string().contains("sample 2 (up)"), "{e}");
    }
}
