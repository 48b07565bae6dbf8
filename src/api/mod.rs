//! HTTP surface: the router, request logging, and the JSON fallbacks for unknown routes,
//! wrong methods and panics. Handlers live one surface per file.

mod admin_api;
mod auth;
mod chat;
mod console;
mod console_keys;
mod extract;
mod finance;
mod health;
mod idfile;
pub mod limits;
mod metrics_endpoint;
mod models;
mod recharge;
mod tasks;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::error::ApiError;
use crate::server::AppState;

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

/// All routes.
pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    let uploads = state.config.max_multipart_bytes;
    Router::new()
        .route("/", get(console::index))
        .route("/assets/{*path}", get(console::assets))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics_endpoint::metrics))
        .route("/idfile", get(idfile::serve))
        .route("/llmage/v1/models", get(models::list))
        .route("/llmage/v1/chat/completions", post(chat::completions))
        .route(
            "/llmage/v1/image/generations",
            post(tasks::image).layer(DefaultBodyLimit::max(uploads)),
        )
        .route(
            "/llmage/v1/video/generations",
            post(tasks::video).layer(DefaultBodyLimit::max(uploads)),
        )
        .route("/llmage/v1/tasks", get(tasks::tasks))
        .route("/llmage/v1/balance", get(auth::balance))
        .route("/api/auth/sms-code", post(auth::sms_code))
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/logout", post(auth::logout))
        .route("/api/me", get(auth::me))
        .route(
            "/api/keys",
            post(console_keys::create).get(console_keys::list),
        )
        .route(
            "/api/keys/{id}",
            axum::routing::delete(console_keys::revoke),
        )
        .route("/api/finance/ledger", get(finance::ledger))
        .route("/api/finance/usage", get(finance::usage))
        .route("/api/finance/orders", get(recharge::my_orders))
        .route("/api/redeem", post(finance::redeem))
        .route("/api/recharge/alipay", post(recharge::create))
        .route("/api/recharge/orders/{id}", get(recharge::order))
        .route("/api/recharge/orders/{id}/qr.svg", get(recharge::order_qr))
        .route("/api/payments/alipay/notify", post(recharge::notify))
        .route("/api/admin/orders", get(recharge::admin_orders))
        .route("/api/admin/channels", get(admin_api::channels))
        .route(
            "/api/admin/redeem-codes",
            get(admin_api::redeem_codes).post(admin_api::create_redeem_codes),
        )
        .route("/api/admin/users", get(admin_api::users))
        .route("/api/admin/users/{id}/credits", post(admin_api::credits))
        .route("/api/admin/users/{id}/disable", post(admin_api::disable))
        .route("/api/admin/users/{id}/enable", post(admin_api::enable))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limits::per_ip,
        ))
        .layer(middleware::from_fn(access_log))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::Internal.into_response()
        }))
        .with_state(state)
}

async fn not_found() -> Response {
    ApiError::NotFound("no such endpoint".into()).into_response()
}

async fn method_not_allowed() -> Response {
    let body = serde_json::json!({"error": "Method not allowed"}).to_string();
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// One line per request: method, path (never the query), status, latency, user id.
async fn access_log(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let slot = UserSlot::default();
    request.extensions_mut().insert(slot.clone());
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let labels = [("route", route), ("method", method.as_str().to_owned())];
    metrics::histogram!("llmage_http_request_duration_seconds", &labels)
        .record(elapsed.as_secs_f64());
    metrics::counter!("llmage_http_requests_total", "route" => labels[0].1.clone(), "method" => labels[1].1.clone(), "status" => response.status().as_u16().to_string())
        .increment(1);
    tracing::info!(
        target: "llmage::access",
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        user_id = slot.get(),
    );
    response
}
