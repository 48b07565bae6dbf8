//! Phone login against the real server: a code from the `log` SMS sender, login registering a new
//! user, the session cookie and its CSRF token, logout; brute force locking a code, resend limits,
//! expired codes and sessions; `GET /llmage/v1/balance` for API keys.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::time::Duration;

use common::console::{client, code_from_log, login, post};
use common::{DEMO_KEY, Opts, Server, demo_phone};
use serde_json::{Value, json};

fn opts(env: &[(&str, &str)]) -> Opts {
    let mut opts = Opts::demo();
    opts.env = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    opts
}

#[tokio::test]
async fn a_new_phone_logs_in_with_its_code_and_the_session_is_guarded() {
    let server = Server::start(opts(&[])).await;
    let http = client();
    let phone = "13912345678";
    let (status, body) = post(
        &http,
        &server,
        "/api/auth/sms-code",
        json!({"phone": "139-1234-5678"}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let code = code_from_log(&server, phone);
    assert!(code.chars().all(|c| c.is_ascii_digit()));
    // Too soon for another code.
    let resp = http
        .post(server.url("/api/auth/sms-code"))
        .json(&json!({"phone": phone}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    // A bad phone.
    let (status, body) = post(
        &http,
        &server,
        "/api/auth/sms-code",
        json!({"phone": "12345"}),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // Not logged in yet.
    assert_eq!(
        http.get(server.url("/api/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let resp = http
        .post(server.url("/api/auth/login"))
        .json(&json!({"phone": phone, "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["user"]["phone"], phone);
    assert_eq!(body["user"]["balance"], 0);
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    // The code was single use.
    let (status, _) = post(
        &client(),
        &server,
        "/api/auth/login",
        json!({"phone": phone, "code": code}),
        None,
    )
    .await;
    assert_eq!(status, 400);

    let me: Value = http
        .get(server.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"]["phone"], phone);
    // Logout without the CSRF token is refused and changes nothing.
    let (status, body) = post(&http, &server, "/api/auth/logout", json!({}), None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        http.get(server.url("/api/me"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let (status, _) = post(&http, &server, "/api/auth/logout", json!({}), Some(&csrf)).await;
    assert_eq!(status, 200);
    assert_eq!(
        http.get(server.url("/api/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // No code or session token reaches the log beyond the SMS line itself.
    assert_eq!(server.log().matches(&code).count(), 1);
}

#[tokio::test]
async fn brute_force_locks_the_code_and_expiry_is_enforced() {
    let server = Server::start(opts(&[
        ("LLMAGE_AUTH__RESEND_SECS", "0"),
        ("LLMAGE_AUTH__CODE_TTL_SECS", "1"),
        ("LLMAGE_AUTH__SESSION_TTL_SECS", "1"),
    ]))
    .await;
    let http = client();
    let phone = "13711112222";
    post(
        &http,
        &server,
        "/api/auth/sms-code",
        json!({"phone": phone}),
        None,
    )
    .await;
    let code = code_from_log(&server, phone);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let (status, body) = post(
            &http,
            &server,
            "/api/auth/login",
            json!({"phone": phone, "code": wrong}),
            None,
        )
        .await;
        assert_eq!(status, 400, "{body}");
    }
    let (status, body) = post(
        &http,
        &server,
        "/api/auth/login",
        json!({"phone": phone, "code": code}),
        None,
    )
    .await;
    assert_eq!(status, 400, "locked even with the right code: {body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("too many wrong tries"),
        "{body}"
    );

    // Expired code (1 s).
    post(
        &http,
        &server,
        "/api/auth/sms-code",
        json!({"phone": phone}),
        None,
    )
    .await;
    let code = code_from_log(&server, phone);
    // The scenario, not a wait for state: the code's 1 s lifetime must pass.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, body) = post(
        &http,
        &server,
        "/api/auth/login",
        json!({"phone": phone, "code": code}),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("expired"),
        "{body}"
    );

    // A good login, then the session expires (1 s).
    post(
        &http,
        &server,
        "/api/auth/sms-code",
        json!({"phone": phone}),
        None,
    )
    .await;
    let code = code_from_log(&server, phone);
    let (status, _) = post(
        &http,
        &server,
        "/api/auth/login",
        json!({"phone": phone, "code": code}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        http.get(server.url("/api/me"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // The scenario, not a wait for state: the session's 1 s lifetime must pass.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        http.get(server.url("/api/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn balance_for_api_keys() {
    let server = Server::start(opts(&[])).await;
    let (status, body) = server.get_json("/llmage/v1/balance", Some(DEMO_KEY)).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["balance"].as_i64().unwrap(),
        server.money(demo_phone()).await.0
    );
    let (status, body) = server.get_json("/llmage/v1/balance", None).await;
    assert_eq!((status, body), (401, json!({"error": "Invalid API Key"})));
}

/// Log `phone` in; (cookie client, csrf token).
#[tokio::test]
async fn keys_are_created_shown_once_listed_masked_limited_and_revoked() {
    let server = Server::start(opts(&[])).await;
    let phone = "13622223333";
    let (http, csrf) = login(&server, phone).await;
    // Without the CSRF token nothing is created.
    let (status, _) = post(&http, &server, "/api/keys", json!({"name": "x"}), None).await;
    assert_eq!(status, 403);
    let (status, full) = post(
        &http,
        &server,
        "/api/keys",
        json!({"name": "脚本"}),
        Some(&csrf),
    )
    .await;
    assert_eq!(status, 201, "{full}");
    let key = full["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk-"));
    let (status, limited) = post(
        &http,
        &server,
        "/api/keys",
        json!({"name": "only-images", "models": ["wan2.2-t2i-flash"], "allowed_ips": ["127.0.0.1/32"]}),
        Some(&csrf),
    )
    .await;
    assert_eq!(status, 201, "{limited}");
    let (status, elsewhere) = post(
        &http,
        &server,
        "/api/keys",
        json!({"name": "office", "allowed_ips": ["10.1.2.0/24"]}),
        Some(&csrf),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = post(
        &http,
        &server,
        "/api/keys",
        json!({"name": "bad", "models": ["nope"]}),
        Some(&csrf),
    )
    .await;
    assert_eq!(status, 404);

    // Listed masked: the full key is shown only at creation.
    let list: Value = http
        .get(server.url("/api/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 3);
    assert!(!list.to_string().contains(&key));

    // The full key works (new users start at 0 credits: the models list answers).
    let (status, _) = server.get_json("/llmage/v1/models", Some(&key)).await;
    assert_eq!(status, 200);
    // The model allow-list.
    let limited_key = limited["key"].as_str().unwrap();
    let (status, body) = server
        .post_json(
            "/llmage/v1/chat/completions",
            Some(limited_key),
            &json!({"model": "qwen3-max", "prompt": "hi"}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("qwen3-max"));
    // The address allow-list: we call from 127.0.0.1, not 10.1.2.0/24.
    let (status, _) = server
        .get_json(
            "/llmage/v1/models",
            Some(elsewhere["key"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, 403);

    // Revoked: refused within a second; another user cannot revoke it.
    let id = full["id"].as_i64().unwrap();
    let (other, other_csrf) = login(&server, "13622224444").await;
    let resp = other
        .delete(server.url(&format!("/api/keys/{id}")))
        .header("X-CSRF-Token", &other_csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = http
        .delete(server.url(&format!("/api/keys/{id}")))
        .header("X-CSRF-Token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let revoked = std::time::Instant::now();
    loop {
        let (status, body) = server.get_json("/llmage/v1/models", Some(&key)).await;
        if status == 401 {
            assert_eq!(body, json!({"error": "Invalid API Key"}));
            break;
        }
        assert!(revoked.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!server.log().contains(&key));
}

#[tokio::test]
async fn finance_views_list_the_ledger_and_usage_as_json_and_csv() {
    let server = Server::start(opts(&[])).await;
    let phone = "13633334444";
    let (http, csrf) = login(&server, phone).await;
    server.admin_ok(&[
        "credits",
        "add",
        "--phone",
        phone,
        "--amount",
        "5000",
        "--reason",
        "测试, \"充值\"",
    ]);
    let (_, created) = post(
        &http,
        &server,
        "/api/keys",
        json!({"name": "k"}),
        Some(&csrf),
    )
    .await;
    let key = created["key"].as_str().unwrap();
    for _ in 0..2 {
        let (status, _) = server
            .post_json(
                "/llmage/v1/chat/completions",
                Some(key),
                &json!({"model": "qwen3-max", "prompt": "你好"}),
            )
            .await;
        assert_eq!(status, 200);
    }
    let ledger: Value = http
        .get(server.url("/api/finance/ledger"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = ledger["data"].as_array().unwrap();
    // The grant, then one line per call (its hold and settlement summed), newest first, each
    // with what the user reads for it; amounts sum to the balance.
    assert_eq!(entries.len(), 3, "{ledger}");
    let units = |v: &Value| (v.as_f64().unwrap() * 10_000.0).round() as i64;
    let sum: i64 = entries.iter().map(|e| units(&e["amount"])).sum();
    let (balance, ledger_sum) = server.money_units(phone).await;
    assert_eq!((sum, balance), (ledger_sum, ledger_sum));
    assert_eq!(units(&entries[0]["balance_after"]), balance);
    assert_eq!(units(&ledger["balance"]), balance);
    assert_eq!(entries[0]["kind"], "chat");
    assert_eq!(entries[0]["description"], "对话 qwen3-max");
    assert_eq!(entries[2]["description"], "管理员调整: 测试, \"充值\"");

    let csv = http
        .get(server.url("/api/finance/ledger?format=csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let text = csv.text().await.unwrap();
    let text = text.trim_start_matches('\u{feff}');
    assert!(text.starts_with("id,created_at,kind,amount,balance_after,status,description"));
    assert_eq!(text.lines().count(), 4);
    assert!(
        text.contains("\"管理员调整: 测试, \"\"充值\"\"\""),
        "quoted: {text}"
    );

    let usage: Value = http
        .get(server.url("/api/finance/usage"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(usage["data"][0]["model"], "qwen3-max");
    assert_eq!(usage["data"][0]["calls"], 2);
    assert_eq!(units(&usage["data"][0]["credits"]), 5000 * 10_000 - balance);
    let usage_csv = http
        .get(server.url("/api/finance/usage?format=csv"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(usage_csv.contains(",qwen3-max,chat,2,"), "{usage_csv}");
    // Only with a session.
    assert_eq!(
        reqwest::get(server.url("/api/finance/ledger"))
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn redemption_codes_credit_once() {
    let server = Server::start(opts(&[])).await;
    let out = server.admin_ok(&[
        "redeem",
        "create",
        "--credits",
        "300",
        "--count",
        "2",
        "--note",
        "活动",
    ]);
    let codes: Vec<&str> = out.lines().collect();
    assert_eq!(codes.len(), 2);
    let (alice, alice_csrf) = login(&server, "13644445555").await;
    let (bob, bob_csrf) = login(&server, "13644446666").await;
    // Both try the same code at once: exactly one gets it.
    let (a, b) = tokio::join!(
        post(
            &alice,
            &server,
            "/api/redeem",
            json!({"code": codes[0]}),
            Some(&alice_csrf)
        ),
        post(
            &bob,
            &server,
            "/api/redeem",
            json!({"code": codes[0].to_lowercase()}),
            Some(&bob_csrf)
        ),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400], "{a:?} {b:?}");
    // Again by anyone: used.
    let (status, body) = post(
        &alice,
        &server,
        "/api/redeem",
        json!({"code": codes[0]}),
        Some(&alice_csrf),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("already redeemed"));
    let (status, _) = post(
        &alice,
        &server,
        "/api/redeem",
        json!({"code": "NOPE-NOPE-NOPE-NOPE"}),
        Some(&alice_csrf),
    )
    .await;
    assert_eq!(status, 400);
    let (status, body) = post(
        &bob,
        &server,
        "/api/redeem",
        json!({"code": codes[1]}),
        Some(&bob_csrf),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let total = server.money("13644445555").await.0 + server.money("13644446666").await.0;
    assert_eq!(total, 600, "two codes, 300 each, credited once each");
    for phone in ["13644445555", "13644446666"] {
        let (balance, sum) = server.money(phone).await;
        assert_eq!(balance, sum);
    }
}

#[tokio::test]
async fn admins_list_users_adjust_credits_and_disable_users() {
    let server = Server::start(opts(&[])).await;
    let (user_http, user_csrf) = login(&server, "13655556666").await;
    let (_, created) = post(
        &user_http,
        &server,
        "/api/keys",
        json!({"name": "k"}),
        Some(&user_csrf),
    )
    .await;
    let user_key = created["key"].as_str().unwrap().to_owned();
    // Not an admin.
    assert_eq!(
        user_http
            .get(server.url("/api/admin/users"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );

    let second_admin = "13655558888";
    server.admin_ok(&["user", "create", "--phone", second_admin]);
    server.admin_ok(&[
        "user",
        "set-role",
        "--phone",
        second_admin,
        "--role",
        "admin",
    ]);
    let (admin, admin_csrf) = login(&server, second_admin).await;

    let users: Value = admin
        .get(server.url("/api/admin/users"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let target = users["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["phone"] == "13655556666")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, body) = post(
        &admin,
        &server,
        &format!("/api/admin/users/{target}/credits"),
        json!({"amount": 700, "reason": "补偿", "idempotency_key": "ticket-9"}),
        Some(&admin_csrf),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, again) = post(
        &admin,
        &server,
        &format!("/api/admin/users/{target}/credits"),
        json!({"amount": 700, "reason": "补偿", "idempotency_key": "ticket-9"}),
        Some(&admin_csrf),
    )
    .await;
    assert_eq!(again["already_applied"], true);
    assert_eq!(server.money("13655556666").await, (700, 700));
    // Without CSRF nothing happens.
    let (status, _) = post(
        &admin,
        &server,
        &format!("/api/admin/users/{target}/disable"),
        json!({}),
        None,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        server
            .get_json("/llmage/v1/models", Some(&user_key))
            .await
            .0,
        200
    );
    let (status, _) = post(
        &admin,
        &server,
        &format!("/api/admin/users/{target}/disable"),
        json!({}),
        Some(&admin_csrf),
    )
    .await;
    assert_eq!(status, 200);
    let disabled_at = std::time::Instant::now();
    loop {
        let (status, _) = server.get_json("/llmage/v1/models", Some(&user_key)).await;
        if status == 401 {
            break;
        }
        assert!(
            disabled_at.elapsed() < Duration::from_secs(1),
            "key still works"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        user_http
            .get(server.url("/api/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

/// RFC 3986 encoding, written here independently of the server's.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn aliyun_sms_requests_are_signed_and_carry_the_code() {
    use base64::Engine as _;
    use hmac::Mac;
    use std::sync::{Arc, Mutex};
    const SECRET: &str = "test-access-key-secret";
    let seen: Arc<Mutex<Vec<std::collections::HashMap<String, String>>>> = Arc::default();
    let refuse = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (sink, refusing) = (seen.clone(), refuse.clone());
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move |axum::extract::RawQuery(raw): axum::extract::RawQuery| {
            let (sink, refusing) = (sink.clone(), refusing.clone());
            async move {
                let raw = raw.unwrap_or_default();
                let pairs: Vec<(String, String)> = raw
                    .split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| {
                        let d = |s: &str| {
                            let bytes: Vec<u8> = s.bytes().collect();
                            let mut out = Vec::new();
                            let mut i = 0;
                            while i < bytes.len() {
                                if bytes[i] == b'%' {
                                    out.push(u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap(), 16).unwrap());
                                    i += 3;
                                } else {
                                    out.push(bytes[i]);
                                    i += 1;
                                }
                            }
                            String::from_utf8(out).unwrap()
                        };
                        (d(k), d(v))
                    })
                    .collect();
                let params: std::collections::HashMap<String, String> = pairs.iter().cloned().collect();
                // Verify the V1 signature.
                let mut signed: Vec<&(String, String)> = pairs.iter().filter(|(k, _)| k != "Signature").collect();
                signed.sort();
                let canonical = signed.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&");
                let to_sign = format!("GET&%2F&{}", enc(&canonical));
                let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(format!("{SECRET}&").as_bytes()).unwrap();
                mac.update(to_sign.as_bytes());
                let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
                if params.get("Signature") != Some(&expected) {
                    return (axum::http::StatusCode::BAD_REQUEST, axum::Json(json!({"Code": "SignatureDoesNotMatch"})));
                }
                sink.lock().unwrap().push(params);
                if refusing.load(std::sync::atomic::Ordering::SeqCst) {
                    return (axum::http::StatusCode::OK, axum::Json(json!({"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控"})));
                }
                (axum::http::StatusCode::OK, axum::Json(json!({"Code": "OK", "Message": "OK", "BizId": "1", "RequestId": "r"})))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let server = Server::start(opts(&[
        ("LLMAGE_AUTH__SMS_PROVIDER", "aliyun"),
        ("LLMAGE_AUTH__ALIYUN_ENDPOINT", &endpoint),
        ("LLMAGE_AUTH__ALIYUN_ACCESS_KEY_ID", "LTAI-test-id"),
        ("LLMAGE_AUTH__ALIYUN_ACCESS_KEY_SECRET", SECRET),
        ("LLMAGE_AUTH__ALIYUN_SIGN_NAME", "元境平台"),
        ("LLMAGE_AUTH__ALIYUN_TEMPLATE_CODE", "SMS_123456"),
        ("LLMAGE_AUTH__RESEND_SECS", "0"),
    ]))
    .await;
    let http = client();
    let phone = "13677778888";
    let (status, body) = post(
        &http,
        &server,
        "/api/auth/sms-code",
        json!({"phone": phone}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sent = seen.lock().unwrap()[0].clone();
    assert_eq!(sent["Action"], "SendSms");
    assert_eq!(sent["PhoneNumbers"], phone);
    assert_eq!(sent["SignName"], "元境平台");
    assert_eq!(sent["TemplateCode"], "SMS_123456");
    assert_eq!(sent["AccessKeyId"], "LTAI-test-id");
    let param: Value = serde_json::from_str(&sent["TemplateParam"]).unwrap();
    let code = param["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 6);
    let (status, _) = post(
        &http,
        &server,
        "/api/auth/login",
        json!({"phone": phone, "code": code}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        !server.log().contains(&code),
        "a real SMS never logs the code"
    );
    assert!(!server.log().contains(SECRET));
    // The vendor refuses: a clear error.
    refuse.store(true, std::sync::atomic::Ordering::SeqCst);
    let (status, body) = post(
        &http,
        &server,
        "/api/auth/sms-code",
        json!({"phone": phone}),
        None,
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("isv.BUSINESS_LIMIT_CONTROL"),
        "{body}"
    );
}

#[tokio::test]
async fn admins_see_channel_health_and_issue_redemption_codes() {
    let server = Server::start(opts(&[])).await;
    let phone = "13655550001";
    server.admin_ok(&["user", "create", "--phone", phone]);
    server.admin_ok(&["user", "set-role", "--phone", phone, "--role", "admin"]);
    server
        .add_channel(
            "openai",
            "http://127.0.0.1:9/v1",
            "sk-upstream-secret-value",
            "m1,m2",
            &["--name", "上游一"],
        )
        .await;
    let (admin, csrf) = login(&server, phone).await;
    let channels: Value = eventually_json(&admin, &server.url("/api/admin/channels"), |v| {
        v["data"].as_array().is_some_and(|d| !d.is_empty())
    })
    .await;
    let c = &channels["data"][0];
    assert_eq!(c["name"], "上游一");
    assert_eq!(c["models"], json!(["m1", "m2"]));
    assert_eq!(c["healthy"], true);
    assert!(
        !channels.to_string().contains("sk-upstream-secret-value"),
        "the vendor key is never shown"
    );

    let (status, batch) = post(
        &admin,
        &server,
        "/api/admin/redeem-codes",
        json!({"credits": 250, "count": 3, "note": "活动"}),
        Some(&csrf),
    )
    .await;
    assert_eq!(status, 201, "{batch}");
    let codes: Vec<String> = batch["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 3);
    let (status, redeemed) = post(
        &admin,
        &server,
        "/api/redeem",
        json!({"code": codes[0]}),
        Some(&csrf),
    )
    .await;
    assert_eq!(status, 200, "{redeemed}");
    let list: Value = admin
        .get(server.url("/api/admin/redeem-codes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows = list["data"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows.iter().filter(|r| r["redeemed_by"].is_i64()).count(), 1);
    assert!(
        !list.to_string().contains(&codes[1]),
        "codes are shown only once"
    );
    let (status, _) = post(
        &admin,
        &server,
        "/api/admin/redeem-codes",
        json!({"credits": 0}),
        Some(&csrf),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = post(
        &admin,
        &server,
        "/api/admin/redeem-codes",
        json!({"credits": 5}),
        None,
    )
    .await;
    assert_eq!(status, 403, "CSRF-less admin POST refused");
}

async fn eventually_json(http: &reqwest::Client, url: &str, ok: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..50 {
        let v: Value = http.get(url).send().await.unwrap().json().await.unwrap();
        if ok(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never matched");
}

#[tokio::test]
async fn the_console_session_calls_the_gateway_only_with_its_csrf_token() {
    let server = Server::start(opts(&[])).await;
    let phone = "13655550002";
    let (http, csrf) = login(&server, phone).await;
    let chat = json!({"model": "qwen3-max", "catelogid": "t2t", "prompt": "你好"});
    let url = server.url("/llmage/v1/chat/completions");
    // Cookie alone (what a cross-site form could send): not authenticated.
    let resp = http.post(&url).json(&chat).send().await.unwrap();
    assert_eq!(resp.status(), 403, "refused as a CSRF failure");
    let resp = http
        .get(server.url("/llmage/v1/models"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // With the token: the user's own call (a new user has no credits yet).
    let resp = http
        .post(&url)
        .header("X-CSRF-Token", &csrf)
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    // The console's session also gets the stable code it translates (API keys get the seed's
    // body exactly).
    let text = resp.text().await.unwrap();
    assert!(
        text.starts_with(r#"{"error":"Insufficient balance: this call needs at least "#)
            && text.contains(r#""code":"insufficient_quota""#),
        "{text}"
    );
    let resp = http
        .get(server.url("/llmage/v1/models"))
        .header("X-CSRF-Token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    server.admin_ok(&[
        "credits", "add", "--phone", phone, "--amount", "500", "--reason", "test",
    ]);
    let resp = http
        .post(&url)
        .header("X-CSRF-Token", &csrf)
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (balance, sum) = server.money_units(phone).await;
    assert_eq!(balance, sum);
    assert!(balance < 500 * 10_000);
}
