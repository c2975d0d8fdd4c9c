//! MariaDB Galera mode: what a multi-primary synchronous cluster needs.
//!
//! - **Read your writes**: every connection sets `wsrep_sync_wait` (default
//!   1: reads wait until the node has applied every write the cluster
//!   committed before the read started), so a query right after a write on
//!   another node sees it.
//! - **Certification conflicts and deadlocks** (MySQL error 1213) and a node
//!   that is not ready (1047 "WSREP has not yet prepared node") are
//!   classified retryable ([`crate::error`]) and retried with backoff
//!   ([`crate::retry`]); writes are idempotent, so a retry is safe.
//! - **Migrations without `GET_LOCK`**: the sqlx migrator's advisory lock
//!   is not replicated by Galera, so it is turned off ([`crate::migrate`]);
//!   run `killkrill migrate` from one place (a deployment job) instead.
//! - **No `LOCK TABLES`** anywhere in this crate (Galera does not replicate
//!   them); **a primary key on every table** (Galera needs it for
//!   row-based replication).
//! - **Writesets stay small**: blocks are capped in bytes
//!   (`max_raw_bytes`), a write transaction carries at most
//!   [`MAX_TX_BYTES`] of blocks, and deletes go in small `LIMIT` steps.
//! - **Nodes**: `GALERA_NODES` are tried in order at connect time; the
//!   first node that answers and reports `wsrep_ready=ON` is used. Failing
//!   over during operation is left to a proxy in front of the cluster
//!   (MaxScale, HAProxy) or to a restart: sqlx pools talk to one address.
//!
//! On a MariaDB without the Galera provider (`wsrep_on=0`), `wsrep_sync_wait`
//! can be set but has no effect; on MySQL it is an unknown variable. Both are
//! logged and counted, and the store works as on plain MySQL.

/// Most block bytes one write transaction carries in Galera mode (well
/// under the default `wsrep_max_ws_size` of 2 GiB and typical
/// `max_allowed_packet` settings).
pub const MAX_TX_BYTES: usize = 16 << 20;

/// What a node said about its cluster state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeState {
    /// `wsrep_on` and `wsrep_ready=ON`.
    Ready,
    /// `wsrep_on` but `wsrep_ready` is something else (`OFF` while joining,
    /// or when the node lost the primary component).
    NotReady(String),
    /// `wsrep_on` is off or unknown: not a Galera node (plain MariaDB shows
    /// `wsrep_ready=OFF` too, so `wsrep_on` has to be asked first).
    Standalone,
}

impl NodeState {
    /// From `@@wsrep_on` (None: unknown variable, i.e. MySQL) and the value
    /// of `SHOW STATUS LIKE 'wsrep_ready'` (None: no row).
    pub fn from_status(wsrep_on: Option<i64>, ready: Option<&str>) -> Self {
        match (wsrep_on, ready) {
            (None | Some(0), _) | (_, None) => NodeState::Standalone,
            (_, Some(s)) if s.eq_ignore_ascii_case("ON") => NodeState::Ready,
            (_, Some(s)) => NodeState::NotReady(s.to_owned()),
        }
    }
}

/// Splits `host` or `host:port` (default port 3306).
pub fn parse_node(node: &str) -> (String, u16) {
    match node.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => {
            (h.to_owned(), p.parse().unwrap_or(3306))
        }
        _ => (node.to_owned(), 3306),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_and_states() {
        assert_eq!(parse_node("db1"), ("db1".into(), 3306));
        assert_eq!(parse_node("db1:3307"), ("db1".into(), 3307));
        assert_eq!(parse_node("db1:x"), ("db1:x".into(), 3306));
        let cases = [
            (Some(1), Some("ON"), NodeState::Ready),
            (Some(1), Some("OFF"), NodeState::NotReady("OFF".into())),
            (Some(0), Some("OFF"), NodeState::Standalone),
            (None, None, NodeState::Standalone),
            (Some(1), None, NodeState::Standalone),
        ];
        for (on, ready, want) in cases {
            assert_eq!(NodeState::from_status(on, ready), want, "{on:?} {ready:?}");
        }
    }
}
