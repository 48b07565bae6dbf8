//! Recharge (充值) through Alipay: `POST /api/recharge/alipay` creates an order and answers the
//! page-pay URL and (when precreate worked) the QR code content; `GET /api/recharge/orders/{id}`
//! shows one order (asking Alipay about it when it is still open); `POST
//! /api/payments/alipay/notify` takes Alipay's signed notification and credits exactly once;
//! `GET /api/finance/orders` and `GET /api/admin/orders` list orders.
//!
//! In demo mode without Alipay a built-in sandbox cashier stands in: orders are created with
//! provider `sandbox` and a `pay_url` on this server (the console's `#/cashier` page), whose
//! "模拟支付成功" button calls `POST /api/recharge/orders/{id}/sandbox-pay`. That applies a
//! payment notification through the same code as a verified Alipay one ([`apply_payment`]), so
//! the money path is the real one. Outside demo mode the sandbox does not exist.

use super::extract::{ApiPath, ApiQuery};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::admin_api::AdminUser;
use super::auth::SessionUser;
use super::extract::JsonBody;
use super::finance::{FinanceQuery, csv_response};
use super::tasks::base_url;
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::payments::alipay::{Notification, TradeRequest};
use crate::payments::orders::{Order, PENDING};
use crate::payments::reconcile;
use crate::util::clock::now_ms;
use crate::util::ids::random_id;
use crate::util::yuan::fen_to_yuan;
use crate::util::yuan::yuan_to_fen;

/// An open order is asked about at Alipay at most this often when someone looks at it.
const LOOK_INTERVAL_MS: i64 = 3_000;

fn subject(order: &Order) -> String {
    format!("元境平台积分充值 {} 元", order.amount_yuan())
}

/// Whether the sandbox cashier stands in for Alipay (demo mode without Alipay, unless
/// `sandbox.cashier` is off).
fn sandbox_cashier(state: &AppState) -> bool {
    state.config.demo && state.alipay.is_none() && state.config.sandbox.cashier
}

/// The provider of the sandbox cashier's orders.
const SANDBOX: &str = "sandbox";

/// `origin` is this server's base URL (for the sandbox cashier's `pay_url`).
fn order_json(state: &AppState, order: &Order, origin: &str) -> Value {
    let mut v = json!({
        "order_id": order.id,
        "provider": order.provider,
        "status": order.status,
        "amount": order.amount_yuan(),
        "credits": order.credits,
        "trade_no": order.trade_no,
        "failure": order.failure,
        "created_at": order.created_at / 1000,
        "expires_at": order.expires_at / 1000,
        "paid_at": order.paid_at.map(|t| t / 1000),
    });
    if order.status == PENDING
        && now_ms() < order.expires_at
        && let Some(alipay) = &state.alipay
    {
        let subject = subject(order);
        let amount = order.amount_yuan();
        let trade = TradeRequest {
            out_trade_no: &order.id,
            total_amount: &amount,
            subject: &subject,
        };
        v["pay_url"] = json!(alipay.page_pay_url(&trade));
        v["wap_pay_url"] = json!(alipay.wap_pay_url(&trade));
        v["qr_code"] = json!(order.qr_code);
    }
    if order.status == PENDING && now_ms() < order.expires_at && order.provider == SANDBOX {
        // Order ids are letters and digits (see `Orders::create`): nothing to escape.
        v["pay_url"] = json!(format!("{origin}/#/cashier?order={}", order.id));
    }
    v
}

#[utoipa::path(get, path = "/api/recharge/config", tag = "recharge",
    summary = "充值设置 / recharge settings (rate and limits)",
    responses((status = 200, description = "充值设置 / Settings", body = super::schema::RechargeConfig)),
    security(("session" = [])))]
/// `GET /api/recharge/config`.
pub async fn config(State(state): State<AppState>, _who: SessionUser) -> Json<Value> {
    let billing = &state.config.billing;
    let yuan = |text: &str| yuan_to_fen(text).map(fen_to_yuan).unwrap_or_default();
    Json(json!({
        "alipay": state.alipay.is_some(),
        "sandbox": sandbox_cashier(&state),
        "credits_per_yuan": billing.credits_per_yuan,
        "min": yuan(&billing.recharge_min_yuan),
        "max": yuan(&billing.recharge_max_yuan),
    }))
}

