//! The operator's and the newcomer's first run, in a real headless Chromium:
//! - demo mode walks every flow offline: a new phone logs in and has its trial credits (a ledger
//!   entry), runs the seed's chat example in the playground (the sandbox answers), recharges
//!   ¥10 at the sandbox cashier and sees 支付成功 with the balance 1,000 higher;
//! - an admin adds an OpenAI-compatible channel from the console, tests it (ok, with latency),
//!   and chat calls are then served by it (with its model mapping); a channel with a wrong key
//!   tests as failed with the vendor's own message; keys are never returned; disable and delete.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::browser::Browser;
use common::console::code_from_log;
use common::mock_openai::{self, MOCK_KEY};
use common::{DEMO_KEY, Opts, Server, eventually};
use serde_json::{Value, json};

/// Log in through the form with the SMS code from the server log.
async fn login(b: &Browser, server: &Server, phone: &str) {
    b.goto(&server.url("/#/login")).await;
    b.fill("#phone", phone).await;
    b.click("#send-code").await;
    let needle = format!("SMS {phone} ");
    eventually(Duration::from_secs(10), "the SMS code in the log", || {
        let found = server.log().contains(&needle);
        async move { found }
    })
    .await;
    b.wait_text("#login-info", "验证码已发送").await;
    b.fill("#code", &code_from_log(server, phone)).await;
    b.click("#login-btn").await;
    b.wait_for("#balance-chip").await;
}

/// The top bar's balance, in ledger units (it shows credits with up to 4 decimals).
async fn shown_balance(b: &Browser) -> i64 {
    let text = b.text("#balance-chip [data-balance]").await;
    let credits: f64 = text.replace([',', ' '], "").parse().unwrap_or(-1.0);
    (credits * 10_000.0).round() as i64
}

