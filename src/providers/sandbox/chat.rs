//! Sandbox chat: offline answers for every chat model, so demo mode and tests need no vendor
//! account. It behaves like a real upstream where a client can tell the difference: answers
//! address the prompt (greetings, "who are you", simple arithmetic, otherwise a structured reply
//! that quotes it) and say they come from the offline sandbox; the system prompt is followed
//! (answer language, brevity) and acknowledged; `n` gives that many choices; `max_tokens` cuts
//! each choice with `finish_reason: "length"`; `response_format` `json_object`/`json_schema`
//! gives valid JSON; `tools` give a `tool_calls` answer whose arguments fit the tool's schema (a
//! tool result in the conversation gets a text answer that uses it). Every completion has its
//! own id, and usage counts the whole input (messages, tools, response format) with the same
//! estimate as the billing (`billing::tokens`). Streams come in small chunks with realistic
//! pacing. This is a product feature, not a test mock.

use std::time::Duration;

use futures_util::StreamExt;
use rand::Rng;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::billing::tokens;
use crate::providers::{ChatReply, ProviderError};

/// Most choices one request may ask for (`n`).
const MAX_CHOICES: u64 = 8;

/// Offline chat.
#[derive(Debug, Clone)]
pub struct SandboxChat {
    /// Pause between two streamed chunks.
    pub chunk_delay: Duration,
}

/// One choice of a completion, before it is framed as JSON.
enum Choice {
    Text {
        content: String,
        finish: &'static str,
    },
    Tool {
        name: String,
        arguments: String,
    },
}

impl SandboxChat {
    /// Answer an upstream-shaped chat body.
    pub fn send(&self, body: &Value, stream: bool) -> Result<ChatReply, ProviderError> {
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("sandbox")
            .to_owned();
        let messages = body.get("messages").cloned().unwrap_or(Value::Null);
        let n = body
            .get("n")
            .and_then(Value::as_u64)
            .unwrap_or(1)
            .clamp(1, MAX_CHOICES);
        let limit = body
            .get("max_completion_tokens")
            .or_else(|| body.get("max_tokens"))
            .and_then(Value::as_u64);
        let prompt_tokens = prompt_tokens(body, &messages);
        let choices: Vec<Choice> = (0..n)
            .map(|i| answer(body, &model, &messages, i, n, limit))
            .collect();
        let completion_tokens: u64 = choices
            .iter()
            .map(|c| match c {
                Choice::Text { content, .. } => tokens::estimate(content),
                Choice::Tool { name, arguments } => {
                    tokens::estimate(name) + tokens::estimate(arguments)
                }
            })
            .sum();
        let usage = json!({
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        });
        let random: [u8; 12] = rand::rng().random();
        let id = format!("chatcmpl-sbx{}", hex::encode(random));
        let created = crate::util::clock::now_ms() / 1000;
        if !stream {
            let framed: Vec<Value> = choices
                .iter()
                .enumerate()
                .map(|(index, c)| match c {
                    Choice::Text { content, finish } => json!({"index": index,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": finish}),
                    Choice::Tool { name, arguments } => json!({"index": index,
                        "message": {"role": "assistant", "content": null, "tool_calls": [
                            {"id": call_id(), "type": "function",
                             "function": {"name": name, "arguments": arguments}}]},
                        "finish_reason": "tool_calls"}),
                })
                .collect();
            let completion = json!({
                "id": id, "object": "chat.completion", "created": created, "model": model,
                "choices": framed,
                "usage": usage,
            });
            return Ok(ChatReply::Complete(completion.to_string().into()));
        }
        let chunk = move |index: usize, delta: Value, finish: Option<&str>| {
            json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [{"index": index, "delta": delta, "finish_reason": finish}]})
        };
        let mut chunks = Vec::new();
        for (index, c) in choices.iter().enumerate() {
            match c {
                Choice::Text { content, finish } => {
                    chunks.push(chunk(
                        index,
                        json!({"role": "assistant", "content": ""}),
                        None,
                    ));
                    for piece in split_pieces(content, 4) {
                        chunks.push(chunk(index, json!({"content": piece}), None));
                    }
                    chunks.push(chunk(index, json!({}), Some(*finish)));
                }
                Choice::Tool { name, arguments } => {
                    let head = json!({"role": "assistant", "content": null, "tool_calls": [
                        {"index": 0, "id": call_id(), "type": "function",
                         "function": {"name": name, "arguments": ""}}]});
                    chunks.push(chunk(index, head, None));
                    for piece in split_pieces(arguments, 8) {
                        let delta = json!({"tool_calls": [
                            {"index": 0, "function": {"arguments": piece}}]});
                        chunks.push(chunk(index, delta, None));
                    }
                    chunks.push(chunk(index, json!({}), Some("tool_calls")));
                }
            }
        }
        let mut usage_chunk = chunk(0, json!({}), None);
        usage_chunk["choices"] = json!([]);
        usage_chunk["usage"] = usage;
        chunks.push(usage_chunk);
        let delay = self.chunk_delay;
        let stream = futures_util::stream::iter(chunks.into_iter().enumerate()).then(
            move |(i, c)| async move {
                if i > 0 && !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok(c.to_string())
            },
        );
        Ok(ChatReply::Stream(Box::pin(stream)))
    }
}

