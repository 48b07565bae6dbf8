//! Task rows. Every state change is one guarded `UPDATE` (by id and, while a process works on a
//! task, by its lease), so two processes — or a restarted one — never apply a change twice.

use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Task, TaskInput, TaskResult, TaskStatus};
use crate::storage::{Db, StoreError};
use crate::util::clock::now_ms;
use crate::vendor::Vendor;

const COLUMNS: &str = "id, user_id, key_id, model, category, params, inputs, vendor, channel_id, vendor_task_id, status, error, \
    attempts, submit_started_at, polls, deadline_at, reservation_id, credits, usage, result, callback_url, created_at, updated_at, finished_at, request_hash, hidden_at, request_id";

/// The earliest `next_poll_at` of an unleased unfinished task: one index seek per state.
const NEXT_DUE: &str = "SELECT CAST(MIN(t) AS BIGINT) AS t FROM (\
    SELECT (SELECT next_poll_at FROM tasks WHERE status = 'CREATED' AND lease_until < $1 ORDER BY next_poll_at LIMIT 1) AS t \
    UNION ALL SELECT (SELECT next_poll_at FROM tasks WHERE status = 'PENDING' AND lease_until < $1 ORDER BY next_poll_at LIMIT 1) \
    UNION ALL SELECT (SELECT next_poll_at FROM tasks WHERE status = 'RUNNING' AND lease_until < $1 ORDER BY next_poll_at LIMIT 1)\
    ) AS due";

/// A task to insert.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub id: String,
    pub user_id: i64,
    pub key_id: i64,
    pub model: String,
    pub category: String,
    pub params: serde_json::Map<String, Value>,
    pub inputs: Vec<TaskInput>,
    pub vendor: Vendor,
    pub channel_id: Option<i64>,
    /// How long the task may take: its deadline is this long after its creation time.
    pub allowed_ms: i64,
    pub reservation_id: Option<String>,
    pub credits: i64,
    /// What the user reads for the task's hold in the finance views.
    pub label: String,
    pub usage: Value,
    pub idem_key: Option<String>,
    pub callback_url: Option<String>,
    /// Digest of the checked submission (see [`super::service::request_hash`]).
    pub request_hash: Option<String>,
    /// The X-Request-Id answered for the submission.
    pub request_id: Option<String>,
}

/// Task persistence.
#[derive(Clone, Debug)]
pub struct TaskStore {
    db: Db,
}

impl TaskStore {
    pub fn new(db: Db) -> TaskStore {
        TaskStore { db }
    }

