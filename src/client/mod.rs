//! The client side of the binary: `llmage chat|image|video|task|models …` talk to a running llmage
//! server over HTTP (`LLMAGE_BASE_URL`, `LLMAGE_API_KEY`, or `--base-url` / `--api-key`). They
//! never load the server config or open a database.
//!
//! One file per command ([`chat`], [`media`] for `image` and `video`, [`task`], [`models`]); this file holds
//! the clap definitions they share, the HTTP client, URL joining and the server's error bodies.
//! User-facing text is Chinese first with English alongside.

mod chat;
mod media;
mod models;
mod task;

use std::fmt;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

/// Default server when neither `--base-url` nor `LLMAGE_BASE_URL` is given.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8080";

/// The client subcommands, flattened into the top-level `llmage` command.
#[derive(Subcommand)]
pub enum ClientCommand {
    /// 对话(流式输出)/ Chat with a model, streaming the answer to stdout.
    #[command(after_help = CHAT_EXAMPLES)]
    Chat(chat::ChatArgs),
    /// 生成图片并下载 / Generate an image (t2i), wait for it and download it.
    #[command(after_help = IMAGE_EXAMPLES)]
    Image(media::ImageArgs),
    /// 生成视频并下载 / Generate a video (t2v, i2v, ref2v), wait for it and download it.
    #[command(after_help = VIDEO_EXAMPLES)]
    Video(media::VideoArgs),
    /// 查询任务 / Show an image or video task.
    #[command(after_help = TASK_EXAMPLES)]
    Task(task::TaskArgs),
    /// 模型列表与价格 / List the catalog's models with their prices.
    #[command(after_help = MODELS_EXAMPLES)]
    Models(models::ModelsArgs),
}

// The examples under each command's `--help`. tests/cli_help.rs runs every line that starts
// with `  llmage ` against a demo server, so they stay true.
const CHAT_EXAMPLES: &str = "\
Examples / 示例 (LLMAGE_BASE_URL and LLMAGE_API_KEY set):
  llmage chat -m qwen3-max 你好
  llmage chat -m qwen3-max -s 回答要简洁 --no-stream 介绍一下你自己
  echo 1+2 | llmage chat --model qwen3-max
";
const IMAGE_EXAMPLES: &str = "\
Examples / 示例:
  llmage image -m wan2.2-t2i-plus --prompt 一只猫 --out /tmp
  llmage image -m wan2.2-t2i-plus --prompt 一只猫 --param negative_prompt=模糊 --no-wait
";
const VIDEO_EXAMPLES: &str = "\
Examples / 示例:
  llmage video --catelogid t2v -m happyhorse-1.0-t2v --prompt 海边日落 --param duration=5 --out /tmp
  llmage video --catelogid t2v -m viduq3-pro --prompt 海边日落 --no-wait
";
const TASK_EXAMPLES: &str = "\
Examples / 示例 (TASKID from `llmage image … --no-wait`):
  llmage task TASKID
  llmage task TASKID --json
";
const MODELS_EXAMPLES: &str = "\
Examples / 示例:
  llmage models
  llmage models --category t2v
  llmage models --json
";

/// Where the server is and who we are; shared by every client command.
#[derive(Args, Clone, Debug)]
pub struct Connection {
    /// 服务器地址 / Server base URL.
    #[arg(
        long,
        env = "LLMAGE_BASE_URL",
        default_value = DEFAULT_BASE_URL,
        value_name = "URL"
    )]
    pub base_url: String,
    /// API Key / API key (sent as `Authorization: Bearer …`).
    #[arg(
        long,
        env = "LLMAGE_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,
}

