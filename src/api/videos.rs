//! OpenAI's Videos API on the task engine (under `/v1` and `/llmage/v1`): `POST /videos` (JSON or
//! multipart, `input_reference` → the model's first-frame field, `seconds`/`size` → the model's
//! `duration`/`resolution`/`ratio`/`size`, other fields as the model's own parameters),
//! `GET /videos/{id}`, `GET /videos` (`after`, `limit`, `order`), `GET /videos/{id}/content`
//! (`variant=video|thumbnail`, byte ranges) and `DELETE /videos/{id}` (hides a finished video
//! from its owner; nothing is refunded for what was delivered). A video is a task: its id is the
//! task id, and it is the same task `GET /llmage/v1/tasks?taskid=` shows.

use axum::Json;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{ApiKey, ApiPath, ApiQuery};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::catalog::validate::{Endpoint, FieldValue, Limits, Submission, Upload, validate};
use crate::catalog::{FileKind, ParamType};
use crate::tasks::{Task, TaskStatus};

/// The video categories.
const VIDEO_CATEGORIES: [&str; 3] = ["t2v", "i2v", "ref2v"];

/// A task as OpenAI's video object.
pub fn video_object(task: &Task) -> Value {
    let (status, progress) = match task.status {
        TaskStatus::Created | TaskStatus::Pending => ("queued", 0),
        // Vendors do not report a percentage: halfway while the vendor renders.
        TaskStatus::Running => ("in_progress", 50),
        TaskStatus::Succeeded => ("completed", 100),
        TaskStatus::Failed => ("failed", 0),
    };
    let seconds = task.params.get("duration").map(|d| match d {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let error = (task.status == TaskStatus::Failed).then(|| {
        json!({
            "code": "video_generation_failed",
            "message": task.error.as_deref().unwrap_or("task failed"),
        })
    });
    json!({
        "id": task.id,
        "object": "video",
        "model": task.model,
        "status": status,
        "progress": progress,
        "created_at": task.created_at / 1000,
        "completed_at": task.finished_at.filter(|_| task.status == TaskStatus::Succeeded).map(|t| t / 1000),
        "expires_at": Value::Null,
        "seconds": seconds,
        "size": super::openai::task_size(&task.params),
        "prompt": task.params.get("prompt"),
        "remixed_from_video_id": Value::Null,
        "error": error,
    })
}

#[utoipa::path(post, path = "/llmage/v1/videos", tag = "openai",
    summary = "创建视频 / OpenAI Videos API: create a video",
    description = "JSON 或 multipart/form-data:`model`(视频模型)、`prompt`、`seconds`(→ `duration`)、`size`(`宽x高` → 模型的 `size`,或 `resolution` + `ratio`)、`input_reference`(图片文件,或 JSON 中的 `{\"image_url\"}`,即图生视频);其余字段为模型自身参数。与 `POST /llmage/v1/video/generations` 是同一种任务,价格相同。 / JSON or multipart/form-data. `model` (a video model of `GET /llmage/v1/models`), `prompt`, `seconds` (→ `duration`), `size` (`WxH` → the model's `size`, or `resolution` + `ratio`), `input_reference` (an image file, or `{\"image_url\"}` in JSON → the model's first-frame field; makes an image-to-video task); other fields are the model's own parameters. The same task as `POST /llmage/v1/video/generations`, at the same price.",
    request_body(content(
        (super::schema::VideoCreate = "application/json"),
        (super::schema::VideoCreate = "multipart/form-data"))),
    params(("Idempotency-Key" = Option<String>, Header, description = "幂等键:相同键和请求体的重试不会创建第二个任务,请求体不同则返回 422 / A retried request with the same key and body creates no second task; a different body is refused with 422", min_length = 1, max_length = 255)),
    responses(
        (status = 200, description = "视频(已排队) / The video (queued)", body = super::schema::Video),
        (status = 400, description = "参数缺失或无效 / Missing or invalid parameter", body = super::schema::OpenAiError),
        (status = 403, description = "该 Key 无权调用此模型 / The key may not call this model", body = super::schema::OpenAiError),
        (status = 404, description = "模型不存在 / Model not found", body = super::schema::OpenAiError),
        (status = 422, description = "同一 Idempotency-Key 用于不同的请求体 / Idempotency-Key reused with a different body", body = super::schema::OpenAiError),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])))]