/// Prompt tokens of the whole input: the messages, and the tool definitions and response format
/// a real model would also read.
fn prompt_tokens(body: &Value, messages: &Value) -> u64 {
    let mut total = tokens::estimate_messages(messages);
    for extra in ["tools", "response_format"] {
        if let Some(v) = body.get(extra).filter(|v| !v.is_null()) {
            total += tokens::estimate(&v.to_string());
        }
    }
    total
}

fn call_id() -> String {
    let random: [u8; 8] = rand::rng().random();
    format!("call_sbx{}", hex::encode(random))
}

/// Choice `index` of `n` for this request.
fn answer(
    body: &Value,
    model: &str,
    messages: &Value,
    index: u64,
    n: u64,
    limit: Option<u64>,
) -> Choice {
    if let Some((name, arguments)) = tool_call(body, messages) {
        return Choice::Tool { name, arguments };
    }
    let question = last_user_text(messages);
    let system = system_text(messages);
    let zh = answer_in_chinese(&question, &system);
    let mut text = match tool_result(messages) {
        Some(result) => {
            let quoted: String = result.chars().take(200).collect();
            if zh {
                format!("根据工具返回的结果:{quoted}\n(llmage 离线沙盒的示例回答。)")
            } else {
                format!(
                    "Based on the tool result: {quoted}\n(Sample answer from the llmage offline sandbox.)"
                )
            }
        }
        None => recall(messages, &question).unwrap_or_else(|| compose_answer(model, &question, zh)),
    };
    if is_brief(&system) {
        text = first_line_with_tag(&text, zh);
    }
    if !system.is_empty() {
        let quoted: String = system.chars().take(40).collect();
        let ellipsis = if system.chars().count() > 40 {
            "…"
        } else {
            ""
        };
        text = if zh {
            format!("(按系统提示「{quoted}{ellipsis}」作答)\n{text}")
        } else {
            format!("(Following the system prompt \"{quoted}{ellipsis}\")\n{text}")
        };
    }
    if n > 1 {
        text = if zh {
            format!("【候选 {}/{n}】{text}", index + 1)
        } else {
            format!("[Choice {}/{n}] {text}", index + 1)
        };
    }
    match response_format(body) {
        Some(schema) => {
            let mut value = json_answer(&schema, &text);
            let mut content = value.to_string();
            let mut finish = "stop";
            if let Some(limit) = limit {
                // Shorten the answer field until the whole document fits: the JSON stays valid.
                while tokens::estimate(&content) > limit && shorten(&mut value) {
                    content = value.to_string();
                    finish = "length";
                }
            }
            Choice::Text { content, finish }
        }
        None => {
            let mut finish = "stop";
            if let Some(limit) = limit {
                text = truncate_to_tokens(&text, limit);
                if tokens::estimate(&text) >= limit {
                    finish = "length";
                }
            }
            Choice::Text {
                content: text,
                finish,
            }
        }
    }
}