/// Returned after the user pressed Ctrl-C while waiting: the message is already printed and the
/// process exits with status 130.
#[derive(Debug)]
pub struct Interrupted;

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("已中断 / interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// Run one client command.
pub async fn run(command: ClientCommand) -> anyhow::Result<()> {
    match command {
        ClientCommand::Chat(args) => chat::run(args).await,
        ClientCommand::Image(args) => media::run_image(args).await,
        ClientCommand::Video(args) => media::run_video(args).await,
        ClientCommand::Task(args) => task::run(args).await,
        ClientCommand::Models(args) => models::run(args).await,
    }
}

/// An authenticated HTTP client for one server.
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    pub(crate) fn new(conn: &Connection) -> anyhow::Result<Api> {
        let base = normalize_base_url(&conn.base_url)?;
        let key = conn
            .api_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                anyhow!(
                    "缺少 API Key,请设置环境变量 LLMAGE_API_KEY 或使用 --api-key / \
                     missing API key: set LLMAGE_API_KEY or pass --api-key"
                )
            })?
            .to_owned();
        let http = reqwest::Client::builder()
            .user_agent(concat!("llmage-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(300))
            .build()
            .context("无法创建 HTTP 客户端 / cannot create the HTTP client")?;
        Ok(Api { http, base, key })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        join_url(&self.base, path)
    }

    pub(crate) fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path)).bearer_auth(&self.key)
    }

    pub(crate) fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(&self.key)
    }

    /// A request without the key (result files are fetchable without one, possibly elsewhere).
    pub(crate) fn get_anonymous(&self, url: &str) -> reqwest::RequestBuilder {
        self.http.get(url)
    }

    /// Send a request; a transport failure becomes a message naming the server.
    pub(crate) async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        request
            .send()
            .await
            .map_err(|e| transport_error(&self.base, &e))
    }

    /// Send a request and return its JSON body; non-2xx answers become the server's message.
    pub(crate) async fn json(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = ensure_success(self.send(request).await?).await?;
        let text = response
            .text()
            .await
            .map_err(|e| transport_error(&self.base, &e))?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "服务器返回的不是 JSON / the server's answer is not JSON: {}",
                snippet(&text)
            )
        })
    }
}

/// Check and tidy a base URL: http(s) only, no trailing slash; a trailing `/llmage/v1` (the
/// OpenAI SDK style base) is accepted and dropped since the commands add it themselves. An
/// empty value (`LLMAGE_BASE_URL=`) means the default.
pub fn normalize_base_url(raw: &str) -> anyhow::Result<String> {
    let trimmed = match raw.trim() {
        "" => DEFAULT_BASE_URL,
        trimmed => trimmed,
    };
    let invalid = || {
        anyhow!(
            "无效的服务器地址 / invalid base URL {trimmed:?} \
             (例如 / e.g. {DEFAULT_BASE_URL})"
        )
    };
    let url = reqwest::Url::parse(trimmed).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(invalid());
    }
    let mut base = trimmed.trim_end_matches('/');
    if let Some(stripped) = base.strip_suffix("/llmage/v1") {
        base = stripped.trim_end_matches('/');
    }
    Ok(base.to_owned())
}

/// `base` (already normalized) + `path` (starting with `/`), with exactly one slash between.
pub fn join_url(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// Turn a non-2xx response into an error carrying the server's message.
pub(crate) async fn ensure_success(
    response: reqwest::Response,
) -> anyhow::Result<reqwest::Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    bail!("{}", http_error(status.as_u16(), &body))
}

/// `请求失败 / request failed (HTTP 401): Invalid API Key`, with a hint for a bad key.
pub fn http_error(status: u16, body: &str) -> String {
    let message = error_message(body).unwrap_or_else(|| {
        if body.trim().is_empty() {
            "(空响应 / empty body)".to_owned()
        } else {
            snippet(body)
        }
    });
    let hint = if status == 401 {
        " — 请检查 LLMAGE_API_KEY / --api-key / check LLMAGE_API_KEY or --api-key"
    } else {
        ""
    };
    format!("请求失败 / request failed (HTTP {status}): {message}{hint}")
}

