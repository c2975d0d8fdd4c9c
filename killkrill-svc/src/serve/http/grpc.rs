//! gRPC on the HTTP port: `killkrill.v1.Ingest` and `killkrill.v1.Query`.
//!
//! The tonic services are axum handlers on their gRPC paths
//! (`/killkrill.v1.Ingest/{method}` in the ingest route group,
//! `/killkrill.v1.Query/{method}` in the read group), so they share the port,
//! the permission layers of their group and the [`Caller`] with the REST
//! routes. axum's server speaks HTTP/1.1 and HTTP/2 (prior knowledge, what
//! gRPC clients send over plain TCP) on the same listener.
//!
//! Each call resolves its caller with [`caller_of`], the one place an
//! authentication layer's identity reaches gRPC: the handler extracts the
//! [`Caller`] exactly as REST handlers do and puts it into the request's
//! extensions, which tonic hands to the service.
//!
//! Bounds: a request message larger than `http_ingest.max_body_bytes` is
//! refused by tonic's decoder (`RESOURCE_EXHAUSTED`, before it is buffered
//! whole); a page is at most [`MAX_PAGE_SIZE`] records; PromQL runs under the
//! engine's limits and timeout. Every refusal is counted in
//! `killkrill_grpc_requests_total{method, code}` with every success.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use killkrill_core::event::{
    Labels, LogRecord, MetricMetadata, MetricSample, MetricType, Severity, Tenant, Timestamp,
};
use killkrill_core::logquery::{
    self, Cursor, LogFilter, LogQuery, MAX_PAGE_SIZE, VolumeQuery, query_logs, query_volume,
};
use killkrill_core::pipeline::QueueError;
use killkrill_core::pipeline::self_metrics as pm;
use killkrill_core::prometheus::{is_valid_label_name, is_valid_metric_name};
use killkrill_core::proto_records::{log_record_from_proto, log_record_to_proto};
use killkrill_core::storage::{LabelMatcher, MatchOp, MetricStore, ScanOrder, TimeRange};
use killkrill_proto::killkrill::v1 as pb;
use killkrill_proto::killkrill::v1::ingest_server::{Ingest as IngestRpc, IngestServer};
use killkrill_proto::killkrill::v1::query_server::{Query as QueryRpc, QueryServer};
use killkrill_query::{Engine, QueryValue};
use metrics::counter;
use tonic::{Code, Status};
use tower::ServiceExt;

use super::{AppState, Caller};

/// gRPC calls answered (`method`, `code`: `OK`, `InvalidArgument`, ...).
pub const GRPC_REQUESTS: &str = "killkrill_grpc_requests_total";

/// Page size when a `QueryLogs` request says 0.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// Buckets of a `LogVolume` whose step is 0.
const DEFAULT_BUCKETS: i64 = 100;

/// The caller of a gRPC call: the [`Caller`] the HTTP layers resolved (an
/// authentication layer's verified identity), else the anonymous caller of
/// the process's default tenant.
pub fn caller_of(ext: &tonic::Extensions, default_tenant: &Tenant) -> Caller {
    ext.get::<Caller>()
        .cloned()
        .unwrap_or_else(|| Caller::anonymous(default_tenant.clone()))
}

/// `POST /killkrill.v1.Ingest/{method}`.
pub async fn ingest(State(s): State<Arc<AppState>>, caller: Caller, mut req: Request) -> Response {
    req.extensions_mut().insert(caller);
    let limit = s.max_body_bytes;
    let svc = IngestServer::new(GrpcIngest { s })
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    match svc.oneshot(req).await {
        Ok(r) => r.into_response(),
        Err(never) => match never {},
    }
}

/// `POST /killkrill.v1.Query/{method}`.
pub async fn query(State(s): State<Arc<AppState>>, caller: Caller, mut req: Request) -> Response {
    req.extensions_mut().insert(caller);
    let limit = s.max_body_bytes;
    let svc = QueryServer::new(GrpcQuery { s })
        .max_decoding_message_size(limit)
        // Responses are bounded by the page size and the engine's limits;
        // this is the last guard.
        .max_encoding_message_size(limit.max(64 << 20));
    match svc.oneshot(req).await {
        Ok(r) => r.into_response(),
        Err(never) => match never {},
    }
}

