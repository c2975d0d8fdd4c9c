//! `killkrill.v1.Ingest`: pushed logs and metrics, checked and enqueued.

use std::sync::Arc;

use killkrill_core::decode_budget::{DecodeBudget, RECORD_OVERHEAD, label_bytes};
use killkrill_core::event::{
    Label, Labels, LogRecord, MetricMetadata, MetricSample, MetricText, MetricType, Timestamp,
};
use killkrill_core::pipeline::self_metrics as pm;
use killkrill_core::prometheus::{is_valid_label_name, is_valid_metric_name};
use killkrill_core::proto_records::log_record_from_proto;
use killkrill_core::remote_write::Limits;
use killkrill_proto::killkrill::v1 as pb;
use killkrill_proto::killkrill::v1::ingest_server::Ingest as IngestRpc;
use tonic::Status;

use super::{call, invalid, queue_status};
use crate::serve::http::AppState;

pub(super) struct GrpcIngest {
    pub(super) s: Arc<AppState>,
}

#[tonic::async_trait]
impl IngestRpc for GrpcIngest {
    async fn push_logs(
        &self,
        request: tonic::Request<pb::PushLogsRequest>,
    ) -> Result<tonic::Response<pb::PushLogsResponse>, Status> {
        call("PushLogs", request, |caller, req| async move {
            let (records, now) = (req.records, Timestamp::now());
            let converted = if records.len() <= INLINE_ITEMS {
                logs_from_proto(records, now)
            } else {
                tokio::task::spawn_blocking(move || logs_from_proto(records, now))
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "conversion task failed");
                        Status::internal("internal error")
                    })?
            };
            let records = converted.inspect_err(|_| pm::parsed("grpc", 0, 1))?;
            pm::parsed("grpc", records.len(), 0);
            let n = records.len() as u64;
            if n > 0 {
                let batch = self.s.ingest.log_batch(&caller.tenant, "grpc", records);
                self.s
                    .ingest
                    .submit(batch, self.s.enqueue_wait)
                    .await
                    .map_err(|e| queue_status(&e))?;
            }
            Ok(pb::PushLogsResponse { accepted: n })
        })
        .await
    }

    async fn push_metrics(
        &self,
        request: tonic::Request<pb::PushMetricsRequest>,
    ) -> Result<tonic::Response<pb::PushMetricsResponse>, Status> {
        call("PushMetrics", request, |caller, req| async move {
            let limits = metric_limits(self.s.max_output_bytes);
            let items = req.series.iter().fold(0usize, |n, s| {
                n.saturating_add(1 + s.labels.len() + s.samples.len() + s.exemplars.len())
            });
            let series = req.series;
            let converted = if items <= INLINE_ITEMS {
                samples_from_proto(series, &limits)
            } else {
                tokio::task::spawn_blocking(move || samples_from_proto(series, &limits))
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "conversion task failed");
                        Status::internal("internal error")
                    })?
            };
            let (samples, exemplars) = converted.inspect_err(|_| pm::parsed("grpc", 0, 1))?;
            let metadata = metadata_from_proto(req.metadata)?;
            pm::parsed("grpc", samples.len(), 0);
            // Exemplars have no place in the batch model yet (as with
            // remote write): counted, not kept, not reported as accepted.
            pm::dropped("grpc", "exemplars_not_supported", exemplars);
            let resp = pb::PushMetricsResponse {
                samples_accepted: samples.len() as u64,
                exemplars_accepted: 0,
                metadata_accepted: metadata.len() as u64,
            };
            if !samples.is_empty() || !metadata.is_empty() {
                let batch = self
                    .s
                    .ingest
                    .metric_batch(&caller.tenant, "grpc", samples, metadata);
                self.s
                    .ingest
                    .submit(batch, self.s.enqueue_wait)
                    .await
                    .map_err(|e| queue_status(&e))?;
            }
            Ok(resp)
        })
        .await
    }
}

