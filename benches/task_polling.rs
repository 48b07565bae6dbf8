//! Benchmark: how many in-flight image/video tasks one `llmage serve` process keeps polling, and
//! what that costs in CPU and memory. Not a test; run it with
//!
//! ```sh
//! cargo bench --bench task_polling                       # 1,000 and 10,000 tasks, 60 s window
//! TASKS=1000 WINDOW_SECS=30 cargo bench --bench task_polling
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench task_polling
//! ```
//!
//! For each task count N it:
//! 1. starts a mock DashScope (the documented async protocol: `POST …/video-synthesis` with
//!    `X-DashScope-Async: enable` → `task_id`; `GET /api/v1/tasks/{id}` → PENDING, RUNNING, and
//!    SUCCEEDED with a `video_url` once released) inside this process, counting polls;
//! 2. starts the release `llmage serve` on a fresh data dir (SQLite, or a fresh PostgreSQL
//!    database with `BENCH_DATABASE_URL`) with a `dashscope` channel pointing at the mock, and
//!    the production poll schedule unless `LLMAGE_*` variables in the environment say otherwise;
//! 3. submits N `wan2.6-t2v` tasks through the public API (32 at a time) and waits until the mock
//!    holds all N;
//! 4. measures for `WINDOW_SECS` (default 60): polls per second the server sends, its CPU time
//!    (from /proc/PID/stat) and resident memory (VmRSS, VmHWM);
//! 5. releases the mock's tasks and measures how long the server takes to download, archive and
//!    settle all N (each result is a real MP4), then checks every task SUCCEEDED and the balance
//!    equals the ledger sum.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "a benchmark/example program: a failed setup should stop it, and it may spawn freely"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use sqlx::Row;

const MOCK_KEY: &str = "sk-bench-dashscope-key";
const PHONE: &str = "13600000000";

#[derive(Default)]
struct MockState {
    created: AtomicU64,
    polls: AtomicU64,
    downloads: AtomicU64,
    released: AtomicBool,
    mp4: Vec<u8>,
    base: std::sync::OnceLock<String>,
}

type Shared = Arc<MockState>;

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {MOCK_KEY}"))
}

fn vendor_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"code": code, "message": message, "request_id": "bench"})),
    )
        .into_response()
}

async fn create(State(state): State<Shared>, headers: HeaderMap, body: String) -> Response {
    if !authorized(&headers) {
        return vendor_error(
            StatusCode::UNAUTHORIZED,
            "InvalidApiKey",
            "Invalid API-key provided.",
        );
    }
    if headers
        .get("x-dashscope-async")
        .and_then(|v| v.to_str().ok())
        != Some("enable")
    {
        return vendor_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "current user api does not support synchronous calls",
        );
    }
    if serde_json::from_str::<Value>(&body).is_err() {
        return vendor_error(StatusCode::BAD_REQUEST, "InvalidParameter", "bad json");
    }
    let n = state.created.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({"request_id": format!("req-{n}"),
        "output": {"task_id": format!("bench-{n}"), "task_status": "PENDING"}}))
    .into_response()
}

async fn query(
    State(state): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    if !authorized(&headers) {
        return vendor_error(
            StatusCode::UNAUTHORIZED,
            "InvalidApiKey",
            "Invalid API-key provided.",
        );
    }
    let n = state.polls.fetch_add(1, Ordering::Relaxed);
    let output = if state.released.load(Ordering::Relaxed) {
        let base = state.base.get().cloned().unwrap_or_default();
        json!({"task_id": id, "task_status": "SUCCEEDED",
               "submit_time": "2026-11-25 10:00:00.000", "end_time": "2026-11-25 10:01:00.000",
               "video_url": format!("{base}/files/{id}.mp4?Expires=1")})
    } else {
        let status = if n % 2 == 0 { "PENDING" } else { "RUNNING" };
        json!({"task_id": id, "task_status": status, "submit_time": "2026-11-25 10:00:00.000"})
    };
    axum::Json(json!({"request_id": format!("poll-{n}"), "output": output,
        "usage": {"duration": 1, "video_count": 1}}))
    .into_response()
}

