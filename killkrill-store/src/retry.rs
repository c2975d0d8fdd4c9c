//! Retrying transient failures with exponential backoff and jitter.
//!
//! Every write (and start-up) goes through [`retry`]: deadlocks, Galera
//! certification conflicts, a node that is not ready, a lost connection or a
//! busy SQLite file are retried a bounded number of times; every retry is
//! logged and counted (`killkrill_store_retries_total{op}`), and the last
//! error is returned when the attempts run out, still marked retryable so the
//! pipeline can retry the batch later. Writes are idempotent (block ids),
//! so retrying a transaction whose commit outcome is unknown is safe.

use std::future::Future;
use std::time::Duration;

use killkrill_core::storage::{ErrorKind, StoreError};

use crate::config::RetryConfig;

/// The delay before attempt `attempt` (1-based retry count), with ±25% jitter.
pub fn backoff(cfg: &RetryConfig, attempt: u32) -> Duration {
    let base = cfg
        .initial_backoff_ms
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(20))
        .min(cfg.max_backoff_ms.max(1));
    let nanos = killkrill_core::event::Timestamp::now().as_nanos() as u64;
    let jitter = xxhash_rust::xxh3::xxh3_64(&nanos.to_le_bytes()) % (base / 2 + 1);
    Duration::from_millis(base - base / 4 + jitter)
}

/// Runs `op` until it succeeds, fails with a non-retryable error, or
/// `cfg.attempts` attempts have failed.
///
/// # Errors
/// The last error.
pub async fn retry<T, F, Fut>(
    cfg: &RetryConfig,
    op_name: &'static str,
    mut op: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 0u32;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if e.kind() == ErrorKind::Retryable && attempt + 1 < cfg.attempts.max(1) => {
                attempt += 1;
                let wait = backoff(cfg, attempt);
                metrics::counter!("killkrill_store_retries_total", "op" => op_name).increment(1);
                tracing::warn!(op = op_name, attempt, wait_ms = wait.as_millis() as u64, error = %e, "retrying store operation");
                tokio::time::sleep(wait).await;
            }
            Err(e) => {
                metrics::counter!("killkrill_store_errors_total", "op" => op_name, "kind" => e.kind().as_str()).increment(1);
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn fast() -> RetryConfig {
        RetryConfig {
            attempts: 4,
            initial_backoff_ms: 1,
            max_backoff_ms: 4,
            ..RetryConfig::default()
        }
    }

    #[tokio::test]
    async fn retries_retryable_then_gives_up() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = retry(&fast(), "test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(StoreError::new(ErrorKind::Retryable, "deadlock"))
        })
        .await;
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Retryable);
        assert_eq!(calls.load(Ordering::SeqCst), 4);

        let calls = AtomicU32::new(0);
        let r = retry(&fast(), "test", || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n < 2 {
                Err(StoreError::new(ErrorKind::Retryable, "busy"))
            } else {
                Ok(n)
            }
        })
        .await;
        assert_eq!(r.unwrap(), 2);

        let calls = AtomicU32::new(0);
        let r: Result<(), _> = retry(&fast(), "test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(StoreError::invalid("bad"))
        })
        .await;
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Invalid);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "invalid is not retried");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let c = RetryConfig {
            initial_backoff_ms: 100,
            max_backoff_ms: 1_000,
            ..RetryConfig::default()
        };
        let d1 = backoff(&c, 1).as_millis();
        let d5 = backoff(&c, 5).as_millis();
        assert!((75..=125).contains(&d1), "{d1}");
        assert!((750..=1_250).contains(&d5), "{d5}");
    }
}
