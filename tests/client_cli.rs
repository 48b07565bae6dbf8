//! The client commands of the binary (`llmage chat|image|video|task`) run as a user would, with
//! `LLMAGE_BASE_URL` / `LLMAGE_API_KEY` set: chat against a real demo server (streamed, whole,
//! from stdin, reasoning through an `openai` channel, errors); image/video against an in-test
//! mock of the task API (JSON and multipart bodies, polling, download, failure, Ctrl-C); and
//! image/video against the real demo server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use common::mock_openai::{self, MOCK_KEY, Mode};
use common::{DEMO_KEY, Opts, Server, eventually};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The sandbox's answer to 你好.
const HELLO_ANSWER: &str = "你好!我是 llmage 沙盒模型,有什么可以帮你?";

fn client(base: &str, key: Option<&str>, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(common::bin());
    cmd.args(args)
        .env("LLMAGE_BASE_URL", base)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    match key {
        Some(key) => cmd.env("LLMAGE_API_KEY", key),
        None => cmd.env_remove("LLMAGE_API_KEY"),
    };
    cmd
}

/// Run `llmage ARGS` to the end (with `stdin` fed in, if any).
async fn llmage(base: &str, key: Option<&str>, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = client(base, key, args);
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().expect("cannot run llmage");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).await.unwrap();
        drop(pipe);
    }
    tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("llmage {args:?} did not finish"))
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn failed(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "stdout: {}", text(&out.stdout));
    text(&out.stderr)
}

/// The id in the `任务 / task: ID` line.
fn task_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("任务 / task: "))
        .unwrap_or_else(|| panic!("no task line in {stdout}"))
        .trim()
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// chat against the real demo server

#[tokio::test]
async fn chat_streams_the_answer() {
    let server = Server::start(Opts::demo()).await;
    let base = server.base.as_str();

    let out = llmage(
        base,
        Some(DEMO_KEY),
        &["chat", "--model", "qwen3-max", "你好"],
        None,
    )
    .await;
    assert_eq!(ok(&out), format!("{HELLO_ANSWER}\n"));
    assert_eq!(text(&out.stderr), "", "nothing on stderr without reasoning");

    // The whole answer at once, the same text.
    let args = ["chat", "--model", "qwen3-max", "--no-stream", "你好"];
    let out = llmage(base, Some(DEMO_KEY), &args, None).await;
    assert_eq!(ok(&out), format!("{HELLO_ANSWER}\n"));

    // The prompt from stdin, a system prompt, and the key as a flag; the OpenAI-style base works.
    let sdk_base = format!("{base}/llmage/v1");
    let args = [
        "chat",
        "-m",
        "qwen3-max",
        "-s",
        "简洁",
        "--api-key",
        DEMO_KEY,
    ];
    let out = llmage(&sdk_base, None, &args, Some("你好\n")).await;
    // The sandbox says which system prompt it followed: proof that it arrived.
    assert_eq!(
        ok(&out),
        format!("(按系统提示「简洁」作答)\n{HELLO_ANSWER}\n")
    );

    // Several words make one prompt.
    let args = ["chat", "--model", "qwen3-max", "1", "+", "2"];
    let out = llmage(base, Some(DEMO_KEY), &args, None).await;
    assert_eq!(ok(&out), "The result is 3 (llmage offline sandbox).\n");
}

#[tokio::test]
async fn chat_reports_errors_in_both_languages() {
    let server = Server::start(Opts::demo()).await;
    let base = server.base.as_str();
    let chat = ["chat", "--model", "qwen3-max", "你好"];

    let err = failed(&llmage(base, None, &chat, None).await);
    assert!(
        err.contains("缺少 API Key") && err.contains("missing API key"),
        "{err}"
    );

    let err = failed(&llmage(base, Some("sk-wrong"), &chat, None).await);
    assert!(
        err.contains("HTTP 401") && err.contains("Invalid API Key"),
        "{err}"
    );
    assert!(
        err.starts_with("错误 / error: 请求失败 / request failed"),
        "{err}"
    );

    let args = ["chat", "--model", "no-such-model", "你好"];
    let err = failed(&llmage(base, Some(DEMO_KEY), &args, None).await);
    assert!(
        err.contains("HTTP 404") && err.contains("Model not found: no-such-model"),
        "{err}"
    );

    let args = ["chat", "--model", "qwen3-max", "--no-stream", "你好"];
    let err = failed(&llmage(base, Some("sk-wrong"), &args, None).await);
    assert!(err.contains("Invalid API Key"), "{err}");

    let err = failed(
        &llmage(
            base,
            Some(DEMO_KEY),
            &["chat", "--model", "qwen3-max"],
            Some("  \n"),
        )
        .await,
    );
    assert!(err.contains("the prompt is empty"), "{err}");

    let err = failed(&llmage("http://127.0.0.1:9", Some(DEMO_KEY), &chat, None).await);
    assert!(
        err.contains("无法连接服务器 / cannot connect to the server"),
        "{err}"
    );

    let err = failed(&llmage("localhost:8080", Some(DEMO_KEY), &chat, None).await);
    assert!(err.contains("invalid base URL"), "{err}");
}