pub async fn create(
    State(state): State<AppState>,
    ApiKey(owner): ApiKey,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let idem_key = super::tasks::idempotency_key(request.headers())?;
    let request_id = request
        .extensions()
        .get::<super::request_id::RequestId>()
        .map(|r| r.0.clone());
    let limits = Limits {
        max_file_bytes: state.config.max_upload_bytes,
    };
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    super::tasks::check_unfinished(&state, owner.user_id).await?;
    // Held until the submission is stored (or refused).
    let mut _upload = None;
    let sent = if is_multipart {
        _upload = Some(state.limits.begin_upload(owner.user_id)?);
        // The OpenAI form's fields are mapped after reading; before any file is read, a user
        // with nothing to pay with is refused (the hold at submission decides the price).
        if state.ledger.balance(owner.user_id).await? <= 0 {
            return Err(ApiError::InsufficientBalance);
        }
        let multipart = super::tasks::open_multipart(request, &state).await?;
        super::tasks::read_multipart(
            multipart,
            limits,
            None,
            super::tasks::FileParts::Stage(state.files.staging()),
        )
        .await?
    } else {
        super::tasks::json_submission(request, &state).await?
    };

    let mut model_id = None;
    let mut seconds = None;
    let mut size = None;
    let mut reference: Option<FieldValue> = None;
    let mut rest = Vec::new();
    for (name, value) in sent.fields {
        match name.as_str() {
            "model" => model_id = Some(text(value, "model")?),
            "seconds" => seconds = Some(value),
            "size" => size = Some(text(value, "size")?),
            "input_reference" => reference = Some(value),
            _ => rest.push((name, value)),
        }
    }
    let mut files = Vec::new();
    let mut reference_file: Option<Upload> = None;
    for (name, upload) in sent.files {
        if name == "input_reference" {
            reference_file = Some(upload);
        } else {
            files.push((name, upload));
        }
    }
    let model_id = model_id
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::MissingParameter("model".into()))?;
    let table = state.channels.table();
    let model = table
        .catalog
        .get(&model_id)
        .cloned()
        .ok_or_else(|| ApiError::ModelNotFound(model_id.clone()))?;
    let has_reference = reference.is_some() || reference_file.is_some();
    let category = if has_reference {
        ["i2v", "ref2v"].into_iter().find(|c| model.serves(c))
    } else {
        Some("t2v").filter(|c| model.serves(c))
    }
    .ok_or_else(|| {
        ApiError::InvalidParameter(if has_reference {
            format!(
                "model {model_id} does not take input_reference (it serves: {})",
                model.category_list()
            )
        } else if VIDEO_CATEGORIES.iter().any(|c| model.serves(c)) {
            format!(
                "model {model_id} needs input_reference (it serves: {})",
                model.category_list()
            )
        } else {
            format!(
                "model {model_id} does not make videos (it serves: {})",
                model.category_list()
            )
        })
    })?;
    let table_of = model.category(category).ok_or(ApiError::Internal)?;

    let mut submission = Submission::default();
    submission.fields.push((
        "model".into(),
        FieldValue::Json(Value::String(model_id.clone())),
    ));
    submission.fields.push((
        "catelogid".into(),
        FieldValue::Json(Value::String(category.into())),
    ));
    if let Some(seconds) = seconds {
        let seconds = match seconds {
            FieldValue::Json(v) => v,
            FieldValue::Text(t) => Value::String(t),
        };
        let (name, value) = super::openai::map_seconds(&model_id, table_of, &seconds)?;
        submission.fields.push((name, FieldValue::Json(value)));
    }
    if let Some(size) = &size {
        for (name, value) in super::openai::map_size(&model_id, table_of, size)? {
            submission.fields.push((name, FieldValue::Json(value)));
        }
    }
    if has_reference {
        let first_frame = table_of
            .params
            .iter()
            .find(|p| {
                matches!(p.kind, ParamType::File | ParamType::Files)
                    && p.accept == Some(FileKind::Image)
            })
            .map(|p| p.name.clone())
            .ok_or_else(|| {
                ApiError::InvalidParameter(format!(
                    "model {model_id} takes no image for input_reference"
                ))
            })?;
        if let Some(upload) = reference_file {
            files.push((first_frame, upload));
        } else if let Some(value) = reference {
            submission
                .fields
                .push((first_frame, FieldValue::Json(reference_url(value)?)));
        }
    }
    submission.fields.extend(rest);
    submission.files = files;

    let checked = validate(&table.catalog, Endpoint::Video, submission, limits)?;
    super::extract::model_allowed(&owner, &checked.model.id)?;
    let task = state
        .tasks
        .submit(&table, &owner, checked, idem_key, request_id)
        .await?;
    Ok(Json(video_object(&task)))
}