/// Pushed records: server-set fields cleared, a zero timestamp is `now`.
/// The first bad record refuses the call, named by its index.
///
/// # Errors
/// `INVALID_ARGUMENT` naming `records[i].field`.
pub fn logs_from_proto(
    records: Vec<pb::LogRecord>,
    now: Timestamp,
) -> Result<Vec<LogRecord>, Status> {
    use killkrill_core::proto_records::ProtoRecordError as E;
    let mut out = Vec::with_capacity(records.len());
    for (i, mut p) in records.into_iter().enumerate() {
        p.id.clear();
        p.tenant.clear();
        p.source = None;
        let mut r = log_record_from_proto(p).map_err(|e| {
            let field = match e {
                E::Severity(_) => "severity",
                E::Facility(_) => "facility",
                E::Id(_) => "id",
                E::Tenant(_) => "tenant",
            };
            invalid(format_args!("records[{i}].{field}"), e)
        })?;
        if r.timestamp.as_nanos() == 0 {
            r.timestamp = now;
        }
        out.push(r);
    }
    Ok(out)
}

fn metric_type(t: i32) -> Option<MetricType> {
    use pb::MetricType as P;
    Some(match P::try_from(t).ok()? {
        P::Unknown => MetricType::Unknown,
        P::Counter => MetricType::Counter,
        P::Gauge => MetricType::Gauge,
        P::Histogram => MetricType::Histogram,
        P::GaugeHistogram => MetricType::GaugeHistogram,
        P::Summary => MetricType::Summary,
        P::Info => MetricType::Info,
        P::StateSet => MetricType::StateSet,
    })
}

pub(super) fn metric_type_to_proto(t: MetricType) -> pb::MetricType {
    use pb::MetricType as P;
    match t {
        MetricType::Unknown => P::Unknown,
        MetricType::Counter => P::Counter,
        MetricType::Gauge => P::Gauge,
        MetricType::Histogram => P::Histogram,
        MetricType::GaugeHistogram => P::GaugeHistogram,
        MetricType::Summary => P::Summary,
        MetricType::Info => P::Info,
        MetricType::StateSet => P::StateSet,
    }
}

/// The bounds of one `PushMetrics` call: remote write's limits (series,
/// samples, labels per series, label lengths), with the output budget the
/// server was configured with.
pub fn metric_limits(max_output_bytes: usize) -> Limits {
    Limits {
        max_output_bytes,
        ..Limits::default()
    }
}

/// Calls with more items (series, labels, samples) than this are converted
/// on the blocking pool, not on a runtime thread.
const INLINE_ITEMS: usize = 4096;

fn too_many(what: &str, max: usize) -> Status {
    Status::resource_exhausted(format!(
        "the request has more than the limit of {max} {what}"
    ))
}

/// Checks what a call would decode into, reading only counts and lengths:
/// series and sample counts, labels per series, label lengths, and the
/// output budget (each sample copies its series' name and labels). Runs
/// before anything is copied or sorted.
fn check_bounds(series: &[pb::Series], limits: &Limits) -> Result<(), Status> {
    if series.len() > limits.max_series {
        return Err(too_many("series", limits.max_series));
    }
    let mut budget = DecodeBudget::new(limits.max_output_bytes);
    let mut samples = 0usize;
    for (i, s) in series.iter().enumerate() {
        if s.labels.len() >= limits.max_labels_per_series {
            // `__name__` counts as in remote write: it is `name` here.
            return Err(invalid(
                format_args!("series[{i}].labels"),
                format_args!(
                    "{} labels and the name, more than the limit of {}",
                    s.labels.len(),
                    limits.max_labels_per_series
                ),
            ));
        }
        if s.name.len() > limits.max_label_value_bytes {
            return Err(invalid(
                format_args!("series[{i}].name"),
                format_args!(
                    "{} bytes, more than the limit of {}",
                    s.name.len(),
                    limits.max_label_value_bytes
                ),
            ));
        }
        let mut each = RECORD_OVERHEAD + s.name.len();
        for (j, l) in s.labels.iter().enumerate() {
            for (part, len, max) in [
                ("name", l.name.len(), limits.max_label_name_bytes),
                ("value", l.value.len(), limits.max_label_value_bytes),
            ] {
                if len > max {
                    return Err(invalid(
                        format_args!("series[{i}].labels[{j}].{part}"),
                        format_args!("{len} bytes, more than the limit of {max}"),
                    ));
                }
            }
            each = each.saturating_add(label_bytes(&l.name, &l.value));
        }
        samples = samples.saturating_add(s.samples.len());
        if samples > limits.max_samples {
            return Err(too_many("samples", limits.max_samples));
        }
        budget.charge(s.samples.len(), each).map_err(|e| {
            Status::resource_exhausted(format!("series[{i}]: {e} (http_ingest.max_output_bytes)"))
        })?;
    }
    Ok(())
}

