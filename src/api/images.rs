//! `POST /v1/images/generations` (and under `/llmage/v1`): OpenAI's Images API on the task
//! engine. Each of the `n` images is one task of the seed's kind (same validation, same price,
//! same refunds); the handler waits for them, bounded by `images_wait_secs`, and answers
//! OpenAI's `{"created", "data": [{"url" | "b64_json"}]}` with our archived `/idfile` links.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use base64::Engine;
use serde_json::{Value, json};

use super::extract::{ApiKey, JsonBody};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::catalog::validate::{Endpoint, FieldValue, Limits, Submission, validate};
use crate::tasks::{Task, TaskStatus, file_url};

/// How often the handler looks at its tasks while it waits.
const LOOK_EVERY: Duration = Duration::from_millis(200);

#[utoipa::path(post, path = "/llmage/v1/images/generations", tag = "openai",
    summary = "生成图片(等待任务完成) / OpenAI Images API: generate images (waits for the tasks)",
    description = "`model`、`prompt`、`n`(不超过模型的 `max_images_per_request`,每张一个任务)、`size`(映射到模型的尺寸表)、`response_format` 为 `url`(默认)或 `b64_json`;其余字段为模型自身参数。扣费与 `POST /llmage/v1/image/generations` 完全相同;超过 `images_wait_secs`(默认 120 秒)返回 504 并给出任务 id,任务继续执行。 / `model`, `prompt`, `n` (up to the model's `max_images_per_request`; one task each), `size` (mapped onto the model's table; `auto` or absent for models without one), `response_format` `url` (default) or `b64_json`; other fields are the model's own parameters (`negative_prompt`, …). Charged exactly as `POST /llmage/v1/image/generations`. Past `images_wait_secs` (default 120) answers 504 naming the task ids; the tasks go on (`GET /llmage/v1/tasks?taskid=`).",
    request_body = super::schema::ImagesRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "幂等键:相同键和请求体的重试不会创建第二个任务,请求体不同则返回 422 / A retried request with the same key and body creates no second task; a different body is refused with 422", min_length = 1, max_length = 255)),
    responses(
        (status = 200, description = "生成的图片 / The images", body = super::schema::ImagesResponse),
        (status = 400, description = "参数缺失或无效 / Missing or invalid parameter", body = super::schema::OpenAiError),
        (status = 403, description = "该 Key 无权调用此模型 / The key may not call this model", body = super::schema::OpenAiError),
        (status = 404, description = "模型不存在 / Model not found", body = super::schema::OpenAiError),
        (status = 422, description = "同一 Idempotency-Key 用于不同的请求体 / Idempotency-Key reused with a different body", body = super::schema::OpenAiError),
        (status = 502, description = "有任务失败(已退款) / A task failed (and was refunded)", body = super::schema::OpenAiError),
        (status = 504, description = "等待结束时仍在运行;错误信息中列出这些任务 / Still running after the wait; the message names the tasks", body = super::schema::OpenAiError),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])))]
