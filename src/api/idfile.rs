//! `GET`/`HEAD /idfile?path=<id>`: stored files (archived results, uploads) served WITHOUT an API
//! key, for browsers and video players. The id (128 random bits) is the capability; `path` is only
//! ever looked up as an id in the `files` table, anything that is not 32 lowercase hex characters
//! is a 404 without touching the store.
//!
//! HTTP semantics: strong `ETag` with `If-None-Match` (304), single byte ranges (`bytes=a-b`,
//! `bytes=a-`, `bytes=-n` → 206, unsatisfiable → 416, several ranges or a malformed header → the
//! full 200, as RFC 9110 allows), `If-Range`, and immutable caching (ids never change content).
//! Bodies are streamed from the object store, never buffered whole.

use std::ops::Range;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::storage::files::{StoredFile, extension_for_mime, is_valid_id};

/// The query: `path` is the file id (the seed's name for it).
#[derive(Deserialize)]
pub struct IdfileQuery {
    path: Option<String>,
    /// Expiry (unix seconds) and signature of a link to an uploaded input file.
    exp: Option<i64>,
    sig: Option<String>,
}

impl IdfileQuery {
    /// The query for an archived result (no signature: results are served by id).
    pub fn result(id: String) -> IdfileQuery {
        IdfileQuery {
            path: Some(id),
            exp: None,
            sig: None,
        }
    }
}

#[utoipa::path(get, path = "/idfile", tag = "tasks",
    summary = "结果与输入文件(任务结果中的链接) / Result and input files (links from task answers)",
    params(
        ("path" = String, Query, description = "任务链接中的文件 id / The file id from a task's link"),
        ("exp" = Option<i64>, Query, description = "输入文件签名链接的过期时间 / Expiry of a signed input-file link"),
        ("sig" = Option<String>, Query, description = "输入文件链接的签名 / Signature of an input-file link"),
    ),
    responses(
        (status = 200, description = "文件(PNG、JPEG、MP4 等) / The file (PNG, JPEG, MP4, …)", content((String = "application/octet-stream"))),
        (status = 206, description = "文件的一段字节范围 / A byte range of it", content((String = "application/octet-stream"))),
        (status = 400, description = "路径有误 / Bad path", body = super::schema::ErrorBody),
        (status = 403, description = "签名已过期或无效 / Expired or bad signature", body = super::schema::ErrorBody),
        (status = 404, description = "文件不存在 / No such file", body = super::schema::ErrorBody),
        (status = 416, description = "请求的范围无法满足 / Range not satisfiable", body = super::schema::ErrorBody),
    ))]
/// Serve one stored file (GET and HEAD).
pub async fn serve(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    query: Result<Query<IdfileQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Ok(Query(q)) = &query else {
        return Err(ApiError::NotFound("file".into()));
    };
    let id = match &q.path {
        Some(id) if is_valid_id(id) => id.as_str(),
        _ => return Err(ApiError::NotFound("file".into())),
    };
    let file = state
        .files
        .meta(id)
        .await?
        .ok_or_else(|| ApiError::NotFound("file".into()))?;
    // Results are public by their unguessable id (like the seed's links); uploaded inputs only
    // through a short-lived signed link (what we hand a vendor), so they cannot be shared on.
    if file.kind == crate::storage::files::FileKind::Input {
        let signed = match (q.exp, &q.sig) {
            (Some(exp), Some(sig)) => {
                state
                    .links
                    .verify(id, exp, sig, crate::util::clock::now_ms() / 1000)
            }
            _ => false,
        };
        if !signed {
            return Err(ApiError::NotFound("file".into()));
        }
    }

    if if_none_match(&headers, &file.etag) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        let h = response.headers_mut();
        h.insert(header::ETAG, header_value(&file.etag));
        h.insert(header::CACHE_CONTROL, cache_control(&file));
        return Ok(response);
    }

    // Range handling is defined for GET only (RFC 9110 §14.2); HEAD answers as a full GET would.
    let range = if method == Method::GET && if_range_allows(&headers, &file.etag) {
        single_range_header(&headers).map_or(RangeRequest::Full, |r| parse_range(r, file.size))
    } else {
        RangeRequest::Full
    };

    let (status, range) = match range {
        RangeRequest::Full => (StatusCode::OK, None),
        RangeRequest::Partial(range) => (StatusCode::PARTIAL_CONTENT, Some(range)),
        RangeRequest::Unsatisfiable => return Ok(unsatisfiable(&file)),
    };
    let length = range.as_ref().map_or(file.size, |r| r.end - r.start);
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from_stream(state.files.open(&file, range.clone()).await?)
    };

    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    file_headers(h, &file);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if let Some(range) = range {
        let value = format!("bytes {}-{}/{}", range.start, range.end - 1, file.size);
        h.insert(header::CONTENT_RANGE, header_value(&value));
    }
    Ok(response)
}

const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
/// Uploaded inputs travel on short-lived signed links: no shared caches.
const INPUT_CACHE_CONTROL: &str = "private, no-store";

fn cache_control(file: &StoredFile) -> HeaderValue {
    if file.kind == crate::storage::files::FileKind::Input {
        HeaderValue::from_static(INPUT_CACHE_CONTROL)
    } else {
        HeaderValue::from_static(CACHE_CONTROL)
    }
}

