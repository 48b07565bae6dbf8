//! The console as a work platform (issue 18), in a real headless Chromium: a multi-turn chat
//! whose second answer depends on the first (both turns in the request body), a key created
//! after a restricted one carrying no restrictions, a key's monthly spend limit refusing the call
//! that would pass it, the call log listing the console's chat and a key's video with the ids the
//! API answered (filtered by model, as CSV), the recharge page when Alipay is off, and a phone
//! paying through Alipay's WAP cashier. Screenshots of every page at 1440 and 390 px in Chinese
//! and English go to `$LLMAGE_SHOTS_DIR` (default `target/console-screenshots/platform`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::browser::{Browser, screenshot_dir};
use common::console::code_from_log;
use common::mock_alipay::{self, Mode, server_with_alipay};
use common::{Opts, Server, eventually};
use serde_json::{Value, json};

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

fn shots_dir() -> PathBuf {
    let dir = std::env::var_os("LLMAGE_SHOTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| screenshot_dir().join("platform"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `<name>-<lang>-1440.png` and `<name>-<lang>-390.png` (phone emulation for the narrow one).
async fn shoot(b: &Browser, name: &str, lang: &str) {
    let dir = shots_dir();
    b.cdp("Emulation.clearDeviceMetricsOverride", json!({}))
        .await;
    for width in [1440u32, 390] {
        b.size((width, 900)).await;
        if width == 390 {
            b.cdp(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}),
            )
            .await;
        }
        b.js_async(
            "window.scrollTo(0, 0); requestAnimationFrame(() => requestAnimationFrame(() => done(true)))",
        )
        .await;
        let png = b.full_page_png().await;
        std::fs::write(dir.join(format!("{name}-{lang}-{width}.png")), png).unwrap();
        if width == 390 {
            b.cdp("Emulation.clearDeviceMetricsOverride", json!({}))
                .await;
        }
    }
    b.size((1440, 900)).await;
}

