//! `killkrill.v1.Ingest`: pushed logs and metrics, checked and enqueued.

use std::sync::Arc;

use killkrill_core::event::{
    Labels, LogRecord, MetricMetadata, MetricSample, MetricType, Timestamp,
};
use killkrill_core::pipeline::self_metrics as pm;
use killkrill_core::prometheus::{is_valid_label_name, is_valid_metric_name};
use killkrill_core::proto_records::log_record_from_proto;
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
            let records = logs_from_proto(req.records, Timestamp::now())
                .inspect_err(|_| pm::parsed("grpc", 0, 1))?;
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
            let (samples, exemplars) =
                samples_from_proto(req.series).inspect_err(|_| pm::parsed("grpc", 0, 1))?;
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

/// Pushed series as samples, and how many exemplars they carried.
///
/// # Errors
/// `INVALID_ARGUMENT` naming `series[i].field` for an invalid name, label
/// or type.
pub fn samples_from_proto(series: Vec<pb::Series>) -> Result<(Vec<MetricSample>, usize), Status> {
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
        let mut pairs = Vec::with_capacity(s.labels.len());
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
            if pairs.iter().any(|(n, _): &(String, String)| *n == l.name) {
                return Err(invalid(
                    field,
                    format_args!("label {} appears twice", l.name),
                ));
            }
            pairs.push((l.name, l.value));
        }
        let labels = Labels::from_pairs(pairs);
        exemplars += s.exemplars.len();
        for smp in s.samples {
            out.push(MetricSample {
                tenant: None,
                name: s.name.as_str().into(),
                labels: labels.clone(),
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
