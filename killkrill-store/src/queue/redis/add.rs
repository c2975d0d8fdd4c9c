//! The bounded add: how `enqueue` keeps the stream at `max_len` entries.
//!
//! Redis has no conditional `XADD`, and `MAXLEN` would trim unacknowledged
//! batches, so a bound needs a check before the add. Two ways
//! ([`RedisBound`]):
//!
//! - **Checked** (the default): `XLEN`, then, if there is room, a plain
//!   `XADD`. The payload never enters Lua: on a 7 KB batch the script's
//!   add cost the server 20–25 µs against a plain `XADD`'s 8 µs, because
//!   the argument is copied into a Lua string, back out for the `XADD`, and
//!   collected (about 1 ns per byte). The price is that the bound can be
//!   overshot by the adds that passed their check but have not reached the
//!   server yet. Each queue lets at most `max_adds_in_flight` adds be
//!   between their check and the `XADD`'s reply, so with `P` producers
//!   (queue objects, usually one per process) the stream never holds more
//!   than `max_len - 1 + P * max_adds_in_flight` entries: at the moment the
//!   length last reached `max_len`, every later add that went in had passed
//!   its check before that moment and was still in flight (a check after it
//!   sees a full stream). One `XLEN` answers every add that took its place
//!   before the check was sent, as long as its length plus the adds it let
//!   in stays below `max_len` ([`Admission`]), so 64 concurrent enqueues
//!   cost one or two checks.
//! - **Exact**: the check and the add in one Lua script, so concurrent
//!   producers can never overshoot, at the server cost above.
//!
//! Either way, `enqueue` returns only after the `XADD` was answered, and a
//! full stream makes it poll (only the payload-free check, with the checked
//! bound) until its wait ends, then answer `Full`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use killkrill_core::pipeline::{ErrorKind, QueueError};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Semaphore, SemaphorePermit};
use tokio::time::Instant;

use super::conn::{Conn, rerr};
use super::{RedisStreamsQueue, backend};

/// How [`RedisStreamsQueue`] enforces `max_len` (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisBound {
    /// `XLEN`, then a plain `XADD`: the fastest; the stream may exceed
    /// `max_len` by the adds in flight, at most `max_adds_in_flight` per
    /// producer.
    #[default]
    Checked,
    /// The check and the add in one Lua script: never over `max_len`, at
    /// about three times the server CPU per add (the payload crosses into
    /// Lua).
    Exact,
}

impl RedisStreamsQueue {
    /// Adds `payload` when there is room, polling while the stream is full
    /// until `wait` has passed.
    pub(super) async fn add(&self, payload: &[u8], wait: Duration) -> Result<(), QueueError> {
        let start = Instant::now();
        let deadline = start + wait;
        let mut pause = Duration::from_millis(5);
        let mut conn = self.conn.clone();
        loop {
            if self.try_add(&mut conn, payload).await? {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(QueueError::Full {
                    waited: start.elapsed(),
                });
            }
            // Room appears when another process acknowledges: poll.
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// One attempt: `true` when the batch was added, `false` when the
    /// stream was full.
    async fn try_add(&self, conn: &mut Conn, payload: &[u8]) -> Result<bool, QueueError> {
        match self.opts.bound {
            RedisBound::Exact => {
                let added: Option<String> = self
                    .add_if_room
                    .run(conn, &self.key, |c| {
                        c.arg(self.opts.max_len).arg(payload);
                    })
                    .await
                    .map_err(|e| rerr("XADD", &e))?;
                Ok(added.is_some())
            }
            RedisBound::Checked => {
                // Held from the check to the add's reply: this is what
                // bounds the overshoot.
                let Some(_in_flight) = self
                    .admission
                    .admit(conn, &self.key, self.opts.max_len)
                    .await?
                else {
                    return Ok(false);
                };
                let _id: String = redis::cmd("XADD")
                    .arg(&self.key)
                    .arg("*")
                    .arg("b")
                    .arg(payload)
                    .query_async(conn)
                    .await
                    .map_err(|e| rerr("XADD", &e))?;
                Ok(true)
            }
        }
    }
}

/// The checked bound's admission: at most `max_adds_in_flight` adds between
/// check and reply, and one `XLEN` answering every add that was waiting for
/// it (64 concurrent enqueues cost one or two checks, not 64).
///
/// An add only relies on a check that was *sent after* it took its place
/// (its permit): so every add that goes in after the stream reached
/// `max_len` held its place when that happened, which is what limits the
/// overshoot to the places, whatever order replies arrive in.
pub(super) struct Admission {
    in_flight: Semaphore,
    /// How many checks have been started (read without the lock).
    checks_started: AtomicU64,
    /// The last completed check; locked while a check is running.
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// Which check (its number in `checks_started`).
    check: u64,
    len: u64,
    /// Adds let in on this check.
    granted: u64,
}

impl Admission {
    pub(super) fn new(max_in_flight: usize) -> Admission {
        Admission {
            in_flight: Semaphore::new(max_in_flight.max(1)),
            checks_started: AtomicU64::new(0),
            seen: Mutex::new(Seen::default()),
        }
    }

    /// A place for one add, or `None` when the stream is full. A check
    /// started after this call took its place is reused while it leaves
    /// room (its length plus the adds it let in below `max_len`); otherwise
    /// this call runs a new one.
    async fn admit(
        &self,
        conn: &mut Conn,
        key: &str,
        max_len: u64,
    ) -> Result<Option<SemaphorePermit<'_>>, QueueError> {
        let permit = self.in_flight.acquire().await.map_err(|_| {
            backend(
                "redis queue: the add limiter was closed",
                ErrorKind::Permanent,
            )
        })?;
        let arrived = self.checks_started.load(Ordering::Acquire);
        let mut seen = self.seen.lock().await;
        if seen.check > arrived {
            if seen.len + seen.granted < max_len {
                seen.granted += 1;
                return Ok(Some(permit));
            }
            if seen.len >= max_len {
                return Ok(None);
            }
        }
        let check = self.checks_started.fetch_add(1, Ordering::AcqRel) + 1;
        let len: u64 = redis::cmd("XLEN")
            .arg(key)
            .query_async(conn)
            .await
            .map_err(|e| rerr("XLEN", &e))?;
        seen.check = check;
        seen.len = len;
        seen.granted = u64::from(len < max_len);
        Ok((len < max_len).then_some(permit))
    }
}
