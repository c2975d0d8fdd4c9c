//! The block write transaction.
//!
//! One transaction per group of blocks of one tenant:
//! 1. insert every block id into the registry, leaving existing ids alone,
//!    tagging the new rows with a random per-transaction token;
//! 2. read back which ids carry this token: those are new;
//! 3. insert only the new blocks (PostgreSQL: binary COPY).
//!
//! Concurrent writers of the same batch serialise on the registry's primary
//! key, so exactly one stores each block. The token trick works the same on
//! all three databases (PostgreSQL could use `RETURNING`, MySQL cannot).

use std::collections::HashSet;

use killkrill_core::event::Timestamp;
use killkrill_core::logblock::{BlockId, EncodedBlock};
use killkrill_core::storage::{StoreError, WriteReport};
use sqlx::{AssertSqlSafe, Row};

use super::copy::copy_blocks;
use super::index_sync::bump_gen;
use crate::backend::{Backend, Store};
use crate::config::DbType;
use crate::dialect::Dialect;
use crate::error::Context;

/// Registry rows per statement (4 binds each, under every bind limit).
const REGISTRY_ROWS: usize = 1_000;
/// Smallest write that goes through PostgreSQL COPY. sqlx does not set
/// `TCP_NODELAY`, and COPY sends its data and its end marker as two writes,
/// so the end marker can wait for a delayed ACK (up to 40 ms on Linux).
/// Measured: the model test (many 1–5-block writes) took 25 s with COPY
/// for every write and 6 s with INSERT for small ones. Big writes amortise
/// the wait; small ones use INSERT.
pub(crate) const COPY_MIN_BYTES: usize = 1 << 20;
/// Block bytes per multi-row INSERT statement (MySQL packet size).
pub(crate) const INSERT_BYTES: usize = 4 << 20;

/// Splits blocks into per-tenant groups of at most `max_bytes` payload.
pub(super) fn transactions(blocks: &[EncodedBlock], max_bytes: usize) -> Vec<Vec<&EncodedBlock>> {
    let mut out: Vec<Vec<&EncodedBlock>> = Vec::new();
    let mut bytes = 0usize;
    for b in blocks {
        let size = b.payload.len() + b.summary.tokens.as_ref().map_or(0, |t| t.byte_len());
        let start_new = match out.last() {
            None => true,
            Some(g) => g[0].summary.tenant != b.summary.tenant || bytes + size > max_bytes,
        };
        if start_new {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(g) = out.last_mut() {
            g.push(b);
        }
    }
    out
}

fn random_token() -> i64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(Timestamp::now().as_nanos());
    h.finish() as i64
}

/// Registers ids and returns the new ones; `$tx` is an open transaction.
macro_rules! register {
    ($self:expr, $tx:expr, $group:expr) => {{
        let tenant = $group[0].summary.tenant.as_str();
        let token = random_token();
        let now = Timestamp::now().as_nanos();
        for chunk in $group.chunks(REGISTRY_ROWS) {
            let mut q = sqlx::query(AssertSqlSafe($self.dialect.insert_registry(chunk.len())));
            for b in chunk {
                q = q
                    .bind(tenant)
                    .bind(b.summary.id.to_bytes().to_vec())
                    .bind(now)
                    .bind(token);
            }
            q.execute(&mut *$tx).await.ctx("registering block ids")?;
        }
        let mut new: HashSet<BlockId> = HashSet::new();
        for chunk in $group.chunks(REGISTRY_ROWS) {
            let sql = $self.dialect.sql(&format!(
                "SELECT block_id FROM log_block_ids WHERE tenant = ? AND write_token = ? AND block_id IN {}",
                Dialect::tuple(chunk.len())
            ));
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant).bind(token);
            for b in chunk {
                q = q.bind(b.summary.id.to_bytes().to_vec());
            }
            for row in q.fetch_all(&mut *$tx).await.ctx("reading registered block ids")? {
                let raw: Vec<u8> = row.try_get(0).ctx("reading registered block ids")?;
                if let Some(id) = BlockId::from_slice(&raw) {
                    new.insert(id);
                }
            }
        }
        new
    }};
}

/// Multi-row INSERT of blocks; `$tx` is an open transaction.
macro_rules! insert_rows {
    ($self:expr, $tx:expr, $blocks:expr, $max_rows:expr) => {{
        let now = Timestamp::now().as_nanos();
        let mut i = 0;
        let blocks: &[&EncodedBlock] = $blocks;
        while i < blocks.len() {
            let mut j = i;
            let mut bytes = 0;
            while j < blocks.len() && (j == i || (bytes + blocks[j].payload.len() <= $crate::logs::write::INSERT_BYTES && j - i < $max_rows)) {
                bytes += blocks[j].payload.len();
                j += 1;
            }
            let sql = $self.dialect.sql(&format!(
                "INSERT INTO log_blocks (tenant, block_id, min_ts, max_ts, record_count, summary, tokens, payload, created_at) VALUES {}",
                Dialect::rows(j - i, 9)
            ));
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for b in &blocks[i..j] {
                let s = &b.summary;
                q = q
                    .bind(s.tenant.as_str())
                    .bind(s.id.to_bytes().to_vec())
                    .bind(s.min_ts.as_nanos())
                    .bind(s.max_ts.as_nanos())
                    .bind(i64::from(s.count))
                    .bind(s.summary_bytes())
                    .bind(s.token_bytes())
                    .bind(&b.payload[..])
                    .bind(now);
            }
            q.execute(&mut *$tx).await.ctx("inserting log blocks")?;
            i = j;
        }
    }};
}
pub(super) use insert_rows;

