//! Group commit for the chat path: the reservations and settlements (with their `chat_usage`
//! rows) of many concurrent calls are written by one writer in one transaction, so the database
//! sees a handful of statements per batch instead of a dozen per call.
//!
//! Every call still waits for its own operation to be committed: a reservation is durable before
//! the upstream is called, and a settlement (with its usage row) before the answer is sent, so a
//! crash never loses a charge or leaves a hold that is not in the database. The money rules are
//! those of [`super::ledger`]: each change is a guarded `balance + delta >= 0` update and a ledger
//! row with its `balance_after`. A batch first adds to each user's balance the sum of the batch's
//! changes (refunds ordered before holds, so no `balance_after` is ever negative); a user whose sum
//! does not fit has the batch's changes applied one by one, each guarded, so exactly the holds
//! that fit succeed, as if they had come one at a time.
//!
//! A batch that fails on a database error (a constraint, a deadlock between two processes) is
//! retried one operation at a time, so one bad operation fails alone; a batch that fails because
//! the database cannot be reached fails all its operations at once (each would wait out the same
//! connection timeout).
//!
//! The writer: on SQLite a thread of its own with a `rusqlite` connection (`sqlite.rs`), so a
//! batch costs one thread hand-off instead of one per statement; on PostgreSQL a task that sends
//! multi-row statements through the sqlx pool (`postgres.rs`).

mod postgres;
mod sqlite;

use std::collections::{BTreeMap, HashSet};

use tokio::sync::{mpsc, oneshot};

use super::ledger::{
    EntryKind, LedgerError, Reservation, Settlement, settle_entry, time_ordered_id,
};
use crate::storage::{Backend, Db, StoreError, now_ms};

/// Operations in one transaction at most (a batch of this size stays far below SQLite's limit of
/// 32,766 bound values per statement: 11 per usage row).
const MAX_BATCH: usize = 256;
/// Operations waiting for the writer before callers wait for room.
const QUEUE: usize = 8192;

/// One call's usage, recorded with its settlement.
#[derive(Debug, Clone)]
pub struct UsageRow {
    pub user_id: i64,
    pub key_id: i64,
    pub model: String,
    pub channel_id: Option<i64>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// `upstream` (reported) or `estimated`.
    pub usage_source: &'static str,
    pub outcome: &'static str,
    pub latency_ms: i64,
    /// The X-Request-Id answered for the call.
    pub request_id: Option<String>,
}

/// What the writer is asked to do.
#[derive(Debug)]
enum Op {
    Reserve {
        user_id: i64,
        amount: i64,
        purpose: &'static str,
        model: String,
    },
    /// Settle (or without usage, release) a reservation at `price` and record the usage row.
    Close {
        reservation: Option<Reservation>,
        price: i64,
        usage: UsageRow,
    },
}

/// What an operation came to in a committed batch.
#[derive(Debug)]
enum Outcome {
    Reserved(Result<Reservation, LedgerError>),
    Closed(Settlement),
}

type Reply = oneshot::Sender<Result<Outcome, LedgerError>>;
type Queue = mpsc::Receiver<(Op, Reply)>;

/// The chat path's handle on the writer (cheap to clone).
#[derive(Clone, Debug)]
pub struct GroupCommit {
    queue: mpsc::Sender<(Op, Reply)>,
}

impl GroupCommit {
    /// Start the writer for `db`'s backend. It ends when every handle is dropped, after committing
    /// what was queued.
    pub fn start(db: Db) -> Result<GroupCommit, StoreError> {
        let (queue, rx) = mpsc::channel(QUEUE);
        match db.backend() {
            Backend::Sqlite => sqlite::start(&db, rx)?,
            Backend::Postgres => {
                tokio::spawn(postgres::run(db, rx));
            }
        }
        Ok(GroupCommit { queue })
    }

