//! The real differences between the three SQL dialects, and nothing else.
//!
//! Everything else the store says is portable SQL written once with `?`
//! placeholders. What differs:
//!
//! | what | PostgreSQL | MySQL / MariaDB | SQLite |
//! |---|---|---|---|
//! | placeholders | `$1, $2, …` | `?` | `?` |
//! | insert-if-absent | `ON CONFLICT (…) DO NOTHING` | `ON DUPLICATE KEY UPDATE k = k` (not `INSERT IGNORE`, which also hides truncation errors) | `ON CONFLICT (…) DO NOTHING` |
//! | upsert | `ON CONFLICT (…) DO UPDATE SET x = excluded.x` | `ON DUPLICATE KEY UPDATE x = VALUES(x)` | as PostgreSQL |
//! | bulk block insert | binary `COPY … FROM STDIN` | multi-row `INSERT` under the packet size | prepared `INSERT` per row, one writer |
//! | bounded deletes | one statement | `DELETE … LIMIT n` in a loop (Galera writeset limits) | one statement |
//! | chunk insert-if-absent | `ON CONFLICT DO NOTHING` | `INSERT IGNORE` (see [`Dialect::insert_chunks`]) | `ON CONFLICT DO NOTHING` |
//! | blob types | `BYTEA` | `LONGBLOB` | `BLOB` (migrations only) |

use crate::config::DbType;

/// SQL for one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect(pub DbType);

impl Dialect {
    /// Rewrites `?` placeholders for the backend (`$n` for PostgreSQL).
    /// The portable SQL in this crate never has `?` inside a literal.
    pub fn sql(self, portable: &str) -> String {
        if self.0 != DbType::Postgres {
            return portable.to_owned();
        }
        let mut out = String::with_capacity(portable.len() + 16);
        let mut n = 0;
        for c in portable.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        out
    }

    /// `(?, ?, …)` with `n` placeholders.
    pub fn tuple(n: usize) -> String {
        let mut s = String::with_capacity(n * 3 + 2);
        s.push('(');
        for i in 0..n {
            if i > 0 {
                s.push_str(", ");
            }
            s.push('?');
        }
        s.push(')');
        s
    }

    /// `rows` rows of `cols` placeholders: `(?, ?), (?, ?)`.
    pub fn rows(rows: usize, cols: usize) -> String {
        let t = Self::tuple(cols);
        vec![t; rows].join(", ")
    }

    /// Inserts registry rows, leaving existing ones untouched.
    pub fn insert_registry(self, rows: usize) -> String {
        let values = Self::rows(rows, 4);
        let base = format!(
            "INSERT INTO log_block_ids (tenant, block_id, written_at, write_token) VALUES {values}"
        );
        self.sql(&match self.0 {
            DbType::Mysql => format!("{base} ON DUPLICATE KEY UPDATE written_at = written_at"),
            DbType::Postgres | DbType::Sqlite => {
                format!("{base} ON CONFLICT (tenant, block_id) DO NOTHING")
            }
        })
    }

    /// Records a dead letter, adding attempts to an existing entry for the
    /// same tenant and payload.
    pub fn upsert_dead_letter(self) -> String {
        let base = "INSERT INTO dead_letters (tenant, dedupe_key, kind, payload, error, attempts, first_failure, last_failure) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
        self.sql(&match self.0 {
            DbType::Mysql => format!(
                "{base} ON DUPLICATE KEY UPDATE attempts = attempts + VALUES(attempts), error = VALUES(error), last_failure = GREATEST(last_failure, VALUES(last_failure))"
            ),
            DbType::Postgres => format!(
                "{base} ON CONFLICT (tenant, dedupe_key) DO UPDATE SET attempts = dead_letters.attempts + excluded.attempts, error = excluded.error, last_failure = GREATEST(dead_letters.last_failure, excluded.last_failure)"
            ),
            DbType::Sqlite => format!(
                "{base} ON CONFLICT (tenant, dedupe_key) DO UPDATE SET attempts = dead_letters.attempts + excluded.attempts, error = excluded.error, last_failure = MAX(dead_letters.last_failure, excluded.last_failure)"
            ),
        })
    }

    /// Upserts series rows (6 columns), widening `[first_seen, last_seen]`.
    pub fn upsert_series(self, rows: usize) -> String {
        let values = Self::rows(rows, 6);
        let base = format!(
            "INSERT INTO metric_series (tenant, series_id, name, labels, first_seen, last_seen) VALUES {values}"
        );
        self.sql(&match self.0 {
            DbType::Mysql => format!(
                "{base} ON DUPLICATE KEY UPDATE first_seen = LEAST(first_seen, VALUES(first_seen)), last_seen = GREATEST(last_seen, VALUES(last_seen))"
            ),
            DbType::Postgres => format!(
                "{base} ON CONFLICT (tenant, series_id) DO UPDATE SET first_seen = LEAST(metric_series.first_seen, excluded.first_seen), last_seen = GREATEST(metric_series.last_seen, excluded.last_seen) WHERE excluded.first_seen < metric_series.first_seen OR excluded.last_seen > metric_series.last_seen"
            ),
            DbType::Sqlite => format!(
                "{base} ON CONFLICT (tenant, series_id) DO UPDATE SET first_seen = MIN(metric_series.first_seen, excluded.first_seen), last_seen = MAX(metric_series.last_seen, excluded.last_seen) WHERE excluded.first_seen < metric_series.first_seen OR excluded.last_seen > metric_series.last_seen"
            ),
        })
    }

