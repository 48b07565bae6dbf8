//! Against `serve --demo`: the seed's `/models` and `/chat/completions` requests sent with curl
//! exactly as the document writes them (only the host differs), the seed's error bodies, and the
//! official OpenAI Python SDK.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::process::Command;

use common::{DEMO_KEY, Opts, Server, sse_data};
use serde_json::{Value, json};

/// All models the seed names.
const SEED_MODELS: [&str; 15] = [
    "qwen3-max",
    "wan2.2-t2i-plus",
    "wan2.5-t2i-preview",
    "wan2.2-t2i-flash",
    "cogview-3-flash",
    "happyhorse-1.0-t2v",
    "happyhorse-1.0-i2v",
    "happyhorse-1.0-r2v",
    "doubao-seedance-2-0-260128",
    "doubao-seedance-2-0-fast-260128",
    "dreamina-seedance-2-0-260128",
    "doubao-seedance-1-5-pro-251215",
    "wan2.6-t2v",
    "wan2.6-r2v",
    "viduq3-pro",
];

fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .arg("-sS")
        .arg("-w")
        .arg("\n%{http_code}")
        .args(args)
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_owned())
}

#[tokio::test]
async fn seed_models_curls_work() {
    let server = Server::start(Opts::demo()).await;
    let auth = format!("Authorization: Bearer {DEMO_KEY}");
    let (code, body) = curl(&[
        "-X",
        "GET",
        &server.url("/llmage/v1/models"),
        "-H",
        "Content-Type: application/json",
        "-H",
        &auth,
    ]);
    assert_eq!(code, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    for m in SEED_MODELS {
        assert!(ids.contains(&m), "{m} missing from /models");
    }
    let vidu = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "viduq3-pro")
        .unwrap();
    assert_eq!(vidu["object"], "model");
    assert_eq!(vidu["catelogid"], json!(["t2v", "i2v"]));
    let duration = vidu["parameters"]["t2v"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "duration")
        .unwrap();
    assert_eq!(
        (
            duration["min"].as_i64(),
            duration["max"].as_i64(),
            duration["default"].as_i64()
        ),
        (Some(1), Some(16), Some(10))
    );

    // The seed's optional filter, as a query parameter.
    let (code, body) = curl(&[
        "-X",
        "GET",
        &server.url("/llmage/v1/models?catelogid=t2v"),
        "-H",
        "Content-Type: application/json",
        "-H",
        &auth,
    ]);
    assert_eq!(code, 200);
    let list: Value = serde_json::from_str(&body).unwrap();
    let t2v: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(t2v.len(), 7, "{t2v:?}");
    assert!(
        t2v.contains(&"wan2.6-t2v") && !t2v.contains(&"qwen3-max") && !t2v.contains(&"wan2.6-r2v")
    );
    let (_, body) = curl(&[
        "-G",
        &server.url("/llmage/v1/models"),
        "--data-urlencode",
        "catelogid=ref2v",
        "-H",
        &auth,
    ]);
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 3);

    let (code, body) = curl(&[&server.url("/llmage/v1/models?catelogid=t9x"), "-H", &auth]);
    assert_eq!(code, 400);
    assert!(body.contains("catelogid"), "{body}");
    let (code, body) = curl(&[&server.url("/llmage/v1/models")]);
    assert_eq!(
        (code, body.as_str()),
        (401, r#"{"error":"Invalid API Key"}"#)
    );
}

