//! The web console (`/`): static files from `web/`, compiled into the binary with rust-embed.
//! The page (`index.html`) is revalidated on each use (`no-cache` + an ETag from its SHA-256,
//! 304 when unchanged) and names every asset with its content hash (`/assets/app.js?h=…`); an
//! asset asked for by its current hash is answered `immutable` for a year, so a second load
//! makes no request for it at all, and a new release's page never runs an old script. Text
//! answers are compressed (gzip or brotli, as the browser accepts; the router's layer). The
//! console routes with the URL fragment (`/#/keys`), so `/` is its only page.

use std::sync::OnceLock;

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct Assets;

/// The first 16 hex digits of a file's SHA-256 (its version in links).
fn content_hash(path: &str) -> Option<String> {
    Assets::get(path).map(|f| hex::encode(&f.metadata.sha256_hash()[..8]))
}

/// `index.html` with every `"/assets/<file>"` link carrying the file's content hash.
fn index_html() -> &'static (String, String) {
    static PAGE: OnceLock<(String, String)> = OnceLock::new();
    PAGE.get_or_init(|| {
        let raw = Assets::get("index.html")
            .map(|f| String::from_utf8_lossy(&f.data).into_owned())
            .unwrap_or_default();
        let mut page = raw.replace(
            "<meta name=\"llmage-vendors\" content=\"\">",
            &format!(
                "<meta name=\"llmage-vendors\" content=\"{}\">",
                attribute(&vendors_json())
            ),
        );
        for path in Assets::iter() {
            let Some(name) = path.strip_prefix("assets/") else {
                continue;
            };
            if let Some(hash) = content_hash(&path) {
                page = page.replace(
                    &format!("\"/assets/{name}\""),
                    &format!("\"/assets/{name}?h={hash}\""),
                );
            }
        }
        let etag = format!(
            "\"{}\"",
            hex::encode(&Sha256::digest(page.as_bytes())[..16])
        );
        (page, etag)
    })
}

/// The channel vendors for the console's channel form: `[[name, label, base URL], …]`.
fn vendors_json() -> String {
    let list: Vec<[&str; 3]> = crate::vendor::Vendor::channel_vendors()
        .map(|v| [v.as_str(), v.info().label, v.info().base_url])
        .collect();
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
}

/// Text as an HTML attribute value (inside double quotes).
fn attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn security_headers(headers: &mut HeaderMap) {
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
}

fn unchanged(request: &HeaderMap, etag: &str) -> bool {
    request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
}

fn asset(path: &str, request: &HeaderMap, immutable: bool) -> Option<Response> {
    let file = Assets::get(path)?;
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let mut response = if unchanged(request, &etag) {
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
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    security_headers(headers);
    Some(response)
}

/// The `?h=` of an asset link.
#[derive(serde::Deserialize)]
pub struct Version {
    h: Option<String>,
}

#[utoipa::path(get, path = "/", tag = "console",
    summary = "网页控制台 / The web console",
    responses(
        (status = 200, description = "HTML 页面 / HTML", content((String = "text/html"))),
        (status = 304, description = "未修改(If-None-Match) / Unchanged (If-None-Match)"),
    ))]
/// `GET /`.
pub async fn index(headers: HeaderMap) -> Response {
    let (page, etag) = index_html();
    let mut response = if unchanged(&headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, page.clone()).into_response()
    };
    let out = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        out.insert(header::ETAG, v);
    }
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    security_headers(out);
    response
}

#[utoipa::path(get, path = "/assets/{path}", tag = "console",
    summary = "控制台静态资源 / The web console's assets",
    params(("path" = String, Path, description = "资源路径 / Asset path"),
        ("h" = Option<String>, Query, description = "资源内容哈希(与页面链接一致),带此参数时按 immutable 缓存 / The asset's content hash (as the page links it): answered immutable")),
    responses(
        (status = 200, description = "静态资源 / The asset", content((String = "application/octet-stream"))),
        (status = 304, description = "未修改(If-None-Match) / Unchanged (If-None-Match)"),
        (status = 404, description = "资源不存在 / No such asset"),
    ))]
/// `GET /assets/{*path}`.
pub async fn assets(
    Path(path): Path<String>,
    Query(version): Query<Version>,
    headers: HeaderMap,
) -> Response {
    if path.split('/').any(|seg| seg == ".." || seg.is_empty()) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let path = format!("assets/{path}");
    let current = version.h.is_some() && version.h == content_hash(&path);
    asset(&path, &headers, current).unwrap_or_else(|| StatusCode::NOT_FOUND.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page names every channel vendor for the console's channel form.
    #[test]
    fn the_page_carries_the_vendor_list() {
        let (page, _) = index_html();
        let start = page
            .find("<meta name=\"llmage-vendors\" content=\"")
            .expect("the vendors meta tag");
        let line = &page[start..page[start..].find('>').map_or(page.len(), |e| start + e)];
        assert!(line.contains("[[&quot;openai&quot;,&quot;OpenAI-compatible&quot;,&quot;https://api.openai.com/v1&quot;],"), "{line}");
        for vendor in crate::vendor::Vendor::channel_vendors() {
            assert!(
                line.contains(&format!("&quot;{}&quot;", vendor.as_str())),
                "{line}"
            );
        }
        assert!(!line.contains("sandbox"));
    }
}
