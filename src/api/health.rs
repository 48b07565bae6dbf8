//! `GET /healthz`: 200 when the database answers, 503 otherwise.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::server::AppState;

#[utoipa::path(get, path = "/healthz", tag = "ops",
    summary = "健康检查 / Health: the database answers",
    responses(
        (status = 200, description = "Healthy", body = super::schema::Health),
        (status = 503, description = "Database unavailable", body = super::schema::Health),
    ))]
pub async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match sqlx::query("SELECT 1").execute(state.db.reader()).await {
        Ok(_) => (StatusCode::OK, Json(json!({"status": "ok"}))),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "error": "database unavailable"})),
        ),
    }
}
