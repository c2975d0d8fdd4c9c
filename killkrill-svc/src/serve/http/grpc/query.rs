//! `killkrill.v1.Query`: logs, volume, tail, metrics, labels and PromQL.

use std::sync::Arc;

use killkrill_core::event::{MetricType, Severity, Tenant, Timestamp};
use killkrill_core::logquery::{
    self, Cursor, LogFilter, LogQuery, VolumeQuery, query_logs, query_volume,
};
use killkrill_core::proto_records::log_record_to_proto;
use killkrill_core::storage::{LabelMatcher, MatchOp, MetricStore, ScanOrder, TimeRange};
use killkrill_proto::killkrill::v1 as pb;
use killkrill_proto::killkrill::v1::query_server::Query as QueryRpc;
use killkrill_query::{Engine, QueryValue};
use metrics::counter;
use tonic::{Code, Status};

use super::ingest::metric_type_to_proto;
use super::{call, invalid};
use crate::config::QueryConfig;
use crate::serve::http::AppState;
use crate::serve::http::read_limits::{self, Refusal};

pub(super) struct GrpcQuery {
    pub(super) s: Arc<AppState>,
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
                crate::serve::http::prom::StoreSource::new(
                    self.s.store.clone(),
                    tenant,
                    q.max_series,
                )
                .with_rollups(self.s.rollup_reads.clone()),
            ),
            crate::serve::http::prom::engine_config(q),
        )
    }
}

/// An open range for label lookups (absent bounds are the whole of time).
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