    /// Hold `amount` credits for a call (committed when this returns).
    pub async fn reserve(
        &self,
        user_id: i64,
        amount: i64,
        purpose: &'static str,
        model: &str,
    ) -> Result<Reservation, LedgerError> {
        let op = Op::Reserve {
            user_id,
            amount,
            purpose,
            model: model.to_owned(),
        };
        match self.submit(op).await? {
            Outcome::Reserved(reserved) => reserved,
            Outcome::Closed(_) => Err(writer_gone()),
        }
    }

    /// Close a call: settle its reservation at `price` (release it when `price` is 0) and record
    /// its usage row, both committed when this returns.
    pub async fn close(
        &self,
        reservation: Option<Reservation>,
        price: i64,
        usage: UsageRow,
    ) -> Result<Settlement, LedgerError> {
        let op = Op::Close {
            reservation,
            price,
            usage,
        };
        match self.submit(op).await? {
            Outcome::Closed(settlement) => Ok(settlement),
            Outcome::Reserved(_) => Err(writer_gone()),
        }
    }

    async fn submit(&self, op: Op) -> Result<Outcome, LedgerError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((op, reply))
            .await
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }
}

fn writer_gone() -> LedgerError {
    LedgerError::Store(StoreError::Sql(sqlx::Error::PoolClosed))
}

/// A reservation about to be inserted.
struct NewReservation<'a> {
    id: String,
    user_id: i64,
    amount: i64,
    purpose: &'a str,
    model: &'a str,
}

/// The rows a batch inserts.
struct Rows<'a> {
    reservations: Vec<NewReservation<'a>>,
    entries: Vec<Entry>,
    usage: Vec<(&'a UsageRow, i64)>,
}

/// A balance change that becomes one ledger row.
struct Entry {
    op: usize,
    user_id: i64,
    amount: i64,
    kind: EntryKind,
    reason: String,
    idem_key: String,
    reservation_id: String,
    balance_after: i64,
}