    /// The database the tasks live in (for a transaction that writes a task with other rows).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Insert inside the caller's write transaction (the submission's, which also holds the task's
    /// credits); `Err(StoreError)` with `is_unique_violation()` when the idempotency key was used.
    pub async fn insert(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        t: &NewTask,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO tasks (id, user_id, key_id, model, category, params, inputs, vendor, channel_id, status, next_poll_at, \
             deadline_at, reservation_id, credits, usage, idem_key, callback_url, created_at, updated_at, request_hash, request_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'CREATED', $10, $11, $12, $13, $14, $15, $16, $10, $10, $17, $18)",
        )
        .bind(&t.id)
        .bind(t.user_id)
        .bind(t.key_id)
        .bind(&t.model)
        .bind(&t.category)
        .bind(Value::Object(t.params.clone()).to_string())
        .bind(serde_json::to_string(&t.inputs).unwrap_or_else(|_| "[]".into()))
        .bind(t.vendor.as_str())
        .bind(t.channel_id)
        .bind(now)
        .bind(now.saturating_add(t.allowed_ms))
        .bind(&t.reservation_id)
        .bind(t.credits)
        .bind(t.usage.to_string())
        .bind(&t.idem_key)
        .bind(&t.callback_url)
        .bind(&t.request_hash)
        .bind(&t.request_id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub async fn get(&self, id: &str) -> Result<Option<Task>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM tasks WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.db.reader())
            .await?;
        row.map(|r| decode(&r)).transpose()
    }

    pub async fn by_idem_key(&self, user_id: i64, key: &str) -> Result<Option<Task>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM tasks WHERE user_id = $1 AND idem_key = $2");
        let row = sqlx::query(&sql)
            .bind(user_id)
            .bind(key)
            .fetch_optional(self.db.writer())
            .await?;
        row.map(|r| decode(&r)).transpose()
    }

    /// How many of a user's tasks are unfinished (CREATED, PENDING or RUNNING), counting at
    /// most `up_to` (index `tasks_user_status`).
    pub async fn unfinished_count(&self, user_id: i64, up_to: i64) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM (SELECT 1 FROM tasks WHERE user_id = $1 \
             AND status IN ('CREATED', 'PENDING', 'RUNNING') LIMIT $2) AS unfinished",
        )
        .bind(user_id)
        .bind(up_to)
        .fetch_one(self.db.reader())
        .await?;
        Ok(sqlx::Row::try_get(&row, "n")?)
    }

    /// A user's tasks, newest first, after the cursor `(created_at, id)` of the previous page.
    pub async fn list(
        &self,
        user_id: i64,
        limit: i64,
        after: Option<(i64, String)>,
    ) -> Result<Vec<Task>, StoreError> {
        let (t, id) = after.unwrap_or((i64::MAX, String::new()));
        let sql = format!(
            "SELECT {COLUMNS} FROM tasks WHERE user_id = $1 AND hidden_at IS NULL \
             AND (created_at < $2 OR (created_at = $2 AND id < $3)) ORDER BY created_at DESC, id DESC LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .bind(t)
            .bind(id)
            .bind(limit)
            .fetch_all(self.db.reader())
            .await?;
        rows.iter().map(decode).collect()
    }

    /// A user's video tasks (not hidden) after the task `(created_at, id)`, newest first or, with
    /// `ascending`, oldest first (`GET /v1/videos`).
    pub async fn list_videos(
        &self,
        user_id: i64,
        limit: i64,
        after: Option<(i64, String)>,
        ascending: bool,
    ) -> Result<Vec<Task>, StoreError> {
        let (cmp, order, (t, id)) = if ascending {
            (">", "ASC", after.unwrap_or((i64::MIN, String::new())))
        } else {
            ("<", "DESC", after.unwrap_or((i64::MAX, String::new())))
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM tasks WHERE user_id = $1 AND hidden_at IS NULL \
             AND category IN ('t2v', 'i2v', 'ref2v') \
             AND (created_at {cmp} $2 OR (created_at = $2 AND id {cmp} $3)) \
             ORDER BY created_at {order}, id {order} LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .bind(t)
            .bind(id)
            .bind(limit)
            .fetch_all(self.db.reader())
            .await?;
        rows.iter().map(decode).collect()
    }

    /// Hide a finished task from its owner; returns whether a visible finished task was hidden.
    pub async fn hide(&self, id: &str, user_id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE tasks SET hidden_at = $1 WHERE id = $2 AND user_id = $3 AND hidden_at IS NULL \
             AND status IN ('SUCCEEDED', 'FAILED')",
        )
        .bind(now_ms())
        .bind(id)
        .bind(user_id)
        .execute(self.db.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Lease up to `limit` unfinished tasks that are due, for `lease_ms`.
    pub async fn claim_due(
        &self,
        owner: &str,
        limit: i64,
        lease_ms: i64,
    ) -> Result<Vec<Task>, StoreError> {
        let now = now_ms();
        let sql = format!(
            "UPDATE tasks SET lease_owner = $1, lease_until = $2 \
             WHERE lease_until < $3 AND id IN (SELECT id FROM tasks WHERE status IN ('CREATED', 'PENDING', 'RUNNING') \
             AND next_poll_at <= $3 AND lease_until < $3 ORDER BY next_poll_at LIMIT $4) RETURNING {COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(owner)
            .bind(now + lease_ms)
            .bind(now)
            .bind(limit)
            .fetch_all(self.db.writer())
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| decoded_or_logged(decode(r)))
            .collect())
    }

    /// The earliest time an unfinished task is due (for the engine's sleep).
    pub async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        // One index seek per state (`tasks_due`), not a scan of every unfinished task: the
        // engine asks after every step. Leased tasks are left out: ours wake the engine when
        // their step ends, and the engine looks again within a second anyway, which is how a
        // dead process's expired leases are noticed.
        let row = sqlx::query(NEXT_DUE)
            .bind(now_ms())
            .fetch_one(self.db.reader())
            .await?;
        Ok(row.try_get("t")?)
    }

    /// Record that we are about to send the task to its vendor (durable before the send).
    pub async fn mark_submitting(&self, id: &str, owner: &str) -> Result<bool, StoreError> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE tasks SET submit_started_at = $1, attempts = attempts + 1, updated_at = $1 \
             WHERE id = $2 AND lease_owner = $3 AND status = 'CREATED'",
        )
        .bind(now)
        .bind(id)
        .bind(owner)
        .execute(self.db.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The vendor accepted the task.
    pub async fn mark_submitted(
        &self,
        id: &str,
        owner: &str,
        vendor_task_id: &str,
        next_poll_at: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE tasks SET vendor_task_id = $1, status = 'PENDING', next_poll_at = $2, updated_at = $3, lease_until = 0 \
             WHERE id = $4 AND lease_owner = $5 AND status = 'CREATED'",
        )
        .bind(vendor_task_id)
        .bind(next_poll_at)
        .bind(now_ms())
        .bind(id)
        .bind(owner)
        .execute(self.db.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A poll that did not finish the task: new status, next poll time, lease released.
    pub async fn mark_progress(
        &self,
        id: &str,
        owner: &str,
        status: TaskStatus,
        next_poll_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tasks SET status = $1, polls = polls + 1, next_poll_at = $2, updated_at = $3, lease_until = 0 \
             WHERE id = $4 AND lease_owner = $5 AND status IN ('CREATED', 'PENDING', 'RUNNING')",
        )
        .bind(status.as_str())
        .bind(next_poll_at)
        .bind(now_ms())
        .bind(id)
        .bind(owner)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// Move a task not yet accepted by a vendor to another channel; due again at once.
    pub async fn switch_channel(
        &self,
        id: &str,
        owner: &str,
        channel_id: i64,
        vendor: Vendor,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tasks SET channel_id = $1, vendor = $2, next_poll_at = $3, lease_until = 0, updated_at = $3 \
             WHERE id = $4 AND lease_owner = $5 AND status = 'CREATED'",
        )
        .bind(channel_id)
        .bind(vendor.as_str())
        .bind(now_ms())
        .bind(id)
        .bind(owner)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// Keep holding a task's lease until `until`.
    pub async fn extend_lease(&self, id: &str, owner: &str, until: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE tasks SET lease_until = $1 WHERE id = $2 AND lease_owner = $3")
            .bind(until)
            .bind(id)
            .bind(owner)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    /// Give a task back untouched to run again at `at` (a step that could not run now; not a
    /// poll, so the backoff does not grow).
    pub async fn defer(&self, id: &str, owner: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE tasks SET next_poll_at = $1, lease_until = 0 WHERE id = $2 AND lease_owner = $3")
            .bind(at)
            .bind(id)
            .bind(owner)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    /// Give a task back without changing it (e.g. a transient error), to retry at `next_poll_at`.
    pub async fn release(
        &self,
        id: &str,
        owner: &str,
        next_poll_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE tasks SET next_poll_at = $1, lease_until = 0, polls = polls + 1 WHERE id = $2 AND lease_owner = $3")
            .bind(next_poll_at)
            .bind(id)
            .bind(owner)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    /// Like [`Self::release`], remembering what went wrong (shown only if the task then fails at
    /// its deadline).
    pub async fn release_noted(
        &self,
        id: &str,
        owner: &str,
        next_poll_at: i64,
        note: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE tasks SET next_poll_at = $1, lease_until = 0, polls = polls + 1, error = $2 WHERE id = $3 AND lease_owner = $4")
            .bind(next_poll_at)
            .bind(note)
            .bind(id)
            .bind(owner)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    /// Final state. Only an unfinished task changes; returns whether this call finished it.
    pub async fn finish(
        &self,
        id: &str,
        status: TaskStatus,
        result: Option<&TaskResult>,
        usage: Option<&Value>,
        credits: i64,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE tasks SET status = $1, result = $2, usage = COALESCE($3, usage), credits = $4, error = $5, finished_at = $6, \
             updated_at = $6, lease_until = 0, \
             callback_state = CASE WHEN callback_url IS NULL THEN 'none' ELSE 'pending' END, callback_next_at = $6 \
             WHERE id = $7 AND status IN ('CREATED', 'PENDING', 'RUNNING')",
        )
        .bind(status.as_str())
        .bind(result.map(|r| serde_json::to_string(r).unwrap_or_default()))
        .bind(usage.map(Value::to_string))
        .bind(credits)
        .bind(error)
        .bind(now)
        .bind(id)
        .execute(self.db.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Finished tasks whose callback is due.
    pub async fn due_callbacks(&self, limit: i64) -> Result<Vec<(Task, i64)>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS}, callback_attempts FROM tasks WHERE callback_state = 'pending' AND callback_next_at <= $1 \
             ORDER BY callback_next_at LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(now_ms())
            .bind(limit)
            .fetch_all(self.db.reader())
            .await?;
        let decode_due = |r: &AnyRow| -> Result<(Task, i64), StoreError> {
            Ok((decode(r)?, r.try_get("callback_attempts")?))
        };
        Ok(rows
            .iter()
            .filter_map(|r| decoded_or_logged(decode_due(r)))
            .collect())
    }

    /// Record a callback attempt: `delivered`, `failed` (gave up) or `pending` again at `next_at`.
    pub async fn callback_attempted(
        &self,
        id: &str,
        state: &str,
        next_at: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE tasks SET callback_state = $1, callback_attempts = callback_attempts + 1, callback_next_at = $2 WHERE id = $3")
            .bind(state)
            .bind(next_at)
            .bind(id)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    /// Unfinished task counts by status (monitoring; uses the status index).
    pub async fn counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT status, CAST(COUNT(*) AS BIGINT) AS n FROM tasks \
             WHERE status IN ('CREATED', 'PENDING', 'RUNNING') GROUP BY status ORDER BY status",
        )
        .fetch_all(self.db.reader())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect()
    }
}

/// For the background loops: a row that does not decode is logged and left out (it stays as it
/// is in the database for someone to look at) instead of stopping the whole batch with it.
fn decoded_or_logged<T>(decoded: Result<T, StoreError>) -> Option<T> {
    decoded
        .map_err(|e| tracing::error!(error = %e, "a task row does not decode; left out"))
        .ok()
}

/// A JSON column of a task row; NULL is the type's default.
fn json_column<T: serde::de::DeserializeOwned + Default>(
    r: &AnyRow,
    column: &str,
    id: &str,
) -> Result<T, StoreError> {
    Ok(crate::storage::json_column(r, column, "tasks", id)?.unwrap_or_default())
}

fn decode(r: &AnyRow) -> Result<Task, StoreError> {
    let id: String = r.try_get("id")?;
    let status: String = r.try_get("status")?;
    let status = TaskStatus::parse(&status).ok_or_else(|| {
        StoreError::bad_row("tasks", &id, format_args!("unknown status `{status}`"))
    })?;
    let vendor: String = r.try_get("vendor")?;
    let vendor = Vendor::parse(&vendor).ok_or_else(|| {
        StoreError::bad_row("tasks", &id, format_args!("unknown vendor `{vendor}`"))
    })?;
    Ok(Task {
        user_id: r.try_get("user_id")?,
        key_id: r.try_get("key_id")?,
        model: r.try_get("model")?,
        category: r.try_get("category")?,
        params: json_column(r, "params", &id)?,
        inputs: json_column(r, "inputs", &id)?,
        vendor,
        channel_id: r.try_get("channel_id")?,
        vendor_task_id: r.try_get("vendor_task_id")?,
        status,
        error: r.try_get("error")?,
        attempts: r.try_get("attempts")?,
        submit_started_at: r.try_get("submit_started_at")?,
        polls: r.try_get("polls")?,
        deadline_at: r.try_get("deadline_at")?,
        reservation_id: r.try_get("reservation_id")?,
        credits: r.try_get("credits")?,
        usage: crate::storage::json_column(r, "usage", "tasks", &id)?,
        result: json_column(r, "result", &id)?,
        callback_url: r.try_get("callback_url")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        finished_at: r.try_get("finished_at")?,
        request_hash: r.try_get("request_hash")?,
        hidden: r.try_get::<Option<i64>, _>("hidden_at")?.is_some(),
        request_id: r.try_get("request_id")?,
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::engine::tests::{db, user};

    async fn insert(db: &Db, user_id: i64, id: &str, status: &str, result: &str) {
        sqlx::query(
            "INSERT INTO tasks (id, user_id, key_id, model, category, params, inputs, vendor, \
             status, next_poll_at, deadline_at, credits, result, created_at, updated_at) \
             VALUES ($1, $2, 0, 'm', 't2i', '{}', '[]', 'sandbox', $3, 0, 0, 1, $4, 0, 0)",
        )
        .bind(id)
        .bind(user_id)
        .bind(status)
        .bind(result)
        .execute(db.writer())
        .await
        .unwrap();
    }

    /// A row that does not decode is an error naming the row, never a made-up status or value.
    #[tokio::test]
    async fn a_row_with_a_bad_status_or_json_is_an_error_naming_it() {
        let (_dir, db) = db().await;
        let a = user(&db, "13000000031", 0).await;
        let store = TaskStore::new(db.clone());
        insert(&db, a, "task-good", "SUCCEEDED", "{}").await;
        insert(&db, a, "task-bad-status", "DONE-ISH", "{}").await;
        insert(&db, a, "task-bad-json", "SUCCEEDED", "{not json").await;
        assert!(store.get("task-good").await.unwrap().is_some());
        let err = store.get("task-bad-status").await.unwrap_err();
        assert!(
            matches!(&err, StoreError::BadRow { table: "tasks", id, .. } if id == "task-bad-status"),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "tasks row task-bad-status: unknown status `DONE-ISH`"
        );
        let err = store.get("task-bad-json").await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("tasks row task-bad-json: column result: "),
            "{err}"
        );
    }

    /// A task's vendor is parsed at the edge: an unknown name is an error naming the row, never
    /// a default vendor.
    #[tokio::test]
    async fn a_row_with_an_unknown_vendor_is_an_error_naming_it() {
        let (_dir, db) = db().await;
        let a = user(&db, "13000000033", 0).await;
        let store = TaskStore::new(db.clone());
        insert(&db, a, "task-vendor", "PENDING", "{}").await;
        assert_eq!(
            store.get("task-vendor").await.unwrap().unwrap().vendor,
            Vendor::Sandbox
        );
        sqlx::query("UPDATE tasks SET vendor = 'acme' WHERE id = 'task-vendor'")
            .execute(db.writer())
            .await
            .unwrap();
        let err = store.get("task-vendor").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "tasks row task-vendor: unknown vendor `acme`"
        );
    }

    /// The engine's claim leaves a bad row out (logged) instead of failing the whole batch.
    #[tokio::test]
    async fn claiming_leaves_a_bad_row_out_and_takes_the_rest() {
        let (_dir, db) = db().await;
        let a = user(&db, "13000000032", 0).await;
        let store = TaskStore::new(db.clone());
        insert(&db, a, "task-ok", "PENDING", "{}").await;
        insert(&db, a, "task-broken", "PENDING", "{not json").await;
        let claimed = store.claim_due("me", 10, 60_000).await.unwrap();
        let ids: Vec<&str> = claimed.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["task-ok"]);
    }
}
