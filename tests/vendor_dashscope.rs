//! DashScope channels against the local mock of its async protocol: every DashScope model of the
//! seed (its curls verbatim, the rest from their tables) reaches SUCCEEDED with the documented
//! request fields, results archived before the vendor's links expire and priced right; failover
//! from a broken or throttled channel; a vendor FAILED status refunded with its reason; throttled
//! polls retried; the vendor key never shown.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::time::Duration;

use common::mock_dashscope::{self, KEY, Mode};
use common::{Opts, Server, jpeg, run_curl, seed_post_curls};
use serde_json::{Value, json};

const PHONE: &str = "13500000000";

fn opts() -> Opts {
    Opts {
        env: vec![
            ("LLMAGE_VENDORS__SUBMIT_TIMEOUT_SECS".into(), "1".into()),
            ("LLMAGE_VENDORS__POLL_FIRST_MS".into(), "50".into()),
            ("LLMAGE_VENDORS__POLL_MAX_MS".into(), "200".into()),
        ],
        ..Opts::default()
    }
}

const MODELS: &str = "wan2.2-t2i-plus,wan2.5-t2i-preview,wan2.2-t2i-flash,happyhorse-1.0-t2v,happyhorse-1.0-i2v,happyhorse-1.0-r2v,wan2.6-t2v,wan2.6-r2v";

