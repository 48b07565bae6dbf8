//! The admin API for users with the `admin` role (console session + CSRF): list users, adjust a
//! user's credits (a ledger entry with who and why), disable or enable a user (their keys and
//! sessions stop working within a second).

use super::extract::{ApiPath, ApiQuery};
use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::SessionUser;
use super::extract::JsonBody;
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::billing::ledger::{Applied, EntryKind};

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

#[utoipa::path(get, path = "/api/admin/users", tag = "admin",
    summary = "管理 · 用户 / users",
    params(
        ("limit" = Option<i64>, Query, description = "每页数量 1–500(默认 50) / 1–500 (default 50)"),
        ("before" = Option<i64>, Query, description = "只列 id 更小的用户(翻页) / Users with a smaller id (paging)"),
    ),
    responses(
        (status = 200, description = "用户列表 / Users", body = super::schema::AdminUserList),
        (status = 400, description = "查询参数有误 / Bad query", body = super::schema::ErrorBody),
        (status = 403, description = "不是管理员 / Not an admin", body = super::schema::ErrorBody),
    ),
    security(("session" = [])))]
/// `GET /api/admin/users`.
pub async fn users(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiQuery(q): ApiQuery<UsersQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let users = state.users.list(limit, q.before).await?;
    let data: Vec<Value> = users
        .iter()
        .map(|u| json!({"id": u.id, "phone": u.phone, "role": u.role, "balance": crate::billing::credits_json(u.balance), "disabled": u.disabled}))
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

#[utoipa::path(post, path = "/api/admin/users/{id}/credits", tag = "admin",
    summary = "管理 · 调整积分 / adjust a user's credits",
    params(("id" = i64, Path, description = "用户 id / User id")),
    request_body = super::schema::CreditsBody,
    responses(
        (status = 200, description = "已调整(或之前已调整过) / Applied (or applied before)", body = super::schema::CreditsDone),
        (status = 400, description = "金额或原因有误 / Bad amount or reason", body = super::schema::ErrorBody),
        (status = 403, description = "不是管理员,或缺少 CSRF 令牌 / Not an admin, or no CSRF token", body = super::schema::ErrorBody),
        (status = 404, description = "用户不存在 / No such user", body = super::schema::ErrorBody),
    ),
    security(("session" = [], "csrf" = [])))]
/// `POST /api/admin/users/{id}/credits {"amount", "reason", "idempotency_key"?}`.
pub async fn credits(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let amount = body
        .get("amount")
        .and_then(crate::billing::units_from_credits)
        .filter(|a| *a != 0)
        .ok_or_else(|| {
            ApiError::InvalidParameter(
                "amount must be a non-zero number of credits with at most 4 decimal places".into(),
            )
        })?;
    let reason = body
        .get("reason")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::MissingParameter("reason".into()))?;
    // Scoped to the target user: the same key used for another user is another adjustment.
    let idem = match body.get("idempotency_key").and_then(Value::as_str) {
        Some(k) => format!("admin:api:{id}:{k}"),
        None => format!("admin:api:{}", crate::util::ids::random_id()),
    };
    let kind = if amount > 0 {
        EntryKind::Grant
    } else {
        EntryKind::Adjust
    };
    // The admin's id stays in the internal reason; the user reads only the reason given.
    let why = format!("admin #{}: {reason}", admin.user.id);
    let label = format!("管理员调整: {reason}");
    let shown = crate::billing::credits_json(amount);
    match state
        .ledger
        .apply_labelled(id, amount, kind, &why, Some(&label), &idem)
        .await?
    {
        Applied::Now { balance } => Ok(Json(
            json!({"user_id": id, "amount": shown, "balance": crate::billing::credits_json(balance)}),
        )),
        Applied::Before => Ok(Json(
            json!({"user_id": id, "amount": shown, "already_applied": true}),
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

#[utoipa::path(post, path = "/api/admin/users/{id}/disable", tag = "admin",
    summary = "管理 · 停用用户 / disable a user",
    params(("id" = i64, Path, description = "用户 id / User id")),
    responses(
        (status = 200, description = "已完成 / Done", body = super::schema::UserDisabled),
        (status = 400, description = "ID 有误 / Bad id", body = super::schema::ErrorBody),
        (status = 403, description = "不是管理员,或缺少 CSRF 令牌 / Not an admin, or no CSRF token", body = super::schema::ErrorBody),
        (status = 404, description = "用户不存在 / No such user", body = super::schema::ErrorBody),
    ),
    security(("session" = [], "csrf" = [])))]
/// `POST /api/admin/users/{id}/disable`.
pub async fn disable(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    set_disabled(&state, id, true).await
}

#[utoipa::path(post, path = "/api/admin/users/{id}/enable", tag = "admin",
    summary = "管理 · 启用用户 / enable a user",
    params(("id" = i64, Path, description = "用户 id / User id")),
    responses(
        (status = 200, description = "已完成 / Done", body = super::schema::UserDisabled),
        (status = 400, description = "ID 有误 / Bad id", body = super::schema::ErrorBody),
        (status = 403, description = "不是管理员,或缺少 CSRF 令牌 / Not an admin, or no CSRF token", body = super::schema::ErrorBody),
        (status = 404, description = "用户不存在 / No such user", body = super::schema::ErrorBody),
    ),
    security(("session" = [], "csrf" = [])))]
