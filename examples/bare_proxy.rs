//! The stack floor for `scripts/bench-gateway.sh` (`BARE_REF=1`): llmage's own connection loop
//! (`llmage::http_server::serve`) and an HTTP client built like llmage's, with nothing between
//! them — no key check, rate limit, JSON parse, billing or response rewrite. Every POST is
//! forwarded byte for byte to the upstream, and the answer (JSON or SSE) is streamed back.
//!
//! What llmage costs above this row is the product's work; what this row costs above the nginx
//! `proxy_pass` reference is the price of hyper + reqwest + tokio themselves.
//!
//!     cargo run --release --example bare_proxy -- 127.0.0.1:18110 http://127.0.0.1:18080
//!
//! A path is forwarded as it came (`/llmage/v1/chat/completions` becomes
//! `<upstream>/v1/chat/completions`, the `/llmage` prefix dropped), so the harness can point its
//! JSON and streaming models at the two mock ports with `STREAM_UPSTREAM`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "a benchmark/example program: a failed setup should stop it, and it may spawn freely"
)]

use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use llmage::http_server::{ConnectionLimits, serve};
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct Upstreams {
    http: reqwest::Client,
    json: String,
    stream: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:18110".into());
    let json = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:18080".into());
    let stream = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:18081".into());
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .build()
        .context("cannot build the HTTP client")?;
    let app = Router::new()
        .fallback(forward)
        .with_state(Upstreams { http, json, stream });
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!("bare_proxy on {listen}");
    let limits = ConnectionLimits {
        header_read_timeout: Duration::from_secs(30),
        connection_idle: Duration::from_secs(120),
        min_body_bytes_per_sec: 0,
        body_rate_grace: Duration::from_secs(10),
    };
    serve(listener, app, limits, CancellationToken::new()).await;
    Ok(())
}

async fn forward(State(up): State<Upstreams>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 1 << 20).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    // The harness' streaming model asks for `"stream":true`: those go to the SSE port.
    let streaming = asks_for_stream(&body);
    let base = if streaming { &up.stream } else { &up.json };
    let path = parts.uri.path();
    let url = format!("{base}{}", path.strip_prefix("/llmage").unwrap_or(path));
    let sent = up
        .http
        .post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, "Bearer dummy")
        .body(body)
        .send()
        .await;
    let upstream = match sent {
        Ok(upstream) => upstream,
        Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
    };
    let status = upstream.status();
    let content_type = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or(HeaderValue::from_static("application/json"));
    let body = if streaming {
        Body::from_stream(upstream.bytes_stream())
    } else {
        match upstream.bytes().await {
            Ok(bytes) => Body::from(bytes),
            Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
        }
    };
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Whether the request body asks for a stream (a byte search: the floor parses no JSON).
fn asks_for_stream(body: &Bytes) -> bool {
    body.windows(13).any(|w| w == b"\"stream\":true")
}
