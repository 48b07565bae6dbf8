//! The OpenAPI 3.1 document: the paths come from the handlers' `#[utoipa::path]` attributes as
//! the router registers them (utoipa-axum: a route and its description are added together), the
//! bodies from [`super::schema`], and the per-model task parameters from the catalog — one schema
//! per model and category (`params.<model>.<category>` for JSON, `….multipart` for form uploads),
//! with enums, ranges, defaults and required files; the chat body's required fields (or
//! `messages`) from the catalog's t2t table too. Served at `GET /llmage/v1/openapi.json`.

use std::sync::Arc;

use axum::Extension;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::catalog::{Catalog, FileKind, Model, Param, ParamType};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "元境平台 API (llmage)",
        description = "OpenAI 兼容的 AI 模型网关:文本、图片、视频生成,使用自己的 API Key 与预付积分。网关接口(`/llmage/v1`)使用 `Authorization: Bearer <API Key>`;控制台接口(`/api`)使用登录会话 cookie,修改数据的请求还需 `X-CSRF-Token`。同样的 OpenAI 形式接口也在 `/v1` 下提供(OpenAI 兼容工具默认的基础地址)。`/llmage/v1` 下种子接口和 `/api` 的错误为 `{\"error\": \"<message>\"}`;`/v1` 下以及 OpenAI 专有接口(标签 `openai`)的错误为 OpenAI 错误对象 `{\"error\": {\"message\", \"type\", \"param\", \"code\"}}`。 / An OpenAI-compatible AI model gateway: chat, image and video generation with your own API keys and prepaid credits. Gateway endpoints (`/llmage/v1`) take `Authorization: Bearer <API key>`; console endpoints (`/api`) take the login session cookie and, when they change something, `X-CSRF-Token`. The same OpenAI-shaped operations are served under `/v1` too (the base URL OpenAI-compatible tools default to). Errors of the seed's operations under `/llmage/v1` and of `/api` are `{\"error\": \"<message>\"}`; errors under `/v1` and of the OpenAI-only operations (tag `openai`) are OpenAI error objects `{\"error\": {\"message\", \"type\", \"param\", \"code\"}}`.",
        version = env!("CARGO_PKG_VERSION"),
    ),
    modifiers(&SecuritySchemes),
    components(schemas(super::schema::CatelogId)),
    tags(
        (name = "gateway", description = "元境平台 API:模型、文本、余额 / models, chat, balance"),
        (name = "tasks", description = "图片与视频任务 / image and video tasks, result files"),
        (name = "openai", description = "OpenAI 标准接口 / the OpenAI-standard surface: one model, Images, Videos, Embeddings (also under /v1)"),
        (name = "account", description = "手机号登录 / phone login and the session"),
        (name = "keys", description = "API Key 管理 / API keys"),
        (name = "finance", description = "财务 / ledger, usage, orders, redemption"),
        (name = "recharge", description = "充值 / Alipay recharge"),
        (name = "admin", description = "管理 / administration (admin role)"),
        (name = "ops", description = "运维:健康检查与指标 / Health and metrics"),
        (name = "console", description = "网页控制台 / The web console"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "请求头携带 API Key:`Authorization: Bearer sk-…` / API key: `Authorization: Bearer sk-…`",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::accounts::sessions::COOKIE,
                "控制台登录会话,由 POST /api/auth/login 设置 / The console session, set by POST /api/auth/login",
            ))),
        );
        components.add_security_scheme(
            "csrf",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "登录返回的 csrf_token,控制台中修改数据的请求需携带 / The login's csrf_token, on state-changing console requests",
            ))),
        );
        components.add_security_scheme(
            "metrics",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "配置了 `metrics_token` 时以 `Authorization: Bearer <metrics_token>` 读取 `/metrics`(未配置时只有本机可以读取) / `Authorization: Bearer <metrics_token>` for `/metrics` when `metrics_token` is configured (without it only loopback clients may read it)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The served document, rendered once at start.
#[derive(Clone)]
pub struct Rendered(pub Arc<String>);

/// `GET /llmage/v1/openapi.json`.
#[utoipa::path(get, path = "/llmage/v1/openapi.json", tag = "gateway",
    summary = "本文档(OpenAPI 3.1) / This document (OpenAPI 3.1)",
    responses((status = 200, description = "OpenAPI 文档 / The OpenAPI document", content((Object = "application/json")))))]
pub async fn document(Extension(doc): Extension<Rendered>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.0.as_str().to_owned(),
    )
}

