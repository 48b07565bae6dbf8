//! Crashes and storage faults, with the exact end state asserted: SIGKILL at random points of chat
//! streaming, task submission/polling/archiving and Alipay notification handling, then a restart;
//! PostgreSQL cut off for a while behind a proxy; the object store's disk full. Random kill points
//! are printed so a failing run can be repeated.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::mock_alipay::{self, MockAlipay, Mode as AlipayMode, alipay_opts};
use common::mock_dashscope::{self, KEY as DASHSCOPE_KEY, Mode as DashScopeMode};
use common::{DEMO_KEY, Opts, Server, eventually};
use serde_json::{Value, json};

async fn scalar(server: &Server, sql: &str) -> i64 {
    server.count(sql).await
}

async fn open_reservations(server: &Server) -> i64 {
    server.open_holds().await
}

fn chat_opts() -> Opts {
    Opts {
        demo: true,
        env: vec![
            ("LLMAGE_SANDBOX__CHAT_CHUNK_DELAY_MS".into(), "25".into()),
            ("LLMAGE_UPSTREAM_TOTAL_TIMEOUT_SECS".into(), "2".into()),
        ],
        ..Opts::default()
    }
}

#[tokio::test]
async fn sigkill_mid_stream_then_every_reservation_is_settled_or_released() {
    let phone = "13900000101";
    let mut server = Server::start(chat_opts()).await;
    let key = server.user(phone, 100_000);
    for round in 0..2 {
        let kill_after = rand::random_range(50..600);
        eprintln!("round {round}: SIGKILL after {kill_after} ms");
        let mut streams = Vec::new();
        for i in 0..12 {
            let http = server.http.clone();
            let url = server.url("/llmage/v1/chat/completions");
            let key = key.clone();
            streams.push(tokio::spawn(async move {
                let body = json!({"model": "qwen3-max", "catelogid": "t2t", "prompt": format!("第{i}个问题,请详细回答"), "stream": true});
                if let Ok(resp) = http.post(url).bearer_auth(key).json(&body).send().await {
                    let _ = resp.text().await;
                }
            }));
        }
        // The scenario: SIGKILL at a random moment (printed above, to repeat a run).
        tokio::time::sleep(Duration::from_millis(kill_after)).await;
        server = server.restart(chat_opts()).await;
        for s in streams {
            let _ = s.await;
        }
        // Holds of calls cut by the crash are released once the killed process's lease runs out.
        eventually(Duration::from_secs(20), "no open reservation", || async {
            open_reservations(&server).await == 0
        })
        .await;
        let (balance, sum) = server.money_units(phone).await;
        assert_eq!(balance, sum, "round {round}: balance equals the ledger sum");
        assert!(
            (0..=100_000 * 10_000).contains(&balance),
            "round {round}: {balance}"
        );
    }
    // And the gateway works as before.
    let (status, body) = server
        .post_json(
            "/llmage/v1/chat/completions",
            Some(&key),
            &json!({"model": "qwen3-max", "prompt": "hi"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

fn vendor_opts() -> Opts {
    Opts {
        env: vec![
            ("LLMAGE_VENDORS__SUBMIT_TIMEOUT_SECS".into(), "2".into()),
            ("LLMAGE_VENDORS__POLL_FIRST_MS".into(), "30".into()),
            ("LLMAGE_VENDORS__POLL_MAX_MS".into(), "100".into()),
        ],
        ..Opts::default()
    }
}

#[tokio::test]
async fn sigkill_during_submission_polling_and_archiving_loses_nothing_and_charges_once() {
    let mock = mock_dashscope::start(DashScopeMode::Normal).await;
    let phone = "13900000102";
    let mut server = Server::start(vendor_opts()).await;
    let key = server.user(phone, 1_000_000);
    server
        .add_channel(
            "dashscope",
            &mock.base_url,
            DASHSCOPE_KEY,
            "wan2.2-t2i-plus",
            &[],
        )
        .await;
    server.wait_routable(&key, "wan2.2-t2i-plus").await;
    let mut accepted: Vec<(String, String)> = Vec::new();
    for round in 0..3 {
        let kill_after = rand::random_range(5..400);
        eprintln!("round {round}: SIGKILL after {kill_after} ms");
        let mut calls = Vec::new();
        for i in 0..10 {
            let http = server.http.clone();
            let url = server.url("/llmage/v1/image/generations");
            let key = key.clone();
            let prompt = format!("round {round} cat {i}");
            calls.push(tokio::spawn(async move {
                let body =
                    json!({"model": "wan2.2-t2i-plus", "catelogid": "t2i", "prompt": prompt});
                let resp = http
                    .post(url)
                    .bearer_auth(key)
                    .json(&body)
                    .send()
                    .await
                    .ok()?;
                let v: Value = resp.json().await.ok()?;
                Some((v["taskid"].as_str()?.to_owned(), prompt))
            }));
            // The scenario: submissions spread over time, so the kill finds them at every step.
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        // The scenario: SIGKILL at a random moment (printed above, to repeat a run).
        tokio::time::sleep(Duration::from_millis(kill_after)).await;
        server = server.restart(vendor_opts()).await;
        for c in calls {
            if let Ok(Some(pair)) = c.await {
                accepted.push(pair);
            }
        }
    }
    // Credits are never held for a task that does not exist: the hold and the task row commit
    // together, so a kill between them leaves neither.
    let orphan_holds = scalar(
        &server,
        "SELECT CAST(COUNT(*) AS BIGINT) FROM reservations r WHERE r.purpose = 'task' \
         AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.reservation_id = r.id)",
    )
    .await;
    assert_eq!(
        orphan_holds, 0,
        "credits held for tasks that were never stored"
    );
    // Every task the gateway answered (and any it stored but could not answer) finishes once.
    let db = server.db().await;
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM tasks")
        .fetch_all(db.reader())
        .await
        .unwrap();
    db.close().await;
    for (id, _) in &accepted {
        assert!(ids.contains(id), "answered task {id} was lost");
    }
    let mut png_len = None;
    for id in &ids {
        let task = server.finish_task(&key, id, Duration::from_secs(30)).await;
        assert_eq!(task["status"], "SUCCEEDED", "{task}");
        // The archived file is whole: it decodes, and every copy has the vendor's length.
        let bytes = server
            .http
            .get(task["image"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        image::load_from_memory(&bytes)
            .unwrap_or_else(|e| panic!("task {id}: half-written image: {e}"));
        assert_eq!(*png_len.get_or_insert(bytes.len()), bytes.len());
    }
    // Charged exactly once each (one reservation per task, all settled), ledger = balance.
    server.wait_no_open_holds().await;
    let price = 20;
    let (balance, sum) = server.money(phone).await;
    assert_eq!(balance, sum);
    assert_eq!(balance, 1_000_000 - price * ids.len() as i64);
    // A vendor saw a task twice only when a crash hit the one documented window (sent, vendor id
    // not yet recorded), and then the log says so.
    let created = mock.seen.created.lock().unwrap().clone();
    let resends = server.log().matches("crash in the send window").count();
    let mut duplicates = 0;
    let prompts: Vec<String> = created
        .iter()
        .map(|(_, body)| body["input"]["prompt"].as_str().unwrap_or("").to_owned())
        .collect();
    for p in &prompts {
        let n = prompts.iter().filter(|q| *q == p).count();
        if n > 1 {
            duplicates += 1;
        }
    }
    assert!(
        duplicates <= resends * 2,
        "{duplicates} duplicated vendor submissions but {resends} send-window re-sends logged"
    );
    eprintln!(
        "{} tasks ({} answered), {} vendor submissions, {resends} send-window re-sends",
        ids.len(),
        accepted.len(),
        created.len()
    );
}

#[tokio::test]
async fn sigkill_while_alipay_notifications_arrive_credits_every_order_once() {
    let mock = mock_alipay::start(AlipayMode::Normal).await;
    let opts = alipay_opts(&mock, &[]);
    let mut server = Server::start(opts.clone()).await;
    let phone = "13900000103";
    let (http, csrf) = common::console::login(&server, phone).await;
    let mut notifications = Vec::new();
    for i in 1..=8 {
        let (status, order) = common::console::post(
            &http,
            &server,
            "/api/recharge/alipay",
            json!({"amount": format!("{i}.00")}),
            Some(&csrf),
        )
        .await;
        assert_eq!(status, 201, "{order}");
        notifications.push(mock.pay_silently(order["order_id"].as_str().unwrap()));
    }
    let url = server.url("/api/payments/alipay/notify");
    let kill_after = rand::random_range(0..30);
    eprintln!("SIGKILL after {kill_after} ms");
    let deliveries: Vec<_> = notifications
        .iter()
        .cloned()
        .map(|n| {
            let url = url.clone();
            tokio::spawn(async move {
                reqwest::Client::new()
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(serde_urlencoded::to_string(&n).unwrap())
                    .send()
                    .await
                    .ok()
            })
        })
        .collect();
    // The scenario: the notifications run for a random while (printed above) before the kill.
    tokio::time::sleep(Duration::from_millis(kill_after)).await;
    for d in deliveries {
        let _ = d.await;
    }
    server.kill9();
    let server = server.restart(opts).await;
    // Alipay retries every notification that did not get `success`; here: all of them again.
    for n in &notifications {
        assert_eq!(MockAlipay::deliver(&url, n).await, "success");
    }
    let total: i64 = (1..=8).map(|i| i * 100).sum();
    let (balance, sum) = server.money(phone).await;
    assert_eq!((balance, sum), (total, total));
    assert_eq!(
        scalar(
            &server,
            "SELECT CAST(COUNT(*) AS BIGINT) FROM ledger WHERE kind = 'recharge'"
        )
        .await,
        8
    );
    assert_eq!(
        scalar(
            &server,
            "SELECT CAST(COUNT(*) AS BIGINT) FROM recharge_orders WHERE status = 'SUCCEEDED'"
        )
        .await,
        8
    );
}

/// A TCP proxy in front of PostgreSQL that can cut every connection and refuse new ones.
struct CutProxy {
    port: u16,
    up: Arc<AtomicBool>,
    cut: Arc<tokio::sync::Notify>,
}

async fn cut_proxy(target: &str) -> CutProxy {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let up = Arc::new(AtomicBool::new(true));
    let cut = Arc::new(tokio::sync::Notify::new());
    let target = target.to_owned();
    let (up2, cut2) = (up.clone(), cut.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            if !up2.load(Ordering::SeqCst) {
                continue; // dropped: connection refused-like
            }
            let target = target.clone();
            let cut = cut2.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    () = cut.notified() => {}
                }
            });
        }
    });
    CutProxy { port, up, cut }
}

impl CutProxy {
    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }
    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

// Multi-threaded: the proxy's tasks must run while the harness waits for the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_503_and_recovers_without_a_restart() {
    // Always PostgreSQL (the scale-out store; SQLite is a local file that cannot go away).
    let admin_url = common::postgres_admin_url();
    let name = common::test_database_name();
    {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("this test needs PostgreSQL at {admin_url}: {e}"));
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let target = reqwest::Url::parse(&admin_url).unwrap();
    let proxy = cut_proxy(&format!(
        "{}:{}",
        target.host_str().unwrap(),
        target.port().unwrap_or(5432)
    ))
    .await;
    let url = format!("postgres://postgres@127.0.0.1:{}/{name}", proxy.port);
    let server = Server::start_in(Opts::demo(), tempfile::tempdir().unwrap(), url).await;
    let chat = json!({"model": "qwen3-max", "prompt": "你好"});
    let (status, _) = server
        .post_json("/llmage/v1/chat/completions", Some(DEMO_KEY), &chat)
        .await;
    assert_eq!(status, 200);

    proxy.down();
    let started = std::time::Instant::now();
    let (status, body) = server
        .post_json("/llmage/v1/chat/completions", Some(DEMO_KEY), &chat)
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"].is_string(), "{body}");
    assert!(started.elapsed() < Duration::from_secs(15));
    let (status, _) = server.get_json("/healthz", None).await;
    assert_eq!(status, 503);

    proxy.restore();
    eventually(Duration::from_secs(20), "chat works again", || async {
        server
            .post_json("/llmage/v1/chat/completions", Some(DEMO_KEY), &chat)
            .await
            .0
            == 200
    })
    .await;
    let (status, _) = server.get_json("/healthz", None).await;
    assert_eq!(status, 200);
    server.wait_no_open_holds().await;
    let (balance, sum) = server.money_units(common::demo_phone()).await;
    assert_eq!(balance, sum);
    assert!(!server.log().contains("panicked"));
}

#[tokio::test]
async fn a_full_disk_fails_cleanly_and_recovers_without_a_restart() {
    let data_dir = tempfile::tempdir().unwrap();
    let files = data_dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&files)
        .status()
        .expect("mount");
    assert!(
        mounted.success(),
        "this test needs to mount a small tmpfs (root)"
    );
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(files.clone());
    let url = common::database_url(data_dir.path()).await;
    let mut opts = Opts::demo();
    opts.env = vec![
        ("LLMAGE_VENDORS__POLL_FIRST_MS".into(), "50".into()),
        ("LLMAGE_VENDORS__POLL_MAX_MS".into(), "300".into()),
    ];
    let server = Server::start_in(opts, data_dir, url).await;
    // Fill the disk.
    let filler = files.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 1024 * 1024]);

    // An upload needs the disk at submission: refused cleanly, nothing charged.
    let before = server.money(common::demo_phone()).await.0;
    let form = reqwest::multipart::Form::new()
        .text("model", "happyhorse-1.0-i2v")
        .text("catelogid", "i2v")
        .text("prompt", "动起来")
        .text("duration", "3")
        .part(
            "image_file",
            reqwest::multipart::Part::bytes(common::jpeg("disk", 256)).file_name("a.jpg"),
        );
    let resp = server
        .http
        .post(server.url("/llmage/v1/video/generations"))
        .bearer_auth(DEMO_KEY)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(server.money(common::demo_phone()).await.0, before);

    // A task whose result cannot be archived waits (its credits held, nothing half-written
    // served) and is retried until its deadline...
    let (status, created) = server
        .post_json(
            "/llmage/v1/image/generations",
            Some(DEMO_KEY),
            &json!({"model": "wan2.2-t2i-plus", "catelogid": "t2i", "prompt": "猫"}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let id = created["taskid"].as_str().unwrap().to_owned();
    eventually(
        Duration::from_secs(20),
        "an archiving failure is logged",
        || async {
            server
                .log()
                .contains("archiving results failed; will retry")
        },
    )
    .await;
    let (_, task) = server
        .get_json(&format!("/llmage/v1/tasks?taskid={id}"), Some(DEMO_KEY))
        .await;
    assert!(
        task["image"].is_null() && task["status"] != "SUCCEEDED",
        "{task}"
    );
    assert_eq!(
        server.money(common::demo_phone()).await.0,
        before - 20,
        "held, not lost"
    );

    // ...and once there is space again, the same gateway finishes it and takes new work.
    std::fs::remove_file(&filler).unwrap();
    let task = server
        .finish_task(DEMO_KEY, &id, Duration::from_secs(30))
        .await;
    assert_eq!(task["status"], "SUCCEEDED", "{task}");
    let (status, created) = server
        .post_json(
            "/llmage/v1/image/generations",
            Some(DEMO_KEY),
            &json!({"model": "wan2.2-t2i-plus", "catelogid": "t2i", "prompt": "狗"}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let task = server
        .finish_task(
            DEMO_KEY,
            created["taskid"].as_str().unwrap(),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(task["status"], "SUCCEEDED", "{task}");
    assert_eq!(server.money(common::demo_phone()).await.0, before - 40);
    let (balance, sum) = server.money(common::demo_phone()).await;
    assert_eq!(balance, sum);
    assert!(!server.log().contains("panicked"));
}

/// One image task through one DashScope channel behaving as `mode` (or, with `None`, a channel
/// whose address refuses connections): the final task and the balance change.
async fn one_task_against(mode: Option<DashScopeMode>) -> (Value, i64, String) {
    let base = match mode {
        Some(mode) => mock_dashscope::start(mode).await.base_url,
        None => format!("http://127.0.0.1:{}", common::free_port()),
    };
    let mut opts = vendor_opts();
    opts.env
        .push(("LLMAGE_TASK_IMAGE_DEADLINE_SECS".into(), "4".into()));
    opts.env
        .push(("LLMAGE_OUTBOUND_ALLOW".into(), "[\"127.0.0.1\"]".into()));
    let server = Server::start(opts).await;
    let phone = "13900000110";
    let key = server.user(phone, 1_000);
    server
        .add_channel("dashscope", &base, DASHSCOPE_KEY, "wan2.2-t2i-plus", &[])
        .await;
    server.wait_routable(&key, "wan2.2-t2i-plus").await;
    let (status, created) = server
        .post_json(
            "/llmage/v1/image/generations",
            Some(&key),
            &json!({"model": "wan2.2-t2i-plus", "catelogid": "t2i", "prompt": "猫"}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let task = server
        .finish_task(
            &key,
            created["taskid"].as_str().unwrap(),
            Duration::from_secs(30),
        )
        .await;
    let (balance, sum) = server.money(phone).await;
    assert_eq!(balance, sum);
    server.wait_no_open_holds().await;
    assert!(!server.log().contains("panicked"));
    (task, 1_000 - balance, server.log())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_faults_end_tasks_in_a_defined_state_with_the_right_money() {
    use DashScopeMode as M;
    let cases: Vec<(&str, Option<M>, &str, i64)> = vec![
        ("connection refused", None, "FAILED", 0),
        (
            "200 with a body that is not JSON",
            Some(M::SubmitNotJson),
            "FAILED",
            0,
        ),
        (
            "200 with an error body",
            Some(M::SubmitOkButError),
            "FAILED",
            0,
        ),
        (
            "429 with Retry-After, then fine",
            Some(M::SubmitRetryAfterOnce),
            "SUCCEEDED",
            20,
        ),
        (
            "slow headers (over the submit timeout)",
            Some(M::SubmitSlow),
            "FAILED",
            0,
        ),
        ("polls answer garbage", Some(M::PollNotJson), "FAILED", 0),
        (
            "a vendor task that never finishes",
            Some(M::NeverFinishes),
            "FAILED",
            0,
        ),
        (
            "results 404 when archived",
            Some(M::ResultGone),
            "FAILED",
            0,
        ),
        ("the vendor fails the task", Some(M::TaskFails), "FAILED", 0),
    ];
    let runs =
        futures_util::future::join_all(cases.iter().map(|(_, mode, _, _)| one_task_against(*mode)))
            .await;
    let mut table = String::new();
    let reasons = [
        "cannot reach the vendor",
        "unreadable",
        "DataInspectionFailed",
        "",
        "timed out",
        "last problem: vendor sent an unreadable answer",
        "timed out",
        "last problem: 结果文件无法下载或保存",
        "DataInspectionFailed",
    ];
    for (((what, _, status, charged), (task, spent, _log)), reason) in
        cases.iter().zip(runs).zip(reasons)
    {
        assert!(
            task["error"].as_str().unwrap_or("").contains(reason),
            "{what}: expected {reason:?} in {task}"
        );
        table.push_str(&format!(
            "{what}: {} / charged {spent} / {}\n",
            task["status"], task["error"]
        ));
        assert_eq!(task["status"], *status, "{what}: {task}");
        assert_eq!(spent, *charged, "{what}: {task}");
        if *status == "FAILED" {
            let error = task["error"].as_str().unwrap_or("");
            assert!(!error.is_empty(), "{what}: a failed task says why: {task}");
            assert!(!error.contains(DASHSCOPE_KEY), "{what}: {error}");
        }
    }
    eprintln!("{table}");
}

/// One chat call (streamed or not) through one OpenAI-compatible channel behaving as `mode`
/// (`None`: an address that refuses connections): status, body, credits taken.
async fn one_chat_against(
    mode: Option<common::mock_openai::Mode>,
    stream: bool,
) -> (u16, String, i64, Option<String>) {
    let base = match mode {
        Some(mode) => common::mock_openai::start(mode).await.base_url,
        None => format!("http://127.0.0.1:{}/v1", common::free_port()),
    };
    let opts = Opts {
        env: vec![
            ("LLMAGE_UPSTREAM_FIRST_BYTE_TIMEOUT_SECS".into(), "1".into()),
            ("LLMAGE_UPSTREAM_IDLE_TIMEOUT_SECS".into(), "1".into()),
        ],
        ..Opts::default()
    };
    let server = Server::start(opts).await;
    let phone = "13900000120";
    let key = server.user(phone, 100_000);
    server
        .add_channel(
            "openai",
            &base,
            common::mock_openai::MOCK_KEY,
            "metered",
            &["--price-in", "1000", "--price-out", "1000"],
        )
        .await;
    eventually(Duration::from_secs(5), "channel", || async {
        let (_, list) = server.get_json("/llmage/v1/models", Some(&key)).await;
        list["data"]
            .as_array()
            .is_some_and(|d| d.iter().any(|m| m["id"] == "metered"))
    })
    .await;
    let resp = server
        .http
        .post(server.url("/llmage/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": "metered", "prompt": "hi", "stream": stream}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.text().await.unwrap_or_default();
    eventually(Duration::from_secs(10), "reservation closed", || async {
        open_reservations(&server).await == 0
    })
    .await;
    let (balance, sum) = server.money_units(phone).await;
    assert_eq!(balance, sum);
    assert!(!server.log().contains("panicked"));
    (status, body, 100_000 * 10_000 - balance, retry_after)
}

/// (what, mode, stream, status, the body contains, units taken)
type ChatCase = (
    &'static str,
    Option<common::mock_openai::Mode>,
    bool,
    u16,
    &'static str,
    std::ops::RangeInclusive<i64>,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_faults_end_chat_calls_with_a_clear_error_and_the_right_money() {
    use common::mock_openai::Mode as M;
    // (what, mode, stream, status, body contains, units taken (1/10,000 credit))
    let cases: Vec<ChatCase> = vec![
        (
            "connection refused",
            None,
            false,
            502,
            "Upstream error",
            0..=0,
        ),
        (
            "slow headers",
            Some(M::HangHeaders),
            false,
            504,
            "Upstream timed out",
            0..=0,
        ),
        (
            "200 with a body that is not JSON",
            Some(M::NotJson),
            false,
            502,
            "unreadable",
            0..=0,
        ),
        (
            "429 with Retry-After",
            Some(M::Throttled),
            false,
            503,
            "retry after 7 s",
            0..=0,
        ),
        (
            "stream stalls (slow body)",
            Some(M::Stall),
            true,
            200,
            "\"error\"",
            1..=50_000,
        ),
        (
            "stream reset mid-way",
            Some(M::Reset),
            true,
            200,
            "\"error\"",
            1..=50_000,
        ),
    ];
    let runs = futures_util::future::join_all(
        cases
            .iter()
            .map(|(_, mode, stream, ..)| one_chat_against(*mode, *stream)),
    )
    .await;
    for ((what, _, _, status, needle, credits), (got_status, body, spent, retry_after)) in
        cases.iter().zip(runs)
    {
        if *status == 503 {
            assert_eq!(
                retry_after.as_deref(),
                Some("7"),
                "{what}: the vendor's Retry-After passed on"
            );
        }
        eprintln!(
            "{what}: {got_status} / charged {spent} / {}",
            body.chars().take(160).collect::<String>()
        );
        assert_eq!(got_status, *status, "{what}: {body}");
        assert!(
            body.contains(needle),
            "{what}: expected {needle:?} in {body}"
        );
        assert!(credits.contains(&spent), "{what}: charged {spent}");
        assert!(!body.contains(common::mock_openai::MOCK_KEY));
    }
}
