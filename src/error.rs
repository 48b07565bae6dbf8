//! [`ApiError`]: every error a client can see, mapped to its HTTP status and the seed's
//! `{"error": "<message>"}` body in exactly one place.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::billing::ledger::LedgerError;
use crate::storage::StoreError;

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
            ApiError::InsufficientBalance | ApiError::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
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
        }
    }

    /// The JSON body: `{"error": "<message>"}`.
    pub fn body(&self) -> String {
        serde_json::json!({ "error": self.to_string() }).to_string()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %self, "request failed");
        }
        let mut response = (status, self.body()).into_response();
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

impl From<crate::accounts::codes::CodeError> for ApiError {
    fn from(e: crate::accounts::codes::CodeError) -> Self {
        use crate::accounts::codes::CodeError;
        match e {
            CodeError::TooSoon(secs) => ApiError::CodeRefused {
                message: e.to_string(),
                retry_after_secs: Some(secs),
            },
            CodeError::DailyCap | CodeError::IpCap => ApiError::CodeRefused {
                message: e.to_string(),
                retry_after_secs: None,
            },
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
                "amount must be between -{0} and {0}",
                crate::billing::ledger::MAX_CHANGE
            )),
            LedgerError::Store(e) => e.into(),
        }
    }
}
