//! A local Volcengine Ark / BytePlus ModelArk content-generation API (`../shared/upstreams.md` §2):
//! `POST /api/v3/contents/generations/tasks` and `GET …/tasks/{id}` with `Authorization: Bearer`,
//! statuses queued → running → succeeded, `content.video_url` working for one download, the
//! documented `{"error":{"code","message"}}` bodies: missing auth (401), base64 in a video/audio
//! reference or frame roles mixed with references (400 InvalidParameter), a failing task, and
//! 429 `RateLimitExceeded` on creation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const KEY: &str = "ark-mock-api-key-7f3a";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    TaskFails,
    Throttled,
}

#[derive(Clone)]
struct MockState {
    mode: Mode,
    base: Arc<Mutex<String>>,
    bodies: Arc<Mutex<Vec<Value>>>,
    tasks: Arc<Mutex<HashMap<String, usize>>>,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    mp4: Arc<Vec<u8>>,
}

pub struct MockArk {
    /// What a channel takes as its base URL (`…/api/v3`).
    pub base_url: String,
    /// Where the mock serves a reference clip a client may name by URL.
    pub clip_url: String,
    pub bodies: Arc<Mutex<Vec<Value>>>,
}

pub async fn start(mode: Mode) -> MockArk {
    let state = MockState {
        mode,
        base: Arc::default(),
        bodies: Arc::default(),
        tasks: Arc::default(),
        files: Arc::default(),
        mp4: Arc::new(llmage::media::sandbox_video("ark", "16:9", 1).unwrap().mp4),
    };
    let app = Router::new()
        .route("/api/v3/contents/generations/tasks", post(create))
        .route("/api/v3/contents/generations/tasks/{id}", get(query))
        .route("/tos/{name}", get(download))
        .route("/ref/clip.mp4", get(clip))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    *state.base.lock().unwrap() = base.clone();
    tokio::spawn(async move { axum::serve(listener, app).await });
    MockArk {
        base_url: format!("{base}/api/v3"),
        clip_url: format!("{base}/ref/clip.mp4"),
        bodies: state.bodies,
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": format!("{message} Request id: mock"), "type": "BadRequest"}})),
    )
        .into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {KEY}"))
}

async fn create(State(state): State<MockState>, headers: HeaderMap, body: String) -> Response {
    if !authorized(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "AuthenticationError",
            "the API key is invalid.",
        );
    }
    if state.mode == Mode::Throttled {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "RateLimitExceeded.EndpointRPMExceeded",
            "rpm exceeded.",
        );
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "body is not JSON.",
        );
    };
    let Some(content) = body["content"].as_array() else {
        return error(
            StatusCode::BAD_REQUEST,
            "MissingParameter",
            "content is required.",
        );
    };
    if !body["model"].is_string()
        || !content
            .iter()
            .any(|c| c["type"] == "text" && c["text"].is_string())
    {
        return error(
            StatusCode::BAD_REQUEST,
            "MissingParameter",
            "model and a text item are required.",
        );
    }
    let roles: Vec<&str> = content.iter().filter_map(|c| c["role"].as_str()).collect();
    let frames = roles.iter().any(|r| r.ends_with("_frame"));
    let references = roles.iter().any(|r| r.starts_with("reference_"));
    if frames && references {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "frame roles cannot be mixed with reference media.",
        );
    }
    for item in content {
        for kind in ["video_url", "audio_url"] {
            if item[kind]["url"]
                .as_str()
                .is_some_and(|u| u.starts_with("data:"))
            {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameter",
                    "base64 is not supported for reference video/audio.",
                );
            }
        }
        if item["type"] == "image_url" && !item["image_url"]["url"].is_string() {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                "image_url.url is required.",
            );
        }
    }
    state.bodies.lock().unwrap().push(body);
    let id = format!("cgt-{}", llmage::util::ids::random_id());
    state.tasks.lock().unwrap().insert(id.clone(), 0);
    axum::Json(json!({"id": id})).into_response()
}

async fn query(
    State(state): State<MockState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "AuthenticationError",
            "the API key is invalid.",
        );
    }
    let polls = {
        let mut tasks = state.tasks.lock().unwrap();
        let Some(polls) = tasks.get_mut(&id) else {
            return error(StatusCode::NOT_FOUND, "ResourceNotFound", "task not found.");
        };
        *polls += 1;
        *polls
    };
    let body = match polls {
        1 => json!({"id": id, "status": "queued"}),
        2 => json!({"id": id, "status": "running"}),
        _ if state.mode == Mode::TaskFails => json!({"id": id, "status": "failed",
            "error": {"code": "OutputVideoSensitiveContentDetected", "message": "The request failed because the output video may contain sensitive information."}}),
        _ => {
            let name = format!("{id}.mp4");
            state
                .files
                .lock()
                .unwrap()
                .entry(name.clone())
                .or_insert_with(|| state.mp4.as_ref().clone());
            let base = state.base.lock().unwrap().clone();
            json!({"id": id, "status": "succeeded", "content": {"video_url": format!("{base}/tos/{name}?X-Tos-Expires=86400")},
                   "usage": {"completion_tokens": 108900, "total_tokens": 108900}, "error": null,
                   "resolution": "720p", "ratio": "16:9", "duration": 5})
        }
    };
    axum::Json(body).into_response()
}

async fn download(State(state): State<MockState>, Path(name): Path<String>) -> Response {
    match state.files.lock().unwrap().remove(&name) {
        Some(bytes) => ([("content-type", "video/mp4")], bytes).into_response(),
        None => (
            StatusCode::FORBIDDEN,
            "<Error><Code>AccessDenied</Code><Message>expired</Message></Error>",
        )
            .into_response(),
    }
}

async fn clip(State(state): State<MockState>) -> Response {
    ([("content-type", "video/mp4")], state.mp4.as_ref().clone()).into_response()
}
