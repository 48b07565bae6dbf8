//! Image and video tasks end to end against the real binary: the seed's own curl commands,
//! results that decode as real media, rejections that store and charge nothing, idempotency,
//! ownership, listing, deadlines with refunds, signed and retried callbacks, and a SIGKILL with
//! 20 tasks in flight.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{DEMO_KEY, Opts, Server, demo_phone, eventually, jpeg, run_curl};
use serde_json::{Value, json};
use sqlx::Row;

/// The `curl` blocks of the seed's image and video sections, as written there.
fn seed_submission_curls() -> Vec<String> {
    let seed = include_str!("../docs/seed/api_zh.md");
    let mut blocks = Vec::new();
    for block in seed.split("```").skip(1).step_by(2) {
        if block.contains("curl -X POST https://opencomputing.ai/llmage/v1/image/generations")
            || block.contains("curl -X POST https://opencomputing.ai/llmage/v1/video/generations")
        {
            blocks.push(block.trim().to_owned());
        }
    }
    blocks
}

async fn wait_final(server: &Server, key: &str, id: &str, timeout: Duration) -> Value {
    let last = Arc::new(Mutex::new(Value::Null));
    eventually(timeout, &format!("task {id} to finish"), || {
        let last = last.clone();
        async move {
            let (status, task) = server
                .get_json(&format!("/llmage/v1/tasks?taskid={id}"), Some(key))
                .await;
            assert_eq!(status, 200, "{task}");
            let done = matches!(task["status"].as_str(), Some("SUCCEEDED" | "FAILED"));
            *last.lock().unwrap() = task;
            done
        }
    })
    .await;
    std::mem::take(&mut *last.lock().unwrap())
}

async fn fetch(server: &Server, url: &str) -> (String, Vec<u8>) {
    let resp = server.http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    let mime = resp.headers()["content-type"].to_str().unwrap().to_owned();
    (mime, resp.bytes().await.unwrap().to_vec())
}

/// Rows of a table (to show a rejection stored nothing).
async fn count(server: &Server, table: &str) -> i64 {
    let db = server.db().await;
    let n: i64 = sqlx::query(&format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {table}"
    ))
    .fetch_one(db.reader())
    .await
    .unwrap()
    .try_get("n")
    .unwrap();
    db.close().await;
    n
}

/// Every file under the server's file store.
fn stored_files(server: &Server) -> usize {
    fn walk(dir: &Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() { walk(&p) } else { 1 }
                })
                .sum()
        })
    }
    walk(&server.data_dir.path().join("files"))
}

