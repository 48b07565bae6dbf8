//! Image and video tasks: `POST /llmage/v1/image/generations`, `POST /llmage/v1/video/generations`
//! (JSON or multipart/form-data, optional `Idempotency-Key`), and `GET /llmage/v1/tasks`
//! (`?taskid=` for one task, else the caller's tasks newest first).
//!
//! Before a multipart body's file parts are read, the key is authenticated, the user's unfinished
//! tasks and uploads in flight are counted against their caps (429 with `Retry-After`), and the
//! plain fields that came first are checked: the model, its parameters and the balance for the
//! quoted price — so a user who cannot pay never makes us read their files.

use super::extract::ApiQuery;
use axum::Json;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, header};
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{ApiKey, JsonBody};
use crate::accounts::keys::KeyOwner;
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::catalog::validate::{
    Endpoint, FieldValue, Limits, Submission, Upload, validate, validate_fields,
};
use crate::storage::staging::{Staging, StagingError};

/// Most parts a form may have.
const MAX_PARTS: usize = 64;
/// Longest text part.
const MAX_TEXT_PART: usize = 64 * 1024;

#[utoipa::path(post, path = "/llmage/v1/image/generations", tag = "tasks",
    summary = "文生图 / create an image task",
    description = "JSON 或 multipart/form-data;参数因模型而异,见各 `params.*` 模式(每个模型和分类一个,来自模型目录)。立即返回;用 `GET /llmage/v1/tasks?taskid=` 查询结果。 / JSON or multipart/form-data; the parameters depend on the model: see the `params.*` schemas (one per model and category, from the catalog). Answers at once; poll `GET /llmage/v1/tasks?taskid=`.",
    request_body(content(
        (super::schema::TaskParams = "application/json"),
        (super::schema::TaskParams = "multipart/form-data"))),
    params(("Idempotency-Key" = Option<String>, Header, description = "幂等键:相同键的重试提交不会创建第二个任务 / A retried submission with the same key creates no second task", min_length = 1, max_length = 255)),
    responses(
        (status = 200, description = "任务已创建 / Task created", body = super::schema::TaskCreated),
        (status = 400, description = "参数缺失或无效 / Missing or invalid parameter", body = super::schema::ErrorBody),
        (status = 403, description = "该 Key 无权调用此模型 / The key may not call this model", body = super::schema::ErrorBody),
        (status = 404, description = "模型不存在 / Model not found", body = super::schema::ErrorBody),
        (status = 422, description = "同一 Idempotency-Key 用于不同的请求体 / Idempotency-Key reused with a different request body", body = super::schema::ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])))]
pub async fn image(
    state: State<AppState>,
    key: ApiKey,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    submit(state, key, request, Endpoint::Image).await
}

#[utoipa::path(post, path = "/llmage/v1/video/generations", tag = "tasks",
    summary = "文生视频、图生视频、参考生视频 / create a video task",
    description = "JSON 或 multipart/form-data;参数因模型而异,见各 `params.*` 模式(每个模型和分类一个,来自模型目录)。立即返回;用 `GET /llmage/v1/tasks?taskid=` 查询结果。 / JSON or multipart/form-data; the parameters depend on the model: see the `params.*` schemas (one per model and category, from the catalog). Answers at once; poll `GET /llmage/v1/tasks?taskid=`.",
    request_body(content(
        (super::schema::TaskParams = "application/json"),
        (super::schema::TaskParams = "multipart/form-data"))),
    params(("Idempotency-Key" = Option<String>, Header, description = "幂等键:相同键的重试提交不会创建第二个任务 / A retried submission with the same key creates no second task", min_length = 1, max_length = 255)),
    responses(
        (status = 200, description = "任务已创建 / Task created", body = super::schema::TaskCreated),
        (status = 400, description = "参数缺失或无效 / Missing or invalid parameter", body = super::schema::ErrorBody),
        (status = 403, description = "该 Key 无权调用此模型 / The key may not call this model", body = super::schema::ErrorBody),
        (status = 404, description = "模型不存在 / Model not found", body = super::schema::ErrorBody),
        (status = 422, description = "同一 Idempotency-Key 用于不同的请求体 / Idempotency-Key reused with a different request body", body = super::schema::ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])))]