fn ids_of(blocks: &[&EncodedBlock]) -> Vec<BlockId> {
    blocks.iter().map(|b| b.summary.id).collect()
}

fn tenant_of<'a>(group: &[&'a EncodedBlock]) -> &'a str {
    group[0].summary.tenant.as_str()
}

impl Store {
    /// Tells the summary index about blocks this process just committed
    /// as generation `gen`.
    fn applied_locally(&self, generation: Option<i64>, fresh: &[&EncodedBlock]) {
        if let (Some(generation), Some(first)) = (generation, fresh.first()) {
            let added: Vec<&killkrill_core::logblock::BlockSummary> =
                fresh.iter().map(|b| &b.summary).collect();
            self.summary_index
                .apply_local(&first.summary.tenant, generation, &[], &added);
            self.committed_gen(&first.summary.tenant, generation, false);
        }
    }

    /// Bytes of blocks per write transaction.
    pub(crate) fn tx_byte_limit(&self) -> usize {
        match self.cfg.db_type {
            DbType::Mysql => crate::galera::MAX_TX_BYTES,
            DbType::Postgres | DbType::Sqlite => 64 << 20,
        }
    }

    /// One write transaction for blocks of one tenant.
    pub(super) async fn write_tx(
        &self,
        group: &[&EncodedBlock],
    ) -> Result<WriteReport, StoreError> {
        if group.is_empty() {
            return Ok(WriteReport::default());
        }
        let pick = |new: &HashSet<BlockId>| -> Vec<&EncodedBlock> {
            group
                .iter()
                .copied()
                .filter(|b| new.contains(&b.summary.id))
                .collect()
        };
        let fresh: Vec<&EncodedBlock> = match &self.backend {
            Backend::Postgres(p) => {
                let mut tx = p.begin().await.ctx("beginning a block write")?;
                let new = register!(self, tx, group);
                let fresh = pick(&new);
                let bytes: usize = fresh.iter().map(|b| b.payload.len()).sum();
                if bytes >= COPY_MIN_BYTES {
                    copy_blocks(&mut tx, &fresh).await?;
                } else {
                    insert_rows!(self, tx, &fresh, 64);
                }
                let generation = if fresh.is_empty() {
                    None
                } else {
                    let ids = ids_of(&fresh);
                    Some(bump_gen!(self, tx, tenant_of(group), &ids, false))
                };
                tx.commit().await.ctx("committing a block write")?;
                self.applied_locally(generation, &fresh);
                fresh
            }
            Backend::MySql(p) => {
                let mut tx = p.begin().await.ctx("beginning a block write")?;
                let new = register!(self, tx, group);
                let fresh = pick(&new);
                insert_rows!(self, tx, &fresh, 64);
                tx.commit().await.ctx("committing a block write")?;
                fresh
            }
            Backend::Sqlite { writer, .. } => {
                let mut tx = writer.begin().await.ctx("beginning a block write")?;
                let new = register!(self, tx, group);
                let fresh = pick(&new);
                // One row per statement: SQLite prepares it once and the
                // rows go straight into the file, no packet to build.
                insert_rows!(self, tx, &fresh, 1);
                let generation = if fresh.is_empty() {
                    None
                } else {
                    let ids = ids_of(&fresh);
                    Some(bump_gen!(self, tx, tenant_of(group), &ids, false))
                };
                tx.commit().await.ctx("committing a block write")?;
                self.applied_locally(generation, &fresh);
                fresh
            }
        };
        Ok(WriteReport {
            blocks_written: fresh.len(),
            blocks_skipped: group.len() - fresh.len(),
            records_written: fresh.iter().map(|b| u64::from(b.summary.count)).sum(),
        })
    }
}

#[cfg(test)]
mod tests {
    use killkrill_core::event::{EventId, LogRecord, Tenant, Timestamp};
    use killkrill_core::logblock::{BlockOptions, build_blocks};

    use super::*;

    #[test]
    fn transactions_split_by_tenant_and_bytes() {
        let rec = |t: &str, i: u128| LogRecord {
            id: Some(EventId::from_u128(i)),
            tenant: Some(Tenant::new(t).unwrap()),
            timestamp: Timestamp::from_nanos(i as i64),
            message: Some(vec![b'x'; 100]),
            ..LogRecord::default()
        };
        let mut recs: Vec<LogRecord> = (0..40).map(|i| rec("a", i)).collect();
        recs.extend((40..50).map(|i| rec("b", i)));
        let opts = BlockOptions {
            max_records: 5,
            threads: 1,
            ..BlockOptions::default()
        };
        let blocks = build_blocks(recs, &opts).unwrap();
        assert_eq!(blocks.len(), 10);
        let one = blocks[0].payload.len() + blocks[0].summary.tokens.as_ref().unwrap().byte_len();
        let groups = transactions(&blocks, one * 3);
        let sizes: Vec<(String, usize)> = groups
            .iter()
            .map(|g| (g[0].summary.tenant.to_string(), g.len()))
            .collect();
        assert!(
            groups
                .iter()
                .all(|g| g.iter().all(|b| b.summary.tenant == g[0].summary.tenant))
        );
        assert!(sizes.iter().all(|(_, n)| *n <= 3), "{sizes:?}");
        assert_eq!(sizes.iter().map(|(_, n)| n).sum::<usize>(), 10);
        assert_eq!(transactions(&blocks, usize::MAX).len(), 2, "one per tenant");
    }
}
