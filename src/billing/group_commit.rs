//! Group commit, the chat path's front door to the money engine: the holds and settlements
//! (with their `chat_usage` rows) of many concurrent calls are written by one writer in one
//! transaction, so the database sees a handful of statements per batch instead of a dozen per
//! call. The rules are the engine's ([`super::engine`]).
//!
//! Every call still waits for its own operation to be committed: a hold is durable before the
//! upstream is called, and a settlement (with its usage row) before the answer is sent, so a
//! crash never loses a charge or leaves a hold that is not in the database.
//!
//! A batch that fails on a database error (a constraint, a deadlock between two processes) is
//! retried one operation at a time, so one bad operation fails alone; a batch that fails because
//! the database cannot be reached fails all its operations at once (each would wait out the same
//! connection timeout).
//!
//! The writer: on SQLite a thread of its own with a `rusqlite` connection, so a batch costs one
//! thread hand-off instead of one per statement; on PostgreSQL a task that sends multi-row
//! statements through the sqlx pool.

use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

use super::engine::sqlite::SqliteStore;
use super::engine::sqlx_store::SqlxStore;
use super::engine::{
    self, Close, EndLease, Hold, LedgerError, MoneyStore, Op, Outcome, Reservation, Settlement,
    Spend, Take,
};
use crate::storage::{Backend, Db, StoreError};

/// Operations in one transaction at most (a batch of this size stays far below SQLite's limit of
/// 32,766 bound values per statement: 11 per usage row).
const MAX_BATCH: usize = 256;
/// Operations waiting for the writer before callers wait for room.
const QUEUE: usize = 8192;

type Reply = oneshot::Sender<Result<Outcome, LedgerError>>;
type Queue = mpsc::Receiver<(Op, Reply)>;

/// The chat path's handle on the writer (cheap to clone).
#[derive(Clone, Debug)]
pub struct GroupCommit {
    queue: mpsc::Sender<(Op, Reply)>,
    db: Db,
}

impl GroupCommit {
    /// Start the writer for `db`'s backend. It ends when every handle is dropped, after committing
    /// what was queued. On PostgreSQL it is a task on `tracker`: since it outlives the handles'
    /// holders, that tracker must not be one waited on while they live.
    pub fn start(db: Db, tracker: &TaskTracker) -> Result<GroupCommit, StoreError> {
        let (queue, rx) = mpsc::channel(QUEUE);
        let handle = db.clone();
        match db.backend() {
            Backend::Sqlite => {
                let path = db.sqlite_path().ok_or(StoreError::UnsupportedUrl)?;
                let store = SqliteStore::new(engine::sqlite::open(path)?);
                std::thread::Builder::new()
                    .name("llmage-ledger".into())
                    .spawn(move || run_sqlite(store, rx))
                    .map_err(StoreError::Thread)?;
            }
            Backend::Postgres => {
                tracker.spawn(run_sqlx(SqlxStore::new(db), rx));
            }
        }
        Ok(GroupCommit { queue, db: handle })
    }

    /// Whether the database answers (one read, no commit): what a call served from memory asks
    /// before it starts when nothing has shown the database alive for a while.
    pub async fn ping(&self) -> Result<(), LedgerError> {
        sqlx::query("SELECT 1")
            .execute(self.db.reader())
            .await
            .map_err(|e| LedgerError::Store(StoreError::Sql(e)))?;
        Ok(())
    }

    /// Hold between `hold.min` and `hold.max` units (committed when this returns).
    pub async fn hold(&self, hold: Hold) -> Result<Reservation, LedgerError> {
        match self.submit(Op::Hold(hold)).await? {
            Outcome::Held(held) => held,
            _ => Err(writer_gone()),
        }
    }

    /// Close a hold at its price (0 releases it) and record the call's usage row, both committed
    /// when this returns.
    pub async fn close(&self, close: Close) -> Result<Settlement, LedgerError> {
        match self.submit(Op::Close(close)).await? {
            Outcome::Closed(settlement) => Ok(settlement),
            _ => Err(writer_gone()),
        }
    }

    /// Claim units of a user's free balance for a credit lease (committed when this returns).
    pub async fn take(&self, take: Take) -> Result<i64, LedgerError> {
        match self.submit(Op::Take(take)).await? {
            Outcome::Took(took) => took,
            _ => Err(writer_gone()),
        }
    }

    /// Pay a call from its credit lease, with its usage row (committed when this returns).
    pub async fn spend(&self, spend: Spend) -> Result<Settlement, LedgerError> {
        match self.submit(Op::Spend(spend)).await? {
            Outcome::Closed(settlement) => Ok(settlement),
            _ => Err(writer_gone()),
        }
    }

    /// Give a credit lease's rest back; the units returned.
    pub async fn end_lease(&self, end: EndLease) -> Result<i64, LedgerError> {
        match self.submit(Op::EndLease(end)).await? {
            Outcome::Ended(rest) => Ok(rest),
            _ => Err(writer_gone()),
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

/// The SQLite writer thread: commit batches from `rx` until every sender is gone. The batch
/// futures never wait on I/O (the connection is synchronous), so a current-thread runtime only
/// drives them to completion.
fn run_sqlite(mut store: SqliteStore, mut rx: Queue) {
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the ledger writer; chat calls will fail");
            return;
        }
    };
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

fn drain(rx: &mut Queue, queued: &mut Vec<(Op, Reply)>) {
    while queued.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(next) => queued.push(next),
            Err(_) => break,
        }
    }
}

/// The PostgreSQL writer task.
async fn run_sqlx(mut store: SqlxStore<'static>, mut rx: Queue) {
    let mut queued = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut queued, MAX_BATCH).await > 0 {
        commit_batch(&mut store, &mut queued).await;
    }
}

/// Commit one batch and answer its callers: retried op by op after a database error, failed as a
/// whole when the database cannot be reached.
async fn commit_batch<S: MoneyStore>(store: &mut S, queued: &mut Vec<(Op, Reply)>) {
    let (ops, replies): (Vec<Op>, Vec<Reply>) = queued.drain(..).unzip();
    metrics::histogram!("llmage_ledger_batch_size").record(ops.len() as f64);
    match engine::run(store, &ops).await {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(e) if ops.len() > 1 && unreachable_copy(&e).is_none() => {
            tracing::warn!(error = %e, ops = ops.len(), "ledger batch failed; retrying its operations one by one");
            for (op, reply) in ops.into_iter().zip(replies) {
                let one = engine::run(store, std::slice::from_ref(&op)).await;
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

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::*;
    use crate::billing::engine::tests::{assert_ledger_replays, balance, db, user};

    fn chat_hold(user_id: i64, amount: i64) -> Hold {
        Hold {
            user_id,
            min: amount,
            max: amount,
            purpose: "chat",
            model: "m".into(),
            label: "对话 m".into(),
            owner: None,
        }
    }

    #[tokio::test]
    async fn many_concurrent_holds_fit_exactly_and_each_waits_for_its_commit() {
        let (_dir, db) = db().await;
        let a = user(&db, "13000000003", 1000).await;
        let tracker = TaskTracker::new();
        let commits = GroupCommit::start(db.clone(), &tracker).unwrap();
        let calls: Vec<_> = (0..300)
            .map(|_| {
                let commits = commits.clone();
                tracker.spawn(async move { commits.hold(chat_hold(a, 7)).await })
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
