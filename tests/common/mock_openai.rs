//! A local OpenAI-compatible upstream for tests: checks the bearer key, records every request
//! body, answers JSON or SSE (role, reasoning, content, tool-call deltas, finish reason, usage
//! chunk, `[DONE]`), and can be told to fail with 503 or to trickle a long stream slowly. It also
//! serves `POST /v1/embeddings`: one vector of [`EMBEDDING_DIM`] floats per input (float or
//! base64), `usage.prompt_tokens` = [`EMBEDDING_TOKENS_PER_INPUT`] per input.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

pub const MOCK_KEY: &str = "mock-upstream-key-42";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Normal,
    Fail503,
    /// 200 chunks, one every 20 ms.
    Slow,
    /// A stream that sends two content chunks, then an error event (after HTTP 200).
    BreakMidStream,
    /// A stream whose first event is an error event (after HTTP 200).
    ErrorFirst,
    /// A stream that sends two content chunks, then an event whose data is not JSON.
    GarbageMidStream,
    /// A normal answer after 600 ms of silence (the client may give up first).
    SlowStart,
    /// No response headers for 5 s.
    HangHeaders,
    /// A stream that sends two chunks, then nothing (the connection stays open).
    Stall,
    /// HTTP 200 whose body is not JSON (a proxy's page).
    NotJson,
    /// 429 with `Retry-After: 7`.
    Throttled,
    /// A stream cut off after two chunks (the connection closes without [DONE]).
    Reset,
}

#[derive(Default)]
pub struct Seen {
    pub bodies: Mutex<Vec<Value>>,
    pub calls: AtomicUsize,
    /// A slow stream was dropped before its end (the gateway hung up).
    pub cancelled: AtomicBool,
}

#[derive(Clone)]
struct MockState {
    mode: Mode,
    seen: Arc<Seen>,
}

pub struct MockOpenAi {
    pub base_url: String,
    pub seen: Arc<Seen>,
}

/// The fixed answer of the mock.
pub const ANSWER: [&str; 3] = ["Hello", ", ", "world!"];
pub const REASONING: [&str; 2] = ["Let me ", "think."];
pub const USAGE: (u64, u64) = (1000, 2000);
/// Length of the mock's embedding vectors.
pub const EMBEDDING_DIM: usize = 8;
/// Input tokens the mock reports per input.
pub const EMBEDDING_TOKENS_PER_INPUT: u64 = 250_000;

