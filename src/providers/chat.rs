//! Chat upstreams behind one trait: the relay (and the channel test) send an OpenAI-shaped body
//! through a [`ChatAdapter`] and get a [`ChatReply`] of OpenAI-shaped JSON text back, so it
//! decorates, meters and bills every vendor in one place. [`openai`](super::openai) speaks the
//! OpenAI protocol (OpenAI-compatible servers, DashScope compatible-mode), the
//! [`sandbox`](super::sandbox) answers offline; a vendor with another chat protocol is one file
//! that implements [`ChatAdapter`] (translating its answer into chunks of OpenAI JSON text) and
//! one line in `providers::chat_adapter`. One dynamic call per request; the chunks of a stream
//! are the adapter's own [`super::ChunkStream`], as before.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::Value;

use super::openai::Timeouts;
use super::sandbox::SandboxChat;
use super::{ChatReply, ProviderError};
use crate::channels::Channel;
use crate::vendor::Vendor;

/// A chat upstream's protocol.
pub trait ChatAdapter: Send + Sync + 'static {
    /// Send an upstream-shaped body (`model` already the upstream's name) and read the reply.
    /// `channel` is the account called; `None` only for the sandbox.
    fn send<'a>(
        &'a self,
        channel: Option<&'a Channel>,
        body: &'a Value,
        stream: bool,
    ) -> BoxFuture<'a, Result<ChatReply, ProviderError>>;
}

/// What the chat adapters are made with.
#[derive(Debug, Clone)]
pub struct ChatDeps {
    pub http: reqwest::Client,
    pub timeouts: Timeouts,
    /// Pause between two sandbox chunks.
    pub sandbox_chunk_delay: Duration,
}

/// The chat adapter of each vendor that serves chat (built from [`Vendor::ALL`]).
#[derive(Clone)]
pub struct ChatAdapters {
    by_vendor: Vec<(Vendor, Arc<dyn ChatAdapter>)>,
}

impl fmt::Debug for ChatAdapters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.by_vendor.iter().map(|(v, _)| v.as_str()))
            .finish()
    }
}

impl ChatAdapters {
    pub fn new(deps: &ChatDeps) -> ChatAdapters {
        ChatAdapters {
            by_vendor: Vendor::ALL
                .into_iter()
                .filter_map(|vendor| Some((vendor, super::chat_adapter(vendor, deps)?)))
                .collect(),
        }
    }

    /// The adapter of a vendor.
    pub fn get(&self, vendor: Vendor) -> Option<&Arc<dyn ChatAdapter>> {
        self.by_vendor
            .iter()
            .find(|(v, _)| *v == vendor)
            .map(|(_, a)| a)
    }

    /// Send through the channel's vendor (`None`: the sandbox).
    pub async fn send(
        &self,
        channel: Option<&Channel>,
        body: &Value,
        stream: bool,
    ) -> Result<ChatReply, ProviderError> {
        let vendor = channel.map_or(Vendor::Sandbox, |c| c.vendor);
        match self.get(vendor) {
            Some(adapter) => adapter.send(channel, body, stream).await,
            // Channels are checked to serve chat only through chat vendors: another channel may.
            None => Err(ProviderError::Event(format!(
                "{} channels serve no chat",
                vendor.as_str()
            ))),
        }
    }
}

impl ChatAdapter for super::openai::OpenAiChat {
    fn send<'a>(
        &'a self,
        channel: Option<&'a Channel>,
        body: &'a Value,
        stream: bool,
    ) -> BoxFuture<'a, Result<ChatReply, ProviderError>> {
        Box::pin(async move {
            let channel = channel.ok_or_else(|| {
                ProviderError::Event("internal: an OpenAI call without a channel".into())
            })?;
            super::openai::OpenAiChat::send(self, channel, body, stream).await
        })
    }
}

impl ChatAdapter for SandboxChat {
    fn send<'a>(
        &'a self,
        _channel: Option<&'a Channel>,
        body: &'a Value,
        stream: bool,
    ) -> BoxFuture<'a, Result<ChatReply, ProviderError>> {
        Box::pin(std::future::ready(SandboxChat::send(self, body, stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The channel vendors said to serve chat are exactly those with a chat adapter.
    #[test]
    fn every_chat_vendor_has_an_adapter() {
        let adapters = ChatAdapters::new(&ChatDeps {
            http: reqwest::Client::new(),
            timeouts: Timeouts {
                first_byte: Duration::from_secs(1),
                total: Duration::from_secs(1),
                idle: Duration::from_secs(1),
            },
            sandbox_chunk_delay: Duration::ZERO,
        });
        for vendor in Vendor::channel_vendors() {
            assert_eq!(
                adapters.get(vendor).is_some(),
                vendor.serves_chat(),
                "{vendor}"
            );
        }
        assert!(adapters.get(Vendor::Sandbox).is_some());
    }
}
