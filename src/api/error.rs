//! [`ApiError`]: every error a client can see, mapped to its HTTP status, a stable snake_case
//! code, and its two bodies in exactly one place: the seed's `{"error": "<message>"}` and
//! OpenAI's error object `{"error": {"message", "type", "param", "code"}}`. Which body a response
//! carries is decided per route by [`ErrorStyle`] (the OpenAI routes and every `/v1` route use
//! OpenAI's; the seed's routes keep the seed's).
//!
//! Domain code returns its own errors ([`ValidationError`], [`RelayError`], [`TaskError`],
//! [`SpendError`], [`CodeError`], [`FileError`], [`LedgerError`], [`StoreError`]); the `From`
//! impls here, at the API edge, turn each into the error the client sees.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::accounts::codes::CodeError;
use crate::accounts::spend::SpendError;
use crate::billing::ledger::LedgerError;
use crate::catalog::validate::ValidationError;
use crate::relay::error::RelayError;
use crate::storage::StoreError;
use crate::storage::files::FileError;
use crate::tasks::service::TaskError;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Invalid API Key")]
    InvalidApiKey,
    #[error("Missing required parameter: {0}")]
    MissingParameter(String),
    #[error("Invalid parameter: {0}")]
    InvalidParameter(String),
    #[error("Invalid JSON body: {0}")]
    InvalidJson(String),
    #[error("Request body too large (limit {limit} bytes)")]
    PayloadTooLarge { limit: usize },
    #[error("Model not found: {0}")]
    ModelNotFound(String),
    #[error("Not found: {0}")]
    NotFound(String),
    /// The request conflicts with the current state (e.g. deleting a channel still in use).
    #[error("{0}")]
    Conflict(String),
    #[error("Insufficient balance")]
    InsufficientBalance,
    /// A call the balance cannot pay even at its smallest output bound (amounts in credits).
    #[error(
        "Insufficient balance: this call needs at least {needed} credits, balance {balance} (余额不足:本次调用至少需要 {needed} 积分,当前余额 {balance})"
    )]
    BalanceShort { needed: String, balance: String },
    /// The call would take the key past the monthly spend limit its owner set.
    #[error(
        "该 API Key 本月消费已达上限（已用 {spent} 积分，本次需 {hold} 积分，上限 {limit} 积分）/ this API key's monthly spend limit would be exceeded (spent {spent}, this call {hold}, limit {limit} credits)"
    )]
    KeySpendLimit {
        limit: String,
        spent: String,
        hold: String,
    },
    /// Too many requests; retry after the given number of seconds (sent as `Retry-After`).
    #[error("Too many requests, retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("No available channel for model {0}")]
    NoChannel(String),
    /// The upstream rejected the request itself (a 4xx other than auth/429); its message is
    /// passed on because it describes the client's input.
    #[error("Upstream rejected the request: {message}")]
    UpstreamRejected { status: u16, message: String },
    /// Every upstream failed (connect errors, 5xx, 429, auth problems on our side).
    #[error("Upstream error: {0}")]
    UpstreamFailed(String),
    #[error("Upstream timed out")]
    UpstreamTimeout,
    /// Every upstream channel is rate-limiting us; retry after the given seconds.
    #[error("Upstream busy (rate limited), retry after {retry_after_secs} s")]
    UpstreamBusy { retry_after_secs: u64 },
    #[error("Service temporarily unavailable")]
    Unavailable,
    /// A feature this server was not configured for (e.g. Alipay recharge).
    #[error("{0}")]
    NotConfigured(String),
    #[error("Internal server error")]
    Internal,
    /// A console request without a live session.
    #[error("请先登录 / login required")]
    LoginRequired,
    #[error("{0}")]
    Forbidden(String),
    /// A login code not accepted (wrong, expired, locked).
    #[error("{0}")]
    BadCode(String),
    /// A login code not sent (too soon, daily or address cap); `Retry-After` when known.
    #[error("{message}")]
    CodeRefused {
        message: String,
        retry_after_secs: Option<u64>,
    },
    /// An `Idempotency-Key` already used for a different request body.
    #[error("Idempotency-Key {0} was already used with a different request body")]
    IdempotencyKeyReused(String),
    /// We stopped waiting (the work goes on); the message says what to look at.
    #[error("{0}")]
    Timeout(String),
}