/// The statements of one batch, on one backend. Every method runs inside the transaction opened
/// by `begin`.
trait BatchStore {
    async fn begin(&mut self) -> Result<(), LedgerError>;
    async fn commit(&mut self) -> Result<(), LedgerError>;
    async fn rollback(&mut self);
    /// Mark these reservations closed at their price (`released` when 0); the ids still open.
    async fn close_open(
        &mut self,
        closing: &[(&Reservation, i64)],
        now: i64,
    ) -> Result<HashSet<String>, LedgerError>;
    /// Add each `(user, sum)` whose balance stays ≥ 0; the new balances of those users.
    async fn add_sums(&mut self, sums: &[(i64, i64)]) -> Result<BTreeMap<i64, i64>, LedgerError>;
    /// One guarded change; `InsufficientBalance` / `UnknownUser` when refused.
    async fn change_balance(&mut self, user_id: i64, delta: i64) -> Result<i64, LedgerError>;
    /// A user's balance, locked until the end of the transaction.
    async fn locked_balance(&mut self, user_id: i64) -> Result<i64, LedgerError>;
    /// Insert a batch's granted reservations, ledger entries (in the order given) and usage rows.
    async fn insert_rows(&mut self, rows: &Rows<'_>, now: i64) -> Result<(), LedgerError>;
}

/// Commit one batch and answer its callers: retried op by op after a database error, failed as a
/// whole when the database cannot be reached.
async fn commit_batch<S: BatchStore>(store: &mut S, queued: &mut Vec<(Op, Reply)>) {
    let (ops, replies): (Vec<Op>, Vec<Reply>) = queued.drain(..).unzip();
    metrics::histogram!("llmage_ledger_batch_size").record(ops.len() as f64);
    match commit(store, &ops).await {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(e) if ops.len() > 1 && unreachable_copy(&e).is_none() => {
            tracing::warn!(error = %e, ops = ops.len(), "ledger batch failed; retrying its operations one by one");
            for (op, reply) in ops.into_iter().zip(replies) {
                let one = commit(store, std::slice::from_ref(&op)).await;
                let _ = reply.send(one.and_then(|mut o| o.pop().ok_or_else(writer_gone)));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, ops = ops.len(), "ledger batch failed");
            for reply in replies {
                let copy = unreachable_copy(&e).unwrap_or_else(writer_gone);
                let _ = reply.send(Err(copy));
            }
        }
    }
}

/// For an error that means the database cannot be reached, the same error again (one per caller).
fn unreachable_copy(e: &LedgerError) -> Option<LedgerError> {
    let LedgerError::Store(StoreError::Sql(e)) = e else {
        return None;
    };
    let copy = match e {
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        sqlx::Error::Io(io) => sqlx::Error::Io(std::io::Error::new(io.kind(), io.to_string())),
        _ => return None,
    };
    Some(LedgerError::Store(StoreError::Sql(copy)))
}

/// Run `ops` in one transaction; one outcome per op, in order.
async fn commit<S: BatchStore>(store: &mut S, ops: &[Op]) -> Result<Vec<Outcome>, LedgerError> {
    store.begin().await?;
    let outcomes = match apply(store, ops).await {
        Ok(outcomes) => outcomes,
        Err(e) => {
            store.rollback().await;
            return Err(e);
        }
    };
    store.commit().await?;
    count(&outcomes);
    Ok(outcomes)
}

async fn apply<S: BatchStore>(store: &mut S, ops: &[Op]) -> Result<Vec<Outcome>, LedgerError> {
    let now = now_ms();

    // 1. Close the reservations still open (a reservation closes once: a stale sweep or an
    //    earlier close may have got there first).
    let closing: Vec<(&Reservation, i64)> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Close {
                reservation: Some(r),
                price,
                ..
            } => Some((r, (*price).max(0))),
            _ => None,
        })
        .collect();
    let closed = if closing.is_empty() {
        HashSet::new()
    } else {
        store.close_open(&closing, now).await?
    };

    // 2. The balance changes: refunds, holds, and overruns (taken last, up to the balance).
    let mut outcomes: Vec<Option<Outcome>> = ops.iter().map(|_| None).collect();
    let mut refunds = Vec::new();
    let mut holds = Vec::new();
    let mut overruns = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Reserve {
                user_id,
                amount,
                purpose,
                model,
            } => {
                let id = time_ordered_id();
                holds.push(Entry {
                    op: i,
                    user_id: *user_id,
                    amount: -*amount,
                    kind: EntryKind::Reserve,
                    reason: format!("{purpose} {model}"),
                    idem_key: format!("reserve:{id}"),
                    reservation_id: id,
                    balance_after: 0,
                });
            }
            Op::Close {
                reservation: Some(r),
                price,
                ..
            } if closed.contains(&r.id) => {
                let actual = (*price).max(0);
                let delta = r.amount - actual;
                outcomes[i] = Some(Outcome::Closed(Settlement {
                    charged: actual,
                    shortfall: 0,
                    applied: true,
                }));
                if delta > 0 {
                    let (kind, reason) = settle_entry(actual, r.amount);
                    refunds.push(Entry {
                        op: i,
                        user_id: r.user_id,
                        amount: delta,
                        kind,
                        reason,
                        idem_key: format!("settle:{}", r.id),
                        reservation_id: r.id.clone(),
                        balance_after: 0,
                    });
                } else if delta < 0 {
                    overruns.push((i, r, actual));
                }
            }
            Op::Close { .. } => {
                outcomes[i] = Some(Outcome::Closed(Settlement {
                    charged: 0,
                    shortfall: 0,
                    applied: false,
                }));
            }
        }
    }
    let mut entries = apply_changes(store, refunds, holds, &mut outcomes).await?;
    for (i, r, actual) in overruns {
        let over = actual - r.amount;
        let current = store.locked_balance(r.user_id).await?;
        let take = over.min(current);
        if take > 0 {
            let balance = store.change_balance(r.user_id, -take).await?;
            entries.push(Entry {
                op: i,
                user_id: r.user_id,
                amount: -take,
                kind: EntryKind::Settle,
                reason: settle_entry(actual, r.amount).1,
                idem_key: format!("settle:{}", r.id),
                reservation_id: r.id.clone(),
                balance_after: balance,
            });
        }
        outcomes[i] = Some(Outcome::Closed(Settlement {
            charged: actual - (over - take),
            shortfall: over - take,
            applied: true,
        }));
    }

    // 3. The rows: reservations that were granted, ledger entries (in the order applied, so ids
    //    and `balance_after` tell the same story), usage.
    let granted: Vec<NewReservation<'_>> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::Reserve)
        .filter_map(|e| match &ops[e.op] {
            Op::Reserve {
                user_id,
                amount,
                purpose,
                model,
            } => Some(NewReservation {
                id: e.reservation_id.clone(),
                user_id: *user_id,
                amount: *amount,
                purpose,
                model,
            }),
            Op::Close { .. } => None,
        })
        .collect();
    let usage: Vec<(&UsageRow, i64)> = ops
        .iter()
        .zip(&outcomes)
        .filter_map(|(op, outcome)| match (op, outcome) {
            (Op::Close { usage, .. }, Some(Outcome::Closed(s))) => Some((usage, s.charged)),
            _ => None,
        })
        .collect();
    let rows = Rows {
        reservations: granted,
        entries,
        usage,
    };
    store.insert_rows(&rows, now).await?;
    outcomes
        .into_iter()
        .map(|o| o.ok_or_else(writer_gone))
        .collect()
}

