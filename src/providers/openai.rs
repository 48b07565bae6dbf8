//! The OpenAI chat protocol, spoken to any compatible server: `POST {base}/chat/completions`
//! with `Authorization: Bearer <key>`, JSON or SSE (`data: {chunk}` … `data: [DONE]`).
//! DashScope channels use the same protocol at `{base}/compatible-mode/v1`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::Value;

use super::{ChatReply, ProviderError, error_message};
use crate::channels::Channel;
use crate::vendor::Vendor;

/// Timeouts for upstream calls.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Until the response headers arrive.
    pub first_byte: Duration,
    /// A whole non-streaming response.
    pub total: Duration,
    /// Silence between two stream events.
    pub idle: Duration,
}

/// OpenAI-compatible chat client.
#[derive(Debug, Clone)]
pub struct OpenAiChat {
    http: reqwest::Client,
    timeouts: Timeouts,
    /// Parsed chat endpoints by channel id, with the base URL they were made from (parsing one
    /// per request was measurable).
    urls: Arc<RwLock<HashMap<i64, Endpoint>>>,
}

/// A channel's parsed chat endpoint.
#[derive(Debug)]
struct Endpoint {
    vendor: Vendor,
    base_url: String,
    url: reqwest::Url,
}

/// The chat endpoint of a channel.
pub fn chat_url(channel: &Channel) -> String {
    let base = channel.base_url.trim_end_matches('/');
    match channel.vendor {
        Vendor::DashScope if !base.ends_with("/compatible-mode/v1") => {
            format!("{base}/compatible-mode/v1/chat/completions")
        }
        _ => format!("{base}/chat/completions"),
    }
}

impl OpenAiChat {
    pub fn new(http: reqwest::Client, timeouts: Timeouts) -> OpenAiChat {
        OpenAiChat {
            http,
            timeouts,
            urls: Arc::default(),
        }
    }

    /// The channel's chat endpoint, parsed again only when the channel's base URL changes.
    fn endpoint(&self, channel: &Channel) -> Result<reqwest::Url, ProviderError> {
        let cached = self.urls.read().ok().and_then(|urls| {
            urls.get(&channel.id)
                .filter(|e| e.vendor == channel.vendor && e.base_url == channel.base_url)
                .map(|e| e.url.clone())
        });
        if let Some(url) = cached {
            return Ok(url);
        }
        let url = reqwest::Url::parse(&chat_url(channel))
            .map_err(|e| ProviderError::Connect(format!("bad channel base URL: {e}")))?;
        if let Ok(mut urls) = self.urls.write() {
            urls.insert(
                channel.id,
                Endpoint {
                    vendor: channel.vendor,
                    base_url: channel.base_url.clone(),
                    url: url.clone(),
                },
            );
        }
        Ok(url)
    }

