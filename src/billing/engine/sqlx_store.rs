//! The engine's statements through sqlx, on either backend: the PostgreSQL group-commit writer
//! (multi-row statements: `UPDATE … FROM (VALUES …)`, one `INSERT` per table, sent as one
//! statement with data-modifying CTEs, so a batch of any size costs a handful of round trips)
//! and the ledger API on both backends (in its own transaction, or in the caller's, as a task's
//! hold commits with its task row). Balances change by guarded atomic updates only, so several
//! gateway processes sharing one database stay exact.

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::{Any, Row, Transaction};

use super::{LeaseRow, LedgerError, MoneyStore, NewLease, Rows};
use crate::storage::{Backend, Db, StoreError};

/// The transaction the statements run in.
enum Slot<'t> {
    /// Opened by `begin`, committed by `commit` (the group-commit writer, the ledger API).
    Own(Db, Option<Transaction<'static, Any>>),
    /// The caller's: `begin` and `commit` leave it to the caller.
    Borrowed(&'t mut Transaction<'static, Any>),
}

/// The engine's store over sqlx.
pub(crate) struct SqlxStore<'t> {
    backend: Backend,
    slot: Slot<'t>,
}

impl SqlxStore<'static> {
    /// A store that opens its own write transactions on `db`.
    pub(crate) fn new(db: Db) -> SqlxStore<'static> {
        SqlxStore {
            backend: db.backend(),
            slot: Slot::Own(db, None),
        }
    }
}

impl<'t> SqlxStore<'t> {
    /// A store inside the caller's open write transaction.
    pub(crate) fn within(backend: Backend, tx: &'t mut Transaction<'static, Any>) -> SqlxStore<'t> {
        SqlxStore {
            backend,
            slot: Slot::Borrowed(tx),
        }
    }

    fn tx(&mut self) -> Result<&mut Transaction<'static, Any>, LedgerError> {
        match &mut self.slot {
            Slot::Own(_, tx) => tx
                .as_mut()
                .ok_or(LedgerError::Store(StoreError::Sql(sqlx::Error::PoolClosed))),
            Slot::Borrowed(tx) => Ok(tx),
        }
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

