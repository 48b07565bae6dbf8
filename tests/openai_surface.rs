//! The OpenAI-standard surface (issue 17): the official OpenAI Python and Node SDKs against
//! `serve --demo` on both bases (`/v1` and `/llmage/v1`); OpenAI error objects where they belong
//! and the seed's bodies where the seed has them; `Idempotency-Key` reused with another body
//! refused; images and videos made through the OpenAI routes cost exactly what the seed's routes
//! charge, refunds included; embeddings billed on the upstream's input tokens.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::io::Cursor;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::mock_openai::{self, MOCK_KEY, Mode};
use common::{DEMO_KEY, Opts, Server, demo_phone};
use openh264::formats::YUVSource;
use serde_json::{Value, json};

const EMBED_MODEL: &str = "text-embedding-3-small";

async fn add_embedding_channel(server: &Server, base_url: &str, price_in: i64) {
    server
        .add_channel(
            "openai",
            base_url,
            MOCK_KEY,
            &format!("embedding:{EMBED_MODEL}=upstream-embed"),
            &["--price-in", &price_in.to_string()],
        )
        .await;
}

/// Every sample of the MP4's video track decodes as H.264 (what a player does).
fn assert_playable(mp4: &[u8], seconds: f64) {
    let info = llmage::media::probe_mp4(mp4).unwrap();
    assert_eq!(info.codec, "avc1");
    assert!((info.duration_secs - seconds).abs() < 0.2, "{info:?}");
    let mut reader = mp4::Mp4Reader::read_header(Cursor::new(mp4), mp4.len() as u64).unwrap();
    let (track_id, sps, pps) = {
        let track = reader.tracks().values().next().unwrap();
        (
            track.track_id(),
            track.sequence_parameter_set().unwrap().to_vec(),
            track.picture_parameter_set().unwrap().to_vec(),
        )
    };
    let annex_b = |nal: &[u8]| [&[0, 0, 0, 1][..], nal].concat();
    let mut decoder = openh264::decoder::Decoder::new().unwrap();
    let mut packet = [annex_b(&sps), annex_b(&pps)].concat();
    let mut decoded = 0;
    for id in 1..=reader.sample_count(track_id).unwrap() {
        let sample = reader.read_sample(track_id, id).unwrap().unwrap();
        let mut rest = &sample.bytes[..];
        while rest.len() >= 4 {
            let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            packet.extend(annex_b(&rest[4..4 + len]));
            rest = &rest[4 + len..];
        }
        if let Some(yuv) = decoder.decode(&packet).unwrap() {
            assert_eq!(
                yuv.dimensions(),
                (info.width as usize, info.height as usize)
            );
            decoded += 1;
        }
        packet.clear();
    }
    assert_eq!(decoded, info.samples, "every frame decodes");
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

// Multi-threaded: the mock upstream must answer while this thread waits for the script.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_sdk_works_on_both_bases() {
    let check = Command::new("python3")
        .args(["-c", "import openai"])
        .output()
        .expect("python3 is needed for this test");
    assert!(
        check.status.success(),
        "the OpenAI SDK is missing: run `pip install openai` (the test script does)"
    );
    let mock = mock_openai::start(Mode::Normal).await;
    let server = Server::start(quick_demo()).await;
    add_embedding_channel(&server, &mock.base_url, 2).await;
    server.wait_routable(DEMO_KEY, EMBED_MODEL).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/openai_v1.py");
    for prefix in ["/v1", "/llmage/v1"] {
        let out = tempfile::tempdir().unwrap();
        let stdout = run(
            Command::new("python3")
                .arg(script)
                .env("LLMAGE_BASE_URL", &server.base)
                .env("LLMAGE_PREFIX", prefix)
                .env("LLMAGE_API_KEY", DEMO_KEY)
                .env("LLMAGE_EMBED_MODEL", EMBED_MODEL)
                .env("LLMAGE_OUT_DIR", out.path()),
            &format!("the Python SDK script on {prefix}"),
        );
        assert!(stdout.contains("openai v1 sdk: ok"), "{stdout}");
        assert_playable(&std::fs::read(out.path().join("video.mp4")).unwrap(), 2.0);
    }
    // The upstream saw its own model name and our caller's input.
    let bodies = mock.seen.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 4, "two embeddings calls per base");
    assert!(bodies.iter().all(|b| b["model"] == "upstream-embed"));
    assert!(!server.log().contains(DEMO_KEY) && !server.log().contains(MOCK_KEY));
}