pub async fn generate(
    State(state): State<AppState>,
    ApiKey(owner): ApiKey,
    request_id: Option<axum::Extension<super::request_id::RequestId>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let request_id = request_id.map(|axum::Extension(r)| r.0);
    let idem_key = super::tasks::idempotency_key(&headers)?;
    let Value::Object(mut fields) = body else {
        return Err(ApiError::InvalidJson("expected a JSON object".into()));
    };
    let model_id = match fields.remove("model") {
        Some(Value::String(m)) if !m.is_empty() => m,
        Some(_) => return Err(ApiError::InvalidParameter("model must be a string".into())),
        None => return Err(ApiError::MissingParameter("model".into())),
    };
    let n = match fields.remove("n") {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_u64()
            .filter(|n| *n >= 1)
            .ok_or_else(|| ApiError::InvalidParameter("n must be a positive integer".into()))?,
    };
    let b64 = match fields.remove("response_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(f)) if f == "url" => false,
        Some(Value::String(f)) if f == "b64_json" => true,
        Some(_) => {
            return Err(ApiError::InvalidParameter(
                "response_format must be url or b64_json".into(),
            ));
        }
    };
    let size = match fields.remove("size") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(ApiError::InvalidParameter("size must be a string".into())),
    };
    // OpenAI's end-user tag has no counterpart here.
    fields.remove("user");

    let table = state.channels.table();
    let model = table
        .catalog
        .get(&model_id)
        .cloned()
        .ok_or_else(|| ApiError::ModelNotFound(model_id.clone()))?;
    let category = model.category("t2i").ok_or_else(|| {
        ApiError::InvalidParameter(format!(
            "model {model_id} does not make images (it serves: {})",
            model.category_list()
        ))
    })?;
    let most = u64::from(model.max_images_per_request.unwrap_or(1));
    if n > most {
        return Err(ApiError::InvalidParameter(format!(
            "n must be at most {most} for model {model_id}"
        )));
    }
    let mut submission = Submission::default();
    submission.fields.push((
        "model".into(),
        FieldValue::Json(Value::String(model_id.clone())),
    ));
    submission.fields.push((
        "catelogid".into(),
        FieldValue::Json(Value::String("t2i".into())),
    ));
    if let Some(size) = &size {
        for (name, value) in super::openai::map_size(&model_id, category, size)? {
            submission.fields.push((name, FieldValue::Json(value)));
        }
    }
    for (name, value) in fields {
        submission.fields.push((name, FieldValue::Json(value)));
    }
    let limits = Limits {
        max_file_bytes: state.config.max_upload_bytes,
    };
    let checked = validate(&table.catalog, Endpoint::Image, submission, limits)?;
    super::extract::model_allowed(&owner, &checked.model.id)?;
    // All n or none: a balance that cannot pay for every image is refused before the first task.
    let quote = crate::billing::media::quote(&checked.model, &checked.category, &checked.params);
    let total = quote
        .credits
        .saturating_mul(i64::try_from(n).unwrap_or(i64::MAX));
    if total > 0 && state.ledger.balance(owner.user_id).await? < total {
        return Err(ApiError::InsufficientBalance);
    }
    if let Some(key) = &idem_key {
        same_count(&state, owner.user_id, key, n).await?;
    }
    let mut ids = Vec::new();
    for i in 0..n {
        // One key per image: the first image keeps the client's key, so a retry finds them all.
        let key = idem_key.as_ref().map(|k| {
            if i == 0 {
                k.clone()
            } else {
                format!("{k}#{i}")
            }
        });
        let task = state
            .tasks
            .submit(&table, &owner, checked.clone(), key, request_id.clone())
            .await?;
        ids.push(task.id);
    }

    let tasks = wait(&state, &ids).await?;
    let base = super::tasks::base_url(&state, &headers);
    let mut data = Vec::with_capacity(tasks.len());
    for task in &tasks {
        let file_id = task.result.image.as_deref().ok_or(ApiError::Internal)?;
        data.push(if b64 {
            let file = state.files.meta(file_id).await?.ok_or(ApiError::Internal)?;
            let bytes = state.files.read(&file).await?;
            json!({"b64_json": base64::engine::general_purpose::STANDARD.encode(&bytes)})
        } else {
            json!({"url": file_url(&base, file_id)})
        });
    }
    let created = tasks.iter().map(|t| t.created_at).min().unwrap_or(0) / 1000;
    Ok(Json(json!({"created": created, "data": data})))
}

/// A key already used must have made exactly `n` tasks (`key`, `key#1` … `key#(n-1)`): another
/// `n` is another request (each task's own body is compared by the task service).
async fn same_count(state: &AppState, user_id: i64, key: &str, n: u64) -> Result<(), ApiError> {
    let store = &state.tasks.store;
    if store.by_idem_key(user_id, key).await?.is_none() {
        return Ok(());
    }
    let last = n == 1
        || store
            .by_idem_key(user_id, &format!("{key}#{}", n - 1))
            .await?
            .is_some();
    let beyond = store
        .by_idem_key(user_id, &format!("{key}#{n}"))
        .await?
        .is_some();
    if last && !beyond {
        Ok(())
    } else {
        Err(ApiError::IdempotencyKeyReused(key.to_owned()))
    }
}

/// Wait until every task is final (the engine, here or on another node, drives them). A failed
/// task fails the request (its credits are refunded by the engine); past the configured wait the
/// answer is 504 naming the tasks, which go on.
async fn wait(state: &AppState, ids: &[String]) -> Result<Vec<Task>, ApiError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(state.config.images_wait_secs);
    loop {
        let mut done = Vec::with_capacity(ids.len());
        for id in ids {
            let task = state.tasks.store.get(id).await?.ok_or(ApiError::Internal)?;
            match task.status {
                TaskStatus::Failed => {
                    return Err(ApiError::UpstreamFailed(format!(
                        "image task {id} failed: {}",
                        task.error.as_deref().unwrap_or("unknown error")
                    )));
                }
                TaskStatus::Succeeded => done.push(task),
                TaskStatus::Created | TaskStatus::Pending | TaskStatus::Running => break,
            }
        }
        if done.len() == ids.len() {
            return Ok(done);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::Timeout(format!(
                "image task {} still running after {} s; it goes on: GET /llmage/v1/tasks?taskid=<id>",
                ids.join(", "),
                state.config.images_wait_secs
            )));
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
}