/// Complete the generated document: catalog parameter schemas and the error answers every
/// operation shares (rate limit, database down, oversized or malformed bodies, missing auth).
pub fn finish(doc: utoipa::openapi::OpenApi, catalog: &Catalog) -> Value {
    let mut doc = serde_json::to_value(&doc).unwrap_or_else(|_| json!({}));
    let chat_models: Vec<&str> = catalog
        .models()
        .iter()
        .filter(|m| m.serves("t2t"))
        .map(|m| m.id.as_str())
        .collect();
    if let Some(model) = doc.pointer_mut("/components/schemas/ChatRequest/properties/model") {
        model["examples"] = json!(chat_models);
    }
    // What a chat body must carry comes from the catalog (the model page reads the same table):
    // its required t2t parameters, or OpenAI's `messages` instead.
    let chat_required: std::collections::BTreeSet<&str> = catalog
        .models()
        .iter()
        .flat_map(|m| m.categories.iter().filter(|c| c.id == "t2t"))
        .flat_map(|c| c.params.iter().filter(|p| p.required))
        .map(|p| p.name.as_str())
        .collect();
    if let Some(Value::Object(chat)) = doc.pointer_mut("/components/schemas/ChatRequest")
        && !chat_required.is_empty()
    {
        chat.insert(
            "anyOf".into(),
            json!([{"required": chat_required}, {"required": ["messages"]}]),
        );
    }
    let mut schemas = Map::new();
    let mut image = Vec::new();
    let mut video = Vec::new();
    for model in catalog.models() {
        for category in &model.categories {
            if category.id == "t2t" {
                continue;
            }
            let name = format!("params.{}.{}", model.id, category.id);
            for multipart in [false, true] {
                let key = if multipart {
                    format!("{name}.multipart")
                } else {
                    name.clone()
                };
                schemas.insert(
                    key.clone(),
                    param_schema(
                        &model.id,
                        &model_text(model),
                        &category.id,
                        &category.params,
                        multipart,
                    ),
                );
                let list = if category.id == "t2i" {
                    &mut image
                } else {
                    &mut video
                };
                list.push((
                    multipart,
                    json!({"$ref": format!("#/components/schemas/{key}")}),
                ));
            }
        }
    }
    if let Some(Value::Object(components)) = doc.pointer_mut("/components/schemas") {
        components.remove("TaskParams");
        components.extend(schemas);
    }
    for (path, refs) in [
        ("/llmage/v1/image/generations", image),
        ("/llmage/v1/video/generations", video),
    ] {
        for (media, multipart) in [("application~1json", false), ("multipart~1form-data", true)] {
            let pointer = format!(
                "/paths/{}/post/requestBody/content/{media}/schema",
                path.replace('/', "~1")
            );
            if let Some(schema) = doc.pointer_mut(&pointer) {
                let variants: Vec<Value> = refs
                    .iter()
                    .filter(|(m, _)| *m == multipart)
                    .map(|(_, r)| r.clone())
                    .collect();
                *schema = json!({"oneOf": variants});
            }
        }
    }
    mirror_v1(&mut doc);
    add_shared_errors(&mut doc);
    openai_error_bodies(&mut doc);
    doc
}

/// The OpenAI-shaped operations again under `/v1` (the router serves them there too).
fn mirror_v1(doc: &mut Value) {
    let Some(Value::Object(paths)) = doc.get_mut("paths") else {
        return;
    };
    for rest in super::openai::V1_MIRRORS {
        if let Some(item) = paths.get(&format!("/llmage/v1{rest}")).cloned() {
            paths.insert(format!("/v1{rest}"), item);
        }
    }
}

/// Errors on OpenAI-style routes are OpenAI error objects (see `crate::api::openai`).
fn openai_error_bodies(doc: &mut Value) {
    fn swap(v: &mut Value) {
        match v {
            Value::String(s) if s == "#/components/schemas/ErrorBody" => {
                *s = "#/components/schemas/OpenAiError".into();
            }
            Value::Array(items) => items.iter_mut().for_each(swap),
            Value::Object(map) => map.values_mut().for_each(swap),
            _ => {}
        }
    }
    let Some(Value::Object(paths)) = doc.get_mut("paths") else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        if super::openai::error_style(path) == crate::api::error::ErrorStyle::OpenAi
            && let Value::Object(ops) = item
        {
            for op in ops.values_mut() {
                if let Some(responses) = op.get_mut("responses") {
                    swap(responses);
                }
            }
        }
    }
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

