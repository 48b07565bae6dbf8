//! The admin API for users with the `admin` role (console session + CSRF): list users, adjust a
//! user's credits (a ledger entry with who and why), disable or enable a user (their keys and
//! sessions stop working within a second).

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::SessionUser;
use super::extract::JsonBody;
use crate::billing::ledger::{Applied, EntryKind};
use crate::error::ApiError;
use crate::server::AppState;

/// A session user with the `admin` role.
pub struct AdminUser(pub SessionUser);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let who = SessionUser::from_request_parts(parts, state).await?;
        if who.user.role != "admin" {
            return Err(ApiError::Forbidden(
                "需要管理员权限 / admin role required".into(),
            ));
        }
        Ok(AdminUser(who))
    }
}

#[derive(Deserialize)]
pub struct UsersQuery {
    limit: Option<i64>,
    before: Option<i64>,
}

/// `GET /api/admin/users`.
pub async fn users(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(q): Query<UsersQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let users = state.users.list(limit, q.before).await?;
    let data: Vec<Value> = users
        .iter()
        .map(|u| json!({"id": u.id, "phone": u.phone, "role": u.role, "balance": u.balance, "disabled": u.disabled}))
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

/// `POST /api/admin/users/{id}/credits {"amount", "reason", "idempotency_key"?}`.
pub async fn credits(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let amount = body
        .get("amount")
        .and_then(Value::as_i64)
        .filter(|a| *a != 0)
        .ok_or_else(|| {
            ApiError::InvalidParameter("amount must be a non-zero integer (credits)".into())
        })?;
    let reason = body
        .get("reason")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::MissingParameter("reason".into()))?;
    let idem = match body.get("idempotency_key").and_then(Value::as_str) {
        Some(k) => format!("admin:api:{k}"),
        None => format!("admin:api:{}", crate::billing::ledger::random_id()),
    };
    let kind = if amount > 0 {
        EntryKind::Grant
    } else {
        EntryKind::Adjust
    };
    let why = format!("admin {} ({}): {reason}", admin.user.id, admin.user.phone);
    match state.ledger.apply(id, amount, kind, &why, &idem).await? {
        Applied::Now { balance } => Ok(Json(
            json!({"user_id": id, "amount": amount, "balance": balance}),
        )),
        Applied::Before => Ok(Json(
            json!({"user_id": id, "amount": amount, "already_applied": true}),
        )),
    }
}

async fn set_disabled(state: &AppState, id: i64, disabled: bool) -> Result<Json<Value>, ApiError> {
    if state.users.set_disabled(id, disabled).await? {
        Ok(Json(json!({"user_id": id, "disabled": disabled})))
    } else {
        Err(ApiError::NotFound(format!("user {id}")))
    }
}

/// `POST /api/admin/users/{id}/disable`.
pub async fn disable(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    set_disabled(&state, id, true).await
}

/// `POST /api/admin/users/{id}/enable`.
pub async fn enable(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    set_disabled(&state, id, false).await
}