/// The demo server with quick sandbox media (the SDK scripts wait for several tasks).
fn quick_demo() -> Opts {
    let mut opts = Opts::demo();
    opts.env = vec![
        ("LLMAGE_SANDBOX__IMAGE_MS".into(), "100".into()),
        ("LLMAGE_SANDBOX__VIDEO_MS".into(), "300".into()),
    ];
    opts
}

/// Install the official Node SDK from the npm registry once per target dir.
fn node_sdk() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("openai-node");
    if !dir.join("node_modules/openai/package.json").exists() {
        std::fs::create_dir_all(&dir).unwrap();
        run(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
                .arg(&dir)
                .arg("openai@6"),
            "npm install openai",
        );
    }
    dir
}

#[tokio::test]
async fn the_official_node_sdk_works_on_both_bases() {
    let sdk = node_sdk();
    let server = Server::start(quick_demo()).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node/openai_sdk.mjs");
    for prefix in ["/v1", "/llmage/v1"] {
        let stdout = run(
            Command::new("node")
                .arg(script)
                .env("LLMAGE_BASE_URL", &server.base)
                .env("LLMAGE_PREFIX", prefix)
                .env("LLMAGE_API_KEY", DEMO_KEY)
                .env("LLMAGE_SDK_DIR", &sdk),
            &format!("the Node SDK script on {prefix}"),
        );
        assert!(stdout.contains("openai node sdk: ok"), "{stdout}");
    }
}

