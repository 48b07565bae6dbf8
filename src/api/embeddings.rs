//! `POST /v1/embeddings` (and under `/llmage/v1`): relayed to the OpenAI-compatible channels that
//! declare the model as an embedding model (`embedding:<id>` in the channel's models, or
//! `embedding = true` in the catalog), failing over along them like chat does, and billed on input
//! tokens: the input's token bound is held before the call (through the money engine's group
//! commit, owned by this process like a chat hold), the upstream's `usage.prompt_tokens` settles
//! it (our estimate when it reports none), and a call that fails everywhere releases it.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use super::extract::{ApiKey, JsonBody};
use crate::accounts::keys::KeyOwner;
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::billing::engine::{Close, Hold};
use crate::billing::tokens;
use crate::catalog::Model;
use crate::channels::Route;
use crate::vendor::Vendor;

/// Reservation purpose of an embeddings call.
pub const EMBEDDING_PURPOSE: &str = "embedding";

/// Longest wait for one upstream's answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);

#[utoipa::path(post, path = "/llmage/v1/embeddings", tag = "openai",
    summary = "文本向量 / OpenAI Embeddings API",
    description = "转发到以向量模型提供该模型的 OpenAI 兼容渠道;按输入 token 计费(模型的每百万输入价格)。 / Relayed to an OpenAI-compatible channel serving the model as an embedding model; billed on input tokens (the model's input price per million).",
    request_body = super::schema::EmbeddingsRequest,
    responses(
        (status = 200, description = "向量结果(上游的返回,`model` 为请求中的名称) / The embeddings (the upstream's answer, `model` as you named it)", body = super::schema::EmbeddingsResponse),
        (status = 400, description = "参数缺失或无效,或不是向量模型 / Missing or invalid parameter, or not an embedding model", body = super::schema::OpenAiError),
        (status = 403, description = "该 Key 无权调用此模型 / The key may not call this model", body = super::schema::OpenAiError),
        (status = 404, description = "模型不存在 / Model not found", body = super::schema::OpenAiError),
        (status = 429, description = "余额不足以支付本次输入 / Balance too low for the input", body = super::schema::OpenAiError),
        (status = 502, description = "所有上游均失败 / Every upstream failed", body = super::schema::OpenAiError),
        (status = 503, description = "没有渠道提供该模型 / No channel serves the model", body = super::schema::OpenAiError),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])))]
pub async fn create(
    State(state): State<AppState>,
    ApiKey(owner): ApiKey,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let Value::Object(mut body) = body else {
        return Err(ApiError::InvalidJson("expected a JSON object".into()));
    };
    let model_id = match body.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(_) => return Err(ApiError::InvalidParameter("model must be a string".into())),
        None => return Err(ApiError::MissingParameter("model".into())),
    };
    let input = body
        .get("input")
        .ok_or_else(|| ApiError::MissingParameter("input".into()))?;
    let estimate = input_tokens(input, tokens::estimate)?;
    let bound = input_tokens(input, tokens::bound)?;
    let table = state.channels.table();
    let model = table
        .catalog
        .get(&model_id)
        .cloned()
        .ok_or_else(|| ApiError::ModelNotFound(model_id.clone()))?;
    if !model.embedding {
        return Err(ApiError::InvalidParameter(format!(
            "model {model_id} is not an embedding model"
        )));
    }
    super::extract::model_allowed(&owner, &model_id)?;
    let routes: Vec<Route> = table
        .routes(&model_id)
        .into_iter()
        .filter(|r| r.channel.vendor == Vendor::OpenAi)
        .collect();
    if routes.is_empty() {
        return Err(ApiError::NoChannel(model_id));
    }

    let bill = Bill::hold(&state, &owner, &model, bound).await?;
    let mut last = ApiError::UpstreamFailed("no upstream answered".into());
    for route in routes {
        body.insert("model".into(), Value::String(route.upstream_model.clone()));
        match call(&state.http, &route, &body).await {
            Ok(mut answer) => {
                let used = answer
                    .pointer("/usage/prompt_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(estimate);
                bill.settle(&state, &model, used).await?;
                answer["model"] = Value::String(model_id);
                return Ok(Json(answer));
            }
            // The request itself was refused: no other channel will like it better.
            Err(e @ ApiError::UpstreamRejected { .. }) => {
                bill.release(&state).await;
                return Err(e);
            }
            Err(e) => {
                tracing::warn!(channel = route.channel.id, error = %e, "embeddings upstream failed");
                last = e;
            }
        }
    }
    bill.release(&state).await;
    Err(last)
}

