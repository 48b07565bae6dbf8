//! API keys of the logged-in user (console session): `POST /api/keys` creates one and shows it
//! once ("复制apikey"), `GET /api/keys` lists them masked, `DELETE /api/keys/{id}` revokes one
//! (refused by every process within a second). A key may carry an expiry and allow-lists of
//! models and client addresses.

use super::extract::ApiPath;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::auth::SessionUser;
use super::extract::JsonBody;
use crate::error::ApiError;
use crate::server::AppState;
use crate::storage::now_ms;

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
        (status = 201, description = "Created", body = super::schema::CreatedKey),
        (status = 400, description = "Invalid field", body = super::schema::ErrorBody),
        (status = 403, description = "Missing or wrong X-CSRF-Token", body = super::schema::ErrorBody),
        (status = 404, description = "A model of the allow-list does not exist", body = super::schema::ErrorBody),
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
    let models = string_list(&body, "models")?;
    if let Some(models) = &models {
        let table = state.channels.table();
        if let Some(unknown) = models.iter().find(|m| table.catalog.get(m).is_none()) {
            return Err(ApiError::ModelNotFound(unknown.clone()));
        }
    }
    let allowed_ips = string_list(&body, "allowed_ips")?;
    if let Some(ips) = &allowed_ips
        && let Some(bad) = ips.iter().find(|ip| {
            ip.parse::<ipnet::IpNet>().is_err() && ip.parse::<std::net::IpAddr>().is_err()
        })
    {
        return Err(ApiError::InvalidParameter(format!(
            "allowed_ips: `{bad}` is not an IP address or CIDR network"
        )));
    }
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
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": key.id, "key": key.key, "masked": key.masked, "name": name,
            "expires_at": expires_at.map(|t| t / 1000), "models": models, "allowed_ips": allowed_ips,
        })),
    ))
}

#[utoipa::path(get, path = "/api/keys", tag = "keys",
    summary = "API keys (masked)",
    responses((status = 200, description = "The user's keys", body = super::schema::KeyList)),
    security(("session" = [])))]
/// `GET /api/keys`.
pub async fn list(
    State(state): State<AppState>,
    who: SessionUser,
) -> Result<Json<Value>, ApiError> {
    let keys = state.keys.list(who.user.id).await?;
    let data: Vec<Value> = keys
        .iter()
        .map(|k| {
            json!({"id": k.id, "name": k.name, "masked": k.masked, "created_at": k.created_at / 1000,
                   "expires_at": k.expires_at.map(|t| t / 1000), "revoked": k.revoked, "expired": k.expired,
                   "models": k.models, "allowed_ips": k.allowed_ips})
        })
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

#[utoipa::path(delete, path = "/api/keys/{id}", tag = "keys",
    summary = "Revoke a key",
    params(("id" = i64, Path, description = "Key id")),
    responses(
        (status = 200, description = "Revoked", body = super::schema::Revoked),
        (status = 400, description = "Bad id", body = super::schema::ErrorBody),
        (status = 403, description = "Missing or wrong X-CSRF-Token", body = super::schema::ErrorBody),
        (status = 404, description = "No such key of this user", body = super::schema::ErrorBody),
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
