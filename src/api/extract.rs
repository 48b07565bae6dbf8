//! Extractors: the API-key owner (`Authorization: Bearer sk-…`) and a JSON body whose every
//! failure (too large, unreadable, not JSON) becomes an [`ApiError`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde_json::Value;

use super::UserSlot;
use crate::accounts::keys::KeyOwner;
use crate::error::ApiError;
use crate::server::AppState;

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
        let (scheme, key) = header.trim().split_once(' ').unwrap_or(("", ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::InvalidApiKey);
        }
        let owner = state
            .keys
            .authenticate(key.trim())
            .await?
            .ok_or(ApiError::InvalidApiKey)?;
        if let Some(slot) = parts.extensions.get::<UserSlot>() {
            slot.set(owner.user_id);
        }
        Ok(ApiKey(owner))
    }
}

/// A JSON body (any content type; curl's `-d` sends form encoding by default).
pub struct JsonBody(pub Value);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = state.config.max_body_bytes;
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
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