pub async fn start(mode: Mode) -> MockOpenAi {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        // DashScope's compatible mode, for `--vendor dashscope` channels given the host root.
        .route("/compatible-mode/v1/chat/completions", post(chat))
        .route("/v1/embeddings", post(embeddings))
        .with_state(MockState {
            mode,
            seen: seen.clone(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    MockOpenAi {
        base_url: format!("http://{addr}/v1"),
        seen,
    }
}

async fn embeddings(State(state): State<MockState>, headers: HeaderMap, body: String) -> Response {
    use base64::Engine;
    state.seen.calls.fetch_add(1, Ordering::SeqCst);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("Bearer {MOCK_KEY}") {
        return (StatusCode::UNAUTHORIZED, r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#).into_response();
    }
    let body: Value = serde_json::from_str(&body).unwrap();
    state.seen.bodies.lock().unwrap().push(body.clone());
    if state.mode == Mode::Fail503 {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"error":{"message":"overloaded","type":"server_error"}}"#,
        )
            .into_response();
    }
    let inputs = match &body["input"] {
        Value::Array(items) => items.len(),
        _ => 1,
    };
    let base64 = body["encoding_format"] == "base64";
    let data: Vec<Value> = (0..inputs)
        .map(|i| {
            let vector: Vec<f32> = (0..EMBEDDING_DIM)
                .map(|d| (i * 10 + d) as f32 / 100.0)
                .collect();
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let tokens = EMBEDDING_TOKENS_PER_INPUT * inputs as u64;
    Json(
        json!({"object": "list", "data": data, "model": body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
    )
    .into_response()
}

fn chunk(model: &str, delta: Value, finish: Option<&str>) -> Value {
    json!({"id":"chatcmpl-mock","object":"chat.completion.chunk","created":1,"model":model,
           "choices":[{"index":0,"delta":delta,"logprobs":null,"finish_reason":finish}],"usage":null})
}

/// The SSE events of a normal streamed answer (without `[DONE]`).
pub fn stream_events(model: &str) -> Vec<Value> {
    let mut events = vec![chunk(model, json!({"role":"assistant","content":""}), None)];
    for r in REASONING {
        events.push(chunk(model, json!({"reasoning_content": r}), None));
    }
    for c in ANSWER {
        events.push(chunk(model, json!({"content": c}), None));
    }
    events.push(chunk(
        model,
        json!({"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}]}),
        None,
    ));
    events.push(chunk(
        model,
        json!({"tool_calls":[{"index":0,"function":{"arguments":"\"Beijing\"}"}}]}),
        None,
    ));
    events.push(chunk(model, json!({}), Some("tool_calls")));
    events.push(json!({"id":"chatcmpl-mock","object":"chat.completion.chunk","created":1,"model":model,"choices":[],
        "usage":{"prompt_tokens":USAGE.0,"completion_tokens":USAGE.1,"total_tokens":USAGE.0+USAGE.1}}));
    events
}

struct DropFlag {
    seen: Arc<Seen>,
    done: bool,
}

impl DropFlag {
    fn finish(mut self) {
        self.done = true;
    }
}

impl Drop for DropFlag {
    fn drop(&mut self) {
        if !self.done {
            self.seen.cancelled.store(true, Ordering::SeqCst);
        }
    }
}

async fn chat(State(state): State<MockState>, headers: HeaderMap, body: String) -> Response {
    state.seen.calls.fetch_add(1, Ordering::SeqCst);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("Bearer {MOCK_KEY}") {
        return (StatusCode::UNAUTHORIZED, r#"{"error":{"message":"Incorrect API key provided: mock-***","type":"invalid_request_error","code":"invalid_api_key"}}"#).into_response();
    }
    let body: Value = serde_json::from_str(&body).unwrap();
    state.seen.bodies.lock().unwrap().push(body.clone());
    if state.mode == Mode::Fail503 {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"error":{"message":"overloaded","type":"server_error"}}"#,
        )
            .into_response();
    }
    // The mock's behaviour (not a wait): an upstream slow to answer, or that never sends headers.
    if state.mode == Mode::SlowStart {
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    match state.mode {
        Mode::HangHeaders => tokio::time::sleep(Duration::from_secs(5)).await,
        Mode::NotJson => {
            return (
                StatusCode::OK,
                "<html><body>upstream gateway error</body></html>",
            )
                .into_response();
        }
        Mode::Throttled => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "7")],
                r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
            )
                .into_response();
        }
        _ => {}
    }
    let model = body["model"].as_str().unwrap_or("?").to_owned();
    let stream = body["stream"].as_bool().unwrap_or(false);
    if !stream {
        let answer = json!({"id":"chatcmpl-mock","object":"chat.completion","created":1,"model":model,
            "choices":[{"index":0,"message":{"role":"assistant","content":ANSWER.concat(),"reasoning_content":REASONING.concat(),
                "tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Beijing\"}"}}]},
                "finish_reason":"tool_calls"}],
            "usage":{"prompt_tokens":USAGE.0,"completion_tokens":USAGE.1,"total_tokens":USAGE.0+USAGE.1}});
        return axum::Json(answer).into_response();
    }
    let sse = |v: &Value| format!("data: {v}\n\n");
    let error_event =
        "data: {\"error\":{\"message\":\"internal failure\",\"code\":\"InternalError\"}}\n\n";
    let body = if state.mode == Mode::BreakMidStream || state.mode == Mode::GarbageMidStream {
        let events = stream_events(&model);
        let last = if state.mode == Mode::BreakMidStream {
            error_event
        } else {
            "data: {\"choices\":[{\"delta\":{\"content\":\"cut\n\n"
        };
        Body::from(format!("{}{}{last}", sse(&events[3]), sse(&events[4])))
    } else if state.mode == Mode::Stall || state.mode == Mode::Reset {
        let events = stream_events(&model);
        let head = format!("{}{}", sse(&events[3]), sse(&events[4]));
        let stall = state.mode == Mode::Stall;
        Body::from_stream(futures_util::stream::unfold(0, move |i| {
            let head = head.clone();
            async move {
                match i {
                    0 => Some((Ok::<_, std::io::Error>(head), 1)),
                    // The mock's behaviour (not a wait): a stream that stalls, or breaks late.
                    _ if stall => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        None
                    }
                    1 => {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        Some((Err(std::io::Error::other("connection reset")), 2))
                    }
                    _ => None,
                }
            }
        }))
    } else if state.mode == Mode::ErrorFirst {
        Body::from(error_event)
    } else if state.mode == Mode::Slow {
        let seen = state.seen.clone();
        let stream = async_stream(model, seen);
        Body::from_stream(stream)
    } else {
        let mut text: String = stream_events(&model).iter().map(sse).collect();
        text.push_str("data: [DONE]\n\n");
        Body::from(text)
    };
    ([("content-type", "text/event-stream")], body).into_response()
}

fn async_stream(
    model: String,
    seen: Arc<Seen>,
) -> impl futures_util::Stream<Item = Result<String, std::convert::Infallible>> {
    let flag = DropFlag { seen, done: false };
    futures_util::stream::unfold((0usize, flag), move |(i, flag)| {
        let model = model.clone();
        async move {
            if i > 200 {
                flag.finish();
                return None;
            }
            // The mock's behaviour (not a wait): a slow stream, 20 ms a chunk.
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let text = if i == 200 {
                "data: [DONE]\n\n".to_owned()
            } else {
                format!(
                    "data: {}\n\n",
                    chunk(&model, json!({"content": "tok "}), None)
                )
            };
            Some((Ok(text), (i + 1, flag)))
        }
    })
}
