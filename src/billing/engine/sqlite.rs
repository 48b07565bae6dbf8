//! The engine's statements on a `rusqlite` connection: the SQLite group-commit writer's own
//! connection, running each batch as one `BEGIN IMMEDIATE … COMMIT` with cached prepared
//! statements (a batch costs one hand-off between threads; sqlx's SQLite driver hands every
//! statement to its worker thread and back, which on a busy core cost more than the SQL).
//!
//! The process then has two SQLite writers, this one and the sqlx writer pool; SQLite serialises
//! them with its file lock. This connection waits for the lock in short steps (so a chat call is
//! not held up by the default busy handler's growing sleeps), at most [`BUSY_WAIT`] in all; the
//! sqlx side opens its transactions with `BEGIN IMMEDIATE` ([`crate::storage::Db::begin_write`]),
//! so neither can fail on a snapshot the other moved.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::{LeaseRow, LedgerError, MoneyStore, NewLease, Rows};
use crate::storage::StoreError;

/// The longest a batch waits for the database lock before it fails.
const BUSY_WAIT: Duration = Duration::from_secs(10);
/// One step of that wait.
const BUSY_STEP: Duration = Duration::from_micros(200);

/// Open the writer's connection to the database file.
pub(crate) fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
    conn.busy_handler(Some(wait_for_lock))?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// SQLite's busy handler: `true` = try again.
fn wait_for_lock(attempt: i32) -> bool {
    let steps = BUSY_WAIT.as_micros() / BUSY_STEP.as_micros();
    if u128::try_from(attempt).unwrap_or(u128::MAX) >= steps {
        return false;
    }
    std::thread::sleep(BUSY_STEP);
    true
}

/// The engine's store over one rusqlite connection.
pub(crate) struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    pub(crate) fn new(conn: Connection) -> SqliteStore {
        SqliteStore { conn }
    }

    #[cfg(test)]
    pub(crate) fn open_for_test(path: &Path) -> SqliteStore {
        SqliteStore {
            conn: open(path).unwrap(),
        }
    }

    fn change(&self, user_id: i64, delta: i64) -> Result<Option<i64>, rusqlite::Error> {
        self.conn
            .prepare_cached(
                "UPDATE users SET balance = balance + ?1 WHERE id = ?2 AND balance + ?1 >= leased RETURNING balance",
            )?
            .query_row(params![delta, user_id], |row| row.get(0))
            .optional()
    }
}

fn store_error(e: rusqlite::Error) -> LedgerError {
    LedgerError::Store(StoreError::Sqlite(e))
}

