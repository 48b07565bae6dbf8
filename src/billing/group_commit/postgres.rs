//! The group-commit writer on PostgreSQL: a task that commits each batch through the sqlx pool
//! with multi-row statements (`UPDATE … FROM (VALUES …)`, `INSERT … VALUES (…), (…)`), so a batch
//! of any size costs five round trips (its INSERTs go as one statement). Balances are changed by guarded atomic updates only, so
//! several gateway processes sharing the database stay exact.

use std::collections::{BTreeMap, HashSet};

use sqlx::{Any, Row, Transaction};

use super::{BatchStore, MAX_BATCH, Queue, Rows, commit_batch};
use crate::billing::ledger::{LedgerError, Reservation, change_balance, locked_balance};
use crate::storage::{Backend, Db};

/// Commit batches from `rx` until every sender is gone.
pub(super) async fn run(db: Db, mut rx: Queue) {
    let mut store = SqlxStore::new(db);
    let mut queued = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut queued, MAX_BATCH).await > 0 {
        commit_batch(&mut store, &mut queued).await;
    }
}

pub(super) struct SqlxStore {
    db: Db,
    tx: Option<Transaction<'static, Any>>,
}

impl SqlxStore {
    pub(super) fn new(db: Db) -> SqlxStore {
        SqlxStore { db, tx: None }
    }

    fn tx(&mut self) -> Result<&mut Transaction<'static, Any>, LedgerError> {
        self.tx.as_mut().ok_or_else(super::writer_gone)
    }
}

/// `($k, $k+1, …), (…)`: `rows` groups of `width` numbered placeholders from `$first`.
fn placeholders(rows: usize, width: usize, first: usize) -> String {
    let mut out = String::with_capacity(rows * width * 5);
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for col in 0..width {
            if col > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(first + row * width + col).to_string());
        }
        out.push(')');
    }
    out
}

/// Only small batch sizes recur often enough to keep their prepared statements.
fn keep_prepared(rows: usize) -> bool {
    rows <= 16
}

impl BatchStore for SqlxStore {
    async fn begin(&mut self) -> Result<(), LedgerError> {
        self.tx = Some(self.db.begin_write().await?);
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), LedgerError> {
        if let Some(tx) = self.tx.take() {
            tx.commit().await?;
        }
        Ok(())
    }

    async fn rollback(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.rollback().await;
        }
    }

    async fn close_open(
        &mut self,
        closing: &[(&Reservation, i64)],
        now: i64,
    ) -> Result<HashSet<String>, LedgerError> {
        let sql = format!(
            "UPDATE reservations SET status = v.column2, charged = v.column3, closed_at = $1 \
             FROM (VALUES {}) AS v WHERE reservations.id = v.column1 AND reservations.status = 'open' \
             RETURNING id",
            placeholders(closing.len(), 3, 2)
        );
        let mut query = sqlx::query(&sql)
            .persistent(keep_prepared(closing.len()))
            .bind(now);
        for (r, actual) in closing {
            query = query
                .bind(r.id.as_str())
                .bind(if *actual == 0 { "released" } else { "settled" })
                .bind(*actual);
        }
        let rows = query.fetch_all(&mut **self.tx()?).await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<String, _>("id")?))
            .collect()
    }

    async fn add_sums(&mut self, sums: &[(i64, i64)]) -> Result<BTreeMap<i64, i64>, LedgerError> {
        let sql = format!(
            "UPDATE users SET balance = users.balance + v.column2 FROM (VALUES {}) AS v \
             WHERE users.id = v.column1 AND users.balance + v.column2 >= 0 RETURNING id, balance",
            placeholders(sums.len(), 2, 1)
        );
        let mut query = sqlx::query(&sql).persistent(keep_prepared(sums.len()));
        for (user, sum) in sums {
            query = query.bind(*user).bind(*sum);
        }
        let mut finals = BTreeMap::new();
        for row in query.fetch_all(&mut **self.tx()?).await? {
            finals.insert(
                row.try_get::<i64, _>("id")?,
                row.try_get::<i64, _>("balance")?,
            );
        }
        Ok(finals)
    }

    async fn change_balance(&mut self, user_id: i64, delta: i64) -> Result<i64, LedgerError> {
        change_balance(self.tx()?, user_id, delta).await
    }

    async fn locked_balance(&mut self, user_id: i64) -> Result<i64, LedgerError> {
        let backend: Backend = self.db.backend();
        locked_balance(backend, self.tx()?, user_id).await
    }

    async fn insert_rows(&mut self, rows: &Rows<'_>, now: i64) -> Result<(), LedgerError> {
        let parts = insert_statements(rows);
        if parts.is_empty() {
            return Ok(());
        }
        if self.db.backend() == Backend::Postgres {
            // One round trip: every INSERT but the last as a data-modifying CTE.
            let mut sql = String::new();
            let mut next = 1;
            for (i, part) in parts.iter().enumerate() {
                let statement = part.sql(next);
                next += part.values();
                if i + 1 < parts.len() {
                    sql.push_str(if i == 0 { "WITH " } else { ", " });
                    sql.push_str(&format!("p{i} AS ({statement})"));
                } else {
                    sql.push(' ');
                    sql.push_str(&statement);
                }
            }
            let total: usize = parts.iter().map(|p| p.rows()).sum();
            let mut query = sqlx::query(&sql).persistent(keep_prepared(total));
            for part in &parts {
                query = part.bind(query, rows, now);
            }
            query.execute(&mut **self.tx()?).await?;
        } else {
            // SQLite has no INSERT inside WITH (only the unit tests run this store on SQLite).
            for part in &parts {
                let sql = part.sql(1);
                let query = sqlx::query(&sql).persistent(false);
                part.bind(query, rows, now)
                    .execute(&mut **self.tx()?)
                    .await?;
            }
        }
        Ok(())
    }
}

