//! Phone login and the session surface of the console API: `POST /api/auth/sms-code`,
//! `POST /api/auth/login`, `POST /api/auth/logout`, `GET /api/me`, and `GET /llmage/v1/balance`
//! for API keys. [`SessionUser`] authenticates console requests by the session cookie and, for
//! anything but GET/HEAD, requires the session's CSRF token in `X-CSRF-Token`.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::Digest;

use super::extract::{ApiKey, JsonBody};
use super::limits::peer_ip;
use crate::accounts::sessions::{COOKIE, Session};
use crate::accounts::users::{User, normalize_phone};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::billing::ledger::{Applied, EntryKind};

/// The user of a live console session (CSRF-checked for state-changing methods).
pub struct SessionUser {
    pub user: User,
    pub session: Session,
    pub token: String,
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Whether the request carries a console session cookie (valid or not).
pub fn has_session_cookie(headers: &HeaderMap) -> bool {
    cookie_token(headers).is_some()
}

impl FromRequestParts<AppState> for SessionUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = cookie_token(&parts.headers).ok_or(ApiError::LoginRequired)?;
        let session = state
            .sessions
            .get(&token)
            .await?
            .ok_or(ApiError::LoginRequired)?;
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            let given = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if given.is_empty()
                || !bool::from(subtle::ConstantTimeEq::ct_eq(
                    given.as_bytes(),
                    session.csrf_token.as_bytes(),
                ))
            {
                return Err(ApiError::Forbidden(
                    "CSRF 校验失败,请刷新页面后重试 / missing or wrong X-CSRF-Token".into(),
                ));
            }
        }
        let user = state
            .users
            .by_id(session.user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or(ApiError::LoginRequired)?;
        Ok(SessionUser {
            user,
            session,
            token,
        })
    }
}

fn user_json(user: &User) -> Value {
    json!({"id": user.id, "phone": user.phone, "role": user.role, "balance": crate::billing::credits_json(user.balance)})
}

fn phone_of(body: &Value) -> Result<String, ApiError> {
    let raw = body
        .get("phone")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::MissingParameter("phone".into()))?;
    normalize_phone(raw).map_err(|_| {
        ApiError::InvalidParameter(
            "手机号格式不正确 / phone must be a mainland mobile number".into(),
        )
    })
}

#[utoipa::path(post, path = "/api/auth/sms-code", tag = "account",
    summary = "发送短信验证码 / send a login code",
    request_body = super::schema::PhoneBody,
    responses(
        (status = 200, description = "已发送 / Sent", body = super::schema::CodeSent),
        (status = 400, description = "不是中国大陆手机号 / Not a mainland mobile number", body = super::schema::ErrorBody),
        (status = 502, description = "短信服务商发送失败 / The SMS provider failed", body = super::schema::ErrorBody),
    ))]
/// `POST /api/auth/sms-code {"phone"}`.
pub async fn sms_code(
    State(state): State<AppState>,
    parts: axum::http::Extensions,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let phone = phone_of(&body)?;
    let ip = peer_ip(&parts).map(|ip| ip.to_string());
    // The device cookie identifies the browser that asks (its digest is stored, never the
    // token); a browser without one gets one now.
    let (device, new_device) = match device_token(&headers) {
        Some(token) => (token, None),
        None => {
            let token = crate::util::ids::random_id();
            (token.clone(), Some(token))
        }
    };
    let device_hash = hex::encode(sha2::Sha256::digest(device.as_bytes()));
    let code = state
        .codes
        .issue(&phone, ip.as_deref(), Some(&device_hash))
        .await?;
    state
        .sms
        .send_code(&phone, &code)
        .await
        .map_err(|e| ApiError::UpstreamFailed(e.to_string()))?;
    let body = Json(json!({"sent": true, "resend_after": state.config.auth.resend_secs}));
    Ok(match new_device {
        Some(token) => {
            let secure = state
                .config
                .public_base_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"));
            let cookie = HeaderValue::from_str(&format!(
                "{DEVICE_COOKIE}={token}; Path=/api/auth; HttpOnly; SameSite=Lax; Max-Age=31536000{}",
                if secure { "; Secure" } else { "" }
            ))
            .map_err(|_| ApiError::Internal)?;
            ([(header::SET_COOKIE, cookie)], body).into_response()
        }
        None => body.into_response(),
    })
}

/// The cookie that tells a browser's SMS code requests apart (per-device limits, and a device
/// that logged in to a phone before is not held to that phone's daily cap).
const DEVICE_COOKIE: &str = "llmage_device";