/// The message of `{"error": "…"}` (our API) or `{"error": {"message": "…"}}` (OpenAI style).
pub fn error_message(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    error_of(&value)
}

/// The error carried by a JSON value, if any (see [`error_message`]).
pub(crate) fn error_of(value: &Value) -> Option<String> {
    match value.get("error")? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => match o.get("message") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => Some(Value::Object(o.clone()).to_string()),
        },
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn transport_error(base: &str, e: &reqwest::Error) -> anyhow::Error {
    let what = if e.is_connect() {
        "无法连接服务器 / cannot connect to the server"
    } else if e.is_timeout() {
        "请求超时 / request timed out"
    } else {
        "请求出错 / request failed"
    };
    anyhow!("{what} ({base}): {}", error_chain(e))
}

/// An error and its sources on one line (reqwest's own message is terse).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// At most 300 characters of a body, for messages.
fn snippet(body: &str) -> String {
    let body = body.trim();
    match body.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &body[..i]),
        None => body.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_joining() {
        let base = normalize_base_url("http://127.0.0.1:8080/").unwrap();
        assert_eq!(base, "http://127.0.0.1:8080");
        assert_eq!(
            join_url(&base, "/llmage/v1/tasks"),
            "http://127.0.0.1:8080/llmage/v1/tasks"
        );
        // A path prefix (reverse proxy) is kept.
        let base = normalize_base_url("https://ai.example.com/gw").unwrap();
        assert_eq!(
            join_url(&base, "/llmage/v1/chat/completions"),
            "https://ai.example.com/gw/llmage/v1/chat/completions"
        );
        // The OpenAI SDK style base works too.
        for raw in [
            "http://h:1/llmage/v1",
            "http://h:1/llmage/v1/",
            " http://h:1// ",
        ] {
            let base = normalize_base_url(raw).unwrap();
            assert_eq!(
                join_url(&base, "/llmage/v1/tasks"),
                "http://h:1/llmage/v1/tasks",
                "{raw}"
            );
        }
        assert_eq!(join_url("http://h/", "x"), "http://h/x");
    }

    #[test]
    fn bad_base_urls_are_rejected() {
        assert_eq!(normalize_base_url(" ").unwrap(), DEFAULT_BASE_URL);
        for raw in ["127.0.0.1:8080", "ftp://h", "http://h/?a=1", "not a url"] {
            let err = normalize_base_url(raw).unwrap_err().to_string();
            assert!(err.contains("invalid base URL"), "{raw}: {err}");
            assert!(err.contains("无效的服务器地址"), "{raw}: {err}");
        }
    }

    #[test]
    fn missing_key_is_a_bilingual_error() {
        for key in [None, Some("  ".to_owned())] {
            let conn = Connection {
                base_url: DEFAULT_BASE_URL.into(),
                api_key: key,
            };
            let err = Api::new(&conn).err().unwrap().to_string();
            assert!(err.contains("缺少 API Key"), "{err}");
            assert!(err.contains("missing API key"), "{err}");
            assert!(err.contains("LLMAGE_API_KEY"), "{err}");
        }
    }

    #[test]
    fn server_error_bodies() {
        assert_eq!(
            error_message(r#"{"error":"Invalid API Key"}"#).as_deref(),
            Some("Invalid API Key")
        );
        assert_eq!(
            error_message(r#"{"error":{"message":"boom","type":"x"}}"#).as_deref(),
            Some("boom")
        );
        assert_eq!(error_message("<html>"), None);
        let msg = http_error(429, r#"{"error":"Insufficient balance"}"#);
        assert_eq!(
            msg,
            "请求失败 / request failed (HTTP 429): Insufficient balance"
        );
        assert!(http_error(401, r#"{"error":"Invalid API Key"}"#).contains("LLMAGE_API_KEY"));
        assert!(http_error(502, "").contains("empty body"));
        assert!(http_error(502, "Bad Gateway").ends_with("Bad Gateway"));
    }
}
