//! One error type for every store, with a [`kind`](StoreError::kind) that
//! tells the caller what to do about it.
//!
//! Callers (the pipeline's retry loop, the API's status mapping) never match
//! on SQLSTATE codes or driver messages: the store classifies once, here is
//! the vocabulary. The message may contain database text, so it is for logs,
//! never for a client.

use std::borrow::Cow;
use std::fmt;

/// What a caller can do about a [`StoreError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Temporary: connection lost, pool exhausted, deadlock, Galera
    /// certification failure or node not ready. Retrying with backoff can help.
    Retryable,
    /// Someone else changed the same rows (e.g. two compactions of the same
    /// blocks); retrying the whole operation from fresh reads can help.
    Conflict,
    /// The thing asked for does not exist.
    NotFound,
    /// The request itself is wrong (bad configuration, a record without id
    /// or tenant, a bad cursor). Retrying cannot help.
    Invalid,
    /// Stored data is damaged (a block that does not decode) or the backend
    /// failed in a way that needs an operator. Retrying cannot help.
    Fatal,
}

impl ErrorKind {
    /// Whether retrying the same call later can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Retryable | ErrorKind::Conflict)
    }

    /// A short lower-case name, for metrics labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Retryable => "retryable",
            ErrorKind::Conflict => "conflict",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Fatal => "fatal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A storage error: a kind, what was being done, and the cause.
#[derive(Debug, thiserror::Error)]
#[error("{context} ({kind}){}", .source.as_ref().map(|s| format!(": {s}")).unwrap_or_default())]
pub struct StoreError {
    kind: ErrorKind,
    context: Cow<'static, str>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// An error of `kind` while doing `context`.
    pub fn new(kind: ErrorKind, context: impl Into<Cow<'static, str>>) -> Self {
        StoreError {
            kind,
            context: context.into(),
            source: None,
        }
    }

    /// An error of `kind` while doing `context`, caused by `source`.
    pub fn with_source(
        kind: ErrorKind,
        context: impl Into<Cow<'static, str>>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        StoreError {
            kind,
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// Shorthand for an [`ErrorKind::Invalid`] error.
    pub fn invalid(context: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Invalid, context)
    }

    /// What the caller can do about it.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What was being done when it failed.
    pub fn context(&self) -> &str {
        &self.context
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_kind() {
        let e = StoreError::with_source(
            ErrorKind::Retryable,
            "writing 3 blocks",
            std::io::Error::other("connection reset"),
        );
        assert_eq!(
            e.to_string(),
            "writing 3 blocks (retryable): connection reset"
        );
        assert!(e.kind().is_retryable());
        let e = StoreError::invalid("record 4 has no id");
        assert_eq!(e.to_string(), "record 4 has no id (invalid)");
        assert!(!e.kind().is_retryable());
    }
}