#[tokio::test]
async fn chat_shows_reasoning_on_stderr_and_stream_errors() {
    let mock = mock_openai::start(Mode::Normal).await;
    let broken = mock_openai::start(Mode::BreakMidStream).await;
    let server = Server::start(Opts::demo()).await;
    for (url, model) in [
        (&mock.base_url, "my-llama"),
        (&broken.base_url, "my-broken"),
    ] {
        server
            .add_channel("openai", url, MOCK_KEY, model, &[])
            .await;
    }
    for model in ["my-llama", "my-broken"] {
        eventually(Duration::from_secs(5), "channel picked up", || async {
            let (_, list) = server.get_json("/llmage/v1/models", Some(DEMO_KEY)).await;
            list["data"]
                .as_array()
                .is_some_and(|d| d.iter().any(|m| m["id"] == model && m["available"] == true))
        })
        .await;
    }
    let base = server.base.as_str();

    for extra in [None, Some("--no-stream")] {
        let mut args = vec!["chat", "--model", "my-llama"];
        args.extend(extra);
        args.push("hi");
        let out = llmage(base, Some(DEMO_KEY), &args, None).await;
        assert_eq!(ok(&out), "Hello, world!\n", "{extra:?}");
        let err = text(&out.stderr);
        assert!(err.contains("[思考 / reasoning]"), "{err}");
        assert!(err.contains("Let me think."), "{err}");
        assert!(
            !text(&out.stdout).contains("think"),
            "reasoning stays off stdout"
        );
    }

    // An error event after HTTP 200: what arrived is printed, then the message, exit 1.
    let out = llmage(
        base,
        Some(DEMO_KEY),
        &["chat", "--model", "my-broken", "hi"],
        None,
    )
    .await;
    let err = failed(&out);
    assert!(text(&out.stdout).ends_with('\n'));
    assert!(err.contains("错误 / error: "), "{err}");
}

// ---------------------------------------------------------------------------------------------
// image / video against a mock of the task API

const MOCK_TASK_KEY: &str = "sk-mock-client-key";
const PNG_BYTES: &[u8] = b"\x89PNG\r\n\x1a\nnot really a png";
const JPEG_BYTES: &[u8] = b"\xff\xd8\xff\xe0cover";
const MP4_BYTES: &[u8] = b"\0\0\0\x18ftypmp42video";

#[derive(Clone, Copy, PartialEq)]
enum Outcome {
    Succeed,
    Fail,
    /// RUNNING forever.
    Never,
}

#[derive(Debug, Clone)]
struct Submitted {
    path: String,
    idempotency_key: Option<String>,
    json: Option<Value>,
    /// Multipart parts: (name, file name, bytes).
    parts: Vec<(String, Option<String>, Vec<u8>)>,
}

#[derive(Default)]
struct Seen {
    submitted: Mutex<Vec<Submitted>>,
    polls: AtomicUsize,
    /// The Authorization header of each download.
    download_auth: Mutex<Vec<Option<String>>>,
}

#[derive(Clone)]
struct MockState {
    outcome: Outcome,
    base: String,
    seen: Arc<Seen>,
}

struct MockTasks {
    base: String,
    seen: Arc<Seen>,
}

async fn start_mock(outcome: Outcome) -> MockTasks {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Seen::default());
    let state = MockState {
        outcome,
        base: base.clone(),
        seen: seen.clone(),
    };
    let app = Router::new()
        .route("/llmage/v1/image/generations", post(submit))
        .route("/llmage/v1/video/generations", post(submit))
        .route("/llmage/v1/tasks", get(task))
        .route("/files/{name}", get(file))
        .with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    MockTasks { base, seen }
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {MOCK_TASK_KEY}"))
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"error": "Invalid API Key"})),
    )
        .into_response()
}

