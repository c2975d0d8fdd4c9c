//! The evaluator: parse, fetch once, evaluate step by step.
//!
//! Evaluation has two phases. First the AST is walked once to reject what we
//! do not implement (naming it) and to compute, for every selector, the one
//! time window that covers all steps (offset, `@`, lookback or range
//! included); each selector is fetched from the [`SampleSource`] once, and the
//! sample and series limits are checked on what came back. Then the
//! expression is evaluated independently at every step over those in-memory
//! series (windows are found by binary search), on a blocking thread so a
//! heavy query does not stall the async runtime, checking the deadline as it
//! goes. Evaluating step by step is simpler than Prometheus's
//! whole-range-per-node evaluation and gives the same answers; the cost is
//! re-walking the tree per step, which the benchmark shows is small next to
//! the arithmetic.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};

use crate::error::QueryError;
use crate::labels::{Labels, selector_matchers};
use crate::source::{SampleSource, Series};
use crate::value::{QueryValue, Sample, Value, is_stale};

/// Limits and defaults of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How far back an instant selector looks for a sample (Prometheus: 5m).
    pub lookback_delta: Duration,
    /// Most samples (points) a query may load from the source.
    pub max_samples: usize,
    /// Most series a query may load from the source.
    pub max_series: usize,
    /// Default and maximum per-query timeout.
    pub timeout: Duration,
    /// Most steps a range query may have (Prometheus: 11,000).
    pub max_points_per_series: usize,
    /// Step of a subquery written without one (`x[1h:]`): Prometheus uses
    /// its global evaluation interval, 1 minute by default.
    pub default_subquery_step: Duration,
    /// Longest `end - start` of a range query or a metadata request, and
    /// half the longest window one selector may read (the range plus the
    /// selector's own window, `offset` and subqueries included). `None`:
    /// unlimited (Prometheus's behaviour).
    pub max_range: Option<Duration>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            max_series: 500_000,
            timeout: Duration::from_secs(120),
            max_points_per_series: 11_000,
            default_subquery_step: Duration::from_secs(60),
            max_range: None,
        }
    }
}

/// A PromQL engine over one [`SampleSource`].
#[derive(Clone)]
pub struct Engine {
    source: Arc<dyn SampleSource>,
    config: EngineConfig,
}

/// Selector data fetched once per query, keyed by the selector node's address.
pub(crate) type Fetched = HashMap<usize, Vec<Series>>;

pub(crate) fn key(vs: &VectorSelector) -> usize {
    std::ptr::from_ref(vs) as usize
}

/// Evaluation context shared by every step.
pub(crate) struct Ctx {
    pub data: Fetched,
    /// Selectors whose series all share one metric name, so dropping the
    /// name cannot make two of them equal (the duplicate check is skipped).
    pub one_name: std::collections::HashSet<usize>,
    pub start: i64,
    pub end: i64,
    pub lookback: i64,
    pub deadline: Instant,
    pub timeout: Duration,
    /// Set when the caller stopped waiting (e.g. the HTTP client went away).
    pub cancelled: Arc<AtomicBool>,
    /// Default subquery step (ms).
    pub sub_step: i64,
    /// Inner results of subqueries by (node, time): consecutive steps
    /// share most of their subquery points, so each is evaluated once.
    pub sub_cache: std::cell::RefCell<HashMap<(usize, i64), Vec<Sample>>>,
    /// Points produced by subqueries so far, and the limit for them.
    pub sub_points: std::cell::Cell<usize>,
    pub max_samples: usize,
    /// Selectors answered from rollups (for their covered steps), by key.
    pub rollups: HashMap<usize, crate::rollup_plan::RollupData>,
}

/// How a query's selectors were read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Selectors answered from rollups at every evaluation time.
    pub rollup_selectors: usize,
    /// Selectors answered from rollups at some evaluation times and from
    /// raw samples at the others (those after the rollups' coverage).
    pub mixed_selectors: usize,
    /// Selectors read from raw samples only.
    pub raw_selectors: usize,
}

impl QueryStats {
    /// `"rollup"`, `"mixed"`, `"raw"` or `"none"` (no selector).
    pub fn path(&self) -> &'static str {
        match (
            self.rollup_selectors,
            self.mixed_selectors,
            self.raw_selectors,
        ) {
            (0, 0, 0) => "none",
            (_, 0, 0) => "rollup",
            (0, 0, _) => "raw",
            _ => "mixed",
        }
    }
}

