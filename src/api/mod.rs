//! HTTP surface: the router, request logging, and the JSON fallbacks for unknown routes,
//! wrong methods and panics. Handlers live one surface per file.

mod admin_api;
mod admin_channels;
mod alerts;
mod auth;
mod callback_secret;
mod calls;
mod chat;
mod console;
mod console_keys;
pub mod embeddings;
pub mod error;
pub mod error_codes;
mod extract;
mod finance;
pub mod guard;
mod health;
mod idfile;
mod images;
pub mod limits;
mod metrics_endpoint;
mod models;
pub mod openai;
pub mod openapi;
mod paced_body;
mod quote;
mod recharge;
pub mod request_id;
pub mod schema;
pub mod state;
mod tasks;
mod videos;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::compression::CompressionLayer;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::api::error::ApiError;
use crate::api::state::AppState;

/// The user a request was authenticated as, filled in by the auth extractor for the access log.
#[derive(Clone, Default)]
pub struct UserSlot(Arc<AtomicI64>);

impl UserSlot {
    pub fn set(&self, user_id: i64) {
        self.0.store(user_id, Ordering::Relaxed);
    }
    fn get(&self) -> Option<i64> {
        Some(self.0.load(Ordering::Relaxed)).filter(|id| *id != 0)
    }
}

/// All routes. Each is registered with `routes!`, which adds the handler's `#[utoipa::path]` to
/// the OpenAPI document at the same time: a route cannot be served without being documented.
pub fn router(state: AppState) -> Router {
    let (router, doc) = documented_router(&state);
    let max_body_bytes = state.config.max_body_bytes;
    // Validated with the configuration; an unparsable list (impossible here) trusts nobody.
    let proxies = Arc::new(
        crate::net::TrustedProxies::new(&state.config.security.trusted_proxies).unwrap_or_default(),
    );
    let csp = axum::http::HeaderValue::from_str(&guard::content_security_policy(
        state.config.public_base_url.as_deref().map(origin_of),
    ))
    .unwrap_or_else(|_| {
        axum::http::HeaderValue::from_static("default-src 'self'; object-src 'none'")
    });
    let doc = openapi::finish(doc, &state.channels.table().catalog);
    let rendered = openapi::Rendered(Arc::new(doc.to_string()));
    let cross_site_origin = Arc::new(
        state
            .config
            .public_base_url
            .as_deref()
            .map(|u| origin_of(u).to_owned()),
    );
    // Routing comes first: only what needs the matched route (its label for the access log) is
    // a per-route layer. `Router::layer` wraps every route's boxed service, and a request then
    // clones the whole boxed stack once per layer (measured: ~90 boxed clones and ~110 heap
    // allocations per chat call with the edge layers below applied that way).
    let routed = router
        .route_layer(middleware::from_fn(remember_route))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    // The edge, outermost first, around the router as one service.
    let app = tower::ServiceBuilder::new()
        .layer(middleware::from_fn(openai::error_bodies))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::Internal.into_response()
        }))
        .layer(middleware::from_fn_with_state(
            Arc::new(csp),
            guard::security_headers,
        ))
        .layer(middleware::from_fn_with_state(proxies, guard::client_ip))
        .layer(middleware::from_fn(request_id::assign))
        .layer(middleware::from_fn(access_log))
        .layer(middleware::from_fn(error_codes::add_code))
        .layer(middleware::from_fn_with_state(
            cross_site_origin,
            guard::cross_site,
        ))
        .layer(middleware::from_fn_with_state(state, limits::per_ip))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::Extension(rendered))
        .service(routed);
    // `/v1/…` of an OpenAI-shaped route is that route under `/llmage/v1`, rewritten before
    // routing (so both bases are one set of handlers and documents).
    Router::new().fallback_service(tower::ServiceExt::map_request(app, openai::v1_rewrite))
}

/// The route a request matched, carried on its response for [`access_log`] (which runs before
/// routing, so that requests refused at the edge are logged and counted too).
#[derive(Clone)]
struct RouteLabel(axum::extract::MatchedPath);

async fn remember_route(request: Request, next: Next) -> Response {
    let matched = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .cloned();
    let mut response = next.run(request).await;
    if let Some(matched) = matched {
        response.extensions_mut().insert(RouteLabel(matched));
    }
    response
}

