//! Sandbox chat: offline, deterministic answers for every chat model, so demo mode
//! and tests need no vendor account. Chat answers address the prompt (greetings, "who are you",
//! simple arithmetic, otherwise a structured reply that quotes and discusses it), stream in small
//! chunks with realistic pacing, and report usage like a real upstream.
//! This is a product feature, not a test mock.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::billing::tokens;
use crate::providers::{ChatReply, ProviderError};

/// Offline chat.
#[derive(Debug, Clone)]
pub struct SandboxChat {
    /// Pause between two streamed chunks.
    pub chunk_delay: Duration,
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
        let question = last_user_text(&messages);
        let mut answer =
            recall(&messages, &question).unwrap_or_else(|| compose_answer(&model, &question));
        let prompt_tokens = tokens::estimate_messages(&messages);
        let limit = body
            .get("max_completion_tokens")
            .or_else(|| body.get("max_tokens"))
            .and_then(Value::as_u64);
        let mut finish = "stop";
        if let Some(limit) = limit {
            answer = truncate_to_tokens(&answer, limit);
            if tokens::estimate(&answer) >= limit {
                finish = "length";
            }
        }
        let completion_tokens = tokens::estimate(&answer);
        let usage = json!({
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        });
        let id = format!(
            "chatcmpl-sbx{}",
            &hex::encode(Sha256::digest(question.as_bytes()))[..20]
        );
        let created = crate::storage::now_ms() / 1000;
        if !stream {
            let completion = json!({
                "id": id, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": finish}],
                "usage": usage,
            });
            return Ok(ChatReply::Complete(completion.to_string().into()));
        }
        let chunk = move |delta: Value, finish: Option<&str>| {
            json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        };
        let mut chunks = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
        for piece in split_pieces(&answer, 4) {
            chunks.push(chunk(json!({"content": piece}), None));
        }
        chunks.push(chunk(json!({}), Some(finish)));
        let mut usage_chunk = chunk(json!({}), None);
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
    let Some(list) = messages.as_array() else {
        return String::new();
    };
    list.iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(|m| match m.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            _ => String::new(),
        })
        .unwrap_or_default()
}

fn has_cjk(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

/// A deterministic answer to the question.
fn compose_answer(model: &str, question: &str) -> String {
    let q = question.trim();
    let lower = q.to_lowercase();
    let zh = has_cjk(q) || q.is_empty();
    if let Some(result) = arithmetic(q) {
        return if zh {
            format!("计算结果是 {result}。")
        } else {
            format!("The result is {result}.")
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

    #[test]
    fn a_question_about_the_previous_answer_quotes_it() {
        let messages = json!([
            {"role": "user", "content": "1+2"},
            {"role": "assistant", "content": "计算结果是 3。"},
            {"role": "user", "content": "你刚才说了什么？"},
        ]);
        let q = last_user_text(&messages);
        assert_eq!(
            recall(&messages, &q).as_deref(),
            Some("我刚才说的是：「计算结果是 3。」")
        );
        assert_eq!(
            recall(
                &json!([{"role": "user", "content": "你刚才说了什么？"}]),
                &q
            ),
            None
        );
    }

    #[test]
    fn answers_are_deterministic_and_address_the_prompt() {
        assert_eq!(compose_answer("m", "1+1"), "The result is 2.");
        assert_eq!(compose_answer("m", "12 × 3 等于几?"), "计算结果是 36。");
        assert!(compose_answer("qwen3-max", "你是谁").contains("qwen3-max"));
        assert!(compose_answer("qwen3-max", "用一句话介绍你自己").contains("沙盒"));
        let a = compose_answer("m", "如何学习 Rust?");
        assert_eq!(a, compose_answer("m", "如何学习 Rust?"));
        assert!(a.contains("如何学习 Rust?"));
        assert!(compose_answer("m", "How do I learn Rust?").contains("How do I learn Rust?"));
    }

    #[test]
    fn max_tokens_truncates_with_length_finish() {
        let sandbox = SandboxChat {
            chunk_delay: Duration::ZERO,
        };
        let body = json!({"model":"m","messages":[{"role":"user","content":"讲一个很长的故事"}],"max_tokens":5});
        let ChatReply::Complete(raw) = sandbox.send(&body, false).unwrap() else {
            panic!()
        };
        let v: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert!(v["usage"]["completion_tokens"].as_u64().unwrap() <= 5);
    }
}
