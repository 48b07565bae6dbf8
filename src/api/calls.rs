//! The call log: one row per call — chat calls from `chat_usage`, image/video tasks from
//! `tasks` — with the request id the client was answered. `GET /api/calls` (console session:
//! all the user's keys and the console itself) and `GET /llmage/v1/calls` (an API key: its own
//! calls only). Filters `from`/`to` (unix seconds), `model`, `key_id`, `status`, `kind`
//! (chat|image|video), `request_id`; newest first with a `next_cursor`; `format=csv`.
//!
//! The rows are read by [`query_calls`], the one place that knows the tables, so the money
//! rewrite can change units there alone.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::SessionUser;
use super::extract::{ApiKey, ApiQuery};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::storage::{Db, StoreError};

/// Query parameters of both endpoints.
#[derive(Deserialize, Default)]
pub struct CallsQuery {
    from: Option<i64>,
    to: Option<i64>,
    model: Option<String>,
    key_id: Option<i64>,
    status: Option<String>,
    kind: Option<String>,
    request_id: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
    format: Option<String>,
}

/// Whose calls: a user's (every key), or one key's.
#[derive(Clone, Copy)]
pub enum Scope {
    User(i64),
    Key { user_id: i64, key_id: i64 },
}

/// One row of the log.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Call {
    pub request_id: Option<String>,
    pub created_at: i64,
    pub kind: String,
    pub model: String,
    pub key_id: i64,
    pub key_name: Option<String>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    /// Units (1/10,000 credit).
    pub credits: i64,
    pub latency_ms: Option<i64>,
    pub status: String,
    pub error: Option<String>,
    pub task_id: Option<String>,
    sort: String,
}

impl Call {
    fn to_json(&self) -> Value {
        json!({
            "request_id": self.request_id, "created_at": self.created_at / 1000, "kind": self.kind,
            "model": self.model, "key_id": self.key_id, "key_name": self.key_name,
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
            "credits": crate::billing::credits_json(self.credits), "latency_ms": self.latency_ms, "status": self.status,
            "error": self.error, "task_id": self.task_id,
        })
    }

    fn csv_row(&self) -> Vec<String> {
        let opt = |v: &Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
        vec![
            self.request_id.clone().unwrap_or_default(),
            self.created_at.div_euclid(1000).to_string(),
            self.kind.clone(),
            self.model.clone(),
            self.key_id.to_string(),
            self.key_name.clone().unwrap_or_default(),
            opt(&self.prompt_tokens),
            opt(&self.completion_tokens),
            crate::billing::credits_text(self.credits),
            opt(&self.latency_ms),
            self.status.clone(),
            self.error.clone().unwrap_or_default(),
            self.task_id.clone().unwrap_or_default(),
        ]
    }
}

const CSV_HEADER: [&str; 13] = [
    "request_id",
    "created_at",
    "kind",
    "model",
    "key_id",
    "key_name",
    "prompt_tokens",
    "completion_tokens",
    "credits",
    "latency_ms",
    "status",
    "error",
    "task_id",
];

/// Chat calls and tasks as one relation with the same columns. A chat call's status comes from
/// its outcome: `ok` → SUCCEEDED, the client hanging up → STOPPED, else FAILED.
const CALLS: &str = "(\
    SELECT c.request_id AS request_id, c.created_at AS created_at, 'chat' AS kind, c.model AS model, c.key_id AS key_id, \
      c.user_id AS user_id, c.prompt_tokens AS prompt_tokens, c.completion_tokens AS completion_tokens, \
      c.credits AS credits, c.latency_ms AS latency_ms, \
      CASE WHEN c.outcome IN ('ok', 'capped') THEN 'SUCCEEDED' WHEN c.outcome IN ('client_closed', 'client_stalled') THEN 'STOPPED' ELSE 'FAILED' END AS status, \
      CASE WHEN c.outcome IN ('ok', 'capped', 'client_closed', 'client_stalled') THEN NULL ELSE c.outcome END AS error, \
      CAST(NULL AS TEXT) AS task_id, 'c' || CAST(c.id AS TEXT) AS sort \
    FROM chat_usage c \
    UNION ALL \
    SELECT t.request_id, t.created_at, CASE WHEN t.category = 't2i' THEN 'image' ELSE 'video' END, t.model, t.key_id, \
      t.user_id, CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), t.credits * 10000, \
      CASE WHEN t.finished_at IS NULL THEN NULL ELSE t.finished_at - t.created_at END, t.status, t.error, t.id, 't' || t.id \
    FROM tasks t\
    ) AS calls";