#[utoipa::path(post, path = "/api/recharge/alipay", tag = "recharge",
    summary = "充值 · 支付宝 / create an Alipay recharge order",
    request_body = super::schema::RechargeBody,
    responses(
        (status = 201, description = "订单,含网页支付链接与二维码内容 / Order with its page-pay URL and QR code content", body = super::schema::RechargeOrder),
        (status = 400, description = "金额缺失、格式有误或超出限额 / Amount missing, malformed or outside the limits", body = super::schema::ErrorBody),
        (status = 403, description = "X-CSRF-Token 缺失或错误 / Missing or wrong X-CSRF-Token", body = super::schema::ErrorBody),
        (status = 503, description = "未配置支付宝(且不在演示模式) / Alipay is not configured (and not in demo mode)", body = super::schema::ErrorBody),
    ),
    security(("session" = [], "csrf" = [])))]
/// `POST /api/recharge/alipay {"amount": "10.00"}` (demo mode without Alipay: a sandbox order).
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SessionUser,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let alipay = state.alipay.clone();
    if alipay.is_none() && !sandbox_cashier(&state) {
        return Err(ApiError::NotConfigured(
            "支付宝充值未开通,请联系管理员 / Alipay recharge is not configured on this server"
                .into(),
        ));
    }
    let amount = match body.get("amount") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            return Err(ApiError::InvalidParameter(
                "amount must be a yuan amount like \"10.00\"".into(),
            ));
        }
        None => return Err(ApiError::MissingParameter("amount".into())),
    };
    let billing = &state.config.billing;
    let min = yuan_to_fen(&billing.recharge_min_yuan).unwrap_or(100);
    let max = yuan_to_fen(&billing.recharge_max_yuan).unwrap_or(i64::MAX);
    let fen = yuan_to_fen(&amount)
        .filter(|f| (min..=max).contains(f))
        .ok_or_else(|| {
            ApiError::InvalidParameter(format!(
                "amount: 充值金额须在 {} 到 {} 元之间,最多两位小数 / must be between {} and {} yuan with at most 2 decimals",
                fen_to_yuan(min),
                fen_to_yuan(max),
                fen_to_yuan(min),
                fen_to_yuan(max)
            ))
        })?;
    let credits = fen
        .checked_mul(billing.credits_per_yuan)
        .map(|c| c / 100)
        .filter(|c| *c > 0)
        .ok_or_else(|| ApiError::InvalidParameter("amount buys no credits".into()))?;
    let payable_ms = i64::try_from(state.config.alipay.order_timeout_mins)
        .unwrap_or(30)
        .saturating_mul(60_000);
    let provider = if alipay.is_some() { "alipay" } else { SANDBOX };
    let mut order = state
        .orders
        .create(who.user.id, provider, fen, credits, payable_ms)
        .await?;
    if let Some(alipay) = alipay {
        let subject = subject(&order);
        let trade = TradeRequest {
            out_trade_no: &order.id,
            total_amount: &order.amount_yuan(),
            subject: &subject,
        };
        // The QR code is a bonus: the order and its page-pay URL stand without it.
        match alipay.precreate(&trade).await {
            Ok(qr) => {
                state.orders.set_qr_code(&order.id, &qr).await?;
                order.qr_code = Some(qr);
            }
            Err(e) => {
                tracing::warn!(order = %order.id, error = %e, "alipay precreate failed; page pay only")
            }
        }
    }
    tracing::info!(order = %order.id, user_id = who.user.id, amount_fen = fen, provider, "recharge order created");
    let body = order_json(&state, &order, &base_url(&state, &headers));
    Ok((axum::http::StatusCode::CREATED, Json(body)).into_response())
}

#[utoipa::path(get, path = "/api/recharge/orders/{id}", tag = "recharge",
    summary = "充值订单状态 / one recharge order",
    params(("id" = String, Path, description = "订单号 / order_id")),
    responses(
        (status = 200, description = "订单 / The order", body = super::schema::RechargeOrder),
        (status = 404, description = "该用户没有这个订单 / No such order of this user", body = super::schema::ErrorBody),
    ),
    security(("session" = [])))]