/// The JSON of a same-origin GET made by the page (its session cookie).
async fn page_get(b: &Browser, path: &str) -> Value {
    b.js_async(&format!(
        "fetch({}, {{credentials: 'same-origin', headers: {{'X-CSRF-Token': S.csrf}}}}).then(r => r.json()).then(done, e => done(String(e)))",
        json!(path)
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_keys_limits_and_the_call_log_in_a_browser() {
    let server = Server::start(Opts::demo()).await;
    let phone = "13900005555";
    server.user(phone, 1_000_000);
    let b = Browser::start().await;
    b.size((1440, 900)).await;
    login(&b, &server, phone).await;

    // ---------------------------------------------------------------- multi-turn chat
    b.route("#/playground?model=qwen3-max&cat=t2t").await;
    b.wait_for("#chat-prompt").await;
    // Record what the page sends and the request ids it is answered with.
    b.js(
        "window.__bodies = []; window.__ids = []; const f = window.fetch; \
          window.fetch = async (u, o) => { const chat = String(u).includes('/chat/completions'); \
          if (chat) window.__bodies.push(JSON.parse(o.body)); const r = await f(u, o); \
          if (chat) window.__ids.push(r.headers.get('X-Request-Id')); return r; }; return true",
    )
    .await;
    b.fill("#chat-temperature", "0.3").await;
    b.fill("#chat-max-tokens", "200").await;
    b.fill("#chat-prompt", "1+2").await;
    b.click("#chat-send").await;
    b.wait_js(
        "return document.querySelectorAll('.msg-assistant.done').length === 1",
        "the first answer",
    )
    .await;
    let first = b.text(".msg-assistant .chat-answer").await;
    assert!(first.contains('3'), "{first}");
    b.fill("#chat-prompt", "你刚才说了什么？").await;
    b.click("#chat-send").await;
    b.wait_js(
        "return document.querySelectorAll('.msg-assistant.done').length === 2",
        "the second answer",
    )
    .await;
    let second = b
        .js("return document.querySelectorAll('.msg-assistant .chat-answer')[1].innerText")
        .await;
    let second = second.as_str().unwrap_or_default();
    assert!(
        second.contains(first.trim()),
        "the second answer quotes the first: {second:?} / {first:?}"
    );
    let bodies = b.js("return window.__bodies").await;
    let sent = &bodies[1];
    assert_eq!(sent["messages"].as_array().map(Vec::len), Some(3), "{sent}");
    assert_eq!(
        sent["messages"][0],
        json!({"role": "user", "content": "1+2"})
    );
    assert_eq!(sent["messages"][1]["role"], "assistant");
    assert_eq!(
        sent["messages"][1]["content"].as_str().map(str::trim),
        Some(first.trim())
    );
    assert_eq!(sent["messages"][2]["content"], "你刚才说了什么？");
    assert_eq!(sent["temperature"], json!(0.3));
    assert_eq!(sent["max_tokens"], json!(200));
    b.wait_text(".msg-assistant:last-child .chat-usage", "积分")
        .await;
    let chat_id = b.js("return window.__ids[1]").await;
    let chat_id = chat_id.as_str().unwrap_or_default().to_owned();
    assert!(chat_id.starts_with("chatcmpl-"), "{chat_id}");

    // Markdown is rendered as elements; HTML in an answer stays text.
    let md = b
        .js("const f = markdown('**粗体** <img src=x onerror=alert(1)>\\n\\n```js\\nlet a = \"<b>\";\\n```'); \
             const d = document.createElement('div'); d.appendChild(f); \
             return [d.querySelectorAll('strong').length, d.querySelectorAll('img').length, \
                     d.querySelector('pre code').textContent]")
        .await;
    assert_eq!(md, json!([1, 0, "let a = \"<b>\";"]), "{md}");
    shoot(&b, "playground-chat", "zh").await;

    // ---------------------------------------------------------------- keys
    b.route("#/keys").await;
    b.wait_for("#key-form").await;
    b.fill("#key-name", "受限").await;
    b.js("document.querySelector('#key-form details').open = true; return true")
        .await;
    b.fill("#key-models", "qwen3-max").await;
    b.fill("#key-ips", "10.0.0.0/8").await;
    b.click("#create-key").await;
    let restricted = b.text("#new-key").await;
    b.click("#close-key").await;
    b.fill("#key-name", "自由").await;
    b.click("#create-key").await;
    let free = b.text("#new-key").await;
    b.click("#close-key").await;
    b.wait_text("#keys-table", "自由").await;
    // The form was emptied: the second key has no restriction.
    let keys = page_get(&b, "/api/keys").await;
    let by_name = |n: &str| {
        keys["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_name("受限")["models"], json!(["qwen3-max"]));
    assert_eq!(by_name("自由")["models"], Value::Null, "{keys}");
    assert_eq!(by_name("自由")["allowed_ips"], Value::Null, "{keys}");
    assert_eq!(
        server
            .get_json("/llmage/v1/balance", Some(&restricted))
            .await
            .0,
        403
    );
    let chat = json!({"model": "qwen3-max", "messages": [{"role": "user", "content": "你好"}]});
    let (status, answer) = server
        .post_json("/llmage/v1/chat/completions", Some(&free), &chat)
        .await;
    assert_eq!(status, 200, "{answer}");

    // A monthly limit just above this month's spend: a call whose hold passes it is refused.
    b.route("#/keys").await;
    b.wait_text("#keys-table", "自由").await;
    let free_id = by_name("自由")["id"].as_i64().unwrap();
    let spent = eventually_spent(&b, free_id).await;
    assert!(spent > 0);
    b.click(&format!(".edit-key[data-key='{free_id}']")).await;
    b.fill("#edit-key-limit", &(spent + 1).to_string()).await;
    b.click("#edit-key-save").await;
    b.wait_text("#keys-table", &format!("/ {}", spent + 1))
        .await;
    let (status, refused) = server
        .post_json("/llmage/v1/chat/completions", Some(&free), &chat)
        .await;
    assert_eq!(status, 429, "{refused}");
    assert!(
        refused["error"].as_str().unwrap_or("").contains("上限"),
        "{refused}"
    );
    // Disabled, the key is refused; enabled again, it works within the limit's reach.
    b.click(&format!(".toggle-key[data-key='{free_id}']")).await;
    b.wait_text("#keys-table", "已停用").await;
    assert_eq!(
        b.js(&format!(
            "return document.querySelector(\".toggle-key[data-key='{free_id}']\").getAttribute('aria-pressed')"
        ))
        .await,
        json!("true")
    );
    eventually(Duration::from_secs(3), "the disabled key refused", || {
        let server = &server;
        let free = free.clone();
        async move { server.get_json("/llmage/v1/balance", Some(&free)).await.0 == 401 }
    })
    .await;
    b.click(&format!(".toggle-key[data-key='{free_id}']")).await;
    b.wait_text("#keys-table", "有效").await;
    // Raise the limit for the video below.
    b.click(&format!(".edit-key[data-key='{free_id}']")).await;
    b.fill("#edit-key-limit", "1000000").await;
    b.click("#edit-key-save").await;
    b.wait_text("#keys-table", "1,000,000").await;
    shoot(&b, "keys", "zh").await;
    // A revoked key is removed from the list.
    let restricted_id = by_name("受限")["id"].as_i64().unwrap();
    b.click(&format!(".revoke-key[data-key='{restricted_id}']"))
        .await;
    b.click("#confirm-ok").await;
    b.wait_text("#keys-table", "已撤销").await;
    b.click(&format!(".remove-key[data-key='{restricted_id}']"))
        .await;
    b.wait_js(
        "return !document.querySelector('#keys-table').innerText.includes('受限')",
        "the revoked key gone from the list",
    )
    .await;

    // ---------------------------------------------------------------- a video by API key
    eventually(Duration::from_secs(3), "the enabled key accepted", || {
        let server = &server;
        let free = free.clone();
        async move { server.get_json("/llmage/v1/balance", Some(&free)).await.0 == 200 }
    })
    .await;
    let resp = reqwest::Client::new()
        .post(server.url("/llmage/v1/video/generations"))
        .bearer_auth(&free)
        .json(&json!({"model": "happyhorse-1.0-t2v", "catelogid": "t2v", "prompt": "海边日落", "duration": 3}))
        .send()
        .await
        .unwrap();
    let video_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let created: Value = resp.json().await.unwrap();
    let taskid = created["taskid"].as_str().unwrap().to_owned();
    let task = server
        .finish_task(&free, &taskid, Duration::from_secs(60))
        .await;
    assert_eq!(task["request_id"], json!(video_id), "{task}");

    // ---------------------------------------------------------------- the call log
    b.route("#/calls").await;
    b.wait_for("#calls-table").await;
    let table = b.text("#calls-table").await;
    assert!(
        table.contains(&chat_id) && table.contains(&video_id),
        "{table}"
    );
    b.fill("#calls-model", "happyhorse-1.0-t2v").await;
    b.click("#calls-apply").await;
    b.wait_js(
        "return !document.querySelector('#calls-table').innerText.includes('qwen3-max')",
        "the model filter",
    )
    .await;
    let filtered = b.text("#calls-table").await;
    assert!(filtered.contains(&video_id), "{filtered}");
    b.click(&format!(".call-detail[data-request='{video_id}']"))
        .await;
    b.wait_text("#call-detail", &taskid).await;
    b.click("#call-detail .modal-x").await;
    let href = b
        .js("return document.querySelector('#calls-csv').getAttribute('href')")
        .await;
    let href = href.as_str().unwrap_or_default().to_owned();
    assert!(
        href.contains("model=happyhorse-1.0-t2v") && href.contains("format=csv"),
        "{href}"
    );
    let csv = b
        .js_async(&format!(
            "fetch({}, {{credentials: 'same-origin'}}).then(r => r.text()).then(done)",
            json!(href)
        ))
        .await;
    let csv = csv.as_str().unwrap_or_default();
    assert!(
        csv.contains("request_id,created_at,kind")
            && csv.contains(&video_id)
            && csv.contains(&taskid),
        "{csv}"
    );
    assert!(!csv.contains(&chat_id), "{csv}");
    shoot(&b, "calls", "zh").await;

    // ---------------------------------------------------------------- the quote before 生成
    b.route("#/playground?model=happyhorse-1.0-t2v&cat=t2v")
        .await;
    b.wait_for("#p-prompt").await;
    b.fill("#p-prompt", "海边日落").await;
    b.fill("#p-duration", "4").await;
    b.js("document.querySelector('#pg-form').dispatchEvent(new Event('change')); return true")
        .await;
    let shown = b
        .wait_js(
            "const q = document.querySelector('#pg-quote'); return q.dataset.credits && !q.dataset.pending ? q.dataset.credits : null",
            "the quote",
        )
        .await;
    let shown: i64 = shown.as_str().unwrap().parse().unwrap();
    assert!(b.text("#pg-quote").await.contains('¥'));
    b.click("#pg-submit").await;
    b.wait_for("#pg-video").await;
    let tasks = page_get(&b, "/llmage/v1/tasks").await;
    let latest = &tasks["data"][0];
    assert_eq!(latest["params"]["duration"], 4, "{latest}");
    assert_eq!(latest["usage"]["credits"], json!(shown), "{latest}");
    shoot(&b, "playground-video-quote", "zh").await;

    // ---------------------------------------------------------------- every page, zh and en
    for lang in ["zh", "en"] {
        if lang == "en" {
            b.click("#lang-switch").await;
            b.wait_text("#nav", "Models").await;
        }
        for (name, hash, ready) in [
            ("models", "#/models", ".model-card"),
            ("model-detail", "#/model?id=happyhorse-1.0-t2v", "#price"),
            (
                "playground-chat-empty",
                "#/playground?model=qwen3-max&cat=t2t",
                "#chat-form",
            ),
            (
                "playground-video",
                "#/playground?model=happyhorse-1.0-t2v&cat=t2v",
                "#p-prompt",
            ),
            ("tasks", "#/tasks", ".task-card"),
            ("calls", "#/calls", "#calls-table"),
            ("keys", "#/keys", "#keys-table"),
            ("recharge", "#/recharge", "#recharge-off"),
            ("finance", "#/finance", "#ledger-table"),
            ("docs", "#/docs", "#base-url"),
        ] {
            b.route(hash).await;
            b.wait_for(ready).await;
            let failed = b
                .js("const e = document.querySelector('#main .alert-error'); return e ? e.innerText : null")
                .await;
            assert_eq!(failed, Value::Null, "{name} {lang}");
            shoot(&b, name, lang).await;
        }
    }
    // The admin pages (their script is fetched only now, for an admin).
    assert!(
        b.js("return !document.querySelector('script[src*=\"pages-admin\"]')")
            .await
            .as_bool()
            .unwrap()
    );
    server.admin_ok(&["user", "set-role", "--phone", phone, "--role", "admin"]);
    b.client.refresh().await.unwrap();
    b.wait_for("#admin-menu").await;
    for lang in ["en", "zh"] {
        if lang == "zh" {
            b.click("#lang-switch").await;
            b.wait_text("#nav", "模型广场").await;
        }
        for (name, hash, ready) in [
            ("admin-users", "#/admin/users", "#users-table"),
            ("admin-channels", "#/admin/channels", "#main h1"),
            ("admin-orders", "#/admin/orders", "#main h1"),
            ("admin-redeem", "#/admin/redeem", "#redeem-create-form"),
        ] {
            b.route(hash).await;
            b.wait_for(ready).await;
            shoot(&b, name, lang).await;
        }
    }
    b.close().await;
}

/// This month's spend of a key as the key list shows it, once its call is recorded.
async fn eventually_spent(b: &Browser, key_id: i64) -> i64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let keys = page_get(b, "/api/keys").await;
        let spent = keys["data"]
            .as_array()
            .and_then(|d| d.iter().find(|k| k["id"] == key_id))
            .and_then(|k| k["month_spent"].as_f64())
            .unwrap_or(0.0);
        // The limit is whole credits: the spend so far, rounded up.
        if spent > 0.0 {
            return spent.ceil() as i64;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no spend recorded: {keys}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recharge_off_then_a_phone_pays_through_the_wap_cashier() {
    // Without Alipay: the page says so first and offers the redemption code.
    let plain = Server::start(Opts::demo()).await;
    let b = Browser::start().await;
    b.goto(&plain.url("/#/login")).await;
    b.wait_for("#phone").await;
    shoot(&b, "login", "zh").await;
    b.click("#lang-switch").await;
    b.wait_text("#login-btn", "Log in").await;
    shoot(&b, "login", "en").await;
    b.click("#lang-switch").await;
    login(&b, &plain, "13900006666").await;
    b.route("#/recharge").await;
    b.wait_text("#recharge-off", "未开通").await;
    b.wait_for("#redeem-form").await;
    assert!(
        b.js("return !document.querySelector('#recharge-form')")
            .await
            .as_bool()
            .unwrap()
    );
    shoot(&b, "recharge-off", "zh").await;
    b.close().await;

    // With Alipay, at phone width: the WAP pay URL, no QR code; the mock cashier checks the
    // signature and the WAP product code, and paying credits the order.
    let mock = mock_alipay::start(Mode::Normal).await;
    let server = server_with_alipay(&mock, &[]).await;
    let phone = "13900007777";
    let b = Browser::start().await;
    b.size((390, 844)).await;
    b.cdp(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}),
    )
    .await;
    login(&b, &server, phone).await;
    b.route("#/recharge").await;
    b.wait_for("#recharge-form").await;
    b.click(".preset[data-amount='10']").await;
    b.click("#recharge-submit").await;
    b.wait_for("#pay-link").await;
    let link = b
        .js("const a = document.querySelector('#pay-link'); return [a.dataset.kind, a.getAttribute('href')]")
        .await;
    assert_eq!(link[0], "wap", "{link}");
    assert!(
        link[1]
            .as_str()
            .unwrap_or_default()
            .contains("method=alipay.trade.wap.pay"),
        "{link}"
    );
    assert!(
        b.js("return !document.querySelector('#order-qr')")
            .await
            .as_bool()
            .unwrap(),
        "no QR code on the phone that would have to scan it"
    );
    shoot(&b, "recharge-phone-order", "zh").await;
    b.cdp(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}),
    )
    .await;
    b.size((390, 844)).await;
    b.click("#pay-link").await;
    b.wait_text("#method", "alipay.trade.wap.pay").await;
    b.click("#pay").await;
    b.wait_text("#pay-success", "1,000").await;
    assert_eq!(server.money(phone).await, (1000, 1000));

    // A second order, cancelled from the page.
    b.click("#recharge-submit").await;
    b.wait_for("#cancel-order").await;
    b.click("#cancel-order").await;
    b.wait_for("#order-cancelled").await;
    b.close().await;
}
