//! The one error type of the query boundary, with the Prometheus `errorType`
//! and HTTP status each kind maps to (mapped in one place: [`QueryError::kind`]).

use std::time::Duration;

/// What went wrong while parsing or evaluating a query.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The request or the query text is malformed (parse error, bad parameter).
    #[error("{0}")]
    BadData(String),
    /// The query is valid PromQL but uses something this evaluator does not implement.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Evaluation failed (e.g. many-to-many matching, duplicate label sets).
    #[error("{0}")]
    Execution(String),
    /// The query would load more samples than allowed.
    #[error(
        "query processing would load too many samples into memory in query execution (limit max_samples = {limit})"
    )]
    TooManySamples {
        /// The configured limit.
        limit: usize,
    },
    /// The query selects more series than allowed.
    #[error("query selects too many series (limit max_series = {limit})")]
    TooManySeries {
        /// The configured limit.
        limit: usize,
    },
    /// Another configured limit was exceeded (`max_range`, ...).
    #[error("{message}")]
    LimitExceeded {
        /// The limit's name as configured.
        limit: &'static str,
        /// What exceeded it, by how much.
        message: String,
    },
    /// The query ran longer than its timeout.
    #[error("query timed out in {phase} (timeout {timeout:?})")]
    Timeout {
        /// Where it was when the deadline passed.
        phase: &'static str,
        /// The timeout in force.
        timeout: Duration,
    },
    /// The caller stopped waiting (the client went away).
    #[error("query was canceled")]
    Cancelled,
    /// The data source failed; the text is safe to show to a client.
    #[error("data source: {0}")]
    Source(String),
}

/// The Prometheus HTTP API error classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `bad_data`, HTTP 400.
    BadData,
    /// `execution`, HTTP 422.
    Execution,
    /// `timeout`, HTTP 503.
    Timeout,
    /// `internal`, HTTP 500.
    Internal,
    /// `canceled`, HTTP 499 (client closed the request).
    Canceled,
}

impl ErrorKind {
    /// The `errorType` string of Prometheus's JSON envelope.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadData => "bad_data",
            ErrorKind::Execution => "execution",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Internal => "internal",
            ErrorKind::Canceled => "canceled",
        }
    }

    /// The HTTP status code Prometheus answers with for this class.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::BadData => 400,
            ErrorKind::Execution => 422,
            ErrorKind::Timeout => 503,
            ErrorKind::Internal => 500,
            ErrorKind::Canceled => 499,
        }
    }
}

impl QueryError {
    /// Which Prometheus error class this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            QueryError::BadData(_) | QueryError::Unsupported(_) => ErrorKind::BadData,
            QueryError::Execution(_)
            | QueryError::TooManySamples { .. }
            | QueryError::TooManySeries { .. }
            | QueryError::LimitExceeded { .. } => ErrorKind::Execution,
            QueryError::Timeout { .. } => ErrorKind::Timeout,
            QueryError::Source(_) => ErrorKind::Internal,
            QueryError::Cancelled => ErrorKind::Canceled,
        }
    }

    pub(crate) fn exec(msg: impl Into<String>) -> Self {
        QueryError::Execution(msg.into())
    }
}
