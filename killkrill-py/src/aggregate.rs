//! `killkrill.Aggregator` and `Rollup`: core's windowed aggregation engine
//! (count, sum, min, max, first, last, counter increase, DDSketch
//! quantiles) driven from Python, and `merge_rollups` for partials.

use killkrill_core::aggregate::{
    AggregateConfig, Aggregator, BatchId, BatchReport, PartialRollup, RollupKey, merge_partials,
};
use killkrill_core::event::{MetricSample, Tenant, Timestamp};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::config_error;
use crate::metric::{PyMetricSample, extract_labels, labels_to_py, metric_type};

fn report_dict<'py>(py: Python<'py>, r: &BatchReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("aggregated", r.aggregated)?;
    d.set_item("late_count", r.late_count)?;
    let late = PyList::empty(py);
    for l in &r.late {
        late.append((l.index, l.resolutions.iter().collect::<Vec<usize>>()))?;
    }
    d.set_item("late", late)?;
    let rejected = PyList::empty(py);
    for x in &r.rejected {
        rejected.append((x.index, x.reason.name()))?;
    }
    d.set_item("rejected", rejected)?;
    Ok(d)
}

/// One (partial) rollup: a series in one window of one resolution.
/// Times are nanoseconds since the Unix epoch.
#[pyclass(module = "killkrill", name = "Rollup", frozen)]
pub(crate) struct PyRollup {
    inner: PartialRollup,
}

#[pymethods]
impl PyRollup {
    #[getter]
    fn name(&self) -> &str {
        self.inner.key.series.name.as_str()
    }

    #[getter]
    fn labels<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        labels_to_py(py, &self.inner.key.series.labels)
    }

    #[getter]
    fn tenant(&self) -> &str {
        self.inner.key.series.tenant.as_str()
    }

    /// Window width in nanoseconds.
    #[getter]
    fn resolution(&self) -> i64 {
        self.inner.key.resolution.as_nanos()
    }

    /// Window width as text (`10s`, `1m`, ...).
    #[getter]
    fn resolution_text(&self) -> String {
        self.inner.key.resolution.to_string()
    }

    #[getter]
    fn window_start(&self) -> i64 {
        self.inner.key.window_start.as_nanos()
    }

    /// End of the window (exclusive).
    #[getter]
    fn window_end(&self) -> i64 {
        self.inner
            .key
            .resolution
            .window_end(self.inner.key.window_start)
            .as_nanos()
    }

    /// True for a partial of late samples (`late_samples="aggregate"`).
    #[getter]
    fn late(&self) -> bool {
        self.inner.key.late
    }

    #[getter]
    fn count(&self) -> u64 {
        self.inner.rollup.count()
    }

    /// Exact sum (computed without floating-point rounding, then rounded
    /// once).
    #[getter]
    fn sum(&self) -> f64 {
        self.inner.rollup.sum()
    }

    #[getter]
    fn mean(&self) -> f64 {
        self.inner.rollup.mean()
    }

    #[getter]
    fn min(&self) -> f64 {
        self.inner.rollup.min()
    }

    #[getter]
    fn max(&self) -> f64 {
        self.inner.rollup.max()
    }

    /// `(timestamp, value)` of the earliest sample.
    #[getter]
    fn first(&self) -> (i64, f64) {
        let p = self.inner.rollup.first();
        (p.timestamp.as_nanos(), p.value)
    }

    /// `(timestamp, value)` of the latest sample.
    #[getter]
    fn last(&self) -> (i64, f64) {
        let p = self.inner.rollup.last();
        (p.timestamp.as_nanos(), p.value)
    }

    /// Counter increase over the window with resets handled, or None when
    /// it cannot be told from this partial alone.
    #[getter]
    fn increase(&self) -> Option<f64> {
        self.inner.rollup.increase()
    }

    /// The q-quantile (0 ≤ q ≤ 1) from the DDSketch, within the configured
    /// relative accuracy; None when sketches are off.
    fn quantile(&self, q: f64) -> PyResult<Option<f64>> {
        if !(0.0..=1.0).contains(&q) {
            return Err(PyValueError::new_err(format!(
                "quantile {q} is outside 0..=1"
            )));
        }
        Ok(self.inner.rollup.quantile(q))
    }

    /// The DDSketch in core's binary form (mergeable, storable), or None.
    fn sketch_bytes(&self) -> Option<Vec<u8>> {
        self.inner.rollup.sketch().map(|s| s.to_bytes())
    }

    /// Every field as a dict (quantiles p50, p90, p99 when sketches are on).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("tenant", self.tenant())?;
        d.set_item("name", self.name())?;
        d.set_item("labels", self.labels(py)?)?;
        d.set_item("resolution", self.resolution_text())?;
        d.set_item("window_start", self.window_start())?;
        d.set_item("window_end", self.window_end())?;
        d.set_item("late", self.late())?;
        d.set_item("count", self.count())?;
        d.set_item("sum", self.sum())?;
        d.set_item("min", self.min())?;
        d.set_item("max", self.max())?;
        d.set_item("first", self.first())?;
        d.set_item("last", self.last())?;
        d.set_item("increase", self.increase())?;
        if self.inner.rollup.sketch().is_some() {
            let q = PyDict::new(py);
            for (k, v) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)] {
                q.set_item(k, self.inner.rollup.quantile(v))?;
            }
            d.set_item("quantiles", q)?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Rollup(name={:?}, resolution={}, window_start={}, count={}, sum={}, min={}, max={})",
            self.name(),
            self.resolution_text(),
            self.window_start(),
            self.count(),
            self.sum(),
            self.min(),
            self.max()
        )
    }
}

