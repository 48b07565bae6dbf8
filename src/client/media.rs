//! `llmage image …` and `llmage video …`: submit a generation task (JSON, or multipart/form-data
//! when there are `--file` parts), print its id, then — unless `--no-wait` — poll
//! `/llmage/v1/tasks` about once a second with a progress line on stderr, download the result
//! into `--out` and print the paths and the credits charged. Ctrl-C while waiting only stops
//! waiting: the task goes on on the server and `llmage task ID` shows it later.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use futures_util::StreamExt;
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;

use super::{Api, Connection, Interrupted, ensure_success, http_error};

const IMAGE_PATH: &str = "/llmage/v1/image/generations";
const VIDEO_PATH: &str = "/llmage/v1/video/generations";
const TASKS_PATH: &str = "/llmage/v1/tasks";
const POLL_EVERY: Duration = Duration::from_secs(1);
/// Consecutive failed polls (network errors, 429, 5xx) before giving up.
const MAX_POLL_FAILURES: u32 = 30;
/// Fields set by their own flags, not by `--param`.
const RESERVED: [&str; 3] = ["model", "catelogid", "prompt"];

#[derive(Args, Debug)]
pub struct ImageArgs {
    /// 分类 / Category.
    #[arg(long, default_value = "t2i", value_name = "ID")]
    pub catelogid: String,
    #[command(flatten)]
    pub task: TaskOptions,
}

#[derive(Args, Debug)]
pub struct VideoArgs {
    /// 分类(必填)/ Category (required): t2v | i2v | ref2v.
    #[arg(long, value_name = "ID")]
    pub catelogid: String,
    #[command(flatten)]
    pub task: TaskOptions,
}

/// What `image` and `video` share.
#[derive(Args, Debug)]
pub struct TaskOptions {
    #[command(flatten)]
    pub conn: Connection,
    /// 模型 / Model id (e.g. wan2.2-t2i-plus, happyhorse-1.0-t2v).
    #[arg(long, short = 'm', value_name = "MODEL")]
    pub model: String,
    /// 提示词 / Prompt.
    #[arg(long, value_name = "TEXT")]
    pub prompt: String,
    /// 其他参数,可重复;整数按数字发送 / Other field, repeatable; integers are sent as numbers
    /// (e.g. --param duration=5 --param ratio=16:9).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// 上传文件,可重复(同名字段重复即数组)/ File part, repeatable (repeat a field for an
    /// array, e.g. --file image_files=a.jpg --file image_files=b.jpg); switches to multipart.
    #[arg(long = "file", value_name = "FIELD=PATH", value_parser = parse_file)]
    pub files: Vec<(String, PathBuf)>,
    /// 结果保存目录 / Directory to save the result into.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub out: PathBuf,
    /// 只提交,不等待 / Submit only; print the task id and exit.
    #[arg(long)]
    pub no_wait: bool,
    /// 幂等键:同一个键只创建一次任务 / Idempotency key: the same key creates the task once.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
}

/// A malformed `--param KEY=VALUE` or `--file FIELD=PATH` (clap prints it after the flag).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairError {
    #[error("应为 KEY=VALUE / expected KEY=VALUE, got {0:?}")]
    NotKeyValue(String),
    #[error("参数名为空 / empty parameter name in {0:?}")]
    EmptyKey(String),
    #[error("应为 字段=路径 / expected FIELD=PATH (e.g. image_file=./a.jpg), got {0:?}")]
    NotFieldPath(String),
    #[error("字段名为空 / empty field name in {0:?}")]
    EmptyField(String),
    #[error("文件路径为空 / empty file path in {0:?}")]
    EmptyPath(String),
}

