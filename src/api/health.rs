//! `GET /healthz`: 200 when the database answers, 503 otherwise. Public, so it shows only
//! counters: the channel snapshot's `generation` (snapshots built since start) and `synced`
//! (the live snapshot matches the stored channels; `false` for up to one 500 ms reload after a
//! change made by another process). Tests poll `synced` instead of sleeping through a reload.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::api::state::AppState;

#[utoipa::path(get, path = "/healthz", tag = "ops",
    summary = "健康检查：数据库可用、渠道快照的代数与同步状态 / Health: the database answers; the channel snapshot's generation and sync state",
    responses(
        (status = 200, description = "运行正常 / Healthy", body = super::schema::Health),
        (status = 503, description = "数据库不可用 / Database unavailable", body = super::schema::Health),
    ))]
pub async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    // The channel stamp query doubles as the database check.
    match state.channels.synced().await {
        Ok(synced) => (
            StatusCode::OK,
            Json(json!({
                "status": "ok",
                "channels": {"generation": state.channels.generation(), "synced": synced},
            })),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "error": "database unavailable"})),
        ),
    }
}