/// `GET /api/recharge/orders/{id}`: the caller's own order (admins: any).
pub async fn order(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SessionUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let not_found = || ApiError::NotFound(format!("order {id}"));
    let mut order = state.orders.get(&id).await?.ok_or_else(not_found)?;
    if order.user_id != who.user.id && who.user.role != "admin" {
        return Err(not_found());
    }
    if order.status == PENDING
        && let Some(alipay) = &state.alipay
        && now_ms() - order.checked_at.unwrap_or(0) > LOOK_INTERVAL_MS
    {
        if let Err(e) = reconcile::check_order(alipay, &state.orders, &order).await {
            tracing::debug!(order = %order.id, error = %e, "order check at Alipay failed");
        }
        order = state.orders.get(&id).await?.ok_or_else(not_found)?;
    }
    Ok(Json(order_json(
        &state,
        &order,
        &base_url(&state, &headers),
    )))
}

#[utoipa::path(post, path = "/api/recharge/orders/{id}/sandbox-pay", tag = "recharge",
    summary = "沙盒收银台 · 模拟支付成功 / pay a sandbox order (demo mode only)",
    description = "仅限未配置支付宝的演示模式:通过与支付宝验签通知相同的代码完成调用者的 `sandbox` 订单(只入账一次)。 / Demo mode without Alipay only: completes the caller's open `sandbox` order through the same code as a verified Alipay payment notification (credits once).",
    params(("id" = String, Path, description = "订单号 / order_id")),
    responses(
        (status = 200, description = "订单(现为 SUCCEEDED) / The order, now SUCCEEDED", body = super::schema::RechargeOrder),
        (status = 400, description = "订单已无法支付 / The order is no longer payable", body = super::schema::ErrorBody),
        (status = 403, description = "X-CSRF-Token 缺失或错误 / Missing or wrong X-CSRF-Token", body = super::schema::ErrorBody),
        (status = 404, description = "该用户没有这个沙盒订单,或不在演示模式 / No such sandbox order of this user, or not in demo mode", body = super::schema::ErrorBody),
    ),
    security(("session" = [], "csrf" = [])))]
/// `POST /api/recharge/orders/{id}/sandbox-pay`: the sandbox cashier's "模拟支付成功".
pub async fn sandbox_pay(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SessionUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let not_found = || ApiError::NotFound(format!("sandbox order {id}"));
    if !sandbox_cashier(&state) {
        return Err(not_found());
    }
    let order = state.orders.get(&id).await?.ok_or_else(not_found)?;
    if order.user_id != who.user.id || order.provider != SANDBOX {
        return Err(not_found());
    }
    if order.status == PENDING && now_ms() >= order.expires_at {
        return Err(ApiError::InvalidParameter(
            "订单已过期,请重新下单 / the order has expired; create a new one".into(),
        ));
    }
    if order.status == PENDING {
        let notification = Notification {
            out_trade_no: order.id.clone(),
            trade_no: format!("SANDBOX{}", &random_id()[..16]),
            trade_status: "TRADE_SUCCESS".into(),
            total_amount: order.amount_yuan(),
        };
        apply_payment(&state, &notification)
            .await
            .map_err(|e| match e {
                PaymentError::UnknownOrder => not_found(),
                _ => ApiError::Internal,
            })?;
    }
    let order = state.orders.get(&id).await?.ok_or_else(not_found)?;
    Ok(Json(order_json(
        &state,
        &order,
        &base_url(&state, &headers),
    )))
}

#[utoipa::path(post, path = "/api/recharge/orders/{id}/cancel", tag = "recharge",
    summary = "取消订单 / cancel a pending order",
    description = "关闭调用者处于 PENDING 状态的订单(FAILED,`cancelled`);之后仍到账的付款照常入账。 / Closes a PENDING order of the caller (FAILED, `cancelled`). A payment that still arrives for it is credited all the same.",
    params(("id" = String, Path, description = "订单号 / order_id")),
    responses(
        (status = 200, description = "订单 / The order", body = super::schema::RechargeOrder),
        (status = 403, description = "X-CSRF-Token 缺失或错误 / Missing or wrong X-CSRF-Token", body = super::schema::ErrorBody),
        (status = 404, description = "该用户没有这个待支付订单 / No such pending order of this user", body = super::schema::ErrorBody),
    ),
    security(("session" = [], "csrf" = [])))]