async fn submit(State(state): State<MockState>, request: Request) -> Response {
    let headers = request.headers().clone();
    if !authorized(&headers) {
        return unauthorized();
    }
    let path = request.uri().path().to_owned();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut submitted = Submitted {
        path,
        idempotency_key: headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        json: None,
        parts: Vec::new(),
    };
    if content_type.starts_with("multipart/form-data") {
        let mut form = Multipart::from_request(request, &state).await.unwrap();
        while let Some(field) = form.next_field().await.unwrap() {
            let name = field.name().unwrap_or("").to_owned();
            let file_name = field.file_name().map(str::to_owned);
            let bytes = field.bytes().await.unwrap().to_vec();
            submitted.parts.push((name, file_name, bytes));
        }
    } else {
        assert_eq!(content_type, "application/json");
        let body = axum::body::to_bytes(request.into_body(), usize::MAX)
            .await
            .unwrap();
        submitted.json = Some(serde_json::from_slice(&body).unwrap());
    }
    state.seen.submitted.lock().unwrap().push(submitted);
    axum::Json(json!({"taskid": "tsk_42", "status": "CREATED"})).into_response()
}

async fn task(
    State(state): State<MockState>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    if q.get("taskid").map(String::as_str) != Some("tsk_42") {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "Task not found"})),
        )
            .into_response();
    }
    let n = state.seen.polls.fetch_add(1, Ordering::SeqCst);
    let submitted = state.seen.submitted.lock().unwrap().clone();
    let video = submitted.last().is_some_and(|s| s.path.contains("video"));
    let mut task =
        json!({"taskid": "tsk_42", "model": "m", "catelogid": if video { "i2v" } else { "t2i" }});
    let status = match (n, state.outcome) {
        (0, _) => "PENDING",
        (_, Outcome::Never) | (1, _) => "RUNNING",
        (_, Outcome::Fail) => {
            task["error"] = json!("content rejected");
            "FAILED"
        }
        (_, Outcome::Succeed) => {
            task["usage"] = json!({"credits": 12});
            if video {
                task["video"] = json!(format!("{}/files/video.mp4", state.base));
                task["image"] = json!(format!("{}/files/cover", state.base));
            } else {
                task["image"] = json!(format!("{}/files/image", state.base));
            }
            "SUCCEEDED"
        }
    };
    task["status"] = json!(status);
    axum::Json(task).into_response()
}

