//! A local Alipay Open Platform gateway (`../shared/upstreams.md` §5) with its own RSA key pair
//! generated in the test. `POST /gateway.do` answers `alipay.trade.precreate` and
//! `alipay.trade.query` with responses signed over the raw `*_response` text; `GET /gateway.do`
//! is the page-pay cashier (an HTML page whose button pays). Every request's RSA2 signature is
//! checked with the app's public key and counted. Paying sends the signed `trade_status_sync`
//! notification to the order's `notify_url`, as Alipay does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::post;
use base64::Engine;
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use serde_json::json;

pub const APP_ID: &str = "2021000000000001";
pub const SELLER_ID: &str = "2088000000000001";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// precreate answers a business failure (the order must still work by page pay).
    PrecreateFails,
}

#[derive(Clone, Debug)]
pub struct Trade {
    pub amount: String,
    pub notify_url: String,
    /// None until the buyer opens the cashier (query says TRADE_NOT_EXIST).
    pub status: Option<String>,
    pub trade_no: String,
}

#[derive(Clone)]
struct MockState {
    mode: Mode,
    alipay_key: RsaPrivateKey,
    app_verifier: VerifyingKey<Sha256>,
    trades: Arc<Mutex<HashMap<String, Trade>>>,
    bad_signatures: Arc<Mutex<u32>>,
    calls: Arc<Mutex<Vec<String>>>,
}

pub struct MockAlipay {
    pub gateway_url: String,
    /// Our app's private key (PEM, PKCS#8) and Alipay's public key (bare base64, as the console shows it).
    pub app_private_key_pem: String,
    pub alipay_public_key_b64: String,
    /// The key that signs as "Alipay".
    pub alipay_key: RsaPrivateKey,
    pub trades: Arc<Mutex<HashMap<String, Trade>>>,
    pub bad_signatures: Arc<Mutex<u32>>,
    pub calls: Arc<Mutex<Vec<String>>>,
}