/// Apply refunds and holds per user: the whole sum in one guarded update per user, or for a user
/// whose sum does not fit, change by change. Sets each hold's outcome; returns the entries that
/// were applied, each with its `balance_after`.
async fn apply_changes<S: BatchStore>(
    store: &mut S,
    refunds: Vec<Entry>,
    holds: Vec<Entry>,
    outcomes: &mut [Option<Outcome>],
) -> Result<Vec<Entry>, LedgerError> {
    let mut per_user: BTreeMap<i64, Vec<Entry>> = BTreeMap::new();
    for e in refunds.into_iter().chain(holds) {
        per_user.entry(e.user_id).or_default().push(e);
    }
    if per_user.is_empty() {
        return Ok(Vec::new());
    }
    let sums: Vec<(i64, i64)> = per_user
        .iter()
        .map(|(user, entries)| (*user, entries.iter().map(|e| e.amount).sum()))
        .collect();
    let finals = store.add_sums(&sums).await?;

    let mut applied = Vec::new();
    for ((user, entries), (_, sum)) in per_user.into_iter().zip(sums) {
        if let Some(final_balance) = finals.get(&user) {
            let mut balance = final_balance - sum;
            for mut e in entries {
                balance += e.amount;
                e.balance_after = balance;
                grant(&e, outcomes);
                applied.push(e);
            }
            continue;
        }
        // The sum does not fit (or the user is unknown): one guarded change at a time.
        for mut e in entries {
            match store.change_balance(user, e.amount).await {
                Ok(balance) => {
                    e.balance_after = balance;
                    grant(&e, outcomes);
                    applied.push(e);
                }
                Err(refused @ (LedgerError::InsufficientBalance | LedgerError::UnknownUser))
                    if e.kind == EntryKind::Reserve =>
                {
                    outcomes[e.op] = Some(Outcome::Reserved(Err(refused)));
                }
                Err(other) => return Err(other),
            }
        }
    }
    Ok(applied)
}

/// The outcome of a hold that was applied.
fn grant(e: &Entry, outcomes: &mut [Option<Outcome>]) {
    if e.kind == EntryKind::Reserve {
        outcomes[e.op] = Some(Outcome::Reserved(Ok(Reservation {
            id: e.reservation_id.clone(),
            user_id: e.user_id,
            amount: -e.amount,
        })));
    }
}