async fn file(
    State(state): State<MockState>,
    headers: HeaderMap,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    state.seen.download_auth.lock().unwrap().push(auth);
    let (mime, bytes) = match name.as_str() {
        "image" => ("image/png", PNG_BYTES),
        "cover" => ("image/jpeg", JPEG_BYTES),
        // No useful Content-Type: the extension comes from the URL.
        "video.mp4" => ("application/octet-stream", MP4_BYTES),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([("content-type", mime)], bytes).into_response()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn image_sends_json_polls_and_downloads() {
    let mock = start_mock(Outcome::Succeed).await;
    let out_dir = tempfile::tempdir().unwrap();
    let out_arg = out_dir.path().join("new/sub");
    let out_str = out_arg.to_str().unwrap();
    let args = [
        "image",
        "--model",
        "wan2.2-t2i-plus",
        "--prompt",
        "一只猫坐在月亮上",
        "--param",
        "negative_prompt=模糊,低质量",
        "--param",
        "n=2",
        "--param",
        "size=1024*1024",
        "--idempotency-key",
        "idem-1",
        "--out",
        out_str,
    ];
    let out = llmage(&mock.base, Some(MOCK_TASK_KEY), &args, None).await;
    let stdout = ok(&out);
    let stderr = text(&out.stderr);
    let submitted = mock.seen.submitted.lock().unwrap().clone();
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].path, "/llmage/v1/image/generations");
    assert_eq!(submitted[0].idempotency_key.as_deref(), Some("idem-1"));
    assert_eq!(
        submitted[0].json,
        Some(
            json!({"model":"wan2.2-t2i-plus","catelogid":"t2i","prompt":"一只猫坐在月亮上",
            "negative_prompt":"模糊,低质量","n":2,"size":"1024*1024"})
        )
    );
    assert_eq!(task_id(&stdout), "tsk_42");
    let saved = out_arg.join("tsk_42.png");
    assert!(
        stdout.contains(&format!("已保存 / saved: {}", saved.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains("消耗积分 / credits charged: 12"),
        "{stdout}"
    );
    assert_eq!(std::fs::read(&saved).unwrap(), PNG_BYTES);
    assert_eq!(files_in(&out_arg), ["tsk_42.png"], "no partial files left");
    // Not a terminal: one plain line per status.
    for status in ["PENDING", "RUNNING", "SUCCEEDED"] {
        let line = format!("状态 / status: {status} · 已用时 / elapsed ");
        assert_eq!(stderr.matches(&line).count(), 1, "{stderr}");
    }
    assert!(!stderr.contains('\r'), "{stderr}");
    assert_eq!(mock.seen.polls.load(Ordering::SeqCst), 3);
    // Results are fetched without the key.
    assert_eq!(*mock.seen.download_auth.lock().unwrap(), vec![None]);
}

#[tokio::test]
async fn video_sends_multipart_with_repeated_file_parts() {
    let mock = start_mock(Outcome::Succeed).await;
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("1.jpg");
    let b = dir.path().join("2.png");
    std::fs::write(&a, b"first image").unwrap();
    std::fs::write(&b, b"second image").unwrap();
    let file_a = format!("image_files={}", a.display());
    let file_b = format!("image_files={}", b.display());
    let out_dir = dir.path().join("out");
    let args = [
        "video",
        "--catelogid",
        "ref2v",
        "--model",
        "doubao-seedance-2-0-260128",
        "--prompt",
        "平滑过渡",
        "--param",
        "duration=4",
        "--param",
        "ratio=4:3",
        "--file",
        &file_a,
        "--file",
        &file_b,
        "--out",
        out_dir.to_str().unwrap(),
    ];
    let out = llmage(&mock.base, Some(MOCK_TASK_KEY), &args, None).await;
    let stdout = ok(&out);
    let submitted = mock.seen.submitted.lock().unwrap().clone();
    assert_eq!(submitted[0].path, "/llmage/v1/video/generations");
    assert_eq!(submitted[0].json, None);
    assert_eq!(submitted[0].idempotency_key, None);
    let part =
        |n: &str, f: Option<&str>, b: &[u8]| (n.to_owned(), f.map(str::to_owned), b.to_vec());
    assert_eq!(
        submitted[0].parts,
        vec![
            part("model", None, b"doubao-seedance-2-0-260128"),
            part("catelogid", None, b"ref2v"),
            part("prompt", None, "平滑过渡".as_bytes()),
            part("duration", None, b"4"),
            part("ratio", None, b"4:3"),
            part("image_files", Some("1.jpg"), b"first image"),
            part("image_files", Some("2.png"), b"second image"),
        ]
    );
    // The video and its cover.
    assert_eq!(files_in(&out_dir), ["tsk_42.jpg", "tsk_42.mp4"]);
    assert_eq!(
        std::fs::read(out_dir.join("tsk_42.mp4")).unwrap(),
        MP4_BYTES
    );
    assert_eq!(
        std::fs::read(out_dir.join("tsk_42.jpg")).unwrap(),
        JPEG_BYTES
    );
    assert!(
        stdout.contains("tsk_42.mp4") && stdout.contains("tsk_42.jpg"),
        "{stdout}"
    );

    // A missing file is caught before anything is sent.
    let before = mock.seen.submitted.lock().unwrap().len();
    let args = [
        "video",
        "--catelogid",
        "i2v",
        "--model",
        "m",
        "--prompt",
        "p",
        "--file",
        "image_file=/no/such/file.jpg",
    ];
    let err = failed(&llmage(&mock.base, Some(MOCK_TASK_KEY), &args, None).await);
    assert!(
        err.contains("无法读取文件 / cannot read file /no/such/file.jpg"),
        "{err}"
    );
    assert_eq!(mock.seen.submitted.lock().unwrap().len(), before);
}

#[tokio::test]
async fn no_wait_failure_and_task_command() {
    let mock = start_mock(Outcome::Fail).await;
    let base = mock.base.as_str();
    let out = llmage(
        base,
        Some(MOCK_TASK_KEY),
        &["image", "-m", "m", "--prompt", "p", "--no-wait"],
        None,
    )
    .await;
    assert_eq!(ok(&out), "任务 / task: tsk_42\n");
    assert!(text(&out.stderr).contains("llmage task tsk_42"));
    assert_eq!(mock.seen.polls.load(Ordering::SeqCst), 0);

    // PENDING, RUNNING, then FAILED.
    let out = llmage(base, Some(MOCK_TASK_KEY), &["task", "tsk_42"], None).await;
    assert!(ok(&out).contains("状态 / status: PENDING"));
    let out = llmage(
        base,
        Some(MOCK_TASK_KEY),
        &["task", "tsk_42", "--json"],
        None,
    )
    .await;
    let raw: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(raw["status"], "RUNNING");
    let out = llmage(base, Some(MOCK_TASK_KEY), &["task", "tsk_42"], None).await;
    let shown = ok(&out);
    assert!(shown.contains("任务 / task: tsk_42"), "{shown}");
    assert!(shown.contains("状态 / status: FAILED"), "{shown}");
    assert!(shown.contains("错误 / error: content rejected"), "{shown}");

    let err = failed(&llmage(base, Some(MOCK_TASK_KEY), &["task", "nope"], None).await);
    assert!(
        err.contains("HTTP 404") && err.contains("Task not found"),
        "{err}"
    );
    let err = failed(&llmage(base, Some("sk-bad"), &["task", "tsk_42"], None).await);
    assert!(err.contains("Invalid API Key"), "{err}");

    // Waiting on a task that fails: the error, exit 1, nothing saved.
    let mock = start_mock(Outcome::Fail).await;
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "image",
        "-m",
        "m",
        "--prompt",
        "p",
        "--out",
        dir.path().to_str().unwrap(),
    ];
    let err = failed(&llmage(&mock.base, Some(MOCK_TASK_KEY), &args, None).await);
    assert!(
        err.contains("任务失败 / task failed: content rejected"),
        "{err}"
    );
    assert!(files_in(dir.path()).is_empty());
}

#[tokio::test]
async fn ctrl_c_stops_waiting_only() {
    let mock = start_mock(Outcome::Never).await;
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "image",
        "-m",
        "m",
        "--prompt",
        "p",
        "--out",
        dir.path().to_str().unwrap(),
    ];
    let mut child = client(&mock.base, Some(MOCK_TASK_KEY), &args)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = stdout.next_line().await.unwrap().unwrap();
    assert_eq!(line, "任务 / task: tsk_42");
    // Waiting for sure: it has polled twice.
    eventually(Duration::from_secs(10), "two polls", || async {
        mock.seen.polls.load(Ordering::SeqCst) >= 2
    })
    .await;
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("llmage did not stop on Ctrl-C")
        .unwrap();
    assert_eq!(out.status.code(), Some(130));
    let err = text(&out.stderr);
    assert!(err.contains("the task goes on on the server"), "{err}");
    assert!(err.contains("llmage task tsk_42"), "{err}");
    assert!(!err.contains("错误 / error"), "{err}");
    assert!(files_in(dir.path()).is_empty());
}