fn device_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == DEVICE_COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| (16..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn session_cookie(state: &AppState, token: &str, max_age: i64) -> Result<HeaderValue, ApiError> {
    let secure = state
        .config
        .public_base_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    ))
    .map_err(|_| ApiError::Internal)
}

#[utoipa::path(post, path = "/api/auth/login", tag = "account",
    summary = "手机号登录 / log in (the first login registers)",
    request_body = super::schema::LoginBody,
    responses(
        (status = 200, description = "登录成功;设置 `llmage_session` Cookie / Logged in; sets the `llmage_session` cookie", body = super::schema::LoginAnswer),
        (status = 400, description = "手机号有误,或验证码错误、过期或已锁定 / Bad phone, wrong, expired or locked code", body = super::schema::ErrorBody),
        (status = 403, description = "账号已停用 / Account disabled", body = super::schema::ErrorBody),
    ))]
/// `POST /api/auth/login {"phone","code"}`: the first login registers the user.
pub async fn login(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let phone = phone_of(&body)?;
    let code = body
        .get("code")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::MissingParameter("code".into()))?;
    state.codes.verify(&phone, code).await?;
    let (mut user, created) = state.users.register(&phone).await.map_err(ApiError::from)?;
    let signup_credits = state.config.signup_credits();
    if created && signup_credits > 0 {
        // Once per user, whatever happens to this request (the key is the user's).
        let applied = state
            .ledger
            .apply_labelled(
                user.id,
                crate::billing::units(signup_credits),
                EntryKind::Grant,
                "signup credits",
                Some("注册赠送"),
                &format!("signup:{}", user.id),
            )
            .await
            .map_err(ApiError::from)?;
        if let Applied::Now { balance } = applied {
            user.balance = balance;
        }
        tracing::info!(
            user_id = user.id,
            credits = signup_credits,
            "signup credits"
        );
    }
    if user.disabled {
        return Err(ApiError::Forbidden(
            "账号已停用 / this account is disabled".into(),
        ));
    }
    let (token, csrf) = state.sessions.create(user.id).await?;
    let cookie = session_cookie(&state, &token, state.sessions.ttl_secs())?;
    tracing::info!(user_id = user.id, "login");
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(json!({"user": user_json(&user), "csrf_token": csrf})),
    )
        .into_response())
}

#[utoipa::path(post, path = "/api/auth/logout", tag = "account",
    summary = "退出 / log out",
    responses(
        (status = 200, description = "会话已结束 / Session ended", body = super::schema::Done),
        (status = 403, description = "X-CSRF-Token 缺失或错误 / Missing or wrong X-CSRF-Token", body = super::schema::ErrorBody),
    ),
    security(("session" = [], "csrf" = [])))]
/// `POST /api/auth/logout`.
pub async fn logout(State(state): State<AppState>, who: SessionUser) -> Result<Response, ApiError> {
    state.sessions.delete(&who.token).await?;
    let cookie = session_cookie(&state, "", 0)?;
    Ok((
        StatusCode::OK,
        [(header::SET_COOKIE, cookie)],
        Json(json!({"ok": true})),
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/me", tag = "account",
    summary = "当前用户 / the logged-in user",
    responses((status = 200, description = "用户、余额与本会话的 CSRF 令牌 / User, balance and the session's CSRF token", body = super::schema::Me)),
    security(("session" = [])))]
/// `GET /api/me`.
pub async fn me(State(state): State<AppState>, who: SessionUser) -> Result<Json<Value>, ApiError> {
    let (low_balance, low_balance_sms) =
        crate::accounts::low_balance::get(&state.db, who.user.id).await?;
    Ok(Json(
        json!({"user": user_json(&who.user), "balance": crate::billing::credits_json(who.user.balance), "csrf_token": who.session.csrf_token,
               "low_balance": low_balance, "low_balance_sms": low_balance_sms}),
    ))
}

#[utoipa::path(get, path = "/llmage/v1/balance", tag = "gateway",
    summary = "查看当前余额 / balance of the key's user",
    responses((status = 200, description = "积分余额 / Credits", body = super::schema::Balance)),
    security(("bearer" = []), ("session" = [], "csrf" = [])))]
/// `GET /llmage/v1/balance` (API key).
pub async fn balance(
    State(state): State<AppState>,
    ApiKey(owner): ApiKey,
) -> Result<Json<Value>, ApiError> {
    let balance = state.ledger.balance(owner.user_id).await?;
    Ok(Json(
        json!({"balance": crate::billing::credits_json(balance), "user_id": owner.user_id}),
    ))
}