/// The rows of a scope under the filters, newest first, and the cursor of the next page.
pub async fn query_calls(
    db: &Db,
    scope: Scope,
    q: &CallsQuery,
) -> Result<(Vec<Call>, Option<String>), ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::InvalidParameter(
            "limit must be between 1 and 10000".into(),
        ));
    }
    if let Some(kind) = &q.kind
        && !matches!(kind.as_str(), "chat" | "image" | "video")
    {
        return Err(ApiError::InvalidParameter(
            "kind must be chat, image or video".into(),
        ));
    }
    let cursor = match &q.cursor {
        None => None,
        Some(c) => {
            let (at, sort) = c
                .split_once('_')
                .and_then(|(at, sort)| Some((at.parse::<i64>().ok()?, sort.to_owned())))
                .ok_or_else(|| {
                    ApiError::InvalidParameter("cursor: use next_cursor of a previous page".into())
                })?;
            Some((at, sort))
        }
    };
    let (user_id, key_id) = match scope {
        Scope::User(user_id) => (user_id, q.key_id),
        Scope::Key { user_id, key_id } => (user_id, Some(key_id)),
    };
    let seconds_ms = |s: Option<i64>| s.map(|v| v.saturating_mul(1000));
    let sql = format!(
        "SELECT calls.*, k.name AS key_name FROM {CALLS} LEFT JOIN api_keys k ON k.id = calls.key_id \
         WHERE calls.user_id = $1 AND ($2 IS NULL OR calls.key_id = $2) \
         AND ($3 IS NULL OR calls.created_at >= $3) AND ($4 IS NULL OR calls.created_at < $4) \
         AND ($5 IS NULL OR calls.model = $5) AND ($6 IS NULL OR calls.status = $6) \
         AND ($7 IS NULL OR calls.kind = $7) AND ($8 IS NULL OR calls.request_id = $8) \
         AND ($9 IS NULL OR calls.created_at < $9 OR (calls.created_at = $9 AND calls.sort < $10)) \
         ORDER BY calls.created_at DESC, calls.sort DESC LIMIT $11"
    );
    let mut calls: Vec<Call> = sqlx::query_as(&sql)
        .bind(user_id)
        .bind(key_id)
        .bind(seconds_ms(q.from))
        .bind(seconds_ms(q.to))
        .bind(q.model.as_deref())
        .bind(q.status.as_deref())
        .bind(q.kind.as_deref())
        .bind(q.request_id.as_deref())
        .bind(cursor.as_ref().map(|c| c.0))
        .bind(cursor.as_ref().map_or("", |c| c.1.as_str()))
        .bind(limit + 1)
        .fetch_all(db.reader())
        .await
        .map_err(StoreError::from)?;
    let next = if calls.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
        calls.truncate(usize::try_from(limit).unwrap_or(0));
        calls.last().map(|c| format!("{}_{}", c.created_at, c.sort))
    } else {
        None
    };
    Ok((calls, next))
}

async fn answer(state: &AppState, scope: Scope, q: CallsQuery) -> Result<Response, ApiError> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::InvalidParameter(format!(
                "format must be json or csv (got {other})"
            )));
        }
    };
    let (calls, next) = query_calls(&state.db, scope, &q).await?;
    if csv {
        let rows: Vec<Vec<String>> = calls.iter().map(Call::csv_row).collect();
        return super::finance::csv_response("calls", &CSV_HEADER, &rows);
    }
    let data: Vec<Value> = calls.iter().map(Call::to_json).collect();
    Ok(Json(json!({"object": "list", "data": data, "next_cursor": next})).into_response())
}

