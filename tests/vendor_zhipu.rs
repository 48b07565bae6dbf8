//! Zhipu CogView channels against the local mock of its synchronous image API: a task succeeds
//! with the image archived before the vendor link expires and the documented request body; a
//! content-safety refusal fails the task with the vendor's reason (nothing charged); a throttled
//! channel hands the task to the next.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::time::Duration;

use common::mock_zhipu::{self, KEY, Mode};
use common::{Opts, Server, eventually};
use serde_json::{Value, json};

const PHONE: &str = "13500000001";

async fn run(server: &Server, key: &str, body: Value) -> Value {
    eventually(Duration::from_secs(5), "channel picked up", || async {
        let (_, list) = server
            .get_json("/llmage/v1/models?catelogid=t2i", Some(key))
            .await;
        list["data"].as_array().is_some_and(|d| {
            d.iter()
                .any(|m| m["id"] == "cogview-3-flash" && m["available"] == true)
        })
    })
    .await;
    let (status, answer) = server
        .post_json("/llmage/v1/image/generations", Some(key), &body)
        .await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["taskid"].as_str().unwrap().to_owned();
    let last = std::sync::Arc::new(std::sync::Mutex::new(Value::Null));
    eventually(Duration::from_secs(20), "task end", || {
        let (last, id) = (last.clone(), id.clone());
        async move {
            let (_, t) = server
                .get_json(&format!("/llmage/v1/tasks?taskid={id}"), Some(key))
                .await;
            let done = matches!(t["status"].as_str(), Some("SUCCEEDED" | "FAILED"));
            *last.lock().unwrap() = t;
            done
        }
    })
    .await;
    std::mem::take(&mut *last.lock().unwrap())
}

#[tokio::test]
async fn cogview_images_are_generated_archived_and_failures_explained() {
    let good = mock_zhipu::start(Mode::Normal).await;
    let server = Server::start(Opts::default()).await;
    let key = server.user(PHONE, 100);
    server
        .add_channel(
            "zhipu",
            &good.base_url,
            KEY,
            "cogview-3-flash",
            &["--priority", "0"],
        )
        .await;
    let task = run(
        &server,
        &key,
        json!({"model": "cogview-3-flash", "catelogid": "t2i", "prompt": "一只猫", "negative_prompt": "狗"}),
    )
    .await;
    assert_eq!(task["status"], "SUCCEEDED", "{task}");
    assert_eq!(task["usage"]["credits"], 0, "cogview-3-flash is free");
    let png = server
        .http
        .get(task["image"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        png.status(),
        200,
        "archived although the vendor link expired"
    );
    image::load_from_memory(&png.bytes().await.unwrap()).unwrap();
    let sent = good.bodies.lock().unwrap()[0].clone();
    assert_eq!(sent["model"], "cogview-3-flash");
    assert!(sent["prompt"].as_str().unwrap().starts_with("一只猫"));
    assert!(sent["prompt"].as_str().unwrap().contains("狗"));
    assert!(!server.log().contains(KEY));
    assert!(!task.to_string().contains(KEY));
}

#[tokio::test]
async fn refusals_fail_with_the_reason_and_throttling_fails_over() {
    let refusing = mock_zhipu::start(Mode::ContentFilter).await;
    let server = Server::start(Opts::default()).await;
    let key = server.user(PHONE, 100);
    server
        .add_channel(
            "zhipu",
            &refusing.base_url,
            KEY,
            "cogview-3-flash",
            &["--priority", "0"],
        )
        .await;
    let task = run(
        &server,
        &key,
        json!({"model": "cogview-3-flash", "catelogid": "t2i", "prompt": "x"}),
    )
    .await;
    assert_eq!(task["status"], "FAILED");
    assert!(task["error"].as_str().unwrap().contains("1301"), "{task}");
    assert_eq!(server.money(PHONE).await, (100, 100));

    let throttled = mock_zhipu::start(Mode::Throttled).await;
    let good = mock_zhipu::start(Mode::Normal).await;
    let server = Server::start(Opts::default()).await;
    let key = server.user(PHONE, 100);
    server
        .add_channel(
            "zhipu",
            &throttled.base_url,
            KEY,
            "cogview-3-flash",
            &["--priority", "10"],
        )
        .await;
    server
        .add_channel(
            "zhipu",
            &good.base_url,
            KEY,
            "cogview-3-flash",
            &["--priority", "0"],
        )
        .await;
    let task = run(
        &server,
        &key,
        json!({"model": "cogview-3-flash", "catelogid": "t2i", "prompt": "y"}),
    )
    .await;
    assert_eq!(task["status"], "SUCCEEDED", "{task}");
    assert_eq!(throttled.bodies.lock().unwrap().len(), 1);
    assert_eq!(good.bodies.lock().unwrap().len(), 1);
}
