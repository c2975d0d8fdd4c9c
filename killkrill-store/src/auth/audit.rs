//! The audit log: every change (and every refused attempt at one), with
//! who, when, what, from where and the result. Append-only.

use killkrill_core::event::Tenant;
use killkrill_core::storage::StoreError;
use sqlx::{AssertSqlSafe, Row};

use super::{AuthStore, limit, tenant_of};
use crate::error::Context;
use crate::{with_pool, with_writer};

/// One entry to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When (ns).
    pub at: i64,
    /// The tenant the change belongs to.
    pub tenant: Tenant,
    /// Who (user email, `apikey:<name>`, `cli`, `system`).
    pub actor: String,
    /// What (`user.create`, `auth.login`, ...).
    pub action: String,
    /// On what (a user, a key, a tenant).
    pub target: String,
    /// From where (client address, `cli`, `startup`).
    pub source: String,
    /// `ok`, `denied`, `failed`, ...
    pub result: String,
    /// More, when useful (never a secret).
    pub detail: String,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Id (increasing).
    pub id: i64,
    /// The entry.
    pub entry: AuditEntry,
}

fn cut(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut i = n;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    &s[..i]
}

impl AuthStore {
    /// Appends an entry (long fields are cut to the column sizes).
    ///
    /// # Errors
    /// Database errors.
    pub async fn audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        let sql = self.store.dialect.sql(
            "INSERT INTO auth_audit (at, tenant, actor, action, target, source, result, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        );
        with_writer!(&self.store.backend, pool => {
            sqlx::query(AssertSqlSafe(sql))
                .bind(e.at)
                .bind(e.tenant.as_str())
                .bind(cut(&e.actor, 255))
                .bind(cut(&e.action, 64))
                .bind(cut(&e.target, 255))
                .bind(cut(&e.source, 64))
                .bind(cut(&e.result, 32))
                .bind(cut(&e.detail, 4096))
                .execute(pool)
                .await
                .ctx("writing an audit entry")?;
        });
        Ok(())
    }

    /// Entries of `tenant` (every tenant when `None`), newest first, with
    /// ids below `before` when given, at most `max`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn audit_log(
        &self,
        tenant: Option<&Tenant>,
        before: Option<i64>,
        max: usize,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let sql = self.store.dialect.sql(&format!(
            "SELECT id, at, tenant, actor, action, target, source, result, detail FROM auth_audit WHERE id < ?{} ORDER BY id DESC LIMIT ?",
            if tenant.is_some() { " AND tenant = ?" } else { "" }
        ));
        let rows: Vec<(i64, i64, String, [String; 6])> = with_pool!(&self.store.backend, pool => {
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(before.unwrap_or(i64::MAX));
            if let Some(t) = tenant {
                q = q.bind(t.as_str());
            }
            let rows = q.bind(limit(max)).fetch_all(pool).await.ctx("reading the audit log")?;
            let c = "reading the audit log";
            let mut v = Vec::with_capacity(rows.len());
            for r in rows {
                v.push((
                    r.try_get(0).ctx(c)?,
                    r.try_get(1).ctx(c)?,
                    r.try_get(2).ctx(c)?,
                    [
                        r.try_get(3).ctx(c)?,
                        r.try_get(4).ctx(c)?,
                        r.try_get(5).ctx(c)?,
                        r.try_get(6).ctx(c)?,
                        r.try_get(7).ctx(c)?,
                        r.try_get(8).ctx(c)?,
                    ],
                ));
            }
            v
        });
        rows.into_iter()
            .map(
                |(id, at, tenant, [actor, action, target, source, result, detail])| {
                    Ok(AuditRow {
                        id,
                        entry: AuditEntry {
                            at,
                            tenant: tenant_of(&tenant)?,
                            actor,
                            action,
                            target,
                            source,
                            result,
                            detail,
                        },
                    })
                },
            )
            .collect()
    }
}