fn add_shared_errors(doc: &mut Value) {
    let Some(Value::Object(paths)) = doc.get_mut("paths") else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Value::Object(item) = item else { continue };
        for (method, op) in item.iter_mut() {
            let Value::Object(op) = op else { continue };
            // Handler names repeat across modules (`create`, `list`): ids from method and path.
            let id: String = format!("{method}{path}")
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            op.insert("operationId".into(), json!(id.trim_end_matches('_')));
            let secured = op
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|reqs| {
                    reqs.iter()
                        .all(|r| r.as_object().is_some_and(|o| !o.is_empty()))
                });
            let has_body = op.contains_key("requestBody");
            let has_params = op
                .get("parameters")
                .and_then(Value::as_array)
                .is_some_and(|p| !p.is_empty());
            let is_console = path == "/" || path.starts_with("/assets/");
            let Some(Value::Object(responses)) = op.get_mut("responses") else {
                continue;
            };
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error_response(description));
            };
            if secured {
                add(
                    "401",
                    "API Key 缺失、错误、已吊销或已过期;或需要登录 / Missing, wrong, revoked or expired key; login required",
                );
            }
            if has_body {
                add("400", "请求体格式错误 / Malformed body");
                add("413", "请求体超过大小限制 / Body over the size limit");
            }
            if has_params {
                add(
                    "400",
                    "路径、查询或请求头参数格式错误 / Malformed path, query or header parameter",
                );
            }
            if !is_console {
                add(
                    "429",
                    "请求过多(带 Retry-After)或余额不足 / Too many requests (with Retry-After) or insufficient balance",
                );
                add(
                    "503",
                    "暂时不可用:数据库不可用,或所有上游渠道都在限流(此时带 Retry-After) / Temporarily unavailable: the database, or every upstream channel rate-limiting us (then with Retry-After)",
                );
            }
            add("500", "内部错误 / Internal error");
        }
    }
}

/// One model's parameters in one category as a JSON Schema.
fn param_schema(
    model: &str,
    description: &str,
    category: &str,
    params: &[Param],
    multipart: bool,
) -> Value {
    let mut properties = Map::new();
    properties.insert(
        "model".into(),
        json!({"type": "string", "enum": [model], "description": "模型名 / The model id"}),
    );
    properties.insert(
        "catelogid".into(),
        json!({"type": "string", "enum": [category], "description": "分类标识 / The category id"}),
    );
    properties.insert(
        "callback_url".into(),
        json!({"type": "string", "format": "uri", "description": "任务结束时回调的 URL(可选) / notified when the task ends"}),
    );
    let mut required = vec![json!("model"), json!("catelogid")];
    for p in params {
        if p.name == "model" || p.name == "catelogid" {
            continue;
        }
        let mut schema = match p.kind {
            ParamType::String if p.required => {
                json!({"type": "string", "minLength": 1, "pattern": "\\S"})
            }
            ParamType::String => json!({"type": "string"}),
            ParamType::Integer => json!({"type": "integer"}),
            ParamType::Boolean => json!({"type": "boolean"}),
            ParamType::File => file_schema(p.accept, multipart),
            ParamType::Files => {
                let mut s = json!({"type": "array", "items": file_schema(p.accept, multipart), "minItems": 1});
                if let Some(n) = p.max_files {
                    s["maxItems"] = json!(n);
                }
                s
            }
        };
        if let Some(allowed) = &p.allowed {
            // The server also takes the default when the table does not list it ("adaptive").
            let mut values = allowed.clone();
            if let Some(default) = p.default.as_ref().filter(|d| !values.contains(d)) {
                values.push(default.clone());
            }
            schema["enum"] = json!(values);
        }
        if let Some(min) = p.min {
            schema["minimum"] = json!(min);
        }
        if let Some(max) = p.max {
            schema["maximum"] = json!(max);
        }
        if let Some(default) = &p.default {
            schema["default"] = default.clone();
        }
        schema["description"] = json!(param_text(p));
        if p.required {
            required.push(json!(p.name));
        }
        properties.insert(p.name.clone(), schema);
    }
    json!({
        "type": "object",
        "title": format!("{model} · {category}"),
        "description": description,
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// A catalog parameter's help as `中文 / English` (its note in brackets in each half); Chinese only
/// when the catalog gives no English.
fn param_text(p: &Param) -> String {
    let mut zh = p.description.clone();
    if let Some(note) = &p.note {
        zh = format!("{zh}({note})");
    }
    let Some(en) = &p.description_en else {
        return zh;
    };
    match &p.note_en {
        Some(note) => format!("{zh} / {en} ({note})"),
        None => format!("{zh} / {en}"),
    }
}

/// A catalog model's description as `中文 / English`; Chinese only when the catalog gives no
/// English.
fn model_text(model: &Model) -> String {
    match &model.description_en {
        Some(en) => format!("{} / {en}", model.description),
        None => model.description.clone(),
    }
}

fn file_schema(accept: Option<FileKind>, multipart: bool) -> Value {
    let (kind, zh) = match accept {
        Some(FileKind::Image) => ("image", "图片"),
        Some(FileKind::Video) => ("video", "视频"),
        Some(FileKind::Audio) => ("audio", "音频"),
        None => ("file", "文件"),
    };
    if multipart {
        let file = if accept.is_some() { "文件" } else { "" };
        json!({"type": "string", "contentMediaType": format!("{kind}/*"), "description": format!("{zh}{file} / {kind} file")})
    } else {
        json!({"type": "string", "description": format!("{zh}:http(s) URL 或 data: URI / {kind}: an http(s) URL or a data: URI")})
    }
}
