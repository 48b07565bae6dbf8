//! `llmage chat --model M [--system S] [PROMPT…]`: one question, the answer streamed to stdout as
//! it arrives (reasoning, if any, dimmed on stderr). The prompt comes from the arguments, or from
//! stdin when there are none. `--no-stream` waits for the whole answer.

use std::io::{IsTerminal, Read, Write};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::{Api, Connection, ensure_success, error_of};

const PATH: &str = "/llmage/v1/chat/completions";

#[derive(Args, Debug)]
pub struct ChatArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// 模型 / Model id (e.g. qwen3-max).
    #[arg(long, short = 'm', value_name = "MODEL")]
    pub model: String,
    /// 系统提示词 / System prompt.
    #[arg(long, short = 's', value_name = "TEXT")]
    pub system: Option<String>,
    /// 不用流式,等完整回答 / Wait for the whole answer instead of streaming it.
    #[arg(long)]
    pub no_stream: bool,
    /// 问题;省略时从标准输入读取 / The prompt; read from stdin when omitted.
    #[arg(value_name = "PROMPT")]
    pub prompt: Vec<String>,
}

pub async fn run(args: ChatArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.conn)?;
    let prompt = if args.prompt.is_empty() {
        read_stdin_prompt()?
    } else {
        args.prompt.join(" ")
    };
    if prompt.trim().is_empty() {
        bail!("问题为空 / the prompt is empty");
    }
    let body = request_body(
        &args.model,
        args.system.as_deref(),
        &prompt,
        !args.no_stream,
    );
    if args.no_stream {
        let answer = api.json(api.post(PATH).json(&body)).await?;
        print_whole(&answer)
    } else {
        stream(&api, &body).await
    }
}

fn read_stdin_prompt() -> anyhow::Result<String> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("请输入问题,Ctrl-D 结束 / type the prompt, end with Ctrl-D:");
    }
    let mut prompt = String::new();
    stdin
        .read_to_string(&mut prompt)
        .context("无法读取标准输入 / cannot read stdin")?;
    Ok(prompt)
}

/// The OpenAI form of the request.
pub fn request_body(model: &str, system: Option<&str>, prompt: &str, stream: bool) -> Value {
    let mut messages = Vec::new();
    if let Some(system) = system.filter(|s| !s.trim().is_empty()) {
        messages.push(json!({"role": "system", "content": system}));
    }
    messages.push(json!({"role": "user", "content": prompt}));
    json!({"model": model, "messages": messages, "stream": stream})
}

fn print_whole(answer: &Value) -> anyhow::Result<()> {
    if let Some(message) = error_of(answer) {
        bail!("{message}");
    }
    let message = &answer["choices"][0]["message"];
    let reasoning = message["reasoning_content"]
        .as_str()
        .or_else(|| answer["reasoning_content"].as_str())
        .filter(|s| !s.is_empty());
    let content = message["content"]
        .as_str()
        .or_else(|| answer["content"].as_str())
        .ok_or_else(|| anyhow!("回答里没有内容 / the answer has no content: {answer}"))?;
    let mut out = Output::new();
    if let Some(reasoning) = reasoning {
        out.reasoning(reasoning)?;
    }
    out.content(content)?;
    out.finish()
}

async fn stream(api: &Api, body: &Value) -> anyhow::Result<()> {
    let response = api
        .send(
            api.post(PATH)
                .header(reqwest::header::ACCEPT, "text/event-stream")
                .json(body),
        )
        .await?;
    let response = ensure_success(response).await?;
    let mut bytes = response.bytes_stream();
    let mut parser = SseParser::default();
    let mut out = Output::new();
    let mut done = false;
    'read: while let Some(chunk) = bytes.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                out.finish()?;
                return Err(anyhow!(
                    "回答流中断 / the answer stream broke off: {}",
                    super::error_chain(&e)
                ));
            }
        };
        for data in parser.push(&chunk) {
            if handle(&data, &mut out)? {
                done = true;
                break 'read;
            }
        }
    }
    if !done && let Some(data) = parser.finish() {
        done = handle(&data, &mut out)?;
    }
    out.finish()?;
    if !done {
        bail!("回答流未正常结束 / the answer stream ended without [DONE]");
    }
    Ok(())
}