/// A text field's value.
fn text(value: FieldValue, name: &str) -> Result<String, ApiError> {
    match value {
        FieldValue::Text(t) | FieldValue::Json(Value::String(t)) => Ok(t),
        FieldValue::Json(_) => Err(ApiError::InvalidParameter(format!(
            "{name} must be a string"
        ))),
    }
}

/// `input_reference` given as a value: `{"image_url": "…"}` (OpenAI's reference object), or the
/// URL / `data:` URI itself.
fn reference_url(value: FieldValue) -> Result<Value, ApiError> {
    let url = match value {
        FieldValue::Text(t) => serde_json::from_str::<Value>(&t)
            .ok()
            .and_then(|v| {
                v.get("image_url")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or(t),
        FieldValue::Json(Value::String(s)) => s,
        FieldValue::Json(v) => v
            .get("image_url")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                ApiError::InvalidParameter(
                    "input_reference must be an image file, an image URL or {\"image_url\": \"…\"}"
                        .into(),
                )
            })?,
    };
    Ok(Value::String(url))
}

/// One of the owner's video tasks.
async fn video_task(
    state: &AppState,
    owner: &crate::accounts::keys::KeyOwner,
    id: &str,
) -> Result<Task, ApiError> {
    let task = state
        .tasks
        .get(owner, id)
        .await
        .map_err(|_| ApiError::NotFound(format!("video {id}")))?;
    if VIDEO_CATEGORIES.contains(&task.category.as_str()) {
        Ok(task)
    } else {
        Err(ApiError::NotFound(format!("video {id}")))
    }
}

#[utoipa::path(get, path = "/llmage/v1/videos/{id}", tag = "openai",
    summary = "查询视频 / OpenAI Videos API: a video",
    params(("id" = String, Path, description = "视频(任务)id / The video (task) id")),
    responses(
        (status = 200, description = "视频 / The video", body = super::schema::Video),
        (status = 404, description = "该用户没有这个视频 / No such video of this user", body = super::schema::OpenAiError),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])))]
pub async fn retrieve(
    State(state): State<AppState>,
    ApiKey(owner): ApiKey,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(video_object(&video_task(&state, &owner, &id).await?)))
}

#[derive(Deserialize)]
pub struct ListQuery {
    after: Option<String>,
    limit: Option<i64>,
    order: Option<String>,
}

#[utoipa::path(get, path = "/llmage/v1/videos", tag = "openai",
    summary = "视频列表 / OpenAI Videos API: the caller's videos",
    params(
        ("after" = Option<String>, Query, description = "上一页最后一个 id / The last id of the previous page"),
        ("limit" = Option<i64>, Query, description = "每页数量 1–100(默认 20) / Page size 1–100 (default 20)", minimum = 1, maximum = 100),
        ("order" = Option<String>, Query, description = "排序:`desc`(最新在前,默认)或 `asc` / `desc` (newest first, default) or `asc`", pattern = "^(asc|desc)$"),
    ),
    responses(
        (status = 200, description = "一页视频 / A page of videos", body = super::schema::VideoList),
        (status = 400, description = "limit、order 或翻页游标无效 / Invalid limit, order or cursor", body = super::schema::OpenAiError),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])))]
pub async fn list(
    State(state): State<AppState>,
    ApiKey(owner): ApiKey,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::InvalidParameter(
            "limit must be between 1 and 100".into(),
        ));
    }
    let ascending = match q.order.as_deref() {
        None | Some("") | Some("desc") => false,
        Some("asc") => true,
        Some(_) => {
            return Err(ApiError::InvalidParameter(
                "order must be asc or desc".into(),
            ));
        }
    };
    let after = match q.after.as_deref().filter(|a| !a.is_empty()) {
        None => None,
        Some(id) => {
            let task = video_task(&state, &owner, id).await.map_err(|_| {
                ApiError::InvalidParameter(format!("after: no video {id} of yours"))
            })?;
            Some((task.created_at, task.id))
        }
    };
    let mut tasks = state
        .tasks
        .store
        .list_videos(owner.user_id, limit + 1, after, ascending)
        .await?;
    let has_more = tasks.len() as i64 > limit;
    tasks.truncate(limit as usize);
    Ok(Json(json!({
        "object": "list",
        "data": tasks.iter().map(video_object).collect::<Vec<_>>(),
        "first_id": tasks.first().map(|t| t.id.clone()),
        "last_id": tasks.last().map(|t| t.id.clone()),
        "has_more": has_more,
    })))
}

