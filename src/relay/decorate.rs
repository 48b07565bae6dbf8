//! The seed's extra fields on OpenAI objects: top-level `content`, `reasoning_content` and
//! `finish` ("0" while streaming, "1" on the last chunk or a whole completion), plus our model id
//! in place of the upstream's name.

use serde_json::{Map, Value};

/// Decorate one `chat.completion.chunk`.
pub fn chunk(mut value: Value, model: &str) -> Value {
    let Some(obj) = value.as_object_mut() else {
        return value;
    };
    let first = obj.get("choices").and_then(|c| c.get(0));
    let delta = first.and_then(|c| c.get("delta"));
    let content = delta
        .and_then(|d| d.get("content"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let reasoning = delta
        .and_then(|d| d.get("reasoning_content"))
        .filter(|r| r.is_string())
        .cloned()
        .unwrap_or(Value::Null);
    let choices_empty = obj
        .get("choices")
        .and_then(Value::as_array)
        .is_none_or(|c| c.is_empty());
    let finished = choices_empty
        || obj
            .get("choices")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.get("finish_reason").is_some_and(|f| !f.is_null()))
            });
    set_common(
        obj,
        model,
        content,
        reasoning,
        if finished { "1" } else { "0" },
    );
    value
}

/// Decorate a whole `chat.completion`.
pub fn completion(mut value: Value, model: &str) -> Value {
    let Some(obj) = value.as_object_mut() else {
        return value;
    };
    let message = obj
        .get("choices")
        .and_then(|c| c.get(0))
        .and_then(|c| c.get("message"));
    let content = message
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let reasoning = message
        .and_then(|m| m.get("reasoning_content"))
        .filter(|r| r.is_string())
        .cloned()
        .unwrap_or(Value::Null);
    set_common(obj, model, content, reasoning, "1");
    value
}

fn set_common(
    obj: &mut Map<String, Value>,
    model: &str,
    content: String,
    reasoning: Value,
    finish: &str,
) {
    obj.insert("model".into(), Value::String(model.to_owned()));
    obj.insert("content".into(), Value::String(content));
    obj.insert("reasoning_content".into(), reasoning);
    obj.insert("finish".into(), Value::String(finish.to_owned()));
}

/// Text a chunk produced (content, reasoning, tool-call arguments), for estimating usage when
/// the upstream reports none.
pub fn produced_text(chunk: &Value) -> String {
    let mut out = String::new();
    let Some(choices) = chunk.get("choices").and_then(Value::as_array) else {
        return out;
    };
    for choice in choices {
        let Some(delta) = choice.get("delta").or_else(|| choice.get("message")) else {
            continue;
        };
        for key in ["content", "reasoning_content"] {
            if let Some(s) = delta.get(key).and_then(Value::as_str) {
                out.push_str(s);
            }
        }
        if let Some(calls) = delta.get("tool_calls") {
            push_tool_call_text(&mut out, calls);
        }
    }
    out
}

/// What each choice of a chunk produced (the reference for the fast path's).
pub fn produced_by_choice(chunk: &Value) -> Vec<super::rewrite::ChoiceText> {
    let Some(choices) = chunk.get("choices").and_then(Value::as_array) else {
        return Vec::new();
    };
    choices
        .iter()
        .enumerate()
        .map(|(position, choice)| {
            let one = serde_json::json!({"choices": [choice]});
            super::rewrite::ChoiceText {
                index: choice
                    .get("index")
                    .and_then(Value::as_u64)
                    .map_or(position, |i| usize::try_from(i).unwrap_or(0)),
                text: produced_text(&one),
                finished: choice.get("finish_reason").is_some_and(|r| !r.is_null()),
            }
        })
        .collect()
}

/// Append the function names and arguments of a message's `tool_calls`.
pub fn push_tool_call_text(out: &mut String, calls: &Value) {
    for call in calls.as_array().into_iter().flatten() {
        if let Some(f) = call.get("function") {
            for key in ["name", "arguments"] {
                if let Some(s) = f.get(key).and_then(Value::as_str) {
                    out.push_str(s);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn seed_fields() {
        let c = chunk(
            json!({"model":"up","choices":[{"index":0,"delta":{"content":"你","role":"assistant"},"finish_reason":null}]}),
            "qwen3-max",
        );
        assert_eq!(
            (
                c["model"].as_str(),
                c["content"].as_str(),
                c["finish"].as_str()
            ),
            (Some("qwen3-max"), Some("你"), Some("0"))
        );
        assert!(c["reasoning_content"].is_null());
        let c = chunk(
            json!({"choices":[{"delta":{"reasoning_content":"想"},"finish_reason":"stop"}]}),
            "m",
        );
        assert_eq!(
            (
                c["reasoning_content"].as_str(),
                c["finish"].as_str(),
                c["content"].as_str()
            ),
            (Some("想"), Some("1"), Some(""))
        );
        let full = completion(
            json!({"choices":[{"message":{"content":"ok","role":"assistant"},"finish_reason":"stop"}]}),
            "m",
        );
        assert_eq!(
            (full["content"].as_str(), full["finish"].as_str()),
            (Some("ok"), Some("1"))
        );
        let tool = json!({"choices":[{"delta":{"tool_calls":[{"function":{"name":"f","arguments":"{\"a\":1}"}}]}}]});
        assert_eq!(produced_text(&tool), "f{\"a\":1}");
    }
}