/// `KEY=VALUE` of `--param`.
pub fn parse_param(s: &str) -> Result<(String, String), PairError> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| PairError::NotKeyValue(s.to_owned()))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(PairError::EmptyKey(s.to_owned()));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// `FIELD=PATH` of `--file`.
pub fn parse_file(s: &str) -> Result<(String, PathBuf), PairError> {
    let (field, path) = s
        .split_once('=')
        .ok_or_else(|| PairError::NotFieldPath(s.to_owned()))?;
    let field = field.trim();
    if field.is_empty() {
        return Err(PairError::EmptyField(s.to_owned()));
    }
    if path.is_empty() {
        return Err(PairError::EmptyPath(s.to_owned()));
    }
    Ok((field.to_owned(), PathBuf::from(path)))
}

/// A `--param` value as JSON: a canonical integer (`5`, `-3`, not `05` or `+5`) becomes a number,
/// anything else stays a string.
pub fn typed_value(value: &str) -> Value {
    match value.parse::<i64>() {
        Ok(n) if n.to_string() == value => Value::from(n),
        _ => Value::String(value.to_owned()),
    }
}

/// The body of a submission.
#[derive(Debug, PartialEq)]
pub enum Payload {
    /// No files: one JSON object.
    Json(Value),
    /// Files: multipart/form-data, parts in order (text first, then files).
    Form(Vec<FormPart>),
}

#[derive(Debug, PartialEq)]
pub enum FormPart {
    Text(String, String),
    File(String, PathBuf),
}

/// Decide the body from the arguments: JSON without files, multipart with them.
pub fn build_payload(catelogid: &str, opts: &TaskOptions) -> anyhow::Result<Payload> {
    let mut seen: Vec<&str> = Vec::new();
    for (key, _) in &opts.params {
        if RESERVED.contains(&key.as_str()) {
            bail!("请用 --{key} 而不是 --param {key}=… / use --{key} instead of --param {key}=…");
        }
        if seen.contains(&key.as_str()) {
            bail!("重复的参数 / --param {key} given twice");
        }
        seen.push(key);
    }
    let fixed = [
        ("model", opts.model.as_str()),
        ("catelogid", catelogid),
        ("prompt", opts.prompt.as_str()),
    ];
    if opts.files.is_empty() {
        let mut body = Map::new();
        for (key, value) in fixed {
            body.insert(key.into(), Value::String(value.to_owned()));
        }
        for (key, value) in &opts.params {
            body.insert(key.clone(), typed_value(value));
        }
        return Ok(Payload::Json(Value::Object(body)));
    }
    let mut parts: Vec<FormPart> = fixed
        .iter()
        .map(|(k, v)| FormPart::Text((*k).to_owned(), (*v).to_owned()))
        .collect();
    parts.extend(
        opts.params
            .iter()
            .map(|(k, v)| FormPart::Text(k.clone(), v.clone())),
    );
    parts.extend(
        opts.files
            .iter()
            .map(|(k, p)| FormPart::File(k.clone(), p.clone())),
    );
    Ok(Payload::Form(parts))
}

async fn multipart_form(parts: Vec<FormPart>) -> anyhow::Result<reqwest::multipart::Form> {
    let mut form = reqwest::multipart::Form::new();
    for part in parts {
        form = match part {
            FormPart::Text(name, value) => form.text(name, value),
            FormPart::File(name, path) => {
                let cannot = || format!("无法读取文件 / cannot read file {}", path.display());
                let meta = tokio::fs::metadata(&path).await.with_context(cannot)?;
                if !meta.is_file() {
                    bail!(
                        "不是普通文件 / not a regular file: {} (--file {name}=…)",
                        path.display()
                    );
                }
                let file = reqwest::multipart::Part::file(&path)
                    .await
                    .with_context(cannot)?;
                form.part(name, file)
            }
        };
    }
    Ok(form)
}

pub async fn run_image(args: ImageArgs) -> anyhow::Result<()> {
    run(IMAGE_PATH, &args.catelogid, args.task).await
}

pub async fn run_video(args: VideoArgs) -> anyhow::Result<()> {
    run(VIDEO_PATH, &args.catelogid, args.task).await
}