/// Counts the outcome of `method`.
fn counted<T>(method: &'static str, r: Result<T, Status>) -> Result<T, Status> {
    let code = match &r {
        Ok(_) => "OK".to_owned(),
        Err(s) => format!("{:?}", s.code()),
    };
    counter!(GRPC_REQUESTS, "method" => method, "code" => code).increment(1);
    r
}

fn invalid(field: impl std::fmt::Display, problem: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {problem}"))
}

/// A queue refusal as a gRPC status.
fn queue_status(e: &QueueError) -> Status {
    match e {
        QueueError::Full { .. } => {
            Status::resource_exhausted("queue full, retry after a back-off (about 1 s)")
        }
        QueueError::TooLarge { size, limit, unit } => Status::resource_exhausted(format!(
            "the request holds {size} {unit}, more than the queue's limit of {limit}"
        )),
        QueueError::Closed => Status::unavailable("shutting down"),
        QueueError::Backend { message, .. } => {
            tracing::warn!(error = %message, "queue backend failed");
            Status::unavailable("queue unavailable")
        }
    }
}

struct GrpcIngest {
    s: Arc<AppState>,
}

#[tonic::async_trait]
impl IngestRpc for GrpcIngest {
    async fn push_logs(
        &self,
        request: tonic::Request<pb::PushLogsRequest>,
    ) -> Result<tonic::Response<pb::PushLogsResponse>, Status> {
        let caller = caller_of(request.extensions(), self.s.ingest.default_tenant());
        let r = async {
            let records = logs_from_proto(request.into_inner().records, Timestamp::now())
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
            Ok(tonic::Response::new(pb::PushLogsResponse { accepted: n }))
        }
        .await;
        counted("PushLogs", r)
    }

