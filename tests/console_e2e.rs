//! The web console in a real headless Chromium against a demo server whose Alipay is a local
//! mock: a new phone logs in with its SMS code, creates a key (shown once, and it works),
//! recharges 10 yuan through the mock cashier, chats with streamed output, generates an image
//! and a video and sees them load and play in the gallery, reads the finance page, switches to
//! English, becomes admin and visits the admin pages and the docs. Errors are readable (never
//! JSON): a refused phone number, a wrong SMS code, an insufficient balance. Every page is
//! photographed at desktop and phone width into `target/console-screenshots/`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::time::Duration;

use common::browser::Browser;
use common::console::code_from_log;
use common::mock_alipay::{self, Mode, server_with_alipay};
use common::{Opts, Server, eventually};
use serde_json::{Value, json};

/// Log in through the form: phone, "获取验证码", the code from the server log, "登录".
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

/// The page shows no raw JSON error body.
async fn assert_no_json(b: &Browser, step: &str) {
    let text = b.body_text().await;
    assert!(
        !text.contains("{\"error\"") && !text.contains("\"error\":"),
        "{step}: raw JSON shown:\n{text}"
    );
}

/// The balance shown in the top bar, as a number.
async fn shown_balance(b: &Browser) -> i64 {
    let text = b.text("#balance-chip [data-balance]").await;
    text.replace([',', ' '], "").parse().unwrap_or(-1)
}

/// `<img>` loaded (naturalWidth > 0).
async fn assert_image_loaded(b: &Browser, css: &str) {
    b.wait_js(
        &format!(
            "const i = document.querySelector({}); return i && i.complete && i.naturalWidth > 0",
            serde_json::json!(css)
        ),
        &format!("image {css} to load"),
    )
    .await;
}