async fn run(path: &str, catelogid: &str, opts: TaskOptions) -> anyhow::Result<()> {
    let api = Api::new(&opts.conn)?;
    let payload = build_payload(catelogid, &opts)?;
    if !opts.no_wait {
        tokio::fs::create_dir_all(&opts.out)
            .await
            .with_context(|| {
                format!(
                    "无法创建目录 / cannot create directory {}",
                    opts.out.display()
                )
            })?;
    }
    let mut request = api.post(path);
    if let Some(key) = &opts.idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    request = match payload {
        Payload::Json(body) => request.json(&body),
        Payload::Form(parts) => request.multipart(multipart_form(parts).await?),
    };
    let started = Instant::now();
    let answer = api.json(request).await?;
    let taskid = answer["taskid"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| anyhow!("服务器没有返回任务号 / the server returned no taskid: {answer}"))?
        .to_owned();
    println!("任务 / task: {taskid}");
    flush_stdout();
    if opts.no_wait {
        eprintln!("稍后查询 / check it later: llmage task {taskid}");
        return Ok(());
    }
    let tty = std::io::stderr().is_terminal();
    let stop = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = wait_and_fetch(&api, &taskid, &opts.out, started, tty) => result,
        () = stop => {
            remove_partials(&opts.out, &taskid).await;
            if tty {
                eprintln!();
            }
            eprintln!(
                "已停止等待,任务仍在服务器上继续 / stopped waiting; the task goes on on the server."
            );
            eprintln!("稍后查询 / check it later: llmage task {taskid}");
            Err(Interrupted.into())
        }
    }
}

async fn wait_and_fetch(
    api: &Api,
    taskid: &str,
    out: &Path,
    started: Instant,
    tty: bool,
) -> anyhow::Result<()> {
    let task = wait(api, taskid, started, tty).await?;
    let mut saved: Vec<PathBuf> = Vec::new();
    for kind in ["video", "image"] {
        if let Some(url) = task[kind].as_str().filter(|u| !u.is_empty()) {
            let path = download(api, url, out, taskid, kind, &saved).await?;
            println!("已保存 / saved: {}", path.display());
            flush_stdout();
            saved.push(path);
        }
    }
    if saved.is_empty() {
        bail!("任务已完成但没有结果链接 / the task succeeded but has no result URL: {task}");
    }
    match &task["usage"]["credits"] {
        Value::Null => {}
        credits => println!("消耗积分 / credits charged: {credits}"),
    }
    Ok(())
}