/// Demo mode as a newcomer meets it: trial credits and the sandbox cashier on.
fn demo_with_trial() -> Opts {
    let mut opts = Opts::demo();
    opts.env = vec![
        ("LLMAGE_SIGNUP_CREDITS".into(), "1000".into()),
        ("LLMAGE_SANDBOX__CASHIER".into(), "true".into()),
    ];
    opts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_phone_in_demo_mode_tries_the_playground_and_recharges_at_the_sandbox_cashier() {
    let server = Server::start(demo_with_trial()).await;
    let phone = "13700137001";
    let b = Browser::start().await;
    login(&b, &server, phone).await;

    // Trial credits, entered in the ledger.
    b.wait_js(
        "const e = document.querySelector('#balance-chip [data-balance]'); return e && e.textContent === '1,000'",
        "the trial credits in the top bar",
    )
    .await;
    assert_eq!(server.money(phone).await, (1000, 1000));

    // The seed's chat example (qwen3-max, t2t, "你的问题") from the playground: the sandbox
    // answers it and says so; the call costs credits.
    b.route("#/playground?model=qwen3-max&cat=t2t").await;
    b.fill("#chat-prompt", "你的问题").await;
    b.click("#chat-send").await;
    let answer = b
        .wait_js(
            "const m = document.querySelector('.msg-assistant.done'); return m && m.querySelector('.chat-answer').textContent",
            "the chat answer",
        )
        .await;
    let answer = answer.as_str().unwrap_or_default();
    assert!(
        answer.contains("你的问题") && answer.contains("沙盒"),
        "{answer}"
    );
    b.wait_text(".chat-usage", "积分").await;
    let after_chat = eventually_balance_below(&server, phone, 1000 * 10_000).await;
    b.screenshot("demo-playground").await;

    // Recharge ¥10: the pay link opens the sandbox cashier on this server.
    b.route("#/recharge").await;
    b.wait_for("#recharge-form").await;
    b.click(".preset[data-amount='10']").await;
    b.click("#recharge-submit").await;
    b.wait_for("#pay-link").await;
    let href = b
        .js("return document.querySelector('#pay-link').getAttribute('href')")
        .await;
    let href = href.as_str().unwrap_or_default().to_owned();
    assert!(
        href.starts_with(&format!("{}/#/cashier?order=R", server.base)),
        "{href}"
    );
    b.click("#pay-link").await;
    b.wait_for("#sandbox-pay").await;
    let page = b.body_text().await;
    assert!(
        page.contains("¥10.00") && page.contains("沙盒收银台"),
        "{page}"
    );
    assert!(b.text("#sandbox-pay").await.contains("模拟支付成功"));
    b.screenshot("demo-cashier").await;
    b.click("#sandbox-pay").await;
    b.wait_text("#pay-success", "支付成功").await;
    assert!(b.text("#cashier-status").await.contains("成功"));
    let expected = after_chat + 1000 * 10_000;
    let shown = llmage::billing::credits_text(expected);
    b.wait_js(
        &format!(
            "return document.querySelector('#balance-chip [data-balance]').textContent.replace(/,/g, '') === '{shown}'"
        ),
        "the balance 1,000 higher",
    )
    .await;
    assert_eq!(shown_balance(&b).await, expected);
    assert_eq!(server.money_units(phone).await, (expected, expected));
    b.screenshot("demo-cashier-paid").await;

    // The order is SUCCEEDED; paying again credits nothing more.
    let order_id = href.rsplit('=').next().unwrap().to_owned();
    let again = b
        .js_async(&format!(
            "fetch('/api/recharge/orders/{order_id}/sandbox-pay', {{method: 'POST', headers: {{'X-CSRF-Token': S.csrf}}}}).then(async (r) => done([r.status, await r.json()]));"
        ))
        .await;
    assert_eq!(again[0], 200, "{again}");
    assert_eq!(again[1]["status"], "SUCCEEDED");
    assert_eq!(server.money_units(phone).await, (expected, expected));
    b.close().await;
}

/// The ledger balance (units) once it dropped below `limit` (the chat's settlement).
async fn eventually_balance_below(server: &Server, phone: &str, limit: i64) -> i64 {
    eventually(Duration::from_secs(10), "the chat charged", || async {
        server.money_units(phone).await.0 < limit
    })
    .await;
    let (balance, sum) = server.money_units(phone).await;
    assert_eq!(balance, sum);
    balance
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adds_tests_and_uses_a_channel_from_the_console() {
    let mock = mock_openai::start(mock_openai::Mode::Normal).await;
    let server = Server::start(Opts::demo()).await;
    let phone = "13700137002";
    let b = Browser::start().await;
    login(&b, &server, phone).await;
    server.admin_ok(&["user", "set-role", "--phone", phone, "--role", "admin"]);
    b.route("#/admin/channels").await;
    b.client.refresh().await.unwrap();
    b.wait_for("#admin-menu").await;
    b.wait_for("#channels-empty").await;

    // Add an OpenAI-compatible channel that serves qwen3-max under the upstream name
    // mock-upstream.
    b.click("#channel-add").await;
    b.wait_for("#channel-dialog").await;
    assert!(
        b.text("#channel-dialog")
            .await
            .contains("https://api.openai.com/v1")
    );
    b.fill("#channel-name", "本地 OpenAI").await;
    b.fill("#channel-base-url", &mock.base_url).await;
    b.fill("#channel-key", MOCK_KEY).await;
    b.fill("#channel-models", "qwen3-max=mock-upstream").await;
    b.click("#channel-save").await;
    b.wait_text("#channels-table", "本地 OpenAI").await;
    let table = b.text("#channels-table").await;
    assert!(table.contains("mock-upstream"), "mapping shown: {table}");
    assert!(!table.contains(MOCK_KEY), "the key is shown masked");
    b.screenshot("admin-channel-added").await;

    // 测试: ok with its latency.
    let id = b
        .js("return document.querySelector('.channel-test-btn').dataset.id")
        .await;
    let id = id.as_str().unwrap().to_owned();
    let calls_before = mock.seen.calls.load(Ordering::SeqCst);
    b.click(&format!(".channel-test-btn[data-id='{id}']")).await;
    let shown = b.wait_text(&format!("#channel-test-{id}"), "ms").await;
    assert!(shown.contains("可用"), "{shown}");
    assert_eq!(mock.seen.calls.load(Ordering::SeqCst), calls_before + 1);
    let probe = mock.seen.bodies.lock().unwrap().last().cloned().unwrap();
    assert_eq!(probe["model"], "mock-upstream");
    assert_eq!(probe["max_tokens"], 1);
    b.screenshot("admin-channel-tested").await;

    // A chat call is now served by the channel, under the mapped name.
    let (status, body) = server
        .post_json(
            "/llmage/v1/chat/completions",
            Some(DEMO_KEY),
            &json!({"model": "qwen3-max", "prompt": "你好"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["content"], mock_openai::ANSWER.concat());
    let last = mock.seen.bodies.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last["model"], "mock-upstream");

    // A channel with a wrong key: the test fails with the vendor's message.
    b.click("#channel-add").await;
    b.wait_for("#channel-dialog").await;
    b.fill("#channel-name", "错误密钥").await;
    b.fill("#channel-base-url", &mock.base_url).await;
    b.fill("#channel-key", "sk-wrong-key-123456").await;
    b.fill("#channel-models", "gpt-wrong").await;
    b.click("#channel-save").await;
    b.wait_text("#channels-table", "错误密钥").await;
    let wrong = b
        .js("const b = [...document.querySelectorAll('.channel-test-btn')]; return b[b.length - 1].dataset.id")
        .await;
    let wrong = wrong.as_str().unwrap().to_owned();
    assert_ne!(wrong, id);
    b.click(&format!(".channel-test-btn[data-id='{wrong}']"))
        .await;
    let shown = b
        .wait_text(&format!("#channel-test-{wrong}"), "Incorrect API key")
        .await;
    assert!(shown.contains("失败") && shown.contains("401"), "{shown}");
    b.screenshot("admin-channel-wrong-key").await;

    // The API never returns a key, masked or not in full.
    let listed = b
        .js_async("fetch('/api/admin/channels').then((r) => r.text()).then(done);")
        .await;
    let listed = listed.as_str().unwrap_or_default();
    assert!(
        !listed.contains(MOCK_KEY) && !listed.contains("sk-wrong-key-123456"),
        "{listed}"
    );
    let listed: Value = serde_json::from_str(listed).unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    assert_eq!(listed["data"][0]["mapping"]["qwen3-max"], "mock-upstream");

    // Edit (a new weight; the key kept), disable, delete.
    b.click(&format!(".channel-edit-btn[data-id='{id}']")).await;
    b.wait_for("#channel-dialog").await;
    b.fill("#channel-weight", "5").await;
    b.click("#channel-save").await;
    b.wait_text("#channels-table", "0 / 5").await;
    b.click(&format!(".channel-test-btn[data-id='{id}']")).await;
    b.wait_text(&format!("#channel-test-{id}"), "可用").await;
    b.click(&format!(".channel-toggle-btn[data-id='{id}']"))
        .await;
    b.wait_text("#channels-table", "已停用").await;
    // Disabled: demo mode's sandbox answers qwen3-max again.
    let (status, body) = server
        .post_json(
            "/llmage/v1/chat/completions",
            Some(DEMO_KEY),
            &json!({"model": "qwen3-max", "prompt": "你好"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["content"].as_str().unwrap().contains("沙盒"), "{body}");
    b.click(&format!(".channel-delete-btn[data-id='{wrong}']"))
        .await;
    b.click("#confirm-ok").await;
    eventually(Duration::from_secs(10), "the channel deleted", || async {
        !b.text("#channels-table").await.contains("错误密钥")
    })
    .await;
    b.close().await;
}