async fn send(
    server: &Server,
    method: &str,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut req = server
        .http
        .request(method.parse().unwrap(), server.url(path))
        .bearer_auth(key);
    if let Some(body) = body {
        req = req.json(body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Every chat answer's `id` (the whole completion's, each stream chunk's) is the request's
/// `X-Request-Id`, on both bases; two calls get two ids.
#[tokio::test]
async fn completion_ids_are_the_request_id_on_both_bases() {
    let server = Server::start(Opts::demo()).await;
    let mut seen = Vec::new();
    for prefix in ["/v1", "/llmage/v1"] {
        for stream in [false, true] {
            let resp = server
                .http
                .post(server.url(&format!("{prefix}/chat/completions")))
                .bearer_auth(DEMO_KEY)
                .json(&json!({"model": "qwen3-max", "stream": stream,
                    "stream_options": {"include_usage": true},
                    "messages": [{"role": "user", "content": "你好"}]}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200, "{prefix} stream={stream}");
            let header = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
            assert!(header.starts_with("chatcmpl-"), "{header}");
            let text = resp.text().await.unwrap();
            if stream {
                let chunks: Vec<Value> = common::sse_data(&text)
                    .iter()
                    .filter(|d| *d != "[DONE]")
                    .map(|d| serde_json::from_str(d).unwrap())
                    .collect();
                assert!(chunks.len() > 2, "{text}");
                for chunk in &chunks {
                    assert_eq!(chunk["id"].as_str(), Some(header.as_str()), "{chunk}");
                }
            } else {
                let body: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(body["id"].as_str(), Some(header.as_str()), "{body}");
            }
            assert!(!seen.contains(&header), "ids repeat: {header}");
            seen.push(header);
        }
    }
}

fn openai_error(message: &str, kind: &str, param: Option<&str>, code: &str) -> Value {
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
}

#[tokio::test]
async fn errors_are_openai_objects_on_openai_routes_and_the_seeds_on_its_own() {
    let server = Server::start(Opts::demo()).await;
    let bad = "sk-wrong-key-000000000000000";
    let invalid = openai_error(
        "Invalid API Key",
        "authentication_error",
        None,
        "invalid_api_key",
    );
    for path in [
        "/v1/models",
        "/v1/models/qwen3-max",
        "/llmage/v1/models/qwen3-max",
        "/v1/videos",
        "/llmage/v1/videos",
    ] {
        assert_eq!(
            send(&server, "GET", path, bad, None).await,
            (401, invalid.clone()),
            "{path}"
        );
    }
    // The seed's routes keep the seed's body.
    let seed = json!({"error": "Invalid API Key"});
    assert_eq!(
        send(&server, "GET", "/llmage/v1/models", bad, None).await,
        (401, seed.clone())
    );
    assert_eq!(
        send(&server, "GET", "/llmage/v1/balance", bad, None).await,
        (401, seed)
    );

    let chat = json!({"model": "no-such", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(
        send(
            &server,
            "POST",
            "/v1/chat/completions",
            DEMO_KEY,
            Some(&chat)
        )
        .await,
        (
            404,
            openai_error(
                "Model not found: no-such",
                "invalid_request_error",
                Some("model"),
                "model_not_found"
            )
        )
    );
    assert_eq!(
        send(
            &server,
            "POST",
            "/llmage/v1/chat/completions",
            DEMO_KEY,
            Some(&chat)
        )
        .await,
        (404, json!({"error": "Model not found: no-such"}))
    );
    let (status, body) = send(&server, "GET", "/v1/no-such-route", DEMO_KEY, None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("not_found")),
        "{body}"
    );
    let (status, body) = send(&server, "GET", "/llmage/v1/no-such-route", DEMO_KEY, None).await;
    assert_eq!(
        (status, body),
        (404, json!({"error": "Not found: no such endpoint"}))
    );
    // The seed's own task routes are not mirrored under /v1.
    assert_eq!(
        send(&server, "GET", "/v1/tasks", DEMO_KEY, None).await.0,
        404
    );
    let (status, body) = send(&server, "DELETE", "/v1/models", DEMO_KEY, None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (405, &json!("method_not_allowed")),
        "{body}"
    );

    // Too little money: 429 insufficient_quota, as OpenAI answers it.
    let poor = server.user("13900000077", 0);
    let image = json!({"model": "wan2.2-t2i-flash", "prompt": "猫"});
    assert_eq!(
        send(
            &server,
            "POST",
            "/v1/images/generations",
            &poor,
            Some(&image)
        )
        .await,
        (
            429,
            openai_error(
                "Insufficient balance",
                "insufficient_quota",
                None,
                "insufficient_quota"
            )
        )
    );
    let (status, body) = send(
        &server,
        "POST",
        "/v1/videos",
        &poor,
        Some(&json!({"model": "viduq3-pro", "prompt": "p"})),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (429, &json!("insufficient_quota")),
        "{body}"
    );
    // Parameters the model does not have are named with what it has.
    let (status, body) = send(
        &server,
        "POST",
        "/v1/videos",
        DEMO_KEY,
        Some(&json!({"model": "viduq3-pro", "prompt": "p", "size": "1792x1024"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1920x1080"),
        "{body}"
    );
}

#[tokio::test]
async fn a_reused_idempotency_key_with_another_body_is_refused() {
    let server = Server::start(Opts::demo()).await;
    let post = |path: &'static str, key: &'static str, body: Value| {
        let server = &server;
        async move {
            let resp = server
                .http
                .post(server.url(path))
                .bearer_auth(DEMO_KEY)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    // The seed's route.
    let first = json!({"model": "wan2.2-t2i-flash", "catelogid": "t2i", "prompt": "一只猫"});
    let (s1, a) = post("/llmage/v1/image/generations", "k-seed", first.clone()).await;
    let (s2, b) = post("/llmage/v1/image/generations", "k-seed", first).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(a["taskid"], b["taskid"], "the same body: the first task");
    let (s3, c) = post(
        "/llmage/v1/image/generations",
        "k-seed",
        json!({"model": "wan2.2-t2i-flash", "catelogid": "t2i", "prompt": "一只狗"}),
    )
    .await;
    assert_eq!(s3, 422, "{c}");
    assert!(c["error"].as_str().unwrap().contains("k-seed"), "{c}");

    // The Videos API (OpenAI error object), and across surfaces: the key is the user's.
    let video = json!({"model": "viduq3-pro", "prompt": "海", "seconds": "2"});
    let (s1, a) = post("/v1/videos", "k-video", video.clone()).await;
    let (s2, b) = post("/llmage/v1/videos", "k-video", video).await;
    assert_eq!((s1, s2), (200, 200), "{a} {b}");
    assert_eq!(a["id"], b["id"]);
    let (s3, c) = post(
        "/v1/videos",
        "k-video",
        json!({"model": "viduq3-pro", "prompt": "山", "seconds": "2"}),
    )
    .await;
    assert_eq!(s3, 422, "{c}");
    assert_eq!(c["error"]["code"], "idempotency_key_reused");
    assert!(
        c["error"]["message"].as_str().unwrap().contains("k-video"),
        "{c}"
    );

    // Images: the same request answers the same images.
    let image = json!({"model": "wan2.2-t2i-flash", "prompt": "一只猫", "n": 2});
    let (s1, a) = post("/v1/images/generations", "k-image", image.clone()).await;
    let (s2, b) = post("/v1/images/generations", "k-image", image).await;
    assert_eq!((s1, s2), (200, 200), "{a} {b}");
    assert_eq!(a["data"], b["data"]);
    for other in [
        json!({"model": "wan2.2-t2i-flash", "prompt": "一只猫", "n": 2, "negative_prompt": "狗"}),
        json!({"model": "wan2.2-t2i-flash", "prompt": "一只猫", "n": 1}),
        json!({"model": "wan2.2-t2i-flash", "prompt": "一只猫", "n": 3}),
    ] {
        let (s3, c) = post("/v1/images/generations", "k-image", other.clone()).await;
        assert_eq!(s3, 422, "{other} → {c}");
    }
}

/// The credits a request took from the demo user, once its tasks have finished.
async fn spent(server: &Server, before: i64) -> i64 {
    let (balance, sum) = server.money(demo_phone()).await;
    assert_eq!(balance, sum, "the balance is the ledger's sum");
    before - balance
}

async fn wait_all_final(server: &Server) {
    common::eventually(Duration::from_secs(30), "every task final", || async {
        let (_, page) = server
            .get_json("/llmage/v1/tasks?limit=100", Some(DEMO_KEY))
            .await;
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| matches!(t["status"].as_str(), Some("SUCCEEDED" | "FAILED")))
    })
    .await;
}

#[tokio::test]
async fn openai_routes_cost_exactly_what_the_seed_routes_cost() {
    let server = Server::start(Opts::demo()).await;
    let (start, _) = server.money(demo_phone()).await;

    // One image each way, then n = 3.
    let (_, seed) = server
        .post_json(
            "/llmage/v1/image/generations",
            Some(DEMO_KEY),
            &json!({"model": "wan2.2-t2i-flash", "catelogid": "t2i", "prompt": "猫"}),
        )
        .await;
    server
        .finish_task(
            DEMO_KEY,
            seed["taskid"].as_str().unwrap(),
            Duration::from_secs(30),
        )
        .await;
    let seed_image = spent(&server, start).await;
    assert_eq!(seed_image, 14, "the catalog's per-image price");
    let (status, body) = server
        .post_json(
            "/v1/images/generations",
            Some(DEMO_KEY),
            &json!({"model": "wan2.2-t2i-flash", "prompt": "猫"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(spent(&server, start).await, 2 * seed_image);
    let (status, body) = server
        .post_json(
            "/llmage/v1/images/generations",
            Some(DEMO_KEY),
            &json!({"model": "wan2.2-t2i-flash", "prompt": "猫", "n": 3}),
        )
        .await;
    assert_eq!(
        (status, body["data"].as_array().unwrap().len()),
        (200, 3),
        "{body}"
    );
    assert_eq!(spent(&server, start).await, 5 * seed_image);

    // A video each way: 2 s of 720p.
    let before = start - 5 * seed_image;
    let (_, seed) = server
        .post_json(
            "/llmage/v1/video/generations",
            Some(DEMO_KEY),
            &json!({"model": "viduq3-pro", "catelogid": "t2v", "prompt": "海", "duration": 2, "resolution": "720p", "ratio": "16:9"}),
        )
        .await;
    server
        .finish_task(
            DEMO_KEY,
            seed["taskid"].as_str().unwrap(),
            Duration::from_secs(30),
        )
        .await;
    let seed_video = spent(&server, before).await;
    assert_eq!(seed_video, 2 * 20, "2 s at the 720p price");
    let (status, video) = server
        .post_json(
            "/v1/videos",
            Some(DEMO_KEY),
            &json!({"model": "viduq3-pro", "prompt": "海", "seconds": 2, "size": "1280x720"}),
        )
        .await;
    assert_eq!(status, 200, "{video}");
    let task = server
        .finish_task(
            DEMO_KEY,
            video["id"].as_str().unwrap(),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(
        task["usage"],
        server
            .finish_task(
                DEMO_KEY,
                seed["taskid"].as_str().unwrap(),
                Duration::from_secs(1)
            )
            .await["usage"]
    );
    assert_eq!(spent(&server, before).await, 2 * seed_video);
    wait_all_final(&server).await;
}

#[tokio::test]
async fn failed_tasks_are_refunded_on_both_surfaces() {
    let mut opts = Opts::demo();
    opts.env = vec![
        ("LLMAGE_TASK_IMAGE_DEADLINE_SECS".into(), "1".into()),
        ("LLMAGE_TASK_VIDEO_DEADLINE_SECS".into(), "1".into()),
        ("LLMAGE_SANDBOX__IMAGE_MS".into(), "600000".into()),
        ("LLMAGE_SANDBOX__VIDEO_MS".into(), "600000".into()),
    ];
    let server = Server::start(opts).await;
    let (start, _) = server.money(demo_phone()).await;
    // The image request waits for its task, which fails at its deadline: 502, refunded.
    let (status, body) = server
        .post_json(
            "/v1/images/generations",
            Some(DEMO_KEY),
            &json!({"model": "wan2.2-t2i-flash", "prompt": "猫", "n": 2}),
        )
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["type"], "server_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("failed"),
        "{body}"
    );
    let (status, video) = server
        .post_json(
            "/v1/videos",
            Some(DEMO_KEY),
            &json!({"model": "viduq3-pro", "prompt": "海", "seconds": "2"}),
        )
        .await;
    assert_eq!(status, 200, "{video}");
    let (_, seed) = server
        .post_json(
            "/llmage/v1/video/generations",
            Some(DEMO_KEY),
            &json!({"model": "viduq3-pro", "catelogid": "t2v", "prompt": "海", "duration": 2}),
        )
        .await;
    assert!(spent(&server, start).await > 0, "held while running");
    let failed = server
        .finish_task(
            DEMO_KEY,
            video["id"].as_str().unwrap(),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(failed["status"], "FAILED");
    server
        .finish_task(
            DEMO_KEY,
            seed["taskid"].as_str().unwrap(),
            Duration::from_secs(30),
        )
        .await;
    wait_all_final(&server).await;
    let (_, object) = server
        .get_json(
            &format!("/v1/videos/{}", video["id"].as_str().unwrap()),
            Some(DEMO_KEY),
        )
        .await;
    assert_eq!(object["status"], "failed");
    assert_eq!(object["error"]["code"], "video_generation_failed");
    assert_eq!(spent(&server, start).await, 0, "every failed task refunded");
    // Deleting refunds nothing: the money stays as it is.
    let (status, _) = send(
        &server,
        "DELETE",
        &format!("/v1/videos/{}", video["id"].as_str().unwrap()),
        DEMO_KEY,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(spent(&server, start).await, 0);
}

#[tokio::test]
async fn the_image_wait_is_bounded_and_the_task_goes_on() {
    let mut opts = Opts::demo();
    opts.env = vec![
        ("LLMAGE_IMAGES_WAIT_SECS".into(), "1".into()),
        ("LLMAGE_SANDBOX__IMAGE_MS".into(), "2500".into()),
    ];
    let server = Server::start(opts).await;
    let (start, _) = server.money(demo_phone()).await;
    let (status, body) = server
        .post_json(
            "/v1/images/generations",
            Some(DEMO_KEY),
            &json!({"model": "wan2.2-t2i-flash", "prompt": "猫"}),
        )
        .await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["code"], "timeout");
    let (_, page) = server.get_json("/llmage/v1/tasks", Some(DEMO_KEY)).await;
    let id = page["data"][0]["taskid"].as_str().unwrap().to_owned();
    assert!(
        body["error"]["message"].as_str().unwrap().contains(&id),
        "{body}"
    );
    let task = server
        .finish_task(DEMO_KEY, &id, Duration::from_secs(30))
        .await;
    assert_eq!(task["status"], "SUCCEEDED", "the task went on");
    assert_eq!(spent(&server, start).await, 14);
}

#[tokio::test]
async fn embeddings_are_billed_on_the_upstreams_input_tokens_and_released_on_failure() {
    let mock = mock_openai::start(Mode::Normal).await;
    let broken = mock_openai::start(Mode::Fail503).await;
    let server = Server::start(Opts::demo()).await;
    let key = server.user("13900000088", 1_000);
    // 10 credits per million input tokens; the mock counts 250,000 per input.
    add_embedding_channel(&server, &mock.base_url, 10).await;
    server.wait_routable(&key, EMBED_MODEL).await;
    let (status, body) = send(
        &server,
        "POST",
        "/v1/embeddings",
        &key,
        // Inputs the upstream can bill 750,000 tokens for (a token per digit at most).
        Some(&json!({"model": EMBED_MODEL, "input": ["1".repeat(250_000), "2".repeat(250_000), "3".repeat(250_000)]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], EMBED_MODEL);
    assert_eq!(body["usage"]["prompt_tokens"], 750_000);
    // 750,000 tokens at 10 credits per million: 7.5 credits exactly (ledger units).
    assert_eq!(
        server.money_units("13900000088").await,
        (1_000 * 10_000 - 75_000, 1_000 * 10_000 - 75_000),
    );
    // Listed among the models, and not a chat model.
    let (_, list) = server.get_json("/v1/models", Some(&key)).await;
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == EMBED_MODEL)
    );
    let chat = json!({"model": EMBED_MODEL, "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(
        send(&server, "POST", "/v1/chat/completions", &key, Some(&chat))
            .await
            .0,
        400
    );
    let (status, body) = send(
        &server,
        "POST",
        "/v1/embeddings",
        &key,
        Some(&json!({"model": "qwen3-max", "input": "a"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // A failing upstream: nothing charged.
    server
        .add_channel(
            "openai",
            &broken.base_url,
            MOCK_KEY,
            "embedding:broken-embed",
            &["--price-in", "10"],
        )
        .await;
    server.wait_routable(&key, "broken-embed").await;
    let (status, body) = send(
        &server,
        "POST",
        "/v1/embeddings",
        &key,
        Some(&json!({"model": "broken-embed", "input": "a"})),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "upstream_failed");
    assert_eq!(
        broken.seen.calls.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(
        server.money_units("13900000088").await,
        (1_000 * 10_000 - 75_000, 1_000 * 10_000 - 75_000)
    );
}