#[tokio::test]
async fn every_seed_curl_reaches_succeeded_with_real_media() {
    let server = Server::start(Opts::demo()).await;
    let dir = tempfile::tempdir().unwrap();
    for name in ["02.jpg", "myimg1.jpg", "myimg2.jpg", "1.jpg", "2.jpg"] {
        std::fs::write(dir.path().join(name), jpeg(name, 96)).unwrap();
    }
    let curls = seed_submission_curls();
    assert_eq!(curls.len(), 7, "the seed's image/video curl examples");
    let (balance_before, _) = server.money(demo_phone()).await;

    let mut submitted = Vec::new();
    for block in &curls {
        let answer = run_curl(block, &server.base, DEMO_KEY, dir.path()).await;
        assert_eq!(answer["status"], "CREATED", "{answer}\n{block}");
        let id = answer["taskid"].as_str().unwrap().to_owned();
        assert_eq!(id.len(), 32);
        submitted.push((block.clone(), id));
    }

    let mut charged = 0;
    for (block, id) in &submitted {
        let task = wait_final(&server, DEMO_KEY, id, Duration::from_secs(60)).await;
        assert_eq!(task["status"], "SUCCEEDED", "{task}\n{block}");
        assert_eq!(task["taskid"], id.as_str());
        let usage = &task["usage"];
        let credits = usage["credits"].as_i64().unwrap();
        assert!(credits > 0, "{task}");
        charged += credits;
        assert!(
            usage["action"].is_string() && usage["type"].is_string(),
            "{task}"
        );
        assert_eq!(usage["model"], task["model"]);
        let (mime, bytes) = fetch(&server, task["image"].as_str().unwrap()).await;
        let picture = image::load_from_memory(&bytes).expect("the image link is a real picture");
        assert!(picture.width() >= 64 && picture.height() >= 64);
        if block.contains("image/generations") {
            assert_eq!(mime, "image/png");
            assert!(task.get("video").is_none());
        } else {
            assert_eq!(mime, "image/jpeg", "video cover");
            assert!(usage["duration"].as_i64().unwrap() > 0, "{task}");
            assert!(usage["resolution"].is_string(), "{task}");
            assert_eq!(usage["off_peak"], false);
            let (mime, mp4) = fetch(&server, task["video"].as_str().unwrap()).await;
            assert_eq!(mime, "video/mp4");
            let info = llmage::media::probe_mp4(&mp4).expect("the video link is a real MP4");
            assert_eq!(info.codec, "avc1");
            let asked = usage["duration"].as_f64().unwrap();
            assert!(
                (info.duration_secs - asked).abs() < 0.5,
                "{info:?} vs {asked}"
            );
            // The cover has the video's shape.
            assert_eq!(
                (picture.width(), picture.height()),
                (info.width, info.height)
            );
        }
    }

    // The seed's query curl, as written, with a real task id.
    let query = include_str!("../docs/seed/api_zh.md")
        .split("```")
        .find(|b| b.contains("curl -X GET \"https://opencomputing.ai/llmage/v1/tasks?taskid=xxx\""))
        .unwrap()
        .replace("taskid=xxx", &format!("taskid={}", submitted[0].1));
    let task = run_curl(&query, &server.base, DEMO_KEY, dir.path()).await;
    assert_eq!(task["status"], "SUCCEEDED");

    let (balance, ledger_sum) = server.money(demo_phone()).await;
    assert_eq!(balance, balance_before - charged);
    assert_eq!(balance, ledger_sum);
}

/// A multipart form from (name, value) text parts and (name, filename, bytes) file parts.
fn form(texts: &[(&str, &str)], files: Vec<(&str, &str, Vec<u8>)>) -> reqwest::multipart::Form {
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in texts {
        form = form.text(k.to_string(), v.to_string());
    }
    for (k, name, bytes) in files {
        form = form.part(
            k.to_string(),
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
        );
    }
    form
}

