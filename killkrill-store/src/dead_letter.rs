//! The dead-letter table: [`DeadLetterStore`] in SQL.
//!
//! Entries are keyed by `(tenant, xxh3-128(kind, payload))`, so reporting the
//! same failing batch again updates one row (attempts added, latest error and
//! time kept) instead of filling the table.

use async_trait::async_trait;
use killkrill_core::event::{Tenant, Timestamp};
use killkrill_core::storage::{
    DeadLetter, DeadLetterId, DeadLetterStore, ErrorKind, NewDeadLetter, StoreError,
};
use sqlx::{AssertSqlSafe, Row};
use xxhash_rust::xxh3::Xxh3;

use crate::backend::Store;
use crate::dialect::Dialect;
use crate::error::Context;
use crate::retry::retry;
use crate::{with_pool, with_writer};

fn dedupe_key(l: &NewDeadLetter) -> Vec<u8> {
    let mut h = Xxh3::new();
    h.update(l.kind.as_bytes());
    h.update(&[0]);
    h.update(&l.payload);
    h.digest128().to_be_bytes().to_vec()
}

impl Store {
    async fn put_dl(&self, l: &NewDeadLetter) -> Result<DeadLetterId, StoreError> {
        let key = dedupe_key(l);
        let t = l.failed_at.as_nanos();
        let sql = self.dialect.upsert_dead_letter();
        let select = self
            .dialect
            .sql("SELECT id FROM dead_letters WHERE tenant = ? AND dedupe_key = ?");
        let id: i64 = with_writer!(&self.backend, pool => {
            let mut tx = pool.begin().await.ctx("beginning a dead-letter write")?;
            sqlx::query(AssertSqlSafe(sql))
                .bind(l.tenant.as_str())
                .bind(&key[..])
                .bind(l.kind.as_str())
                .bind(&l.payload[..])
                .bind(l.error.as_str())
                .bind(i64::from(l.attempts))
                .bind(t)
                .bind(t)
                .execute(&mut *tx)
                .await
                .ctx("writing a dead letter")?;
            let row = sqlx::query(AssertSqlSafe(select))
                .bind(l.tenant.as_str())
                .bind(&key[..])
                .fetch_one(&mut *tx)
                .await
                .ctx("reading a dead letter id")?;
            let id: i64 = row.try_get(0).ctx("reading a dead letter id")?;
            tx.commit().await.ctx("committing a dead letter")?;
            id
        });
        metrics::counter!("killkrill_store_dead_letters_total", "kind" => l.kind.clone())
            .increment(1);
        Ok(DeadLetterId(id))
    }

    async fn list_dl(
        &self,
        tenant: Option<&Tenant>,
        after: Option<DeadLetterId>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let sql = self.dialect.sql(&format!(
            "SELECT id, tenant, kind, payload, error, attempts, first_failure, last_failure FROM dead_letters WHERE id > ?{} ORDER BY id LIMIT ?",
            if tenant.is_some() { " AND tenant = ?" } else { "" }
        ));
        let rows = with_pool!(&self.backend, pool => {
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(after.map_or(i64::MIN, |a| a.0));
            if let Some(t) = tenant {
                q = q.bind(t.as_str());
            }
            let rows = q
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(pool)
                .await
                .ctx("listing dead letters")?;
            let mut v = Vec::with_capacity(rows.len());
            for r in rows {
                v.push((
                    r.try_get::<i64, _>(0).ctx("reading a dead letter")?,
                    r.try_get::<String, _>(1).ctx("reading a dead letter")?,
                    r.try_get::<String, _>(2).ctx("reading a dead letter")?,
                    r.try_get::<Vec<u8>, _>(3).ctx("reading a dead letter")?,
                    r.try_get::<String, _>(4).ctx("reading a dead letter")?,
                    r.try_get::<i64, _>(5).ctx("reading a dead letter")?,
                    r.try_get::<i64, _>(6).ctx("reading a dead letter")?,
                    r.try_get::<i64, _>(7).ctx("reading a dead letter")?,
                ));
            }
            v
        });
        rows.into_iter()
            .map(
                |(id, tenant, kind, payload, error, attempts, first, last)| {
                    Ok(DeadLetter {
                        id: DeadLetterId(id),
                        tenant: Tenant::new(&tenant).map_err(|e| {
                            StoreError::with_source(ErrorKind::Fatal, "stored tenant name", e)
                        })?,
                        kind,
                        payload,
                        error,
                        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                        first_failure: Timestamp::from_nanos(first),
                        last_failure: Timestamp::from_nanos(last),
                    })
                },
            )
            .collect()
    }

    async fn delete_dl(&self, ids: &[DeadLetterId]) -> Result<u64, StoreError> {
        let mut total = 0;
        for chunk in ids.chunks(500) {
            let sql = self.dialect.sql(&format!(
                "DELETE FROM dead_letters WHERE id IN {}",
                Dialect::tuple(chunk.len())
            ));
            total += with_writer!(&self.backend, pool => {
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for id in chunk {
                    q = q.bind(id.0);
                }
                q.execute(pool).await.ctx("deleting dead letters")?.rows_affected()
            });
        }
        Ok(total)
    }
}

#[async_trait]
impl DeadLetterStore for Store {
    async fn put_dead_letter(&self, letter: &NewDeadLetter) -> Result<DeadLetterId, StoreError> {
        retry(&self.cfg.retry, "put_dead_letter", || self.put_dl(letter)).await
    }

    async fn list_dead_letters(
        &self,
        tenant: Option<&Tenant>,
        after: Option<DeadLetterId>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        retry(&self.cfg.retry, "list_dead_letters", || {
            self.list_dl(tenant, after, limit)
        })
        .await
    }

    async fn delete_dead_letters(&self, ids: &[DeadLetterId]) -> Result<u64, StoreError> {
        retry(&self.cfg.retry, "delete_dead_letters", || {
            self.delete_dl(ids)
        })
        .await
    }
}