/// Poll until SUCCEEDED (the task JSON) or FAILED (an error with the task's message).
async fn wait(api: &Api, taskid: &str, started: Instant, tty: bool) -> anyhow::Result<Value> {
    let mut progress = Progress::new(tty);
    let mut failures = 0;
    loop {
        match poll(api, taskid).await {
            Ok(task) => {
                failures = 0;
                let status = task["status"].as_str().unwrap_or("?").to_owned();
                progress.show(&status, started.elapsed());
                match status.as_str() {
                    "SUCCEEDED" => {
                        progress.done();
                        return Ok(task);
                    }
                    "FAILED" => {
                        progress.done();
                        let error = task["error"].as_str().unwrap_or("(无说明 / no message)");
                        bail!("任务失败 / task failed: {error}");
                    }
                    _ => {}
                }
            }
            Err(Poll::Fatal(e)) => {
                progress.done();
                return Err(e);
            }
            Err(Poll::Transient(e)) => {
                failures += 1;
                if failures >= MAX_POLL_FAILURES {
                    progress.done();
                    return Err(e.context(format!(
                        "查询任务连续失败 {failures} 次 / polling failed {failures} times in a row"
                    )));
                }
                progress.warn(&format!("查询失败,稍后重试 / poll failed, retrying: {e:#}"));
            }
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

enum Poll {
    /// Network trouble, 429 or 5xx: try again.
    Transient(anyhow::Error),
    /// 4xx or a malformed answer: stop.
    Fatal(anyhow::Error),
}

async fn poll(api: &Api, taskid: &str) -> Result<Value, Poll> {
    let request = api
        .get(TASKS_PATH)
        .query(&[("taskid", taskid)])
        .timeout(Duration::from_secs(30));
    let response = api.send(request).await.map_err(Poll::Transient)?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| Poll::Transient(anyhow!("{e}")))?;
    if !status.is_success() {
        let e = anyhow!("{}", http_error(status.as_u16(), &text));
        return Err(if status.as_u16() == 429 || status.is_server_error() {
            Poll::Transient(e)
        } else {
            Poll::Fatal(e)
        });
    }
    serde_json::from_str(&text).map_err(|_| {
        Poll::Fatal(anyhow!(
            "服务器返回的不是 JSON / the server's answer is not JSON: {}",
            super::snippet(&text)
        ))
    })
}

/// The status line on stderr: redrawn in place on a terminal, a line per change otherwise.
struct Progress {
    tty: bool,
    last: Option<String>,
    drawn: bool,
}

impl Progress {
    fn new(tty: bool) -> Progress {
        Progress {
            tty,
            last: None,
            drawn: false,
        }
    }

    fn show(&mut self, status: &str, elapsed: Duration) {
        let line = format!(
            "状态 / status: {status} · 已用时 / elapsed {}",
            format_elapsed(elapsed)
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[K{line}");
            self.drawn = true;
        } else if self.last.as_deref() != Some(status) {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
        self.last = Some(status.to_owned());
    }

    fn warn(&mut self, message: &str) {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
        eprintln!("{message}");
    }

    /// Leave the last status visible and move to a new line.
    fn done(&mut self) {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }
}

/// `12s`, `2m05s`, `1h02m03s`.
pub fn format_elapsed(elapsed: Duration) -> String {
    let s = elapsed.as_secs();
    match (s / 3600, (s / 60) % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, m, sec) => format!("{h}h{m:02}m{sec:02}s"),
    }
}

/// The file-name stem for a task id: only `[A-Za-z0-9._-]`, never starting with a dot.
pub fn file_stem(taskid: &str) -> String {
    let stem: String = taskid
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let stem = stem.trim_start_matches('.');
    if stem.is_empty() {
        "task".to_owned()
    } else {
        stem.to_owned()
    }
}

/// The extension for a result: from its Content-Type, else from the URL, else by kind.
pub fn extension(content_type: Option<&str>, url: &str, kind: &str) -> String {
    let mime = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    let known = match mime.as_deref() {
        Some("image/png") => Some("png"),
        Some("image/jpeg" | "image/jpg" | "image/pjpeg") => Some("jpg"),
        Some("image/webp") => Some("webp"),
        Some("image/gif") => Some("gif"),
        Some("video/mp4") => Some("mp4"),
        Some("video/webm") => Some("webm"),
        Some("video/quicktime") => Some("mov"),
        _ => None,
    };
    if let Some(ext) = known {
        return ext.to_owned();
    }
    // `…/cover.jpeg` or `/idfile?path=/…/video.mp4`.
    let last = url
        .split(['?', '#', '/', '='])
        .rfind(|s| !s.is_empty())
        .unwrap_or("");
    if let Some((_, ext)) = last.rsplit_once('.') {
        let ext = ext.to_ascii_lowercase();
        if (1..=5).contains(&ext.len()) && ext.chars().all(|c| c.is_ascii_alphanumeric()) {
            return if ext == "jpeg" { "jpg".into() } else { ext };
        }
    }
    match kind {
        "video" => "mp4".into(),
        _ => "bin".into(),
    }
}

fn partial_path(out: &Path, taskid: &str, kind: &str) -> PathBuf {
    out.join(format!(".{}-{kind}.part", file_stem(taskid)))
}

async fn remove_partials(out: &Path, taskid: &str) {
    for kind in ["video", "image"] {
        let _ = tokio::fs::remove_file(partial_path(out, taskid, kind)).await;
    }
}

/// Fetch one result (without the API key) into `out/<taskid>.<ext>`, or
/// `out/<taskid>-<kind>.<ext>` when an earlier result of this task took that name.
async fn download(
    api: &Api,
    url: &str,
    out: &Path,
    taskid: &str,
    kind: &str,
    taken: &[PathBuf],
) -> anyhow::Result<PathBuf> {
    let failed = || format!("下载失败 / download failed: {url}");
    let response = api
        .send(api.get_anonymous(url))
        .await
        .with_context(failed)?;
    let response = ensure_success(response).await.with_context(failed)?;
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let ext = extension(content_type.as_deref(), url, kind);
    let stem = file_stem(taskid);
    let mut path = out.join(format!("{stem}.{ext}"));
    if taken.contains(&path) {
        path = out.join(format!("{stem}-{kind}.{ext}"));
    }
    let partial = partial_path(out, taskid, kind);
    let result = async {
        let mut file = tokio::fs::File::create(&partial)
            .await
            .with_context(|| format!("无法写入 / cannot write {}", partial.display()))?;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.with_context(failed)?;
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        drop(file);
        tokio::fs::rename(&partial, &path)
            .await
            .with_context(|| format!("无法写入 / cannot write {}", path.display()))
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    result?;
    Ok(path)
}

fn flush_stdout() {
    let _ = std::io::stdout().flush();
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use serde_json::json;

    use super::*;

    #[derive(Parser)]
    struct Image {
        #[command(flatten)]
        args: ImageArgs,
    }

    #[derive(Parser)]
    struct Video {
        #[command(flatten)]
        args: VideoArgs,
    }

    fn image(args: &[&str]) -> ImageArgs {
        Image::try_parse_from(std::iter::once("image").chain(args.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn no_files_means_json_with_typed_params() {
        let a = image(&[
            "--model",
            "wan2.2-t2i-plus",
            "--prompt",
            "一只猫",
            "--param",
            "negative_prompt=模糊",
            "--param",
            "duration=5",
            "--param",
            "seed=-3",
            "--param",
            "ratio=16:9",
            "--param",
            "code=007",
            "--param",
            "size=1280*720",
            "--param",
            "x=a=b",
        ]);
        assert_eq!(a.catelogid, "t2i");
        let Payload::Json(body) = build_payload(&a.catelogid, &a.task).unwrap() else {
            panic!("expected JSON");
        };
        assert_eq!(
            body,
            json!({"model":"wan2.2-t2i-plus","catelogid":"t2i","prompt":"一只猫",
                "negative_prompt":"模糊","duration":5,"seed":-3,"ratio":"16:9","code":"007",
                "size":"1280*720","x":"a=b"})
        );
        assert_eq!(a.task.out, PathBuf::from("."));
        assert!(!a.task.no_wait);
    }

    #[test]
    fn files_mean_multipart_with_repeated_parts() {
        let v = Video::try_parse_from([
            "video",
            "--catelogid",
            "ref2v",
            "-m",
            "doubao-seedance-2-0-260128",
            "--prompt",
            "过渡",
            "--param",
            "duration=4",
            "--file",
            "image_files=./1.jpg",
            "--file",
            "image_files=dir/2 b.jpg",
            "--out",
            "/tmp/x",
            "--no-wait",
        ])
        .unwrap()
        .args;
        let Payload::Form(parts) = build_payload(&v.catelogid, &v.task).unwrap() else {
            panic!("expected multipart");
        };
        let text = |k: &str, v: &str| FormPart::Text(k.into(), v.into());
        let file = |k: &str, p: &str| FormPart::File(k.into(), PathBuf::from(p));
        assert_eq!(
            parts,
            vec![
                text("model", "doubao-seedance-2-0-260128"),
                text("catelogid", "ref2v"),
                text("prompt", "过渡"),
                text("duration", "4"),
                file("image_files", "./1.jpg"),
                file("image_files", "dir/2 b.jpg"),
            ]
        );
        assert!(v.task.no_wait);
        assert_eq!(v.task.out, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn video_needs_a_catelogid() {
        let err = Video::try_parse_from(["video", "--model", "m", "--prompt", "p"])
            .err()
            .unwrap();
        assert!(err.to_string().contains("--catelogid"), "{err}");
    }

    #[test]
    fn file_and_param_syntax() {
        assert_eq!(
            parse_file("image1_file=./a=b.jpg").unwrap(),
            ("image1_file".into(), PathBuf::from("./a=b.jpg"))
        );
        assert_eq!(
            parse_file(" image_file =x.png").unwrap(),
            ("image_file".into(), PathBuf::from("x.png"))
        );
        for bad in ["a.jpg", "=a.jpg", "image_file="] {
            let err = parse_file(bad).unwrap_err();
            assert!(err.to_string().contains(" / "), "{bad}: {err}");
        }
        assert_eq!(parse_param("k=").unwrap(), ("k".into(), String::new()));
        assert!(parse_param("k").is_err());
        assert!(parse_param("=v").is_err());
        // Through clap, a bad value names the flag.
        let err =
            Image::try_parse_from(["image", "--model", "m", "--prompt", "p", "--file", "x.jpg"])
                .err()
                .unwrap()
                .to_string();
        assert!(err.contains("--file"), "{err}");
    }

    #[test]
    fn param_typing() {
        assert_eq!(typed_value("5"), json!(5));
        assert_eq!(typed_value("-12"), json!(-12));
        assert_eq!(typed_value("0"), json!(0));
        for s in [
            "05",
            "+5",
            "1.5",
            "5s",
            "",
            " 5",
            "99999999999999999999",
            "Y",
        ] {
            assert_eq!(typed_value(s), json!(s), "{s}");
        }
    }

    #[test]
    fn reserved_and_duplicate_params_are_rejected() {
        let a = image(&["--model", "m", "--prompt", "p", "--param", "model=x"]);
        let err = build_payload("t2i", &a.task).unwrap_err().to_string();
        assert!(err.contains("use --model"), "{err}");
        let a = image(&[
            "--model", "m", "--prompt", "p", "--param", "a=1", "--param", "a=2",
        ]);
        let err = build_payload("t2i", &a.task).unwrap_err().to_string();
        assert!(err.contains("given twice"), "{err}");
    }

    #[test]
    fn result_file_names() {
        assert_eq!(extension(Some("image/png"), "http://h/x", "image"), "png");
        assert_eq!(
            extension(Some("image/jpeg; charset=binary"), "", "image"),
            "jpg"
        );
        assert_eq!(extension(Some("video/mp4"), "", "video"), "mp4");
        let idfile = "http://h/idfile?path=/tmp/19/43/cover.jpeg";
        assert_eq!(
            extension(Some("application/octet-stream"), idfile, "image"),
            "jpg"
        );
        assert_eq!(
            extension(None, "http://h/a/video.mp4?sig=1", "video"),
            "mp4"
        );
        assert_eq!(extension(None, "http://h/idfile?id=abc", "video"), "mp4");
        assert_eq!(extension(None, "http://h/idfile?id=abc", "image"), "bin");
        assert_eq!(file_stem("task_01HX-ab.c"), "task_01HX-ab.c");
        assert_eq!(file_stem("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(file_stem(".."), "task");
    }

    #[tokio::test]
    async fn multipart_reads_files_and_names_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jpg");
        std::fs::write(&a, b"jpeg").unwrap();
        let parts = vec![
            FormPart::Text("model".into(), "m".into()),
            FormPart::File("image_files".into(), a.clone()),
            FormPart::File("image_files".into(), a),
        ];
        let form = multipart_form(parts).await.unwrap();
        assert!(form.boundary().len() > 10);
        let missing = dir.path().join("missing.jpg");
        let err = multipart_form(vec![FormPart::File("image_file".into(), missing.clone())])
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains(&format!("cannot read file {}", missing.display())));
        let err = multipart_form(vec![FormPart::File("image_file".into(), dir.path().into())])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn elapsed_format() {
        assert_eq!(format_elapsed(Duration::from_millis(12_400)), "12s");
        assert_eq!(format_elapsed(Duration::from_secs(125)), "2m05s");
        assert_eq!(format_elapsed(Duration::from_secs(3723)), "1h02m03s");
    }
}