/// `POST /api/recharge/orders/{id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    who: SessionUser,
    headers: axum::http::HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let not_found = || ApiError::NotFound(format!("pending order {id}"));
    let order = state.orders.get(&id).await?.ok_or_else(not_found)?;
    if order.user_id != who.user.id || order.status != PENDING {
        return Err(not_found());
    }
    state.orders.mark_failed(&id, "cancelled").await?;
    let order = state.orders.get(&id).await?.ok_or_else(not_found)?;
    Ok(Json(order_json(
        &state,
        &order,
        &base_url(&state, &headers),
    )))
}

#[utoipa::path(get, path = "/api/recharge/orders/{id}/qr.svg", tag = "recharge",
    summary = "付款二维码 / the order's QR code as SVG",
    params(("id" = String, Path, description = "订单号 / order_id")),
    responses(
        (status = 200, description = "SVG 图片 / SVG image", content((String = "image/svg+xml"))),
        (status = 404, description = "没有这个带二维码的未完成订单 / No such open order with a QR code", body = super::schema::ErrorBody),
    ),
    security(("session" = [])))]
/// `GET /api/recharge/orders/{id}/qr.svg`: the order's QR code (for the Alipay app) as SVG.
pub async fn order_qr(
    State(state): State<AppState>,
    who: SessionUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("QR code of order {id}"));
    let order = state.orders.get(&id).await?.ok_or_else(not_found)?;
    if order.user_id != who.user.id && who.user.role != "admin" {
        return Err(not_found());
    }
    let content = order
        .qr_code
        .filter(|_| order.status == PENDING)
        .ok_or_else(not_found)?;
    let code = qrcode::QrCode::new(content.as_bytes()).map_err(|_| ApiError::Internal)?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build();
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        svg,
    )
        .into_response())
}

fn plain(text: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

#[utoipa::path(post, path = "/api/payments/alipay/notify", tag = "recharge",
    summary = "支付宝异步通知 / Alipay's payment notification",
    description = "支付宝以表单格式发送并以 RSA2 签名;处理成功(或此前已处理)时只回答 `success`,否则 `failure`。 / Form-encoded, RSA2-signed by Alipay. Answers exactly `success` when applied (or applied before), `failure` otherwise.",
    request_body(content((super::schema::AlipayNotification = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "`success` 或 `failure` / `success` or `failure`", content((String = "text/plain")))))]
/// `POST /api/payments/alipay/notify`: answers exactly `success` once the notification is
/// applied (or was before: a replay), `failure` when it is forged, not ours, or mismatched.
pub async fn notify(State(state): State<AppState>, body: Bytes) -> Response {
    let Some(alipay) = &state.alipay else {
        return plain("failure");
    };
    let Ok(fields) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        tracing::warn!("alipay notify: body is not a form");
        return plain("failure");
    };
    let notification = match alipay.verify_notification(&fields) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "alipay notify refused");
            return plain("failure");
        }
    };
    match apply_payment(&state, &notification).await {
        Ok(()) => plain("success"),
        Err(_) => plain("failure"),
    }
}

/// Why a verified payment notification was not applied.
#[derive(Debug)]
enum PaymentError {
    UnknownOrder,
    Lookup,
    AmountMismatch,
    /// Not applied yet (a database error); Alipay retries, the reconciliation job applies it.
    NotApplied,
}

/// Apply a verified payment notification (Alipay's, or the sandbox cashier's): the amount must
/// be the order's; paid credits the order exactly once, closed fails it.
async fn apply_payment(state: &AppState, notification: &Notification) -> Result<(), PaymentError> {
    let order = match state.orders.get(&notification.out_trade_no).await {
        Ok(Some(order)) => order,
        Ok(None) => {
            tracing::warn!(order = %notification.out_trade_no, "payment notify for an unknown order");
            return Err(PaymentError::UnknownOrder);
        }
        Err(e) => {
            tracing::warn!(error = %e, "payment notify: order lookup failed");
            return Err(PaymentError::Lookup);
        }
    };
    if yuan_to_fen(&notification.total_amount) != Some(order.amount_fen) {
        tracing::error!(order = %order.id, "payment notify amount differs from the order; refused");
        return Err(PaymentError::AmountMismatch);
    }
    let outcome = match notification.trade_status.as_str() {
        "TRADE_SUCCESS" | "TRADE_FINISHED" => state
            .orders
            .mark_paid(&order, &notification.trade_no)
            .await
            .map(|paid| {
                tracing::info!(order = %order.id, provider = %order.provider, credits = order.credits, ?paid, "payment notify applied");
            })
            .map_err(|e| e.to_string()),
        "TRADE_CLOSED" => state
            .orders
            .mark_failed(&order.id, "支付宝交易已关闭 / the Alipay trade was closed")
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        _ => Ok(()),
    };
    outcome.map_err(|e| {
        // Alipay retries; the next delivery or the reconciliation job applies it.
        tracing::warn!(order = %order.id, error = %e, "payment notify not applied yet");
        PaymentError::NotApplied
    })
}

