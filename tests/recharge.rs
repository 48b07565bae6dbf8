//! Alipay recharge against a local mock Alipay gateway that signs with a key pair generated in
//! the test: a new phone from SMS code to login, key, recharge (cashier page, notification
//! delivered twice and once forged), a paid chat call and the finance views with the ledger exact
//! at every step; forged, replayed and mismatched notifications; reconciliation by trade.query;
//! precreate failing; amount limits; recharge switched off without `[alipay]`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::time::Duration;

use common::console::{login, post};
use common::mock_alipay::{self, MockAlipay, Mode, server_with_alipay};
use common::{Opts, Server, eventually};
use serde_json::{Value, json};

async fn get(http: &reqwest::Client, server: &Server, path: &str) -> (u16, Value) {
    let resp = http.get(server.url(path)).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn notify_url(server: &Server) -> String {
    server.url("/api/payments/alipay/notify")
}

/// Balance and ledger sum are equal, and the balance is `expected`.
async fn assert_money(server: &Server, phone: &str, expected: i64, step: &str) {
    let (balance, sum) = server.money(phone).await;
    assert_eq!(balance, sum, "{step}: balance differs from the ledger sum");
    assert_eq!(balance, expected, "{step}: balance");
}

fn with_field(fields: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(k, v)| {
            if k == name {
                (k.clone(), value.to_owned())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect()
}

#[tokio::test]
async fn a_new_phone_recharges_with_alipay_and_pays_for_a_chat_with_the_ledger_exact() {
    let mock = mock_alipay::start(Mode::Normal).await;
    let server = server_with_alipay(&mock, &[]).await;
    let phone = "13700001111";

    // Code request, login (registers), a key.
    let (http, csrf) = login(&server, phone).await;
    assert_money(&server, phone, 0, "after registration").await;
    let (status, key) = post(
        &http,
        &server,
        "/api/keys",
        json!({"name": "充值测试"}),
        Some(&csrf),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let key = key["key"].as_str().unwrap().to_owned();

    // A chat before recharge is refused for balance.
    let chat = json!({"model": "qwen3-max", "catelogid": "t2t", "prompt": "你好", "stream": false});
    let (status, body) = server
        .post_json("/llmage/v1/chat/completions", Some(&key), &chat)
        .await;
    assert_eq!(status, 429, "{body}");
    assert_money(&server, phone, 0, "after the refused chat").await;

    // Recharge 10 yuan: an order with a signed page-pay URL and a QR code.
    let (status, order) = post(
        &http,
        &server,
        "/api/recharge/alipay",
        json!({"amount": "10.00"}),
        Some(&csrf),
    )
    .await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["status"], "PENDING");
    assert_eq!(order["amount"], "10.00");
    assert_eq!(order["credits"], 1000, "default credits_per_yuan is 100");
    let id = order["order_id"].as_str().unwrap().to_owned();
    let pay_url = order["pay_url"].as_str().unwrap().to_owned();
    assert!(pay_url.starts_with(&mock.gateway_url), "{pay_url}");
    assert_eq!(order["qr_code"], format!("https://qr.alipay.com/mock{id}"));
    let qr = http
        .get(server.url(&format!("/api/recharge/orders/{id}/qr.svg")))
        .send()
        .await
        .unwrap();
    assert_eq!(qr.status(), 200);
    assert_eq!(qr.headers()["content-type"], "image/svg+xml");
    assert!(qr.text().await.unwrap().contains("<svg"));

    // The buyer's browser opens the cashier (the mock checks our RSA2 signature) and pays; the
    // mock then posts the signed notification to our notify URL and redirects to return_url.
    let page = reqwest::get(&pay_url).await.unwrap().text().await.unwrap();
    assert!(page.contains("确认付款"), "{page}");
    assert_eq!(
        mock.bad_signatures(),
        0,
        "the mock refused one of our signatures"
    );
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let paid = browser
        .post(pay_url.split("/gateway.do").next().unwrap().to_owned() + "/mock/pay")
        .form(&[
            ("out_trade_no", id.as_str()),
            ("return_url", "http://x/#/recharge"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status().as_u16(), 303);
    assert_money(&server, phone, 1000, "after the notification").await;

    // The same notification again (Alipay retries): answered success, nothing changes.
    let genuine = mock.notification(&id);
    assert_eq!(
        MockAlipay::deliver(&notify_url(&server), &genuine).await,
        "success"
    );
    assert_money(&server, phone, 1000, "after the replay").await;

    // A forged one: the amount raised after signing.
    let forged = with_field(&genuine, "total_amount", "10000.00");
    assert_eq!(
        MockAlipay::deliver(&notify_url(&server), &forged).await,
        "failure"
    );
    assert_money(&server, phone, 1000, "after the forged notification").await;

    let (status, seen) = get(&http, &server, &format!("/api/recharge/orders/{id}")).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["status"], "SUCCEEDED");
    assert!(seen["trade_no"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(
        seen.get("pay_url").is_none(),
        "a paid order offers no pay link"
    );

    // A paid chat call.
    let (status, body) = server
        .post_json("/llmage/v1/chat/completions", Some(&key), &chat)
        .await;
    assert_eq!(status, 200, "{body}");
    // usage.credits is a decimal of up to 4 places: exact in units.
    let cost = (body["usage"]["credits"].as_f64().unwrap() * 10_000.0).round() as i64;
    assert!(cost > 0);
    let (balance, sum) = server.money_units(phone).await;
    assert_eq!((balance, sum), (1000 * 10_000 - cost, 1000 * 10_000 - cost));
    let (_, shown) = server.get_json("/llmage/v1/balance", Some(&key)).await;
    assert_eq!(
        shown["balance"],
        llmage::billing::credits_json(1000 * 10_000 - cost)
    );

    // Finance views.
    let (status, ledger) = get(&http, &server, "/api/finance/ledger").await;
    assert_eq!(status, 200);
    let kinds: Vec<&str> = ledger["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"recharge"), "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| **k == "recharge").count(),
        1,
        "credited exactly once"
    );
    let (status, orders) = get(&http, &server, "/api/finance/orders").await;
    assert_eq!(status, 200);
    assert_eq!(orders["data"].as_array().unwrap().len(), 1);
    assert_eq!(orders["data"][0]["order_id"], id);
    let csv = http
        .get(server.url("/api/finance/orders?format=csv"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.contains(&id) && csv.contains("10.00") && csv.contains("SUCCEEDED"),
        "{csv}"
    );
    let (status, usage) = get(&http, &server, "/api/finance/usage").await;
    assert_eq!(status, 200);
    assert_eq!(usage["data"][0]["model"], "qwen3-max");
    assert_eq!(
        usage["data"][0]["credits"],
        llmage::billing::credits_json(cost)
    );
    let (status, me) = get(&http, &server, "/api/me").await;
    assert_eq!(status, 200);
    assert_eq!(
        me["balance"],
        llmage::billing::credits_json(1000 * 10_000 - cost)
    );

    // Another user cannot see the order; the log holds no key material.
    let (other, _) = login(&server, "13700002222").await;
    let (status, _) = get(&other, &server, &format!("/api/recharge/orders/{id}")).await;
    assert_eq!(status, 404);
    let log = server.log();
    let private_body: String = mock
        .app_private_key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!log.contains(&private_body[..40]));
    assert!(!log.contains(&genuine.iter().find(|(k, _)| k == "sign").unwrap().1[..40]));
}

#[tokio::test]
async fn forged_replayed_and_mismatched_notifications_change_nothing() {
    let mock = mock_alipay::start(Mode::Normal).await;
    let server = server_with_alipay(&mock, &[]).await;
    let phone = "13700003333";
    let (http, csrf) = login(&server, phone).await;
    let (_, order) = post(
        &http,
        &server,
        "/api/recharge/alipay",
        json!({"amount": "25.50"}),
        Some(&csrf),
    )
    .await;
    let id = order["order_id"].as_str().unwrap().to_owned();
    assert_eq!(order["credits"], 2550);
    let paid = mock.pay_silently(&id);
    let url = notify_url(&server);

    // Signed by a key that is not Alipay's.
    let stranger = mock_alipay::new_key();
    let mut unsigned: Vec<(String, String)> = paid
        .iter()
        .filter(|(k, _)| k != "sign" && k != "sign_type")
        .cloned()
        .collect();
    let sign = mock_alipay::sign_with(&stranger, &mock_alipay::content(&unsigned));
    unsigned.push(("sign_type".into(), "RSA2".into()));
    let wrong_key = [unsigned.clone(), vec![("sign".into(), sign)]].concat();
    // Genuinely signed but for another app, or an amount that is not the order's, or an order
    // we never made (each re-signed by "Alipay" itself, so only our checks stop them).
    let resign = |fields: Vec<(String, String)>| {
        let mut body: Vec<(String, String)> = fields
            .into_iter()
            .filter(|(k, _)| k != "sign" && k != "sign_type")
            .collect();
        let sign = mock_alipay::sign_with(&mock.alipay_key, &mock_alipay::content(&body));
        body.push(("sign_type".into(), "RSA2".into()));
        body.push(("sign".into(), sign));
        body
    };
    let other_app = resign(with_field(&paid, "app_id", "2021999999999999"));
    let other_seller = resign(with_field(&paid, "seller_id", "2088999999999999"));
    let other_amount = resign(with_field(&paid, "total_amount", "2550.00"));
    let unknown_order = resign(with_field(
        &paid,
        "out_trade_no",
        "R0000000000000nosuchorder",
    ));
    let no_sign: Vec<(String, String)> =
        paid.iter().filter(|(k, _)| k != "sign").cloned().collect();
    let duplicated = [
        paid.clone(),
        vec![("total_amount".into(), "9999.00".into())],
    ]
    .concat();
    for (what, fields) in [
        ("wrong key", &wrong_key),
        ("other app", &other_app),
        ("other seller", &other_seller),
        ("other amount", &other_amount),
        ("unknown order", &unknown_order),
        ("no sign", &no_sign),
        ("duplicated field", &duplicated),
    ] {
        assert_eq!(MockAlipay::deliver(&url, fields).await, "failure", "{what}");
        assert_money(&server, phone, 0, what).await;
    }
    let garbage = server
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"trade_status\":\"TRADE_SUCCESS\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.text().await.unwrap(), "failure");

    // The genuine one, delivered five times concurrently: credited once.
    let replies =
        futures_util::future::join_all((0..5).map(|_| MockAlipay::deliver(&url, &paid))).await;
    assert!(replies.iter().all(|r| r == "success"), "{replies:?}");
    assert_money(&server, phone, 2550, "after five deliveries").await;
    let (_, ledger) = get(&http, &server, "/api/finance/ledger").await;
    assert_eq!(ledger["data"].as_array().unwrap().len(), 1, "{ledger}");
    // A later TRADE_CLOSED notification (a refund) does not un-pay a credited order.
    mock.set_status(&id, "TRADE_CLOSED");
    assert_eq!(
        MockAlipay::deliver(&url, &mock.notification(&id)).await,
        "success"
    );
    let (_, seen) = get(&http, &server, &format!("/api/recharge/orders/{id}")).await;
    assert_eq!(seen["status"], "SUCCEEDED");
    assert_money(&server, phone, 2550, "after TRADE_CLOSED").await;
}

#[tokio::test]
async fn reconciliation_settles_orders_whose_notification_never_came() {
    let mock = mock_alipay::start(Mode::Normal).await;
    let server = server_with_alipay(&mock, &[("LLMAGE_ALIPAY__RECONCILE_SECS", "1")]).await;
    let phone = "13700004444";
    let (http, csrf) = login(&server, phone).await;
    let mut ids = Vec::new();
    for amount in ["1.00", "2.00", "3.00"] {
        let (status, order) = post(
            &http,
            &server,
            "/api/recharge/alipay",
            json!({"amount": amount}),
            Some(&csrf),
        )
        .await;
        assert_eq!(status, 201, "{order}");
        ids.push(order["order_id"].as_str().unwrap().to_owned());
    }
    // Paid (notification lost), closed unpaid, still waiting.
    mock.pay_silently(&ids[0]);
    mock.set_status(&ids[1], "TRADE_CLOSED");
    mock.set_status(&ids[2], "WAIT_BUYER_PAY");
    let db = server.db().await;
    eventually(Duration::from_secs(20), "reconciliation", || {
        let db = db.clone();
        let ids = ids.clone();
        async move {
            let orders = llmage::payments::orders::Orders::new(db);
            let a = orders.get(&ids[0]).await.unwrap().unwrap().status;
            let b = orders.get(&ids[1]).await.unwrap().unwrap().status;
            a == "SUCCEEDED" && b == "FAILED"
        }
    })
    .await;
    assert_money(&server, phone, 100, "after reconciliation").await;
    let (_, waiting) = get(&http, &server, &format!("/api/recharge/orders/{}", ids[2])).await;
    assert_eq!(waiting["status"], "PENDING");
    assert!(waiting["pay_url"].is_string());
    // Paying it now: looking at the order settles it without waiting for the job.
    mock.pay_silently(&ids[2]);
    // The scenario, not a wait for state: an open order is asked about at Alipay at most every
    // 3 s when someone looks at it (LOOK_INTERVAL_MS), and the look above just did.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (_, now) = get(&http, &server, &format!("/api/recharge/orders/{}", ids[2])).await;
    assert_eq!(now["status"], "SUCCEEDED", "{now}");
    assert_money(&server, phone, 400, "after the last order").await;
    // The late notification of an order settled by reconciliation is a harmless replay.
    assert_eq!(
        MockAlipay::deliver(&notify_url(&server), &mock.notification(&ids[0])).await,
        "success"
    );
    assert_money(&server, phone, 400, "after a late notification").await;
    assert!(
        mock.calls
            .lock()
            .unwrap()
            .iter()
            .any(|m| m == "alipay.trade.query")
    );
    assert_eq!(mock.bad_signatures(), 0);
    db.close().await;
}

#[tokio::test]
async fn orders_stand_without_a_qr_code_and_amounts_are_checked() {
    let mock = mock_alipay::start(Mode::PrecreateFails).await;
    let server = server_with_alipay(
        &mock,
        &[
            ("LLMAGE_BILLING__CREDITS_PER_YUAN", "50"),
            ("LLMAGE_BILLING__RECHARGE_MAX_YUAN", "100"),
        ],
    )
    .await;
    let (http, csrf) = login(&server, "13700005555").await;
    let (status, order) = post(
        &http,
        &server,
        "/api/recharge/alipay",
        json!({"amount": 12.5}),
        Some(&csrf),
    )
    .await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["credits"], 625);
    assert!(order["pay_url"].is_string());
    assert!(order["qr_code"].is_null(), "{order}");
    for bad in [
        json!("0"),
        json!("-1"),
        json!("1.234"),
        json!("abc"),
        json!("100.01"),
        json!(true),
    ] {
        let (status, body) = post(
            &http,
            &server,
            "/api/recharge/alipay",
            json!({"amount": bad}),
            Some(&csrf),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].as_str().unwrap().contains("amount"), "{body}");
    }
    let (status, _) = post(
        &http,
        &server,
        "/api/recharge/alipay",
        json!({}),
        Some(&csrf),
    )
    .await;
    assert_eq!(status, 400);
    // Without the CSRF token nothing is created.
    let (status, _) = post(
        &http,
        &server,
        "/api/recharge/alipay",
        json!({"amount": "5"}),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (_, orders) = get(&http, &server, "/api/finance/orders").await;
    assert_eq!(orders["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn recharge_is_off_without_alipay_and_admins_see_all_orders() {
    let server = Server::start(Opts::demo()).await;
    let (http, csrf) = login(&server, "13700006666").await;
    let (status, body) = post(
        &http,
        &server,
        "/api/recharge/alipay",
        json!({"amount": "10"}),
        Some(&csrf),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("支付宝"));
    assert_eq!(
        MockAlipay::deliver(&notify_url(&server), &[("a".into(), "b".into())]).await,
        "failure"
    );
    let (status, _) = get(&http, &server, "/api/admin/orders").await;
    assert_eq!(status, 403);
    server.admin_ok(&[
        "user",
        "set-role",
        "--phone",
        "13700006666",
        "--role",
        "admin",
    ]);
    let (status, body) = get(&http, &server, "/api/admin/orders").await;
    assert_eq!(status, 200, "{body}");
}