pub async fn video(
    state: State<AppState>,
    key: ApiKey,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    submit(state, key, request, Endpoint::Video).await
}

async fn submit(
    State(state): State<AppState>,
    ApiKey(owner): ApiKey,
    request: Request,
    endpoint: Endpoint,
) -> Result<Json<Value>, ApiError> {
    let request_id = request
        .extensions()
        .get::<super::request_id::RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let idem_key = idempotency_key(request.headers())?;
    let limits = Limits {
        max_file_bytes: state.config.max_upload_bytes,
    };
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    check_unfinished(&state, owner.user_id).await?;
    // Held until the submission is stored (or refused).
    let mut _upload = None;
    let submission = if is_multipart {
        _upload = Some(state.limits.begin_upload(owner.user_id)?);
        let multipart = open_multipart(request, &state).await?;
        let gate = BeforeFiles {
            state: &state,
            owner: &owner,
            endpoint,
            limits,
        };
        read_multipart(
            multipart,
            limits,
            Some(gate),
            FileParts::Stage(state.files.staging()),
        )
        .await?
    } else {
        json_submission(request, &state).await?
    };
    let table = state.channels.table();
    let checked = validate(&table.catalog, endpoint, submission, limits)?;
    super::extract::model_allowed(&owner, &checked.model.id)?;
    // A key with a monthly spend limit: its spend this month plus this task's price must fit.
    if owner.monthly_limit.is_some() {
        let hold = crate::billing::media::quote(&checked.model, &checked.category, &checked.params);
        let hold = crate::billing::units(hold.credits);
        crate::accounts::spend::check_monthly_limit(&state.db, &owner, hold).await?;
    }
    let task = state
        .tasks
        .submit(&table, &owner, checked, idem_key, Some(request_id))
        .await?;
    Ok(Json(
        json!({"taskid": task.id, "status": task.status.as_str()}),
    ))
}

pub(super) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::InvalidParameter("Idempotency-Key must be printable ASCII".into()))?
        .trim();
    if key.is_empty() || key.len() > 255 {
        return Err(ApiError::InvalidParameter(
            "Idempotency-Key must be 1 to 255 characters".into(),
        ));
    }
    Ok(Some(key.to_owned()))
}

/// 429 when the user already has `limits.unfinished_tasks_per_user` unfinished tasks.
pub(super) async fn check_unfinished(state: &AppState, user_id: i64) -> Result<(), ApiError> {
    let cap = i64::from(state.config.limits.unfinished_tasks_per_user);
    if cap > 0 && state.tasks.store.unfinished_count(user_id, cap).await? >= cap {
        metrics::counter!("llmage_rate_limited_total", "limit" => "unfinished_tasks").increment(1);
        return Err(ApiError::RateLimited {
            retry_after_secs: 30,
        });
    }
    Ok(())
}

/// What is checked when the first file part arrives, before its bytes are read.
pub(super) struct BeforeFiles<'a> {
    state: &'a AppState,
    owner: &'a KeyOwner,
    endpoint: Endpoint,
    limits: Limits,
}

