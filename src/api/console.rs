//! The web console (`/`): static files from `web/`, compiled into the binary with rust-embed.
//! Every file is revalidated on each use (`no-cache` + an ETag from its SHA-256, 304 when
//! unchanged), so a new release's page never runs an old script. The console routes with the URL
//! fragment (`/#/keys`), so `/` is its only page.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct Assets;

fn asset(path: &str, request: &HeaderMap) -> Option<Response> {
    let file = Assets::get(path)?;
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let unchanged = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, file.data.into_owned()).into_response()
    };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(mime.as_ref()) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    Some(response)
}

#[utoipa::path(get, path = "/", tag = "console",
    summary = "The web console",
    responses(
        (status = 200, description = "HTML", content((String = "text/html"))),
        (status = 304, description = "Unchanged (If-None-Match)"),
    ))]
/// `GET /`.
pub async fn index(headers: HeaderMap) -> Response {
    asset("index.html", &headers).unwrap_or_else(|| StatusCode::NOT_FOUND.into_response())
}

#[utoipa::path(get, path = "/assets/{path}", tag = "console",
    summary = "The web console's assets",
    params(("path" = String, Path, description = "Asset path")),
    responses(
        (status = 200, description = "The asset", content((String = "application/octet-stream"))),
        (status = 304, description = "Unchanged (If-None-Match)"),
        (status = 404, description = "No such asset"),
    ))]
/// `GET /assets/{*path}`.
pub async fn assets(Path(path): Path<String>, headers: HeaderMap) -> Response {
    if path.split('/').any(|seg| seg == ".." || seg.is_empty()) {
        return StatusCode::NOT_FOUND.into_response();
    }
    asset(&format!("assets/{path}"), &headers)
        .unwrap_or_else(|| StatusCode::NOT_FOUND.into_response())
}