/// A question about the previous answer ("你刚才说了什么", "what did you just say") is
/// answered from the conversation: multi-turn clients see that earlier turns were sent.
fn recall(messages: &Value, question: &str) -> Option<String> {
    let lower = question.to_lowercase();
    let asks = [
        "刚才",
        "上一个回答",
        "上一条",
        "previous answer",
        "you just said",
        "did you just say",
    ]
    .iter()
    .any(|w| lower.contains(w));
    if !asks {
        return None;
    }
    let previous = messages
        .as_array()?
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
        .and_then(|m| m.get("content").and_then(Value::as_str))?;
    Some(if has_cjk(question) {
        format!("我刚才说的是：「{previous}」")
    } else {
        format!("I just said: \"{previous}\"")
    })
}

/// The text of the last user message.
fn last_user_text(messages: &Value) -> String {
    last_of_role(messages, "user")
}

/// The system prompts (`system` and `developer` messages), joined.
fn system_text(messages: &Value) -> String {
    let Some(list) = messages.as_array() else {
        return String::new();
    };
    list.iter()
        .filter(|m| {
            matches!(
                m.get("role").and_then(Value::as_str),
                Some("system" | "developer")
            )
        })
        .map(content_text)
        .filter(|s| !s.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_owned()
}

/// The content of the last message when it is a tool result.
fn tool_result(messages: &Value) -> Option<String> {
    let last = messages.as_array()?.last()?;
    (last.get("role").and_then(Value::as_str) == Some("tool")).then(|| content_text(last))
}

fn last_of_role(messages: &Value, role: &str) -> String {
    let Some(list) = messages.as_array() else {
        return String::new();
    };
    list.iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some(role))
        .map(content_text)
        .unwrap_or_default()
}

fn content_text(m: &Value) -> String {
    match m.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// Chinese unless the system prompt asks for English, or the question is not Chinese and the
/// system prompt does not ask for Chinese.
fn answer_in_chinese(question: &str, system: &str) -> bool {
    let lower = system.to_lowercase();
    if lower.contains("english") || system.contains("英文") || system.contains("英语") {
        return false;
    }
    if lower.contains("chinese") || system.contains("中文") {
        return true;
    }
    has_cjk(question.trim()) || question.trim().is_empty()
}

fn is_brief(system: &str) -> bool {
    let lower = system.to_lowercase();
    ["简洁", "简短", "一句话", "concise", "brief", "short"]
        .iter()
        .any(|w| lower.contains(w))
}

/// The first line of an answer, still saying it comes from the sandbox.
fn first_line_with_tag(text: &str, zh: bool) -> String {
    let first = text.lines().next().unwrap_or_default();
    if first.contains("沙盒") || first.to_lowercase().contains("sandbox") {
        first.to_owned()
    } else if zh {
        format!("{first}(llmage 离线沙盒)")
    } else {
        format!("{first} (llmage offline sandbox)")
    }
}

/// The tool to call, with its arguments: when tools are given, `tool_choice` is not `none`, and
/// the conversation does not already end with a tool result (`tool_choice` naming a function
/// forces that one even then).
fn tool_call(body: &Value, messages: &Value) -> Option<(String, String)> {
    let tools = body.get("tools")?.as_array()?;
    let functions: Vec<&Value> = tools
        .iter()
        .filter(|t| t.get("type").and_then(Value::as_str).unwrap_or("function") == "function")
        .filter_map(|t| t.get("function"))
        .filter(|f| f.get("name").and_then(Value::as_str).is_some())
        .collect();
    let choice = body.get("tool_choice");
    let forced = choice
        .and_then(|c| c.get("function"))
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str);
    let function = match forced {
        Some(name) => functions
            .iter()
            .find(|f| f.get("name").and_then(Value::as_str) == Some(name))?,
        None => {
            if choice.and_then(Value::as_str) == Some("none") || tool_result(messages).is_some() {
                return None;
            }
            let question = last_user_text(messages).to_lowercase();
            // The tool whose name or description shares most words with the question.
            functions.iter().max_by_key(|f| {
                let about = format!(
                    "{} {}",
                    f.get("name").and_then(Value::as_str).unwrap_or_default(),
                    f.get("description")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                )
                .to_lowercase();
                about
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| w.len() > 2 && question.contains(w))
                    .count()
            })?
        }
    };
    let name = function.get("name").and_then(Value::as_str)?.to_owned();
    let question = last_user_text(messages);
    let arguments = example_value(
        function.get("parameters").unwrap_or(&Value::Null),
        &question,
        0,
    );
    let arguments = if arguments.is_object() {
        arguments
    } else {
        json!({})
    };
    Some((name, arguments.to_string()))
}

