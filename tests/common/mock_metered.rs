//! An OpenAI-compatible upstream that bills like vLLM and OpenAI do: it honours `n` and
//! `max_tokens` / `max_completion_tokens` (every choice writes exactly its bound, the worst case
//! for the gateway), and bills as input every message text, `tools`, `response_format` and each
//! image part (a fixed [`IMAGE_TOKENS`]). Its tokenizer is one token per three characters of
//! input text; its output is one CJK character per token. It records the usage it reported and
//! the output tokens it wrote, and can stream slowly or ignore the output bound.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub const KEY: &str = "metered-upstream-key";
/// Input tokens the mock bills per image part.
pub const IMAGE_TOKENS: u64 = 1_000;

#[derive(Clone, Default)]
pub struct Behaviour {
    /// Pause between stream chunks.
    pub chunk_delay: Duration,
    /// Output tokens per stream chunk and choice.
    pub chunk_tokens: u64,
    /// Write this many tokens per choice whatever the request's bound says.
    pub ignore_bound: Option<u64>,
    /// Report this usage instead of the real counts (prompt, completion) and write that many
    /// output tokens for choice 0.
    pub fixed: Option<(u64, u64)>,
}

#[derive(Default)]
pub struct Seen {
    /// (prompt, completion) of every usage reported, in order.
    pub reported: Mutex<Vec<(u64, u64)>>,
    /// Output tokens written into responses (streams count as they are written).
    pub written: AtomicU64,
    /// The bodies received.
    pub bodies: Mutex<Vec<Value>>,
    /// A stream was dropped by the gateway before its end.
    pub cancelled: AtomicBool,
}

#[derive(Clone)]
struct MockState {
    behaviour: Behaviour,
    seen: Arc<Seen>,
}

pub struct MockMetered {
    pub base_url: String,
    pub seen: Arc<Seen>,
}

pub async fn start(behaviour: Behaviour) -> MockMetered {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .with_state(MockState {
            behaviour,
            seen: seen.clone(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    MockMetered {
        base_url: format!("http://{addr}/v1"),
        seen,
    }
}

/// The mock's input tokens of a request body.
pub fn input_tokens(body: &Value) -> u64 {
    let mut text = String::new();
    let mut images = 0;
    for m in body["messages"].as_array().into_iter().flatten() {
        match &m["content"] {
            Value::String(s) => text.push_str(s),
            Value::Array(parts) => {
                for p in parts {
                    if p["type"] == "image_url" {
                        images += 1;
                    } else if let Some(t) = p["text"].as_str() {
                        text.push_str(t);
                    }
                }
            }
            _ => {}
        }
        if let Some(calls) = m.get("tool_calls") {
            text.push_str(&calls.to_string());
        }
    }
    for field in ["tools", "response_format"] {
        if let Some(v) = body.get(field) {
            text.push_str(&v.to_string());
        }
    }
    (text.chars().count() as u64).div_ceil(3) + images * IMAGE_TOKENS
}

struct Plan {
    id: String,
    n: usize,
    per_choice: Vec<u64>,
    prompt: u64,
}

fn plan(state: &MockState, body: &Value) -> Plan {
    let n = body["n"].as_u64().unwrap_or(1).max(1) as usize;
    let bound = body["max_completion_tokens"]
        .as_u64()
        .or(body["max_tokens"].as_u64())
        .unwrap_or(4_096);
    let mut per_choice = vec![state.behaviour.ignore_bound.unwrap_or(bound); n];
    let mut prompt = input_tokens(body);
    if let Some((p, c)) = state.behaviour.fixed {
        prompt = p;
        per_choice = vec![c];
    }
    Plan {
        id: format!("chatcmpl-metered-{}", rand_id()),
        n: per_choice.len().min(n.max(1)),
        per_choice,
        prompt,
    }
}

fn rand_id() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

async fn chat(
    State(state): State<MockState>,
    headers: axum::http::HeaderMap,
    body: String,
) -> Response {
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {KEY}"));
    if !authorized {
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})),
        )
            .into_response();
    }
    let body: Value = serde_json::from_str(&body).unwrap();
    state.seen.bodies.lock().unwrap().push(body.clone());
    let plan = plan(&state, &body);
    let completion: u64 = plan.per_choice.iter().sum();
    if body["stream"] != true {
        state.seen.written.fetch_add(completion, Ordering::SeqCst);
        state
            .seen
            .reported
            .lock()
            .unwrap()
            .push((plan.prompt, completion));
        let choices: Vec<Value> = plan
            .per_choice
            .iter()
            .enumerate()
            .map(|(i, t)| {
                json!({"index": i, "message": {"role": "assistant", "content": "字".repeat(*t as usize)},
                       "finish_reason": "length"})
            })
            .collect();
        return axum::Json(json!({
            "id": plan.id, "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": choices,
            "usage": {"prompt_tokens": plan.prompt, "completion_tokens": completion, "total_tokens": plan.prompt + completion},
        }))
        .into_response();
    }
    let include_usage = body["stream_options"]["include_usage"] == true;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::convert::Infallible>>(1);
    let behaviour = state.behaviour.clone();
    let seen = state.seen.clone();
    tokio::spawn(async move {
        let step = behaviour.chunk_tokens.max(1);
        let mut left = plan.per_choice.clone();
        let mut written = 0;
        let mut first = true;
        while left.iter().any(|l| *l > 0) {
            for (i, left) in left.iter_mut().enumerate().take(plan.n) {
                if *left == 0 {
                    continue;
                }
                let t = step.min(*left);
                *left -= t;
                let mut delta = json!({"content": "字".repeat(t as usize)});
                if first {
                    delta["role"] = json!("assistant");
                    first = false;
                }
                let finish = if *left == 0 {
                    json!("length")
                } else {
                    Value::Null
                };
                let chunk = json!({"id": plan.id, "object": "chat.completion.chunk", "created": 1,
                    "model": "m", "choices": [{"index": i, "delta": delta, "finish_reason": finish}]});
                if tx.send(Ok(format!("data: {chunk}\n\n"))).await.is_err() {
                    seen.cancelled.store(true, Ordering::SeqCst);
                    return;
                }
                written += t;
                seen.written.fetch_add(t, Ordering::SeqCst);
                // The mock's behaviour (not a wait): an upstream that paces its chunks.
                if !behaviour.chunk_delay.is_zero() {
                    tokio::time::sleep(behaviour.chunk_delay).await;
                }
            }
        }
        seen.reported.lock().unwrap().push((plan.prompt, written));
        if include_usage {
            let usage = json!({"id": plan.id, "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [], "usage": {"prompt_tokens": plan.prompt, "completion_tokens": written,
                "total_tokens": plan.prompt + written}});
            let _ = tx.send(Ok(format!("data: {usage}\n\n"))).await;
        }
        let _ = tx.send(Ok("data: [DONE]\n\n".into())).await;
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .unwrap()
}