/// Sets the flag when dropped: the query's future was dropped before the
/// evaluation on the blocking thread finished, so that evaluation stops at
/// its next step instead of running to its deadline.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Ctx {
    pub(crate) fn check_deadline(&self) -> Result<(), QueryError> {
        if self.cancelled.load(Ordering::Relaxed) {
            metrics::counter!("killkrill_query_cancelled_total").increment(1);
            return Err(QueryError::Cancelled);
        }
        if Instant::now() > self.deadline {
            metrics::counter!("killkrill_query_limit_exceeded_total", "limit" => "timeout")
                .increment(1);
            Err(QueryError::Timeout {
                phase: "evaluation",
                timeout: self.timeout,
            })
        } else {
            Ok(())
        }
    }

    /// The time a selector looks at when evaluated at `ts` (`@` and offset applied).
    pub(crate) fn ref_time(&self, vs: &VectorSelector, ts: i64) -> i64 {
        let base = match &vs.at {
            Some(at) => at_ms(at, self.start, self.end),
            None => ts,
        };
        base - offset_ms(vs.offset.as_ref())
    }

    pub(crate) fn series(&self, vs: &VectorSelector) -> &[Series] {
        self.data.get(&key(vs)).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Instant selector: the newest sample in `[ref - lookback, ref]`, unless it is stale.
    pub(crate) fn select_instant(&self, vs: &VectorSelector, ts: i64) -> Vec<Sample> {
        let r = self.ref_time(vs, ts);
        let mut out = Vec::new();
        for s in self.series(vs) {
            let idx = s.points.partition_point(|p| p.0 <= r);
            if idx == 0 {
                continue;
            }
            let (t, v) = s.points[idx - 1];
            if t < r - self.lookback || is_stale(v) {
                continue;
            }
            out.push(Sample {
                labels: s.labels.clone(),
                t,
                v,
            });
        }
        out
    }
}

/// Points of one series in `[lo, hi]` without staleness markers.
pub(crate) fn window(
    points: &[(i64, f64)],
    lo: i64,
    hi: i64,
) -> std::borrow::Cow<'_, [(i64, f64)]> {
    let a = points.partition_point(|p| p.0 < lo);
    let b = points.partition_point(|p| p.0 <= hi);
    let w = &points[a..b.max(a)];
    if w.iter().any(|p| is_stale(p.1)) {
        std::borrow::Cow::Owned(w.iter().copied().filter(|p| !is_stale(p.1)).collect())
    } else {
        std::borrow::Cow::Borrowed(w)
    }
}

pub(crate) fn offset_ms(o: Option<&Offset>) -> i64 {
    match o {
        Some(Offset::Pos(d)) => duration_ms(*d),
        Some(Offset::Neg(d)) => -duration_ms(*d),
        None => 0,
    }
}

pub(crate) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn at_ms(at: &AtModifier, start: i64, end: i64) -> i64 {
    match at {
        AtModifier::Start => start,
        AtModifier::End => end,
        AtModifier::At(t) => system_time_ms(*t),
    }
}

fn system_time_ms(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => duration_ms(d),
        Err(e) => -duration_ms(e.duration()),
    }
}

/// Counts and builds a `max_range` refusal.
fn max_range_exceeded(message: String) -> QueryError {
    metrics::counter!("killkrill_query_limit_exceeded_total", "limit" => "max_range").increment(1);
    QueryError::LimitExceeded {
        limit: "max_range",
        message,
    }
}

/// Refuses `[start_ms, end_ms]` when it is longer than `max_range`.
pub(crate) fn check_range(
    cfg: &EngineConfig,
    start_ms: i64,
    end_ms: i64,
) -> Result<(), QueryError> {
    if let Some(max) = cfg.max_range
        && end_ms.saturating_sub(start_ms) > duration_ms(max)
    {
        return Err(max_range_exceeded(format!(
            "the query range of {}s is longer than the limit max_range = {}s",
            end_ms.saturating_sub(start_ms) / 1000,
            max.as_secs()
        )));
    }
    Ok(())
}

