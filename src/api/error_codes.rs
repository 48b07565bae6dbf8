//! Stable error codes for the console's own endpoints (`/api/*`): the JSON error body there
//! carries `code` next to `error`, and the console translates by code (never by matching the
//! English text). The gateway surface (`/llmage/v1`) keeps the seed's exact `{"error": "…"}`
//! for API-key clients; the console calling it with its session (no `Authorization`) gets the
//! code too.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ApiError;

/// The code of an error and its variable part (a field name, a model id), attached to its
/// response by `ApiError::into_response`.
#[derive(Clone, Debug)]
pub struct ErrorCode {
    pub code: &'static str,
    pub detail: Option<String>,
}

impl ErrorCode {
    pub fn of(e: &ApiError) -> ErrorCode {
        let detail = match e {
            ApiError::MissingParameter(d)
            | ApiError::InvalidParameter(d)
            | ApiError::InvalidJson(d)
            | ApiError::ModelNotFound(d)
            | ApiError::NotFound(d)
            | ApiError::NoChannel(d)
            | ApiError::UpstreamFailed(d) => Some(d.clone()),
            ApiError::UpstreamRejected { message, .. } => Some(message.clone()),
            ApiError::RateLimited { retry_after_secs }
            | ApiError::UpstreamBusy { retry_after_secs } => Some(retry_after_secs.to_string()),
            _ => None,
        };
        ErrorCode {
            code: code(e),
            detail,
        }
    }
}

/// One code per kind of error (exhaustive: a new variant must be given one).
pub fn code(e: &ApiError) -> &'static str {
    match e {
        ApiError::InvalidApiKey => "invalid_api_key",
        ApiError::MissingParameter(_) => "missing_parameter",
        ApiError::InvalidParameter(_) => "invalid_parameter",
        ApiError::InvalidJson(_) => "invalid_json",
        ApiError::PayloadTooLarge { .. } => "payload_too_large",
        ApiError::ModelNotFound(_) => "model_not_found",
        ApiError::NotFound(_) => "not_found",
        ApiError::InsufficientBalance | ApiError::BalanceShort { .. } => "insufficient_balance",
        ApiError::KeySpendLimit { .. } => "key_spend_limit",
        ApiError::RateLimited { .. } => "rate_limited",
        ApiError::NoChannel(_) => "no_channel",
        ApiError::UpstreamRejected { .. } => "upstream_rejected",
        ApiError::UpstreamFailed(_) => "upstream_error",
        ApiError::UpstreamTimeout => "upstream_timeout",
        ApiError::UpstreamBusy { .. } => "upstream_busy",
        ApiError::Unavailable => "unavailable",
        ApiError::NotConfigured(_) => "not_configured",
        ApiError::Internal => "internal_error",
        ApiError::LoginRequired => "login_required",
        ApiError::Forbidden(_) => "forbidden",
        ApiError::BadCode(_) => "bad_sms_code",
        ApiError::CodeRefused { .. } => "sms_code_refused",
        ApiError::IdempotencyKeyReused(_) => "idempotency_key_reused",
        ApiError::Timeout(_) => "timeout",
        ApiError::Conflict(_) => "conflict",
    }
}

/// Most bytes of an error body this layer will rewrite (errors are short).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// On `/api/*` and for the console's session: add `code` (and `detail`) to an [`ApiError`] body.
pub async fn add_code(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let console = request.uri().path().starts_with("/api/")
        || (!headers.contains_key(header::AUTHORIZATION)
            && super::auth::has_session_cookie(headers));
    let response = next.run(request).await;
    let Some(found) = response.extensions().get::<ErrorCode>().cloned() else {
        return response;
    };
    if !console {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let out = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(mut obj)) => {
            obj.insert("code".into(), found.code.into());
            if let Some(detail) = found.detail {
                obj.insert("detail".into(), detail.into());
            }
            parts.headers.remove(header::CONTENT_LENGTH);
            serde_json::Value::Object(obj).to_string().into_bytes()
        }
        _ => bytes.to_vec(),
    };
    Response::from_parts(parts, Body::from(out))
}
