//! Vendor protocols, one file per vendor, each an adapter: chat through a [`chat::ChatAdapter`]
//! ([`openai`] for any OpenAI-compatible server and DashScope compatible-mode, or the offline
//! [`sandbox`]), answering with a [`ChatReply`] of OpenAI-shaped JSON text so the relay
//! decorates, meters and bills them in one place; image/video tasks through a
//! [`media::MediaAdapter`] (pure build/parse functions) over the shared [`transport`].
//! [`media_adapter`] and [`chat_adapter`] are the registry: the one place each [`Vendor`]'s
//! adapters are named (see `docs/adding-a-vendor.md`).
//! [`probe`] tests a channel through its vendor's protocol (the console's "测试").

pub mod ark;
pub mod chat;
pub mod dashscope;
pub mod media;
pub mod openai;
pub mod probe;
pub mod sandbox;
pub mod transport;
pub mod vidu;
pub mod zhipu;

use std::pin::Pin;

use futures_util::Stream;
use serde_json::Value;

use crate::vendor::Vendor;
use chat::{ChatAdapter, ChatDeps};
use media::MediaAdapter;

/// The registry of media adapters: the one place a vendor's image/video protocol is named
/// (`None`: the vendor makes no media, or it is the sandbox, which `media::MediaBackend` runs
/// itself). The task engine builds its backends by asking this for every [`Vendor::ALL`].
pub fn media_adapter(vendor: Vendor) -> Option<&'static dyn MediaAdapter> {
    match vendor {
        Vendor::DashScope => Some(&dashscope::DashScope),
        Vendor::Ark => Some(&ark::Ark {
            vendor: Vendor::Ark,
        }),
        Vendor::ModelArk => Some(&ark::Ark {
            vendor: Vendor::ModelArk,
        }),
        Vendor::Vidu => Some(&vidu::Vidu),
        Vendor::Zhipu => Some(&zhipu::Zhipu),
        Vendor::OpenAi | Vendor::Sandbox => None,
    }
}

/// The registry of chat adapters: the one place a vendor's chat protocol is named (`None`: the
/// vendor serves no chat). `chat::ChatAdapters` asks it for every [`Vendor::ALL`].
pub fn chat_adapter(vendor: Vendor, deps: &ChatDeps) -> Option<std::sync::Arc<dyn ChatAdapter>> {
    match vendor {
        // DashScope chat is its OpenAI-compatible mode (`openai::chat_url`).
        Vendor::OpenAi | Vendor::DashScope => Some(std::sync::Arc::new(openai::OpenAiChat::new(
            deps.http.clone(),
            deps.timeouts,
        ))),
        Vendor::Sandbox => Some(std::sync::Arc::new(sandbox::SandboxChat {
            chunk_delay: deps.sandbox_chunk_delay,
        })),
        Vendor::Ark | Vendor::ModelArk | Vendor::Vidu | Vendor::Zhipu => None,
    }
}

/// A stream of `chat.completion.chunk` objects, each as the JSON text the upstream sent (the relay
/// reads and rewrites it without building a `Value`; see `relay::rewrite`).
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<String, ProviderError>> + Send>>;

/// What a chat upstream answered.
pub enum ChatReply {
    /// A whole `chat.completion` object, as JSON text (checked to have `choices`).
    Complete(bytes::Bytes),
    /// Chunks, ending when the upstream sent `[DONE]` (or closed).
    Stream(ChunkStream),
}

/// An upstream failure, before or during a response.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("cannot connect to upstream: {0}")]
    Connect(String),
    #[error("upstream timed out")]
    Timeout,
    #[error("upstream answered HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("upstream sent an unreadable response: {0}")]
    Decode(String),
    #[error("upstream reported an error: {0}")]
    Event(String),
    /// HTTP 429 from the upstream, with its `Retry-After` (seconds) when it sent one.
    #[error("upstream rate limit exceeded")]
    Throttled { retry_after_secs: Option<u64> },
}

impl ProviderError {
    /// Whether another channel may succeed where this one failed (nothing reached the client yet).
    pub fn retryable(&self) -> bool {
        match self {
            ProviderError::Connect(_)
            | ProviderError::Timeout
            | ProviderError::Event(_)
            | ProviderError::Throttled { .. } => true,
            ProviderError::Status { status, .. } => {
                *status == 408
                    || *status == 429
                    || *status >= 500
                    || *status == 401
                    || *status == 403
            }
            ProviderError::Decode(_) => true,
        }
    }

    pub(crate) fn from_reqwest(e: reqwest::Error) -> ProviderError {
        if e.is_timeout() {
            ProviderError::Timeout
        } else if e.is_connect() {
            ProviderError::Connect(without_url(&e))
        } else if e.is_decode() || e.is_body() {
            ProviderError::Decode(without_url(&e))
        } else {
            ProviderError::Connect(without_url(&e))
        }
    }
}

/// reqwest's message without the URL (a base URL may carry credentials or internal hosts).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<upstream>");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The human message inside an upstream error body (OpenAI `{"error":{"message"}}`,
/// `{"error":"…"}`, DashScope/Vidu `{"message"}`), cut to a sane length.
pub fn error_message(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v.get("error")
            .and_then(|e| {
                e.get("message")
                    .and_then(Value::as_str)
                    .or_else(|| e.as_str())
            })
            .or_else(|| v.get("message").and_then(Value::as_str))
            .map(str::to_owned)
    });
    let message = message.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    let mut message: String = message.chars().take(500).collect();
    if message.is_empty() {
        message.push_str("no details");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages() {
        assert_eq!(
            error_message(br#"{"error":{"message":"bad key","type":"x"}}"#),
            "bad key"
        );
        assert_eq!(error_message(br#"{"error":"nope"}"#), "nope");
        assert_eq!(
            error_message(br#"{"code":"Throttling","message":"slow down"}"#),
            "slow down"
        );
        assert_eq!(error_message(b"<html>502</html>"), "<html>502</html>");
        assert_eq!(error_message(b""), "no details");
        assert!(
            ProviderError::Status {
                status: 503,
                message: String::new()
            }
            .retryable()
        );
        assert!(
            !ProviderError::Status {
                status: 400,
                message: String::new()
            }
            .retryable()
        );
    }
}
