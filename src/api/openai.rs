//! What the OpenAI-standard surface shares: which routes answer OpenAI error objects, the `/v1`
//! mirror of every OpenAI-shaped route, and the mapping of OpenAI's `size` and `seconds` onto a
//! model's own parameter table (`size`, or `resolution` + `ratio`, and `duration`).

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;

use crate::api::error::{ApiError, ErrorBodies, ErrorStyle};
use crate::catalog::{Category, Param, ParamType};

/// The OpenAI-shaped routes, relative to a base: served under `/llmage/v1` (documented there by
/// their handlers) and mirrored under `/v1`.
pub const V1_MIRRORS: &[&str] = &[
    "/models",
    "/models/{id}",
    "/chat/completions",
    "/images/generations",
    "/videos",
    "/videos/{id}",
    "/videos/{id}/content",
    "/embeddings",
];

/// Serve `/v1/<route>` as `/llmage/v1/<route>` when `<route>` is one of [`V1_MIRRORS`], marking
/// the request for OpenAI error bodies; any other path is left alone.
pub fn v1_rewrite(mut request: Request) -> Request {
    let path = request.uri().path();
    let Some(rest) = path.strip_prefix("/v1") else {
        return request;
    };
    if !V1_MIRRORS
        .iter()
        .any(|pattern| matches_pattern(pattern, rest))
    {
        return request;
    }
    let rewritten = match request.uri().query() {
        Some(q) => format!("/llmage/v1{rest}?{q}"),
        None => format!("/llmage/v1{rest}"),
    };
    if let Ok(uri) = rewritten.parse() {
        *request.uri_mut() = uri;
        request.extensions_mut().insert(ErrorStyle::OpenAi);
    }
    request
}

/// Whether `path` fits a route pattern whose `{…}` segments match any one non-empty segment.
fn matches_pattern(pattern: &str, path: &str) -> bool {
    let (mut p, mut s) = (pattern.split('/'), path.split('/'));
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (Some(want), Some(got)) => {
                let wild = want.starts_with('{') && want.ends_with('}');
                if !((wild && !got.is_empty()) || want == got) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// The error body style of a request path: OpenAI's for everything under `/v1` and for the
/// OpenAI-only routes under `/llmage/v1` (not in the seed); the seed's for everything else.
pub fn error_style(path: &str) -> ErrorStyle {
    if path == "/v1" || path.starts_with("/v1/") {
        return ErrorStyle::OpenAi;
    }
    let Some(rest) = path.strip_prefix("/llmage/v1/") else {
        return ErrorStyle::Seed;
    };
    let openai_only = rest.starts_with("models/")
        || rest.starts_with("images/")
        || rest == "videos"
        || rest.starts_with("videos/")
        || rest == "embeddings";
    if openai_only {
        ErrorStyle::OpenAi
    } else {
        ErrorStyle::Seed
    }
}

/// Middleware (outermost): an error response on an OpenAI-style route carries OpenAI's error
/// object instead of the seed's body. The body itself comes from [`ApiError`], which attached
/// both forms to its response.
pub async fn error_bodies(request: Request, next: Next) -> Response {
    let style = match request.extensions().get::<ErrorStyle>() {
        Some(style) => *style,
        None => error_style(request.uri().path()),
    };
    let mut response = next.run(request).await;
    if style != ErrorStyle::OpenAi {
        return response;
    }
    match response.extensions_mut().remove::<ErrorBodies>() {
        Some(bodies) => {
            let (mut parts, _) = response.into_parts();
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(bodies.openai))
        }
        None => response,
    }
}

/// A `WIDTHxHEIGHT` size (OpenAI's spelling; `W*H` is accepted too).
fn parse_size(size: &str) -> Option<(u32, u32)> {
    let (w, h) = size
        .split_once(['x', 'X', '*'])
        .and_then(|(w, h)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)))?;
    (w > 0 && h > 0).then_some((w, h))
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn param<'a>(table: &'a Category, name: &str) -> Option<&'a Param> {
    table.params.iter().find(|p| p.name == name)
}

fn allowed_strings(p: &Param) -> Option<Vec<String>> {
    p.allowed.as_ref().map(|values| {
        values
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    })
}

/// Whether `value` is allowed by `p` (case-insensitively, as the validator also accepts it).
fn allows(p: &Param, value: &str) -> bool {
    let default = p.default.as_ref().and_then(Value::as_str);
    allowed_strings(p).is_none_or(|all| all.iter().any(|a| a.eq_ignore_ascii_case(value)))
        || default.is_some_and(|d| d.eq_ignore_ascii_case(value))
}

