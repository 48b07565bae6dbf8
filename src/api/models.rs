//! `GET /llmage/v1/models[?catelogid=…]`: the OpenAI list shape, each model extended with its
//! categories, vendor, description, price, parameter tables and whether it can be called now;
//! `GET /llmage/v1/models/{id}` (OpenAI's models.retrieve): one model in the same shape.

use super::extract::ApiQuery;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{ApiKey, ApiPath};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::catalog::{CATEGORIES, Model};

#[derive(Deserialize)]
pub struct ModelsQuery {
    catelogid: Option<String>,
}

#[utoipa::path(get, path = "/llmage/v1/models", tag = "gateway",
    summary = "查询可用模型列表 / list models",
    params(("catelogid" = Option<super::schema::CatelogId>, Query, description = "只列此分类 / Only this category")),
    responses(
        (status = 200, description = "模型列表 / The models", body = super::schema::ModelList),
        (status = 400, description = "未知分类 / Unknown category", body = super::schema::ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _key: ApiKey,
    ApiQuery(query): ApiQuery<ModelsQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = query.catelogid.filter(|c| !c.is_empty());
    if let Some(c) = &filter
        && !CATEGORIES.contains(&c.as_str())
    {
        return Err(ApiError::InvalidParameter(format!(
            "catelogid must be one of {}",
            CATEGORIES.join(", ")
        )));
    }
    let table = state.channels.table();
    let data: Vec<Value> = table
        .catalog
        .models()
        .iter()
        .filter(|m| filter.as_deref().is_none_or(|c| m.serves(c)))
        .map(|m| model_entry(m, table.has_channel(&m.id) || state.config.demo))
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

#[utoipa::path(get, path = "/llmage/v1/models/{id}", tag = "openai",
    summary = "查询模型 / one model (OpenAI models.retrieve)",
    params(("id" = String, Path, description = "模型 id / The model id")),
    responses(
        (status = 200, description = "模型 / The model", body = super::schema::ModelEntry),
        (status = 404, description = "模型不存在 / Model not found", body = super::schema::OpenAiError),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])))]
pub async fn retrieve(
    State(state): State<AppState>,
    _key: ApiKey,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let table = state.channels.table();
    let model = table
        .catalog
        .get(&id)
        .ok_or_else(|| ApiError::ModelNotFound(id.clone()))?;
    Ok(Json(model_entry(
        model,
        table.has_channel(&model.id) || state.config.demo,
    )))
}

/// One model in the list.
pub fn model_entry(model: &Model, available: bool) -> Value {
    let parameters: serde_json::Map<String, Value> = model
        .categories
        .iter()
        .map(|c| {
            let mut rows = vec![
                json!({"name": "model", "type": "string", "required": true, "allowed": [model.id], "description": "模型名", "description_en": "The model id"}),
                if c.id == "t2t" {
                    json!({"name": "catelogid", "type": "string", "required": false, "default": "t2t", "allowed": ["t2t"], "description": "分类标识", "description_en": "The category id"})
                } else {
                    json!({"name": "catelogid", "type": "string", "required": true, "allowed": [c.id], "description": "分类标识", "description_en": "The category id"})
                },
            ];
            rows.extend(c.params.iter().map(|p| serde_json::to_value(p).unwrap_or(Value::Null)));
            (c.id.clone(), Value::Array(rows))
        })
        .collect();
    let mut entry = json!({
        "id": model.id,
        "object": "model",
        "created": 0,
        "owned_by": model.vendor,
        "catelogid": model.categories.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        "vendor": model.vendor,
        "vendor_label": model.vendor_label,
        "description": model.description,
        "price": model.price,
        "parameters": parameters,
        "available": available,
    });
    if let (Some(en), Some(fields)) = (&model.description_en, entry.as_object_mut()) {
        fields.insert("description_en".into(), json!(en));
    }
    entry
}
