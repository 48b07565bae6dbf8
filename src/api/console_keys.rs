//! API keys of the logged-in user (console session): `POST /api/keys` creates one and shows it
//! once ("复制apikey"), `GET /api/keys` lists them masked, `DELETE /api/keys/{id}` revokes one
//! (refused by every process within a second). A key may carry an expiry and allow-lists of
//! models and client addresses, and a monthly spend limit. `PATCH /api/keys/{id}` changes the
//! name, the limits, or switches a key off and on; `POST /api/keys/{id}/remove` takes a revoked
//! key off the list. The list shows each key's spend this month and its last call.

use super::extract::ApiPath;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::auth::SessionUser;
use super::extract::JsonBody;
use crate::accounts::keys::{KeySummary, KeyUpdate};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::util::clock::now_ms;

fn string_list(body: &Value, field: &str) -> Result<Option<Vec<String>>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        ApiError::InvalidParameter(format!("{field} must be a list of strings"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        _ => Err(ApiError::InvalidParameter(format!(
            "{field} must be a non-empty list of strings"
        ))),
    }
}

#[utoipa::path(post, path = "/api/keys", tag = "keys",
    summary = "申请APIKEY / create an API key (shown once)",
    request_body = super::schema::NewKey,
    responses(
        (status = 201, description = "已创建 / Created", body = super::schema::CreatedKey),
        (status = 400, description = "字段无效 / Invalid field", body = super::schema::ErrorBody),
        (status = 403, description = "X-CSRF-Token 缺失或错误 / Missing or wrong X-CSRF-Token", body = super::schema::ErrorBody),
        (status = 404, description = "允许列表中的某个模型不存在 / A model of the allow-list does not exist", body = super::schema::ErrorBody),
    ),
    security(("session" = [], "csrf" = [])))]
/// `POST /api/keys`.
pub async fn create(
    State(state): State<AppState>,
    who: SessionUser,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::MissingParameter("name".into()))?;
    if name.chars().count() > 64 {
        return Err(ApiError::InvalidParameter(
            "name must be at most 64 characters".into(),
        ));
    }
    let expires_at = match body.get("expires_at") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let secs = v.as_i64().ok_or_else(|| {
                ApiError::InvalidParameter("expires_at must be unix seconds".into())
            })?;
            // Up to the end of year 9999: larger values are mistakes (and would overflow in ms).
            if !(0..=253_402_300_799).contains(&secs) {
                return Err(ApiError::InvalidParameter(
                    "expires_at must be unix seconds before year 10000".into(),
                ));
            }
            if secs * 1000 <= now_ms() {
                return Err(ApiError::InvalidParameter(
                    "expires_at must be in the future".into(),
                ));
            }
            Some(secs * 1000)
        }
    };
    let models = checked_models(&state, &body)?;
    let allowed_ips = checked_ips(&body)?;
    let monthly_limit = monthly_limit(&body)?.flatten();
    let key = state
        .keys
        .create_limited(
            who.user.id,
            name,
            None,
            expires_at,
            models.as_deref(),
            allowed_ips.as_deref(),
        )
        .await?;
    if monthly_limit.is_some() {
        let update = KeyUpdate {
            monthly_limit: Some(monthly_limit),
            ..KeyUpdate::default()
        };
        state
            .keys
            .update_owned(key.id, who.user.id, &update)
            .await?;
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": key.id, "key": key.key, "masked": key.masked, "name": name,
            "expires_at": expires_at.map(|t| t / 1000), "models": models, "allowed_ips": allowed_ips,
            "monthly_limit": monthly_limit,
        })),
    ))
}

fn checked_models(state: &AppState, body: &Value) -> Result<Option<Vec<String>>, ApiError> {
    let models = string_list(body, "models")?;
    if let Some(models) = &models {
        let table = state.channels.table();
        if let Some(unknown) = models.iter().find(|m| table.catalog.get(m).is_none()) {
            return Err(ApiError::ModelNotFound(unknown.clone()));
        }
    }
    Ok(models)
}

fn checked_ips(body: &Value) -> Result<Option<Vec<String>>, ApiError> {
    let allowed_ips = string_list(body, "allowed_ips")?;
    if let Some(ips) = &allowed_ips
        && let Some(bad) = ips.iter().find(|ip| {
            ip.parse::<ipnet::IpNet>().is_err() && ip.parse::<std::net::IpAddr>().is_err()
        })
    {
        return Err(ApiError::InvalidParameter(format!(
            "allowed_ips: `{bad}` is not an IP address or CIDR network"
        )));
    }
    Ok(allowed_ips)
}

/// `monthly_limit`: absent = unchanged (`None`), `null` = no limit, else whole credits ≥ 1.
fn monthly_limit(body: &Value) -> Result<Option<Option<i64>>, ApiError> {
    match body.get("monthly_limit") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => match v.as_i64() {
            Some(n) if (1..=1_000_000_000_000).contains(&n) => Ok(Some(Some(n))),
            _ => Err(ApiError::InvalidParameter(
                "monthly_limit must be a whole number of credits from 1 to 10^12, or null".into(),
            )),
        },
    }
}

fn checked_name(body: &Value) -> Result<Option<String>, ApiError> {
    match body.get("name") {
        None => Ok(None),
        Some(v) => {
            let name = v
                .as_str()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| ApiError::MissingParameter("name".into()))?;
            if name.chars().count() > 64 {
                return Err(ApiError::InvalidParameter(
                    "name must be at most 64 characters".into(),
                ));
            }
            Ok(Some(name.to_owned()))
        }
    }
}