impl ApiError {
    /// The HTTP status of each error (exhaustive, no catch-all).
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidApiKey => StatusCode::UNAUTHORIZED,
            ApiError::MissingParameter(_)
            | ApiError::InvalidParameter(_)
            | ApiError::InvalidJson(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::ModelNotFound(_) | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::InsufficientBalance
            | ApiError::BalanceShort { .. }
            | ApiError::KeySpendLimit { .. }
            | ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NoChannel(_)
            | ApiError::Unavailable
            | ApiError::NotConfigured(_)
            | ApiError::UpstreamBusy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::UpstreamRejected { status, .. } => match *status {
                400 | 404 | 413 | 422 => {
                    StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST)
                }
                _ => StatusCode::BAD_REQUEST,
            },
            ApiError::UpstreamFailed(_) => StatusCode::BAD_GATEWAY,
            ApiError::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::LoginRequired => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadCode(_) => StatusCode::BAD_REQUEST,
            ApiError::CodeRefused { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::IdempotencyKeyReused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// A stable snake_case code per variant (for clients and the console; never changes once
    /// published). The OpenAI-style codes (`invalid_api_key`, `model_not_found`,
    /// `insufficient_quota`, `rate_limit_exceeded`) are spelled as OpenAI spells them.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidApiKey => "invalid_api_key",
            ApiError::MissingParameter(_) => "missing_parameter",
            ApiError::InvalidParameter(_) => "invalid_parameter",
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::ModelNotFound(_) => "model_not_found",
            ApiError::NotFound(_) => "not_found",
            ApiError::InsufficientBalance | ApiError::BalanceShort { .. } => "insufficient_quota",
            ApiError::RateLimited { .. } => "rate_limit_exceeded",
            ApiError::KeySpendLimit { .. } => "key_spend_limit",
            ApiError::NoChannel(_) => "no_channel",
            ApiError::UpstreamRejected { .. } => "upstream_rejected",
            ApiError::UpstreamFailed(_) => "upstream_failed",
            ApiError::UpstreamTimeout => "upstream_timeout",
            ApiError::UpstreamBusy { .. } => "upstream_busy",
            ApiError::Unavailable => "unavailable",
            ApiError::NotConfigured(_) => "not_configured",
            ApiError::Internal => "internal_error",
            ApiError::LoginRequired => "login_required",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::BadCode(_) => "bad_code",
            ApiError::CodeRefused { .. } => "code_refused",
            ApiError::IdempotencyKeyReused(_) => "idempotency_key_reused",
            ApiError::Timeout(_) => "timeout",
            ApiError::Conflict(_) => "conflict",
        }
    }

    /// The OpenAI error `type` of each error (the families OpenAI's SDKs and docs use).
    pub fn openai_type(&self) -> &'static str {
        match self {
            ApiError::InvalidApiKey | ApiError::LoginRequired => "authentication_error",
            ApiError::InsufficientBalance | ApiError::BalanceShort { .. } => "insufficient_quota",
            ApiError::RateLimited { .. }
            | ApiError::CodeRefused { .. }
            | ApiError::KeySpendLimit { .. } => "rate_limit_error",
            ApiError::Forbidden(_) => "permission_error",
            ApiError::MissingParameter(_)
            | ApiError::InvalidParameter(_)
            | ApiError::InvalidJson(_)
            | ApiError::PayloadTooLarge { .. }
            | ApiError::ModelNotFound(_)
            | ApiError::NotFound(_)
            | ApiError::UpstreamRejected { .. }
            | ApiError::BadCode(_)
            | ApiError::IdempotencyKeyReused(_)
            | ApiError::Conflict(_) => "invalid_request_error",
            ApiError::NoChannel(_)
            | ApiError::UpstreamFailed(_)
            | ApiError::UpstreamTimeout
            | ApiError::UpstreamBusy { .. }
            | ApiError::Unavailable
            | ApiError::NotConfigured(_)
            | ApiError::Internal
            | ApiError::Timeout(_) => "server_error",
        }
    }

    /// The request parameter an error is about, when it names one.
    fn param(&self) -> Option<&str> {
        match self {
            ApiError::MissingParameter(name) => Some(name),
            ApiError::ModelNotFound(_) => Some("model"),
            _ => None,
        }
    }

    /// The seed's JSON body: `{"error": "<message>"}`.
    pub fn body(&self) -> String {
        serde_json::json!({ "error": self.to_string() }).to_string()
    }

    /// OpenAI's error object: `{"error": {"message", "type", "param", "code"}}`.
    pub fn openai_body(&self) -> String {
        serde_json::json!({ "error": {
            "message": self.to_string(),
            "type": self.openai_type(),
            "param": self.param(),
            "code": self.code(),
        }})
        .to_string()
    }
}