#[tokio::test]
async fn seed_chat_curls_work_streaming_and_not() {
    let server = Server::start(Opts::demo()).await;
    let auth = format!("Authorization: Bearer {DEMO_KEY}");
    let url = server.url("/llmage/v1/chat/completions");
    // The seed's data block, non-streaming.
    let data = r#"{"model": "qwen3-max", "catelogid": "t2t", "prompt": "你的问题", "sys_prompt": "", "stream": false}"#;
    let (code, body) = curl(&[
        "-X",
        "POST",
        &url,
        "-H",
        "Content-Type: application/json",
        "-H",
        &auth,
        "-d",
        data,
    ]);
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "qwen3-max");
    assert_eq!(v["finish"], "1");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    let content = v["content"].as_str().unwrap();
    assert!(content.contains("你的问题"), "{content}");
    assert_eq!(v["choices"][0]["message"]["content"], content);
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    // Key order follows the seed's example: id first.
    assert!(body.starts_with(r#"{"id":"#), "{body}");

    // The same, streaming ("stream": true), read with curl -N.
    let data = r#"{"model": "qwen3-max", "catelogid": "t2t", "prompt": "你的问题", "sys_prompt": "", "stream": true}"#;
    let (code, body) = curl(&[
        "-N",
        "-X",
        "POST",
        &url,
        "-H",
        "Content-Type: application/json",
        "-H",
        &auth,
        "-d",
        data,
    ]);
    assert_eq!(code, 200);
    let events = sse_data(&body);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(chunks.len() > 5);
    let first = &chunks[0];
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(
        (first["content"].as_str(), first["finish"].as_str()),
        (Some(""), Some("0"))
    );
    assert!(
        first["reasoning_content"].is_null()
            && first["created"].is_u64()
            && first["model"] == "qwen3-max"
    );
    let streamed: String = chunks
        .iter()
        .map(|c| c["content"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, content, "stream and non-stream answers agree");
    assert_eq!(chunks.last().unwrap()["finish"], "1");
    assert!(
        chunks
            .iter()
            .all(|c| c.get("usage").is_none_or(Value::is_null)),
        "no usage chunk unless asked"
    );

    // Without sys_prompt / catelogid (both optional), and with stream_options usage.
    let (status, v) = server
        .post_json(
            "/llmage/v1/chat/completions",
            Some(DEMO_KEY),
            &json!({"model":"qwen3-max","prompt":"1+1","stream":true,"stream_options":{"include_usage":true}}),
        )
        .await;
    assert_eq!(status, 200);
    let events = sse_data(v.as_str().unwrap());
    let usage: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    // A fraction of a credit: the tokens at list price.
    assert!(usage["usage"]["credits"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn seed_error_bodies() {
    let server = Server::start(Opts::demo()).await;
    let chat = "/llmage/v1/chat/completions";
    let ok = json!({"model":"qwen3-max","prompt":"hi"});
    let invalid = json!({"error": "Invalid API Key"});
    assert_eq!(
        server.post_json(chat, None, &ok).await,
        (401, invalid.clone())
    );
    assert_eq!(
        server
            .post_json(chat, Some("sk-not-a-real-key-000000000000"), &ok)
            .await,
        (401, invalid.clone())
    );
    assert_eq!(
        server.post_json(chat, Some("garbage"), &ok).await,
        (401, invalid.clone())
    );
    let resp = server
        .http
        .post(server.url(chat))
        .header("Authorization", DEMO_KEY)
        .json(&ok)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        401,
        "a key without the Bearer scheme is refused"
    );

    let (s, v) = server
        .post_json(
            chat,
            Some(DEMO_KEY),
            &json!({"model":"qwen3-max","catelogid":"t2t"}),
        )
        .await;
    assert_eq!(
        (s, v),
        (400, json!({"error": "Missing required parameter: prompt"}))
    );
    let (s, v) = server
        .post_json(
            chat,
            Some(DEMO_KEY),
            &json!({"model":"gpt-9","prompt":"hi"}),
        )
        .await;
    assert_eq!((s, v), (404, json!({"error": "Model not found: gpt-9"})));
    let (s, v) = server
        .post_json(
            chat,
            Some(DEMO_KEY),
            &json!({"model":"wan2.6-t2v","prompt":"hi"}),
        )
        .await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("t2t"), "{v}");

    let resp = server
        .http
        .post(server.url(chat))
        .bearer_auth(DEMO_KEY)
        .body("{\"model\": \"qwen3-max\", \"prompt\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("Invalid JSON body"),
        "{v}"
    );

    // Default limit: 16 MiB (curl reads the early 413 while it uploads).
    let big = format!(
        "{{\"model\":\"qwen3-max\",\"prompt\":\"{}\"}}",
        "a".repeat(17 * 1024 * 1024)
    );
    let file = server.data_dir.path().join("big.json");
    std::fs::write(&file, big).unwrap();
    let auth = format!("Authorization: Bearer {DEMO_KEY}");
    let (code, body) = curl(&[
        "-X",
        "POST",
        &server.url(chat),
        "-H",
        &auth,
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &format!("@{}", file.display()),
    ]);
    assert_eq!(code, 413, "{body}");
    assert_eq!(
        body,
        r#"{"error":"Request body too large (limit 16777216 bytes)"}"#
    );
    // Just under the limit is accepted by the body reader (and answered).
    let fine = format!(
        "{{\"model\":\"qwen3-max\",\"prompt\":\"{}\"}}",
        "a".repeat(1024 * 1024)
    );
    let resp = server
        .http
        .post(server.url(chat))
        .bearer_auth(DEMO_KEY)
        .body(fine)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let resp = server
        .http
        .get(server.url("/nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.json::<Value>().await.unwrap()["error"].is_string());
    let resp = server.http.get(server.url(chat)).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert!(resp.json::<Value>().await.unwrap()["error"].is_string());
    assert!(
        server.log().contains("panicked").then_some(()).is_none(),
        "no panic in the log"
    );
}

#[tokio::test]
async fn body_limit_is_configurable() {
    let opts = Opts {
        env: vec![("LLMAGE_MAX_BODY_BYTES".into(), "4096".into())],
        ..Opts::demo()
    };
    let server = Server::start(opts).await;
    let big = json!({"model":"qwen3-max","prompt":"x".repeat(5000)});
    let (s, v) = server
        .post_json("/llmage/v1/chat/completions", Some(DEMO_KEY), &big)
        .await;
    assert_eq!(s, 413, "{v}");
    assert_eq!(
        v,
        json!({"error": "Request body too large (limit 4096 bytes)"})
    );
}

#[tokio::test]
async fn revoked_and_expired_keys_are_refused() {
    let server = Server::start(Opts::demo()).await;
    let key = server.user("13900000001", 10_000);
    let ok = json!({"model":"qwen3-max","prompt":"hi"});
    assert_eq!(
        server
            .post_json("/llmage/v1/chat/completions", Some(&key), &ok)
            .await
            .0,
        200
    );
    let list = server.admin_ok(&["key", "list", "--phone", "13900000001"]);
    assert!(!list.contains(&key), "keys are listed masked");
    let id = list
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    server.admin_ok(&["key", "revoke", &id]);
    common::eventually(
        std::time::Duration::from_secs(3),
        "revoked key refused",
        || async {
            server
                .post_json("/llmage/v1/chat/completions", Some(&key), &ok)
                .await
                .0
                == 401
        },
    )
    .await;

    let key2 = server.user("13900000002", 10_000);
    assert_eq!(
        server
            .post_json("/llmage/v1/chat/completions", Some(&key2), &ok)
            .await
            .0,
        200
    );
    let db = server.db().await;
    sqlx::query("UPDATE api_keys SET expires_at = $1 WHERE key_hash = $2")
        .bind(llmage::util::clock::now_ms() - 1)
        .bind(llmage::accounts::keys::hash(&key2))
        .execute(db.writer())
        .await
        .unwrap();
    common::eventually(
        std::time::Duration::from_secs(3),
        "expired key refused",
        || async {
            server
                .post_json("/llmage/v1/chat/completions", Some(&key2), &ok)
                .await
                .0
                == 401
        },
    )
    .await;
    assert!(!server.log().contains(&key2), "keys never reach the log");
    assert!(!server.log().contains(DEMO_KEY), "keys never reach the log");
}

#[tokio::test]
async fn openai_python_sdk_works() {
    let check = Command::new("python3")
        .args(["-c", "import openai"])
        .output()
        .expect("python3 is needed for this test");
    assert!(
        check.status.success(),
        "the OpenAI SDK is missing: run `pip install openai` (the test script does)"
    );
    let server = Server::start(Opts::demo()).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/openai_sdk.py");
    let out = Command::new("python3")
        .arg(script)
        .env("LLMAGE_BASE_URL", &server.base)
        .env("LLMAGE_API_KEY", DEMO_KEY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "SDK script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("openai sdk: ok"));
}

#[tokio::test]
async fn healthz_and_graceful_shutdown_finishes_streams() {
    let opts = Opts {
        env: vec![("LLMAGE_SANDBOX__CHAT_CHUNK_DELAY_MS".into(), "20".into())],
        ..Opts::demo()
    };
    let mut server = Server::start(opts).await;
    let (s, v) = server.get_json("/healthz", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(v["channels"]["synced"], true, "{v}");
    assert!(v["channels"]["generation"].as_u64() >= Some(1), "{v}");
    assert_eq!(
        v.as_object().unwrap().len(),
        2,
        "nothing else on a public page: {v}"
    );
    assert_eq!(v["channels"].as_object().unwrap().len(), 2, "{v}");
    let resp = server
        .http
        .post(server.url("/llmage/v1/chat/completions"))
        .bearer_auth(DEMO_KEY)
        .json(&json!({"model":"qwen3-max","prompt":"请详细解释一下 Rust 的所有权","stream":true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let status = tokio::task::spawn_blocking(move || {
        // The scenario, not a wait for state: the 200 says the stream is open; SIGTERM lands a
        // few 20 ms chunks into it, while the client is still reading.
        std::thread::sleep(std::time::Duration::from_millis(100));
        let status = server.terminate();
        (status, server)
    });
    let body = resp.text().await.unwrap();
    let (status, server) = status.await.unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let events = sse_data(&body);
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "the in-flight stream finished"
    );
    assert!(server.log().contains("llmage stopped"));
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let mut opts = Opts::demo();
    opts.env = vec![
        ("LLMAGE_LIMITS__PER_KEY_PER_SEC".into(), "1".into()),
        ("LLMAGE_LIMITS__PER_KEY_BURST".into(), "3".into()),
        (
            "LLMAGE_LIMITS__AUTH_FAILURES_PER_IP_PER_MINUTE".into(),
            "5".into(),
        ),
    ];
    let server = Server::start(opts).await;
    let models = server.url("/llmage/v1/models");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let resp = server
            .http
            .get(&models)
            .bearer_auth(DEMO_KEY)
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            let wait: u64 = resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=2).contains(&wait), "{wait}");
            let body: Value = resp.json().await.unwrap();
            assert!(
                body["error"]
                    .as_str()
                    .unwrap()
                    .starts_with("Too many requests")
            );
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429], "a burst of 3, then limited");

    // Guessing keys: 5 failures a minute from one address, then even a good key waits.
    let other = server.user("13900000009", 10);
    for i in 0..5 {
        let resp = server
            .http
            .get(&models)
            .bearer_auth(format!("sk-guess-{i:040}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
    }
    let resp = server
        .http
        .get(&models)
        .bearer_auth("sk-guess-6")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let resp = server
        .http
        .get(&models)
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        429,
        "the address cools off, whatever the key"
    );
}

#[tokio::test]
async fn slow_header_senders_are_cut_off() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut opts = Opts::demo();
    opts.env = vec![("LLMAGE_HEADER_READ_TIMEOUT_SECS".into(), "1".into())];
    let server = Server::start(opts).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    // The server closes the connection (maybe after a 408) instead of waiting for the rest.
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "connection still open after 10 s");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Others are served meanwhile and afterwards.
    let (status, _) = server.get_json("/healthz", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn metrics_count_requests_calls_and_money_for_loopback_or_token() {
    let mut opts = Opts::demo();
    opts.env = vec![("LLMAGE_SANDBOX__CHAT_CHUNK_DELAY_MS".into(), "0".into())];
    let server = Server::start(opts).await;
    let (status, _) = server
        .post_json(
            "/llmage/v1/chat/completions",
            Some(DEMO_KEY),
            &serde_json::json!({"model": "qwen3-max", "prompt": "你好", "stream": false}),
        )
        .await;
    assert_eq!(status, 200);
    let _ = server.get_json("/llmage/v1/nope", Some(DEMO_KEY)).await;
    let text = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 200);
    let text = text.text().await.unwrap();
    for needle in [
        r#"llmage_http_requests_total{route="/llmage/v1/chat/completions",method="POST",status="200"} 1"#,
        r#"llmage_http_requests_total{route="unmatched",method="GET",status="404"} 1"#,
        r#"llmage_upstream_calls_total{channel="sandbox",outcome="ok"} 1"#,
        r#"llmage_ledger_operations_total{op="reserve"} 1"#,
        r#"llmage_ledger_operations_total{op="settle"} 1"#,
        "llmage_http_request_duration_seconds_bucket",
        r#"llmage_chat_tokens_total{model="qwen3-max",kind="completion"}"#,
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    assert!(!text.contains(DEMO_KEY), "no secrets in metrics");

    // With a token configured, only the token reads them (loopback is not enough).
    let mut opts = Opts::demo();
    opts.env = vec![("LLMAGE_METRICS_TOKEN".into(), "metrics-secret".into())];
    let guarded = Server::start(opts).await;
    let resp = guarded
        .http
        .get(guarded.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = guarded
        .http
        .get(guarded.url("/metrics"))
        .bearer_auth("metrics-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}