impl MoneyStore for SqliteStore {
    async fn begin(&mut self) -> Result<(), LedgerError> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(store_error)
    }

    async fn commit(&mut self) -> Result<(), LedgerError> {
        let committed = self.conn.execute_batch("COMMIT").map_err(store_error);
        if committed.is_err() {
            self.rollback().await;
        }
        committed
    }

    async fn rollback(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    async fn close(
        &mut self,
        closing: &[(&str, i64, &'static str)],
        from: &'static str,
        now: i64,
    ) -> Result<HashMap<String, (i64, i64)>, LedgerError> {
        // A SELECT by key and a plain UPDATE: `UPDATE … RETURNING` costs SQLite an ephemeral
        // table per statement, twice the instructions of the two (measured with callgrind on
        // the chat path). The write lock taken by `BEGIN IMMEDIATE` keeps the row as read.
        let mut find = self
            .conn
            .prepare_cached(
                "SELECT user_id, amount FROM reservations WHERE id = ?1 AND status = ?2",
            )
            .map_err(store_error)?;
        let mut update = self
            .conn
            .prepare_cached(
                "UPDATE reservations SET status = ?1, charged = MIN(amount, ?2), closed_at = ?3 WHERE id = ?4",
            )
            .map_err(store_error)?;
        let mut closed = HashMap::with_capacity(closing.len());
        for (id, price, status) in closing {
            let row: Option<(i64, i64)> = find
                .query_row(params![id, from], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
                .map_err(store_error)?;
            if let Some(row) = row {
                update
                    .execute(params![status, price, now, id])
                    .map_err(store_error)?;
                closed.insert((*id).to_owned(), row);
            }
        }
        Ok(closed)
    }

    async fn seen_keys(&mut self, keys: &[&str]) -> Result<HashSet<String>, LedgerError> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT 1 FROM ledger WHERE idem_key = ?1")
            .map_err(store_error)?;
        let mut seen = HashSet::new();
        for key in keys {
            if statement.exists(params![key]).map_err(store_error)? {
                seen.insert((*key).to_owned());
            }
        }
        Ok(seen)
    }

    async fn add_sums(&mut self, sums: &[(i64, i64)]) -> Result<BTreeMap<i64, i64>, LedgerError> {
        let mut finals = BTreeMap::new();
        for (user, sum) in sums {
            if let Some(balance) = self.change(*user, *sum).map_err(store_error)? {
                finals.insert(*user, balance);
            }
        }
        Ok(finals)
    }

    async fn change_balance(&mut self, user_id: i64, delta: i64) -> Result<i64, LedgerError> {
        if let Some(balance) = self.change(user_id, delta).map_err(store_error)? {
            return Ok(balance);
        }
        let exists = self
            .conn
            .prepare_cached("SELECT 1 FROM users WHERE id = ?1")
            .and_then(|mut s| s.exists(params![user_id]))
            .map_err(store_error)?;
        Err(if exists {
            LedgerError::InsufficientBalance
        } else {
            LedgerError::UnknownUser
        })
    }

    async fn free_balance(&mut self, user_id: i64) -> Result<i64, LedgerError> {
        // BEGIN IMMEDIATE holds the write lock: nobody else can change it until we commit.
        self.conn
            .prepare_cached("SELECT balance - leased FROM users WHERE id = ?1")
            .and_then(|mut s| s.query_row(params![user_id], |row| row.get(0)).optional())
            .map_err(store_error)?
            .ok_or(LedgerError::UnknownUser)
    }

    async fn insert_rows(&mut self, rows: &Rows<'_>, now: i64) -> Result<(), LedgerError> {
        if !rows.reservations.is_empty() {
            let mut statement = self
                .conn
                .prepare_cached(
                    "INSERT INTO reservations (id, user_id, amount, status, purpose, model, created_at, label, owner) \
                     VALUES (?1, ?2, ?3, 'open', ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(store_error)?;
            for r in &rows.reservations {
                statement
                    .execute(params![
                        r.id, r.user_id, r.amount, r.purpose, r.model, now, r.label, r.owner
                    ])
                    .map_err(store_error)?;
            }
        }
        if !rows.entries.is_empty() {
            let mut statement = self
                .conn
                .prepare_cached(
                    "INSERT INTO ledger (user_id, amount, balance_after, kind, reason, label, idem_key, reservation_id, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(store_error)?;
            for e in &rows.entries {
                statement
                    .execute(params![
                        e.user_id,
                        e.amount,
                        e.balance_after,
                        e.kind.as_str(),
                        e.reason,
                        e.label,
                        e.idem_key,
                        e.reservation_id,
                        now
                    ])
                    .map_err(store_error)?;
            }
        }
        if !rows.usage.is_empty() {
            let mut statement = self
                .conn
                .prepare_cached(
                    "INSERT INTO chat_usage (user_id, key_id, model, channel_id, prompt_tokens, completion_tokens, credits, usage_source, outcome, latency_ms, created_at, request_id, held) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )
                .map_err(store_error)?;
            for (u, credits, held) in &rows.usage {
                statement
                    .execute(params![
                        u.user_id,
                        u.key_id,
                        u.model,
                        u.channel_id,
                        u.prompt_tokens,
                        u.completion_tokens,
                        credits,
                        u.usage_source,
                        u.outcome,
                        u.latency_ms,
                        now,
                        u.request_id,
                        held
                    ])
                    .map_err(store_error)?;
            }
        }
        Ok(())
    }

    async fn leases(&mut self, ids: &[&str]) -> Result<HashMap<String, LeaseRow>, LedgerError> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT user_id, amount, status FROM credit_leases WHERE id = ?1")
            .map_err(store_error)?;
        let mut found = HashMap::with_capacity(ids.len());
        for id in ids {
            let row = statement
                .query_row(params![id], |row| {
                    Ok(LeaseRow {
                        user_id: row.get(0)?,
                        amount: row.get(1)?,
                        status: row.get(2)?,
                    })
                })
                .optional()
                .map_err(store_error)?;
            if let Some(row) = row {
                found.insert((*id).to_owned(), row);
            }
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
        self.conn
            .prepare_cached(
                "UPDATE credit_leases SET amount = ?1, status = ?2, updated_at = ?3 WHERE id = ?4",
            )
            .and_then(|mut s| s.execute(params![amount, status, now, id]))
            .map_err(store_error)?;
        Ok(())
    }

    async fn insert_lease(&mut self, lease: &NewLease<'_>, now: i64) -> Result<(), LedgerError> {
        self.conn
            .prepare_cached(
                "INSERT INTO credit_leases (id, user_id, owner, amount, status, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, 'live', ?5, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![lease.id, lease.user_id, lease.owner, lease.amount, now])
            })
            .map_err(store_error)?;
        Ok(())
    }

    async fn move_leased(
        &mut self,
        user_id: i64,
        balance_delta: i64,
        leased_delta: i64,
    ) -> Result<i64, LedgerError> {
        // A plain UPDATE and a SELECT: `RETURNING` costs SQLite an ephemeral table.
        self.conn
            .prepare_cached(
                "UPDATE users SET balance = balance + ?1, leased = leased + ?2 WHERE id = ?3",
            )
            .and_then(|mut s| s.execute(params![balance_delta, leased_delta, user_id]))
            .map_err(store_error)?;
        self.conn
            .prepare_cached("SELECT balance FROM users WHERE id = ?1")
            .and_then(|mut s| s.query_row(params![user_id], |row| row.get(0)).optional())
            .map_err(store_error)?
            .ok_or(LedgerError::UnknownUser)
    }

    async fn claim(&mut self, user_id: i64, amount: i64) -> Result<bool, LedgerError> {
        let claimed = self
            .conn
            .prepare_cached(
                "UPDATE users SET leased = leased + ?1 WHERE id = ?2 AND balance - leased >= ?1",
            )
            .and_then(|mut s| s.execute(params![amount, user_id]))
            .map_err(store_error)?;
        Ok(claimed == 1)
    }
}