type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

/// One multi-row INSERT of a batch.
#[derive(Clone, Copy)]
enum Insert {
    Reservations(usize),
    Entries(usize),
    Usage(usize),
}

/// The batch's INSERTs, leaving out empty ones.
fn insert_statements(rows: &Rows<'_>) -> Vec<Insert> {
    [
        Insert::Reservations(rows.reservations.len()),
        Insert::Entries(rows.entries.len()),
        Insert::Usage(rows.usage.len()),
    ]
    .into_iter()
    .filter(|i| i.rows() > 0)
    .collect()
}

impl Insert {
    fn rows(self) -> usize {
        match self {
            Insert::Reservations(n) | Insert::Entries(n) | Insert::Usage(n) => n,
        }
    }

    fn width(self) -> usize {
        match self {
            Insert::Reservations(_) => 7,
            Insert::Entries(_) => 8,
            Insert::Usage(_) => 12,
        }
    }

    fn values(self) -> usize {
        self.rows() * self.width()
    }

    /// The statement, its placeholders numbered from `$first`.
    fn sql(self, first: usize) -> String {
        let head = match self {
            Insert::Reservations(_) => {
                "INSERT INTO reservations (id, user_id, amount, status, purpose, model, created_at)"
            }
            Insert::Entries(_) => {
                "INSERT INTO ledger (user_id, amount, balance_after, kind, reason, idem_key, reservation_id, created_at)"
            }
            Insert::Usage(_) => {
                "INSERT INTO chat_usage (user_id, key_id, model, channel_id, prompt_tokens, completion_tokens, credits, usage_source, outcome, latency_ms, created_at, request_id)"
            }
        };
        format!(
            "{head} VALUES {}",
            placeholders(self.rows(), self.width(), first)
        )
    }

    fn bind<'q>(self, mut query: AnyQuery<'q>, rows: &'q Rows<'_>, now: i64) -> AnyQuery<'q> {
        match self {
            Insert::Reservations(_) => {
                for r in &rows.reservations {
                    query = query
                        .bind(r.id.as_str())
                        .bind(r.user_id)
                        .bind(r.amount)
                        .bind("open")
                        .bind(r.purpose)
                        .bind(r.model)
                        .bind(now);
                }
            }
            Insert::Entries(_) => {
                for e in &rows.entries {
                    query = query
                        .bind(e.user_id)
                        .bind(e.amount)
                        .bind(e.balance_after)
                        .bind(e.kind.as_str())
                        .bind(e.reason.as_str())
                        .bind(e.idem_key.as_str())
                        .bind(e.reservation_id.as_str())
                        .bind(now);
                }
            }
            Insert::Usage(_) => {
                for (u, credits) in &rows.usage {
                    query = query
                        .bind(u.user_id)
                        .bind(u.key_id)
                        .bind(u.model.as_str())
                        .bind(u.channel_id)
                        .bind(u.prompt_tokens)
                        .bind(u.completion_tokens)
                        .bind(*credits)
                        .bind(u.usage_source)
                        .bind(u.outcome)
                        .bind(u.latency_ms)
                        .bind(now)
                        .bind(u.request_id.as_deref());
                }
            }
        }
        query
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_row_by_row() {
        assert_eq!(placeholders(1, 2, 1), "($1, $2)");
        assert_eq!(placeholders(2, 3, 2), "($2, $3, $4), ($5, $6, $7)");
    }
}
