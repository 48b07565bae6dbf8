//! Secrets never leave: after a session that uses every kind of secret — API keys (right, wrong,
//! revoked), vendor keys (working and refused by the vendor), an SMS login, the session cookie and
//! CSRF token, Alipay's keys and signatures — none of them appears in the server's log, in any
//! error body, in `/metrics`, in the OpenAPI document or in the console's pages. (The one allowed
//! exception is the development `log` SMS sender's own `SMS <phone> <code>` line, its purpose.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use common::console::code_from_log;
use common::mock_alipay::{self, MockAlipay, server_with_alipay};
use common::mock_openai::{self, MOCK_KEY};
use serde_json::{Value, json};

const WRONG_VENDOR_KEY: &str = "sk-vendor-key-that-the-vendor-refuses-7f3a9c";

#[tokio::test]
async fn no_secret_reaches_logs_errors_metrics_or_pages() {
    let upstream = mock_openai::start(mock_openai::Mode::Normal).await;
    let alipay = mock_alipay::start(mock_alipay::Mode::Normal).await;
    let server = server_with_alipay(&alipay, &[]).await;
    for (name, key, model) in [
        ("good", MOCK_KEY, "metered"),
        ("refused", WRONG_VENDOR_KEY, "metered-refused"),
    ] {
        server
            .add_channel("openai", &upstream.base_url, key, model, &["--name", name])
            .await;
    }
    let mut bodies: Vec<String> = Vec::new();
    let http = reqwest::Client::new();

    // SMS login by hand, to see the cookie and the CSRF token.
    let phone = "13900000201";
    let r = http
        .post(server.url("/api/auth/sms-code"))
        .json(&json!({"phone": phone}))
        .send()
        .await
        .unwrap();
    bodies.push(r.text().await.unwrap());
    let code = code_from_log(&server, phone);
    // Wrong codes first (their answers must not reveal the right one).
    for wrong in ["000000", "999999"] {
        let r = http
            .post(server.url("/api/auth/login"))
            .json(&json!({"phone": phone, "code": wrong}))
            .send()
            .await
            .unwrap();
        bodies.push(r.text().await.unwrap());
    }
    let r = http
        .post(server.url("/api/auth/login"))
        .json(&json!({"phone": phone, "code": code}))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let session = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let login: Value = r.json().await.unwrap();
    let csrf = login["csrf_token"].as_str().unwrap().to_owned();
    let console = |req: reqwest::RequestBuilder| {
        req.header("cookie", format!("llmage_session={session}"))
            .header("x-csrf-token", &csrf)
    };

    // A key: created, used, mistyped, revoked.
    let created: Value = console(http.post(server.url("/api/keys")))
        .json(&json!({"name": "k"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let api_key = created["key"].as_str().unwrap().to_owned();
    bodies.push(
        console(http.get(server.url("/api/keys")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    server.admin_ok(&[
        "credits", "add", "--phone", phone, "--amount", "100000", "--reason", "t",
    ]);
    for (key, model) in [
        (api_key.clone(), "metered"),
        (api_key.clone(), "metered-refused"),
        (format!("{api_key}x"), "metered"),
        (api_key[..api_key.len() - 1].to_owned(), "metered"),
    ] {
        let r = http
            .post(server.url("/llmage/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({"model": model, "prompt": "hi"}))
            .send()
            .await
            .unwrap();
        bodies.push(r.text().await.unwrap());
    }
    let id = created["id"].as_i64().unwrap();
    bodies.push(
        console(http.delete(server.url(&format!("/api/keys/{id}"))))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let r = http
        .get(server.url("/llmage/v1/balance"))
        .bearer_auth(&api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    bodies.push(r.text().await.unwrap());

    // A recharge with its notification, once genuine and once forged.
    let order: Value = console(http.post(server.url("/api/recharge/alipay")))
        .json(&json!({"amount": "10.00"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let notification = alipay.pay_silently(order["order_id"].as_str().unwrap());
    let notify = server.url("/api/payments/alipay/notify");
    assert_eq!(MockAlipay::deliver(&notify, &notification).await, "success");
    let forged: Vec<(String, String)> = notification
        .iter()
        .map(|(k, v)| {
            if k == "total_amount" {
                (k.clone(), "999.00".into())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    assert_eq!(MockAlipay::deliver(&notify, &forged).await, "failure");
    let sign = notification
        .iter()
        .find(|(k, _)| k == "sign")
        .unwrap()
        .1
        .clone();

    // Everything a person or a scraper can read.
    let metrics = http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let openapi = http
        .get(server.url("/llmage/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut pages = http
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for asset in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/web/assets")).unwrap() {
        let name = asset.unwrap().file_name().to_string_lossy().into_owned();
        pages.push_str(
            &http
                .get(server.url(&format!("/assets/{name}")))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    let log = server.log();
    let sms_line = format!("SMS {phone} {code}");
    let log_without_sms_line = log.replace(&sms_line, "");
    assert!(log.contains(&sms_line), "the log sender wrote its line");

    let private_key_body: String = alipay
        .app_private_key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("");
    let secrets: Vec<(&str, String)> = vec![
        ("API key", api_key.clone()),
        ("API key without its prefix", api_key[3..].to_owned()),
        ("vendor key", MOCK_KEY.to_owned()),
        ("refused vendor key", WRONG_VENDOR_KEY.to_owned()),
        ("SMS code", code.clone()),
        ("session token", session.clone()),
        ("CSRF token", csrf.clone()),
        ("Alipay app private key", private_key_body[..48].to_owned()),
        ("Alipay notification signature", sign[..48].to_owned()),
    ];
    let places: Vec<(&str, &str)> = vec![
        ("server log", log_without_sms_line.as_str()),
        ("metrics", metrics.as_str()),
        ("OpenAPI document", openapi.as_str()),
        ("console pages", pages.as_str()),
    ];
    let error_bodies = bodies.join("\n");
    for (what, secret) in &secrets {
        // Six digits also occur inside numbers (latencies, ids): look for the code as a token.
        let found = |text: &str| {
            if *what == "SMS code" {
                contains_token(text, secret)
            } else {
                text.contains(secret.as_str())
            }
        };
        for (place, text) in &places {
            assert!(!found(text), "{what} found in the {place}");
        }
        assert!(
            !found(&error_bodies),
            "{what} found in an answer: {error_bodies}"
        );
    }
    assert!(
        metrics.contains("llmage_http_requests_total"),
        "metrics were read"
    );
    assert!(
        log.contains("alipay notify refused"),
        "the forged notification was logged"
    );
}

/// `needle` standing alone: not inside a longer number (digits, a decimal point or hex around it).
fn contains_token(text: &str, needle: &str) -> bool {
    text.match_indices(needle).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + needle.len()..].chars().next();
        let joins = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.');
        !joins(before) && !joins(after)
    })
}