// ---------------------------------------------------------------------------------------------
// image / video against the real demo server

#[tokio::test]
async fn image_and_video_against_the_demo_server() {
    let server = Server::start(Opts::demo()).await;
    let base = server.base.as_str();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_str().unwrap();

    let args = [
        "image",
        "--model",
        "wan2.2-t2i-flash",
        "--prompt",
        "一只猫坐在月亮上",
        "--out",
        out_dir,
    ];
    let out = llmage(base, Some(DEMO_KEY), &args, None).await;
    let stdout = ok(&out);
    let id = task_id(&stdout);
    let png = std::fs::read(dir.path().join(format!("{id}.png"))).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(stdout.contains("消耗积分 / credits charged: "), "{stdout}");

    let out = llmage(base, Some(DEMO_KEY), &["task", &id], None).await;
    assert!(ok(&out).contains("状态 / status: SUCCEEDED"));
    let out = llmage(base, Some(DEMO_KEY), &["task", &id, "--json"], None).await;
    let raw: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(raw["taskid"], id.as_str());
    assert!(raw["usage"]["credits"].is_number(), "{raw}");

    // Image to video, multipart with a real picture.
    let picture = dir.path().join("first.png");
    std::fs::write(
        &picture,
        llmage::media::sandbox_image("首帧", 64, 64).unwrap(),
    )
    .unwrap();
    let file = format!("image_file={}", picture.display());
    let args = [
        "video",
        "--catelogid",
        "i2v",
        "--model",
        "happyhorse-1.0-i2v",
        "--prompt",
        "南瓜飞上天",
        "--param",
        "duration=3",
        "--param",
        "resolution=720P",
        "--file",
        &file,
        "--out",
        out_dir,
    ];
    let out = llmage(base, Some(DEMO_KEY), &args, None).await;
    let id = task_id(&ok(&out));
    let mp4 = std::fs::read(dir.path().join(format!("{id}.mp4"))).unwrap();
    assert!(llmage::media::probe_mp4(&mp4).is_ok());

    // The seed's own error for a bad field.
    let args = [
        "video",
        "--catelogid",
        "t2v",
        "--model",
        "no-such-model",
        "--prompt",
        "p",
    ];
    let err = failed(&llmage(base, Some(DEMO_KEY), &args, None).await);
    assert!(
        err.contains("HTTP 404") || err.contains("HTTP 400"),
        "{err}"
    );
}
