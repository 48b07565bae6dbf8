//! The web console (`/`): static files from `web/`, compiled into the binary with rust-embed.
//! `index.html` is never cached (so a new release is picked up at once); other assets are cached
//! for an hour. The console routes with the URL fragment (`/#/keys`), so `/` is its only page.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct Assets;

fn asset(path: &str) -> Option<Response> {
    let file = Assets::get(path)?;
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let cache = if path.ends_with(".html") {
        "no-cache"
    } else {
        "public, max-age=3600"
    };
    let mut response = (StatusCode::OK, file.data.into_owned()).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime.as_ref()) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
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
    responses((status = 200, description = "HTML", content((String = "text/html")))))]
/// `GET /`.
pub async fn index() -> Response {
    asset("index.html").unwrap_or_else(|| StatusCode::NOT_FOUND.into_response())
}

#[utoipa::path(get, path = "/assets/{path}", tag = "console",
    summary = "The web console's assets",
    params(("path" = String, Path, description = "Asset path")),
    responses(
        (status = 200, description = "The asset", content((String = "application/octet-stream"))),
        (status = 404, description = "No such asset"),
    ))]
/// `GET /assets/{*path}`.
pub async fn assets(Path(path): Path<String>) -> Response {
    if path.split('/').any(|seg| seg == ".." || seg.is_empty()) {
        return StatusCode::NOT_FOUND.into_response();
    }
    asset(&format!("assets/{path}")).unwrap_or_else(|| StatusCode::NOT_FOUND.into_response())
}