/// The aggregation engine. Samples go in as batches (`add_samples`) or one
/// at a time (`add`); `flush()` hands out the partial rollups produced
/// since the previous flush. Event time decides windows and lateness.
#[pyclass(module = "killkrill", name = "Aggregator")]
pub(crate) struct PyAggregator {
    engine: Aggregator,
    config: AggregateConfig,
    next_batch: u128,
}

impl PyAggregator {
    fn run(
        &mut self,
        py: Python<'_>,
        batch: Option<u128>,
        samples: &[MetricSample],
    ) -> PyResult<Py<PyDict>> {
        let id = batch.unwrap_or(self.next_batch);
        self.next_batch = self.next_batch.max(id) + 1;
        let engine = &mut self.engine;
        let report = py.detach(|| engine.aggregate(BatchId(id), samples));
        Ok(report_dict(py, &report)?.unbind())
    }
}

#[pymethods]
impl PyAggregator {
    /// Settings as in the `aggregate` section of the Killkrill config:
    /// `resolutions` (durations like `"10s"`, `"1m"`), `allowed_lateness`,
    /// `late_samples` (`"drop"`, `"output"`, `"aggregate"`),
    /// `max_series_per_metric`, `max_open_windows`, and the sketch settings
    /// (`sketch`, `relative_accuracy`, `max_buckets`). Omitted ones take
    /// core's defaults. Raises `ConfigError` naming the key.
    #[new]
    #[pyo3(signature = (resolutions=None, *, allowed_lateness=None, late_samples=None, max_series_per_metric=None, max_open_windows=None, sketch=None, relative_accuracy=None, max_buckets=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        resolutions: Option<Vec<String>>,
        allowed_lateness: Option<String>,
        late_samples: Option<String>,
        max_series_per_metric: Option<u32>,
        max_open_windows: Option<usize>,
        sketch: Option<bool>,
        relative_accuracy: Option<f64>,
        max_buckets: Option<u32>,
    ) -> PyResult<Self> {
        let mut cfg = serde_json::Map::new();
        let mut sk = serde_json::Map::new();
        if let Some(r) = resolutions {
            cfg.insert("resolutions".into(), r.into());
        }
        if let Some(v) = allowed_lateness {
            cfg.insert("allowed_lateness".into(), v.into());
        }
        if let Some(v) = late_samples {
            cfg.insert("late_samples".into(), v.into());
        }
        if let Some(v) = max_series_per_metric {
            cfg.insert("max_series_per_metric".into(), v.into());
        }
        if let Some(v) = max_open_windows {
            cfg.insert("max_open_windows".into(), v.into());
        }
        if let Some(v) = sketch {
            sk.insert("enabled".into(), v.into());
        }
        if let Some(v) = relative_accuracy {
            sk.insert("relative_accuracy".into(), v.into());
        }
        if let Some(v) = max_buckets {
            sk.insert("max_buckets".into(), v.into());
        }
        if !sk.is_empty() {
            cfg.insert("sketch".into(), sk.into());
        }
        let config: AggregateConfig = serde_json::from_value(cfg.into())
            .map_err(|e| config_error(py, "aggregate", format!("aggregate config: {e}")))?;
        let engine = config
            .build()
            .map_err(|e| config_error(py, &e.key, e.to_string()))?;
        Ok(PyAggregator {
            engine,
            config,
            next_batch: 1,
        })
    }

    /// The effective config (defaults filled in), as the config file
    /// would spell it.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::record::serialize_to_py(py, &self.config)
    }

    /// Window widths in nanoseconds, ascending (indices in a report's
    /// `late` entries refer to this order).
    #[getter]
    fn resolutions(&self) -> Vec<i64> {
        self.engine
            .resolutions()
            .iter()
            .map(|r| r.as_nanos())
            .collect()
    }

    /// Windows held open in memory.
    #[getter]
    fn open_windows(&self) -> usize {
        self.engine.open_windows()
    }

    /// Live series.
    #[getter]
    fn series_count(&self) -> usize {
        self.engine.series_count()
    }

    /// True when there are partials to flush.
    #[getter]
    fn needs_flush(&self) -> bool {
        self.engine.needs_flush()
    }

    /// Counters since creation: received, aggregated, late, late_dropped,
    /// late_output, late_aggregated, rejected_*, windows_opened,
    /// windows_closed, partials_flushed, flushes.
    #[getter]
    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.engine.counters();
        let d = PyDict::new(py);
        d.set_item("received", c.received)?;
        d.set_item("aggregated", c.aggregated)?;
        d.set_item("late", c.late)?;
        d.set_item("late_dropped", c.late_dropped)?;
        d.set_item("late_output", c.late_output)?;
        d.set_item("late_aggregated", c.late_aggregated)?;
        d.set_item("rejected_missing_timestamp", c.rejected_missing_timestamp)?;
        d.set_item("rejected_non_finite", c.rejected_non_finite)?;
        d.set_item("rejected_cardinality", c.rejected_cardinality)?;
        d.set_item("rejected_open_windows", c.rejected_open_windows)?;
        d.set_item("windows_opened", c.windows_opened)?;
        d.set_item("windows_closed", c.windows_closed)?;
        d.set_item("partials_flushed", c.partials_flushed)?;
        d.set_item("flushes", c.flushes)?;
        Ok(d)
    }

    /// Aggregates one sample (a batch of one). `timestamp` is nanoseconds
    /// since the Unix epoch. Returns the batch report: `aggregated`,
    /// `late_count`, `late` [(index, [resolution indices])], `rejected`
    /// [(index, reason)].
    #[pyo3(signature = (name, value, timestamp, labels=None, *, r#type="gauge", tenant=None))]
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        py: Python<'_>,
        name: &str,
        value: f64,
        timestamp: i64,
        labels: Option<Bound<'_, PyAny>>,
        r#type: &str,
        tenant: Option<&str>,
    ) -> PyResult<Py<PyDict>> {
        let tenant = tenant
            .map(|t| Tenant::new(t).map_err(|e| PyValueError::new_err(e.to_string())))
            .transpose()?;
        let sample = MetricSample {
            tenant,
            name: name.into(),
            labels: extract_labels(labels.as_ref())?,
            value,
            timestamp: Some(Timestamp::from_nanos(timestamp)),
            kind: metric_type(r#type)?,
        };
        self.run(py, None, std::slice::from_ref(&sample))
    }

    /// Aggregates a batch of `MetricSample`s (from `MetricSample(...)`,
    /// `parse_prometheus` or `decode_remote_write`) with the GIL released.
    /// `batch_id` identifies the batch for exactly-once rollups under
    /// redelivery (default: a counter).
    #[pyo3(signature = (samples, batch_id=None))]
    fn add_samples(
        &mut self,
        py: Python<'_>,
        samples: Vec<Bound<'_, PyMetricSample>>,
        batch_id: Option<u128>,
    ) -> PyResult<Py<PyDict>> {
        let owned: Vec<MetricSample> = samples.iter().map(|s| s.get().inner.clone()).collect();
        self.run(py, batch_id, &owned)
    }

    /// The partial rollups produced since the previous flush (series in
    /// first-seen order; per series by resolution, window start, late).
    /// Windows whose end has passed their tenant's watermark plus the
    /// allowed lateness are closed and evicted.
    fn flush(&mut self, py: Python<'_>) -> Vec<PyRollup> {
        let engine = &mut self.engine;
        let flush = py.detach(|| engine.flush());
        flush
            .partials
            .into_iter()
            .map(|inner| PyRollup { inner })
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "Aggregator(resolutions={:?}, series={}, open_windows={})",
            self.engine
                .resolutions()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            self.engine.series_count(),
            self.engine.open_windows()
        )
    }
}

/// Merges partial rollups of the same key (series, resolution, window,
/// late) exactly, in any order; returns one rollup per key, sorted by key.
#[pyfunction]
fn merge_rollups(rollups: Vec<Bound<'_, PyRollup>>) -> PyResult<Vec<PyRollup>> {
    let merged = merge_partials(rollups.iter().map(|r| &r.get().inner))
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(merged
        .into_iter()
        .map(|(key, rollup): (RollupKey, _)| PyRollup {
            inner: PartialRollup { key, rollup },
        })
        .collect())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyAggregator>()?;
    m.add_class::<PyRollup>()?;
    m.add_function(wrap_pyfunction!(merge_rollups, m)?)?;
    Ok(())
}
