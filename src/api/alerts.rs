//! The low-balance notice: a user's threshold (`PUT /api/me/low-balance`), shown back in
//! `GET /api/me` as `low_balance`; the console shows a notice while the balance is below it.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use sqlx::Row;

use super::auth::SessionUser;
use super::extract::JsonBody;
use crate::error::ApiError;
use crate::server::AppState;
use crate::storage::{Db, StoreError};

/// A user's threshold (`None` = no notice).
pub async fn threshold(db: &Db, user_id: i64) -> Result<Option<i64>, StoreError> {
    let row = sqlx::query("SELECT low_balance FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(db.reader())
        .await?;
    Ok(match row {
        Some(r) => r.try_get("low_balance")?,
        None => None,
    })
}

#[utoipa::path(put, path = "/api/me/low-balance", tag = "account",
    summary = "余额提醒 / set the low-balance notice threshold",
    description = "`{\"threshold\": 500}` shows a notice in the console while the balance is below 500 credits; `null` turns it off.",
    request_body = super::schema::LowBalance,
    responses(
        (status = 200, description = "Saved", body = super::schema::LowBalance),
        (status = 400, description = "Not a whole number of credits", body = super::schema::ErrorBody),
        (status = 403, description = "Missing or wrong X-CSRF-Token", body = super::schema::ErrorBody),
    ),
    security(("session" = [], "csrf" = [])))]
/// `PUT /api/me/low-balance`.
pub async fn set_low_balance(
    State(state): State<AppState>,
    who: SessionUser,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let threshold = match body.get("threshold") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .filter(|n| (1..=1_000_000_000_000).contains(n))
                .ok_or_else(|| {
                    ApiError::InvalidParameter(
                        "threshold: 请输入 1 以上的整数积分 / must be a whole number of credits from 1 to 10^12, or null".into(),
                    )
                })?,
        ),
    };
    sqlx::query("UPDATE users SET low_balance = $1 WHERE id = $2")
        .bind(threshold)
        .bind(who.user.id)
        .execute(state.db.writer())
        .await
        .map_err(StoreError::from)?;
    Ok(Json(json!({"threshold": threshold})))
}