/// The schema the answer must follow: `Some(Value::Null)` for `json_object`, the schema for
/// `json_schema`, `None` for text.
fn response_format(body: &Value) -> Option<Value> {
    let format = body.get("response_format")?;
    match format.get("type").and_then(Value::as_str)? {
        "json_object" => Some(Value::Null),
        "json_schema" => Some(
            format
                .get("json_schema")
                .and_then(|s| s.get("schema"))
                .cloned()
                .unwrap_or(Value::Null),
        ),
        _ => None,
    }
}

/// A JSON answer: an object matching `schema` (string fields carry the text), or for plain
/// `json_object` `{"answer": text, "source": "llmage-sandbox"}`.
fn json_answer(schema: &Value, text: &str) -> Value {
    if schema.get("properties").is_some() {
        let value = example_value(schema, text, 0);
        if value.is_object() {
            return value;
        }
    }
    json!({"answer": text, "source": "llmage-sandbox"})
}

/// Drop the last character of the longest string in a JSON value; false when nothing is left to
/// shorten.
fn shorten(value: &mut Value) -> bool {
    fn longest(v: &mut Value) -> Option<&mut String> {
        match v {
            Value::String(s) => Some(s),
            Value::Array(a) => a
                .iter_mut()
                .filter_map(longest)
                .max_by_key(|s| s.chars().count()),
            Value::Object(o) => o
                .values_mut()
                .filter_map(longest)
                .max_by_key(|s| s.chars().count()),
            _ => None,
        }
    }
    match longest(value) {
        Some(s) if !s.is_empty() => {
            s.pop();
            true
        }
        _ => false,
    }
}