/// The headers every 200/206 carries.
fn file_headers(h: &mut HeaderMap, file: &StoredFile) {
    let mime = HeaderValue::from_str(&file.mime)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, mime);
    h.insert(header::ETAG, header_value(&file.etag));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CACHE_CONTROL, cache_control(file));
    let disposition = if is_inline_safe(&file.mime) {
        "inline"
    } else {
        "attachment"
    };
    let filename = format!(
        "{disposition}; filename=\"{}.{}\"",
        file.id,
        extension_for_mime(&file.mime)
    );
    h.insert(header::CONTENT_DISPOSITION, header_value(&filename));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Files are served from our own origin: a stored document must not run anything there.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
}

/// Media a browser only displays; anything else (HTML, SVG, XML, …) is offered as a download.
fn is_inline_safe(mime: &str) -> bool {
    (mime.starts_with("image/") && mime != "image/svg+xml")
        || mime.starts_with("video/")
        || mime.starts_with("audio/")
        || mime == "text/plain"
        || mime == "application/json"
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn unsatisfiable(file: &StoredFile) -> Response {
    let body = ApiError::InvalidParameter("range".into()).body();
    let mut response = (StatusCode::RANGE_NOT_SATISFIABLE, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::CONTENT_RANGE,
        header_value(&format!("bytes */{}", file.size)),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::ETAG, header_value(&file.etag));
    response
}

/// Whether `If-None-Match` matches our ETag (weak comparison, `*` matches any).
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// Whether a `Range` may be honoured under `If-Range`: absent, or exactly our (strong) ETag.
/// A date or a weak tag never matches (we send no `Last-Modified`), so the full file is served.
fn if_range_allows(headers: &HeaderMap, etag: &str) -> bool {
    match headers.get(header::IF_RANGE) {
        None => true,
        Some(v) => v.to_str().is_ok_and(|v| v.trim() == etag),
    }
}

/// The `Range` header when there is exactly one.
fn single_range_header(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(header::RANGE).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => v.to_str().ok(),
        _ => None,
    }
}

/// What a `Range` header asks of a file.
#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    /// No usable range (absent, malformed, several ranges): the whole file, 200.
    Full,
    /// One satisfiable range (end exclusive, non-empty): 206.
    Partial(Range<u64>),
    /// A well-formed single range outside the file: 416.
    Unsatisfiable,
}

/// Parse a `Range` header value against a file of `size` bytes.
fn parse_range(value: &str, size: u64) -> RangeRequest {
    let Some((unit, set)) = value.split_once('=') else {
        return RangeRequest::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeRequest::Full;
    }
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let spec = match (specs.next(), specs.next()) {
        (Some(spec), None) => spec,
        _ => return RangeRequest::Full,
    };
    let Some((first, last)) = spec.split_once('-') else {
        return RangeRequest::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // bytes=-n: the last n bytes.
        let Some(n) = number(last) else {
            return RangeRequest::Full;
        };
        if n == 0 || size == 0 {
            return RangeRequest::Unsatisfiable;
        }
        return RangeRequest::Partial(size.saturating_sub(n)..size);
    }
    let Some(start) = number(first) else {
        return RangeRequest::Full;
    };
    let end = if last.is_empty() {
        size
    } else {
        match number(last) {
            Some(last) if last >= start => last.saturating_add(1).min(size),
            _ => return RangeRequest::Full,
        }
    };
    if start >= size {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial(start..end)
}

/// A non-empty run of ASCII digits; values past `u64::MAX` saturate.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idfile_ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range("bytes=0-3", 10), Partial(0..4));
        assert_eq!(parse_range("bytes=2-", 10), Partial(2..10));
        assert_eq!(parse_range("bytes=-3", 10), Partial(7..10));
        assert_eq!(parse_range("bytes=-30", 10), Partial(0..10));
        assert_eq!(parse_range("bytes=5-100", 10), Partial(5..10));
        assert_eq!(parse_range("Bytes = 9-9", 10), Partial(9..10));
        assert_eq!(
            parse_range("bytes=0-99999999999999999999999", 10),
            Partial(0..10)
        );
        assert_eq!(parse_range("bytes=10-", 10), Unsatisfiable);
        assert_eq!(parse_range("bytes=10-20", 10), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 10), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=-5", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,3-4", 10), Full);
        assert_eq!(parse_range("bytes=5-2", 10), Full);
        assert_eq!(parse_range("bytes=abc", 10), Full);
        assert_eq!(parse_range("bytes=-", 10), Full);
        assert_eq!(parse_range("bytes=+1-2", 10), Full);
        assert_eq!(parse_range("items=0-1", 10), Full);
        assert_eq!(parse_range("0-1", 10), Full);
        assert_eq!(parse_range("bytes=", 10), Full);
    }

    #[test]
    fn idfile_conditionals() {
        let etag = "\"0123\"";
        let mut h = HeaderMap::new();
        assert!(!if_none_match(&h, etag));
        assert!(if_range_allows(&h, etag));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"0123\""),
        );
        assert!(if_none_match(&h, etag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(if_none_match(&h, etag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"0124\""));
        assert!(!if_none_match(&h, etag));
        h.insert(header::IF_RANGE, HeaderValue::from_static("\"0123\""));
        assert!(if_range_allows(&h, etag));
        h.insert(header::IF_RANGE, HeaderValue::from_static("W/\"0123\""));
        assert!(!if_range_allows(&h, etag));
        h.insert(
            header::IF_RANGE,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert!(!if_range_allows(&h, etag));
    }
}