#[tokio::test]
async fn every_dashscope_model_succeeds_through_a_channel() {
    let mock = mock_dashscope::start(Mode::Normal).await;
    let server = Server::start(opts()).await;
    let key = server.user(PHONE, 1_000_000);
    server
        .add_channel(
            "dashscope",
            &mock.base_url,
            KEY,
            MODELS,
            &["--priority", "0"],
        )
        .await;
    server.wait_routable(&key, "wan2.6-r2v").await;
    let dir = tempfile::tempdir().unwrap();
    for name in ["02.jpg", "1.jpg", "2.jpg"] {
        std::fs::write(dir.path().join(name), jpeg(name, 96)).unwrap();
    }

    let mut ids = Vec::new();
    let mut curls = seed_post_curls("wan2");
    curls.extend(seed_post_curls("happyhorse"));
    assert_eq!(
        curls.len(),
        4,
        "wan2.2-t2i-plus and happyhorse t2v/i2v/r2v in the seed"
    );
    for block in &curls {
        let answer = run_curl(block, &server.base, &key, dir.path()).await;
        assert_eq!(answer["status"], "CREATED", "{answer}");
        ids.push(answer["taskid"].as_str().unwrap().to_owned());
    }
    // The models the seed has no curl for, from their tables.
    for body in [
        json!({"model": "wan2.5-t2i-preview", "catelogid": "t2i", "prompt": "山水"}),
        json!({"model": "wan2.2-t2i-flash", "catelogid": "t2i", "prompt": "山水", "negative_prompt": "人物"}),
        json!({"model": "wan2.6-t2v", "catelogid": "t2v", "prompt": "海浪", "size": "1280*720", "duration": 5}),
    ] {
        let (status, answer) = server
            .post_json(
                if body["catelogid"] == "t2i" {
                    "/llmage/v1/image/generations"
                } else {
                    "/llmage/v1/video/generations"
                },
                Some(&key),
                &body,
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        ids.push(answer["taskid"].as_str().unwrap().to_owned());
    }
    let form = reqwest::multipart::Form::new()
        .text("model", "wan2.6-r2v")
        .text("catelogid", "i2v")
        .text("prompt", "character1 和 character2 握手")
        .text("size", "1280*720")
        .text("duration", "5")
        .part(
            "image_file1",
            reqwest::multipart::Part::bytes(jpeg("a", 64)).file_name("a.jpg"),
        )
        .part(
            "image_file2",
            reqwest::multipart::Part::bytes(jpeg("b", 64)).file_name("b.jpg"),
        );
    let answer: Value = server
        .http
        .post(server.url("/llmage/v1/video/generations"))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    ids.push(answer["taskid"].as_str().expect("taskid").to_owned());

    let mut charged = 0;
    for id in &ids {
        let task = server.finish_task(&key, id, Duration::from_secs(30)).await;
        assert_eq!(task["status"], "SUCCEEDED", "{task}");
        charged += task["usage"]["credits"].as_i64().unwrap();
        // Archived: the vendor's link has expired (one download), ours works.
        let link = task["video"].as_str().or(task["image"].as_str()).unwrap();
        let resp = server.http.get(link).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let bytes = resp.bytes().await.unwrap();
        if task["video"].is_string() {
            llmage::media::probe_mp4(&bytes).expect("an MP4");
        } else {
            image::load_from_memory(&bytes).expect("an image");
        }
        assert!(!task.to_string().contains(KEY));
    }
    assert_eq!(
        mock.seen
            .downloads
            .load(std::sync::atomic::Ordering::SeqCst),
        ids.len()
    );
    let (balance, sum) = server.money(PHONE).await;
    assert_eq!((balance, sum), (1_000_000 - charged, 1_000_000 - charged));

    // What the vendor received, per family.
    let created = mock.seen.created.lock().unwrap().clone();
    let by_model = |m: &str| {
        created
            .iter()
            .find(|(_, b)| b["model"] == m)
            .map(|(_, b)| b.clone())
            .unwrap_or_else(|| panic!("{m} not sent"))
    };
    let t2i = by_model("wan2.2-t2i-plus");
    assert_eq!(t2i["parameters"]["n"], 1);
    assert_eq!(t2i["input"]["prompt"], "一只猫坐在月亮上,水彩画风格");
    assert_eq!(
        by_model("wan2.2-t2i-flash")["input"]["negative_prompt"],
        "人物"
    );
    let i2v = by_model("happyhorse-1.0-i2v");
    assert_eq!(i2v["input"]["media"][0]["type"], "first_frame");
    assert!(
        i2v["input"]["media"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/jpeg;base64,")
    );
    assert_eq!(i2v["parameters"]["duration"], 15);
    assert!(
        i2v["parameters"]["resolution"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case("720P")
    );
    let r2v = by_model("happyhorse-1.0-r2v");
    let media = r2v["input"]["media"].as_array().unwrap();
    assert_eq!(media.len(), 2);
    assert!(media.iter().all(|m| m["type"] == "reference_image"));
    assert_eq!(r2v["parameters"]["ratio"], "4:3");
    let t2v = by_model("happyhorse-1.0-t2v");
    assert!(t2v["input"].get("media").is_none());
    let wan_t2v = by_model("wan2.6-t2v");
    assert_eq!(
        wan_t2v["parameters"],
        json!({"size": "1280*720", "duration": 5})
    );
    let wan_r2v = by_model("wan2.6-r2v");
    assert_eq!(
        wan_r2v["input"]["reference_urls"].as_array().unwrap().len(),
        2
    );
    assert!(
        !server.log().contains(KEY),
        "the vendor key never reaches the log"
    );
}

#[tokio::test]
async fn a_broken_throttled_or_slow_first_channel_hands_the_task_to_the_next() {
    for mode in [Mode::SubmitBroken, Mode::SubmitThrottled, Mode::SubmitSlow] {
        let bad = mock_dashscope::start(mode).await;
        let good = mock_dashscope::start(Mode::Normal).await;
        let server = Server::start(opts()).await;
        let key = server.user(PHONE, 10_000);
        server
            .add_channel(
                "dashscope",
                &bad.base_url,
                KEY,
                "wan2.2-t2i-flash",
                &["--priority", "10"],
            )
            .await;
        server
            .add_channel(
                "dashscope",
                &good.base_url,
                KEY,
                "wan2.2-t2i-flash",
                &["--priority", "0"],
            )
            .await;
        server.wait_routable(&key, "wan2.2-t2i-flash").await;
        let (status, answer) = server
            .post_json(
                "/llmage/v1/image/generations",
                Some(&key),
                &json!({"model": "wan2.2-t2i-flash", "catelogid": "t2i", "prompt": "猫"}),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        let task = server
            .finish_task(
                &key,
                answer["taskid"].as_str().unwrap(),
                Duration::from_secs(30),
            )
            .await;
        assert_eq!(task["status"], "SUCCEEDED", "{mode:?}: {task}");
        assert!(
            bad.seen
                .submit_attempts
                .load(std::sync::atomic::Ordering::SeqCst)
                >= 1
        );
        assert_eq!(
            good.seen.created.lock().unwrap().len(),
            1,
            "sent once to the good channel"
        );
        let price = task["usage"]["credits"].as_i64().unwrap();
        assert_eq!(server.money(PHONE).await, (10_000 - price, 10_000 - price));
    }
}

#[tokio::test]
async fn a_vendor_failure_is_refunded_with_its_reason_and_throttled_polls_are_retried() {
    let failing = mock_dashscope::start(Mode::TaskFails).await;
    let throttled = mock_dashscope::start(Mode::PollThrottledOnce).await;
    let server = Server::start(opts()).await;
    let key = server.user(PHONE, 10_000);
    server
        .add_channel(
            "dashscope",
            &failing.base_url,
            KEY,
            "wan2.2-t2i-plus",
            &["--priority", "0"],
        )
        .await;
    server
        .add_channel(
            "dashscope",
            &throttled.base_url,
            KEY,
            "wan2.2-t2i-flash",
            &["--priority", "0"],
        )
        .await;
    server.wait_routable(&key, "wan2.2-t2i-flash").await;
    server.wait_routable(&key, "wan2.2-t2i-plus").await;

    let (_, answer) = server
        .post_json(
            "/llmage/v1/image/generations",
            Some(&key),
            &json!({"model": "wan2.2-t2i-plus", "catelogid": "t2i", "prompt": "猫"}),
        )
        .await;
    let task = server
        .finish_task(
            &key,
            answer["taskid"].as_str().unwrap(),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(task["status"], "FAILED");
    assert!(
        task["error"]
            .as_str()
            .unwrap()
            .contains("DataInspectionFailed"),
        "{task}"
    );
    assert_eq!(server.money(PHONE).await, (10_000, 10_000), "refunded");

    let (_, answer) = server
        .post_json(
            "/llmage/v1/image/generations",
            Some(&key),
            &json!({"model": "wan2.2-t2i-flash", "catelogid": "t2i", "prompt": "猫"}),
        )
        .await;
    let task = server
        .finish_task(
            &key,
            answer["taskid"].as_str().unwrap(),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(task["status"], "SUCCEEDED", "{task}");
}

#[tokio::test]
async fn qwen3_max_chat_goes_through_compatible_mode() {
    use common::mock_openai::{self, MOCK_KEY, Mode as ChatMode};
    let mock = mock_openai::start(ChatMode::Normal).await;
    let server = Server::start(opts()).await;
    let key = server.user(PHONE, 1_000_000);
    // The host root: the adapter adds /compatible-mode/v1.
    let root = mock.base_url.trim_end_matches("/v1").to_owned();
    server
        .add_channel("dashscope", &root, MOCK_KEY, "qwen3-max", &[])
        .await;
    server.wait_routable(&key, "qwen3-max").await;
    // The seed's request body, non-streaming and streaming.
    let (status, answer) = server
        .post_json(
            "/llmage/v1/chat/completions",
            Some(&key),
            &json!({"model": "qwen3-max", "catelogid": "t2t", "prompt": "你的问题", "sys_prompt": "", "stream": false}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["content"], "Hello, world!", "{answer}");
    let streamed = server
        .http
        .post(server.url("/llmage/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": "qwen3-max", "catelogid": "t2t", "prompt": "你的问题", "sys_prompt": "", "stream": true}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = common::sse_data(&streamed);
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{streamed}"
    );
    assert_eq!(mock.seen.bodies.lock().unwrap()[0]["model"], "qwen3-max");
    let (balance, sum) = server.money_units(PHONE).await;
    assert!(balance < 1_000_000 * 10_000 && balance == sum);
}

#[tokio::test]
async fn a_channel_that_keeps_failing_cools_off_and_says_why() {
    let broken = mock_dashscope::start(Mode::SubmitBroken).await;
    let good = mock_dashscope::start(Mode::Normal).await;
    let mut o = opts();
    o.env
        .push(("LLMAGE_VENDORS__FAILURES_TO_COOL".into(), "2".into()));
    o.env
        .push(("LLMAGE_VENDORS__COOL_SECS".into(), "600".into()));
    let server = Server::start(o).await;
    let key = server.user(PHONE, 10_000);
    server
        .add_channel(
            "dashscope",
            &broken.base_url,
            KEY,
            "wan2.2-t2i-flash",
            &["--priority", "10"],
        )
        .await;
    server
        .add_channel(
            "dashscope",
            &good.base_url,
            KEY,
            "wan2.2-t2i-flash",
            &["--priority", "0"],
        )
        .await;
    server.wait_routable(&key, "wan2.2-t2i-flash").await;
    let body = json!({"model": "wan2.2-t2i-flash", "catelogid": "t2i", "prompt": "猫"});
    for _ in 0..2 {
        let (_, answer) = server
            .post_json("/llmage/v1/image/generations", Some(&key), &body)
            .await;
        let task = server
            .finish_task(
                &key,
                answer["taskid"].as_str().unwrap(),
                Duration::from_secs(30),
            )
            .await;
        assert_eq!(task["status"], "SUCCEEDED");
    }
    let attempts = || {
        broken
            .seen
            .submit_attempts
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    assert_eq!(attempts(), 2);
    let list = server.admin_ok(&["channel", "list"]);
    assert!(
        list.contains("cooling off") && list.contains("HTTP 500"),
        "{list}"
    );
    assert!(!list.contains(KEY));
    // Once the server reloaded the cooling, new tasks go straight to the healthy channel.
    server.wait_channels_synced().await;
    let (_, answer) = server
        .post_json("/llmage/v1/image/generations", Some(&key), &body)
        .await;
    let task = server
        .finish_task(
            &key,
            answer["taskid"].as_str().unwrap(),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(task["status"], "SUCCEEDED");
    assert_eq!(attempts(), 2, "the cooling channel was not tried");
}