async fn file(State(state): State<Shared>) -> Response {
    state.downloads.fetch_add(1, Ordering::Relaxed);
    ([("content-type", "video/mp4")], state.mp4.clone()).into_response()
}

async fn start_mock() -> (Shared, String) {
    let video = llmage::media::sandbox_video("bench", "16:9", 1).expect("sandbox video");
    let state = Arc::new(MockState {
        mp4: video.mp4,
        ..MockState::default()
    });
    let app = Router::new()
        .route(
            "/api/v1/services/aigc/video-generation/video-synthesis",
            post(create),
        )
        .route("/api/v1/tasks/{id}", get(query))
        .route("/files/{name}", get(file))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let _ = state.base.set(base.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (state, base)
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_llmage"))
}

fn admin(data: &Path, db_url: &str, args: &[&str]) -> String {
    let out = Command::new(bin())
        .arg("admin")
        .arg("--data-dir")
        .arg(data)
        .arg("--database-url")
        .arg(db_url)
        .args(args)
        .output()
        .expect("llmage admin");
    assert!(
        out.status.success(),
        "admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

async fn database_url(dir: &Path) -> String {
    match std::env::var("BENCH_DATABASE_URL") {
        Ok(server) if !server.is_empty() => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&server)
                .await
                .expect("PostgreSQL");
            let name = format!("llmage_bench_{}", llmage::util::ids::random_id());
            sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                .execute(&mut conn)
                .await
                .expect("create db");
            let mut url = reqwest::Url::parse(&server).expect("url");
            url.set_path(&format!("/{name}"));
            url.to_string()
        }
        _ => format!("sqlite://{}?mode=rwc", dir.join("llmage.db").display()),
    }
}

/// CPU seconds (user + system) and (VmRSS, VmHWM) in KiB of a process.
fn proc_sample(pid: u32) -> (f64, u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields after the command: state is [0]; utime is field 14 → index 11; stime → 12.
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    let hz = 100.0; // USER_HZ on Linux
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (ticks as f64 / hz, kib("VmRSS:"), kib("VmHWM:"))
}

struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn run(n: u64, window: Duration) {
    let (mock, mock_base) = start_mock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db_url = database_url(dir.path()).await;
    let key = admin(
        dir.path(),
        &db_url,
        &[
            "user",
            "create",
            "--phone",
            PHONE,
            "--credits",
            "100000000000",
        ],
    );
    admin(
        dir.path(),
        &db_url,
        &[
            "channel",
            "add",
            "--vendor",
            "dashscope",
            "--base-url",
            &mock_base,
            "--api-key",
            MOCK_KEY,
            "--models",
            "wan2.6-t2v",
        ],
    );
    let mut child = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .arg("--database-url")
        .arg(&db_url)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        // One client submits everything: rate limits stay on but far above the load.
        .env("LLMAGE_LIMITS__PER_KEY_PER_SEC", "1000000")
        .env("LLMAGE_LIMITS__PER_KEY_BURST", "1000000")
        .env("LLMAGE_LIMITS__PER_IP_PER_SEC", "1000000")
        .env("LLMAGE_LIMITS__PER_IP_BURST", "1000000")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("server.log")).expect("log"),
        ))
        .spawn()
        .expect("llmage serve");
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout");
    let server = ServerProcess(child);
    let base = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| {
                l.strip_prefix("llmage listening on ")
                    .map(|b| b.trim().to_owned())
            })
    })
    .await
    .expect("join")
    .expect("the server did not start");

    // Submit N tasks, 32 at a time.
    let http = reqwest::Client::new();
    let started = Instant::now();
    let (cpu0, _, _) = proc_sample(pid);
    let url = format!("{base}/llmage/v1/video/generations");
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..32 {
        let (http, url, key, next) = (http.clone(), url.clone(), key.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let resp = http
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&json!({"model": "wan2.6-t2v", "catelogid": "t2v", "prompt": "bench", "duration": 5, "size": "832*480"}))
                    .send()
                    .await
                    .expect("submit");
                assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
            }
        }));
    }
    for w in workers {
        w.await.expect("worker");
    }
    let submit_secs = started.elapsed().as_secs_f64();
    let (cpu1, _, _) = proc_sample(pid);
    while mock.created.load(Ordering::SeqCst) < n {
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "tasks never reached the vendor"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent_secs = started.elapsed().as_secs_f64();

    // Steady state: every task is with the vendor and keeps being polled.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let polls0 = mock.polls.load(Ordering::Relaxed);
    let (cpu_a, _, _) = proc_sample(pid);
    let t0 = Instant::now();
    let mut rss_max = 0;
    while t0.elapsed() < window {
        tokio::time::sleep(Duration::from_millis(500)).await;
        rss_max = rss_max.max(proc_sample(pid).1);
    }
    let secs = t0.elapsed().as_secs_f64();
    let polls = mock.polls.load(Ordering::Relaxed) - polls0;
    let (cpu_b, rss, hwm) = proc_sample(pid);

    // Release: every task succeeds; the server downloads, archives and settles each.
    mock.released.store(true, Ordering::SeqCst);
    let t1 = Instant::now();
    let db = llmage::storage::Db::connect(&db_url).await.expect("db");
    let succeeded = loop {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM tasks WHERE status = 'SUCCEEDED'",
        )
        .fetch_one(db.reader())
        .await
        .expect("count");
        let done: i64 = row.try_get("n").expect("n");
        if done as u64 >= n || t1.elapsed() > Duration::from_secs(3600) {
            break done;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let drain_secs = t1.elapsed().as_secs_f64();
    let (cpu_c, _, hwm_end) = proc_sample(pid);
    let user_id: i64 = sqlx::query("SELECT id FROM users WHERE phone = $1")
        .bind(PHONE)
        .fetch_one(db.reader())
        .await
        .expect("user")
        .try_get("id")
        .expect("id");
    let ledger = llmage::billing::ledger::Ledger::new(db.clone());
    let balance = ledger.balance(user_id).await.expect("balance");
    let sum = ledger.ledger_sum(user_id).await.expect("sum");
    db.close().await;
    drop(server);

    let backend = if db_url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!("== {n} in-flight tasks ({backend})");
    println!(
        "  submit            {n} tasks in {submit_secs:.1} s ({:.0}/s), server CPU {:.1} s; all at the vendor after {sent_secs:.1} s",
        n as f64 / submit_secs,
        cpu1 - cpu0
    );
    println!(
        "  steady polling    {:.1} polls/s over {secs:.0} s = each task polled every {:.1} s; server CPU {:.1}% of one core ({:.0} µs/poll)",
        polls as f64 / secs,
        n as f64 / (polls as f64 / secs).max(1e-9),
        100.0 * (cpu_b - cpu_a) / secs,
        1e6 * (cpu_b - cpu_a) / (polls.max(1) as f64)
    );
    println!(
        "  memory            RSS {:.1} MiB now, {:.1} MiB max in window, peak (VmHWM) {:.1} MiB",
        rss as f64 / 1024.0,
        rss_max as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    println!(
        "  drain             {succeeded}/{n} SUCCEEDED (downloaded, archived, settled) in {drain_secs:.1} s, CPU {:.1} s, peak RSS {:.1} MiB; vendor downloads {}",
        cpu_c - cpu_b,
        hwm_end as f64 / 1024.0,
        mock.downloads.load(Ordering::Relaxed)
    );
    println!(
        "  money             balance {balance} == ledger sum {sum}: {}",
        if balance == sum { "yes" } else { "NO" }
    );
    assert_eq!(succeeded as u64, n, "every task must succeed");
    assert_eq!(balance, sum);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would run this too: skip then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let counts: Vec<u64> = std::env::var("TASKS")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let window = Duration::from_secs(
        std::env::var("WINDOW_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for n in counts {
        runtime.block_on(run(n, window));
    }
}