/// A selector to fetch and the window it needs, found by [`plan`].
struct Need<'a> {
    vs: &'a VectorSelector,
    lo: i64,
    hi: i64,
}

/// What planning needs besides the node: the query's own start and end
/// (for `@ start()`/`@ end()`), the lookback and the default subquery step.
struct PlanEnv {
    start: i64,
    end: i64,
    lookback: i64,
    sub_step: i64,
}

/// Walks the tree: rejects what we do not support and lists selector
/// windows. `lo..=hi` are the times the node will be evaluated at (the
/// query's range, shifted and widened inside subqueries).
fn plan<'a>(
    e: &'a Expr,
    lo: i64,
    hi: i64,
    env: &PlanEnv,
    out: &mut Vec<Need<'a>>,
) -> Result<(), QueryError> {
    let mut need = |vs: &'a VectorSelector, width: i64| {
        let (lo, hi) = match &vs.at {
            Some(at) => {
                let t = at_ms(at, env.start, env.end);
                (t, t)
            }
            None => (lo, hi),
        };
        let off = offset_ms(vs.offset.as_ref());
        out.push(Need {
            vs,
            lo: lo - off - width,
            hi: hi - off,
        });
    };
    match e {
        Expr::VectorSelector(vs) => need(vs, env.lookback),
        Expr::MatrixSelector(ms) => need(&ms.vs, duration_ms(ms.range)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        Expr::Paren(p) => plan(&p.expr, lo, hi, env, out)?,
        Expr::Unary(u) => plan(&u.expr, lo, hi, env, out)?,
        Expr::Binary(b) => {
            plan(&b.lhs, lo, hi, env, out)?;
            plan(&b.rhs, lo, hi, env, out)?;
        }
        Expr::Aggregate(a) => {
            crate::aggregate::check_supported(a)?;
            if let Some(p) = &a.param {
                plan(p, lo, hi, env, out)?;
            }
            plan(&a.expr, lo, hi, env, out)?;
        }
        Expr::Call(c) => {
            crate::functions::check_supported(c.func.name)?;
            for arg in &c.args.args {
                plan(arg, lo, hi, env, out)?;
            }
        }
        Expr::Subquery(sq) => {
            if sq.step.is_some_and(|s| duration_ms(s) <= 0) || env.sub_step <= 0 {
                return Err(QueryError::BadData(
                    "subquery step must be positive".to_string(),
                ));
            }
            let (lo, hi) = match &sq.at {
                Some(at) => {
                    let t = at_ms(at, env.start, env.end);
                    (t, t)
                }
                None => (lo, hi),
            };
            let off = offset_ms(sq.offset.as_ref());
            plan(
                &sq.expr,
                lo - off - duration_ms(sq.range),
                hi - off,
                env,
                out,
            )?;
        }
        Expr::Extension(_) => {
            return Err(QueryError::Unsupported(
                "extension expressions are not supported".to_string(),
            ));
        }
    }
    Ok(())
}

/// Parses PromQL into the parser's AST.
///
/// # Errors
/// `BadData` with the parser's message, or naming the limit of a query
/// longer than [`MAX_QUERY_BYTES`](crate::MAX_QUERY_BYTES) or nested deeper
/// than [`MAX_NESTING`](crate::MAX_NESTING) (see `shape`).
pub fn parse(query: &str) -> Result<Expr, QueryError> {
    crate::shape::check(query)?;
    promql_parser::parser::parse(query)
        .map_err(|e| QueryError::BadData(format!("parse error: {e}")))
}

impl Engine {
    /// An engine over `source`.
    pub fn new(source: Arc<dyn SampleSource>, config: EngineConfig) -> Self {
        Engine { source, config }
    }

    /// The configuration in force.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The data source.
    pub fn source(&self) -> &Arc<dyn SampleSource> {
        &self.source
    }

    /// Evaluates `query` at one time (milliseconds).
    ///
    /// # Errors
    /// Parse errors, unsupported features, limits, timeout, source failures.
    pub async fn instant(
        &self,
        query: &str,
        ts_ms: i64,
        timeout: Option<Duration>,
    ) -> Result<QueryValue, QueryError> {
        Ok(self.instant_with_stats(query, ts_ms, timeout).await?.0)
    }

