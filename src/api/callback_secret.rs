//! The logged-in user's callback secret: tasks submitted from the console (no API key) sign
//! their callbacks (`X-Llmage-Signature: sha256=<HMAC-SHA256 of the body>`) with it.
//! `GET /api/callback-secret` shows it (made on first use), `POST /api/callback-secret` replaces
//! it (callbacks already queued are signed with the new one).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::auth::SessionUser;
use crate::api::error::ApiError;
use crate::api::state::AppState;

/// 两个路由的返回 / The answer of both routes.
#[derive(Serialize, ToSchema)]
pub struct CallbackSecret {
    /// 控制台提交的任务的回调所用的 HMAC 密钥(`whsec_…`) / The HMAC key of console-submitted
    /// tasks' callbacks (`whsec_…`).
    pub callback_secret: String,
}

#[utoipa::path(get, path = "/api/callback-secret", tag = "account",
    summary = "回调签名密钥 / the callback secret of console-submitted tasks",
    responses((status = 200, description = "密钥 / The secret", body = CallbackSecret)),
    security(("session" = [])))]
/// `GET /api/callback-secret`.
pub async fn show(
    State(state): State<AppState>,
    who: SessionUser,
) -> Result<Json<Value>, ApiError> {
    let secret = state.users.callback_secret(who.user.id).await?;
    Ok(Json(json!({ "callback_secret": secret })))
}

#[utoipa::path(post, path = "/api/callback-secret", tag = "account",
    summary = "更换回调签名密钥 / rotate the callback secret",
    responses(
        (status = 200, description = "新的密钥 / The new secret", body = CallbackSecret),
        (status = 403, description = "X-CSRF-Token 缺失或错误 / Missing or wrong X-CSRF-Token", body = super::schema::ErrorBody),
    ),
    security(("session" = [], "csrf" = [])))]
/// `POST /api/callback-secret`.
pub async fn rotate(
    State(state): State<AppState>,
    who: SessionUser,
) -> Result<Json<Value>, ApiError> {
    let secret = state.users.rotate_callback_secret(who.user.id).await?;
    tracing::info!(user_id = who.user.id, "callback secret rotated");
    Ok(Json(json!({ "callback_secret": secret })))
}