/// `WxH` for a short side in pixels and a `a:b` ratio.
fn size_of(short: u32, ratio: &str) -> Option<String> {
    let (a, b) = ratio.split_once(':')?;
    let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
    if a == 0 || b == 0 {
        return None;
    }
    let long = |x: u32, y: u32| (short * x / y).div_ceil(2) * 2;
    Some(if a >= b {
        format!("{}x{short}", long(a, b))
    } else {
        format!("{short}x{}", long(b, a))
    })
}

/// The short side of a `720p`-style resolution.
fn short_side(resolution: &str) -> Option<u32> {
    resolution
        .strip_suffix(['p', 'P'])
        .and_then(|n| n.parse().ok())
}

/// Every `WxH` a table allows, for error messages.
fn allowed_sizes(table: &Category) -> Vec<String> {
    if let Some(p) = param(table, "size") {
        return allowed_strings(p)
            .unwrap_or_default()
            .iter()
            .map(|s| s.replace('*', "x"))
            .collect();
    }
    let Some(resolutions) = param(table, "resolution").and_then(allowed_strings) else {
        return Vec::new();
    };
    let ratios = param(table, "ratio")
        .and_then(allowed_strings)
        .unwrap_or_else(|| vec!["16:9".into()]);
    resolutions
        .iter()
        .filter_map(|r| short_side(r))
        .flat_map(|short| ratios.iter().filter_map(move |r| size_of(short, r)))
        .collect()
}

/// OpenAI's `size` as fields of the model's table: `size` (`W*H`), or `resolution` (the short
/// side, `720p`) and `ratio` (`16:9`). A size the table cannot express is refused, naming the
/// sizes it can.
pub fn map_size(
    model: &str,
    table: &Category,
    size: &str,
) -> Result<Vec<(String, Value)>, ApiError> {
    let refuse = || {
        let allowed = allowed_sizes(table);
        ApiError::InvalidParameter(if allowed.is_empty() {
            format!("size: model {model} has no size option; leave size out")
        } else {
            format!(
                "size {size} is not offered by model {model} (allowed: {})",
                allowed.join(", ")
            )
        })
    };
    if size.eq_ignore_ascii_case("auto") {
        return Ok(Vec::new());
    }
    let (w, h) = parse_size(size).ok_or_else(refuse)?;
    if let Some(p) = param(table, "size") {
        let value = format!("{w}*{h}");
        return if allows(p, &value) {
            Ok(vec![("size".into(), Value::String(value))])
        } else {
            Err(refuse())
        };
    }
    let Some(resolution) = param(table, "resolution") else {
        return Err(refuse());
    };
    let mut fields = Vec::new();
    let wanted = format!("{}p", w.min(h));
    if !allows(resolution, &wanted) {
        return Err(refuse());
    }
    fields.push(("resolution".into(), Value::String(wanted)));
    let g = gcd(w, h);
    let ratio = format!("{}:{}", w / g, h / g);
    match param(table, "ratio") {
        Some(p) if allows(p, &ratio) => fields.push(("ratio".into(), Value::String(ratio))),
        Some(_) => return Err(refuse()),
        // A table without a ratio makes one shape per resolution: only 16:9 and 9:16 are sure.
        None if ratio == "16:9" || ratio == "9:16" => {}
        None => return Err(refuse()),
    }
    Ok(fields)
}

/// OpenAI's `seconds` as the table's `duration` (an integer field when the table says so).
pub fn map_seconds(
    model: &str,
    table: &Category,
    seconds: &Value,
) -> Result<(String, Value), ApiError> {
    let Some(p) = param(table, "duration") else {
        return Err(ApiError::InvalidParameter(format!(
            "seconds: model {model} has no duration option; leave seconds out"
        )));
    };
    let n = match seconds {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::InvalidParameter("seconds must be a whole number of seconds".into())
    })?;
    Ok((
        "duration".into(),
        if p.kind == ParamType::Integer {
            Value::from(n)
        } else {
            Value::String(n.to_string())
        },
    ))
}