/// Print one event; `true` at the end of the stream.
fn handle(data: &str, out: &mut Output) -> anyhow::Result<bool> {
    match parse_event(data) {
        Event::Done => Ok(true),
        Event::Delta { content, reasoning } => {
            if let Some(r) = reasoning {
                out.reasoning(&r)?;
            }
            if let Some(c) = content {
                out.content(&c)?;
            }
            Ok(false)
        }
        Event::Error(message) => {
            out.finish()?;
            bail!("{message}")
        }
        Event::Other => Ok(false),
    }
}

/// Where the text goes: the answer to stdout (flushed per chunk), reasoning to stderr.
struct Output {
    stdout: std::io::Stdout,
    dim: bool,
    in_reasoning: bool,
    wrote_content: bool,
    last_newline: bool,
}

impl Output {
    fn new() -> Output {
        Output {
            stdout: std::io::stdout(),
            dim: std::io::stderr().is_terminal(),
            in_reasoning: false,
            wrote_content: false,
            last_newline: true,
        }
    }

    fn reasoning(&mut self, text: &str) -> anyhow::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        let (dim, reset) = if self.dim {
            ("\x1b[2m", "\x1b[0m")
        } else {
            ("", "")
        };
        let mut err = std::io::stderr().lock();
        if !self.in_reasoning {
            self.in_reasoning = true;
            writeln!(err, "{dim}[思考 / reasoning]{reset}")?;
        }
        write!(err, "{dim}{text}{reset}")?;
        err.flush()?;
        Ok(())
    }

    fn end_reasoning(&mut self) -> anyhow::Result<()> {
        if self.in_reasoning {
            self.in_reasoning = false;
            let mut err = std::io::stderr().lock();
            writeln!(err, "\n[回答 / answer]")?;
            err.flush()?;
        }
        Ok(())
    }

    fn content(&mut self, text: &str) -> anyhow::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        self.end_reasoning()?;
        let mut out = self.stdout.lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
        self.wrote_content = true;
        self.last_newline = text.ends_with('\n');
        Ok(())
    }

    /// End the answer with a newline (also when it is cut short).
    fn finish(&mut self) -> anyhow::Result<()> {
        if self.in_reasoning && !self.wrote_content {
            self.in_reasoning = false;
            eprintln!();
        }
        if !self.last_newline || !self.wrote_content {
            let mut out = self.stdout.lock();
            out.write_all(b"\n")?;
            out.flush()?;
            self.last_newline = true;
        }
        Ok(())
    }
}

/// One SSE `data` payload, interpreted.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// `data: [DONE]`.
    Done,
    /// A chunk's `choices[0].delta` texts (absent or empty ones are `None`).
    Delta {
        content: Option<String>,
        reasoning: Option<String>,
    },
    /// `data: {"error": …}`.
    Error(String),
    /// Anything else (not JSON, usage-only chunks).
    Other,
}

pub fn parse_event(data: &str) -> Event {
    let data = data.trim();
    if data == "[DONE]" {
        return Event::Done;
    }
    let Ok(chunk) = serde_json::from_str::<Value>(data) else {
        return Event::Other;
    };
    if let Some(message) = error_of(&chunk) {
        return Event::Error(message);
    }
    let delta = &chunk["choices"][0]["delta"];
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let content = text(&delta["content"]);
    // Some upstreams put reasoning only at the top level (the seed's decorated chunks repeat
    // it there); take one source so nothing prints twice.
    let reasoning = text(&delta["reasoning_content"]).or_else(|| {
        if delta.get("reasoning_content").is_some() {
            None
        } else {
            text(&chunk["reasoning_content"])
        }
    });
    if content.is_none() && reasoning.is_none() {
        return Event::Other;
    }
    Event::Delta { content, reasoning }
}

/// Incremental Server-Sent Events parser: feed bytes as they arrive, get the `data` of each
/// complete event (multi-line data joined with `\n`). Handles `\n`, `\r\n` and `\r` line ends,
/// lines and UTF-8 characters split across chunks, comments and non-data fields.
#[derive(Default)]
pub struct SseParser {
    buf: Vec<u8>,
    data: Option<String>,
    /// The previous chunk ended in `\r`: a leading `\n` belongs to it.
    skip_lf: bool,
}

