//! Token estimates for when an upstream reports no usage (a stream cut short, a server without
//! `include_usage`) and for the worst-case reservation before a call.
//!
//! The rule is deliberately simple and slightly generous to the user's side of a reservation:
//! one token per CJK character, one per four other characters, at least one per non-empty text.

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
/// framing per message).
pub fn estimate_messages(messages: &serde_json::Value) -> u64 {
    let Some(list) = messages.as_array() else {
        return 0;
    };
    list.iter()
        .map(|m| {
            let content = match m.get("content") {
                Some(serde_json::Value::String(s)) => estimate(s),
                Some(serde_json::Value::Array(parts)) => parts
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates() {
        assert_eq!(estimate(""), 0);
        assert_eq!(estimate("a"), 1);
        assert_eq!(estimate("abcdefgh"), 2);
        assert_eq!(estimate("你好世界"), 4);
        assert_eq!(estimate("你好 world"), 2 + 2);
        let msgs = serde_json::json!([{"role":"user","content":"你好"},{"role":"user","content":[{"type":"text","text":"abcd"}]}]);
        assert_eq!(estimate_messages(&msgs), 2 + 4 + 1 + 4);
    }
}