    async fn push_metrics(
        &self,
        request: tonic::Request<pb::PushMetricsRequest>,
    ) -> Result<tonic::Response<pb::PushMetricsResponse>, Status> {
        let caller = caller_of(request.extensions(), self.s.ingest.default_tenant());
        let r = async {
            let req = request.into_inner();
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
            Ok(tonic::Response::new(resp))
        }
        .await;
        counted("PushMetrics", r)
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

fn metric_type_to_proto(t: MetricType) -> pb::MetricType {
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

struct GrpcQuery {
    s: Arc<AppState>,
}

impl GrpcQuery {
    fn metric_store(&self) -> Arc<dyn MetricStore> {
        Arc::new(self.s.store.clone())
    }

    /// Label names (`name` `None`) or one label's values over the union of
    /// the selectors' series, sorted, at most `limit`.
    async fn label_union(
        &self,
        tenant: &Tenant,
        name: Option<&str>,
        selectors: &[pb::SeriesSelector],
        range: TimeRange,
        limit: u32,
    ) -> Result<Vec<String>, Status> {
        let store = self.metric_store();
        let mut out = Vec::new();
        for ms in &selector_sets(selectors)? {
            let got = match name {
                None => store.label_names(tenant, ms, range).await,
                Some(n) => store.label_values(tenant, n, ms, range).await,
            };
            out.extend(got.map_err(|e| store_status(&e))?);
        }
        out.sort_unstable();
        out.dedup();
        out.truncate(label_limit(limit));
        Ok(out)
    }

    /// The PromQL engine over the caller's tenant, with the same `[query]`
    /// limits as the HTTP Prometheus API.
    fn engine(&self, tenant: Tenant) -> Engine {
        let q = &self.s.query;
        Engine::new(
            Arc::new(
                super::prom::StoreSource::new(self.s.store.clone(), tenant, q.max_series)
                    .with_rollups(self.s.rollup_reads.clone()),
            ),
            super::prom::engine_config(q),
        )
    }
}

fn time_range(field: &str, r: Option<pb::TimeRange>) -> Result<TimeRange, Status> {
    let r = r.unwrap_or_default();
    let range = TimeRange::new(
        r.start_ns.map_or(Timestamp::MIN, Timestamp::from_nanos),
        r.end_ns.map_or(Timestamp::MAX, Timestamp::from_nanos),
    );
    if range.start > range.end {
        return Err(invalid(field, "start_ns is after end_ns"));
    }
    Ok(range)
}

fn severity_from_proto(field: &str, n: i32) -> Result<Option<Severity>, Status> {
    match n {
        0 => Ok(None),
        n => u8::try_from(n - 1)
            .ok()
            .and_then(Severity::from_code)
            .map(Some)
            .ok_or_else(|| invalid(field, format_args!("{n} is not a Severity (0..=8)"))),
    }
}

/// A request's log filter and time range.
fn log_filter(f: Option<pb::LogFilter>) -> Result<(LogFilter, TimeRange), Status> {
    let f = f.unwrap_or_default();
    let range = time_range("filter.range", f.range)?;
    let filter = LogFilter {
        min_severity: severity_from_proto("filter.min_severity", f.min_severity)?,
        host: f.host,
        app: f.app,
        source: f.source,
        fields: f.fields.into_iter().map(|m| (m.name, m.value)).collect(),
        text: (!f.query.is_empty()).then_some(f.query),
    };
    Ok((filter, range))
}

fn logquery_status(e: logquery::QueryError) -> Status {
    match e {
        logquery::QueryError::Invalid(m) => Status::invalid_argument(m),
        other => {
            tracing::warn!(error = %other, "gRPC log query failed");
            Status::internal("the log query failed; see the server log")
        }
    }
}

/// A metric store failure: logged, not shown (it may hold SQL or paths).
fn store_status(e: &killkrill_core::storage::StoreError) -> Status {
    tracing::warn!(error = %e, "gRPC metric query failed");
    Status::internal("the metric query failed; see the server log")
}

fn promql_status(e: &killkrill_query::QueryError) -> Status {
    use killkrill_query::ErrorKind as K;
    let m = e.to_string();
    match e.kind() {
        K::BadData => Status::invalid_argument(format!("query: {m}")),
        K::Execution => Status::new(Code::ResourceExhausted, m),
        K::Timeout => Status::deadline_exceeded(m),
        K::Canceled => Status::cancelled(m),
        K::Internal => Status::internal(m),
    }
}

fn selector_matchers(field: &str, sel: &pb::SeriesSelector) -> Result<Vec<LabelMatcher>, Status> {
    use pb::label_matcher::Type;
    sel.matchers
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let op = match Type::try_from(m.r#type) {
                Ok(Type::Equal) => MatchOp::Eq,
                Ok(Type::NotEqual) => MatchOp::Ne,
                Ok(Type::Regex) => MatchOp::Re,
                Ok(Type::NotRegex) => MatchOp::Nre,
                Err(_) => {
                    return Err(invalid(
                        format_args!("{field}.matchers[{i}].type"),
                        format_args!("{} is not a matcher type", m.r#type),
                    ));
                }
            };
            LabelMatcher::new(m.name.clone(), op, m.value.clone())
                .map_err(|e| invalid(format_args!("{field}.matchers[{i}]"), e))
        })
        .collect()
}

/// Series of a query value (scalars as one series without labels).
fn prom_series(v: QueryValue) -> pb::PromQueryResponse {
    use pb::prom_query_response::ResultType as R;
    let label = |(name, value): (String, String)| pb::Label { name, value };
    let point = |t_ms: i64, value: f64| pb::Point {
        timestamp_ns: t_ms.saturating_mul(1_000_000),
        value,
    };
    match v {
        QueryValue::Scalar { t, v } => pb::PromQueryResponse {
            result_type: R::Scalar as i32,
            series: vec![pb::PromSeries {
                labels: Vec::new(),
                points: vec![point(t, v)],
            }],
            string_value: String::new(),
        },
        QueryValue::String { v, .. } => pb::PromQueryResponse {
            result_type: R::String as i32,
            series: Vec::new(),
            string_value: v,
        },
        QueryValue::Vector(samples) => pb::PromQueryResponse {
            result_type: R::Vector as i32,
            series: samples
                .into_iter()
                .map(|s| pb::PromSeries {
                    labels: s.labels.into_iter().map(label).collect(),
                    points: vec![point(s.t, s.v)],
                })
                .collect(),
            string_value: String::new(),
        },
        QueryValue::Matrix(series) => pb::PromQueryResponse {
            result_type: R::Matrix as i32,
            series: series
                .into_iter()
                .map(|s| pb::PromSeries {
                    labels: s.labels.into_iter().map(label).collect(),
                    points: s.points.into_iter().map(|(t, v)| point(t, v)).collect(),
                })
                .collect(),
            string_value: String::new(),
        },
    }
}

#[tonic::async_trait]
impl QueryRpc for GrpcQuery {
    async fn query_logs(
        &self,
        request: tonic::Request<pb::QueryLogsRequest>,
    ) -> Result<tonic::Response<pb::QueryLogsResponse>, Status> {
        let caller = caller_of(request.extensions(), self.s.ingest.default_tenant());
        let r = async {
            let req = request.into_inner();
            let (filter, range) = log_filter(req.filter)?;
            let limit = match req.limit as usize {
                0 => DEFAULT_PAGE_SIZE,
                n if n > MAX_PAGE_SIZE => {
                    return Err(invalid(
                        "limit",
                        format_args!("{n} is more than the maximum page size {MAX_PAGE_SIZE}"),
                    ));
                }
                n => n,
            };
            let cursor = if req.cursor.is_empty() {
                None
            } else {
                Some(
                    req.cursor
                        .parse::<Cursor>()
                        .map_err(|e| invalid("cursor", e))?,
                )
            };
            let order = match pb::Order::try_from(req.order) {
                Ok(pb::Order::Descending) => ScanOrder::NewestFirst,
                Ok(pb::Order::Ascending) => ScanOrder::OldestFirst,
                Err(_) => {
                    return Err(invalid(
                        "order",
                        format_args!("{} is not an Order", req.order),
                    ));
                }
            };
            let q = LogQuery {
                tenant: caller.tenant,
                range,
                filter,
                order,
                limit,
                cursor,
            };
            let page = query_logs(&self.s.store, &q)
                .await
                .map_err(logquery_status)?;
            Ok(tonic::Response::new(pb::QueryLogsResponse {
                records: page.records.iter().map(log_record_to_proto).collect(),
                next_cursor: page.next_cursor.map(|c| c.to_string()).unwrap_or_default(),
            }))
        }
        .await;
        counted("QueryLogs", r)
    }

    async fn log_volume(
        &self,
        request: tonic::Request<pb::LogVolumeRequest>,
    ) -> Result<tonic::Response<pb::LogVolumeResponse>, Status> {
        let caller = caller_of(request.extensions(), self.s.ingest.default_tenant());
        let r = async {
            let req = request.into_inner();
            let (filter, range) = log_filter(req.filter)?;
            if range.start == Timestamp::MIN || range.end == Timestamp::MAX {
                return Err(invalid(
                    "filter.range",
                    "start_ns and end_ns are both required",
                ));
            }
            let width = range.end.as_nanos().saturating_sub(range.start.as_nanos());
            let step = match i64::try_from(req.step_ns) {
                Ok(0) => (width / DEFAULT_BUCKETS).max(1),
                Ok(n) => n,
                Err(_) => return Err(invalid("step_ns", "too large")),
            };
            let q = VolumeQuery {
                tenant: caller.tenant,
                range,
                filter,
                step_nanos: step,
            };
            let v = query_volume(&self.s.store, &q)
                .await
                .map_err(logquery_status)?;
            let buckets = v
                .buckets
                .iter()
                .map(|b| pb::LogVolumeBucket {
                    start_ns: b.start.as_nanos(),
                    total: b.total,
                    by_severity: b
                        .by_severity
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| **c > 0)
                        .map(|(code, &count)| pb::SeverityCount {
                            // Codes 0..=7 are syslog's (+1 on the wire); 8
                            // counts records without a severity (0).
                            severity: if code < 8 { code as i32 + 1 } else { 0 },
                            count,
                        })
                        .collect(),
                })
                .collect();
            Ok(tonic::Response::new(pb::LogVolumeResponse { buckets }))
        }
        .await;
        counted("LogVolume", r)
    }

    type TailLogsStream = tonic::codegen::BoxStream<pb::TailLogsResponse>;

    async fn tail_logs(
        &self,
        request: tonic::Request<pb::TailLogsRequest>,
    ) -> Result<tonic::Response<Self::TailLogsStream>, Status> {
        let caller = caller_of(request.extensions(), self.s.ingest.default_tenant());
        let r = async {
            // `filter.range` is ignored: a tail starts now.
            let (filter, _) = log_filter(request.into_inner().filter)?;
            let sub = super::tail::subscribe(&self.s, caller.tenant, filter)
                .await
                .map_err(|e| match e {
                    Some(e) => logquery_status(e),
                    None => Status::resource_exhausted(format!(
                        "query.max_tails: {} live tails are open, the limit; retry later",
                        self.s.query.max_tails
                    )),
                })?;
            counter!(super::tail::TAILS_OPENED_GRPC).increment(1);
            Ok(tonic::Response::new(
                Box::pin(tail_stream(sub)) as Self::TailLogsStream
            ))
        }
        .await;
        counted("TailLogs", r)
    }

    async fn query_metrics(
        &self,
        request: tonic::Request<pb::QueryMetricsRequest>,
    ) -> Result<tonic::Response<pb::QueryMetricsResponse>, Status> {
        let caller = caller_of(request.extensions(), self.s.ingest.default_tenant());
        let r = async {
            let req = request.into_inner();
            let sel = req
                .selector
                .ok_or_else(|| invalid("selector", "required"))?;
            let matchers = selector_matchers("selector", &sel)?;
            if matchers.iter().all(|m| m.matches(Some(""))) {
                return Err(invalid(
                    "selector",
                    "at least one matcher must not match the empty string",
                ));
            }
            let range = time_range("range", req.range)?;
            if range.start == Timestamp::MIN || range.end == Timestamp::MAX {
                return Err(invalid("range", "start_ns and end_ns are both required"));
            }
            let aggregated = req
                .aggregation
                .as_ref()
                .is_some_and(|a| a.op != pb::aggregation::Op::None as i32);
            if req.step_ns != 0 || aggregated {
                return Err(Status::unimplemented(
                    "QueryMetrics answers raw points only (step_ns 0, no aggregation); use \
                     PromQueryRange for steps and aggregations",
                ));
            }
            let got = self
                .metric_store()
                .select_samples(&caller.tenant, &matchers, range)
                .await
                .map_err(|e| store_status(&e))?;
            let series = got
                .into_iter()
                .map(|s| pb::SeriesPoints {
                    name: s.name.to_string(),
                    labels: s
                        .labels
                        .iter()
                        .map(|l| pb::Label {
                            name: l.name.to_string(),
                            value: l.value.to_string(),
                        })
                        .collect(),
                    r#type: metric_type_to_proto(MetricType::Unknown) as i32,
                    points: s
                        .points
                        .into_iter()
                        .map(|(timestamp_ns, value)| pb::Point {
                            timestamp_ns,
                            value,
                        })
                        .collect(),
                })
                .collect();
            Ok(tonic::Response::new(pb::QueryMetricsResponse { series }))
        }
        .await;
        counted("QueryMetrics", r)
    }

    async fn label_names(
        &self,
        request: tonic::Request<pb::LabelNamesRequest>,
    ) -> Result<tonic::Response<pb::LabelNamesResponse>, Status> {
        let caller = caller_of(request.extensions(), self.s.ingest.default_tenant());
        let r = async {
            let req = request.into_inner();
            let range = time_range("range", req.range)?;
            let names = self
                .label_union(&caller.tenant, None, &req.selectors, range, req.limit)
                .await?;
            Ok(tonic::Response::new(pb::LabelNamesResponse { names }))
        }
        .await;
        counted("LabelNames", r)
    }

    async fn label_values(
        &self,
        request: tonic::Request<pb::LabelValuesRequest>,
    ) -> Result<tonic::Response<pb::LabelValuesResponse>, Status> {
        let caller = caller_of(request.extensions(), self.s.ingest.default_tenant());
        let r = async {
            let req = request.into_inner();
            if req.name.is_empty() {
                return Err(invalid("name", "required"));
            }
            let range = time_range("range", req.range)?;
            let values = self
                .label_union(
                    &caller.tenant,
                    Some(&req.name),
                    &req.selectors,
                    range,
                    req.limit,
                )
                .await?;
            Ok(tonic::Response::new(pb::LabelValuesResponse { values }))
        }
        .await;
        counted("LabelValues", r)
    }

    async fn prom_query(
        &self,
        request: tonic::Request<pb::PromQueryRequest>,
    ) -> Result<tonic::Response<pb::PromQueryResponse>, Status> {
        let caller = caller_of(request.extensions(), self.s.ingest.default_tenant());
        let r = async {
            let req = request.into_inner();
            if req.query.is_empty() {
                return Err(invalid("query", "required"));
            }
            let t_ms = req
                .time_ns
                .map_or_else(|| Timestamp::now().as_millis(), |t| t.div_euclid(1_000_000));
            let v = self
                .engine(caller.tenant)
                .instant(&req.query, t_ms, None)
                .await
                .map_err(|e| promql_status(&e))?;
            Ok(tonic::Response::new(prom_series(v)))
        }
        .await;
        counted("PromQuery", r)
    }

    async fn prom_query_range(
        &self,
        request: tonic::Request<pb::PromQueryRangeRequest>,
    ) -> Result<tonic::Response<pb::PromQueryResponse>, Status> {
        let caller = caller_of(request.extensions(), self.s.ingest.default_tenant());
        let r = async {
            let req = request.into_inner();
            if req.query.is_empty() {
                return Err(invalid("query", "required"));
            }
            if req.step_ns < 1_000_000 {
                return Err(invalid("step_ns", "must be at least 1 ms (1000000)"));
            }
            let step_ms = i64::try_from(req.step_ns / 1_000_000)
                .map_err(|_| invalid("step_ns", "too large"))?;
            let (start, end) = (
                req.start_ns.div_euclid(1_000_000),
                req.end_ns.div_euclid(1_000_000),
            );
            if end < start {
                return Err(invalid("end_ns", "is before start_ns"));
            }
            let v = self
                .engine(caller.tenant)
                .range(&req.query, start, end, step_ms, None)
                .await
                .map_err(|e| promql_status(&e))?;
            Ok(tonic::Response::new(prom_series(v)))
        }
        .await;
        counted("PromQueryRange", r)
    }
}

/// Most label names or values one call returns.
const MAX_LABELS: usize = 100_000;

fn label_limit(n: u32) -> usize {
    match n as usize {
        0 => MAX_LABELS,
        n => n.min(MAX_LABELS),
    }
}

/// Matcher sets of `selectors[i]`; one empty set (every series) when none.
fn selector_sets(sel: &[pb::SeriesSelector]) -> Result<Vec<Vec<LabelMatcher>>, Status> {
    if sel.is_empty() {
        return Ok(vec![Vec::new()]);
    }
    sel.iter()
        .enumerate()
        .map(|(i, s)| selector_matchers(&format!("selectors[{i}]"), s))
        .collect()
}

/// Records sent in one `TailLogsResponse` at most (what is buffered is
/// sent together).
const TAIL_BATCH: usize = 256;

/// A tail as `TailLogsResponse`s: buffered records together, heartbeats as
/// `heartbeat_ns`; a tail the server ends (slow client, shutdown, store
/// error) ends the stream with a status naming why.
fn tail_stream(
    sub: super::tail::Subscription,
) -> impl futures_util::Stream<Item = Result<pb::TailLogsResponse, Status>> + Send {
    use super::tail::TailItem;
    use pb::tail_logs_response::Event;
    struct St {
        sub: super::tail::Subscription,
        ended: bool,
        done: bool,
    }
    fn end_status(e: &super::tail::Ended) -> Status {
        match e.reason {
            "slow_client" => Status::resource_exhausted(e.message.clone()),
            "shutting_down" => Status::unavailable(e.message.clone()),
            _ => Status::unavailable(e.message.clone()),
        }
    }
    fn message(
        first: TailItem,
        rx: &mut tokio::sync::mpsc::Receiver<TailItem>,
    ) -> pb::TailLogsResponse {
        let event = match first {
            TailItem::Heartbeat(t) => Event::HeartbeatNs(t.as_nanos()),
            TailItem::Record(r) => {
                let mut records = vec![log_record_to_proto(&r)];
                while records.len() < TAIL_BATCH {
                    match rx.try_recv() {
                        Ok(TailItem::Record(r)) => records.push(log_record_to_proto(&r)),
                        // A heartbeat behind records says nothing new.
                        Ok(TailItem::Heartbeat(_)) => {}
                        Err(_) => break,
                    }
                }
                Event::Records(pb::LogRecords { records })
            }
        };
        pb::TailLogsResponse { event: Some(event) }
    }
    futures_util::stream::unfold(
        St {
            sub,
            ended: false,
            done: false,
        },
        |mut st| async move {
            if st.done {
                return None;
            }
            loop {
                if st.ended {
                    // The server stopped without a reason: send what is
                    // buffered, then end.
                    let item = st.sub.items.recv().await?;
                    let m = message(item, &mut st.sub.items);
                    return Some((Ok(m), st));
                }
                tokio::select! {
                    biased;
                    e = &mut st.sub.ended => {
                        st.ended = true;
                        if let Ok(e) = e {
                            // Buffered records are dropped: the client is
                            // too slow for them anyway (as in SSE).
                            st.done = true;
                            counter!(super::tail::TAILS_ENDED_GRPC, "reason" => e.reason).increment(1);
                            return Some((Err(end_status(&e)), st));
                        }
                    }
                    item = st.sub.items.recv() => {
                        let item = item?;
                        let m = message(item, &mut st.sub.items);
                        return Some((Ok(m), st));
                    }
                }
            }
        },
    )
}
