//! A local Vidu API (`../shared/upstreams.md` §3): `Authorization: Token <key>` (a Bearer header is
//! refused), `POST /ent/v2/text2video | img2video | start-end2video` (1 image for img2video, exactly
//! 2 for start-end), `GET /ent/v2/tasks/{id}/creations` moving created → queueing → processing →
//! success with `creations[0].url` and `cover_url` that work for one download; the documented
//! error body `{"code","reason","message"}`; a failing task (`err_code`) and 429 on creation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const KEY: &str = "vda_mock_key_52c1";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    TaskFails,
    Throttled,
}

/// Bytes and content type of a result file.
type Served = (Vec<u8>, &'static str);

#[derive(Clone)]
struct MockState {
    mode: Mode,
    base: Arc<Mutex<String>>,
    /// (endpoint, body) of every accepted creation.
    created: Arc<Mutex<Vec<(String, Value)>>>,
    tasks: Arc<Mutex<HashMap<String, usize>>>,
    files: Arc<Mutex<HashMap<String, Served>>>,
    video: Arc<llmage::media::SandboxVideo>,
}

pub struct MockVidu {
    pub base_url: String,
    pub created: Arc<Mutex<Vec<(String, Value)>>>,
}

pub async fn start(mode: Mode) -> MockVidu {
    let state = MockState {
        mode,
        base: Arc::default(),
        created: Arc::default(),
        tasks: Arc::default(),
        files: Arc::default(),
        video: Arc::new(llmage::media::sandbox_video("vidu", "16:9", 1).unwrap()),
    };
    let app = Router::new()
        .route("/ent/v2/{mode}", post(create))
        .route("/ent/v2/tasks/{id}/creations", get(query))
        .route("/cdn/{name}", get(download))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    *state.base.lock().unwrap() = base.clone();
    tokio::spawn(async move { axum::serve(listener, app).await });
    MockVidu {
        base_url: base,
        created: state.created,
    }
}

fn error(status: StatusCode, reason: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"code": status.as_u16(), "reason": reason, "message": message, "metadata": {"trace_id": "mock"}})),
    )
        .into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Token {KEY}"))
}

async fn create(
    State(state): State<MockState>,
    Path(mode): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized", "invalid token");
    }
    if state.mode == Mode::Throttled {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "QuotaExceeded",
            "concurrency limit",
        );
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "BadRequest", "not json");
    };
    let images = body["images"].as_array().map_or(0, Vec::len);
    let fits = match mode.as_str() {
        "text2video" => images == 0,
        "img2video" => images == 1,
        "start-end2video" => images == 2,
        _ => return error(StatusCode::NOT_FOUND, "NotFound", "no such endpoint"),
    };
    if !fits
        || !body["model"].is_string()
        || !body["prompt"].is_string()
        || !body["off_peak"].is_boolean()
    {
        return error(
            StatusCode::BAD_REQUEST,
            "FieldInvalid",
            "bad fields for this endpoint",
        );
    }
    let id = format!(
        "{}",
        900_000_000_000u64 + state.tasks.lock().unwrap().len() as u64
    );
    state.tasks.lock().unwrap().insert(id.clone(), 0);
    state.created.lock().unwrap().push((mode, body.clone()));
    axum::Json(json!({"task_id": id, "state": "created", "model": body["model"], "off_peak": body["off_peak"], "credits": 10}))
        .into_response()
}

async fn query(
    State(state): State<MockState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized", "invalid token");
    }
    let polls = {
        let mut tasks = state.tasks.lock().unwrap();
        let Some(polls) = tasks.get_mut(&id) else {
            return error(StatusCode::NOT_FOUND, "TaskNotFound", "task not found");
        };
        *polls += 1;
        *polls
    };
    let body = match polls {
        1 => json!({"id": id, "state": "queueing", "err_code": "", "creations": []}),
        2 => json!({"id": id, "state": "processing", "err_code": "", "creations": []}),
        _ if state.mode == Mode::TaskFails => {
            json!({"id": id, "state": "failed", "err_code": "CreationPolicyViolation", "creations": []})
        }
        _ => {
            let base = state.base.lock().unwrap().clone();
            let mut files = state.files.lock().unwrap();
            files
                .entry(format!("{id}.mp4"))
                .or_insert_with(|| (state.video.mp4.clone(), "video/mp4"));
            files
                .entry(format!("{id}.jpg"))
                .or_insert_with(|| (state.video.cover_jpeg.clone(), "image/jpeg"));
            json!({"id": id, "state": "success", "err_code": "", "credits": 10, "off_peak": false,
                   "creations": [{"id": "c1", "url": format!("{base}/cdn/{id}.mp4?exp=3600"), "cover_url": format!("{base}/cdn/{id}.jpg?exp=3600")}]})
        }
    };
    axum::Json(body).into_response()
}

async fn download(State(state): State<MockState>, Path(name): Path<String>) -> Response {
    match state.files.lock().unwrap().remove(&name) {
        Some((bytes, mime)) => ([("content-type", mime)], bytes).into_response(),
        None => (StatusCode::FORBIDDEN, "expired").into_response(),
    }
}