#[utoipa::path(get, path = "/api/calls", tag = "finance",
    summary = "调用日志 / the call log (every key of the user)",
    params(
        ("from" = Option<i64>, Query, description = "起始时间(Unix 秒,含) / From (unix seconds, inclusive)"),
        ("to" = Option<i64>, Query, description = "结束时间(Unix 秒,不含) / To (unix seconds, exclusive)"),
        ("model" = Option<String>, Query, description = "模型 id / Model id"),
        ("key_id" = Option<i64>, Query, description = "API Key id(控制台自身的调用为负的用户 id) / Key id (the console's own calls have the negative user id)"),
        ("status" = Option<String>, Query, description = "状态 / status: SUCCEEDED, FAILED, STOPPED, CREATED, PENDING, RUNNING"),
        ("kind" = Option<String>, Query, description = "类型 / kind: chat, image or video"),
        ("request_id" = Option<String>, Query, description = "按 X-Request-Id 查询一次调用 / One call by its X-Request-Id"),
        ("cursor" = Option<String>, Query, description = "上一页的 next_cursor / next_cursor of the previous page"),
        ("limit" = Option<i64>, Query, description = "行数 1–10000(默认 100) / Rows, 1–10000 (default 100)", minimum = 1, maximum = 10000),
        ("format" = Option<String>, Query, description = "格式 / format: json (default) or csv"),
    ),
    responses(
        (status = 200, description = "调用记录,最新的在前 / Calls, newest first", content(
            (super::schema::CallPage = "application/json"), (String = "text/csv"))),
        (status = 400, description = "筛选条件有误 / Bad filter", body = super::schema::ErrorBody),
    ),
    security(("session" = [])))]
/// `GET /api/calls`.
pub async fn console_calls(
    State(state): State<AppState>,
    who: SessionUser,
    ApiQuery(q): ApiQuery<CallsQuery>,
) -> Result<Response, ApiError> {
    answer(&state, Scope::User(who.user.id), q).await
}

#[utoipa::path(get, path = "/llmage/v1/calls", tag = "gateway",
    summary = "调用日志 / the calling key's own calls",
    params(
        ("from" = Option<i64>, Query, description = "起始时间(Unix 秒,含) / From (unix seconds, inclusive)"),
        ("to" = Option<i64>, Query, description = "结束时间(Unix 秒,不含) / To (unix seconds, exclusive)"),
        ("model" = Option<String>, Query, description = "模型 id / Model id"),
        ("status" = Option<String>, Query, description = "状态 / status: SUCCEEDED, FAILED, STOPPED, CREATED, PENDING, RUNNING"),
        ("kind" = Option<String>, Query, description = "类型 / kind: chat, image or video"),
        ("request_id" = Option<String>, Query, description = "按 X-Request-Id 查询一次调用 / One call by its X-Request-Id"),
        ("cursor" = Option<String>, Query, description = "上一页的 next_cursor / next_cursor of the previous page"),
        ("limit" = Option<i64>, Query, description = "行数 1–10000(默认 100) / Rows, 1–10000 (default 100)", minimum = 1, maximum = 10000),
        ("format" = Option<String>, Query, description = "格式 / format: json (default) or csv"),
    ),
    responses(
        (status = 200, description = "调用记录,最新的在前 / Calls, newest first", content(
            (super::schema::CallPage = "application/json"), (String = "text/csv"))),
        (status = 400, description = "筛选条件有误 / Bad filter", body = super::schema::ErrorBody),
        (status = 401, description = "API Key 无效 / Invalid API key", body = super::schema::ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])))]
/// `GET /llmage/v1/calls`.
pub async fn key_calls(
    State(state): State<AppState>,
    ApiKey(owner): ApiKey,
    ApiQuery(q): ApiQuery<CallsQuery>,
) -> Result<Response, ApiError> {
    let scope = Scope::Key {
        user_id: owner.user_id,
        key_id: owner.key_id,
    };
    answer(&state, scope, q).await
}