impl BeforeFiles<'_> {
    /// The model and plain fields so far are valid, the key may call the model, and the balance
    /// covers the price quoted from them (the hold at submission still decides).
    async fn check(&self, fields: &[(String, FieldValue)]) -> Result<(), ApiError> {
        if !fields.iter().any(|(name, _)| name == "model") {
            return Err(ApiError::InvalidParameter(
                "model and catelogid must come before the file parts of a multipart form".into(),
            ));
        }
        let table = self.state.channels.table();
        let checked = validate_fields(&table.catalog, self.endpoint, fields.to_vec(), self.limits)?;
        super::extract::model_allowed(self.owner, &checked.model.id)?;
        let quote =
            crate::billing::media::quote(&checked.model, &checked.category, &checked.params);
        if quote.credits > 0
            && self.state.ledger.balance(self.owner.user_id).await?
                < crate::billing::units(quote.credits)
        {
            return Err(ApiError::InsufficientBalance);
        }
        Ok(())
    }
}

/// A multipart/form-data request's form (400 naming what is malformed).
pub(super) async fn open_multipart(
    request: Request,
    state: &AppState,
) -> Result<Multipart, ApiError> {
    Multipart::from_request(super::paced_body::paced(request), state)
        .await
        .map_err(|e| {
            ApiError::InvalidParameter(format!(
                "malformed multipart/form-data body: {}",
                e.body_text()
            ))
        })
}

/// A JSON request's object as a submission's fields.
pub(super) async fn json_submission(
    request: Request,
    state: &AppState,
) -> Result<Submission, ApiError> {
    let JsonBody(body) = JsonBody::from_request(request, state).await?;
    let Value::Object(fields) = body else {
        return Err(ApiError::InvalidJson("expected a JSON object".into()));
    };
    Ok(Submission {
        fields: fields
            .into_iter()
            .map(|(k, v)| (k, FieldValue::Json(v)))
            .collect(),
        files: Vec::new(),
    })
}

/// What becomes of a form's file parts.
pub(super) enum FileParts<'a> {
    /// Staged on disk as they arrive (never whole in memory) for the submission.
    Stage(&'a Staging),
    /// Read and dropped (a quote needs only the plain fields).
    Discard,
}

/// A form's parts as a submission: text parts in memory (each at most [`MAX_TEXT_PART`]),
/// file parts per `files`, each checked against its size limit as its bytes arrive. `gate`
/// runs when the first file part arrives, before any of its bytes are read.
pub(super) async fn read_multipart(
    mut multipart: Multipart,
    limits: Limits,
    gate: Option<BeforeFiles<'_>>,
    files: FileParts<'_>,
) -> Result<Submission, ApiError> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::InvalidParameter(format!(
            "malformed multipart/form-data body: {}",
            e.body_text()
        ))
    };
    let mut submission = Submission::default();
    let mut parts = 0;
    let mut gate = gate;
    while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
        parts += 1;
        if parts > MAX_PARTS {
            return Err(ApiError::InvalidParameter(format!(
                "too many form parts (at most {MAX_PARTS})"
            )));
        }
        let name = field.name().unwrap_or("").to_owned();
        if name.is_empty() {
            return Err(ApiError::InvalidParameter(
                "every form part needs a name".into(),
            ));
        }
        let Some(filename) = field.file_name().map(str::to_owned) else {
            let mut data = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(bad)? {
                if data.len() + chunk.len() > MAX_TEXT_PART {
                    return Err(ApiError::InvalidParameter(format!(
                        "{name} is too long (at most {MAX_TEXT_PART} bytes)"
                    )));
                }
                data.extend_from_slice(&chunk);
            }
            let text = String::from_utf8(data).map_err(|_| {
                ApiError::InvalidParameter(format!("{name} is not valid UTF-8 text"))
            })?;
            submission.fields.push((name, FieldValue::Text(text)));
            continue;
        };
        if let Some(gate) = gate.take() {
            gate.check(&submission.fields).await?;
        }
        let too_large = || {
            ApiError::InvalidParameter(format!(
                "{name} is too large (at most {} bytes per file)",
                limits.max_file_bytes
            ))
        };
        match files {
            FileParts::Discard => {
                let mut size = 0;
                while let Some(chunk) = field.chunk().await.map_err(bad)? {
                    size += chunk.len();
                    if size > limits.max_file_bytes {
                        return Err(too_large());
                    }
                }
            }
            FileParts::Stage(staging) => {
                let mut writer = staging
                    .writer(limits.max_file_bytes as u64)
                    .await
                    .map_err(staging_error)?;
                while let Some(chunk) = field.chunk().await.map_err(bad)? {
                    writer.write(&chunk).await.map_err(|e| match e {
                        StagingError::TooLarge { .. } => too_large(),
                        e => staging_error(e),
                    })?;
                }
                let file = writer.finish().await.map_err(staging_error)?;
                submission.files.push((
                    name,
                    Upload {
                        file,
                        filename: Some(filename),
                    },
                ));
            }
        }
    }
    Ok(submission)
}