/// Pushed series as samples, and how many exemplars they carried.
///
/// # Errors
/// `INVALID_ARGUMENT` naming `series[i].field` for an invalid name, label
/// or type, a label over its length limit or too many labels;
/// `RESOURCE_EXHAUSTED` for too many series or samples, or samples whose
/// copied labels would pass `limits.max_output_bytes`. All checked before
/// anything is copied.
pub fn samples_from_proto(
    series: Vec<pb::Series>,
    limits: &Limits,
) -> Result<(Vec<MetricSample>, usize), Status> {
    check_bounds(&series, limits)?;
    let mut out = Vec::new();
    let mut exemplars = 0;
    for (i, s) in series.into_iter().enumerate() {
        if !is_valid_metric_name(&s.name) {
            return Err(invalid(
                format_args!("series[{i}].name"),
                format_args!("{:?} is not a valid metric name", s.name),
            ));
        }
        let kind = metric_type(s.r#type).ok_or_else(|| {
            invalid(
                format_args!("series[{i}].type"),
                format_args!("{} is not a MetricType", s.r#type),
            )
        })?;
        let mut pairs: Vec<(usize, Label)> = Vec::with_capacity(s.labels.len());
        for (j, l) in s.labels.into_iter().enumerate() {
            let field = format!("series[{i}].labels[{j}]");
            if !is_valid_label_name(&l.name) || l.name == "__name__" {
                return Err(invalid(
                    field,
                    format_args!("{:?} is not a valid label name", l.name),
                ));
            }
            if l.value.is_empty() {
                return Err(invalid(
                    field,
                    format_args!("label {} has an empty value (leave the label out)", l.name),
                ));
            }
            pairs.push((
                j,
                Label {
                    name: l.name.into(),
                    value: l.value.into(),
                },
            ));
        }
        // Sorted, then neighbours compared: O(n log n) however many labels.
        pairs.sort_by(|a, b| a.1.name.cmp(&b.1.name).then(a.0.cmp(&b.0)));
        if let Some(w) = pairs.windows(2).find(|w| w[0].1.name == w[1].1.name) {
            return Err(invalid(
                format_args!("series[{i}].labels[{}]", w[1].0),
                format_args!("label {} appears twice", w[1].1.name),
            ));
        }
        let labels = Labels::from_sorted(pairs.into_iter().map(|(_, l)| l).collect());
        exemplars += s.exemplars.len();
        let n = s.samples.len();
        let name: MetricText = s.name.into();
        let (mut name, mut labels) = (Some(name), Some(labels));
        for (k, smp) in s.samples.into_iter().enumerate() {
            // The last sample takes the name and labels; earlier ones clone.
            let (nm, ls) = if k + 1 == n {
                (name.take(), labels.take())
            } else {
                (name.clone(), labels.clone())
            };
            out.push(MetricSample {
                tenant: None,
                name: nm.unwrap_or_default(),
                labels: ls.unwrap_or_default(),
                value: smp.value,
                timestamp: smp.timestamp_ns.map(Timestamp::from_nanos),
                kind,
            });
        }
    }
    Ok((out, exemplars))
}

fn metadata_from_proto(md: Vec<pb::MetricMetadata>) -> Result<Vec<MetricMetadata>, Status> {
    md.into_iter()
        .enumerate()
        .map(|(i, m)| {
            if !is_valid_metric_name(&m.family) {
                return Err(invalid(
                    format_args!("metadata[{i}].family"),
                    format_args!("{:?} is not a valid metric name", m.family),
                ));
            }
            let kind = metric_type(m.r#type).ok_or_else(|| {
                invalid(
                    format_args!("metadata[{i}].type"),
                    format_args!("{} is not a MetricType", m.r#type),
                )
            })?;
            Ok(MetricMetadata {
                family: m.family,
                kind,
                help: m.help,
                unit: m.unit,
            })
        })
        .collect()
}