impl MoneyStore for SqlxStore<'_> {
    async fn begin(&mut self) -> Result<(), LedgerError> {
        if let Slot::Own(db, tx) = &mut self.slot {
            *tx = Some(db.begin_write().await?);
        }
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), LedgerError> {
        if let Slot::Own(_, tx) = &mut self.slot
            && let Some(tx) = tx.take()
        {
            tx.commit().await?;
        }
        Ok(())
    }

    async fn rollback(&mut self) {
        if let Slot::Own(_, tx) = &mut self.slot
            && let Some(tx) = tx.take()
        {
            let _ = tx.rollback().await;
        }
    }

    async fn close(
        &mut self,
        closing: &[(&str, i64, &'static str)],
        from: &'static str,
        now: i64,
    ) -> Result<HashMap<String, (i64, i64)>, LedgerError> {
        let sql = format!(
            "UPDATE reservations SET status = v.column2, closed_at = $1, \
             charged = CASE WHEN reservations.amount < v.column3 THEN reservations.amount ELSE v.column3 END \
             FROM (VALUES {}) AS v WHERE reservations.id = v.column1 AND reservations.status = $2 \
             RETURNING reservations.id AS id, reservations.user_id AS user_id, reservations.amount AS amount",
            placeholders(closing.len(), 3, 3)
        );
        let mut query = sqlx::query(&sql)
            .persistent(keep_prepared(closing.len()))
            .bind(now)
            .bind(from);
        for (id, price, status) in closing {
            query = query.bind(*id).bind(*status).bind(*price);
        }
        let rows = query.fetch_all(&mut **self.tx()?).await?;
        let mut closed = HashMap::with_capacity(rows.len());
        for row in rows {
            closed.insert(
                row.try_get::<String, _>("id")?,
                (row.try_get("user_id")?, row.try_get("amount")?),
            );
        }
        Ok(closed)
    }

    async fn seen_keys(&mut self, keys: &[&str]) -> Result<HashSet<String>, LedgerError> {
        let list = (1..=keys.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT idem_key FROM ledger WHERE idem_key IN ({list})");
        let mut query = sqlx::query(&sql).persistent(keep_prepared(keys.len()));
        for key in keys {
            query = query.bind(*key);
        }
        let rows = query.fetch_all(&mut **self.tx()?).await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<String, _>("idem_key")?))
            .collect()
    }

    async fn add_sums(&mut self, sums: &[(i64, i64)]) -> Result<BTreeMap<i64, i64>, LedgerError> {
        let sql = format!(
            "UPDATE users SET balance = users.balance + v.column2 FROM (VALUES {}) AS v \
             WHERE users.id = v.column1 AND users.balance + v.column2 >= users.leased RETURNING id, balance",
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
        let tx = self.tx()?;
        let row = sqlx::query(
            "UPDATE users SET balance = balance + $1 WHERE id = $2 AND balance + $1 >= leased RETURNING balance",
        )
        .bind(delta)
        .bind(user_id)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(row) = row {
            return Ok(row.try_get("balance")?);
        }
        let exists = sqlx::query("SELECT 1 FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&mut **tx)
            .await?;
        Err(if exists.is_some() {
            LedgerError::InsufficientBalance
        } else {
            LedgerError::UnknownUser
        })
    }

    async fn free_balance(&mut self, user_id: i64) -> Result<i64, LedgerError> {
        let sql = match self.backend {
            Backend::Postgres => {
                "SELECT balance - leased AS balance FROM users WHERE id = $1 FOR UPDATE"
            }
            // On SQLite every write transaction holds the database's write lock from its start
            // (BEGIN IMMEDIATE), so nobody else changes the balance until it ends.
            Backend::Sqlite => "SELECT balance - leased AS balance FROM users WHERE id = $1",
        };
        let row = sqlx::query(sql)
            .bind(user_id)
            .fetch_optional(&mut **self.tx()?)
            .await?
            .ok_or(LedgerError::UnknownUser)?;
        Ok(row.try_get("balance")?)
    }

    async fn insert_rows(&mut self, rows: &Rows<'_>, now: i64) -> Result<(), LedgerError> {
        let parts = insert_statements(rows);
        if parts.is_empty() {
            return Ok(());
        }
        if self.backend == Backend::Postgres {
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
            // SQLite has no INSERT inside WITH.
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

    async fn leases(&mut self, ids: &[&str]) -> Result<HashMap<String, LeaseRow>, LedgerError> {
        let list = (1..=ids.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        // Locked: the owner's writer and another process's orphan sweep may both end or charge
        // one lease; the second sees what the first did.
        let lock = if self.backend == Backend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let sql = format!(
            "SELECT id, user_id, amount, status FROM credit_leases WHERE id IN ({list}){lock}"
        );
        let mut query = sqlx::query(&sql).persistent(keep_prepared(ids.len()));
        for id in ids {
            query = query.bind(*id);
        }
        let mut found = HashMap::with_capacity(ids.len());
        for row in query.fetch_all(&mut **self.tx()?).await? {
            found.insert(
                row.try_get::<String, _>("id")?,
                LeaseRow {
                    user_id: row.try_get("user_id")?,
                    amount: row.try_get("amount")?,
                    status: row.try_get("status")?,
                },
            );
        }
        Ok(found)
    }

    async fn set_lease(
        &mut self,
        id: &str,
        amount: i64,
        status: &'static str,
        now: i64,
    ) -> Result<(), LedgerError> {
        sqlx::query(
            "UPDATE credit_leases SET amount = $1, status = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(amount)
        .bind(status)
        .bind(now)
        .bind(id)
        .execute(&mut **self.tx()?)
        .await?;
        Ok(())
    }

    async fn insert_lease(&mut self, lease: &NewLease<'_>, now: i64) -> Result<(), LedgerError> {
        sqlx::query(
            "INSERT INTO credit_leases (id, user_id, owner, amount, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'live', $5, $5)",
        )
        .bind(lease.id)
        .bind(lease.user_id)
        .bind(lease.owner)
        .bind(lease.amount)
        .bind(now)
        .execute(&mut **self.tx()?)
        .await?;
        Ok(())
    }

    async fn move_leased(
        &mut self,
        user_id: i64,
        balance_delta: i64,
        leased_delta: i64,
    ) -> Result<i64, LedgerError> {
        let row = sqlx::query(
            "UPDATE users SET balance = balance + $1, leased = leased + $2 WHERE id = $3 RETURNING balance",
        )
        .bind(balance_delta)
        .bind(leased_delta)
        .bind(user_id)
        .fetch_optional(&mut **self.tx()?)
        .await?
        .ok_or(LedgerError::UnknownUser)?;
        Ok(row.try_get("balance")?)
    }

    async fn claim(&mut self, user_id: i64, amount: i64) -> Result<bool, LedgerError> {
        let done = sqlx::query(
            "UPDATE users SET leased = leased + $1 WHERE id = $2 AND balance - leased >= $1",
        )
        .bind(amount)
        .bind(user_id)
        .execute(&mut **self.tx()?)
        .await?;
        Ok(done.rows_affected() == 1)
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
            Insert::Reservations(_) => 9,
            Insert::Entries(_) => 9,
            Insert::Usage(_) => 13,
        }
    }

    fn values(self) -> usize {
        self.rows() * self.width()
    }

    /// The statement, its placeholders numbered from `$first`.
    fn sql(self, first: usize) -> String {
        let head = match self {
            Insert::Reservations(_) => {
                "INSERT INTO reservations (id, user_id, amount, status, purpose, model, created_at, label, owner)"
            }
            Insert::Entries(_) => {
                "INSERT INTO ledger (user_id, amount, balance_after, kind, reason, label, idem_key, reservation_id, created_at)"
            }
            Insert::Usage(_) => {
                "INSERT INTO chat_usage (user_id, key_id, model, channel_id, prompt_tokens, completion_tokens, credits, usage_source, outcome, latency_ms, created_at, request_id, held)"
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
                        .bind(now)
                        .bind(r.label)
                        .bind(r.owner);
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
                        .bind(e.label.as_deref())
                        .bind(e.idem_key.as_str())
                        .bind(e.reservation_id.as_deref())
                        .bind(now);
                }
            }
            Insert::Usage(_) => {
                for (u, credits, held) in &rows.usage {
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
                        .bind(u.request_id.as_deref())
                        .bind(*held);
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
