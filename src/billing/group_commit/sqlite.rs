//! The group-commit writer on SQLite: a thread of its own with its own `rusqlite` connection to
//! the database file, running each batch as one `BEGIN IMMEDIATE … COMMIT` with cached prepared
//! statements. A batch costs one hand-off between threads (sqlx's SQLite driver hands every
//! statement to its worker thread and back, which on a busy core cost more than the SQL).
//!
//! The process then has two SQLite writers, this one and the sqlx writer pool; SQLite serialises
//! them with its file lock. This connection waits for the lock in short steps (so a chat call is
//! not held up by the default busy handler's growing sleeps), at most [`BUSY_WAIT`] in all; the
//! sqlx side opens its transactions with `BEGIN IMMEDIATE` ([`crate::storage::Db::begin_write`]),
//! so neither can fail on a snapshot the other moved.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::{BatchStore, Entry, MAX_BATCH, NewReservation, Queue, Rows, UsageRow, commit_batch};
use crate::billing::ledger::{LedgerError, Reservation};
use crate::storage::{Db, StoreError};

/// The longest a batch waits for the database lock before it fails.
const BUSY_WAIT: Duration = Duration::from_secs(10);
/// One step of that wait.
const BUSY_STEP: Duration = Duration::from_micros(200);

/// Open the connection (so a failure stops the start) and start the writer thread.
pub(super) fn start(db: &Db, rx: Queue) -> Result<(), StoreError> {
    let path = db.sqlite_path().ok_or(StoreError::UnsupportedUrl)?;
    let conn = open(path)?;
    std::thread::Builder::new()
        .name("llmage-ledger".into())
        .spawn(move || run(conn, rx))
        .map_err(StoreError::Thread)?;
    Ok(())
}

fn open(path: &Path) -> Result<Connection, StoreError> {
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

/// Commit batches from `rx` until every sender is gone. The batch futures never wait on I/O (the
/// connection is synchronous), so a current-thread runtime only drives them to completion.
fn run(conn: Connection, mut rx: Queue) {
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the ledger writer; chat calls will fail");
            return;
        }
    };
    let mut store = SqliteStore { conn };
    let mut queued = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        queued.push(first);
        drain(&mut rx, &mut queued);
        // Woken by the first operation, this thread may have taken the core from the request
        // path; let it run on, so the operations it is about to queue join this batch.
        std::thread::yield_now();
        drain(&mut rx, &mut queued);
        runtime.block_on(commit_batch(&mut store, &mut queued));
    }
}

fn drain(rx: &mut Queue, queued: &mut Vec<(super::Op, super::Reply)>) {
    while queued.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(next) => queued.push(next),
            Err(_) => break,
        }
    }
}

pub(super) struct SqliteStore {
    conn: Connection,
}

#[cfg(test)]
impl SqliteStore {
    pub(super) fn open_for_test(path: &Path) -> SqliteStore {
        SqliteStore {
            conn: open(path).unwrap(),
        }
    }
}

fn store_error(e: rusqlite::Error) -> LedgerError {
    LedgerError::Store(StoreError::Sqlite(e))
}

impl SqliteStore {
    fn change(&self, user_id: i64, delta: i64) -> Result<Option<i64>, rusqlite::Error> {
        self.conn
            .prepare_cached(
                "UPDATE users SET balance = balance + ?1 WHERE id = ?2 AND balance + ?1 >= 0 RETURNING balance",
            )?
            .query_row(params![delta, user_id], |row| row.get(0))
            .optional()
    }
}

impl BatchStore for SqliteStore {
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

    async fn close_open(
        &mut self,
        closing: &[(&Reservation, i64)],
        now: i64,
    ) -> Result<HashSet<String>, LedgerError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "UPDATE reservations SET status = ?1, charged = ?2, closed_at = ?3 WHERE id = ?4 AND status = 'open'",
            )
            .map_err(store_error)?;
        let mut open = HashSet::with_capacity(closing.len());
        for (r, actual) in closing {
            let status = if *actual == 0 { "released" } else { "settled" };
            let changed = statement
                .execute(params![status, actual, now, r.id])
                .map_err(store_error)?;
            if changed == 1 {
                open.insert(r.id.clone());
            }
        }
        Ok(open)
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

    async fn locked_balance(&mut self, user_id: i64) -> Result<i64, LedgerError> {
        // BEGIN IMMEDIATE holds the write lock: nobody else can change it until we commit.
        self.conn
            .prepare_cached("SELECT balance FROM users WHERE id = ?1")
            .and_then(|mut s| s.query_row(params![user_id], |row| row.get(0)).optional())
            .map_err(store_error)?
            .ok_or(LedgerError::UnknownUser)
    }

    async fn insert_rows(&mut self, rows: &Rows<'_>, now: i64) -> Result<(), LedgerError> {
        self.insert_reservations(&rows.reservations, now)?;
        self.insert_entries(&rows.entries, now)?;
        self.insert_usage(&rows.usage, now)
    }
}

impl SqliteStore {
    fn insert_reservations(
        &mut self,
        rows: &[NewReservation<'_>],
        now: i64,
    ) -> Result<(), LedgerError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "INSERT INTO reservations (id, user_id, amount, status, purpose, model, created_at) \
                 VALUES (?1, ?2, ?3, 'open', ?4, ?5, ?6)",
            )
            .map_err(store_error)?;
        for r in rows {
            statement
                .execute(params![r.id, r.user_id, r.amount, r.purpose, r.model, now])
                .map_err(store_error)?;
        }
        Ok(())
    }

    fn insert_entries(&mut self, entries: &[Entry], now: i64) -> Result<(), LedgerError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "INSERT INTO ledger (user_id, amount, balance_after, kind, reason, idem_key, reservation_id, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(store_error)?;
        for e in entries {
            statement
                .execute(params![
                    e.user_id,
                    e.amount,
                    e.balance_after,
                    e.kind.as_str(),
                    e.reason,
                    e.idem_key,
                    e.reservation_id,
                    now
                ])
                .map_err(store_error)?;
        }
        Ok(())
    }

    fn insert_usage(&mut self, rows: &[(&UsageRow, i64)], now: i64) -> Result<(), LedgerError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "INSERT INTO chat_usage (user_id, key_id, model, channel_id, prompt_tokens, completion_tokens, credits, usage_source, outcome, latency_ms, created_at, request_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .map_err(store_error)?;
        for (u, credits) in rows {
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
                    u.request_id
                ])
                .map_err(store_error)?;
        }
        Ok(())
    }
}
