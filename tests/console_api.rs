//! The console platform's HTTP side (issue 18), on SQLite and PostgreSQL: request ids on every
//! answer and in task objects, the call log (`GET /api/calls`, `GET /llmage/v1/calls` with a
//! key's own rows only; filters, cursor, CSV), key governance (edit, disable, remove, monthly
//! spend limit for chat and tasks), error codes on `/api/*` only, the recharge order's WAP URL
//! and cancel, the low-balance threshold, and the console's assets (compressed, immutable by
//! content hash, admin script not on the page).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::time::Duration;

use common::console::{self, login};
use common::mock_alipay::{self, Mode, server_with_alipay};
use common::{Opts, Server, eventually};
use serde_json::{Value, json};

async fn get(http: &reqwest::Client, server: &Server, path: &str) -> (u16, Value) {
    let resp = http.get(server.url(path)).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn send(
    http: &reqwest::Client,
    server: &Server,
    method: reqwest::Method,
    path: &str,
    csrf: &str,
    body: Value,
) -> (u16, Value) {
    let resp = http
        .request(method, server.url(path))
        .header("X-CSRF-Token", csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// POST with a key; (status, X-Request-Id, body).
async fn call(server: &Server, key: &str, path: &str, body: &Value) -> (u16, String, Value) {
    let resp = reqwest::Client::new()
        .post(server.url(path))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let id = resp
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, id, resp.json().await.unwrap_or(Value::Null))
}

fn chat() -> Value {
    json!({"model": "qwen3-max", "messages": [{"role": "user", "content": "你好"}], "max_tokens": 50})
}

#[tokio::test]
async fn the_call_log_lists_each_call_with_its_request_id() {
    let server = Server::start(Opts::demo()).await;
    let phone = "13900008881";
    let first = server.user(phone, 100_000);
    let (http, csrf) = login(&server, phone).await;
    let (status, second) = console::post(
        &http,
        &server,
        "/api/keys",
        json!({"name": "第二"}),
        Some(&csrf),
    )
    .await;
    assert_eq!(status, 201, "{second}");
    let second_key = second["key"].as_str().unwrap().to_owned();
    let other = server.user("13900008882", 100_000);

    let (s, chat_id, answer) = call(&server, &first, "/llmage/v1/chat/completions", &chat()).await;
    assert_eq!(s, 200, "{answer}");
    assert!(
        chat_id.starts_with("chatcmpl-") && chat_id.len() == 33,
        "{chat_id}"
    );
    let (s, image_id, created) = call(
        &server,
        &second_key,
        "/llmage/v1/image/generations",
        &json!({"model": "wan2.2-t2i-plus", "catelogid": "t2i", "prompt": "猫"}),
    )
    .await;
    assert_eq!(s, 200, "{created}");
    let taskid = created["taskid"].as_str().unwrap().to_owned();
    let task = server
        .finish_task(&second_key, &taskid, Duration::from_secs(30))
        .await;
    assert_eq!(task["request_id"], json!(image_id), "{task}");
    // Another user's call never shows.
    let (s, _, _) = call(&server, &other, "/llmage/v1/chat/completions", &chat()).await;
    assert_eq!(s, 200);
    // Errors and GETs carry an id too.
    let resp = reqwest::get(server.url("/llmage/v1/models")).await.unwrap();
    assert!(resp.headers().contains_key("x-request-id"));

    // The chat row is recorded with its settlement (just after the answer).
    let log = poll(&http, &server, "/api/calls", |v| {
        v["data"].as_array().is_some_and(|d| d.len() == 2)
    })
    .await;
    let rows = log["data"].as_array().unwrap();
    let image = &rows[0];
    assert_eq!(image["request_id"], json!(image_id), "{log}");
    assert_eq!(image["kind"], "image");
    assert_eq!(image["task_id"], json!(taskid));
    assert_eq!(image["credits"], task["usage"]["credits"]);
    assert_eq!(image["status"], "SUCCEEDED");
    assert_eq!(image["key_name"], "第二");
    let chat_row = &rows[1];
    assert_eq!(chat_row["request_id"], json!(chat_id));
    assert_eq!(chat_row["kind"], "chat");
    assert_eq!(chat_row["model"], "qwen3-max");
    assert_eq!(chat_row["credits"], answer["usage"]["credits"]);
    assert_eq!(chat_row["prompt_tokens"], answer["usage"]["prompt_tokens"]);
    assert!(chat_row["latency_ms"].as_i64().is_some());

    // Filters, one page at a time, CSV.
    let (_, chats) = get(&http, &server, "/api/calls?kind=chat").await;
    assert_eq!(chats["data"].as_array().unwrap().len(), 1);
    let (_, by_model) = get(&http, &server, "/api/calls?model=wan2.2-t2i-plus").await;
    assert_eq!(by_model["data"][0]["request_id"], json!(image_id));
    let (_, by_id) = get(&http, &server, &format!("/api/calls?request_id={chat_id}")).await;
    assert_eq!(by_id["data"].as_array().unwrap().len(), 1);
    let (_, page1) = get(&http, &server, "/api/calls?limit=1").await;
    let cursor = page1["next_cursor"].as_str().unwrap().to_owned();
    let (_, page2) = get(
        &http,
        &server,
        &format!("/api/calls?limit=1&cursor={cursor}"),
    )
    .await;
    assert_eq!(page2["data"][0]["request_id"], json!(chat_id), "{page2}");
    assert_eq!(page2["next_cursor"], Value::Null);
    let future = chrono_like_now() + 3600;
    let (_, none) = get(&http, &server, &format!("/api/calls?from={future}")).await;
    assert_eq!(none["data"], json!([]));
    let (s, bad) = get(&http, &server, "/api/calls?kind=audio").await;
    assert_eq!((s, bad["code"].as_str()), (400, Some("invalid_parameter")));
    let csv = http
        .get(server.url("/api/calls?format=csv"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.contains("request_id,created_at,kind,model"), "{csv}");
    assert!(csv.contains(&chat_id) && csv.contains(&taskid), "{csv}");

    // A key sees its own calls only.
    let (s, own) = server.get_json("/llmage/v1/calls", Some(&first)).await;
    assert_eq!(s, 200, "{own}");
    let own = own["data"].as_array().unwrap().clone();
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(own[0]["request_id"], json!(chat_id));
    let (_, theirs) = server.get_json("/llmage/v1/calls", Some(&second_key)).await;
    assert_eq!(theirs["data"][0]["request_id"], json!(image_id));
    assert_eq!(theirs["data"].as_array().unwrap().len(), 1);
    // Asking for another key's rows by key_id does not widen a key's view.
    let first_id = rows[1]["key_id"].as_i64().unwrap();
    let (_, still) = server
        .get_json(
            &format!("/llmage/v1/calls?key_id={first_id}"),
            Some(&second_key),
        )
        .await;
    assert_eq!(still["data"].as_array().unwrap().len(), 1);
    assert_eq!(still["data"][0]["request_id"], json!(image_id));
}

/// GET `path` until `done` holds (or panic after 10 s); the last answer.
async fn poll(
    http: &reqwest::Client,
    server: &Server,
    path: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, v) = get(http, server, path).await;
        if done(&v) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "{path}: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn chrono_like_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn keys_are_edited_disabled_removed_and_held_to_a_monthly_limit() {
    let server = Server::start(Opts::demo()).await;
    let phone = "13900008883";
    server.user(phone, 100_000);
    let (http, csrf) = login(&server, phone).await;
    let (_, created) = console::post(
        &http,
        &server,
        "/api/keys",
        json!({"name": "限额", "monthly_limit": 30}),
        Some(&csrf),
    )
    .await;
    assert_eq!(created["monthly_limit"], 30, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_i64().unwrap();
    let image = json!({"model": "wan2.2-t2i-plus", "catelogid": "t2i", "prompt": "猫"});

    // 20 credits per image: the first fits under 30, the second would pass it.
    let (s, _, first) = call(&server, &key, "/llmage/v1/image/generations", &image).await;
    assert_eq!(s, 200, "{first}");
    let (s, _, refused) = call(&server, &key, "/llmage/v1/image/generations", &image).await;
    assert_eq!(s, 429, "{refused}");
    let message = refused["error"].as_str().unwrap();
    assert!(
        message.contains("上限") && message.contains("limit"),
        "{message}"
    );
    assert!(
        refused.get("code").is_none(),
        "the gateway's body is the seed's: {refused}"
    );
    // Chat: its hold (max_tokens 50 → a few credits) passes 30 - 20 only when it is larger.
    let big = json!({"model": "qwen3-max", "messages": [{"role": "user", "content": "你好"}]});
    let (s, _, refused_chat) = call(&server, &key, "/llmage/v1/chat/completions", &big).await;
    assert_eq!(s, 429, "{refused_chat}");
    let (s, _, small) = call(&server, &key, "/llmage/v1/chat/completions", &chat()).await;
    assert_eq!(s, 200, "{small}");

    // The list: spend this month, last use, the limit.
    let (_, list) = get(&http, &server, "/api/keys").await;
    let listed = &list["data"][0];
    assert_eq!(listed["monthly_limit"], 30);
    assert!(listed["month_spent"].as_f64().unwrap() >= 20.0, "{listed}");
    assert!(listed["last_used_at"].as_i64().is_some(), "{listed}");

    // Edit: name, lift the limit, restrict the models; then disable and enable.
    let path = format!("/api/keys/{id}");
    let (s, edited) = send(
        &http,
        &server,
        reqwest::Method::PATCH,
        &path,
        &csrf,
        json!({"name": "改名", "monthly_limit": null, "models": ["qwen3-max"]}),
    )
    .await;
    assert_eq!(s, 200, "{edited}");
    assert_eq!(edited["name"], "改名");
    assert_eq!(edited["monthly_limit"], Value::Null);
    assert_eq!(edited["models"], json!(["qwen3-max"]));
    let (s, _, _) = call(&server, &key, "/llmage/v1/chat/completions", &big).await;
    assert_eq!(s, 200, "no limit any more");
    let (s, forbidden, _) = call(&server, &key, "/llmage/v1/image/generations", &image).await;
    assert_eq!(s, 403, "{forbidden}");
    let (s, _) = send(
        &http,
        &server,
        reqwest::Method::PATCH,
        &path,
        &csrf,
        json!({"disabled": true}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        server.get_json("/llmage/v1/balance", Some(&key)).await.0,
        401
    );
    let (s, _) = send(
        &http,
        &server,
        reqwest::Method::PATCH,
        &path,
        &csrf,
        json!({"disabled": false}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        server.get_json("/llmage/v1/balance", Some(&key)).await.0,
        200
    );
    let (s, bad) = send(
        &http,
        &server,
        reqwest::Method::PATCH,
        &path,
        &csrf,
        json!({"monthly_limit": 0}),
    )
    .await;
    assert_eq!(
        (s, bad["code"].as_str()),
        (400, Some("invalid_parameter")),
        "{bad}"
    );

    // Removing needs a revoked key; a revoked key cannot be edited.
    let remove = format!("/api/keys/{id}/remove");
    let (s, _) = send(
        &http,
        &server,
        reqwest::Method::POST,
        &remove,
        &csrf,
        json!({}),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = send(
        &http,
        &server,
        reqwest::Method::DELETE,
        &path,
        &csrf,
        json!({}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = send(
        &http,
        &server,
        reqwest::Method::PATCH,
        &path,
        &csrf,
        json!({"disabled": false}),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = send(
        &http,
        &server,
        reqwest::Method::POST,
        &remove,
        &csrf,
        json!({}),
    )
    .await;
    assert_eq!(s, 200);
    let (_, list) = get(&http, &server, "/api/keys").await;
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["id"] != id),
        "{list}"
    );
    // Its calls stay in the log.
    let (_, log) = get(&http, &server, "/api/calls").await;
    assert!(log["data"].as_array().unwrap().len() >= 3, "{log}");

    // Another user's key is not found.
    let (http2, csrf2) = login(&server, "13900008884").await;
    let (s, nf) = send(
        &http2,
        &server,
        reqwest::Method::PATCH,
        &path,
        &csrf2,
        json!({"name": "x"}),
    )
    .await;
    assert_eq!((s, nf["code"].as_str()), (404, Some("not_found")), "{nf}");
}

#[tokio::test]
async fn console_errors_carry_codes_and_the_gateway_keeps_the_seed_shape() {
    let server = Server::start(Opts::demo()).await;
    let (http, csrf) = login(&server, "13900008885").await;
    let (s, body) = console::post(&http, &server, "/api/keys", json!({}), Some(&csrf)).await;
    assert_eq!(s, 400);
    assert_eq!(body["code"], "missing_parameter", "{body}");
    assert_eq!(body["detail"], "name", "{body}");
    let (s, body) = get(&reqwest::Client::new(), &server, "/api/me").await;
    assert_eq!(
        (s, body["code"].as_str()),
        (401, Some("login_required")),
        "{body}"
    );
    // The gateway with a key: exactly the seed's body.
    let (s, body) = server
        .post_json(
            "/llmage/v1/chat/completions",
            Some("sk-nope-nope-nope-nope-nope"),
            &chat(),
        )
        .await;
    assert_eq!((s, body), (401, json!({"error": "Invalid API Key"})));
    // The console's session on the gateway: the code, for translation.
    let resp = http
        .post(server.url("/llmage/v1/chat/completions"))
        .header("X-CSRF-Token", &csrf)
        .json(&chat())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "insufficient_quota", "{body}");

    // The low-balance threshold round trip.
    let (s, set) = send(
        &http,
        &server,
        reqwest::Method::PUT,
        "/api/me/low-balance",
        &csrf,
        json!({"threshold": 500}),
    )
    .await;
    assert_eq!((s, set["threshold"].as_i64()), (200, Some(500)));
    let (_, me) = get(&http, &server, "/api/me").await;
    assert_eq!(me["low_balance"], 500);
    let (s, _) = send(
        &http,
        &server,
        reqwest::Method::PUT,
        "/api/me/low-balance",
        &csrf,
        json!({"threshold": -1}),
    )
    .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn console_assets_are_compressed_and_immutable_by_content_hash() {
    let server = Server::start(Opts::demo()).await;
    let http = reqwest::Client::builder().build().unwrap();
    let page = http
        .get(server.url("/"))
        .header("Accept-Encoding", "identity")
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()["cache-control"], "no-cache");
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("<script src=\"/assets/pages-admin.js"),
        "admin code is not on the page"
    );
    let links: Vec<String> = html
        .split('"')
        .filter(|s| s.starts_with("/assets/") && s.contains("?h="))
        .map(str::to_owned)
        .collect();
    assert!(links.len() >= 6, "{html}");
    let mut compressed_total = 0usize;
    for link in &links {
        let resp = http
            .get(server.url(link))
            .header("Accept-Encoding", "br, gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{link}");
        assert_eq!(
            resp.headers()["cache-control"],
            "public, max-age=31536000, immutable",
            "{link}"
        );
        if !link.contains("pages-admin") {
            let encoding = resp.headers()["content-encoding"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(encoding == "br" || encoding == "gzip", "{link}: {encoding}");
            compressed_total += resp.bytes().await.unwrap().len();
        }
    }
    // The first load: the page plus every asset it names, compressed.
    let page_br = http
        .get(server.url("/"))
        .header("Accept-Encoding", "br, gzip")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len();
    let first_load = compressed_total + page_br;
    println!(
        "first console load: {first_load} bytes compressed ({} assets)",
        links.len()
    );
    assert!(first_load < 80 * 1024, "first load {first_load} bytes");
    // A stale hash is revalidated, not cached for a year.
    let stale = http
        .get(server.url("/assets/core.js?h=0000"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.headers()["cache-control"], "no-cache");
}

#[tokio::test]
async fn a_recharge_order_has_a_wap_url_and_can_be_cancelled() {
    let mock = mock_alipay::start(Mode::Normal).await;
    let server = server_with_alipay(&mock, &[]).await;
    let (http, csrf) = login(&server, "13900008886").await;
    let (s, order) = console::post(
        &http,
        &server,
        "/api/recharge/alipay",
        json!({"amount": "10.00"}),
        Some(&csrf),
    )
    .await;
    assert_eq!(s, 201, "{order}");
    let wap = order["wap_pay_url"].as_str().unwrap();
    let page = order["pay_url"].as_str().unwrap();
    assert!(
        wap.starts_with(&mock.gateway_url) && wap.contains("method=alipay.trade.wap.pay"),
        "{wap}"
    );
    assert!(
        wap.contains("QUICK_WAP_WAY") && wap.contains("sign="),
        "{wap}"
    );
    assert!(page.contains("method=alipay.trade.page.pay"), "{page}");
    let id = order["order_id"].as_str().unwrap();
    let (s, cancelled) = console::post(
        &http,
        &server,
        &format!("/api/recharge/orders/{id}/cancel"),
        json!({}),
        Some(&csrf),
    )
    .await;
    assert_eq!(s, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "FAILED");
    assert_eq!(cancelled["failure"], "cancelled");
    assert!(cancelled.get("wap_pay_url").is_none());
    let (s, _) = console::post(
        &http,
        &server,
        &format!("/api/recharge/orders/{id}/cancel"),
        json!({}),
        Some(&csrf),
    )
    .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn every_seed_model_is_charged_what_it_was_quoted() {
    use base64::Engine;
    let server = Server::start(Opts::demo()).await;
    let phone = "13900008887";
    let key = server.user(phone, 10_000_000);
    let (http, _csrf) = login(&server, phone).await;
    let catalog = llmage::catalog::Catalog::builtin().unwrap();
    let picture = format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(common::jpeg("q", 64))
    );
    let mut checked = 0;
    for model in catalog.models() {
        for category in &model.categories {
            if category.id == "t2t" {
                continue;
            }
            let mut body =
                json!({"model": model.id, "catelogid": category.id, "prompt": "海边日落"});
            let mut full = body.clone();
            for p in &category.params {
                if p.required && p.accept.is_some() {
                    full[&p.name] = if matches!(p.kind, llmage::catalog::ParamType::Files) {
                        json!([picture])
                    } else {
                        json!(picture)
                    };
                }
            }
            // A non-default duration where the table has one, so the price is not the default's.
            if let Some(d) = category.params.iter().find(|p| p.name == "duration")
                && let Some(min) = d.min
            {
                body["duration"] = json!(min);
                full["duration"] = json!(min);
            }
            let (s, quote) = server
                .post_json("/llmage/v1/quote", Some(&key), &body)
                .await;
            assert_eq!(s, 200, "{} {}: {quote}", model.id, category.id);
            let path = if category.id == "t2i" {
                "/llmage/v1/image/generations"
            } else {
                "/llmage/v1/video/generations"
            };
            let (s, id, created) = call(&server, &key, path, &full).await;
            assert_eq!(s, 200, "{} {}: {created}", model.id, category.id);
            // What the task holds is what the engine settles (tasks.credits); the log shows it.
            let (_, row) = get(&http, &server, &format!("/api/calls?request_id={id}")).await;
            assert_eq!(
                row["data"][0]["credits"], quote["credits"],
                "{} {}: {row} vs {quote}",
                model.id, category.id
            );
            assert_eq!(
                quote["yuan"],
                json!(format!(
                    "{:.2}",
                    quote["credits"].as_i64().unwrap() as f64 / 100.0
                ))
            );
            if category.id == "t2i" {
                let taskid = created["taskid"].as_str().unwrap();
                let task = server
                    .finish_task(&key, taskid, Duration::from_secs(60))
                    .await;
                assert_eq!(task["usage"]["credits"], quote["credits"], "{task}");
                assert!(
                    task["thumbnail"]
                        .as_str()
                        .is_some_and(|u| u.contains("/idfile")),
                    "{task}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 20, "every image and video table");

    // Chat: the quote is the hold the call reserves.
    let body = json!({"model": "qwen3-max", "messages": [{"role": "user", "content": "你好"}], "max_tokens": 300});
    let (s, quote) = server
        .post_json("/llmage/v1/quote", Some(&key), &body)
        .await;
    assert_eq!(s, 200, "{quote}");
    assert_eq!(quote["breakdown"]["kind"], "chat");
    assert_eq!(quote["breakdown"]["output_per_million"], 2400);
    let (s, _, _) = call(&server, &key, "/llmage/v1/chat/completions", &body).await;
    assert_eq!(s, 200);
    // The hold the call took (the finance view shows the call as one line; the hold itself is
    // on its usage row, in units of 1/10,000 credit).
    let db = server.db().await;
    let held: i64 = sqlx::query_scalar(
        "SELECT held FROM chat_usage WHERE model = 'qwen3-max' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(db.reader())
    .await
    .unwrap();
    let quoted = (quote["credits"].as_f64().unwrap() * 10_000.0).round() as i64;
    assert_eq!(held, quoted, "{quote}");
}

/// The opt-in low-balance SMS: one per downward crossing through the configured sender (the log
/// sender here), none for a user who did not opt in, again after the balance came back above,
/// and never anything but the balance and the threshold.
#[tokio::test]
async fn the_low_balance_sms_goes_out_once_per_crossing_and_only_when_asked_for() {
    let server = Server::start(Opts::demo()).await;
    let (opted, silent, marker) = ("13900008871", "13900008872", "13900008873");
    let mut keys = Vec::new();
    for phone in [opted, silent, marker] {
        keys.push(server.user(phone, 100));
        let (http, csrf) = login(&server, phone).await;
        let (s, set) = send(
            &http,
            &server,
            reqwest::Method::PUT,
            "/api/me/low-balance",
            &csrf,
            json!({"threshold": 50, "sms": phone != silent}),
        )
        .await;
        assert_eq!((s, set["sms"] == (phone != silent)), (200, true), "{set}");
        let (_, me) = get(&http, &server, "/api/me").await;
        assert_eq!(me["low_balance_sms"], phone != silent, "{me}");
    }
    let take = |phone: &str, amount: i64| {
        server.admin_ok(&[
            "credits",
            "add",
            "--phone",
            phone,
            "--amount",
            &amount.to_string(),
            "--reason",
            "test",
        ]);
    };
    let notices = |phone: &str| {
        server
            .log()
            .matches(&format!("SMS-NOTICE {phone} "))
            .count()
    };
    let wait_notices = |phone: &'static str, n: usize| {
        let server = &server;
        async move {
            eventually(
                Duration::from_secs(15),
                &format!("{n} low-balance SMS to {phone}"),
                || {
                    let found = server
                        .log()
                        .matches(&format!("SMS-NOTICE {phone} "))
                        .count();
                    async move { found == n }
                },
            )
            .await;
        }
    };
    // Down across the threshold: one SMS to the user who asked, with the amounts in it.
    take(opted, -60);
    take(silent, -60);
    wait_notices(opted, 1).await;
    // Further down: no second one. The marker's SMS shows a whole sweep ran after these changes.
    take(opted, -10);
    take(marker, -60);
    wait_notices(marker, 1).await;
    assert_eq!((notices(opted), notices(silent)), (1, 0));
    // Back above, then down again: a new crossing, a new SMS.
    take(opted, 100);
    let rearmed = format!(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM users WHERE phone = '{opted}' AND low_balance_alerted = 0"
    );
    eventually(Duration::from_secs(15), "the alert re-armed", || {
        let server = &server;
        let sql = rearmed.clone();
        async move { server.count(&sql).await == 1 }
    })
    .await;
    take(opted, -100);
    wait_notices(opted, 2).await;
    let log = server.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("SMS-NOTICE")).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for line in &lines {
        assert!(line.contains("50 积分"), "{line}");
        for key in &keys {
            assert!(!line.contains(key.as_str()), "a key in an SMS: {line}");
        }
        assert!(!line.contains("sk-"), "{line}");
    }
    assert!(lines[0].contains("余额 40 积分"), "{}", lines[0]);
}
