//! [`RelayError`]: why a chat call was refused or failed, in the words the client reads. The API
//! edge (`crate::api::error`) gives each its HTTP status and body.

use crate::billing::engine::LedgerError;
use crate::storage::StoreError;

/// A chat call refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("Invalid JSON body: {0}")]
    InvalidJson(String),
    #[error("Missing required parameter: {0}")]
    MissingParameter(String),
    #[error("Invalid parameter: {0}")]
    InvalidParameter(String),
    #[error("Model not found: {0}")]
    ModelNotFound(String),
    #[error("No available channel for model {0}")]
    NoChannel(String),
    /// A call the balance cannot pay even at its smallest output bound (amounts in credits).
    #[error(
        "Insufficient balance: this call needs at least {needed} credits, balance {balance} (余额不足:本次调用至少需要 {needed} 积分,当前余额 {balance})"
    )]
    BalanceShort { needed: String, balance: String },
    /// The upstream rejected the request itself (400, 404, 413, 422); its message is passed on
    /// because it describes the client's input.
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
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
