//! A local DashScope (Model Studio) following its documented async protocol
//! (`../shared/upstreams.md` §1): `Authorization: Bearer <key>` and `X-DashScope-Async: enable`
//! required (else the vendor's error bodies), `output.task_id` on creation, `GET /api/v1/tasks/{id}`
//! moving PENDING → RUNNING → SUCCEEDED over polls, results at signed-looking URLs that stop
//! working after their first download (like expiring OSS links), and failure modes: a vendor
//! FAILED status, 429 `Throttling` or 500 on creation, 429 on polls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const KEY: &str = "sk-dashscope-mock-0123456789";

/// How the mock behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Normal,
    /// Every task ends FAILED with a vendor reason.
    TaskFails,
    /// Creation answers 429 Throttling.RateQuota.
    SubmitThrottled,
    /// Creation answers 500.
    SubmitBroken,
    /// The first poll of each task answers 429.
    PollThrottledOnce,
    /// Creation answers only after 3 s (slower than the gateway's submit timeout in tests).
    SubmitSlow,
    /// Creation answers 200 with a body that is not JSON (a proxy's error page).
    SubmitNotJson,
    /// Creation answers 200 with an error body and no task.
    SubmitOkButError,
    /// The first creation answers 429 with `Retry-After: 1`, later ones succeed.
    SubmitRetryAfterOnce,
    /// Every poll answers 200 with a body that is not JSON.
    PollNotJson,
    /// Tasks stay RUNNING forever.
    NeverFinishes,
    /// Result URLs answer 404 (expired before we archived them).
    ResultGone,
}

#[derive(Default)]
pub struct Seen {
    /// (path, body) of every accepted creation.
    pub created: Mutex<Vec<(String, Value)>>,
    pub submit_attempts: AtomicUsize,
    pub polls: AtomicUsize,
    pub downloads: AtomicUsize,
}

#[derive(Clone)]
struct MockState {
    mode: Mode,
    base: Arc<Mutex<String>>,
    seen: Arc<Seen>,
    /// task id → (category kind "image"/"video", polls so far)
    tasks: Arc<Mutex<HashMap<String, (String, usize)>>>,
    /// file name → bytes still downloadable (removed after the first download: the URL expired).
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    png: Arc<Vec<u8>>,
    mp4: Arc<Vec<u8>>,
}

pub struct MockDashScope {
    pub base_url: String,
    pub seen: Arc<Seen>,
}

pub async fn start(mode: Mode) -> MockDashScope {
    let seen = Arc::new(Seen::default());
    let state = MockState {
        mode,
        base: Arc::default(),
        seen: seen.clone(),
        tasks: Arc::default(),
        files: Arc::default(),
        png: Arc::new(llmage::media::sandbox_image("dashscope", 96, 96).unwrap()),
        mp4: Arc::new(
            llmage::media::sandbox_video("dashscope", "16:9", 1)
                .unwrap()
                .mp4,
        ),
    };
    let app = Router::new()
        .route(
            "/api/v1/services/aigc/text2image/image-synthesis",
            post(create_image),
        )
        .route(
            "/api/v1/services/aigc/video-generation/video-synthesis",
            post(create_video),
        )
        .route("/api/v1/tasks/{id}", get(query))
        .route("/oss/{name}", get(download))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    *state.base.lock().unwrap() = base_url.clone();
    tokio::spawn(async move { axum::serve(listener, app).await });
    MockDashScope { base_url, seen }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"code": code, "message": message, "request_id": "mock-req"})),
    )
        .into_response()
}

fn check_auth(headers: &HeaderMap) -> Option<Response> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("Bearer {KEY}") {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "InvalidApiKey",
            "Invalid API-key provided.",
        ));
    }
    None
}

async fn create_image(state: State<MockState>, headers: HeaderMap, body: String) -> Response {
    create(state, headers, body, "image").await
}

async fn create_video(state: State<MockState>, headers: HeaderMap, body: String) -> Response {
    create(state, headers, body, "video").await
}