fn orders_response(
    state: &AppState,
    headers: &HeaderMap,
    orders: &[Order],
    q: &FinanceQuery,
    with_user: bool,
) -> Result<Response, ApiError> {
    if q.csv()? {
        let rows: Vec<Vec<String>> = orders
            .iter()
            .map(|o| {
                let mut row = vec![
                    o.id.clone(),
                    crate::util::clock::utc_timestamp(o.created_at),
                    o.provider.clone(),
                    o.amount_yuan(),
                    o.credits.to_string(),
                    o.status.clone(),
                    o.trade_no.clone().unwrap_or_default(),
                    o.paid_at
                        .map(crate::util::clock::utc_timestamp)
                        .unwrap_or_default(),
                ];
                if with_user {
                    row.push(o.user_id.to_string());
                }
                row
            })
            .collect();
        let mut header_row = vec![
            "order_id",
            "created_at",
            "provider",
            "amount_yuan",
            "credits",
            "status",
            "trade_no",
            "paid_at",
        ];
        if with_user {
            header_row.push("user_id");
        }
        return csv_response("orders", &header_row, &rows);
    }
    let data: Vec<Value> = orders
        .iter()
        .map(|o| {
            let mut v = order_json(state, o, &base_url(state, headers));
            if with_user {
                v["user_id"] = json!(o.user_id);
            }
            v
        })
        .collect();
    Ok(Json(json!({"object": "list", "data": data})).into_response())
}

#[utoipa::path(get, path = "/api/finance/orders", tag = "finance",
    summary = "财务 · 充值订单 / the user's recharge orders",
    params(
        ("format" = Option<String>, Query, description = "格式 / format: json (default) or csv"),
        ("limit" = Option<i64>, Query, description = "行数 1–10000(默认 1000) / Rows, 1–10000 (default 1000)", minimum = 1, maximum = 10000),
    ),
    responses(
        (status = 200, description = "订单,最新的在前 / Orders, newest first", content(
            (super::schema::OrderList = "application/json"), (String = "text/csv"))),
        (status = 400, description = "格式或条数有误 / Bad format or limit", body = super::schema::ErrorBody),
    ),
    security(("session" = [])))]
/// `GET /api/finance/orders`: the caller's recharge orders.
pub async fn my_orders(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SessionUser,
    ApiQuery(q): ApiQuery<FinanceQuery>,
) -> Result<Response, ApiError> {
    let orders = state.orders.list(Some(who.user.id), q.limit()?).await?;
    orders_response(&state, &headers, &orders, &q, false)
}

#[utoipa::path(get, path = "/api/admin/orders", tag = "admin",
    summary = "管理 · 全部充值订单 / every recharge order",
    params(
        ("format" = Option<String>, Query, description = "格式 / format: json (default) or csv"),
        ("limit" = Option<i64>, Query, description = "行数 1–10000(默认 1000) / Rows, 1–10000 (default 1000)", minimum = 1, maximum = 10000),
    ),
    responses(
        (status = 200, description = "订单,最新的在前 / Orders, newest first", content(
            (super::schema::OrderList = "application/json"), (String = "text/csv"))),
        (status = 400, description = "格式或条数有误 / Bad format or limit", body = super::schema::ErrorBody),
        (status = 403, description = "不是管理员 / Not an admin", body = super::schema::ErrorBody),
    ),
    security(("session" = [])))]
/// `GET /api/admin/orders`: everyone's recharge orders.
pub async fn admin_orders(
    State(state): State<AppState>,
    headers: HeaderMap,
    _admin: AdminUser,
    ApiQuery(q): ApiQuery<FinanceQuery>,
) -> Result<Response, ApiError> {
    let orders = state.orders.list(None, q.limit()?).await?;
    orders_response(&state, &headers, &orders, &q, true)
}