/// `<video>` has metadata with a duration, and playing advances its time.
async fn assert_video_plays(b: &Browser, css: &str) {
    let sel = serde_json::json!(css);
    let duration = b
        .wait_js(
            &format!(
                "const v = document.querySelector({sel}); return v && v.readyState >= 1 && v.duration > 0 ? v.duration : null"
            ),
            &format!("video {css} metadata"),
        )
        .await;
    assert!(duration.as_f64().unwrap_or(0.0) > 0.0, "{duration}");
    b.js(&format!(
        "const v = document.querySelector({sel}); v.muted = true; v.play().catch(() => {{}}); return true"
    ))
    .await;
    b.wait_js(
        &format!("const v = document.querySelector({sel}); return v.currentTime > 0"),
        &format!("video {css} to play"),
    )
    .await;
    b.js(&format!(
        "document.querySelector({sel}).pause(); return true"
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_phone_uses_the_whole_console_in_a_browser() {
    let mock = mock_alipay::start(Mode::Normal).await;
    let server = server_with_alipay(&mock, &[]).await;
    // A channel for the admin page (on a model the journey does not call).
    server
        .add_channel(
            "dashscope",
            "http://127.0.0.1:9",
            "sk-unused",
            "wan2.5-t2i-preview",
            &["--name", "备用通道", "--priority", "5"],
        )
        .await;
    let b = Browser::start().await;
    let phone = "13900002222";

    // Login page.
    b.goto(&server.url("/")).await;
    b.wait_for("#phone").await;
    assert!(b.body_text().await.contains("元境平台"));
    b.screenshot("login").await;
    login(&b, &server, phone).await;
    assert_eq!(shown_balance(&b).await, 0);

    // Model square: cards, a category filter, the search box.
    b.route("#/models").await;
    b.wait_for(".model-card[data-model='qwen3-max']").await;
    b.screenshot("models").await;
    b.click("#cat-chips [data-cat='t2v']").await;
    b.wait_js(
        "return !document.querySelector(\".model-card[data-model='qwen3-max']\") && !!document.querySelector(\".model-card[data-model='happyhorse-1.0-t2v']\")",
        "the t2v filter",
    )
    .await;
    b.fill("#model-search", "happyhorse").await;
    b.wait_js(
        "return [...document.querySelectorAll('.model-card')].every(c => c.dataset.model.includes('happyhorse'))",
        "the search",
    )
    .await;
    b.click("#cat-chips [data-cat='']").await;
    b.fill("#model-search", "").await;

    // A model's detail: price, parameters, a curl example with this origin.
    b.route("#/model?id=happyhorse-1.0-t2v").await;
    let curl = b.text("#curl-t2v").await;
    assert!(
        curl.contains(&server.url("/llmage/v1/video/generations"))
            && curl.contains("$LLMAGE_API_KEY"),
        "{curl}"
    );
    b.wait_text("#price", "720p").await;
    b.screenshot("model-detail").await;

    // A key, shown once; it works with Bearer.
    b.route("#/keys").await;
    b.wait_for("#key-form").await;
    b.fill("#key-name", "浏览器测试").await;
    b.click("#create-key").await;
    let key = b.text("#new-key").await;
    assert!(key.starts_with("sk-"), "{key}");
    b.screenshot("key-created").await;
    // "复制apikey": the copy button puts exactly the key on the clipboard.
    b.cdp(
        "Browser.grantPermissions",
        json!({"origin": server.base, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]}),
    )
    .await;
    b.click("#copy-key").await;
    let copied = b
        .js_async("navigator.clipboard.readText().then(done, (e) => done('clipboard error: ' + e))")
        .await;
    assert_eq!(copied, json!(key), "the clipboard holds the key");
    let (status, balance) = server.get_json("/llmage/v1/balance", Some(&key)).await;
    assert_eq!(status, 200, "{balance}");
    assert_eq!(balance["balance"], 0);
    b.click("#close-key").await;
    b.wait_text("#keys-table", "浏览器测试").await;
    assert!(
        !b.body_text().await.contains(&key),
        "the full key is shown only once"
    );
    // A second key, deleted after confirming: refused at once.
    b.fill("#key-name", "临时").await;
    b.click("#create-key").await;
    let temp = b.text("#new-key").await;
    b.click("#close-key").await;
    b.wait_text("#keys-table", "临时").await;
    b.screenshot("keys").await;
    b.click("#keys-table tbody tr:first-child .revoke-key")
        .await;
    b.wait_text(".modal", "临时").await;
    b.screenshot("key-delete-confirm").await;
    b.click("#confirm-ok").await;
    b.wait_text("#keys-table", "已撤销").await;
    eventually(Duration::from_secs(3), "the deleted key refused", || {
        let server = &server;
        let temp = temp.clone();
        async move { server.get_json("/llmage/v1/balance", Some(&temp)).await.0 == 401 }
    })
    .await;
    assert_eq!(
        server.get_json("/llmage/v1/balance", Some(&key)).await.0,
        200
    );

    // Recharge 10 yuan through the mock cashier and back.
    b.route("#/recharge").await;
    b.wait_for("#recharge-form").await;
    b.wait_text("#credits-hint", "1,000").await;
    b.screenshot("recharge").await;
    b.click(".preset[data-amount='10']").await;
    b.click("#recharge-submit").await;
    b.wait_for("#pay-link").await;
    assert_image_loaded(&b, "#order-qr").await;
    b.screenshot("recharge-order").await;
    b.click("#pay-link").await;
    b.wait_for("#pay").await;
    assert!(b.body_text().await.contains("¥10.00"));
    b.click("#pay").await;
    b.wait_text("#pay-success", "支付成功").await;
    b.wait_js(
        "return location.hash === '#/recharge' && document.querySelector('#balance-chip [data-balance]').textContent === '1,000'",
        "the balance 1000 after paying",
    )
    .await;
    assert!(b.text("#pay-success").await.contains("1,000"));
    assert_eq!(server.money(phone).await, (1000, 1000));
    b.screenshot("recharge-success").await;

    // Chat with streamed output (several chunks appended as they came) and the credits used.
    b.route("#/playground?model=qwen3-max&cat=t2t").await;
    b.wait_for("#chat-output").await;
    // Count the transcript's mutations: the answer is redrawn (as Markdown) as each piece arrives
    // (a whole answer at once would be a handful).
    b.js("window.__renders = 0; new MutationObserver((records) => { window.__renders += records.length; }).observe(document.querySelector('#chat-output'), {subtree: true, childList: true, characterData: true}); return true")
        .await;
    b.fill("#chat-prompt", "你好").await;
    b.click("#chat-send").await;
    b.wait_js(
        "const m = document.querySelector('.msg-assistant.done'); return m && m.querySelector('.chat-answer').textContent.length > 0",
        "the chat answer",
    )
    .await;
    let renders = b.js("return window.__renders").await;
    assert!(
        renders.as_u64().unwrap_or(0) > 6,
        "streamed in pieces: {renders} renders"
    );
    b.wait_text(".chat-usage", "积分").await;
    assert_no_json(&b, "chat").await;
    b.screenshot("playground-chat").await;

    // An image.
    b.route("#/playground?model=wan2.2-t2i-plus&cat=t2i").await;
    b.fill("#p-prompt", "一只橘猫").await;
    b.click("#pg-submit").await;
    b.wait_for("#pg-image").await;
    assert_image_loaded(&b, "#pg-image").await;
    b.screenshot("playground-image").await;

    // A video of 3 seconds.
    b.route("#/playground?model=happyhorse-1.0-t2v&cat=t2v")
        .await;
    b.wait_for("#p-prompt").await;
    let min = b
        .js("return document.querySelector('#p-duration').min")
        .await;
    assert_eq!(min, Value::String("3".into()), "duration 3 is allowed");
    b.fill("#p-duration", "3").await;
    b.fill("#p-prompt", "海边日落").await;
    b.click("#pg-submit").await;
    b.wait_for("#pg-video").await;
    assert_video_plays(&b, "#pg-video").await;
    b.screenshot("playground-video").await;

    // Image to video: the first frame uploaded as a file (multipart).
    let frame = tempfile::tempdir().unwrap();
    let frame_path = frame.path().join("first.jpg");
    std::fs::write(&frame_path, common::jpeg("first", 96)).unwrap();
    b.route("#/playground?model=happyhorse-1.0-i2v&cat=i2v")
        .await;
    b.wait_for(".file-btn").await;
    let accept = b
        .js("return document.querySelector('#p-image_file').accept")
        .await;
    assert_eq!(accept, Value::String("image/*".into()));
    b.fill("#p-prompt", "让画面动起来").await;
    b.fill("#p-duration", "3").await;
    // The file input itself is hidden behind the page's own "选择文件" button.
    b.client
        .find(fantoccini::Locator::Css("#p-image_file"))
        .await
        .unwrap()
        .send_keys(frame_path.to_str().unwrap())
        .await
        .unwrap();
    b.wait_text(".file-names", "first.jpg").await;
    assert_image_loaded(&b, ".file-thumb").await;
    b.click("#pg-submit").await;
    b.wait_for("#pg-video").await;
    assert_video_plays(&b, "#pg-video").await;
    b.screenshot("playground-i2v").await;

    // Both in the gallery: the image loads, the video plays with its cover as poster.
    b.route("#/tasks").await;
    b.wait_js(
        "return document.querySelectorAll('.task-card[data-status=SUCCEEDED]').length >= 3",
        "three finished tasks in the gallery",
    )
    .await;
    assert_image_loaded(&b, ".task-card img.media").await;
    let poster = b
        .js("return document.querySelector('.task-card video.media').poster")
        .await;
    assert!(
        poster.as_str().unwrap_or("").contains("/idfile"),
        "{poster}"
    );
    assert_video_plays(&b, ".task-card video.media").await;
    b.screenshot("tasks").await;

    // Finance: the recharge in the ledger, usage chart, orders, CSV links.
    b.route("#/finance").await;
    b.wait_text("#ledger-table", "充值").await;
    b.wait_for("#usage-chart").await;
    b.wait_text("#orders-table", "成功").await;
    let csv = b
        .js("return [...document.querySelectorAll('.csv-link')].map(a => a.getAttribute('href'))")
        .await;
    assert_eq!(csv.as_array().map(Vec::len), Some(3), "{csv}");
    // The CSV links download with the session cookie alone.
    let ledger_csv = b
        .js_async(
            "fetch('/api/finance/ledger?format=csv', {credentials: 'same-origin'}).then(async r => done([r.status, r.headers.get('content-type'), await r.text()]))",
        )
        .await;
    assert_eq!(ledger_csv[0], 200, "{ledger_csv}");
    assert!(
        ledger_csv[1].as_str().unwrap_or("").contains("csv"),
        "{ledger_csv}"
    );
    assert!(
        ledger_csv[2].as_str().unwrap_or("").contains("recharge"),
        "{ledger_csv}"
    );
    b.screenshot("finance").await;

    // English.
    b.click("#lang-switch").await;
    b.wait_text("#nav", "Models").await;
    b.wait_text("#ledger-table", "Recharge").await;
    b.screenshot("finance-en").await;
    b.client.refresh().await.unwrap();
    b.wait_text("#nav", "Playground").await;
    b.click("#lang-switch").await;
    b.wait_text("#nav", "模型广场").await;

    // Docs: quick start with this origin, then the OpenAPI reference (or "being generated").
    b.route("#/docs").await;
    b.wait_text("#base-url", &server.url("/llmage/v1")).await;
    b.wait_js(
        "return document.querySelector('#api-reference details.op, #docs-pending')",
        "the API reference",
    )
    .await;
    b.click("#qs-tabs .tab:nth-child(2)").await;
    b.wait_text("#qs-code", "OpenAI(base_url=").await;
    b.wait_text("#qs-code", &server.url("/llmage/v1")).await;
    assert!(!b.text("#qs-code").await.contains("{{BASE_URL}}"));
    // Open the chat operation when the document exists: its request body table.
    let has_doc = b
        .js("return !!document.querySelector('#api-reference details.op')")
        .await;
    if has_doc == Value::Bool(true) {
        b.js("const d = document.querySelector('[id^=op-post][id*=chat-completions]') || document.querySelector('details.op'); d.open = true; d.scrollIntoView(); return true")
            .await;
        b.wait_js(
            "return document.querySelector('details.op[open] .table, details.op[open] .responses')",
            "an operation's details",
        )
        .await;
    }
    b.screenshot("docs").await;

    // Admin.
    assert!(
        b.js("return !document.querySelector('#admin-menu')")
            .await
            .as_bool()
            .unwrap()
    );
    server.admin_ok(&["user", "set-role", "--phone", phone, "--role", "admin"]);
    b.client.refresh().await.unwrap();
    b.wait_for("#admin-menu").await;
    b.screenshot_phone_after_click("nav-menu", "#burger").await;
    b.js("document.querySelector('.topbar').classList.remove('nav-open'); return true")
        .await;
    b.click("#admin-menu .menu-btn").await;
    b.click("#admin-menu a[href='#/admin/users']").await;
    b.wait_text("#users-table", phone).await;
    b.screenshot("admin-users").await;
    // Grant the demo user 5 credits through the dialog.
    let demo_row = format!(
        "[...document.querySelectorAll('#users-table tbody tr')].find(r => r.innerText.includes('{}'))",
        common::demo_phone()
    );
    b.js(&format!(
        "{demo_row}.querySelector('.credits-btn').click(); return true"
    ))
    .await;
    b.fill("#credits-amount", "5").await;
    b.fill("#credits-reason", "浏览器测试").await;
    b.screenshot("admin-credits-dialog").await;
    b.click("#credits-save").await;
    b.wait_text("#toasts", "已调整").await;
    b.js("document.querySelector('#toasts').replaceChildren(); return true")
        .await;
    b.wait_text("#users-table", "1,000,005").await;
    b.route("#/admin/channels").await;
    b.wait_text("#channels-table", "备用通道").await;
    assert!(
        b.text("#channels-table")
            .await
            .contains("wan2.5-t2i-preview")
    );
    b.screenshot("admin-channels").await;
    b.route("#/admin/orders").await;
    b.wait_text("#admin-orders-table", "10.00").await;
    b.screenshot("admin-orders").await;
    b.route("#/admin/redeem").await;
    b.wait_for("#redeem-create-form").await;
    b.fill("#redeem-credits", "500").await;
    b.fill("#redeem-count", "2").await;
    b.fill("#redeem-note", "e2e").await;
    b.click("#redeem-create").await;
    let codes = b.text("#new-codes").await;
    let code = codes.lines().next().unwrap_or_default().trim().to_owned();
    assert!(!code.is_empty(), "{codes}");
    b.screenshot("admin-redeem-codes").await;
    b.click("#codes-dialog .modal-x").await;
    b.wait_for("#redeem-table").await;
    b.screenshot("admin-redeem").await;

    // Redeem one of the codes on the finance page.
    b.route("#/finance").await;
    b.fill("#redeem-code", &code).await;
    b.click("#redeem-btn").await;
    b.wait_text("#redeem-msg", "兑换成功").await;
    b.wait_text("#ledger-table", "兑换码").await;

    // Logout through the user menu.
    b.click("#user-menu .menu-btn").await;
    b.click("#logout").await;
    b.wait_for("#phone").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_readable_messages_never_json() {
    let server = Server::start(Opts::demo()).await;
    let b = Browser::start().await;
    b.goto(&server.url("/")).await;

    // An invalid phone number is refused on the form; no code is requested.
    b.fill("#phone", "12345").await;
    b.click("#send-code").await;
    b.wait_text("#login-error", "手机号").await;
    assert!(!server.log().contains("SMS 12345"));
    b.screenshot("login-bad-phone").await;

    // A wrong code: the server's message, not JSON.
    let phone = "13900003333";
    b.fill("#phone", phone).await;
    b.click("#send-code").await;
    b.wait_text("#login-info", "验证码已发送").await;
    let real = code_from_log(&server, phone);
    let wrong = if real == "000000" { "111111" } else { "000000" };
    b.fill("#code", wrong).await;
    b.click("#login-btn").await;
    let shown = b
        .wait_js(
            "const e = document.querySelector('#login-error .alert'); return e && e.innerText",
            "the wrong-code message",
        )
        .await;
    let shown = shown.as_str().unwrap_or_default();
    assert!(!shown.contains('{') && !shown.trim().is_empty(), "{shown}");
    assert_no_json(&b, "wrong code").await;
    b.screenshot("login-wrong-code").await;
    // In English the English half of the server's message.
    b.click("#lang-switch").await;
    b.wait_text("#login-btn", "Log in").await;
    b.fill("#code", wrong).await;
    b.click("#login-btn").await;
    let shown_en = b
        .wait_js(
            "const e = document.querySelector('#login-error .alert'); return e && e.innerText",
            "the English wrong-code message",
        )
        .await;
    let shown_en = shown_en.as_str().unwrap_or_default();
    assert!(
        !shown_en.is_empty()
            && !shown_en
                .chars()
                .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "{shown_en}"
    );
    b.screenshot("login-wrong-code-en").await;
    b.click("#lang-switch").await;
    b.wait_text("#login-btn", "登录").await;

    // The right code; then a chat without balance says 余额不足 with a link to recharge.
    b.fill("#code", &real).await;
    b.click("#login-btn").await;
    b.wait_for("#balance-chip").await;
    b.route("#/playground?model=qwen3-max&cat=t2t").await;
    b.fill("#chat-prompt", "你好").await;
    b.click("#chat-send").await;
    b.wait_text(".msg-assistant .insufficient", "余额不足")
        .await;
    let link = b
        .js("return document.querySelector('.insufficient a').getAttribute('href')")
        .await;
    assert_eq!(link, Value::String("#/recharge".into()));
    assert_no_json(&b, "insufficient balance").await;
    b.screenshot("playground-insufficient").await;

    // A task without balance: the same message on the form.
    b.route("#/playground?model=wan2.2-t2i-plus&cat=t2i").await;
    b.click("#pg-submit").await;
    b.wait_text("#pg-error", "prompt").await;
    b.fill("#p-prompt", "猫").await;
    b.click("#pg-submit").await;
    b.wait_text("#pg-error .insufficient", "余额不足").await;
    assert_no_json(&b, "task without balance").await;

    // Recharge without Alipay configured: the page says so before anything can be clicked
    // (no form that would only fail), and offers the redemption code; a wrong code is a
    // readable message.
    b.route("#/recharge").await;
    b.wait_text("#recharge-off", "未开通").await;
    assert!(
        b.js("return !document.querySelector('#recharge-form')")
            .await
            .as_bool()
            .unwrap()
    );
    b.fill("#redeem-code", "NO-SUCH-CODE").await;
    b.click("#redeem-btn").await;
    let shown = b
        .wait_js(
            "const e = document.querySelector('#redeem-msg .alert'); return e && e.innerText",
            "the wrong-code message",
        )
        .await;
    assert!(!shown.as_str().unwrap_or("{").contains('{'), "{shown}");
    assert_no_json(&b, "recharge without alipay").await;
    b.screenshot("recharge-unavailable").await;

    // An unknown model page and an unknown route are friendly.
    b.route("#/model?id=no-such-model").await;
    b.wait_text(".alert-error", "no-such-model").await;
    b.route("#/nowhere").await;
    b.wait_text("#main", "页面不存在").await;
    b.close().await;
}
