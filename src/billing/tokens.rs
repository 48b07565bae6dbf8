//! Token counts without the vendor's tokenizer, two ways:
//!
//! - [`estimate`]: what a text probably costs — for settling a call whose upstream reported no
//!   usage, and for metering a stream as it is relayed. One token per CJK character, one per
//!   four other characters, at least one per non-empty text.
//! - [`bound`] / [`input_bound`]: what a text can at most cost, for the hold taken before a call.
//!   Tokenizers differ by vendor; the bound is above each of them for every kind of text: one
//!   token per digit, punctuation mark, symbol and whitespace run (Qwen splits digits, JSON is
//!   mostly punctuation), one per two letters, three per two CJK characters (GPT-4's tokenizer
//!   spends more than one on rare ones), and one per UTF-8 byte of anything else. Every part of
//!   the body that is forwarded is counted (messages, tool calls and results, `tools`,
//!   `response_format` schemas, …); an image, audio or video part counts as a fixed bound of
//!   its own (the vendors bill media by size, not by the length of its URL or base64).

use serde_json::Value;

/// Estimated tokens of a text.
pub fn estimate(text: &str) -> u64 {
    let mut cjk = 0u64;
    let mut other = 0u64;
    for c in text.chars() {
        if is_cjk(c) {
            cjk += 1;
        } else {
            other += 1;
        }
    }
    let tokens = cjk + other.div_ceil(4);
    if tokens == 0 && !text.is_empty() {
        1
    } else {
        tokens
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3000..=0x303F | 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF |
        0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0xFF00..=0xFFEF | 0x20000..=0x2FA1F)
}

/// Estimated prompt tokens of an OpenAI `messages` array (text parts only, plus a few tokens of
/// framing per message): what a call is settled at when the upstream reports no usage.
pub fn estimate_messages(messages: &Value) -> u64 {
    let Some(list) = messages.as_array() else {
        return 0;
    };
    list.iter()
        .map(|m| {
            let content = match m.get("content") {
                Some(Value::String(s)) => estimate(s),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
                    .map(estimate)
                    .sum(),
                _ => 0,
            };
            let tools = m
                .get("tool_calls")
                .map(|t| estimate(&t.to_string()))
                .unwrap_or(0);
            content + tools + 4
        })
        .sum()
}

/// The most tokens a text can cost.
pub fn bound(text: &str) -> u64 {
    let mut tokens = 0u64;
    let mut letters = 0u64;
    let mut cjk = 0u64;
    let mut in_space = false;
    for c in text.chars() {
        if c.is_ascii_alphabetic() {
            letters += 1;
            in_space = false;
            continue;
        }
        tokens += letters.div_ceil(2);
        letters = 0;
        if c.is_whitespace() {
            if !in_space {
                tokens += 1;
            }
            in_space = true;
            continue;
        }
        in_space = false;
        if is_cjk(c) {
            cjk += 1;
        } else if c.is_ascii() {
            tokens += 1;
        } else {
            tokens += c.len_utf8() as u64;
        }
    }
    tokens + letters.div_ceil(2) + (cjk * 3).div_ceil(2)
}

/// Bound of one media part (an image, audio clip or video in a message): above what the
/// vendors bill for the largest one they accept (Qwen-VL: 16,384 tokens for an image at its
/// pixel limit; GPT-4o: under 1,500).
pub const MEDIA_PART_TOKENS: u64 = 16_384;

/// Framing tokens per message and per request (role markers, separators).
const FRAMING: u64 = 8;

/// The most input tokens the upstream can bill for a request body: every forwarded field but
/// the sampling settings, media parts at [`MEDIA_PART_TOKENS`] each.
pub fn input_bound(body: &serde_json::Map<String, Value>) -> u64 {
    let mut total = FRAMING;
    for (field, value) in body {
        match field.as_str() {
            "messages" => total += messages_bound(value),
            // Sampling and routing settings are not input.
            "model"
            | "stream"
            | "stream_options"
            | "n"
            | "max_tokens"
            | "max_completion_tokens"
            | "temperature"
            | "top_p"
            | "seed"
            | "stop"
            | "presence_penalty"
            | "frequency_penalty"
            | "user"
            | "logprobs"
            | "top_logprobs" => {}
            _ => total += value_bound(value),
        }
    }
    total
}

fn messages_bound(messages: &Value) -> u64 {
    let Some(list) = messages.as_array() else {
        return value_bound(messages);
    };
    list.iter()
        .map(|m| FRAMING + value_bound(m))
        .fold(0u64, u64::saturating_add)
}

/// A JSON value as the upstream sees it: strings by [`bound`], media parts by
/// [`MEDIA_PART_TOKENS`], keys and structure counted too.
fn value_bound(value: &Value) -> u64 {
    match value {
        Value::String(s) => bound(s),
        Value::Array(items) => items
            .iter()
            .map(|v| 1 + value_bound(v))
            .fold(0u64, u64::saturating_add),
        Value::Object(map) => {
            if is_media_part(map) {
                return MEDIA_PART_TOKENS;
            }
            map.iter()
                .map(|(k, v)| 2 + bound(k) + value_bound(v))
                .fold(0u64, u64::saturating_add)
        }
        Value::Number(n) => bound(&n.to_string()),
        Value::Bool(_) | Value::Null => 1,
    }
}

/// An OpenAI content part carrying media (`image_url`, `input_image`, `input_audio`,
/// `video_url`, …): billed by the media, not by its URL or data.
fn is_media_part(part: &serde_json::Map<String, Value>) -> bool {
    let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
    matches!(
        kind,
        "image_url" | "input_image" | "image" | "input_audio" | "audio" | "video_url" | "video"
    ) || ["image_url", "input_audio", "video_url", "video"]
        .iter()
        .any(|k| part.contains_key(*k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn estimates() {
        assert_eq!(estimate(""), 0);
        assert_eq!(estimate("a"), 1);
        assert_eq!(estimate("abcdefgh"), 2);
        assert_eq!(estimate("你好世界"), 4);
        assert_eq!(estimate("你好 world"), 2 + 2);
        let msgs = json!([{"role":"user","content":"你好"},{"role":"user","content":[{"type":"text","text":"abcd"}]}]);
        assert_eq!(estimate_messages(&msgs), 2 + 4 + 1 + 4);
    }

    #[test]
    fn the_bound_is_above_the_estimate_for_every_kind_of_text() {
        for text in [
            "hello world, this is English text.",
            "你好世界,这是中文。",
            "1234567890 3.14159",
            "{\"a\":[1,2,3],\"b\":{\"c\":null}}",
            "fn main() {\n    println!(\"x\");\n}",
            "émoji 🎉 ünïcode",
        ] {
            assert!(bound(text) >= estimate(text), "{text}");
        }
        assert_eq!(bound("1234"), 4, "a token per digit");
        assert_eq!(bound("abcd efg"), 2 + 1 + 2);
        assert_eq!(bound("你好"), 3);
    }

    #[test]
    fn the_input_bound_counts_everything_forwarded() {
        let plain = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        let base = input_bound(plain.as_object().unwrap());
        let tools = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]});
        assert!(input_bound(tools.as_object().unwrap()) > base + 10);
        let image = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "hi"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]});
        let with_image = input_bound(image.as_object().unwrap());
        assert!((MEDIA_PART_TOKENS..MEDIA_PART_TOKENS + 64).contains(&with_image));
        let settings = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.5, "max_tokens": 10, "n": 3});
        assert_eq!(input_bound(settings.as_object().unwrap()), base);
    }
}
