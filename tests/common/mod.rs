//! Test harness: start the real `llmage` binary on a random port with a temporary data dir and
//! either SQLite (default) or a fresh PostgreSQL database when `LLMAGE_TEST_DATABASE_URL` is set
//! (then a connection failure fails the test; it never skips).

#![allow(
    dead_code,
    reason = "each test crate uses a different part of the harness"
)]

pub mod browser;
pub mod console;
pub mod mock_alipay;
pub mod mock_ark;
pub mod mock_dashscope;
pub mod mock_metered;
pub mod mock_openai;
pub mod mock_vidu;
pub mod mock_zhipu;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

pub const DEMO_KEY: &str = "sk-test-demo-key-0123456789abcdef";

/// The demo user's phone.
pub fn demo_phone() -> &'static str {
    llmage::demo::DEMO_PHONE
}

/// A running server.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub data_dir: tempfile::TempDir,
    pub database_url: String,
    pub http: reqwest::Client,
}

/// How to start it.
#[derive(Default, Clone)]
pub struct Opts {
    pub demo: bool,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Serve this data dir instead of the server's own temp dir (a second process on shared
    /// data); the log still goes to the own temp dir.
    pub shared_data_dir: Option<PathBuf>,
    /// Listen here instead of a random port.
    pub listen: Option<String>,
}

impl Opts {
    pub fn demo() -> Opts {
        Opts {
            demo: true,
            ..Opts::default()
        }
    }
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_llmage"))
}

/// The name of a new test database: `llmage_test_` (or `LLMAGE_TEST_DB_PREFIX`, which the test
/// command sets per run so that it drops only its own databases) and a random suffix.
pub fn test_database_name() -> String {
    let prefix = std::env::var("LLMAGE_TEST_DB_PREFIX")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "llmage_test_".into());
    format!("{prefix}{}", llmage::util::ids::random_id())
}

/// The PostgreSQL server for tests that always need one (`LLMAGE_TEST_DATABASE_URL`, else
/// `LLMAGE_TEST_POSTGRES_URL`, else the local default).
pub fn postgres_admin_url() -> String {
    ["LLMAGE_TEST_DATABASE_URL", "LLMAGE_TEST_POSTGRES_URL"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The Redis server for tests that need one (`LLMAGE_TEST_REDIS_URL`, else the local default).
pub fn redis_url() -> String {
    std::env::var("LLMAGE_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379/0".into())
}

/// A database URL for a new test: a fresh PostgreSQL database or SQLite in `dir`.
pub async fn database_url(dir: &std::path::Path) -> String {
    match std::env::var("LLMAGE_TEST_DATABASE_URL") {
        Ok(admin_url) if !admin_url.is_empty() => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin_url)
                .await
                .unwrap_or_else(|e| {
                    panic!("LLMAGE_TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}")
                });
            let name = test_database_name();
            sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("cannot create test database: {e}"));
            let mut url =
                reqwest::Url::parse(&admin_url).expect("LLMAGE_TEST_DATABASE_URL is not a URL");
            url.set_path(&format!("/{name}"));
            url.to_string()
        }
        _ => format!("sqlite://{}?mode=rwc", dir.join("llmage.db").display()),
    }
}

impl Server {
    pub async fn start(opts: Opts) -> Server {
        let data_dir = tempfile::tempdir().unwrap();
        let database_url = database_url(data_dir.path()).await;
        Self::start_in(opts, data_dir, database_url).await
    }