#[derive(Deserialize)]
pub struct ContentQuery {
    variant: Option<String>,
}

#[utoipa::path(get, path = "/llmage/v1/videos/{id}/content", tag = "openai",
    summary = "下载视频(或封面) / OpenAI Videos API: download a video (or its thumbnail)",
    description = "归档文件,与 `GET /idfile` 相同:支持 `ETag` 与单段 Range(206)。 / The archived file, as `GET /idfile` serves it: `ETag`, single byte ranges (206).",
    params(
        ("id" = String, Path, description = "视频(任务)id / The video (task) id"),
        ("variant" = Option<String>, Query, description = "`video`(MP4,默认)或 `thumbnail`(JPEG 封面) / `video` (MP4, default) or `thumbnail` (JPEG)", pattern = "^(video|thumbnail)$"),
    ),
    responses(
        (status = 200, description = "文件(MP4 视频,或 JPEG/PNG 缩略图) / The file (an MP4 video, or the thumbnail as JPEG or PNG)", content(
            (String = "video/mp4"), (String = "image/jpeg"), (String = "image/png"), (String = "application/octet-stream"))),
        (status = 206, description = "文件的一段字节范围 / A byte range of it", content(
            (String = "video/mp4"), (String = "image/jpeg"), (String = "image/png"), (String = "application/octet-stream"))),
        (status = 400, description = "尚未完成,或未知的 variant / Not completed, or unknown variant", body = super::schema::OpenAiError),
        (status = 404, description = "该用户没有这个视频,或没有缩略图 / No such video of this user, or no thumbnail", body = super::schema::OpenAiError),
        (status = 416, description = "请求的范围无法满足 / Range not satisfiable", body = super::schema::OpenAiError),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])))]
pub async fn content(
    State(state): State<AppState>,
    ApiKey(owner): ApiKey,
    method: Method,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ContentQuery>,
) -> Result<Response, ApiError> {
    let task = video_task(&state, &owner, &id).await?;
    let thumbnail = match q.variant.as_deref() {
        None | Some("") | Some("video") => false,
        Some("thumbnail") => true,
        Some(_) => {
            return Err(ApiError::InvalidParameter(
                "variant must be video or thumbnail".into(),
            ));
        }
    };
    if task.status != TaskStatus::Succeeded {
        return Err(ApiError::InvalidParameter(format!(
            "video {id} is not completed (status {})",
            video_object(&task)["status"].as_str().unwrap_or("")
        )));
    }
    let file = if thumbnail {
        task.result.image.clone()
    } else {
        task.result.video.clone()
    }
    .ok_or_else(|| {
        ApiError::NotFound(format!(
            "the {} of video {id}",
            if thumbnail { "thumbnail" } else { "file" }
        ))
    })?;
    super::idfile::serve(
        State(state),
        method,
        headers,
        Ok(Query(super::idfile::IdfileQuery::result(file))),
    )
    .await
}

#[utoipa::path(delete, path = "/llmage/v1/videos/{id}", tag = "openai",
    summary = "删除已完成的视频 / OpenAI Videos API: delete a finished video",
    description = "对所有者隐藏该视频(列表、查询、下载);已交付的内容不退款;进行中的视频不能删除。 / Hides the video from its owner (lists, lookups, downloads); what was delivered is not refunded. A video still in progress cannot be deleted.",
    params(("id" = String, Path, description = "视频(任务)id / The video (task) id")),
    responses(
        (status = 200, description = "已删除 / Deleted", body = super::schema::VideoDeleted),
        (status = 400, description = "仍在进行中 / Still in progress", body = super::schema::OpenAiError),
        (status = 404, description = "该用户没有这个视频 / No such video of this user", body = super::schema::OpenAiError),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    ApiKey(owner): ApiKey,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let task = video_task(&state, &owner, &id).await?;
    if !task.status.is_final() {
        return Err(ApiError::InvalidParameter(format!(
            "video {id} is still in progress; it can be deleted once it has finished"
        )));
    }
    if !state.tasks.store.hide(&id, owner.user_id).await? {
        return Err(ApiError::NotFound(format!("video {id}")));
    }
    Ok(Json(
        json!({"id": id, "object": "video.deleted", "deleted": true}),
    ))
}