#[tokio::test]
async fn rejected_submissions_name_the_field_and_store_or_charge_nothing() {
    let server = Server::start(Opts::demo()).await;
    let video = server.url("/llmage/v1/video/generations");
    let image = "/llmage/v1/image/generations";
    let (balance_before, _) = server.money(demo_phone()).await;

    let json_cases = [
        (
            image,
            json!({"model": "wan2.2-t2i-plus", "catelogid": "t2i"}),
            "Missing required parameter: prompt",
        ),
        (
            image,
            json!({"model": "wan2.2-t2i-plus", "catelogid": "t2i", "prompt": "p", "size": "1*1"}),
            "size",
        ),
        (
            "/llmage/v1/video/generations",
            json!({"model": "wan2.6-t2v", "catelogid": "t2v", "prompt": "p", "duration": 7}),
            "duration",
        ),
        (
            "/llmage/v1/video/generations",
            json!({"model": "viduq3-pro", "catelogid": "t2v", "prompt": "p", "duration": 17}),
            "duration",
        ),
        (
            "/llmage/v1/video/generations",
            json!({"model": "doubao-seedance-2-0-260128", "catelogid": "t2v", "prompt": "p", "resolution": "4k"}),
            "resolution",
        ),
        (
            "/llmage/v1/video/generations",
            json!({"model": "wan2.2-t2i-plus", "catelogid": "t2i", "prompt": "p"}),
            "image/generations",
        ),
    ];
    for (path, body, needle) in json_cases {
        let (status, answer) = server.post_json(path, Some(DEMO_KEY), &body).await;
        assert_eq!(status, 400, "{body} → {answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(message.contains(needle), "{body} → {message}");
    }

    // An unknown model is 404 (design.md §3), named.
    let (status, answer) = server
        .post_json(
            "/llmage/v1/video/generations",
            Some(DEMO_KEY),
            &json!({"model": "no-such-model", "catelogid": "t2v", "prompt": "p"}),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(answer, json!({"error": "Model not found: no-such-model"}));

    let picture = jpeg("p", 64);
    let multipart_cases = [
        // Missing required file.
        (
            form(
                &[
                    ("model", "happyhorse-1.0-i2v"),
                    ("catelogid", "i2v"),
                    ("prompt", "p"),
                ],
                vec![],
            ),
            "image_file",
        ),
        // Not an image.
        (
            form(
                &[
                    ("model", "happyhorse-1.0-i2v"),
                    ("catelogid", "i2v"),
                    ("prompt", "p"),
                ],
                vec![("image_file", "a.jpg", b"#!/bin/sh\necho hi\n".to_vec())],
            ),
            "image_file",
        ),
        // Ten reference images where nine are allowed.
        (
            form(
                &[
                    ("model", "happyhorse-1.0-r2v"),
                    ("catelogid", "ref2v"),
                    ("prompt", "p"),
                ],
                (0..10)
                    .map(|_| ("image_files", "x.jpg", picture.clone()))
                    .collect(),
            ),
            "image_files",
        ),
        // An unknown file field.
        (
            form(
                &[
                    ("model", "happyhorse-1.0-i2v"),
                    ("catelogid", "i2v"),
                    ("prompt", "p"),
                ],
                vec![
                    ("image_file", "a.jpg", picture.clone()),
                    ("photo", "b.jpg", picture.clone()),
                ],
            ),
            "photo",
        ),
    ];
    for (form, needle) in multipart_cases {
        let resp = server
            .http
            .post(&video)
            .bearer_auth(DEMO_KEY)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        let answer: Value = resp.json().await.unwrap();
        let message = answer["error"].as_str().unwrap();
        assert!(message.contains(needle), "{needle}: {message}");
    }

    // Too little money: 429 with the seed's body, nothing kept.
    let poor = server.user("13900000001", 1);
    let (status, answer) = server
        .post_json(
            "/llmage/v1/video/generations",
            Some(&poor),
            &json!({"model": "happyhorse-1.0-t2v", "catelogid": "t2v", "prompt": "p"}),
        )
        .await;
    assert_eq!(status, 429);
    assert_eq!(answer, json!({"error": "Insufficient balance"}));

    assert_eq!(count(&server, "tasks").await, 0);
    assert_eq!(count(&server, "files").await, 0);
    assert_eq!(count(&server, "reservations").await, 0);
    assert_eq!(stored_files(&server), 0);
    let (balance, ledger_sum) = server.money(demo_phone()).await;
    assert_eq!((balance, ledger_sum), (balance_before, balance_before));
    assert_eq!(server.money("13900000001").await, (1, 1));
}

/// Submissions racing for a balance that covers two of them: the holds decide, and the inputs
/// of each refused one (uploaded before its hold was refused) are deleted, row and object.
#[tokio::test]
async fn submissions_racing_for_the_last_credits_keep_only_the_accepted_inputs() {
    let server = Server::start(Opts::demo()).await;
    let submit = |key: String| {
        let http = server.http.clone();
        let url = server.url("/llmage/v1/video/generations");
        async move {
            let form = form(
                &[
                    ("model", "happyhorse-1.0-i2v"),
                    ("catelogid", "i2v"),
                    ("prompt", "p"),
                ],
                vec![("image_file", "a.jpg", jpeg("p", 64))],
            );
            let resp = http
                .post(url)
                .bearer_auth(key)
                .multipart(form)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    // One submission's price, from a rich user's ledger.
    let rich = server.user("13900000011", 1_000_000);
    let (status, task) = submit(rich.clone()).await;
    assert_eq!(status, 200, "{task}");
    let price = 1_000_000 - server.money("13900000011").await.0;
    assert!(price > 0);
    server
        .finish_task(
            &rich,
            task["taskid"].as_str().unwrap(),
            Duration::from_secs(30),
        )
        .await;

    let key = server.user("13900000012", 2 * price);
    let answers = futures_util::future::join_all((0..8).map(|_| submit(key.clone()))).await;
    let accepted: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(accepted.len(), 2, "{answers:?}");
    for (status, answer) in &answers {
        if *status != 200 {
            assert_eq!(
                (*status, answer),
                (429, &json!({"error": "Insufficient balance"}))
            );
        }
    }
    for task in &accepted {
        let task = server
            .finish_task(
                &key,
                task["taskid"].as_str().unwrap(),
                Duration::from_secs(30),
            )
            .await;
        assert_eq!(task["status"], "SUCCEEDED", "{task}");
    }
    // Three accepted tasks, one input each; every file belongs to one of them and every row has
    // its object.
    let db = server.db().await;
    let (inputs, strays): (i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(CASE WHEN kind = 'input' THEN 1 ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN task_id IN (SELECT id FROM tasks) THEN 0 ELSE 1 END), 0) AS BIGINT) \
         FROM files",
    )
    .fetch_one(db.reader())
    .await
    .unwrap();
    db.close().await;
    assert_eq!((inputs, strays), (3, 0));
    assert_eq!(
        stored_files(&server),
        count(&server, "files").await as usize
    );
    assert_eq!(count(&server, "reservations").await, 3);
    assert_eq!(server.money("13900000012").await, (0, 0));
}

#[tokio::test]
async fn idempotency_ownership_and_listing() {
    let server = Server::start(Opts::demo()).await;
    let other = server.user("13900000002", 1_000);
    let submit = |key: Option<&'static str>| {
        let mut req = server
            .http
            .post(server.url("/llmage/v1/image/generations"))
            .bearer_auth(DEMO_KEY)
            .json(&json!({"model": "wan2.2-t2i-flash", "catelogid": "t2i", "prompt": "猫"}));
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()["taskid"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (before, _) = server.money(demo_phone()).await;
    let first = submit(Some("order-1")).await;
    let again = submit(Some("order-1")).await;
    assert_eq!(
        first, again,
        "the same Idempotency-Key returns the first task"
    );
    let done = wait_final(&server, DEMO_KEY, &first, Duration::from_secs(30)).await;
    let price = done["usage"]["credits"].as_i64().unwrap();
    assert_eq!(
        server.money(demo_phone()).await.0,
        before - price,
        "charged once"
    );
    assert_eq!(
        submit(Some("order-1")).await,
        first,
        "also after it finished"
    );

    // Another user's key cannot see it; an unknown id is 404 too.
    let (status, answer) = server
        .get_json(&format!("/llmage/v1/tasks?taskid={first}"), Some(&other))
        .await;
    assert_eq!(status, 404, "{answer}");
    assert!(answer["error"].is_string());
    let (status, _) = server
        .get_json("/llmage/v1/tasks?taskid=nope", Some(DEMO_KEY))
        .await;
    assert_eq!(status, 404);
    let (status, answer) = server
        .get_json(&format!("/llmage/v1/tasks?taskid={first}"), None)
        .await;
    assert_eq!((status, answer), (401, json!({"error": "Invalid API Key"})));

    // Listing: newest first, paginated with `next`, only the caller's.
    let mut ids = vec![first.clone()];
    for _ in 0..4 {
        ids.push(submit(None).await);
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut path = "/llmage/v1/tasks?limit=2".to_owned();
    loop {
        let (status, page) = server.get_json(&path, Some(DEMO_KEY)).await;
        assert_eq!(status, 200, "{page}");
        for task in page["data"].as_array().unwrap() {
            seen.push(task["taskid"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => {
                assert_eq!(page["has_more"], true);
                path = format!("/llmage/v1/tasks?limit=2&after={next}");
            }
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let (_, page) = server.get_json("/llmage/v1/tasks", Some(&other)).await;
    assert_eq!(page["data"], json!([]));
    let (status, _) = server
        .get_json("/llmage/v1/tasks?limit=0", Some(DEMO_KEY))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_task_past_its_deadline_fails_and_is_refunded() {
    let mut opts = Opts::demo();
    opts.env = vec![
        ("LLMAGE_TASK_VIDEO_DEADLINE_SECS".into(), "1".into()),
        ("LLMAGE_SANDBOX__VIDEO_MS".into(), "600000".into()),
    ];
    let server = Server::start(opts).await;
    let (before, _) = server.money(demo_phone()).await;
    let (status, answer) = server
        .post_json(
            "/llmage/v1/video/generations",
            Some(DEMO_KEY),
            &json!({"model": "viduq3-pro", "catelogid": "t2v", "prompt": "p", "duration": 2}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["taskid"].as_str().unwrap();
    // While it runs, the price is held.
    assert!(server.money(demo_phone()).await.0 < before);
    let task = wait_final(&server, DEMO_KEY, id, Duration::from_secs(30)).await;
    assert_eq!(task["status"], "FAILED", "{task}");
    assert!(task["error"].as_str().unwrap().contains("超时"), "{task}");
    assert!(task.get("usage").is_none() && task.get("video").is_none());
    assert_eq!(server.money(demo_phone()).await, (before, before));
}

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(HeaderMap, String)>>>);

#[tokio::test]
async fn callbacks_are_signed_and_retried_until_delivered() {
    let received = Received::default();
    let sink = received.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                let mut calls = sink.0.lock().unwrap();
                calls.push((headers, body));
                // The first delivery fails; the retry succeeds.
                if calls.len() == 1 {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut opts = Opts::demo();
    opts.env = vec![
        ("LLMAGE_CALLBACK_RETRY_SECS".into(), "[1]".into()),
        // The receiver is on loopback, which is refused unless allowed.
        ("LLMAGE_OUTBOUND_ALLOW".into(), "[\"127.0.0.1\"]".into()),
    ];
    let server = Server::start(opts).await;
    let (status, answer) = server
        .post_json(
            "/llmage/v1/image/generations",
            Some(DEMO_KEY),
            &json!({"model": "wan2.2-t2i-plus", "catelogid": "t2i", "prompt": "p", "callback_url": hook}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["taskid"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(30), "two callback deliveries", || {
        let received = received.clone();
        async move { received.0.lock().unwrap().len() >= 2 }
    })
    .await;
    // Nothing more after a 2xx: the server records the callback as delivered (a failed or
    // pending state would mean more attempts, or none of the 2xx counted), so nothing is due again.
    let db = server.db().await;
    eventually(
        Duration::from_secs(5),
        "callback recorded as delivered",
        || {
            let db = db.clone();
            let id = id.clone();
            async move {
                let row = sqlx::query("SELECT callback_state FROM tasks WHERE id = $1")
                    .bind(&id)
                    .fetch_one(db.reader())
                    .await
                    .unwrap();
                row.try_get::<Option<String>, _>("callback_state").unwrap()
                    == Some("delivered".into())
            }
        },
    )
    .await;
    let calls = received.0.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    let secret = llmage::accounts::keys::hash(DEMO_KEY);
    for (headers, body) in &calls {
        let task: Value = serde_json::from_str(body).unwrap();
        assert_eq!(task["taskid"], id.as_str());
        assert_eq!(task["status"], "SUCCEEDED");
        assert!(task["image"].as_str().unwrap().starts_with(&server.base));
        let signature = headers["x-llmage-signature"].to_str().unwrap();
        assert_eq!(
            signature,
            llmage::tasks::callback::signature(&secret, body.as_bytes())
        );
        // A tampered body does not verify.
        assert_ne!(
            signature,
            llmage::tasks::callback::signature(&secret, format!("{body} ").as_bytes())
        );
    }
}

#[tokio::test]
async fn sigkill_with_twenty_tasks_in_flight_then_all_finish_charged_once() {
    let mut opts = Opts::demo();
    opts.env = vec![
        ("LLMAGE_SANDBOX__IMAGE_MS".into(), "2500".into()),
        ("LLMAGE_SANDBOX__VIDEO_MS".into(), "3000".into()),
    ];
    let server = Server::start(opts.clone()).await;
    let (before, _) = server.money(demo_phone()).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let (path, body) = if i % 2 == 0 {
            (
                "/llmage/v1/image/generations",
                json!({"model": "wan2.2-t2i-flash", "catelogid": "t2i", "prompt": format!("图 {i}")}),
            )
        } else {
            (
                "/llmage/v1/video/generations",
                json!({"model": "viduq3-pro", "catelogid": "t2v", "prompt": format!("片 {i}"), "duration": 1, "resolution": "540p"}),
            )
        };
        let (status, answer) = server.post_json(path, Some(DEMO_KEY), &body).await;
        assert_eq!(status, 200, "{answer}");
        ids.push(answer["taskid"].as_str().unwrap().to_owned());
    }
    // Kill it while the tasks are with the vendor (PENDING/RUNNING), none finished.
    eventually(Duration::from_secs(20), "tasks sent to the vendor", || {
        let server = &server;
        async move {
            let (_, page) = server
                .get_json("/llmage/v1/tasks?limit=100", Some(DEMO_KEY))
                .await;
            let tasks = page["data"].as_array().unwrap().clone();
            tasks
                .iter()
                .filter(|t| matches!(t["status"].as_str(), Some("PENDING" | "RUNNING")))
                .count()
                >= 10
        }
    })
    .await;
    let (_, page) = server
        .get_json("/llmage/v1/tasks?limit=100", Some(DEMO_KEY))
        .await;
    let unfinished = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| !matches!(t["status"].as_str(), Some("SUCCEEDED" | "FAILED")))
        .count();
    assert_eq!(unfinished, 20, "all 20 in flight at the kill");
    let mut server = server;
    server.kill9();
    let server = server.restart(opts).await;

    let mut charged = 0;
    for id in &ids {
        let task = wait_final(&server, DEMO_KEY, id, Duration::from_secs(60)).await;
        assert_eq!(task["status"], "SUCCEEDED", "{task}");
        charged += task["usage"]["credits"].as_i64().unwrap();
    }
    let (balance, ledger_sum) = server.money(demo_phone()).await;
    assert_eq!(balance, before - charged, "each task charged exactly once");
    assert_eq!(balance, ledger_sum);

    // One settlement per task in the ledger, and every reservation closed.
    let db = server.db().await;
    let rows = sqlx::query("SELECT reservation_id FROM tasks")
        .fetch_all(db.reader())
        .await
        .unwrap();
    let reservations: HashSet<String> = rows
        .iter()
        .map(|r| r.try_get::<String, _>("reservation_id").unwrap())
        .collect();
    assert_eq!(reservations.len(), 20);
    let open: i64 =
        sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM reservations WHERE status = 'open'")
            .fetch_one(db.reader())
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
    assert_eq!(open, 0);
    db.close().await;
}

#[tokio::test]
async fn callback_and_input_urls_into_our_network_are_refused() {
    let server = Server::start(Opts::demo()).await;
    let (before, _) = server.money(demo_phone()).await;
    let cases = [
        (
            "/llmage/v1/image/generations",
            json!({"model": "wan2.2-t2i-plus", "catelogid": "t2i", "prompt": "p",
                   "callback_url": "http://127.0.0.1:9/hook"}),
            "callback_url",
        ),
        (
            "/llmage/v1/image/generations",
            json!({"model": "wan2.2-t2i-plus", "catelogid": "t2i", "prompt": "p",
                   "callback_url": "http://localhost:9/hook"}),
            "callback_url",
        ),
        (
            "/llmage/v1/video/generations",
            json!({"model": "happyhorse-1.0-i2v", "catelogid": "i2v", "prompt": "p",
                   "image_file": "http://169.254.169.254/latest/meta-data/iam"}),
            "image_file",
        ),
        (
            "/llmage/v1/video/generations",
            json!({"model": "happyhorse-1.0-i2v", "catelogid": "i2v", "prompt": "p",
                   "image_file": "http://[::ffff:10.0.0.1]/a.jpg"}),
            "image_file",
        ),
    ];
    for (path, body, field) in cases {
        let (status, answer) = server.post_json(path, Some(DEMO_KEY), &body).await;
        assert_eq!(status, 400, "{body} → {answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(
            message.contains(field) && message.contains("private or local"),
            "{message}"
        );
    }
    assert_eq!(count(&server, "tasks").await, 0);
    assert_eq!(server.money(demo_phone()).await, (before, before));
}