    /// As [`Engine::instant`], with how the selectors were read.
    ///
    /// # Errors
    /// As [`Engine::instant`].
    pub async fn instant_with_stats(
        &self,
        query: &str,
        ts_ms: i64,
        timeout: Option<Duration>,
    ) -> Result<(QueryValue, QueryStats), QueryError> {
        let expr = Box::new(parse(query)?);
        let (ctx, expr, stats) = self.prepare(expr, ts_ms, ts_ms, 0, timeout).await?;
        let _cancel = CancelOnDrop(ctx.cancelled.clone());
        spawn_eval(move || {
            ctx.check_deadline()?;
            let v = crate::eval::eval(&ctx, &expr, ts_ms)?;
            Ok(match v {
                Value::Scalar(v) => QueryValue::Scalar { t: ts_ms, v },
                Value::String(v) => QueryValue::String { t: ts_ms, v },
                Value::Vector(mut samples) => {
                    for s in &mut samples {
                        s.t = ts_ms;
                    }
                    QueryValue::Vector(samples)
                }
                Value::Matrix(m) => QueryValue::Matrix(m),
            })
        })
        .await
        .map(|v| (v, stats))
    }

    /// Evaluates `query` at `start, start + step, ... <= end` (milliseconds) into a matrix.
    ///
    /// # Errors
    /// As [`Engine::instant`], plus bad ranges and result types other than vector or scalar.
    pub async fn range(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        timeout: Option<Duration>,
    ) -> Result<QueryValue, QueryError> {
        Ok(self
            .range_with_stats(query, start_ms, end_ms, step_ms, timeout)
            .await?
            .0)
    }

