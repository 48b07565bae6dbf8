//! Channels managed from the console (admins): `GET/POST /api/admin/channels`,
//! `PATCH/DELETE /api/admin/channels/{id}` and `POST /api/admin/channels/{id}/test` (the smallest
//! call that proves the channel works: latency, or the vendor's error). Definitions are checked
//! against the catalog exactly like `llmage admin channel add`; the router's snapshot is reloaded
//! at once (other processes within a second). Vendor keys are stored sealed and only ever shown
//! masked.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::admin_api::AdminUser;
use super::extract::{ApiPath, JsonBody};
use super::schema::ChannelBody;
use crate::admin::{ChannelArgs, checked_channel_in};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::channels::{Channel, ModelRoute};
use crate::providers::probe;

fn channel_json(c: &Channel, now: i64) -> Value {
    let cooling = c.cooling(now);
    let mapping: BTreeMap<&str, &str> = c
        .models
        .iter()
        .filter(|m| m.model != m.upstream)
        .map(|m| (m.model.as_str(), m.upstream.as_str()))
        .collect();
    json!({
        "id": c.id,
        "name": c.name,
        "vendor": c.vendor.as_str(),
        "base_url": c.base_url,
        "key": c.api_key.masked(),
        "models": c.models.iter().map(|m| m.model.as_str()).collect::<Vec<_>>(),
        "mapping": mapping,
        "enabled": c.enabled,
        "priority": c.priority,
        "weight": c.weight,
        "max_concurrency": c.max_concurrency,
        "rpm": c.rpm,
        "price_in": c.price_in,
        "price_out": c.price_out,
        "healthy": c.enabled && !cooling,
        "cooling_until": c.cooling_until.filter(|_| cooling).map(|t| t / 1000),
        "cooling_reason": c.cooling_reason.as_ref().filter(|_| cooling),
    })
}

/// The body as the typed channel fields (a clear 400 for a wrong type).
fn body_of(body: Value) -> Result<ChannelBody, ApiError> {
    serde_json::from_value(body).map_err(|e| ApiError::InvalidParameter(format!("channel: {e}")))
}

/// `model` / `model=upstream` specs, with `mapping` applied on top.
fn model_specs(models: &[String], mapping: Option<&BTreeMap<String, String>>) -> String {
    models
        .iter()
        .map(|spec| {
            let Some(route) = ModelRoute::parse(spec) else {
                return spec.clone();
            };
            match mapping.and_then(|m| m.get(&route.model)) {
                Some(upstream) if !upstream.trim().is_empty() => {
                    format!("{}={}", route.model, upstream.trim())
                }
                _ => spec.clone(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn specs_of(c: &Channel) -> Vec<String> {
    c.models
        .iter()
        .map(|m| {
            if m.model == m.upstream {
                m.model.clone()
            } else {
                format!("{}={}", m.model, m.upstream)
            }
        })
        .collect()
}

/// Check a definition against the catalog; a 400 naming the problem.
fn checked(state: &AppState, args: ChannelArgs) -> Result<crate::channels::NewChannel, ApiError> {
    let catalog = state.channels.base_catalog();
    checked_channel_in(catalog, args).map_err(|e| {
        ApiError::InvalidParameter(
            e.to_string()
                .replace("--base-url", "base_url")
                .replace("--models", "models")
                .replace("--weight", "weight")
                .replace("--rpm", "rpm")
                .replace("--max-concurrency", "max_concurrency")
                .replace("--price-in/--price-out", "price_in/price_out"),
        )
    })
}

async fn reload(state: &AppState) -> Result<(), ApiError> {
    state.channels.reload().await.map_err(|e| {
        tracing::error!(error = %e, "channel reload failed");
        ApiError::Internal
    })?;
    Ok(())
}

async fn stored(state: &AppState, id: i64) -> Result<Channel, ApiError> {
    let all = state.channels.store().load_all().await.map_err(|e| {
        tracing::error!(error = %e, "channel load failed");
        ApiError::Internal
    })?;
    all.into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("channel {id}")))
}

fn store_error(e: crate::channels::store::ChannelError) -> ApiError {
    tracing::error!(error = %e, "channel store");
    ApiError::Internal
}

#[utoipa::path(get, path = "/api/admin/channels", tag = "admin",
    summary = "管理 · 渠道 / channels and their health",
    responses(
        (status = 200, description = "渠道列表(密钥已打码) / Channels (keys masked)", body = super::schema::ChannelList),
        (status = 403, description = "不是管理员 / Not an admin", body = super::schema::ErrorBody),
    ),
    security(("session" = [])))]
/// `GET /api/admin/channels`: every channel with its health (the key masked).
pub async fn list(State(state): State<AppState>, _admin: AdminUser) -> Json<Value> {
    let now = crate::util::clock::now_ms();
    let table = state.channels.table();
    let mut list: Vec<_> = table.all_channels().collect();
    list.sort_by_key(|c| c.id);
    let data: Vec<Value> = list.iter().map(|c| channel_json(c, now)).collect();
    Json(json!({"object": "list", "data": data}))
}

#[utoipa::path(post, path = "/api/admin/channels", tag = "admin",
    summary = "管理 · 添加渠道 / add a channel",
    request_body = ChannelBody,
    responses(
        (status = 201, description = "新渠道(密钥已打码) / The new channel (key masked)", body = super::schema::ChannelRow),
        (status = 400, description = "字段缺失或有误(错误信息中指明) / A field is missing or wrong (named in the message)", body = super::schema::ErrorBody),
        (status = 403, description = "不是管理员,或缺少 CSRF 令牌 / Not an admin, or no CSRF token", body = super::schema::ErrorBody),
    ),
    security(("session" = [], "csrf" = [])))]