/// `POST /api/admin/users/{id}/enable`.
pub async fn enable(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    set_disabled(&state, id, false).await
}

#[utoipa::path(get, path = "/api/admin/redeem-codes", tag = "admin",
    summary = "管理 · 兑换码 / redemption codes (state only)",
    params(
        ("limit" = Option<i64>, Query, description = "数量 1–1000(默认 200) / 1–1000 (default 200)"),
        ("before" = Option<i64>, Query, description = "此处不使用 / Unused here"),
    ),
    responses(
        (status = 200, description = "兑换码,最新的在前 / Codes, newest first", body = super::schema::RedeemCodeList),
        (status = 400, description = "查询参数有误 / Bad query", body = super::schema::ErrorBody),
        (status = 403, description = "不是管理员 / Not an admin", body = super::schema::ErrorBody),
    ),
    security(("session" = [])))]
/// `GET /api/admin/redeem-codes`: codes (hashed; only their state), newest first.
pub async fn redeem_codes(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiQuery(q): ApiQuery<UsersQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(200).clamp(1, 1000);
    let codes = crate::billing::redeem::Redeem::new(state.db.clone())
        .list(limit)
        .await?;
    Ok(Json(json!({"object": "list", "data": codes})))
}

#[utoipa::path(post, path = "/api/admin/redeem-codes", tag = "admin",
    summary = "管理 · 生成兑换码 / create a batch of codes (shown once)",
    request_body = super::schema::NewRedeemCodes,
    responses(
        (status = 201, description = "新生成的兑换码 / The new codes", body = super::schema::RedeemBatch),
        (status = 400, description = "积分或数量有误 / Bad credits or count", body = super::schema::ErrorBody),
        (status = 403, description = "不是管理员,或缺少 CSRF 令牌 / Not an admin, or no CSRF token", body = super::schema::ErrorBody),
    ),
    security(("session" = [], "csrf" = [])))]
/// `POST /api/admin/redeem-codes {"credits", "count"?, "note"?}`: a new batch, codes shown once.
pub async fn create_redeem_codes(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    JsonBody(body): JsonBody,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    let credits = body
        .get("credits")
        .and_then(Value::as_i64)
        .filter(|c| (1..=crate::billing::ledger::MAX_CHANGE).contains(c))
        .ok_or_else(|| {
            ApiError::InvalidParameter(format!(
                "credits must be an integer from 1 to {}",
                crate::billing::ledger::MAX_CHANGE
            ))
        })?;
    let count = match body.get("count") {
        None => 1,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::InvalidParameter("count must be 1 to 1000".into()))?,
    };
    let note = body.get("note").and_then(Value::as_str).unwrap_or("");
    let note = format!("{note} (admin {})", admin.user.id);
    let (batch, codes) = crate::billing::redeem::Redeem::new(state.db.clone())
        .create_batch(credits, usize::try_from(count).unwrap_or(1), note.trim())
        .await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(json!({"batch": batch, "credits": credits, "codes": codes})),
    ))
}