    /// As [`Engine::range`], with how the selectors were read.
    ///
    /// # Errors
    /// As [`Engine::range`].
    pub async fn range_with_stats(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        timeout: Option<Duration>,
    ) -> Result<(QueryValue, QueryStats), QueryError> {
        if step_ms <= 0 {
            return Err(QueryError::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".to_string(),
            ));
        }
        if end_ms < start_ms {
            return Err(QueryError::BadData(
                "end timestamp must not be before start time".to_string(),
            ));
        }
        check_range(&self.config, start_ms, end_ms)?;
        let steps = (end_ms - start_ms) / step_ms + 1;
        if usize::try_from(steps).unwrap_or(usize::MAX) > self.config.max_points_per_series {
            return Err(QueryError::BadData(format!(
                "exceeded maximum resolution of {} points per timeseries. Try decreasing the query resolution (?step=XX)",
                self.config.max_points_per_series
            )));
        }
        let expr = parse(query)?;
        match expr.value_type() {
            promql_parser::parser::value::ValueType::Vector
            | promql_parser::parser::value::ValueType::Scalar => {}
            other => {
                return Err(QueryError::BadData(format!(
                    "invalid expression type \"{other}\" for range query, must be Scalar or instant Vector"
                )));
            }
        }
        let (ctx, expr, stats) = self
            .prepare(Box::new(expr), start_ms, end_ms, step_ms, timeout)
            .await?;
        let max_samples = self.config.max_samples;
        let _cancel = CancelOnDrop(ctx.cancelled.clone());
        spawn_eval(move || {
            let mut out: HashMap<Labels, Vec<(i64, f64)>> = HashMap::new();
            let mut total = 0usize;
            let mut ts = start_ms;
            while ts <= end_ms {
                ctx.check_deadline()?;
                match crate::eval::eval(&ctx, &expr, ts)? {
                    Value::Scalar(v) => out.entry(Vec::new()).or_default().push((ts, v)),
                    Value::Vector(samples) => {
                        total += samples.len();
                        for s in samples {
                            out.entry(s.labels).or_default().push((ts, s.v));
                        }
                    }
                    other => {
                        return Err(QueryError::exec(format!(
                            "range query evaluated to {}",
                            other.type_name()
                        )));
                    }
                }
                if total > max_samples {
                    return Err(QueryError::TooManySamples { limit: max_samples });
                }
                ts += step_ms;
            }
            let mut series: Vec<Series> = out
                .into_iter()
                .map(|(labels, points)| Series { labels, points })
                .collect();
            series.sort_by(|a, b| a.labels.cmp(&b.labels));
            Ok(QueryValue::Matrix(series))
        })
        .await
        .map(|v| (v, stats))
    }

    async fn prepare(
        &self,
        expr: Box<Expr>,
        start: i64,
        end: i64,
        step: i64,
        timeout: Option<Duration>,
    ) -> Result<(Ctx, Box<Expr>, QueryStats), QueryError> {
        // Selector data is keyed by node address: the tree must not move
        // after planning, so its root lives on the heap.
        let timeout = timeout.map_or(self.config.timeout, |t| t.min(self.config.timeout));
        let deadline = Instant::now() + timeout;
        let lookback = duration_ms(self.config.lookback_delta);
        let mut needs = Vec::new();
        let env = PlanEnv {
            start,
            end,
            lookback,
            sub_step: duration_ms(self.config.default_subquery_step),
        };
        plan(&expr, start, end, &env, &mut needs)?;
        let mut candidates = HashMap::new();
        crate::rollup_plan::candidates(&expr, &mut candidates);
        let coverage = match self.source.rollups() {
            Some(r) if !candidates.is_empty() => r.rollup_coverage().await?,
            _ => None,
        };
        let steps = if step > 0 {
            usize::try_from((end - start) / step + 1).unwrap_or(usize::MAX)
        } else {
            1
        };
        let mut stats = QueryStats::default();
        let mut rollups = HashMap::new();
        let mut data = Fetched::new();
        let mut one_name = std::collections::HashSet::new();
        let mut samples = 0usize;
        let mut series = 0usize;
        for need in needs {
            if let Some(max) = self.config.max_range
                && need.hi.saturating_sub(need.lo) > duration_ms(max).saturating_mul(2)
            {
                return Err(max_range_exceeded(format!(
                    "a selector would read {}s of data, more than twice the limit max_range = {}s",
                    need.hi.saturating_sub(need.lo) / 1000,
                    max.as_secs()
                )));
            }
            let sets = selector_matchers(need.vs)?;
            let mut need = need;
            let mut names: Vec<String> = Vec::new();
            let wq = match (&coverage, candidates.get(&key(need.vs))) {
                (Some(cov), Some(&range)) => crate::rollup_plan::window_query(
                    cov,
                    range,
                    start - offset_ms(need.vs.offset.as_ref()),
                    step,
                    steps,
                ),
                _ => None,
            };
            if let (Some(wq), Some(src)) = (wq, self.source.rollups()) {
                let mut got: Vec<crate::source::WindowSeries> = Vec::new();
                for matchers in &sets {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    let res = tokio::time::timeout(remaining, src.select_windows(matchers, &wq))
                        .await
                        .map_err(|_| QueryError::Timeout {
                            phase: "fetching rollups",
                            timeout,
                        })??;
                    for s in res {
                        if sets.len() > 1 && got.iter().any(|g| g.labels == s.labels) {
                            continue;
                        }
                        got.push(s);
                    }
                }
                series += got.len();
                samples += got.iter().map(|s| s.windows.len()).sum::<usize>();
                names.extend(got.iter().map(|s| {
                    crate::labels::get(&s.labels, crate::labels::METRIC_NAME).to_string()
                }));
                rollups.insert(
                    key(need.vs),
                    crate::rollup_plan::RollupData {
                        query: wq,
                        series: got,
                    },
                );
                if wq.steps >= steps {
                    metrics::counter!("killkrill_query_selectors_total", "path" => "rollup")
                        .increment(1);
                    stats.rollup_selectors += 1;
                    check_loaded(&self.config, series, samples)?;
                    let first = names.first();
                    if names.iter().all(|n| Some(n) == first) {
                        one_name.insert(key(need.vs));
                    }
                    continue;
                }
                // The steps after the rollups' coverage read raw samples.
                metrics::counter!("killkrill_query_selectors_total", "path" => "mixed")
                    .increment(1);
                stats.mixed_selectors += 1;
                need.lo = need.lo.max(wq.time(wq.steps) - wq.range_ms);
            } else {
                metrics::counter!("killkrill_query_selectors_total", "path" => "raw").increment(1);
                stats.raw_selectors += 1;
            }
            let mut got: Vec<Series> = Vec::new();
            for matchers in &sets {
                let fetch = self.source.select(
                    matchers,
                    need.lo.saturating_mul(1_000_000),
                    need.hi.saturating_mul(1_000_000),
                );
                let remaining = deadline.saturating_duration_since(Instant::now());
                let res = tokio::time::timeout(remaining, fetch).await.map_err(|_| {
                    QueryError::Timeout {
                        phase: "fetching samples",
                        timeout,
                    }
                })??;
                for s in res {
                    if sets.len() > 1 && got.iter().any(|g| g.labels == s.labels) {
                        continue;
                    }
                    got.push(s);
                }
            }
            series += got.len();
            samples += got.iter().map(|s| s.points.len()).sum::<usize>();
            check_loaded(&self.config, series, samples)?;
            names
                .extend(got.iter().map(|s| {
                    crate::labels::get(&s.labels, crate::labels::METRIC_NAME).to_string()
                }));
            let first = names.first();
            if names.iter().all(|n| Some(n) == first) {
                one_name.insert(key(need.vs));
            }
            data.insert(key(need.vs), got);
        }
        Ok((
            Ctx {
                data,
                one_name,
                start,
                end,
                lookback,
                deadline,
                timeout,
                cancelled: Arc::new(AtomicBool::new(false)),
                sub_step: env.sub_step,
                sub_cache: std::cell::RefCell::new(HashMap::new()),
                sub_points: std::cell::Cell::new(0),
                max_samples: self.config.max_samples,
                rollups,
            },
            expr,
            stats,
        ))
    }
}