/// A data range under the `[query]` limits, as REST reads it: an absent
/// `end_ns` is now, an absent `start_ns` is `end_ns` minus `default_width`
/// (at most `query.max_range_secs`), a longer range is
/// `RESOURCE_EXHAUSTED`.
fn limited_range(
    cfg: &QueryConfig,
    r: Option<pb::TimeRange>,
    end_field: &'static str,
    default_width: Option<std::time::Duration>,
) -> Result<TimeRange, Status> {
    let r = r.unwrap_or_default();
    read_limits::time_range(
        cfg,
        r.start_ns.map(Timestamp::from_nanos),
        r.end_ns.map(Timestamp::from_nanos),
        Timestamp::now(),
        default_width,
        end_field,
    )
    .map_err(Refusal::grpc)
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

/// A request's log filter and its (unchecked) time range.
fn log_filter(f: Option<pb::LogFilter>) -> Result<(LogFilter, Option<pb::TimeRange>), Status> {
    let f = f.unwrap_or_default();
    let filter = LogFilter {
        min_severity: severity_from_proto("filter.min_severity", f.min_severity)?,
        host: f.host,
        app: f.app,
        source: f.source,
        fields: f.fields.into_iter().map(|m| (m.name, m.value)).collect(),
        text: (!f.query.is_empty()).then_some(f.query),
    };
    Ok((filter, f.range))
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
        call("QueryLogs", request, |caller, req| async move {
            let cfg = &self.s.query;
            let (filter, range) = log_filter(req.filter)?;
            let range = limited_range(cfg, range, "filter.range.end_ns", None)?;
            let limit = read_limits::page_size(
                cfg,
                (req.limit != 0).then_some(req.limit as usize),
                "limit",
            )
            .map_err(Refusal::grpc)?;
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
            let page = read_limits::timed(cfg, query_logs(&self.s.store, &q))
                .await
                .map_err(Refusal::grpc)?
                .map_err(logquery_status)?;
            Ok(pb::QueryLogsResponse {
                records: page.records.iter().map(log_record_to_proto).collect(),
                next_cursor: page.next_cursor.map(|c| c.to_string()).unwrap_or_default(),
            })
        })
        .await
    }

    async fn log_volume(
        &self,
        request: tonic::Request<pb::LogVolumeRequest>,
    ) -> Result<tonic::Response<pb::LogVolumeResponse>, Status> {
        call("LogVolume", request, |caller, req| async move {
            let cfg = &self.s.query;
            let (filter, range) = log_filter(req.filter)?;
            let range = limited_range(cfg, range, "filter.range.end_ns", None)?;
            let step = match req.step_ns {
                0 => None,
                n => Some(i64::try_from(n).map_err(|_| invalid("step_ns", "too large"))?),
            };
            let step =
                read_limits::volume_step(cfg, range, step, "step_ns").map_err(Refusal::grpc)?;
            let q = VolumeQuery {
                tenant: caller.tenant,
                range,
                filter,
                step_nanos: step,
            };
            let v = read_limits::timed(cfg, query_volume(&self.s.store, &q))
                .await
                .map_err(Refusal::grpc)?
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
            Ok(pb::LogVolumeResponse { buckets })
        })
        .await
    }

    type TailLogsStream = tonic::codegen::BoxStream<pb::TailLogsResponse>;

    async fn tail_logs(
        &self,
        request: tonic::Request<pb::TailLogsRequest>,
    ) -> Result<tonic::Response<Self::TailLogsStream>, Status> {
        call("TailLogs", request, |caller, req| async move {
            // `filter.range` is ignored: a tail starts now.
            let (filter, _) = log_filter(req.filter)?;
            use crate::serve::http::tail::SubscribeError;
            let sub = crate::serve::http::tail::subscribe(&self.s, caller.tenant, filter)
                .await
                .map_err(|e| match e {
                    SubscribeError::Query(e) => logquery_status(e),
                    SubscribeError::Refused(r) => {
                        Status::resource_exhausted(format!("{}: {}", r.limit.key(), r.message()))
                    }
                })?;
            counter!(crate::serve::http::tail::TAILS_OPENED_GRPC).increment(1);
            Ok(Box::pin(tail_stream(sub)) as Self::TailLogsStream)
        })
        .await
    }

    async fn query_metrics(
        &self,
        request: tonic::Request<pb::QueryMetricsRequest>,
    ) -> Result<tonic::Response<pb::QueryMetricsResponse>, Status> {
        call("QueryMetrics", request, |caller, req| async move {
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
            let cfg = &self.s.query;
            if req
                .range
                .as_ref()
                .is_none_or(|r| r.start_ns.is_none() || r.end_ns.is_none())
            {
                return Err(invalid("range", "start_ns and end_ns are both required"));
            }
            let range = limited_range(cfg, req.range, "range.end_ns", None)?;
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
            let store = self.metric_store();
            let load = async {
                let n = store
                    .select_series(&caller.tenant, &matchers, range)
                    .await
                    .map_err(|e| store_status(&e))?
                    .len();
                read_limits::series_within(cfg, n).map_err(Refusal::grpc)?;
                let got = store
                    .select_samples(&caller.tenant, &matchers, range)
                    .await
                    .map_err(|e| store_status(&e))?;
                read_limits::points_within(cfg, got.iter().map(|s| s.points.len()).sum())
                    .map_err(Refusal::grpc)?;
                Ok::<_, Status>(got)
            };
            let got = read_limits::timed(cfg, load)
                .await
                .map_err(Refusal::grpc)??;
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
            Ok(pb::QueryMetricsResponse { series })
        })
        .await
    }

    async fn label_names(
        &self,
        request: tonic::Request<pb::LabelNamesRequest>,
    ) -> Result<tonic::Response<pb::LabelNamesResponse>, Status> {
        call("LabelNames", request, |caller, req| async move {
            let range = time_range("range", req.range)?;
            let names = self
                .label_union(&caller.tenant, None, &req.selectors, range, req.limit)
                .await?;
            Ok(pb::LabelNamesResponse { names })
        })
        .await
    }

    async fn label_values(
        &self,
        request: tonic::Request<pb::LabelValuesRequest>,
    ) -> Result<tonic::Response<pb::LabelValuesResponse>, Status> {
        call("LabelValues", request, |caller, req| async move {
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
            Ok(pb::LabelValuesResponse { values })
        })
        .await
    }

    async fn prom_query(
        &self,
        request: tonic::Request<pb::PromQueryRequest>,
    ) -> Result<tonic::Response<pb::PromQueryResponse>, Status> {
        call("PromQuery", request, |caller, req| async move {
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
            Ok(prom_series(v))
        })
        .await
    }

    async fn prom_query_range(
        &self,
        request: tonic::Request<pb::PromQueryRangeRequest>,
    ) -> Result<tonic::Response<pb::PromQueryResponse>, Status> {
        call("PromQueryRange", request, |caller, req| async move {
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
            Ok(prom_series(v))
        })
        .await
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
    sub: crate::serve::http::tail::Subscription,
) -> impl futures_util::Stream<Item = Result<pb::TailLogsResponse, Status>> + Send {
    use crate::serve::http::tail::TailItem;
    use pb::tail_logs_response::Event;
    struct St {
        sub: crate::serve::http::tail::Subscription,
        pending: Option<TailItem>,
        ended: bool,
        done: bool,
    }
    fn end_status(e: &crate::serve::http::tail::Ended) -> Status {
        match e.reason {
            "slow_client" => Status::resource_exhausted(e.message.clone()),
            "shutting_down" => Status::unavailable(e.message.clone()),
            _ => Status::unavailable(e.message.clone()),
        }
    }
    /// The next message: `first`, with the records buffered behind it
    /// when it is a record (a gap behind them is kept for the next one).
    fn message(
        first: TailItem,
        rx: &mut tokio::sync::mpsc::Receiver<TailItem>,
        pending: &mut Option<TailItem>,
    ) -> pb::TailLogsResponse {
        let event = match first {
            TailItem::Heartbeat(t) => Event::HeartbeatNs(t.as_nanos()),
            TailItem::Gap(g) => Event::Gap(pb::TailGap {
                reason: g.reason.to_owned(),
                until_ns: g.until.as_nanos(),
                message: g.message,
            }),
            TailItem::Record(r) => {
                let mut records = vec![log_record_to_proto(&r)];
                while records.len() < TAIL_BATCH {
                    match rx.try_recv() {
                        Ok(TailItem::Record(r)) => records.push(log_record_to_proto(&r)),
                        // A heartbeat behind records says nothing new.
                        Ok(TailItem::Heartbeat(_)) => {}
                        Ok(g @ TailItem::Gap(_)) => {
                            *pending = Some(g);
                            break;
                        }
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
            pending: None,
            ended: false,
            done: false,
        },
        |mut st| async move {
            if st.done {
                return None;
            }
            if let Some(item) = st.pending.take() {
                let m = message(item, &mut st.sub.items, &mut st.pending);
                return Some((Ok(m), st));
            }
            loop {
                if st.ended {
                    // The server stopped without a reason: send what is
                    // buffered, then end.
                    let item = st.sub.items.recv().await?;
                    let m = message(item, &mut st.sub.items, &mut st.pending);
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
                            counter!(crate::serve::http::tail::TAILS_ENDED_GRPC, "reason" => e.reason).increment(1);
                            return Some((Err(end_status(&e)), st));
                        }
                    }
                    item = st.sub.items.recv() => {
                        let item = item?;
                        let m = message(item, &mut st.sub.items, &mut st.pending);
                        return Some((Ok(m), st));
                    }
                }
            }
        },
    )
}
