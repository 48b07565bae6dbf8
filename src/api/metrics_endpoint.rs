//! `GET /metrics`: the Prometheus text format. With `metrics_token` configured it needs
//! `Authorization: Bearer <token>`; without one only loopback clients may read it.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::limits::peer_ip;
use crate::api::state::AppState;

#[utoipa::path(get, path = "/metrics", tag = "ops",
    summary = "Prometheus 指标(本机或指标令牌) / Prometheus metrics (loopback clients or the metrics token)",
    responses(
        (status = 200, description = "Prometheus 文本格式 / Prometheus text format", content((String = "text/plain"))),
        (status = 403, description = "无权访问 / Not allowed", body = super::schema::ErrorBody),
    ),
    security((), ("metrics" = [])))]
pub async fn metrics(State(state): State<AppState>, request: Request) -> Response {
    let allowed = match &state.config.metrics_token {
        Some(token) => request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            // The scheme is case-insensitive (RFC 9110 §11.1): `Bearer`, `bearer`, `BEARER`.
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .is_some_and(|(_, given)| {
                // Constant-time: compare digests, not the strings.
                use sha2::{Digest, Sha256};
                Sha256::digest(given.trim().as_bytes()) == Sha256::digest(token.as_bytes())
            }),
        None => peer_ip(request.extensions()).is_some_and(|ip| ip.is_loopback()),
    };
    if !allowed {
        let body = serde_json::json!({"error": "Forbidden: metrics need the metrics token (or a loopback client)"});
        return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(),
    )
        .into_response()
}
