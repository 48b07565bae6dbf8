//! Protections applied to every request in front of the handlers:
//! - the client's address (behind `security.trusted_proxies`), stored for rate limits, key IP
//!   allow-lists, the `/metrics` loopback rule and the access log;
//! - `X-Content-Type-Options: nosniff` on every answer and a strict Content-Security-Policy
//!   (scripts, styles and connections only from this origin; no inline script);
//! - login CSRF: a state-changing `/api/*` request without a session cookie (login, SMS codes)
//!   must be `application/json`, which a cross-site HTML form cannot send, and no `/api/*`
//!   state change is accepted with a foreign `Origin` or `Sec-Fetch-Site: cross-site`.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::error::ApiError;
use crate::net::TrustedProxies;

/// The client's address as decided by [`client_ip`].
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// Middleware: decide the client's address once.
pub async fn client_ip(
    State(proxies): State<Arc<TrustedProxies>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|axum::extract::ConnectInfo(addr)| addr.ip());
    if let Some(peer) = peer {
        let ip = proxies.client_ip(peer, request.headers());
        request.extensions_mut().insert(ClientIp(ip));
    }
    next.run(request).await
}

/// The Content-Security-Policy of every answer; `extra_origin` (the `public_base_url` when it
/// differs from the console's origin) may serve images and videos.
pub fn content_security_policy(extra_origin: Option<&str>) -> String {
    let extra = extra_origin.map(|o| format!(" {o}")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:{extra}; \
         media-src 'self' blob:{extra}; connect-src 'self'; font-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Middleware: `nosniff` and the CSP on every answer.
pub async fn security_headers(
    State(csp): State<Arc<HeaderValue>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, (*csp).clone());
    }
    response
}

/// Paths that other servers call (not browsers): exempt from the JSON rule.
const SERVER_TO_SERVER: &[&str] = &["/api/payments/alipay/notify"];

/// Middleware: refuse cross-site state changes on `/api/*` and non-JSON cookie-less ones. The
/// state is the origin of `public_base_url`, which is also this site (behind a proxy that does
/// not pass `Host` on).
pub async fn cross_site(
    State(public_origin): State<Arc<Option<String>>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if safe || !path.starts_with("/api/") || SERVER_TO_SERVER.contains(&path) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("cross-site"));
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    let foreign_origin = headers.get(header::ORIGIN).is_some_and(|origin| {
        let public = public_origin.as_deref().is_some_and(|o| {
            origin
                .to_str()
                .is_ok_and(|given| given.eq_ignore_ascii_case(o))
        });
        !public && !same_origin(origin, host)
    });
    if cross_site || foreign_origin {
        return ApiError::Forbidden(
            "跨站请求被拒绝 / cross-site requests to the console API are refused".into(),
        )
        .into_response();
    }
    if !super::auth::has_session_cookie(headers) && !is_json(headers) {
        let body = serde_json::json!({
            "error": "请求体必须是 application/json / the body must be application/json"
        });
        return (
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            axum::Json(body),
        )
            .into_response();
    }
    next.run(request).await
}

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Whether `Origin` names the host the request was sent to (scheme aside: a TLS-terminating
/// proxy may change it). `null` and unparsable origins are foreign.
fn same_origin(origin: &HeaderValue, host: Option<&str>) -> bool {
    let (Some(origin), Some(host)) = (origin.to_str().ok(), host) else {
        return false;
    };
    let Some((_, authority)) = origin.split_once("://") else {
        return false;
    };
    let authority = authority.trim_end_matches('/');
    let host = host.trim();
    if authority.eq_ignore_ascii_case(host) {
        return true;
    }
    // `Host: example.com` with `Origin: https://example.com:443` and the like.
    let strip_default = |a: &str| {
        a.strip_suffix(":80")
            .or_else(|| a.strip_suffix(":443"))
            .unwrap_or(a)
            .to_ascii_lowercase()
    };
    strip_default(authority) == strip_default(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_compared_with_the_host() {
        let host = Some("127.0.0.1:8080");
        assert!(same_origin(
            &HeaderValue::from_static("http://127.0.0.1:8080"),
            host
        ));
        assert!(!same_origin(
            &HeaderValue::from_static("http://evil.example"),
            host
        ));
        assert!(!same_origin(&HeaderValue::from_static("null"), host));
        assert!(same_origin(
            &HeaderValue::from_static("https://gw.example:443"),
            Some("gw.example")
        ));
    }
}
