//! "测试" for a channel (the console's channel page): the smallest call that proves the base URL
//! answers and the key is accepted, with its latency or the vendor's own error message.
//!
//! Chat channels get a one-token chat completion of one of their chat models (the real chat
//! path, the vendor's `ChatAdapter`). Media-only channels get a read call that costs nothing: the
//! vendor's task query for a task id that cannot exist. A vendor that knows the key answers
//! "no such task" (any HTTP answer but 401/403/5xx); one that does not know it answers 401/403
//! with its message. The query is the adapter's (`MediaAdapter::probe_request`).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::catalog::Catalog;
use crate::channels::Channel;
use crate::providers::chat::ChatAdapters;
use crate::providers::{ChatReply, ProviderError, error_message};

/// How long a test may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// The outcome of a channel test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub ok: bool,
    pub latency_ms: u64,
    /// What went wrong (the vendor's message when it sent one).
    pub error: Option<String>,
}

/// What a channel test sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeCall {
    /// A one-token chat completion of this upstream model name.
    Chat { upstream: String },
    /// A GET of this URL with this `Authorization` header value.
    Read { url: String, authorization: String },
}

/// The call that tests `channel`: a chat completion when it serves a chat model (or a model
/// only it knows, which is chat), else the vendor's task query.
pub fn call_for(channel: &Channel, catalog: &Catalog) -> ProbeCall {
    if channel.vendor.serves_chat()
        && let Some(route) = channel
            .models
            .iter()
            .find(|r| catalog.get(&r.model).is_none_or(|m| m.is_chat()))
    {
        return ProbeCall::Chat {
            upstream: route.upstream.clone(),
        };
    }
    // An openai channel without a chat model (embeddings only) gets DashScope's native query,
    // as it always has.
    let adapter = super::media_adapter(channel.vendor).unwrap_or(&super::dashscope::DashScope);
    let request = adapter.probe_request(&channel.base_url);
    let (url, authorization) = (
        request.url,
        request.auth.header_value(channel.api_key.expose()),
    );
    ProbeCall::Read { url, authorization }
}

/// Run the test.
pub async fn run(
    http: &reqwest::Client,
    chat: &ChatAdapters,
    channel: &Channel,
    catalog: &Catalog,
) -> Probe {
    let started = Instant::now();
    let outcome = tokio::time::timeout(PROBE_TIMEOUT, async {
        match call_for(channel, catalog) {
            ProbeCall::Chat { upstream } => {
                let body = json!({
                    "model": upstream,
                    "messages": [{"role": "user", "content": "ping"}],
                    "max_tokens": 1,
                    "stream": false,
                });
                match chat.send(Some(channel), &body, false).await {
                    Ok(ChatReply::Complete(_)) => Ok(()),
                    Ok(ChatReply::Stream(_)) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            ProbeCall::Read { url, authorization } => {
                let response = http
                    .get(&url)
                    .header(reqwest::header::AUTHORIZATION, authorization)
                    .send()
                    .await
                    .map_err(ProviderError::from_reqwest)?;
                let status = response.status();
                let body = response.bytes().await.unwrap_or_default();
                read_verdict(status.as_u16(), &body)
            }
        }
    })
    .await
    .unwrap_or(Err(ProviderError::Timeout));
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok(()) => Probe {
            ok: true,
            latency_ms,
            error: None,
        },
        Err(error) => Probe {
            ok: false,
            latency_ms,
            error: Some(describe(&error)),
        },
    }
}

/// A read call's answer: the key was refused (401/403), the vendor is failing (5xx, 429), or it
/// answered (the key is good even when the task does not exist).
fn read_verdict(status: u16, body: &[u8]) -> Result<(), ProviderError> {
    match status {
        401 | 403 | 429 | 500..=599 => Err(ProviderError::Status {
            status,
            message: error_message(body),
        }),
        _ => Ok(()),
    }
}

fn describe(e: &ProviderError) -> String {
    match e {
        ProviderError::Status { status, message } => format!("HTTP {status}: {message}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::ModelRoute;
    use crate::secrets::Secret;
    use crate::vendor::Vendor;

    fn channel(vendor: Vendor, base: &str, models: &[&str]) -> Channel {
        Channel {
            id: 1,
            name: "c".into(),
            vendor,
            base_url: base.into(),
            api_key: Secret::new("k-1"),
            models: models.iter().filter_map(|m| ModelRoute::parse(m)).collect(),
            priority: 0,
            weight: 1,
            enabled: true,
            price_in: None,
            price_out: None,
            cooling_until: None,
            cooling_reason: None,
            max_concurrency: None,
            rpm: None,
        }
    }

    #[test]
    fn chat_channels_get_a_chat_call_media_channels_a_task_query() {
        let catalog = Catalog::builtin().unwrap();
        let c = channel(Vendor::OpenAi, "http://h/v1", &["my-model=up-name"]);
        assert_eq!(
            call_for(&c, &catalog),
            ProbeCall::Chat {
                upstream: "up-name".into()
            }
        );
        let c = channel(Vendor::Vidu, "https://api.vidu.cn/", &["viduq3-pro"]);
        assert_eq!(
            call_for(&c, &catalog),
            ProbeCall::Read {
                url: "https://api.vidu.cn/ent/v2/tasks/llmage-channel-test-0/creations".into(),
                authorization: "Token k-1".into()
            }
        );
        let c = channel(
            Vendor::Zhipu,
            "https://open.bigmodel.cn/api/paas/v4",
            &["cogview-3-flash"],
        );
        let ProbeCall::Read { url, authorization } = call_for(&c, &catalog) else {
            panic!("zhipu is media only")
        };
        assert_eq!(
            url,
            "https://open.bigmodel.cn/api/paas/v4/async-result/llmage-channel-test-0"
        );
        assert_eq!(authorization, "Bearer k-1");
    }

    #[test]
    fn read_verdicts() {
        assert!(read_verdict(404, b"{}").is_ok());
        assert!(read_verdict(400, b"{}").is_ok());
        assert_eq!(
            read_verdict(401, br#"{"message":"invalid key"}"#).map_err(|e| describe(&e)),
            Err("HTTP 401: invalid key".into())
        );
        assert!(read_verdict(503, b"down").is_err());
    }
}