pub fn new_key() -> RsaPrivateKey {
    let mut rng = rsa::rand_core::OsRng;
    RsaPrivateKey::new(&mut rng, 2048).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `k=v&…` over sorted non-empty pairs.
pub fn content(pairs: &[(String, String)]) -> String {
    let mut pairs: Vec<&(String, String)> = pairs.iter().filter(|(_, v)| !v.is_empty()).collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn sign_with(key: &RsaPrivateKey, text: &str) -> String {
    b64(&SigningKey::<Sha256>::new(key.clone())
        .sign(text.as_bytes())
        .to_bytes())
}

pub async fn start(mode: Mode) -> MockAlipay {
    let alipay_key = new_key();
    let app_key = new_key();
    let state = MockState {
        mode,
        alipay_key: alipay_key.clone(),
        app_verifier: VerifyingKey::new(app_key.to_public_key()),
        trades: Arc::default(),
        bad_signatures: Arc::default(),
        calls: Arc::default(),
    };
    let app = Router::new()
        .route("/gateway.do", post(gateway).get(cashier))
        .route("/mock/pay", post(pay_button))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    MockAlipay {
        gateway_url: format!("{base}/gateway.do"),
        app_private_key_pem: app_key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
        alipay_public_key_b64: b64(alipay_key
            .to_public_key()
            .to_public_key_der()
            .unwrap()
            .as_bytes()),
        alipay_key,
        trades: state.trades,
        bad_signatures: state.bad_signatures,
        calls: state.calls,
    }
}

impl MockAlipay {
    /// The signed notification Alipay sends for `out_trade_no` now (trade must exist).
    pub fn notification(&self, out_trade_no: &str) -> Vec<(String, String)> {
        let trade = self
            .trades
            .lock()
            .unwrap()
            .get(out_trade_no)
            .cloned()
            .unwrap();
        notification_fields(&self.alipay_key, out_trade_no, &trade)
    }

    /// The buyer pays (as through the cashier); the notification is returned, not sent.
    pub fn pay_silently(&self, out_trade_no: &str) -> Vec<(String, String)> {
        let mut trades = self.trades.lock().unwrap();
        let trade = trades.get_mut(out_trade_no).unwrap();
        trade.status = Some("TRADE_SUCCESS".into());
        let trade = trade.clone();
        drop(trades);
        notification_fields(&self.alipay_key, out_trade_no, &trade)
    }

    pub fn set_status(&self, out_trade_no: &str, status: &str) {
        self.trades
            .lock()
            .unwrap()
            .get_mut(out_trade_no)
            .unwrap()
            .status = Some(status.into());
    }

    /// POST a notification form to `url`; the reply body.
    pub async fn deliver(url: &str, fields: &[(String, String)]) -> String {
        reqwest::Client::new()
            .post(url)
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(serde_urlencoded::to_string(fields).unwrap())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn bad_signatures(&self) -> u32 {
        *self.bad_signatures.lock().unwrap()
    }
}

fn notification_fields(
    key: &RsaPrivateKey,
    out_trade_no: &str,
    trade: &Trade,
) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = [
        ("notify_time", "2026-11-25 10:00:00"),
        ("notify_type", "trade_status_sync"),
        ("notify_id", &format!("n{}", trade.trade_no)),
        ("app_id", APP_ID),
        ("charset", "utf-8"),
        ("version", "1.0"),
        ("trade_no", &trade.trade_no),
        ("out_trade_no", out_trade_no),
        ("seller_id", SELLER_ID),
        (
            "trade_status",
            trade.status.as_deref().unwrap_or("WAIT_BUYER_PAY"),
        ),
        ("total_amount", &trade.amount),
        ("receipt_amount", &trade.amount),
        ("subject", "元境平台积分充值"),
        ("gmt_payment", "2026-11-25 10:00:00"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let sign = sign_with(key, &content(&fields));
    fields.push(("sign_type".into(), "RSA2".into()));
    fields.push(("sign".into(), sign));
    fields
}

/// Check a request's signature (everything but `sign`, sign_type included).
fn verified(state: &MockState, params: &[(String, String)]) -> bool {
    let Some((_, sign)) = params.iter().find(|(k, _)| k == "sign") else {
        return false;
    };
    let rest: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "sign")
        .cloned()
        .collect();
    let ok = base64::engine::general_purpose::STANDARD
        .decode(sign)
        .ok()
        .and_then(|b| Signature::try_from(b.as_slice()).ok())
        .is_some_and(|s| {
            state
                .app_verifier
                .verify(content(&rest).as_bytes(), &s)
                .is_ok()
        });
    if !ok {
        *state.bad_signatures.lock().unwrap() += 1;
    }
    ok
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> &'a str {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// Register the trade of a signed request; its biz_content.
fn open_trade(state: &MockState, params: &[(String, String)]) -> serde_json::Value {
    let biz: serde_json::Value =
        serde_json::from_str(param(params, "biz_content")).unwrap_or_default();
    let out = biz["out_trade_no"].as_str().unwrap_or("").to_owned();
    let amount = biz["total_amount"].as_str().unwrap_or("").to_owned();
    let mut trades = state.trades.lock().unwrap();
    let n = trades.len() + 1;
    trades.entry(out).or_insert_with(|| Trade {
        amount,
        notify_url: param(params, "notify_url").to_owned(),
        status: None,
        trade_no: format!("20261125220014{n:08}"),
    });
    biz
}

fn signed_answer(state: &MockState, node_name: &str, node: &serde_json::Value) -> Response {
    // Alipay's own spacing: not what serde would write, so a verifier must use the raw text.
    let raw = node.to_string().replace("\",\"", "\", \"");
    let sign = sign_with(&state.alipay_key, &raw);
    (
        [("content-type", "application/json;charset=utf-8")],
        format!("{{\"{node_name}\":{raw},\"sign\":\"{sign}\"}}"),
    )
        .into_response()
}

async fn gateway(State(state): State<MockState>, body: Bytes) -> Response {
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let method = param(&params, "method").to_owned();
    state.calls.lock().unwrap().push(method.clone());
    let node_name = format!("{}_response", method.replace('.', "_"));
    if !verified(&state, &params) || param(&params, "app_id") != APP_ID {
        return signed_answer(
            &state,
            &node_name,
            &json!({"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-signature","sub_msg":"验签出错"}),
        );
    }
    match method.as_str() {
        "alipay.trade.precreate" => {
            if state.mode == Mode::PrecreateFails {
                return signed_answer(
                    &state,
                    &node_name,
                    &json!({"code":"40004","msg":"Business Failed","sub_code":"ACQ.ACCESS_FORBIDDEN","sub_msg":"当面付未开通"}),
                );
            }
            let biz = open_trade(&state, &params);
            let out = biz["out_trade_no"].as_str().unwrap_or("");
            signed_answer(
                &state,
                &node_name,
                &json!({"code":"10000","msg":"Success","out_trade_no": out,"qr_code": format!("https://qr.alipay.com/mock{out}")}),
            )
        }
        "alipay.trade.query" => {
            let biz: serde_json::Value =
                serde_json::from_str(param(&params, "biz_content")).unwrap_or_default();
            let out = biz["out_trade_no"].as_str().unwrap_or("").to_owned();
            let trade = state.trades.lock().unwrap().get(&out).cloned();
            match trade.filter(|t| t.status.is_some()) {
                None => signed_answer(
                    &state,
                    &node_name,
                    &json!({"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}),
                ),
                Some(t) => signed_answer(
                    &state,
                    &node_name,
                    &json!({"code":"10000","msg":"Success","trade_no": t.trade_no,"out_trade_no": out,
                        "buyer_logon_id":"159****5620","trade_status": t.status,"total_amount": t.amount,
                        "buyer_pay_amount": t.amount,"receipt_amount": t.amount}),
                ),
            }
        }
        _ => signed_answer(
            &state,
            "error_response",
            &json!({"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-method"}),
        ),
    }
}

/// The cashier: the signed GET from our page-pay URL (desktop) or WAP pay URL (phone); it
/// names the method it was opened with (`#method`).
async fn cashier(
    State(state): State<MockState>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let method = param(&params, "method").to_owned();
    if !verified(&state, &params)
        || !matches!(
            method.as_str(),
            "alipay.trade.page.pay" | "alipay.trade.wap.pay"
        )
    {
        return Html("<h1>支付宝: 验签失败</h1>".to_owned()).into_response();
    }
    let biz = open_trade(&state, &params);
    let expected_product = if method == "alipay.trade.wap.pay" {
        "QUICK_WAP_WAY"
    } else {
        "FAST_INSTANT_TRADE_PAY"
    };
    if biz["product_code"] != expected_product {
        return Html("<h1>支付宝: 产品码错误</h1>".to_owned()).into_response();
    }
    let out = biz["out_trade_no"].as_str().unwrap_or("").to_owned();
    if let Some(trade) = state.trades.lock().unwrap().get_mut(&out)
        && trade.status.is_none()
    {
        trade.status = Some("WAIT_BUYER_PAY".into());
    }
    let return_url = param(&params, "return_url");
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>支付宝收银台 (mock)</title>\
         <h1>支付宝收银台</h1><p>订单 {out}</p><p id=amount>¥{}</p><p id=method>{method}</p>\
         <form method=post action=/mock/pay><input type=hidden name=out_trade_no value=\"{out}\">\
         <input type=hidden name=return_url value=\"{return_url}\">\
         <button id=pay type=submit>确认付款</button></form>",
        biz["total_amount"].as_str().unwrap_or("")
    ))
    .into_response()
}

/// The cashier's pay button: the trade is paid, the notification sent, the buyer sent back.
async fn pay_button(State(state): State<MockState>, body: Bytes) -> Response {
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let out = param(&form, "out_trade_no").to_owned();
    let trade = {
        let mut trades = state.trades.lock().unwrap();
        let Some(trade) = trades.get_mut(&out) else {
            return Html("<h1>no such trade</h1>".to_owned()).into_response();
        };
        trade.status = Some("TRADE_SUCCESS".into());
        trade.clone()
    };
    let fields = notification_fields(&state.alipay_key, &out, &trade);
    let _ = MockAlipay::deliver(&trade.notify_url, &fields).await;
    match param(&form, "return_url") {
        "" => Html("<h1>付款成功</h1>".to_owned()).into_response(),
        url => Redirect::to(url).into_response(),
    }
}

/// A demo server with `[alipay]` pointing at `mock` (keys as files: PEM and bare base64), on a
/// fixed port so the notify URL and the console's return URL are known.
pub async fn server_with_alipay(mock: &MockAlipay, extra_env: &[(&str, &str)]) -> super::Server {
    super::Server::start(alipay_opts(mock, extra_env)).await
}

/// The options of [`server_with_alipay`] (keep them to restart the same server).
pub fn alipay_opts(mock: &MockAlipay, extra_env: &[(&str, &str)]) -> super::Opts {
    let keys = tempfile::tempdir().unwrap().keep();
    let private = keys.join("app_private_key.pem");
    let public = keys.join("alipay_public_key.txt");
    std::fs::write(&private, &mock.app_private_key_pem).unwrap();
    std::fs::write(&public, &mock.alipay_public_key_b64).unwrap();
    let port = super::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut opts = super::Opts::demo();
    opts.listen = Some(listen.clone());
    let mut env: Vec<(String, String)> = vec![
        ("LLMAGE_ALIPAY__APP_ID".into(), APP_ID.into()),
        ("LLMAGE_ALIPAY__SELLER_ID".into(), SELLER_ID.into()),
        (
            "LLMAGE_ALIPAY__GATEWAY_URL".into(),
            mock.gateway_url.clone(),
        ),
        (
            "LLMAGE_ALIPAY__APP_PRIVATE_KEY_FILE".into(),
            private.display().to_string(),
        ),
        (
            "LLMAGE_ALIPAY__ALIPAY_PUBLIC_KEY_FILE".into(),
            public.display().to_string(),
        ),
        ("LLMAGE_PUBLIC_BASE_URL".into(), format!("http://{listen}")),
        (
            "LLMAGE_ALIPAY__RETURN_URL".into(),
            format!("http://{listen}/#/recharge"),
        ),
    ];
    env.extend(
        extra_env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    opts.env = env;
    opts
}
