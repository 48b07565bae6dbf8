//! Vidu channels against the local mock: viduq3-pro t2v (off-peak and not) and i2v (the seed's
//! table requires both frames → start-end2video) reach SUCCEEDED with the documented fields and the `Token`
//! auth form, video and cover archived, off-peak priced lower; a vendor failure is refunded with
//! its `err_code`; a throttled channel hands the task to the next.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::time::Duration;

use common::mock_vidu::{self, KEY, Mode};
use common::{Opts, Server, eventually, jpeg};
use serde_json::{Value, json};

const PHONE: &str = "13500000003";

fn opts() -> Opts {
    Opts {
        env: vec![
            ("LLMAGE_VENDORS__POLL_FIRST_MS".into(), "50".into()),
            ("LLMAGE_VENDORS__POLL_MAX_MS".into(), "200".into()),
        ],
        ..Opts::default()
    }
}

async fn ready(server: &Server, key: &str) {
    eventually(Duration::from_secs(5), "channel picked up", || async {
        let (_, list) = server
            .get_json("/llmage/v1/models?catelogid=t2v", Some(key))
            .await;
        list["data"].as_array().is_some_and(|d| {
            d.iter()
                .any(|m| m["id"] == "viduq3-pro" && m["available"] == true)
        })
    })
    .await;
}

async fn submit(server: &Server, key: &str, body: Value) -> String {
    let (status, answer) = server
        .post_json("/llmage/v1/video/generations", Some(key), &body)
        .await;
    assert_eq!(status, 200, "{answer}");
    answer["taskid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn viduq3_text_and_image_tasks_succeed_with_off_peak_pricing() {
    let mock = mock_vidu::start(Mode::Normal).await;
    let server = Server::start(opts()).await;
    let key = server.user(PHONE, 1_000_000);
    server
        .add_channel(
            "vidu",
            &mock.base_url,
            KEY,
            "viduq3-pro",
            &["--priority", "0"],
        )
        .await;
    ready(&server, &key).await;

    let full = submit(&server, &key, json!({"model": "viduq3-pro", "catelogid": "t2v", "prompt": "雪山", "duration": 4, "resolution": "720p", "ratio": "9:16"})).await;
    let cheap = submit(&server, &key, json!({"model": "viduq3-pro", "catelogid": "t2v", "prompt": "雪山", "duration": 4, "resolution": "720p", "ratio": "9:16", "off_peak": "Y"})).await;
    // Vidu may hold an off-peak task for up to 48 h: its deadline is 50 h, not the video's 2 h.
    let db = server.db().await;
    for (id, hours) in [(&full, 2), (&cheap, 50)] {
        let span: i64 =
            sqlx::query_scalar("SELECT deadline_at - created_at FROM tasks WHERE id = $1")
                .bind(id.as_str())
                .fetch_one(db.reader())
                .await
                .unwrap();
        assert_eq!(span, hours * 3_600_000, "task {id}");
    }
    db.close().await;
    let image = jpeg("v", 64);
    // The seed's viduq3-pro i2v table requires both image_file1 and image_file2.
    let two = reqwest::multipart::Form::new()
        .text("model", "viduq3-pro")
        .text("catelogid", "i2v")
        .text("prompt", "从首帧到尾帧")
        .text("duration", "2")
        .part(
            "image_file1",
            reqwest::multipart::Part::bytes(image.clone()).file_name("a.jpg"),
        )
        .part(
            "image_file2",
            reqwest::multipart::Part::bytes(image).file_name("b.jpg"),
        );
    let mut ids = vec![full.clone(), cheap.clone()];
    for form in [two] {
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
        ids.push(
            answer["taskid"]
                .as_str()
                .unwrap_or_else(|| panic!("{answer}"))
                .to_owned(),
        );
    }
    let mut charged = 0;
    let mut credits = Vec::new();
    for id in &ids {
        let task = server.finish_task(&key, id, Duration::from_secs(30)).await;
        assert_eq!(task["status"], "SUCCEEDED", "{task}");
        let c = task["usage"]["credits"].as_i64().unwrap();
        credits.push(c);
        charged += c;
        let video = server
            .http
            .get(task["video"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        llmage::media::probe_mp4(&video.bytes().await.unwrap()).expect("archived MP4");
        let cover = server
            .http
            .get(task["image"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(cover.headers()["content-type"], "image/jpeg");
        image::load_from_memory(&cover.bytes().await.unwrap()).expect("archived cover");
    }
    // 720p × 4 s at 20 credits/s; off-peak at the catalog's 50 %.
    assert_eq!(&credits[..2], &[80, 40]);
    assert_eq!(
        server.money(PHONE).await,
        (1_000_000 - charged, 1_000_000 - charged)
    );

    let created = mock.created.lock().unwrap().clone();
    let endpoints: Vec<&str> = created.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(endpoints, ["text2video", "text2video", "start-end2video"]);
    assert_eq!(created[0].1["aspect_ratio"], "9:16");
    assert_eq!(created[0].1["off_peak"], false);
    assert_eq!(created[1].1["off_peak"], true);
    assert_eq!(created[0].1["resolution"], "720p");
    assert!(
        created[2].1.get("aspect_ratio").is_none(),
        "image modes follow the image"
    );
    assert!(
        created[2].1["images"][1]
            .as_str()
            .unwrap()
            .starts_with("data:image/jpeg;base64,")
    );
    assert!(!server.log().contains(KEY));
}

#[tokio::test]
async fn vidu_failures_are_refunded_and_throttling_fails_over() {
    let failing = mock_vidu::start(Mode::TaskFails).await;
    let server = Server::start(opts()).await;
    let key = server.user(PHONE, 10_000);
    server
        .add_channel(
            "vidu",
            &failing.base_url,
            KEY,
            "viduq3-pro",
            &["--priority", "0"],
        )
        .await;
    ready(&server, &key).await;
    let id = submit(
        &server,
        &key,
        json!({"model": "viduq3-pro", "catelogid": "t2v", "prompt": "x", "duration": 1}),
    )
    .await;
    let task = server.finish_task(&key, &id, Duration::from_secs(30)).await;
    assert_eq!(task["status"], "FAILED");
    assert!(
        task["error"]
            .as_str()
            .unwrap()
            .contains("CreationPolicyViolation"),
        "{task}"
    );
    assert_eq!(server.money(PHONE).await, (10_000, 10_000));

    let throttled = mock_vidu::start(Mode::Throttled).await;
    let good = mock_vidu::start(Mode::Normal).await;
    let server = Server::start(opts()).await;
    let key = server.user(PHONE, 10_000);
    server
        .add_channel(
            "vidu",
            &throttled.base_url,
            KEY,
            "viduq3-pro",
            &["--priority", "10"],
        )
        .await;
    server
        .add_channel(
            "vidu",
            &good.base_url,
            KEY,
            "viduq3-pro",
            &["--priority", "0"],
        )
        .await;
    ready(&server, &key).await;
    let id = submit(
        &server,
        &key,
        json!({"model": "viduq3-pro", "catelogid": "t2v", "prompt": "y", "duration": 1}),
    )
    .await;
    let task = server.finish_task(&key, &id, Duration::from_secs(30)).await;
    assert_eq!(task["status"], "SUCCEEDED", "{task}");
    assert_eq!(good.created.lock().unwrap().len(), 1);
}