/// Which error body a route answers with, put on the request by the router (absent: the seed's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStyle {
    /// `{"error": "<message>"}`: the seed's routes under `/llmage/v1` and the console's `/api`.
    Seed,
    /// OpenAI's error object: every route under `/v1` and the OpenAI-only routes under
    /// `/llmage/v1`.
    OpenAi,
}

/// The error carried by a response, so that the router can render it in its route's style
/// after the handler has answered (see `crate::api::error_style`).
#[derive(Debug, Clone)]
pub struct ErrorBodies {
    pub openai: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %self, "request failed");
        }
        let mut response = (status, self.body()).into_response();
        response.extensions_mut().insert(ErrorBodies {
            openai: self.openai_body(),
        });
        response
            .extensions_mut()
            .insert(crate::api::error_codes::ErrorCode::of(&self));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let retry_after = match &self {
            ApiError::RateLimited { retry_after_secs }
            | ApiError::UpstreamBusy { retry_after_secs } => Some(*retry_after_secs),
            ApiError::CodeRefused {
                retry_after_secs, ..
            } => *retry_after_secs,
            _ => None,
        };
        if let Some(retry_after_secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

impl From<CodeError> for ApiError {
    fn from(e: CodeError) -> Self {
        match e {
            CodeError::TooSoon(secs) => ApiError::CodeRefused {
                message: e.to_string(),
                retry_after_secs: Some(secs),
            },
            CodeError::DailyCap | CodeError::IpCap | CodeError::DeviceCap => {
                ApiError::CodeRefused {
                    message: e.to_string(),
                    retry_after_secs: None,
                }
            }
            CodeError::Wrong | CodeError::Expired | CodeError::Locked => {
                ApiError::BadCode(e.to_string())
            }
            CodeError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "database error");
        if e.is_unavailable() {
            ApiError::Unavailable
        } else {
            ApiError::Internal
        }
    }
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::InsufficientBalance => ApiError::InsufficientBalance,
            LedgerError::UnknownUser => ApiError::NotFound("user".into()),
            LedgerError::OutOfRange => ApiError::InvalidParameter(format!(
                "amount must be between -{0} and {0} credits",
                crate::billing::credits_text(crate::billing::ledger::MAX_CHANGE)
            )),
            // Never reaches a handler: the chat holds start a new lease instead.
            LedgerError::LeaseGone => ApiError::Internal,
            LedgerError::Store(e) => e.into(),
        }
    }
}

impl From<FileError> for ApiError {
    fn from(e: FileError) -> Self {
        match e {
            FileError::NotFound => ApiError::NotFound("file".into()),
            FileError::ObjectMissing(_) => {
                tracing::error!(error = %e, "stored file lost");
                ApiError::NotFound("file".into())
            }
            FileError::InvalidRange { .. } => ApiError::InvalidParameter("range".into()),
            FileError::Store(e) => e.into(),
            FileError::SizeMismatch { .. }
            | FileError::Object(_)
            | FileError::Io { .. }
            | FileError::Staging(_) => {
                tracing::error!(error = %e, "file storage failure");
                ApiError::Unavailable
            }
        }
    }
}

