//! `POST /llmage/v1/chat/completions`: the seed's form and OpenAI's, JSON or SSE.

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::extract::{ApiKey, JsonBody};
use super::request_id::RequestId;
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::relay::{RelayReply, request};

#[utoipa::path(post, path = "/llmage/v1/chat/completions", tag = "gateway",
    summary = "文本生成 / chat completion",
    description = "支持 prompt/sys_prompt 形式或 OpenAI 的 messages;`stream: true` 时以 text/event-stream 返回(chat.completion.chunk 对象,最后是 `data: [DONE]`)。每个回答(及每个流式分片)的 `id` 即响应头 `X-Request-Id`。 / The seed's prompt/sys_prompt form or OpenAI's messages. `stream: true` answers text/event-stream (chat.completion.chunk objects, then `data: [DONE]`).",
    request_body = super::schema::ChatRequest,
    responses(
        (status = 200, description = "生成结果(JSON);stream 为 true 时为 SSE 流 / Completion (JSON), or an SSE stream when stream is true", content(
            (super::schema::ChatCompletion = "application/json"),
            (super::schema::SseEvent = "text/event-stream"))),
        (status = 400, description = "参数缺失或无效,或 JSON 格式错误 / Missing or invalid parameter, malformed JSON", body = super::schema::ErrorBody),
        (status = 403, description = "该 Key 无权调用此模型,或不允许从此地址调用 / The key may not call this model or not from this address", body = super::schema::ErrorBody),
        (status = 404, description = "模型不存在 / Model not found", body = super::schema::ErrorBody),
        (status = 429, description = "余额不足、达到该 Key 的月度限额,或请求过多 / Insufficient balance, the key's monthly spend limit, or too many requests", body = super::schema::ErrorBody),
        (status = 502, description = "所有上游均失败 / Every upstream failed", body = super::schema::ErrorBody),
        (status = 504, description = "上游超时 / Upstream timed out", body = super::schema::ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])))]
pub async fn completions(
    State(state): State<AppState>,
    ApiKey(owner): ApiKey,
    Extension(RequestId(request_id)): Extension<RequestId>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let mut req = request::parse(body)?;
    req.request_id = Some(request_id);
    super::extract::model_allowed(&owner, &req.model)?;
    let table = state.channels.table();
    // A key with a monthly spend limit: its spend this month plus this call's hold must fit.
    if owner.monthly_limit.is_some()
        && let Some(model) = table.catalog.get(&req.model)
    {
        let hold = state.relay.hold_bound(model, &req);
        crate::accounts::spend::check_monthly_limit(&state.db, &owner, hold).await?;
    }
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
        RelayReply::Json(body) => Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()),
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
