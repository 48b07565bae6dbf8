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
    super::extract::model_allowed(&owner, &req.model)?;
    let table = state.channels.table();
    // The call runs as its own task: a client that hangs up before the answer (or before the
    // first stream chunk) drops this handler, not the call, so the reservation is still settled
    // and the usage recorded. Shutdown waits for it like for stream pumps.
    let relay = state.relay.clone();
    let call = state
        .relay
        .tracker
        .spawn(async move { relay.handle(table, owner, req).await });
    let reply = call.await.map_err(|e| {
        tracing::error!(error = %e, "chat call task failed");
        ApiError::Internal
    })??;
    match reply {
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