/// Refuses a query that loaded more series or samples than allowed.
fn check_loaded(cfg: &EngineConfig, series: usize, samples: usize) -> Result<(), QueryError> {
    if series > cfg.max_series {
        metrics::counter!("killkrill_query_limit_exceeded_total", "limit" => "max_series")
            .increment(1);
        return Err(QueryError::TooManySeries {
            limit: cfg.max_series,
        });
    }
    if samples > cfg.max_samples {
        metrics::counter!("killkrill_query_limit_exceeded_total", "limit" => "max_samples")
            .increment(1);
        return Err(QueryError::TooManySamples {
            limit: cfg.max_samples,
        });
    }
    Ok(())
}

/// Runs the CPU-bound evaluation off the async workers.
///
/// Stack of an evaluation thread. Evaluation recurses through the tree
/// (at most [`MAX_NESTING`](crate::MAX_NESTING) levels, each a few frames
/// that are large in debug builds): a 2 MiB blocking-pool thread overflowed
/// at 256 nested calls. Only the pages touched are ever committed.
const EVAL_STACK_BYTES: usize = 64 << 20;

/// Runs an evaluation on a thread of its own with [`EVAL_STACK_BYTES`] of
/// stack; the tree is dropped there too.
async fn spawn_eval<F>(f: F) -> Result<QueryValue, QueryError>
where
    F: FnOnce() -> Result<QueryValue, QueryError> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("promql-eval".into())
        .stack_size(EVAL_STACK_BYTES)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| QueryError::exec(format!("starting an evaluation thread: {e}")))?;
    rx.await
        .unwrap_or_else(|_| Err(QueryError::exec("the evaluation thread panicked")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ctx(deadline: Instant) -> Ctx {
        Ctx {
            data: Fetched::new(),
            one_name: std::collections::HashSet::new(),
            start: 0,
            end: 0,
            lookback: 300_000,
            deadline,
            timeout: Duration::from_secs(1),
            cancelled: Arc::new(AtomicBool::new(false)),
            sub_step: 60_000,
            sub_cache: std::cell::RefCell::new(HashMap::new()),
            sub_points: std::cell::Cell::new(0),
            max_samples: 1_000,
            rollups: HashMap::new(),
        }
    }

    #[test]
    fn dropping_the_caller_cancels_evaluation() {
        let c = ctx(Instant::now() + Duration::from_secs(60));
        assert!(c.check_deadline().is_ok());
        drop(CancelOnDrop(c.cancelled.clone()));
        assert_eq!(c.check_deadline(), Err(QueryError::Cancelled));
    }

    #[test]
    fn deadline_passes() {
        let c = ctx(Instant::now());
        std::thread::sleep(Duration::from_millis(2));
        assert!(matches!(
            c.check_deadline(),
            Err(QueryError::Timeout { .. })
        ));
    }
}
