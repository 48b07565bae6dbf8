//! `POST /llmage/v1/quote`: what a generation would be charged, before it is sent. The body is
//! exactly the generation's (JSON, or the plain fields of a multipart form); the answer is
//! `{"credits", "yuan", "breakdown"}` from the same functions the charge uses — the chat
//! reservation (`ChatRelay::hold`) and the task price (`billing::media::quote`) — so a quote
//! equals the charge of the same submission. Files are never needed: a file field left out is
//! priced as if given (no price depends on a file).

use axum::Json;
use axum::extract::{Request, State};
use axum::http::header;
use serde_json::{Map, Value, json};

use super::extract::ApiKey;
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::catalog::validate::{Endpoint, FieldValue, Limits, validate};
use crate::catalog::{ParamType, Price};

/// A URL standing in for a file field the quote was not sent (never fetched).
const ANY_FILE: &str = "https://quote.invalid/file";

#[utoipa::path(post, path = "/llmage/v1/quote", tag = "gateway",
    summary = "报价 / what a generation would cost",
    description = "发送与文本、图片或视频请求完全相同的请求体(JSON 或 multipart 表单字段,文件可省略),返回该次提交将扣除的积分:任务为其价格,文本为调用前冻结的积分(最终按实际 token 与 `breakdown` 中的单价结算)。 / Send exactly the body of a chat, image or video request (JSON, or multipart form fields; files may be left out). Answers the credits that submission would be charged: for tasks the price, for chat the credits held before the call (the final charge follows the tokens used, at the prices in `breakdown`).",
    request_body(content(
        (super::schema::QuoteRequest = "application/json"),
        (super::schema::QuoteRequest = "multipart/form-data"))),
    responses(
        (status = 200, description = "报价 / The quote", body = super::schema::QuoteAnswer),
        (status = 400, description = "参数缺失或无效 / Missing or invalid parameter", body = super::schema::ErrorBody),
        (status = 404, description = "模型不存在 / Model not found", body = super::schema::ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])))]
/// `POST /llmage/v1/quote`.
pub async fn quote(
    State(state): State<AppState>,
    ApiKey(_owner): ApiKey,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    let limits = Limits {
        max_file_bytes: state.config.max_upload_bytes,
    };
    let mut submission = if is_multipart {
        let multipart = super::tasks::open_multipart(request, &state).await?;
        super::tasks::read_multipart(multipart, limits, None, super::tasks::FileParts::Discard)
            .await?
    } else {
        super::tasks::json_submission(request, &state).await?
    };
    let text = |name: &str| {
        submission
            .fields
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| match v {
                FieldValue::Json(Value::String(s)) => Some(s.trim().to_owned()),
                FieldValue::Text(s) => Some(s.trim().to_owned()),
                FieldValue::Json(_) => None,
            })
    };
    let model_id = text("model").ok_or_else(|| ApiError::MissingParameter("model".into()))?;
    let category = text("catelogid");
    let table = state.channels.table();
    let model = table
        .catalog
        .get(&model_id)
        .cloned()
        .ok_or_else(|| ApiError::ModelNotFound(model_id.clone()))?;
    let per_yuan = state.config.billing.credits_per_yuan.max(1);
    // Fen of an amount in units, rounded up (never negative here).
    let per_fen = per_yuan.saturating_mul(crate::billing::UNITS_PER_CREDIT) / 100;
    let yuan = |units: i64| {
        crate::util::yuan::fen_to_yuan(units.saturating_add(per_fen.max(1) - 1) / per_fen.max(1))
    };
    let credits = crate::billing::credits_json;

    if category.as_deref() == Some("t2t") || (category.is_none() && model.is_chat()) {
        let body: Map<String, Value> = submission
            .fields
            .into_iter()
            .map(|(k, v)| match v {
                FieldValue::Json(v) => (k, v),
                FieldValue::Text(s) => (k, Value::String(s)),
            })
            .collect();
        let req = crate::relay::request::parse(Value::Object(body))?;
        if !model.is_chat() {
            return Err(ApiError::InvalidParameter(format!(
                "model {} does not serve t2t",
                model.id
            )));
        }
        let hold = state.relay.hold_bound(&model, &req);
        let (input, output) = match &model.price {
            Price::Tokens {
                input_per_million,
                output_per_million,
            } => (*input_per_million, *output_per_million),
            Price::Image { .. } | Price::VideoSecond { .. } => (0, 0),
        };
        return Ok(Json(json!({
            "credits": credits(hold), "yuan": yuan(hold),
            "breakdown": {"kind": "chat", "hold": credits(hold), "prompt_tokens_estimate": req.prompt_tokens,
                          "max_tokens": req.max_tokens, "input_per_million": input, "output_per_million": output},
        })));
    }

    // A task: every required file field not given as a URL stands in as one (never fetched;
    // uploaded parts are not needed for the price).
    let endpoint = if category.as_deref() == Some("t2i") {
        Endpoint::Image
    } else {
        Endpoint::Video
    };
    if let Some(cat) = category.as_deref().and_then(|c| model.category(c)) {
        for p in &cat.params {
            let given = submission.fields.iter().any(|(k, _)| k == &p.name);
            if p.required && !given && matches!(p.kind, ParamType::File | ParamType::Files) {
                submission
                    .fields
                    .push((p.name.clone(), FieldValue::Text(ANY_FILE.into())));
            }
        }
    }
    submission.files.clear();
    let checked = validate(&table.catalog, endpoint, submission, limits)?;
    let q = crate::billing::media::quote(&checked.model, &checked.category, &checked.params);
    Ok(Json(
        json!({"credits": q.credits, "yuan": yuan(crate::billing::units(q.credits)), "breakdown": q.usage}),
    ))
}