    /// Inserts sample chunks (7 columns), skipping ids already stored.
    /// MySQL uses `INSERT IGNORE` here (not `ON DUPLICATE KEY UPDATE`, whose
    /// affected-row count cannot tell a skip from an insert under sqlx's
    /// `CLIENT_FOUND_ROWS`): every column is an integer, a validated tenant
    /// or a blob, so there is nothing IGNORE could silently truncate.
    pub fn insert_chunks(self, rows: usize) -> String {
        self.insert_chunks_into("metric_chunks", rows)
    }

    /// [`insert_chunks`](Self::insert_chunks) into `table`: `metric_chunks`
    /// or `metric_head_chunks` (same columns, keys of the same columns).
    pub fn insert_chunks_into(self, table: &str, rows: usize) -> String {
        let values = Self::rows(rows, 7);
        let cols =
            format!("{table} (tenant, series_id, min_ts, chunk_id, max_ts, sample_count, data)");
        self.sql(&match self.0 {
            DbType::Mysql => format!("INSERT IGNORE INTO {cols} VALUES {values}"),
            DbType::Postgres | DbType::Sqlite => format!(
                "INSERT INTO {cols} VALUES {values} ON CONFLICT (tenant, series_id, min_ts, chunk_id) DO NOTHING"
            ),
        })
    }

    /// Upserts rollup partials (8 columns): a rewritten flush replaces its rows.
    pub fn upsert_rollups(self, rows: usize) -> String {
        self.upsert_rollups_into("metric_rollups", rows)
    }

    /// [`upsert_rollups`](Self::upsert_rollups) into `table`:
    /// `metric_rollups` or the head `metric_rollup_head` (same columns, a
    /// key of the same columns in another order).
    pub fn upsert_rollups_into(self, table: &str, rows: usize) -> String {
        let values = Self::rows(rows, 8);
        let base = format!(
            "INSERT INTO {table} (tenant, series_id, resolution_ns, window_start, late, flush_key, window_end, data) VALUES {values}"
        );
        self.sql(&match self.0 {
            DbType::Mysql => format!("{base} ON DUPLICATE KEY UPDATE data = VALUES(data)"),
            DbType::Postgres | DbType::Sqlite => format!(
                "{base} ON CONFLICT (tenant, series_id, resolution_ns, window_start, late, flush_key) DO UPDATE SET data = excluded.data"
            ),
        })
    }

    /// Records rollup ledger rows (4 columns), leaving recorded batches
    /// untouched; the affected-row count says how many were new (MySQL:
    /// `INSERT IGNORE`, as for chunks: binary and integer columns only).
    pub fn insert_ledger(self, rows: usize) -> String {
        let values = Self::rows(rows, 4);
        let cols = "metric_rollup_batches (tenant, batch_id, flush_key, high_water)";
        self.sql(&match self.0 {
            DbType::Mysql => format!("INSERT IGNORE INTO {cols} VALUES {values}"),
            DbType::Postgres | DbType::Sqlite => format!(
                "INSERT INTO {cols} VALUES {values} ON CONFLICT (tenant, batch_id) DO NOTHING"
            ),
        })
    }

    /// Upserts metric metadata (6 columns): the newest write wins.
    pub fn upsert_metadata(self, rows: usize) -> String {
        let values = Self::rows(rows, 6);
        let base = format!(
            "INSERT INTO metric_metadata (tenant, family_hash, family, kind, help, unit) VALUES {values}"
        );
        self.sql(&match self.0 {
            DbType::Mysql => format!(
                "{base} ON DUPLICATE KEY UPDATE kind = VALUES(kind), help = VALUES(help), unit = VALUES(unit)"
            ),
            DbType::Postgres | DbType::Sqlite => format!(
                "{base} ON CONFLICT (tenant, family_hash) DO UPDATE SET kind = excluded.kind, help = excluded.help, unit = excluded.unit"
            ),
        })
    }

    /// Rows one bounded delete may remove, or `None` for "all at once".
    /// MySQL/Galera deletes in small steps so no transaction's writeset
    /// grows past the cluster limits (a block row can be a megabyte).
    pub fn delete_step(self, big_rows: bool) -> Option<usize> {
        match self.0 {
            DbType::Mysql if big_rows => Some(32),
            DbType::Mysql => Some(10_000),
            DbType::Postgres | DbType::Sqlite => None,
        }
    }

    /// `sql` with a `LIMIT` for a bounded delete, when the dialect has one.
    pub fn bounded_delete(self, sql: &str, step: Option<usize>) -> String {
        match step {
            Some(n) => self.sql(&format!("{sql} LIMIT {n}")),
            None => self.sql(sql),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_rows() {
        let pg = Dialect(DbType::Postgres);
        let my = Dialect(DbType::Mysql);
        assert_eq!(pg.sql("a = ? AND b IN (?, ?)"), "a = $1 AND b IN ($2, $3)");
        assert_eq!(my.sql("a = ?"), "a = ?");
        assert_eq!(Dialect::rows(2, 2), "(?, ?), (?, ?)");
        assert!(
            pg.insert_registry(1)
                .ends_with("VALUES ($1, $2, $3, $4) ON CONFLICT (tenant, block_id) DO NOTHING")
        );
        assert!(my.insert_registry(1).contains("ON DUPLICATE KEY UPDATE"));
        assert_eq!(
            my.bounded_delete("DELETE FROM t WHERE a = ?", Some(5)),
            "DELETE FROM t WHERE a = ? LIMIT 5"
        );
        assert_eq!(
            pg.bounded_delete("DELETE FROM t WHERE a = ?", pg.delete_step(true)),
            "DELETE FROM t WHERE a = $1"
        );
    }
}