/// The size a task was made in, OpenAI-spelled: `WxH` when the parameters fix it, else the
/// resolution (`720p`; an `adaptive` ratio follows the input image).
pub fn task_size(params: &serde_json::Map<String, Value>) -> Option<String> {
    if let Some(size) = params.get("size").and_then(Value::as_str) {
        return Some(size.replace('*', "x"));
    }
    let resolution = params.get("resolution").and_then(Value::as_str)?;
    let fixed = params
        .get("ratio")
        .and_then(Value::as_str)
        .and_then(|ratio| size_of(short_side(resolution)?, ratio));
    Some(fixed.unwrap_or_else(|| resolution.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn table(model: &str, category: &str) -> Category {
        let catalog = Catalog::builtin().unwrap();
        catalog
            .get(model)
            .unwrap()
            .category(category)
            .unwrap()
            .clone()
    }

    #[test]
    fn styles() {
        assert_eq!(error_style("/v1/models"), ErrorStyle::OpenAi);
        assert_eq!(error_style("/v1/nope"), ErrorStyle::OpenAi);
        assert_eq!(error_style("/llmage/v1/models"), ErrorStyle::Seed);
        assert_eq!(error_style("/llmage/v1/chat/completions"), ErrorStyle::Seed);
        assert_eq!(
            error_style("/llmage/v1/image/generations"),
            ErrorStyle::Seed
        );
        assert_eq!(
            error_style("/llmage/v1/images/generations"),
            ErrorStyle::OpenAi
        );
        assert_eq!(
            error_style("/llmage/v1/models/qwen3-max"),
            ErrorStyle::OpenAi
        );
        assert_eq!(
            error_style("/llmage/v1/videos/abc/content"),
            ErrorStyle::OpenAi
        );
        assert_eq!(error_style("/api/me"), ErrorStyle::Seed);
        assert_eq!(error_style("/v10/x"), ErrorStyle::Seed);
    }

    #[test]
    fn v1_paths_map_onto_llmage_v1() {
        let rewrite = |uri: &str| {
            let r = v1_rewrite(Request::builder().uri(uri).body(Body::empty()).unwrap());
            (
                r.uri().to_string(),
                r.extensions().get::<ErrorStyle>().copied(),
            )
        };
        assert_eq!(
            rewrite("/v1/models"),
            ("/llmage/v1/models".into(), Some(ErrorStyle::OpenAi))
        );
        assert_eq!(
            rewrite("/v1/videos/abc/content?variant=thumbnail"),
            (
                "/llmage/v1/videos/abc/content?variant=thumbnail".into(),
                Some(ErrorStyle::OpenAi)
            )
        );
        // The seed's own routes are not OpenAI-shaped: not mirrored.
        assert_eq!(rewrite("/v1/image/generations").0, "/v1/image/generations");
        assert_eq!(rewrite("/v1/tasks").0, "/v1/tasks");
        assert_eq!(rewrite("/v1/videos//content").0, "/v1/videos//content");
        assert_eq!(rewrite("/v1/models/a/b").0, "/v1/models/a/b");
        assert_eq!(rewrite("/llmage/v1/models").1, None);
    }

    #[test]
    fn sizes_map_onto_resolution_and_ratio() {
        let t = table("viduq3-pro", "t2v");
        let f = map_size("viduq3-pro", &t, "1280x720").unwrap();
        assert_eq!(
            f,
            vec![
                ("resolution".into(), json("720p")),
                ("ratio".into(), json("16:9"))
            ]
        );
        let f = map_size("viduq3-pro", &t, "720x1280").unwrap();
        assert_eq!(f[1], ("ratio".into(), json("9:16")));
        let e = map_size("viduq3-pro", &t, "1792x1024")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("1280x720") && e.contains("1920x1080") && e.contains("960x540"),
            "{e}"
        );
        let t = table("wan2.6-t2v", "t2v");
        assert_eq!(
            map_size("wan2.6-t2v", &t, "1280x720").unwrap(),
            vec![("size".into(), json("1280*720"))]
        );
        assert!(map_size("wan2.6-t2v", &t, "1000x1000").is_err());
        let t = table("wan2.2-t2i-plus", "t2i");
        assert!(map_size("wan2.2-t2i-plus", &t, "auto").unwrap().is_empty());
        assert!(
            map_size("wan2.2-t2i-plus", &t, "1024x1024")
                .unwrap_err()
                .to_string()
                .contains("no size option")
        );
    }

    #[test]
    fn sizes_back_from_params() {
        let p = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            task_size(&p(serde_json::json!({"size": "1280*720"}))).as_deref(),
            Some("1280x720")
        );
        assert_eq!(
            task_size(&p(
                serde_json::json!({"resolution": "1080p", "ratio": "9:16"})
            ))
            .as_deref(),
            Some("1080x1920")
        );
        assert_eq!(
            task_size(&p(
                serde_json::json!({"resolution": "720P", "ratio": "adaptive"})
            ))
            .as_deref(),
            Some("720p")
        );
        let t = table("viduq3-pro", "t2v");
        assert_eq!(
            map_seconds("viduq3-pro", &t, &json("4")).unwrap(),
            ("duration".into(), Value::from(4))
        );
    }

    fn json(s: &str) -> Value {
        Value::String(s.to_owned())
    }
}