    /// Send an upstream-shaped body (model already renamed) and read the reply.
    pub async fn send(
        &self,
        channel: &Channel,
        body: &Value,
        stream: bool,
    ) -> Result<ChatReply, ProviderError> {
        let request = self
            .http
            .post(self.endpoint(channel)?)
            .bearer_auth(channel.api_key.expose())
            .header(
                reqwest::header::ACCEPT,
                if stream {
                    "text/event-stream"
                } else {
                    "application/json"
                },
            )
            .json(body);
        let response = tokio::time::timeout(self.timeouts.first_byte, request.send())
            .await
            .map_err(|_| ProviderError::Timeout)?
            .map_err(ProviderError::from_reqwest)?;
        let status = response.status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let retry_after_secs = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            return Err(ProviderError::Throttled { retry_after_secs });
        }
        if !status.is_success() {
            let body = tokio::time::timeout(self.timeouts.first_byte, response.bytes())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            return Err(ProviderError::Status {
                status: status.as_u16(),
                message: error_message(&body),
            });
        }
        let is_sse = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if stream && is_sse {
            return Ok(ChatReply::Stream(self.events(response)));
        }
        let bytes = tokio::time::timeout(self.timeouts.total, response.bytes())
            .await
            .map_err(|_| ProviderError::Timeout)?
            .map_err(ProviderError::from_reqwest)?;
        if !has_choices(&bytes) {
            if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
                return Err(ProviderError::Decode(e.to_string()));
            }
            // HTTP 200 with an error body.
            return Err(ProviderError::Status {
                status: 502,
                message: error_message(&bytes),
            });
        }
        if stream {
            // Asked for a stream, got a whole completion: replay it as one chunk.
            let value: Value =
                serde_json::from_slice(&bytes).map_err(|e| ProviderError::Decode(e.to_string()))?;
            return Ok(ChatReply::Stream(Box::pin(futures_util::stream::iter([
                Ok(completion_as_chunk(value).to_string()),
            ]))));
        }
        Ok(ChatReply::Complete(bytes))
    }

    fn events(&self, response: reqwest::Response) -> super::ChunkStream {
        let idle = self.timeouts.idle;
        let events = response.bytes_stream().eventsource();
        // State is `None` after an error: the stream ends right after yielding it.
        Box::pin(futures_util::stream::unfold(
            Some(events),
            move |state| async move {
                let mut events = state?;
                loop {
                    let item = match tokio::time::timeout(idle, events.next()).await {
                        Err(_) => Err(ProviderError::Timeout),
                        Ok(None) => return None,
                        Ok(Some(Err(e))) => Err(ProviderError::Decode(e.to_string())),
                        Ok(Some(Ok(event))) => {
                            let data = event.data.trim();
                            if data == "[DONE]" {
                                return None;
                            }
                            if data.is_empty() {
                                continue;
                            }
                            // Only a chunk that names "error" can be an error event; the others
                            // go on as text (the relay reads them).
                            if data.contains("\"error\"") {
                                match serde_json::from_str::<Value>(data) {
                                    Ok(v)
                                        if v.get("error").is_some()
                                            && v.get("choices").is_none() =>
                                    {
                                        Err(ProviderError::Event(error_message(data.as_bytes())))
                                    }
                                    Ok(_) => Ok(data.to_owned()),
                                    Err(e) => Err(ProviderError::Decode(e.to_string())),
                                }
                            } else if data.len() == event.data.len() {
                                Ok(event.data)
                            } else {
                                Ok(data.to_owned())
                            }
                        }
                    };
                    let next = if item.is_ok() { Some(events) } else { None };
                    return Some((item, next));
                }
            },
        ))
    }
}

/// Whether an answer is a JSON object with a `choices` member (a completion, not an error body),
/// read without building a `Value`.
fn has_choices(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "present")]
        choices: bool,
    }
    fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        <serde::de::IgnoredAny as serde::Deserialize>::deserialize(d).map(|_| true)
    }
    // A struct also deserializes from a JSON array: only an object counts.
    let is_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    is_object && serde_json::from_slice::<Probe>(body).is_ok_and(|p| p.choices)
}

/// Turn a `chat.completion` into an equivalent single `chat.completion.chunk`.
fn completion_as_chunk(mut value: Value) -> Value {
    if let Some(obj) = value.as_object_mut() {
        obj.insert("object".into(), "chat.completion.chunk".into());
        if let Some(Value::Array(choices)) = obj.get_mut("choices") {
            for choice in choices {
                if let Some(c) = choice.as_object_mut()
                    && let Some(message) = c.remove("message")
                {
                    c.insert("delta".into(), message);
                }
            }
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_choices_tells_a_completion_from_an_error_body() {
        assert!(has_choices(br#"{"id":"x","choices":[]}"#));
        assert!(has_choices(br#"{"choices":null}"#));
        assert!(!has_choices(br#"{"error":{"message":"quota"}}"#));
        assert!(!has_choices(b"<html>bad gateway</html>"));
        assert!(!has_choices(br#"[{"choices":[]}]"#));
    }
}