/// The routes and the OpenAPI document generated from them.
pub fn documented_router(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let uploads = state.config.max_multipart_bytes;
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(console::index).layer(CompressionLayer::new()))
        .routes(routes!(console::assets).layer(CompressionLayer::new()))
        .routes(routes!(health::healthz))
        .routes(routes!(metrics_endpoint::metrics))
        .routes(routes!(idfile::serve))
        .routes(routes!(openapi::document))
        .routes(routes!(models::list))
        .routes(routes!(chat::completions))
        .routes(routes!(tasks::image).layer(DefaultBodyLimit::max(uploads)))
        .routes(routes!(tasks::video).layer(DefaultBodyLimit::max(uploads)))
        .routes(routes!(tasks::tasks))
        .routes(routes!(models::retrieve))
        .routes(routes!(images::generate))
        .routes(routes!(videos::create, videos::list).layer(DefaultBodyLimit::max(uploads)))
        .routes(routes!(videos::retrieve, videos::delete))
        .routes(routes!(videos::content))
        .routes(routes!(embeddings::create))
        .routes(routes!(quote::quote).layer(DefaultBodyLimit::max(uploads)))
        .routes(routes!(auth::balance))
        .routes(routes!(auth::sms_code))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(callback_secret::show, callback_secret::rotate))
        .routes(routes!(alerts::set_low_balance))
        .routes(routes!(console_keys::create, console_keys::list))
        .routes(routes!(console_keys::revoke, console_keys::update))
        .routes(routes!(console_keys::remove))
        .routes(routes!(finance::ledger))
        .routes(routes!(finance::usage))
        .routes(routes!(calls::console_calls))
        .routes(routes!(calls::key_calls))
        .routes(routes!(recharge::my_orders))
        .routes(routes!(finance::redeem))
        .routes(routes!(recharge::create))
        .routes(routes!(recharge::config))
        .routes(routes!(recharge::order))
        .routes(routes!(recharge::order_qr))
        .routes(routes!(recharge::cancel))
        .routes(routes!(recharge::sandbox_pay))
        .routes(routes!(recharge::notify))
        .routes(routes!(recharge::admin_orders))
        .routes(routes!(admin_channels::list, admin_channels::create))
        .routes(routes!(admin_channels::update, admin_channels::delete))
        .routes(routes!(admin_channels::test))
        .routes(routes!(
            admin_api::redeem_codes,
            admin_api::create_redeem_codes
        ))
        .routes(routes!(admin_api::users))
        .routes(routes!(admin_api::credits))
        .routes(routes!(admin_api::disable))
        .routes(routes!(admin_api::enable))
        .split_for_parts()
}

/// `scheme://host[:port]` of a URL (for the CSP).
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

async fn not_found() -> Response {
    ApiError::NotFound("no such endpoint".into()).into_response()
}

async fn method_not_allowed() -> Response {
    let body = serde_json::json!({"error": "Method not allowed"}).to_string();
    let mut response = (
        StatusCode::METHOD_NOT_ALLOWED,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    response
        .extensions_mut()
        .insert(crate::api::error::ErrorBodies {
            openai: serde_json::json!({"error": {
                "message": "Method not allowed",
                "type": "invalid_request_error",
                "param": null,
                "code": "method_not_allowed",
            }})
            .to_string(),
        });
    response
}

/// The metrics label of a method: the standard ones by name, anything else as `other` (so a
/// client cannot create series by inventing methods).
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// One line per request: method, path (never the query), status, latency, user id.
async fn access_log(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let peer = limits::peer_ip(request.extensions());
    let slot = UserSlot::default();
    request.extensions_mut().insert(slot.clone());
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<RouteLabel>()
        .map_or("unmatched", |RouteLabel(m)| m.as_str())
        .to_owned();
    let elapsed = started.elapsed();
    let labels = [
        ("route", route),
        ("method", method_label(&method).to_owned()),
    ];
    metrics::histogram!("llmage_http_request_duration_seconds", &labels)
        .record(elapsed.as_secs_f64());
    metrics::counter!("llmage_http_requests_total", "route" => labels[0].1.clone(), "method" => labels[1].1.clone(), "status" => response.status().as_u16().to_string())
        .increment(1);
    tracing::info!(
        target: "llmage::access",
        client = peer.map(|ip| ip.to_string()),
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        user_id = slot.get(),
    );
    response
}