impl From<SpendError> for ApiError {
    fn from(e: SpendError) -> Self {
        match e {
            SpendError::OverLimit { limit, spent, hold } => {
                ApiError::KeySpendLimit { limit, spent, hold }
            }
            SpendError::Store(e) => e.into(),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        match e {
            ValidationError::MissingParameter(name) => ApiError::MissingParameter(name),
            ValidationError::InvalidParameter(why) => ApiError::InvalidParameter(why),
            ValidationError::ModelNotFound(model) => ApiError::ModelNotFound(model),
        }
    }
}

impl From<RelayError> for ApiError {
    fn from(e: RelayError) -> Self {
        match e {
            RelayError::InvalidJson(why) => ApiError::InvalidJson(why),
            RelayError::MissingParameter(name) => ApiError::MissingParameter(name),
            RelayError::InvalidParameter(why) => ApiError::InvalidParameter(why),
            RelayError::ModelNotFound(model) => ApiError::ModelNotFound(model),
            RelayError::NoChannel(model) => ApiError::NoChannel(model),
            RelayError::BalanceShort { needed, balance } => {
                ApiError::BalanceShort { needed, balance }
            }
            RelayError::UpstreamRejected { status, message } => {
                ApiError::UpstreamRejected { status, message }
            }
            RelayError::UpstreamFailed(why) => ApiError::UpstreamFailed(why),
            RelayError::UpstreamTimeout => ApiError::UpstreamTimeout,
            RelayError::UpstreamBusy { retry_after_secs } => {
                ApiError::UpstreamBusy { retry_after_secs }
            }
            RelayError::Ledger(e) => e.into(),
            RelayError::Store(e) => e.into(),
        }
    }
}

impl From<TaskError> for ApiError {
    fn from(e: TaskError) -> Self {
        match e {
            TaskError::InvalidParameter(why) => ApiError::InvalidParameter(why),
            TaskError::NoChannel(model) => ApiError::NoChannel(model),
            TaskError::NotFound(what) => ApiError::NotFound(what),
            TaskError::IdempotencyKeyReused(key) => ApiError::IdempotencyKeyReused(key),
            TaskError::Internal => ApiError::Internal,
            TaskError::Ledger(e) => e.into(),
            TaskError::Store(e) => e.into(),
            TaskError::File(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_bodies_carry_the_reason() {
        let body: serde_json::Value =
            serde_json::from_str(&ApiError::InvalidApiKey.openai_body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {"message": "Invalid API Key", "type": "authentication_error", "param": null, "code": "invalid_api_key"}})
        );
        let limited = ApiError::RateLimited {
            retry_after_secs: 2,
        };
        assert_eq!(
            (limited.status(), limited.code(), limited.openai_type()),
            (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                "rate_limit_error"
            )
        );
        let poor = ApiError::InsufficientBalance;
        assert_eq!(
            (poor.status(), poor.code()),
            (StatusCode::TOO_MANY_REQUESTS, "insufficient_quota")
        );
        let missing = ApiError::MissingParameter("prompt".into());
        let body: serde_json::Value = serde_json::from_str(&missing.openai_body()).unwrap();
        assert_eq!(body["error"]["param"], "prompt");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        let reused = ApiError::IdempotencyKeyReused("k1".into());
        assert_eq!(reused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reused.to_string().contains("k1"));
        // The seed's body is unchanged.
        assert_eq!(
            ApiError::InvalidApiKey.body(),
            r#"{"error":"Invalid API Key"}"#
        );
    }

    /// Domain errors read the same as the API errors they become (the message is the body).
    #[test]
    fn domain_errors_keep_their_message_at_the_edge() {
        let relay = [
            RelayError::InvalidJson("x".into()),
            RelayError::MissingParameter("model".into()),
            RelayError::InvalidParameter("n".into()),
            RelayError::ModelNotFound("m".into()),
            RelayError::NoChannel("m".into()),
            RelayError::BalanceShort {
                needed: "1".into(),
                balance: "0".into(),
            },
            RelayError::UpstreamRejected {
                status: 422,
                message: "bad".into(),
            },
            RelayError::UpstreamFailed("down".into()),
            RelayError::UpstreamTimeout,
            RelayError::UpstreamBusy {
                retry_after_secs: 3,
            },
        ];
        for e in relay {
            let text = e.to_string();
            assert_eq!(ApiError::from(e).to_string(), text);
        }
        let tasks = [
            TaskError::InvalidParameter("n".into()),
            TaskError::NoChannel("m".into()),
            TaskError::NotFound("task t".into()),
            TaskError::IdempotencyKeyReused("k".into()),
            TaskError::Internal,
        ];
        for e in tasks {
            let text = e.to_string();
            assert_eq!(ApiError::from(e).to_string(), text);
        }
        let checks = [
            ValidationError::MissingParameter("prompt".into()),
            ValidationError::InvalidParameter("size".into()),
            ValidationError::ModelNotFound("m".into()),
        ];
        for e in checks {
            let text = e.to_string();
            assert_eq!(ApiError::from(e).to_string(), text);
        }
        let over = SpendError::OverLimit {
            limit: "10".into(),
            spent: "9".into(),
            hold: "2".into(),
        };
        let text = over.to_string();
        let over = ApiError::from(over);
        assert_eq!(over.to_string(), text);
        assert_eq!(
            (over.status(), over.code()),
            (StatusCode::TOO_MANY_REQUESTS, "key_spend_limit")
        );
    }
}