/// Tokens of the input, text counted by `count` (the estimate or the bound of
/// [`crate::billing::tokens`]), token arrays by their length.
fn input_tokens(input: &Value, count: fn(&str) -> u64) -> Result<u64, ApiError> {
    let bad = || {
        ApiError::InvalidParameter(
            "input must be a string, an array of strings, or an array of token arrays".into(),
        )
    };
    match input {
        Value::String(s) if !s.is_empty() => Ok(count(s)),
        Value::Array(items) if !items.is_empty() => {
            let mut total = 0u64;
            for item in items {
                total += match item {
                    Value::String(s) => count(s),
                    Value::Number(_) => 1,
                    Value::Array(tokens) if tokens.iter().all(Value::is_number) => {
                        tokens.len() as u64
                    }
                    _ => return Err(bad()),
                };
            }
            Ok(total)
        }
        _ => Err(bad()),
    }
}

/// The money of one embeddings call, in one place: a hold of the input's bound, settled at the
/// tokens the upstream counted (never more than the hold), or released.
struct Bill {
    reservation: Option<String>,
}

impl Bill {
    async fn hold(
        state: &AppState,
        owner: &KeyOwner,
        model: &Model,
        tokens: u64,
    ) -> Result<Bill, ApiError> {
        let amount = crate::billing::chat_price(model, tokens, 0);
        if amount == 0 {
            return Ok(Bill { reservation: None });
        }
        let hold = Hold {
            user_id: owner.user_id,
            min: amount,
            max: amount,
            purpose: EMBEDDING_PURPOSE,
            model: model.id.clone(),
            label: format!("向量 {}", model.id),
            owner: Some(state.relay.owner.clone()),
        };
        let reservation = state.relay.ledger.hold(hold).await?;
        Ok(Bill {
            reservation: Some(reservation.id),
        })
    }

    async fn close(&self, state: &AppState, price: i64) -> Result<(), ApiError> {
        if let Some(id) = &self.reservation {
            let close = Close {
                reservation_id: Some(id.clone()),
                price,
                usage: None,
                orphaned: false,
            };
            state.relay.ledger.close(close).await?;
        }
        Ok(())
    }

    async fn settle(&self, state: &AppState, model: &Model, tokens: u64) -> Result<(), ApiError> {
        self.close(state, crate::billing::chat_price(model, tokens, 0))
            .await
    }

    async fn release(&self, state: &AppState) {
        if let Err(e) = self.close(state, 0).await {
            tracing::error!(error = %e, reservation = ?self.reservation, "cannot release an embeddings hold");
        }
    }
}

/// One upstream call.
async fn call(
    http: &reqwest::Client,
    route: &Route,
    body: &serde_json::Map<String, Value>,
) -> Result<Value, ApiError> {
    let url = format!(
        "{}/embeddings",
        route.channel.base_url.trim_end_matches('/')
    );
    let request = http
        .post(url)
        .bearer_auth(route.channel.api_key.expose())
        .json(body)
        .send();
    let response = tokio::time::timeout(UPSTREAM_TIMEOUT, request)
        .await
        .map_err(|_| ApiError::UpstreamTimeout)?
        .map_err(|e| {
            ApiError::UpstreamFailed(format!("cannot reach the upstream: {}", e.without_url()))
        })?;
    let status = response.status();
    let bytes = tokio::time::timeout(UPSTREAM_TIMEOUT, response.bytes())
        .await
        .map_err(|_| ApiError::UpstreamTimeout)?
        .map_err(|e| {
            ApiError::UpstreamFailed(format!("upstream answer cut off: {}", e.without_url()))
        })?;
    if status.is_success() {
        return serde_json::from_slice::<Value>(&bytes)
            .ok()
            .filter(|v| v.get("data").is_some_and(Value::is_array))
            .ok_or_else(|| {
                ApiError::UpstreamFailed("the upstream's answer is not an embeddings list".into())
            });
    }
    let message = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("error"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
    match status.as_u16() {
        400 | 404 | 413 | 422 => Err(ApiError::UpstreamRejected {
            status: status.as_u16(),
            message,
        }),
        _ => Err(ApiError::UpstreamFailed(format!(
            "HTTP {}: {message}",
            status.as_u16()
        ))),
    }
}