/// A staging failure is ours (disk), not the client's.
fn staging_error(e: StagingError) -> ApiError {
    tracing::error!(error = %e, "cannot stage an uploaded file");
    ApiError::Unavailable
}

#[derive(Deserialize)]
pub struct TasksQuery {
    taskid: Option<String>,
    limit: Option<i64>,
    /// The `next` cursor of the previous page.
    after: Option<String>,
}

/// Absolute base for result links: the configured public URL, else the request's Host.
pub fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.public_base_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| valid_host(h))
        .unwrap_or(&state.config.listen);
    format!("http://{host}")
}

fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

#[utoipa::path(get, path = "/llmage/v1/tasks", tag = "tasks",
    summary = "查询任务 / a task, or a page of the caller's tasks",
    params(
        ("taskid" = Option<String>, Query, description = "查询单个任务;不填则按时间倒序返回一页任务 / One task; without it a page of tasks, newest first"),
        ("limit" = Option<i64>, Query, description = "每页数量 1–100(默认 20) / Page size 1–100 (default 20)", minimum = 1, maximum = 100),
        ("after" = Option<String>, Query, description = "上一页的 `next` / The `next` of the previous page", pattern = "^[0-9]{1,18}-[0-9a-f]*$"),
    ),
    responses(
        (status = 200, description = "任务(带 `taskid` 时)或一页任务 / The task (with `taskid`) or a page", content(
            (super::schema::TaskOrList = "application/json"))),
        (status = 400, description = "limit 或翻页游标无效 / Invalid limit or cursor", body = super::schema::ErrorBody),
        (status = 404, description = "该用户没有这个任务 / No such task of this user", body = super::schema::ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])))]
pub async fn tasks(
    State(state): State<AppState>,
    ApiKey(owner): ApiKey,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<TasksQuery>,
) -> Result<Json<Value>, ApiError> {
    let base = base_url(&state, &headers);
    if let Some(id) = q.taskid.filter(|t| !t.is_empty()) {
        let task = state.tasks.get(&owner, &id).await?;
        return Ok(Json(task.to_json(&base)));
    }
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::InvalidParameter(
            "limit must be between 1 and 100".into(),
        ));
    }
    let after = match q.after.as_deref().filter(|a| !a.is_empty()) {
        None => None,
        Some(cursor) => {
            let parsed = cursor
                .split_once('-')
                .and_then(|(t, id)| Some((t.parse::<i64>().ok()?, id.to_owned())));
            Some(parsed.ok_or_else(|| {
                ApiError::InvalidParameter(
                    "after must be the `next` value of a previous page".into(),
                )
            })?)
        }
    };
    let mut tasks = state
        .tasks
        .store
        .list(owner.user_id, limit + 1, after)
        .await?;
    let has_more = tasks.len() as i64 > limit;
    tasks.truncate(limit as usize);
    let next = tasks
        .last()
        .filter(|_| has_more)
        .map(|t| format!("{}-{}", t.created_at, t.id));
    Ok(Json(json!({
        "object": "list",
        "data": tasks.iter().map(|t| t.to_json(&base)).collect::<Vec<_>>(),
        "has_more": has_more,
        "next": next,
    })))
}