/// `POST /api/admin/channels {"vendor","base_url","api_key","models",…}`.
pub async fn create(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let b = body_of(body)?;
    let need = |v: Option<String>, name: &str| {
        v.filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().to_owned())
            .ok_or_else(|| ApiError::MissingParameter(name.into()))
    };
    let models = b
        .models
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::MissingParameter("models".into()))?;
    let args = ChannelArgs {
        name: b.name.filter(|n| !n.trim().is_empty()),
        vendor: need(b.vendor, "vendor")?,
        base_url: need(b.base_url, "base_url")?,
        api_key: need(b.api_key, "api_key")?,
        models: model_specs(&models, b.mapping.as_ref()),
        priority: b.priority.unwrap_or(0),
        weight: b.weight.unwrap_or(1),
        price_in: b.price_in,
        price_out: b.price_out,
        max_concurrency: b.max_concurrency,
        rpm: b.rpm,
    };
    let channel = checked(&state, args)?;
    let store = state.channels.store();
    let id = store.add(&channel).await.map_err(store_error)?;
    if b.enabled == Some(false) {
        store.set_enabled(id, false).await.map_err(store_error)?;
    }
    reload(&state).await?;
    tracing::info!(
        channel = id,
        admin = admin.user.id,
        vendor = channel.vendor.as_str(),
        "channel added"
    );
    let c = stored(&state, id).await?;
    Ok((
        StatusCode::CREATED,
        Json(channel_json(&c, crate::util::clock::now_ms())),
    ))
}

#[utoipa::path(patch, path = "/api/admin/channels/{id}", tag = "admin",
    summary = "管理 · 修改渠道 / change a channel (also enable/disable)",
    params(("id" = i64, Path, description = "渠道 id / Channel id")),
    request_body = ChannelBody,
    responses(
        (status = 200, description = "渠道(密钥已打码) / The channel (key masked)", body = super::schema::ChannelRow),
        (status = 400, description = "字段有误(错误信息中指明) / A field is wrong (named in the message)", body = super::schema::ErrorBody),
        (status = 403, description = "不是管理员,或缺少 CSRF 令牌 / Not an admin, or no CSRF token", body = super::schema::ErrorBody),
        (status = 404, description = "渠道不存在 / No such channel", body = super::schema::ErrorBody),
    ),
    security(("session" = [], "csrf" = [])))]