    /// Start on an existing data dir and database (restart scenarios).
    pub async fn start_in(opts: Opts, data_dir: tempfile::TempDir, database_url: String) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.path().join("server.log"))
            .unwrap();
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .arg("--listen")
            .arg(opts.listen.as_deref().unwrap_or("127.0.0.1:0"))
            .arg("--data-dir")
            .arg(opts.shared_data_dir.as_deref().unwrap_or(data_dir.path()))
            .arg("--database-url")
            .arg(&database_url)
            .env("LLMAGE_SANDBOX__CHAT_CHUNK_DELAY_MS", "1")
            .env("LLMAGE_TASK_LEASE_SECS", "2")
            // A killed process's chat holds come back within seconds.
            .env("LLMAGE_BILLING__HOLD_LEASE_SECS", "3")
            .env("LLMAGE_SANDBOX__IMAGE_MS", "300")
            .env("LLMAGE_SANDBOX__VIDEO_MS", "800")
            // New phones start at 0 credits and recharge needs Alipay, as outside demo mode;
            // tests of demo mode's trial credits and sandbox cashier turn them back on.
            .env("LLMAGE_SIGNUP_CREDITS", "0")
            .env("LLMAGE_SANDBOX__CASHIER", "false")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        if opts.demo {
            cmd.arg("--demo").arg("--demo-key").arg(DEMO_KEY);
        }
        cmd.args(&opts.args);
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("cannot start llmage");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("llmage listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(rest.trim().to_owned());
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                let log =
                    std::fs::read_to_string(data_dir.path().join("server.log")).unwrap_or_default();
                panic!("server did not start; log:\n{log}");
            }
        };
        Server {
            child: Some(child),
            base,
            data_dir,
            database_url,
            http: reqwest::Client::new(),
        }
    }

    /// The server process's id (while it runs).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Run `llmage admin …` against this server's data.
    pub fn admin(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .arg("admin")
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .arg("--database-url")
            .arg(&self.database_url)
            .args(args)
            .output()
            .expect("cannot run llmage admin")
    }

    /// `admin` that must succeed; returns stdout.
    pub fn admin_ok(&self, args: &[&str]) -> String {
        let out = self.admin(args);
        assert!(
            out.status.success(),
            "admin {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Create a user with credits and return its key.
    pub fn user(&self, phone: &str, credits: i64) -> String {
        self.admin_ok(&[
            "user",
            "create",
            "--phone",
            phone,
            "--credits",
            &credits.to_string(),
        ])
        .trim()
        .to_owned()
    }

    pub async fn db(&self) -> llmage::storage::Db {
        llmage::storage::Db::connect(&self.database_url)
            .await
            .unwrap()
    }

    /// (balance, ledger sum) of a user by phone, in whole credits; panics when either has a
    /// fraction of a credit (then use [`Server::money_units`]).
    pub async fn money(&self, phone: &str) -> (i64, i64) {
        let (balance, sum) = self.money_units(phone).await;
        let per = llmage::billing::UNITS_PER_CREDIT;
        assert!(
            balance % per == 0 && sum % per == 0,
            "{phone}: balance {balance} / ledger sum {sum} units are not whole credits"
        );
        (balance / per, sum / per)
    }

    /// A count from the server's database (`SELECT CAST(COUNT(*) AS BIGINT) …`).
    pub async fn count(&self, sql: &str) -> i64 {
        let db = self.db().await;
        let n: i64 = sqlx::query_scalar(sql)
            .fetch_one(db.reader())
            .await
            .unwrap();
        db.close().await;
        n
    }

    /// Holds (reservations) still open.
    pub async fn open_holds(&self) -> i64 {
        // Chat calls hold against their process's credit lease: a live lease is an open hold.
        self.count(
            "SELECT (SELECT CAST(COUNT(*) AS BIGINT) FROM reservations WHERE status = 'open') \
             + (SELECT CAST(COUNT(*) AS BIGINT) FROM credit_leases WHERE status = 'live')",
        )
        .await
    }

    /// Wait until no hold is open (a chat credit lease with no call in flight goes back within
    /// the server's linger, 100 ms, after its last call).
    pub async fn wait_no_open_holds(&self) {
        eventually(Duration::from_secs(10), "no open hold", || async {
            self.open_holds().await == 0
        })
        .await;
    }

    /// (balance, ledger sum) of a user by phone, in ledger units (1/10,000 credit).
    pub async fn money_units(&self, phone: &str) -> (i64, i64) {
        let db = self.db().await;
        let user = llmage::accounts::users::Users::new(db.clone())
            .by_phone(phone)
            .await
            .unwrap()
            .unwrap();
        let ledger = llmage::billing::ledger::Ledger::new(db.clone());
        let out = (
            ledger.balance(user.id).await.unwrap(),
            ledger.ledger_sum(user.id).await.unwrap(),
        );
        db.close().await;
        out
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.path().join("server.log")).unwrap_or_default()
    }

    pub async fn post_json(&self, path: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
        let mut req = self.http.post(self.url(path)).json(body);
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get_json(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// SIGKILL the server (no shutdown at all).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
    }

    /// Start a second server process on this one's data dir and database (both keep running).
    pub async fn start_sibling(&self, mut opts: Opts) -> Server {
        opts.shared_data_dir = Some(self.data_dir.path().to_owned());
        Server::start_in(
            opts,
            tempfile::tempdir().unwrap(),
            self.database_url.clone(),
        )
        .await
    }

    /// Start a new server process on the same data dir and database.
    pub async fn restart(mut self, opts: Opts) -> Server {
        self.kill9();
        let data_dir = std::mem::replace(&mut self.data_dir, tempfile::tempdir().unwrap());
        let url = self.database_url.clone();
        Server::start_in(opts, data_dir, url).await
    }

    /// Send SIGTERM and wait for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A free local port (for a server that must know its address before it starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Parse an SSE body into its `data:` payloads.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| {
            event
                .lines()
                .find_map(|l| l.strip_prefix("data:"))
                .map(|d| d.trim().to_owned())
        })
        .collect()
}