impl SseParser {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut events = Vec::new();
        for &b in bytes {
            if self.skip_lf {
                self.skip_lf = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.skip_lf = b == b'\r';
                    let line = std::mem::take(&mut self.buf);
                    self.line(&String::from_utf8_lossy(&line), &mut events);
                }
                _ => self.buf.push(b),
            }
        }
        events
    }

    /// End of the stream: the pending event, if the last one was not terminated.
    pub fn finish(&mut self) -> Option<String> {
        let mut events = Vec::new();
        if !self.buf.is_empty() {
            let line = std::mem::take(&mut self.buf);
            self.line(&String::from_utf8_lossy(&line), &mut events);
        }
        self.line("", &mut events);
        events.pop()
    }

    fn line(&mut self, line: &str, events: &mut Vec<String>) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                events.push(data);
            }
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        if field == "data" {
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_openai_form() {
        let body = request_body("qwen3-max", Some("简洁"), "你好", true);
        assert_eq!(
            body,
            json!({"model":"qwen3-max","messages":[
                {"role":"system","content":"简洁"},
                {"role":"user","content":"你好"}],"stream":true})
        );
        let body = request_body("m", None, "hi", false);
        assert_eq!(body["messages"].as_array().unwrap().len(), 1);
        assert_eq!(body["stream"], false);
        assert_eq!(
            request_body("m", Some(" "), "hi", true)["messages"][0]["role"],
            "user"
        );
    }

    #[test]
    fn sse_events_across_chunk_boundaries() {
        let stream = "data: {\"a\":1}\n\n: keep-alive\n\nevent: x\ndata: 你好\r\n\r\ndata: l1\ndata: l2\n\ndata: [DONE]\n\n";
        let bytes = stream.as_bytes();
        // Every split point, including inside the multi-byte 你 and between \r and \n.
        for split in 0..bytes.len() {
            let mut p = SseParser::default();
            let mut got = p.push(&bytes[..split]);
            got.extend(p.push(&bytes[split..]));
            assert_eq!(p.finish(), None);
            assert_eq!(
                got,
                vec!["{\"a\":1}", "你好", "l1\nl2", "[DONE]"],
                "split at {split}"
            );
        }
        // Byte by byte.
        let mut p = SseParser::default();
        let got: Vec<String> = bytes.iter().flat_map(|b| p.push(&[*b])).collect();
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn sse_unterminated_last_event() {
        let mut p = SseParser::default();
        assert!(p.push(b"data:x").is_empty());
        assert_eq!(p.finish().as_deref(), Some("x"));
        let mut p = SseParser::default();
        assert!(p.push(b"data: y\n").is_empty());
        assert_eq!(p.finish().as_deref(), Some("y"));
        assert_eq!(SseParser::default().finish(), None);
    }

    #[test]
    fn chunk_interpretation() {
        assert_eq!(parse_event("[DONE]"), Event::Done);
        assert_eq!(
            parse_event(
                r#"{"choices":[{"index":0,"delta":{"content":"你","role":"assistant"}}],"content":"你","reasoning_content":null,"finish":"0"}"#
            ),
            Event::Delta {
                content: Some("你".into()),
                reasoning: None
            }
        );
        assert_eq!(
            parse_event(
                r#"{"choices":[{"delta":{"content":"","reasoning_content":"想"}}],"reasoning_content":"想"}"#
            ),
            Event::Delta {
                content: None,
                reasoning: Some("想".into())
            }
        );
        // Reasoning only at the top level.
        assert_eq!(
            parse_event(r#"{"choices":[{"delta":{}}],"reasoning_content":"r"}"#),
            Event::Delta {
                content: None,
                reasoning: Some("r".into())
            }
        );
        assert_eq!(
            parse_event(r#"{"error":{"message":"upstream timed out"}}"#),
            Event::Error("upstream timed out".into())
        );
        assert_eq!(parse_event(r#"{"error":"x"}"#), Event::Error("x".into()));
        assert_eq!(
            parse_event(r#"{"choices":[],"usage":{"total_tokens":3}}"#),
            Event::Other
        );
        assert_eq!(
            parse_event(r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#),
            Event::Other
        );
        assert_eq!(parse_event("not json"), Event::Other);
    }
}
