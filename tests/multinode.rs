//! Two `llmage serve` processes on one database (PostgreSQL in the suite's second pass, SQLite in
//! the first): load spread over both, one killed with SIGKILL mid-run. Every task completes
//! exactly once, every charge is exact, and a key revoked meanwhile is refused by the survivor
//! within a second.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::time::{Duration, Instant};

use common::{DEMO_KEY, Opts, Server, demo_phone, eventually};
use serde_json::{Value, json};
use sqlx::Row;

fn opts() -> Opts {
    let mut opts = Opts::demo();
    opts.env = vec![
        ("LLMAGE_SANDBOX__IMAGE_MS".into(), "1500".into()),
        ("LLMAGE_SANDBOX__VIDEO_MS".into(), "2500".into()),
        ("LLMAGE_TASK_LEASE_SECS".into(), "2".into()),
    ];
    opts
}

async fn task(server: &Server, id: &str) -> Value {
    let (status, task) = server
        .get_json(&format!("/llmage/v1/tasks?taskid={id}"), Some(DEMO_KEY))
        .await;
    assert_eq!(status, 200, "{task}");
    task
}

#[tokio::test]
async fn two_processes_share_the_work_and_survive_one_being_killed() {
    let mut first = Server::start(opts()).await;
    let second = first.start_sibling(opts()).await;
    let (before, _) = first.money_units(demo_phone()).await;
    let other_key = first.user("13900000077", 1_000_000);

    // Load on both: tasks and chat calls alternate between the processes.
    let mut ids = Vec::new();
    let mut chat_credits = 0;
    for i in 0..24 {
        let server = if i % 2 == 0 { &first } else { &second };
        let (path, body) = if i % 3 == 0 {
            (
                "/llmage/v1/video/generations",
                json!({"model": "viduq3-pro", "catelogid": "t2v", "prompt": format!("片 {i}"), "duration": 1, "resolution": "540p"}),
            )
        } else {
            (
                "/llmage/v1/image/generations",
                json!({"model": "wan2.2-t2i-flash", "catelogid": "t2i", "prompt": format!("图 {i}")}),
            )
        };
        let (status, answer) = server.post_json(path, Some(DEMO_KEY), &body).await;
        assert_eq!(status, 200, "{answer}");
        ids.push(answer["taskid"].as_str().unwrap().to_owned());
        let (status, answer) = server
            .post_json(
                "/llmage/v1/chat/completions",
                Some(DEMO_KEY),
                &json!({"model": "qwen3-max", "catelogid": "t2t", "prompt": format!("你好 {i}"), "stream": false}),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        // usage.credits is a decimal of up to 4 places: in units, exactly.
        chat_credits += (answer["usage"]["credits"].as_f64().unwrap() * 10_000.0).round() as i64;
    }
    // Both processes work on tasks: each has sent some to the vendor.
    eventually(Duration::from_secs(20), "tasks with the vendor", || async {
        let mut sent = 0;
        for id in &ids {
            if matches!(
                task(&second, id).await["status"].as_str(),
                Some("PENDING" | "RUNNING")
            ) {
                sent += 1;
            }
        }
        sent >= 12
    })
    .await;
    let db = first.db().await;
    let owners: i64 = sqlx::query(
        "SELECT CAST(COUNT(DISTINCT lease_owner) AS BIGINT) AS n FROM tasks WHERE lease_owner IS NOT NULL",
    )
    .fetch_one(db.reader())
    .await
    .unwrap()
    .try_get("n")
    .unwrap();
    assert_eq!(owners, 2, "both processes claimed tasks");

    // Kill the first mid-run; the second takes over its tasks once their leases pass.
    first.kill9();
    let mut task_credits = 0;
    for id in &ids {
        let deadline = Instant::now() + Duration::from_secs(60);
        let done = loop {
            let t = task(&second, id).await;
            if matches!(t["status"].as_str(), Some("SUCCEEDED" | "FAILED")) {
                break t;
            }
            assert!(Instant::now() < deadline, "task {id} never finished: {t}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(done["status"], "SUCCEEDED", "{done}");
        task_credits += done["usage"]["credits"].as_i64().unwrap() * 10_000;
    }

    // Exactly once: one settled reservation per task, none open, money exact.
    let settled: i64 = sqlx::query(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM reservations WHERE purpose LIKE 'task%' AND status = 'settled'",
    )
    .fetch_one(db.reader())
    .await
    .unwrap()
    .try_get("n")
    .unwrap();
    assert_eq!(settled, ids.len() as i64);
    let open: i64 =
        sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM reservations WHERE status = 'open'")
            .fetch_one(db.reader())
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
    assert_eq!(open, 0);
    let (balance, sum) = second.money_units(demo_phone()).await;
    assert_eq!(balance, sum);
    assert_eq!(balance, before - task_credits - chat_credits);

    // A key revoked (by the operator, on the shared database) is refused by the surviving
    // process within a second, although it was just used there (and cached).
    let models = second.url("/llmage/v1/models");
    let ok = second
        .http
        .get(&models)
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let listed = second.admin_ok(&["key", "list", "--phone", "13900000077"]);
    let key_id = listed
        .lines()
        .find_map(|l| {
            l.split_whitespace()
                .next()
                .and_then(|w| w.parse::<i64>().ok())
        })
        .expect("key id in the list");
    // The admin CLI of a server uses its data dir; the survivor's database is the same.
    second.admin_ok(&["key", "revoke", &key_id.to_string()]);
    let revoked_at = Instant::now();
    loop {
        let resp = second
            .http
            .get(&models)
            .bearer_auth(&other_key)
            .send()
            .await
            .unwrap();
        if resp.status() == 401 {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "still accepted {:?} after the revocation",
            revoked_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    db.close().await;
}

#[tokio::test]
async fn rate_limits_are_shared_through_redis() {
    let prefix = format!("llmage-test-{}", llmage::util::ids::random_id());
    let mut opts = Opts::demo();
    opts.env = vec![
        ("LLMAGE_REDIS__URL".into(), common::redis_url()),
        ("LLMAGE_REDIS__PREFIX".into(), prefix),
        ("LLMAGE_LIMITS__PER_KEY_PER_SEC".into(), "2".into()),
    ];
    let first = Server::start(opts.clone()).await;
    let second = first.start_sibling(opts).await;
    // Start right after a second boundary, so all four requests fall in one window (the
    // scenario: a clock position for the per-second window, not a wait for server state).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    tokio::time::sleep(
        Duration::from_millis(1020) - Duration::from_nanos(u64::from(now.subsec_nanos())),
    )
    .await;
    let mut statuses = Vec::new();
    for server in [&first, &second, &first, &second] {
        let resp = server
            .http
            .get(server.url("/llmage/v1/models"))
            .bearer_auth(DEMO_KEY)
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
    }
    // Two per second for the key across both processes (each alone would allow two).
    assert_eq!(statuses, [200, 200, 429, 429]);
}
