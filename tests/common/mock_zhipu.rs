//! A local Zhipu BigModel image API (`../shared/upstreams.md` §4): `POST /api/paas/v4/images/generations`
//! with `Authorization: Bearer <key>`, answering `{"created","data":[{"url"}]}` synchronously; the
//! image URL works for one download (then it has "expired"). Failure modes use the documented
//! `{"error":{"code":"…","message":"…"}}` bodies: content safety (400, 1301) and concurrency
//! limit (429, 1302).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const KEY: &str = "zhipu-mock-key.abcdef";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    ContentFilter,
    Throttled,
}

#[derive(Clone)]
struct MockState {
    mode: Mode,
    base: Arc<Mutex<String>>,
    bodies: Arc<Mutex<Vec<Value>>>,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

pub struct MockZhipu {
    /// The base URL a channel takes (`…/api/paas/v4`).
    pub base_url: String,
    pub bodies: Arc<Mutex<Vec<Value>>>,
}

pub async fn start(mode: Mode) -> MockZhipu {
    let state = MockState {
        mode,
        base: Arc::default(),
        bodies: Arc::default(),
        files: Arc::default(),
    };
    let app = Router::new()
        .route("/api/paas/v4/images/generations", post(generate))
        .route("/files/{name}", get(download))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    *state.base.lock().unwrap() = base.clone();
    tokio::spawn(async move { axum::serve(listener, app).await });
    MockZhipu {
        base_url: format!("{base}/api/paas/v4"),
        bodies: state.bodies,
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

async fn generate(State(state): State<MockState>, headers: HeaderMap, body: String) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {KEY}"))
    {
        return error(StatusCode::UNAUTHORIZED, "1000", "身份验证失败。");
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "1214", "请求参数错误");
    };
    state.bodies.lock().unwrap().push(body.clone());
    match state.mode {
        Mode::ContentFilter => {
            return error(
                StatusCode::BAD_REQUEST,
                "1301",
                "系统检测到输入或生成内容可能包含不安全或敏感内容",
            );
        }
        Mode::Throttled => {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "1302",
                "您当前使用该API的并发数过高",
            );
        }
        Mode::Normal => {}
    }
    if body["model"] != "cogview-3-flash" || !body["prompt"].is_string() {
        return error(StatusCode::BAD_REQUEST, "1214", "model 与 prompt 必填");
    }
    let name = format!("{}.png", llmage::util::ids::random_id());
    let png = llmage::media::sandbox_image("cogview", 80, 80).unwrap();
    state.files.lock().unwrap().insert(name.clone(), png);
    let base = state.base.lock().unwrap().clone();
    axum::Json(
        json!({"created": 1760335349, "data": [{"url": format!("{base}/files/{name}")}],
                      "content_filter": [{"role": "assistant", "level": 3}]}),
    )
    .into_response()
}

async fn download(State(state): State<MockState>, Path(name): Path<String>) -> Response {
    match state.files.lock().unwrap().remove(&name) {
        Some(png) => ([("content-type", "image/png")], png).into_response(),
        None => (StatusCode::NOT_FOUND, "expired").into_response(),
    }
}