#[utoipa::path(patch, path = "/api/keys/{id}", tag = "keys",
    summary = "修改 API Key:名称、允许列表、月度限额、启停 / Change a key: name, allow-lists, monthly limit, on/off",
    description = "未提供的字段保持不变;`models`、`allowed_ips`、`monthly_limit` 设为 null 即清除;`disabled: true` 停用该 Key(与已吊销同样被拒),直到 `disabled: false`。 / Fields absent are kept; `models`, `allowed_ips`, `monthly_limit` set to null are cleared. `disabled: true` switches the key off (refused like a revoked key) until `disabled: false`.",
    params(("id" = i64, Path, description = "API Key 编号 / Key id")),
    request_body = super::schema::KeyPatch,
    responses(
        (status = 200, description = "修改后的 Key(与列表中的形式相同) / The key as listed", body = super::schema::KeyInfo),
        (status = 400, description = "字段无效 / Invalid field", body = super::schema::ErrorBody),
        (status = 403, description = "X-CSRF-Token 缺失或错误 / Missing or wrong X-CSRF-Token", body = super::schema::ErrorBody),
        (status = 404, description = "该用户没有这个有效的 Key / No such live key of this user", body = super::schema::ErrorBody),
    ),
    security(("session" = [], "csrf" = [])))]
/// `PATCH /api/keys/{id}`.
pub async fn update(
    State(state): State<AppState>,
    who: SessionUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let list_field = |field: &str| body.get(field).map(|v| !v.is_null());
    let update = KeyUpdate {
        name: checked_name(&body)?,
        models: list_field("models")
            .map(|_| checked_models(&state, &body))
            .transpose()?,
        allowed_ips: list_field("allowed_ips")
            .map(|_| checked_ips(&body))
            .transpose()?,
        monthly_limit: monthly_limit(&body)?,
        disabled: match body.get("disabled") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                return Err(ApiError::InvalidParameter(
                    "disabled must be true or false".into(),
                ));
            }
        },
    };
    if !state.keys.update_owned(id, who.user.id, &update).await? {
        return Err(ApiError::NotFound(format!("key {id}")));
    }
    let keys = state.keys.list(who.user.id).await?;
    let key = keys
        .iter()
        .find(|k| k.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("key {id}")))?;
    Ok(Json(listed(&state, key).await?))
}

#[utoipa::path(post, path = "/api/keys/{id}/remove", tag = "keys",
    summary = "从列表中删除已吊销的 Key / Remove a revoked key from the list",
    params(("id" = i64, Path, description = "API Key 编号 / Key id")),
    responses(
        (status = 200, description = "已移除 / Removed", body = super::schema::Removed),
        (status = 403, description = "X-CSRF-Token 缺失或错误 / Missing or wrong X-CSRF-Token", body = super::schema::ErrorBody),
        (status = 404, description = "该用户没有这个已吊销的 Key(请先吊销) / No such revoked key of this user (revoke it first)", body = super::schema::ErrorBody),
    ),
    security(("session" = [], "csrf" = [])))]
/// `POST /api/keys/{id}/remove`.
pub async fn remove(
    State(state): State<AppState>,
    who: SessionUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    if state.keys.hide_revoked(id, who.user.id).await? {
        Ok(Json(json!({"id": id, "removed": true})))
    } else {
        Err(ApiError::NotFound(format!("revoked key {id}")))
    }
}

/// A key as the list shows it, with its spend this month and its last call.
async fn listed(state: &AppState, k: &KeySummary) -> Result<Value, ApiError> {
    let since = crate::accounts::spend::month_start_ms(now_ms());
    let (spent, last_used) = crate::accounts::spend::key_activity(&state.db, k.id, since).await?;
    Ok(
        json!({"id": k.id, "name": k.name, "masked": k.masked, "created_at": k.created_at / 1000,
           "expires_at": k.expires_at.map(|t| t / 1000), "revoked": k.revoked, "expired": k.expired,
           "models": k.models, "allowed_ips": k.allowed_ips, "monthly_limit": k.monthly_limit,
           "disabled": k.disabled, "month_spent": crate::billing::credits_json(spent), "last_used_at": last_used.map(|t| t / 1000)}),
    )
}

#[utoipa::path(get, path = "/api/keys", tag = "keys",
    summary = "API Key 列表(已打码) / API keys (masked)",
    responses((status = 200, description = "该用户的 Key 列表 / The user's keys", body = super::schema::KeyList)),
    security(("session" = [])))]
/// `GET /api/keys`.
pub async fn list(
    State(state): State<AppState>,
    who: SessionUser,
) -> Result<Json<Value>, ApiError> {
    let keys = state.keys.list(who.user.id).await?;
    let mut data = Vec::with_capacity(keys.len());
    for k in &keys {
        data.push(listed(&state, k).await?);
    }
    Ok(Json(json!({"object": "list", "data": data})))
}

#[utoipa::path(delete, path = "/api/keys/{id}", tag = "keys",
    summary = "吊销 API Key / Revoke a key",
    params(("id" = i64, Path, description = "API Key 编号 / Key id")),
    responses(
        (status = 200, description = "已吊销 / Revoked", body = super::schema::Revoked),
        (status = 400, description = "ID 有误 / Bad id", body = super::schema::ErrorBody),
        (status = 403, description = "X-CSRF-Token 缺失或错误 / Missing or wrong X-CSRF-Token", body = super::schema::ErrorBody),
        (status = 404, description = "该用户没有这个 Key / No such key of this user", body = super::schema::ErrorBody),
    ),
    security(("session" = [], "csrf" = [])))]
/// `DELETE /api/keys/{id}`.
pub async fn revoke(
    State(state): State<AppState>,
    who: SessionUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    if state.keys.revoke_owned(id, who.user.id).await? {
        Ok(Json(json!({"id": id, "revoked": true})))
    } else {
        Err(ApiError::NotFound(format!("key {id}")))
    }
}