/// `PATCH /api/admin/channels/{id}`: the given fields change; an absent or empty `api_key`
/// keeps the key.
pub async fn update(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let b = body_of(body)?;
    let current = stored(&state, id).await?;
    let models = b.models.unwrap_or_else(|| specs_of(&current));
    let mapping = b.mapping.as_ref();
    let args = ChannelArgs {
        name: Some(
            b.name
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| current.name.clone()),
        ),
        vendor: b
            .vendor
            .unwrap_or_else(|| current.vendor.as_str().to_owned()),
        base_url: b.base_url.unwrap_or_else(|| current.base_url.clone()),
        api_key: b
            .api_key
            .filter(|k| !k.trim().is_empty())
            .map(|k| k.trim().to_owned())
            .unwrap_or_else(|| current.api_key.expose().to_owned()),
        models: model_specs(&models, mapping),
        priority: b.priority.unwrap_or(current.priority),
        weight: b.weight.unwrap_or(current.weight),
        price_in: b.price_in.or(current.price_in),
        price_out: b.price_out.or(current.price_out),
        max_concurrency: b.max_concurrency.or(current.max_concurrency),
        rpm: b.rpm.or(current.rpm),
    };
    let channel = checked(&state, args)?;
    let store = state.channels.store();
    if !store.update(id, &channel).await.map_err(store_error)? {
        return Err(ApiError::NotFound(format!("channel {id}")));
    }
    if let Some(enabled) = b.enabled {
        store.set_enabled(id, enabled).await.map_err(store_error)?;
    }
    reload(&state).await?;
    tracing::info!(channel = id, admin = admin.user.id, "channel changed");
    let c = stored(&state, id).await?;
    Ok(Json(channel_json(&c, crate::util::clock::now_ms())))
}

#[utoipa::path(delete, path = "/api/admin/channels/{id}", tag = "admin",
    summary = "管理 · 删除渠道 / delete a channel",
    params(("id" = i64, Path, description = "渠道 id / Channel id")),
    responses(
        (status = 200, description = "已删除 / Deleted", body = super::schema::Done),
        (status = 403, description = "不是管理员,或缺少 CSRF 令牌 / Not an admin, or no CSRF token", body = super::schema::ErrorBody),
        (status = 404, description = "渠道不存在 / No such channel", body = super::schema::ErrorBody),
        (status = 409, description = "经由该渠道的任务尚未结束(可改为停用) / Tasks sent through it are not finished yet (disable it instead)", body = super::schema::ErrorBody),
    ),
    security(("session" = [], "csrf" = [])))]
/// `DELETE /api/admin/channels/{id}`: refused while tasks sent through it are unfinished.
pub async fn delete(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    let store = state.channels.store();
    let unfinished = store.unfinished_tasks(id).await.map_err(store_error)?;
    if unfinished > 0 {
        return Err(ApiError::Conflict(format!(
            "渠道 {id} 还有 {unfinished} 个未完成的任务,请先停用,任务结束后再删除 / channel {id} has {unfinished} unfinished tasks: disable it now and delete it once they end"
        )));
    }
    if !store.delete(id).await.map_err(store_error)? {
        return Err(ApiError::NotFound(format!("channel {id}")));
    }
    reload(&state).await?;
    tracing::info!(channel = id, admin = admin.user.id, "channel deleted");
    Ok(Json(json!({"ok": true})))
}

#[utoipa::path(post, path = "/api/admin/channels/{id}/test", tag = "admin",
    summary = "管理 · 测试渠道 / test a channel (latency or the vendor's error)",
    description = "文本渠道:发起一次只生成一个 token 的对话;媒体渠道:向厂商查询一个不存在的任务(不产生费用;密钥被拒时返回 401/403)。 / Chat channels: a one-token chat completion. Media channels: the vendor's task query for a task that does not exist (costs nothing; a refused key answers 401/403).",
    params(("id" = i64, Path, description = "渠道 id / Channel id")),
    responses(
        (status = 200, description = "测试结果(成功与否) / The outcome (ok or not)", body = super::schema::ChannelTest),
        (status = 403, description = "不是管理员,或缺少 CSRF 令牌 / Not an admin, or no CSRF token", body = super::schema::ErrorBody),
        (status = 404, description = "渠道不存在 / No such channel", body = super::schema::ErrorBody),
    ),
    security(("session" = [], "csrf" = [])))]
/// `POST /api/admin/channels/{id}/test` → `{"ok", "latency_ms", "error"?}`.
pub async fn test(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    let channel = stored(&state, id).await?;
    let result = probe::run(
        &state.http,
        &state.relay.chat,
        &channel,
        state.channels.base_catalog(),
    )
    .await;
    tracing::info!(
        channel = id,
        ok = result.ok,
        latency_ms = result.latency_ms,
        "channel test"
    );
    let mut v = json!({"ok": result.ok, "latency_ms": result.latency_ms});
    if let Some(error) = result.error {
        v["error"] = json!(error);
    }
    Ok(Json(v))
}
