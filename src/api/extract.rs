//! Extractors: the API-key owner (`Authorization: Bearer sk-…`, or the web console's session
//! cookie with its `X-CSRF-Token`, for the playground and gallery) and a JSON body whose every
//! failure (too large, unreadable, not JSON) becomes an [`ApiError`].

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde_json::Value;

use super::UserSlot;
use crate::accounts::keys::KeyOwner;
use crate::api::error::ApiError;
use crate::api::state::AppState;

/// The owner of a valid API key.
pub struct ApiKey(pub Arc<KeyOwner>);

impl FromRequestParts<AppState> for ApiKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let ip = super::limits::peer_ip(&parts.extensions);
        if let Some(ip) = ip {
            state.limits.auth_allowed(ip)?;
        }
        if header.is_empty() && super::auth::has_session_cookie(&parts.headers) {
            return console_owner(parts, state).await;
        }
        let (scheme, key) = header.trim().split_once(' ').unwrap_or(("", ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(state.limits.auth_failed(ip));
        }
        let Some(owner) = state.keys.authenticate(key.trim()).await? else {
            return Err(state.limits.auth_failed(ip));
        };
        state.limits.check_key_shared(owner.key_id).await?;
        if !owner.may_use_from(ip) {
            return Err(ApiError::Forbidden(
                "该 API Key 不允许从此地址使用 / this API key may not be used from your address"
                    .into(),
            ));
        }
        if let Some(slot) = parts.extensions.get::<UserSlot>() {
            slot.set(owner.user_id);
        }
        Ok(ApiKey(owner))
    }
}

/// The console calling the gateway API as its logged-in user: the session cookie and, for every
/// method (the console always sends it), the session's CSRF token. Limits are per user, counted
/// under the negative user id so they never share a bucket with a real key.
async fn console_owner(parts: &mut Parts, state: &AppState) -> Result<ApiKey, ApiError> {
    let given = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let who = super::auth::SessionUser::from_request_parts(parts, state).await?;
    if given.is_empty()
        || !bool::from(subtle::ConstantTimeEq::ct_eq(
            given.as_bytes(),
            who.session.csrf_token.as_bytes(),
        ))
    {
        return Err(ApiError::InvalidApiKey);
    }
    let owner = KeyOwner {
        key_id: -who.user.id,
        user_id: who.user.id,
        expires_at: None,
        models: None,
        allowed_ips: None,
        monthly_limit: None,
    };
    state.limits.check_key_shared(owner.key_id).await?;
    if let Some(slot) = parts.extensions.get::<UserSlot>() {
        slot.set(owner.user_id);
    }
    Ok(ApiKey(Arc::new(owner)))
}

/// The error for a key whose model allow-list does not name `model`.
pub fn model_allowed(owner: &KeyOwner, model: &str) -> Result<(), ApiError> {
    if owner.may_use_model(model) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "该 API Key 不能调用模型 {model} / this API key may not call model {model}"
        )))
    }
}

/// A JSON body (any content type; curl's `-d` sends form encoding by default).
pub struct JsonBody(pub Value);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        // The JSON limit applies even on routes that allow larger multipart bodies.
        let limit = state.config.max_body_bytes;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|e| {
                let too_large = std::error::Error::source(&e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
                if too_large {
                    ApiError::PayloadTooLarge { limit }
                } else {
                    ApiError::InvalidJson("cannot read the request body".into())
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::InvalidJson(
                "the body is empty; send a JSON object".into(),
            ));
        }
        let value =
            serde_json::from_slice(&bytes).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
        Ok(JsonBody(value))
    }
}

/// `Query<T>` whose rejection is the usual JSON 400 (axum's own answers plain text).
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::InvalidParameter(e.body_text()))
    }
}

/// `Path<T>` whose rejection is the usual JSON 400.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| ApiPath(v))
            .map_err(|e| ApiError::InvalidParameter(e.body_text()))
    }
}
