//! `POST /llmage/v1/chat/completions`: the seed's form and OpenAI's, JSON or SSE.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::extract::{ApiKey, JsonBody};
use crate::error::ApiError;
use crate::relay::{RelayReply, request};
use crate::server::AppState;

pub async fn completions(
    State(state): State<AppState>,
    ApiKey(owner): ApiKey,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let req = request::parse(body)?;
    let table = state.channels.table();
    match state.relay.handle(table, owner, req).await? {
        RelayReply::Json(value) => Ok(Json(value).into_response()),
        RelayReply::Stream(events) => Ok((
            [
                (header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
                (header::HeaderName::from_static("x-accel-buffering"), "no"),
            ],
            Body::from_stream(events),
        )
            .into_response()),
    }
}
