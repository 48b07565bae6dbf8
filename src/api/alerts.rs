//! The low-balance notice: a user's threshold (`PUT /api/me/low-balance`), shown back in
//! `GET /api/me` as `low_balance` (and `low_balance_sms`); the console shows a notice while the
//! balance is below it, and with `sms: true` one SMS goes out per downward crossing (see
//! [`crate::accounts::low_balance`]).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::auth::SessionUser;
use super::extract::JsonBody;
use crate::api::error::ApiError;
use crate::api::state::AppState;

#[utoipa::path(put, path = "/api/me/low-balance", tag = "account",
    summary = "余额提醒 / set the low-balance notice threshold",
    description = "`{\"threshold\": 500}`:余额低于 500 积分时在控制台显示提醒;`null` 关闭提醒;`\"sms\": true` 时每次跌破阈值发送一条短信。 / `{\"threshold\": 500}` shows a notice in the console while the balance is below 500 credits; `null` turns it off; `\"sms\": true` also sends one SMS each time the balance falls below it.",
    request_body = super::schema::LowBalance,
    responses(
        (status = 200, description = "已保存 / Saved", body = super::schema::LowBalance),
        (status = 400, description = "不是整数积分 / Not a whole number of credits", body = super::schema::ErrorBody),
        (status = 403, description = "X-CSRF-Token 缺失或错误 / Missing or wrong X-CSRF-Token", body = super::schema::ErrorBody),
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
    let sms = match body.get("sms") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::InvalidParameter(
                "sms: 应为 true 或 false / must be true or false".into(),
            ));
        }
    };
    crate::accounts::low_balance::set(
        &state.db,
        who.user.id,
        threshold,
        sms && threshold.is_some(),
    )
    .await?;
    Ok(Json(
        json!({"threshold": threshold, "sms": sms && threshold.is_some()}),
    ))
}