async fn create(
    State(state): State<MockState>,
    headers: HeaderMap,
    body: String,
    kind: &str,
) -> Response {
    state.seen.submit_attempts.fetch_add(1, Ordering::SeqCst);
    if let Some(denied) = check_auth(&headers) {
        return denied;
    }
    if headers
        .get("x-dashscope-async")
        .and_then(|v| v.to_str().ok())
        != Some("enable")
    {
        return error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "current user api does not support synchronous calls",
        );
    }
    match state.mode {
        Mode::SubmitThrottled => {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "Throttling.RateQuota",
                "Requests rate limit exceeded, please try again later.",
            );
        }
        Mode::SubmitBroken => {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "oops");
        }
        Mode::SubmitSlow => {
            // The mock's behaviour: a vendor slower than the server's timeout.
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            return error(StatusCode::GATEWAY_TIMEOUT, "RequestTimeOut", "too slow");
        }
        Mode::SubmitNotJson => {
            return (StatusCode::OK, "<html><body>502 Bad Gateway</body></html>").into_response();
        }
        Mode::SubmitOkButError => {
            return axum::Json(json!({"request_id": "r", "code": "DataInspectionFailed", "message": "Input data may contain inappropriate content."})).into_response();
        }
        Mode::SubmitRetryAfterOnce if state.seen.submit_attempts.load(Ordering::SeqCst) == 1 => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "Throttling.RateQuota",
                "Requests rate limit exceeded, please try again later.",
            );
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("1"));
            return response;
        }
        _ => {}
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "body is not JSON",
        );
    };
    if !body["model"].is_string() || !body["input"]["prompt"].is_string() {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "model and input.prompt are required",
        );
    }
    let id = format!("ds-{}", llmage::util::ids::random_id());
    state
        .seen
        .created
        .lock()
        .unwrap()
        .push((kind.to_owned(), body));
    state
        .tasks
        .lock()
        .unwrap()
        .insert(id.clone(), (kind.to_owned(), 0));
    axum::Json(
        json!({"request_id": "mock-req", "output": {"task_id": id, "task_status": "PENDING"}}),
    )
    .into_response()
}

async fn query(
    State(state): State<MockState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(denied) = check_auth(&headers) {
        return denied;
    }
    state.seen.polls.fetch_add(1, Ordering::SeqCst);
    let (kind, polls) = {
        let mut tasks = state.tasks.lock().unwrap();
        let Some(entry) = tasks.get_mut(&id) else {
            return axum::Json(
                json!({"request_id": "r", "output": {"task_id": id, "task_status": "UNKNOWN"}}),
            )
            .into_response();
        };
        entry.1 += 1;
        entry.clone()
    };
    if state.mode == Mode::PollNotJson {
        return (StatusCode::OK, "upstream connect error or disconnect/reset").into_response();
    }
    if state.mode == Mode::PollThrottledOnce && polls == 1 {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "Throttling",
            "Requests throttling triggered.",
        );
    }
    let output = match polls {
        1 => {
            json!({"task_id": id, "task_status": "PENDING", "submit_time": "2026-11-25 10:00:00.000"})
        }
        2 => {
            json!({"task_id": id, "task_status": "RUNNING", "submit_time": "2026-11-25 10:00:00.000"})
        }
        _ if state.mode == Mode::NeverFinishes => {
            json!({"task_id": id, "task_status": "RUNNING", "submit_time": "2026-11-25 10:00:00.000"})
        }
        _ if state.mode == Mode::TaskFails => json!({"task_id": id, "task_status": "FAILED",
            "code": "DataInspectionFailed", "message": "Input data may contain inappropriate content."}),
        _ => {
            let base = state.base.lock().unwrap().clone();
            let (name, bytes) = if kind == "image" {
                (format!("{id}.png"), state.png.as_ref().clone())
            } else {
                (format!("{id}.mp4"), state.mp4.as_ref().clone())
            };
            state
                .files
                .lock()
                .unwrap()
                .entry(name.clone())
                .or_insert(bytes);
            let url = format!("{base}/oss/{name}?Expires=1795600000&Signature=mock");
            if kind == "image" {
                json!({"task_id": id, "task_status": "SUCCEEDED", "results": [{"orig_prompt": "p", "url": url}],
                       "task_metrics": {"TOTAL": 1, "SUCCEEDED": 1, "FAILED": 0}})
            } else {
                json!({"task_id": id, "task_status": "SUCCEEDED", "video_url": url, "orig_prompt": "p"})
            }
        }
    };
    let usage = if kind == "image" {
        json!({"image_count": 1})
    } else {
        json!({"duration": 5.0, "video_count": 1, "SR": "720"})
    };
    axum::Json(json!({"request_id": "r", "output": output, "usage": usage})).into_response()
}

async fn download(State(state): State<MockState>, Path(name): Path<String>) -> Response {
    // Like an expiring signed URL: one download, then it is gone.
    if state.mode == Mode::ResultGone {
        return (
            StatusCode::NOT_FOUND,
            "<Error><Code>NoSuchKey</Code></Error>",
        )
            .into_response();
    }
    match state.files.lock().unwrap().remove(&name) {
        Some(bytes) => {
            state.seen.downloads.fetch_add(1, Ordering::SeqCst);
            let mime = if name.ends_with(".png") {
                "image/png"
            } else {
                "video/mp4"
            };
            ([("content-type", mime)], bytes).into_response()
        }
        None => (
            StatusCode::FORBIDDEN,
            "<Error><Code>AccessDenied</Code><Message>Request has expired.</Message></Error>",
        )
            .into_response(),
    }
}