/// A value that fits a JSON schema (the common keywords: type, properties, required, enum,
/// const, items, default); strings carry `text`.
fn example_value(schema: &Value, text: &str, depth: usize) -> Value {
    if depth > 8 {
        return Value::Null;
    }
    if let Some(v) = schema.get("const") {
        return v.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    if let Some(v) = schema.get("default") {
        return v.clone();
    }
    let kind = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match kind {
        "object" => {
            let mut out = Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (key, prop) in props {
                    out.insert(key.clone(), example_value(prop, text, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => {
            let item = example_value(schema.get("items").unwrap_or(&Value::Null), text, depth + 1);
            json!([item])
        }
        "integer" => json!(schema.get("minimum").and_then(Value::as_i64).unwrap_or(1)),
        "number" => json!(schema.get("minimum").and_then(Value::as_f64).unwrap_or(1.0)),
        "boolean" => json!(true),
        "null" => Value::Null,
        _ => {
            let short: String = text.chars().take(60).collect();
            Value::String(if short.is_empty() {
                "sandbox".into()
            } else {
                short
            })
        }
    }
}

fn has_cjk(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

/// A deterministic answer to the question, in Chinese when `zh`.
fn compose_answer(model: &str, question: &str, zh: bool) -> String {
    let q = question.trim();
    let lower = q.to_lowercase();
    if let Some(result) = arithmetic(q) {
        return if zh {
            format!("计算结果是 {result}(llmage 离线沙盒)。")
        } else {
            format!("The result is {result} (llmage offline sandbox).")
        };
    }
    let about_you = [
        "你是谁",
        "你是什么模型",
        "介绍你自己",
        "介绍一下你自己",
        "who are you",
        "introduce yourself",
    ];
    if about_you.iter().any(|p| lower.contains(p)) {
        return if zh {
            format!(
                "我是 llmage 沙盒中的 {model} 模型(离线演示),不连接真实供应商。接入真实渠道后,同一请求将由真实模型回答。"
            )
        } else {
            format!(
                "I am the {model} model running in the llmage sandbox (offline demo); no real vendor is called. Add a channel and the same request reaches the real model."
            )
        };
    }
    let greetings = ["你好", "您好", "hello", "hi", "嗨", "hey"];
    if greetings.iter().any(|g| {
        lower == *g
            || lower.starts_with(&format!("{g}!"))
            || lower.starts_with(&format!("{g},"))
            || lower.starts_with(&format!("{g}!"))
            || lower.starts_with(&format!("{g},"))
    }) {
        return if zh {
            "你好!我是 llmage 沙盒模型,有什么可以帮你?".into()
        } else {
            "Hello! I am the llmage sandbox model. How can I help?".into()
        };
    }
    let digest = Sha256::digest(q.as_bytes());
    let quoted: String = q.chars().take(60).collect();
    let ellipsis = if q.chars().count() > 60 { "…" } else { "" };
    if zh {
        let openings = [
            "关于这个问题,可以从三个方面来看。",
            "这是一个好问题,下面分点说明。",
            "简要回答如下。",
        ];
        format!(
            "{}你问的是:「{quoted}{ellipsis}」。\n1. 先明确问题的范围和目标;\n2. 再列出关键事实与约束;\n3. 最后给出可执行的结论。\n(以上为 {model} 沙盒模型的离线示例回答,共 {} 个字的问题。)",
            openings[usize::from(digest[0]) % openings.len()],
            q.chars().count()
        )
    } else {
        let openings = [
            "Here is a short answer.",
            "Good question; let me break it down.",
            "Let us look at this in three steps.",
        ];
        format!(
            "{} You asked: \"{quoted}{ellipsis}\".\n1. Pin down the scope and the goal;\n2. List the key facts and constraints;\n3. Draw a concrete conclusion.\n(This is an offline sample answer from the {model} sandbox model; your question had {} words.)",
            openings[usize::from(digest[0]) % openings.len()],
            q.split_whitespace().count()
        )
    }
}

/// `a op b` with integers (`+ - * /`, also `×` `÷`), e.g. "1+1" or "12 * 3 等于几".
fn arithmetic(q: &str) -> Option<String> {
    let cleaned: String = q
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '×' => '*',
            '÷' => '/',
            c => c,
        })
        .collect();
    let op_pos = cleaned
        .char_indices()
        .skip(1)
        .find(|(_, c)| matches!(c, '+' | '-' | '*' | '/'))?
        .0;
    let (a, rest) = cleaned.split_at(op_pos);
    let op = rest.chars().next()?;
    let b = &rest[1..];
    let a: i64 = a.parse().ok()?;
    let b: i64 = b.parse().ok()?;
    let value = match op {
        '+' => a.checked_add(b)?.to_string(),
        '-' => a.checked_sub(b)?.to_string(),
        '*' => a.checked_mul(b)?.to_string(),
        '/' if b != 0 && a % b == 0 => (a / b).to_string(),
        '/' if b != 0 => format!("{:.4}", a as f64 / b as f64),
        _ => return None,
    };
    Some(value)
}

/// The longest prefix of `text` within `limit` estimated tokens.
fn truncate_to_tokens(text: &str, limit: u64) -> String {
    let mut out = String::new();
    for c in text.chars() {
        out.push(c);
        if tokens::estimate(&out) > limit {
            out.pop();
            break;
        }
    }
    out
}

/// Split into pieces of `n` characters.
fn split_pieces(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(n).map(|c| c.iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox() -> SandboxChat {
        SandboxChat {
            chunk_delay: Duration::ZERO,
        }
    }

    fn complete(body: Value) -> Value {
        let ChatReply::Complete(raw) = sandbox().send(&body, false).unwrap() else {
            panic!("expected a complete reply")
        };
        serde_json::from_slice(&raw).unwrap()
    }

    /// The chunks of a streamed reply, parsed.
    async fn chunks(body: Value) -> Vec<Value> {
        let ChatReply::Stream(stream) = sandbox().send(&body, true).unwrap() else {
            panic!("expected a stream")
        };
        stream
            .map(|c| serde_json::from_str::<Value>(&c.unwrap()).unwrap())
            .collect()
            .await
    }

    fn zh(q: &str) -> String {
        compose_answer("m", q, has_cjk(q))
    }

    #[test]
    fn answers_are_deterministic_address_the_prompt_and_say_sandbox() {
        assert_eq!(zh("1+1"), "The result is 2 (llmage offline sandbox).");
        assert_eq!(zh("12 × 3 等于几?"), "计算结果是 36(llmage 离线沙盒)。");
        assert!(zh("你是谁").contains("m 模型"));
        assert!(zh("用一句话介绍你自己").contains("沙盒"));
        let a = zh("如何学习 Rust?");
        assert_eq!(a, zh("如何学习 Rust?"));
        assert!(a.contains("如何学习 Rust?") && a.contains("沙盒"));
        let en = zh("How do I learn Rust?");
        assert!(en.contains("How do I learn Rust?") && en.contains("sandbox"));
    }

    #[test]
    fn max_tokens_truncates_with_length_finish() {
        let body = json!({"model":"m","messages":[{"role":"user","content":"讲一个很长的故事"}],"max_tokens":5});
        let v = complete(body);
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert!(v["usage"]["completion_tokens"].as_u64().unwrap() <= 5);
    }

    #[test]
    fn every_completion_has_its_own_id() {
        let body = json!({"model":"m","messages":[{"role":"user","content":"你好"}]});
        let a = complete(body.clone());
        let b = complete(body);
        assert_eq!(a["choices"], b["choices"]);
        assert_ne!(a["id"], b["id"]);
        assert!(a["id"].as_str().unwrap().starts_with("chatcmpl-"));
    }

    #[tokio::test]
    async fn n_gives_that_many_choices_each_within_max_tokens() {
        let body = json!({"model":"m","n":3,"max_tokens":6,
            "messages":[{"role":"user","content":"如何学习 Rust?"}]});
        let v = complete(body.clone());
        let choices = v["choices"].as_array().unwrap();
        assert_eq!(choices.len(), 3);
        let mut total = 0;
        for (i, c) in choices.iter().enumerate() {
            assert_eq!(c["index"], i);
            let text = c["message"]["content"].as_str().unwrap();
            assert!(tokens::estimate(text) <= 6, "{text}");
            assert_eq!(c["finish_reason"], "length");
            total += tokens::estimate(text);
        }
        assert_ne!(choices[0]["message"], choices[1]["message"]);
        assert_eq!(v["usage"]["completion_tokens"], total);
        // Streamed: the chunks of each index rebuild the same three answers.
        let mut texts = vec![String::new(); 3];
        let mut finishes = 0;
        for c in chunks(body).await {
            for choice in c["choices"].as_array().unwrap() {
                let i = choice["index"].as_u64().unwrap() as usize;
                if let Some(s) = choice["delta"]["content"].as_str() {
                    texts[i].push_str(s);
                }
                finishes += usize::from(choice["finish_reason"].is_string());
            }
        }
        assert_eq!(finishes, 3);
        for (i, t) in texts.iter().enumerate() {
            assert_eq!(t, choices[i]["message"]["content"].as_str().unwrap());
        }
    }

    #[test]
    fn the_system_prompt_is_followed() {
        let question = json!({"role":"user","content":"如何学习 Rust?"});
        let plain = complete(json!({"model":"m","messages":[question]}));
        let plain = plain["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(plain.contains("如何学习 Rust?"));
        // Language: an English system prompt gets an English answer to a Chinese question.
        let v = complete(json!({"model":"m","messages":[
            {"role":"system","content":"Always answer in English."}, question]}));
        let text = v["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(text.contains("Following the system prompt"), "{text}");
        assert!(text.contains("sandbox") && !text.contains("沙盒"), "{text}");
        // Brevity: one line instead of the structured answer.
        let v = complete(json!({"model":"m","messages":[
            {"role":"system","content":"回答要简洁"}, question]}));
        let text = v["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(
            text.starts_with("(按系统提示「回答要简洁」作答)\n"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("沙盒"));
        // The system prompt is part of the prompt tokens.
        let with = v["usage"]["prompt_tokens"].as_u64().unwrap();
        let without = complete(json!({"model":"m","messages":[question]}));
        assert!(with > without["usage"]["prompt_tokens"].as_u64().unwrap());
    }

    #[test]
    fn json_object_and_json_schema_give_valid_json() {
        let body = json!({"model":"m","response_format":{"type":"json_object"},
            "messages":[{"role":"user","content":"列出三种水果,用 JSON"}]});
        let v = complete(body);
        let content = v["choices"][0]["message"]["content"].as_str().unwrap();
        let parsed: Value = serde_json::from_str(content).unwrap();
        assert!(parsed["answer"].as_str().unwrap().contains("沙盒"));
        // Cut by max_tokens: still valid JSON, finish_reason length.
        let body = json!({"model":"m","response_format":{"type":"json_object"},"max_tokens":20,
            "messages":[{"role":"user","content":"讲一个很长的故事"}]});
        let v = complete(body);
        let content = v["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(serde_json::from_str::<Value>(content).unwrap().is_object());
        assert!(tokens::estimate(content) <= 20);
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        // A schema: its properties with the right types.
        let schema = json!({"type":"object","required":["city","days","sunny","tags"],
            "properties":{"city":{"type":"string"},"days":{"type":"integer","minimum":3},
            "sunny":{"type":"boolean"},"tags":{"type":"array","items":{"type":"string"}},
            "unit":{"enum":["c","f"]}}});
        let body = json!({"model":"m","messages":[{"role":"user","content":"北京天气"}],
            "response_format":{"type":"json_schema","json_schema":{"name":"w","schema":schema}}});
        let v = complete(body);
        let parsed: Value =
            serde_json::from_str(v["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
        assert_eq!(parsed["days"], 3);
        assert_eq!(parsed["sunny"], true);
        assert_eq!(parsed["unit"], "c");
        assert!(parsed["city"].is_string() && parsed["tags"][0].is_string());
    }

    #[tokio::test]
    async fn tools_give_a_tool_call_then_an_answer_from_its_result() {
        let tools = json!([
            {"type":"function","function":{"name":"get_time","description":"current time",
                "parameters":{"type":"object","properties":{"zone":{"type":"string"}}}}},
            {"type":"function","function":{"name":"get_weather","description":"weather of a city",
                "parameters":{"type":"object","required":["city"],
                    "properties":{"city":{"type":"string"},"unit":{"enum":["celsius","fahrenheit"]}}}}}]);
        let question = json!({"role":"user","content":"What is the weather in Beijing?"});
        let body = json!({"model":"m","tools":tools,"messages":[question]});
        let v = complete(body.clone());
        let choice = &v["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert!(choice["message"]["content"].is_null());
        let call = &choice["message"]["tool_calls"][0];
        assert_eq!(call["type"], "function");
        assert_eq!(call["function"]["name"], "get_weather");
        let args: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert!(args["city"].is_string());
        assert_eq!(args["unit"], "celsius");
        // Tool definitions count as prompt tokens.
        let bare = complete(json!({"model":"m","messages":[question]}));
        assert!(
            v["usage"]["prompt_tokens"].as_u64().unwrap()
                > bare["usage"]["prompt_tokens"].as_u64().unwrap() + 20
        );
        // Streamed: the arguments arrive in pieces that rebuild the same JSON.
        let mut name = String::new();
        let mut arguments = String::new();
        for c in chunks(body.clone()).await {
            if let Some(call) = c["choices"][0]["delta"]["tool_calls"].get(0) {
                name.push_str(call["function"]["name"].as_str().unwrap_or_default());
                arguments.push_str(call["function"]["arguments"].as_str().unwrap_or_default());
            }
        }
        assert_eq!(name, "get_weather");
        assert_eq!(serde_json::from_str::<Value>(&arguments).unwrap(), args);
        // tool_choice none: text.
        let mut none = body.clone();
        none["tool_choice"] = json!("none");
        assert_eq!(complete(none)["choices"][0]["finish_reason"], "stop");
        // A forced function.
        let mut forced = body.clone();
        forced["tool_choice"] = json!({"type":"function","function":{"name":"get_time"}});
        assert_eq!(
            complete(forced)["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
            "get_time"
        );
        // After the tool result: a text answer that uses it.
        let body = json!({"model":"m","tools":tools,"messages":[question,
            {"role":"assistant","content":null,"tool_calls":[call]},
            {"role":"tool","tool_call_id":call["id"],"content":"{\"temp\":21}"}]});
        let v = complete(body);
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        let text = v["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(
            text.contains("{\"temp\":21}") && text.contains("sandbox"),
            "{text}"
        );
    }
}