fn count(outcomes: &[Outcome]) {
    let (mut reserved, mut refused, mut settled, mut released) = (0, 0, 0, 0);
    for o in outcomes {
        match o {
            Outcome::Reserved(Ok(_)) => reserved += 1,
            Outcome::Reserved(Err(LedgerError::InsufficientBalance)) => refused += 1,
            Outcome::Reserved(Err(_)) => {}
            Outcome::Closed(s) if s.applied && s.charged == 0 => released += 1,
            Outcome::Closed(s) if s.applied => settled += 1,
            Outcome::Closed(_) => {}
        }
    }
    for (op, n) in [
        ("reserve", reserved),
        ("refused", refused),
        ("settle", settled),
        ("release", released),
    ] {
        if n > 0 {
            metrics::counter!("llmage_ledger_operations_total", "op" => op).increment(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::*;

    async fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&crate::storage::sqlite_url_for(dir.path()))
            .await
            .unwrap();
        (dir, db)
    }

    async fn user(db: &Db, phone: &str, credits: i64) -> i64 {
        let id = sqlx::query(
            "INSERT INTO users (phone, balance, created_at) VALUES ($1, 0, 0) RETURNING id",
        )
        .bind(phone)
        .fetch_one(db.writer())
        .await
        .unwrap()
        .try_get("id")
        .unwrap();
        super::super::ledger::Ledger::new(db.clone())
            .apply(
                id,
                credits,
                EntryKind::Grant,
                "test",
                &format!("grant:{id}"),
            )
            .await
            .unwrap();
        id
    }

    async fn balance(db: &Db, user: i64) -> i64 {
        sqlx::query("SELECT balance FROM users WHERE id = $1")
            .bind(user)
            .fetch_one(db.reader())
            .await
            .unwrap()
            .try_get("balance")
            .unwrap()
    }

    /// Replaying a user's ledger rows in id order gives each row's `balance_after`, never below
    /// zero, and ends at the balance.
    async fn assert_ledger_replays(db: &Db, user: i64) {
        let rows =
            sqlx::query("SELECT amount, balance_after FROM ledger WHERE user_id = $1 ORDER BY id")
                .bind(user)
                .fetch_all(db.reader())
                .await
                .unwrap();
        let mut running = 0;
        for row in rows {
            let amount: i64 = row.try_get("amount").unwrap();
            let after: i64 = row.try_get("balance_after").unwrap();
            running += amount;
            assert_eq!(
                running, after,
                "user {user}: balance_after follows the amounts"
            );
            assert!(after >= 0, "user {user}: balance_after {after} below zero");
        }
        assert_eq!(
            running,
            balance(db, user).await,
            "user {user}: ledger sum = balance"
        );
    }

    fn reserve(user_id: i64, amount: i64) -> Op {
        Op::Reserve {
            user_id,
            amount,
            purpose: "chat",
            model: "m".into(),
        }
    }

    fn close(reservation: &Reservation, price: i64) -> Op {
        Op::Close {
            reservation: Some(reservation.clone()),
            price,
            usage: UsageRow {
                user_id: reservation.user_id,
                key_id: 1,
                model: "m".into(),
                channel_id: None,
                prompt_tokens: 1,
                completion_tokens: 1,
                usage_source: "upstream",
                outcome: "ok",
                latency_ms: 1,
                request_id: None,
            },
        }
    }

    fn reserved(o: &Outcome) -> Reservation {
        match o {
            Outcome::Reserved(Ok(r)) => r.clone(),
            other => panic!("expected a reservation, got {other:?}"),
        }
    }

    fn settlement(charged: i64, shortfall: i64, applied: bool) -> Settlement {
        Settlement {
            charged,
            shortfall,
            applied,
        }
    }

    fn settled(o: &Outcome) -> Settlement {
        match o {
            Outcome::Closed(s) => *s,
            other => panic!("expected a settlement, got {other:?}"),
        }
    }

    async fn batches_keep_the_money_rules<S: BatchStore>(store: &mut S, db: &Db) {
        let a = user(db, "13000000001", 100).await;
        let b = user(db, "13000000002", 50).await;

        // Every hold fits: one summed update per user.
        let out = commit(
            store,
            &[
                reserve(a, 30),
                reserve(a, 30),
                reserve(b, 20),
                reserve(a, 30),
            ],
        )
        .await
        .unwrap();
        let r: Vec<Reservation> = out.iter().map(reserved).collect();
        assert_eq!((balance(db, a).await, balance(db, b).await), (10, 30));

        // A's sum does not fit (10 + 20 - 25 - 25 < 0): change by change, the refund first, so
        // one hold fits and one is refused. B's call overran its hold by 15: taken in full.
        let out = commit(
            store,
            &[
                reserve(a, 25),
                close(&r[0], 10),
                reserve(a, 25),
                close(&r[2], 35),
            ],
        )
        .await
        .unwrap();
        let held = reserved(&out[0]);
        assert!(matches!(
            out[2],
            Outcome::Reserved(Err(LedgerError::InsufficientBalance))
        ));
        assert_eq!(settled(&out[1]), settlement(10, 0, true));
        assert_eq!(settled(&out[3]), settlement(35, 0, true));
        assert_eq!((balance(db, a).await, balance(db, b).await), (5, 15));

        // A reservation closes once; a release gives everything back; an overrun beyond the
        // balance takes what there is and reports the rest.
        let small = reserved(&commit(store, &[reserve(b, 10)]).await.unwrap()[0]);
        let out = commit(
            store,
            &[close(&r[0], 99), close(&held, 0), close(&small, 40)],
        )
        .await
        .unwrap();
        assert_eq!(settled(&out[0]), settlement(0, 0, false));
        assert_eq!(settled(&out[1]), settlement(0, 0, true));
        assert_eq!(settled(&out[2]), settlement(15, 25, true));
        assert_eq!((balance(db, a).await, balance(db, b).await), (30, 0));

        assert_ledger_replays(db, a).await;
        assert_ledger_replays(db, b).await;
        let statuses = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM reservations GROUP BY status ORDER BY status",
        )
        .fetch_all(db.reader())
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.try_get::<String, _>("status").unwrap(),
                row.try_get::<i64, _>("n").unwrap(),
            )
        })
        .collect::<Vec<_>>();
        assert_eq!(
            statuses,
            [
                ("open".to_owned(), 2),
                ("released".to_owned(), 1),
                ("settled".to_owned(), 3)
            ]
        );
        let usage: i64 = sqlx::query("SELECT CAST(SUM(credits) AS BIGINT) AS c FROM chat_usage")
            .fetch_one(db.reader())
            .await
            .unwrap()
            .try_get("c")
            .unwrap();
        assert_eq!(usage, 10 + 35 + 15, "usage rows carry what was charged");
    }

    #[tokio::test]
    async fn sqlite_batches_keep_the_money_rules() {
        let (_dir, db) = db().await;
        let path = db.sqlite_path().unwrap().to_owned();
        let mut store = sqlite::SqliteStore::open_for_test(&path);
        batches_keep_the_money_rules(&mut store, &db).await;
    }

    #[tokio::test]
    async fn multi_row_batches_keep_the_money_rules() {
        // The PostgreSQL writer's SQL is portable: run it on SQLite here (and on PostgreSQL
        // through the integration tests' second pass).
        let (_dir, db) = db().await;
        let mut store = postgres::SqlxStore::new(db.clone());
        batches_keep_the_money_rules(&mut store, &db).await;
    }

    #[tokio::test]
    async fn many_concurrent_holds_fit_exactly_and_each_waits_for_its_commit() {
        let (_dir, db) = db().await;
        let a = user(&db, "13000000003", 1000).await;
        let commits = GroupCommit::start(db.clone()).unwrap();
        let calls: Vec<_> = (0..300)
            .map(|_| {
                let commits = commits.clone();
                tokio::spawn(async move { commits.reserve(a, 7, "chat", "m").await })
            })
            .collect();
        let mut granted = 0;
        for call in calls {
            match call.await.unwrap() {
                Ok(r) => {
                    granted += 1;
                    // Committed before the caller heard of it.
                    let status: String =
                        sqlx::query("SELECT status FROM reservations WHERE id = $1")
                            .bind(&r.id)
                            .fetch_one(db.reader())
                            .await
                            .unwrap()
                            .try_get("status")
                            .unwrap();
                    assert_eq!(status, "open");
                }
                Err(LedgerError::InsufficientBalance) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(granted, 1000 / 7);
        assert_eq!(balance(&db, a).await, 1000 % 7);
        assert_ledger_replays(&db, a).await;
    }
}