/// Wait until `check` holds (polling), or panic after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A real JPEG picture (for `@./x.jpg` files of the seed's curls and multipart tests).
pub fn jpeg(label: &str, side: u32) -> Vec<u8> {
    let png = llmage::media::sandbox_image(label, side, side).unwrap();
    let picture = image::load_from_memory(&png).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    picture
        .to_rgb8()
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}

/// The seed's `curl -X POST` blocks whose text contains `needle`.
pub fn seed_post_curls(needle: &str) -> Vec<String> {
    include_str!("../../docs/seed/api_zh.md")
        .split("```")
        .skip(1)
        .step_by(2)
        .filter(|b| b.contains("curl -X POST https://opencomputing.ai/llmage/v1/"))
        .filter(|b| b.contains(needle))
        .map(|b| b.trim().to_owned())
        .collect()
}

/// Run a seed curl block against `base` with `key`, in `dir` (for its `@./file` parts); the JSON
/// it printed.
pub async fn run_curl(block: &str, base: &str, key: &str, dir: &std::path::Path) -> Value {
    let script = block
        .replace("https://opencomputing.ai", base)
        .replace("<your-apikey>", key);
    let out = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(format!("{} --silent --show-error", script.trim_end()))
        .current_dir(dir)
        .output()
        .await
        .expect("cannot run bash");
    assert!(
        out.status.success(),
        "curl failed: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&out.stdout)))
}

impl Server {
    /// The one way tests add a channel: `admin channel add --vendor … --base-url … --api-key …
    /// --models …` plus `extra` flags (`--priority`, `--price-in`, `--name`, …), then wait until
    /// this server has loaded it ([`Server::wait_channels_synced`]). The CLI's output.
    pub async fn add_channel(
        &self,
        vendor: &str,
        base_url: &str,
        api_key: &str,
        models: &str,
        extra: &[&str],
    ) -> String {
        let mut args = vec![
            "channel",
            "add",
            "--vendor",
            vendor,
            "--base-url",
            base_url,
            "--api-key",
            api_key,
            "--models",
            models,
        ];
        args.extend_from_slice(extra);
        let out = self.admin_ok(&args);
        self.wait_channels_synced().await;
        out
    }

    /// Wait until this server's channel snapshot matches the database (`GET /healthz` answers
    /// `"channels": {"synced": true}`): a change the `admin` CLI made before this call has
    /// reached the server (its refresher reloads within 500 ms).
    pub async fn wait_channels_synced(&self) {
        let last = std::sync::Mutex::new(Value::Null);
        let started = tokio::time::Instant::now();
        let told = std::cell::Cell::new(false);
        eventually(Duration::from_secs(15), "channels synced", || async {
            if !told.get() && started.elapsed() > Duration::from_secs(2) {
                told.set(true);
                let log = self.log();
                let lines: Vec<&str> = log.lines().filter(|l| l.contains("channel")).collect();
                eprintln!("not synced after 2 s; the server's channel log lines: {lines:#?}");
            }
            let (status, health) = self.get_json("/healthz", None).await;
            assert!(
                status != 200 || health["channels"]["synced"].is_boolean(),
                "/healthz without channels.synced: {health}"
            );
            // Shown when the wait fails (nextest prints a failing test's output).
            let mut last = last.lock().unwrap();
            if *last != health {
                eprintln!("/healthz: {status} {health}");
                *last = health.clone();
            }
            status == 200 && health["channels"]["synced"] == true
        })
        .await;
    }

    /// Wait until `/llmage/v1/models` shows `model` available (channels added by the CLI reach
    /// the server within its 500 ms reload).
    pub async fn wait_routable(&self, key: &str, model: &str) {
        eventually(Duration::from_secs(5), "channel picked up", || async {
            let (_, list) = self.get_json("/llmage/v1/models", Some(key)).await;
            list["data"]
                .as_array()
                .is_some_and(|d| d.iter().any(|m| m["id"] == model && m["available"] == true))
        })
        .await;
    }

    /// Poll a task until SUCCEEDED or FAILED (or panic after `timeout`); the last answer.
    pub async fn finish_task(&self, key: &str, id: &str, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (status, task) = self
                .get_json(&format!("/llmage/v1/tasks?taskid={id}"), Some(key))
                .await;
            assert_eq!(status, 200, "{task}");
            if matches!(task["status"].as_str(), Some("SUCCEEDED" | "FAILED")) {
                return task;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "task {id} did not finish: {task}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
