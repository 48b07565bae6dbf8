//! Parsing a chat request: the seed's `prompt`/`sys_prompt` form and the OpenAI `messages` form,
//! checked field by field with errors that name the field, then turned into the body we send
//! upstream (seed-only fields removed, `stream_options.include_usage` forced on for billing).

use serde_json::{Map, Value, json};

use crate::billing::tokens;
use crate::relay::error::RelayError;

/// A checked chat request.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// Our model id.
    pub model: String,
    pub stream: bool,
    /// Whether the client asked for the final usage chunk of a stream.
    pub include_usage: bool,
    /// `max_completion_tokens` or `max_tokens`, if given.
    pub max_tokens: Option<u64>,
    /// Choices asked for (`n`, default 1).
    pub n: u64,
    /// Estimated prompt tokens (for the reservation and when the upstream reports none).
    pub prompt_tokens: u64,
    /// The body to send upstream; `model` is set per channel.
    pub upstream_body: Map<String, Value>,
    /// The X-Request-Id of the HTTP request (recorded with the call's usage).
    pub request_id: Option<String>,
}

/// Fields of the seed's form that upstreams do not know.
const SEED_ONLY: [&str; 3] = ["catelogid", "prompt", "sys_prompt"];

/// Check a parsed JSON body.
pub fn parse(body: Value) -> Result<ChatRequest, RelayError> {
    let Value::Object(mut obj) = body else {
        return Err(RelayError::InvalidJson("expected a JSON object".into()));
    };
    let model = match obj.get("model") {
        None | Some(Value::Null) => return Err(RelayError::MissingParameter("model".into())),
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err(RelayError::MissingParameter("model".into()));
        }
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(_) => {
            return Err(RelayError::InvalidParameter(
                "model must be a string".into(),
            ));
        }
    };
    match obj.get("catelogid") {
        None | Some(Value::Null) => {}
        Some(Value::String(c)) if c == "t2t" => {}
        Some(_) => {
            return Err(RelayError::InvalidParameter(
                "catelogid must be \"t2t\" for /chat/completions (images: /image/generations, videos: /video/generations)".into(),
            ));
        }
    }
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(RelayError::InvalidParameter(
                "stream must be true or false".into(),
            ));
        }
    };
    let include_usage = match obj.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => match o.get("include_usage") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(RelayError::InvalidParameter(
                    "stream_options.include_usage must be true or false".into(),
                ));
            }
        },
        Some(_) => {
            return Err(RelayError::InvalidParameter(
                "stream_options must be an object".into(),
            ));
        }
    };
    let mut max_tokens = None;
    for field in ["max_completion_tokens", "max_tokens"] {
        match obj.get(field) {
            None | Some(Value::Null) => {}
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => max_tokens = max_tokens.or(Some(n)),
                _ => {
                    return Err(RelayError::InvalidParameter(format!(
                        "{field} must be a positive integer"
                    )));
                }
            },
        }
    }
    let n = match obj.get("n") {
        None | Some(Value::Null) => 1,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=super::budget::MAX_CHOICES).contains(&n) => n,
            _ => {
                return Err(RelayError::InvalidParameter(format!(
                    "n must be an integer between 1 and {}",
                    super::budget::MAX_CHOICES
                )));
            }
        },
    };
    let messages = match obj.get("messages") {
        None | Some(Value::Null) => messages_from_prompt(&obj)?,
        Some(Value::Array(list)) if list.is_empty() => {
            return Err(RelayError::InvalidParameter(
                "messages must not be empty".into(),
            ));
        }
        Some(Value::Array(list)) => {
            for (i, m) in list.iter().enumerate() {
                let role_ok = m
                    .get("role")
                    .and_then(Value::as_str)
                    .is_some_and(|r| !r.is_empty());
                if !role_ok {
                    return Err(RelayError::InvalidParameter(format!(
                        "messages[{i}].role must be a non-empty string"
                    )));
                }
            }
            Value::Array(list.clone())
        }
        Some(_) => {
            return Err(RelayError::InvalidParameter(
                "messages must be an array".into(),
            ));
        }
    };
    for field in SEED_ONLY {
        obj.remove(field);
    }
    let prompt_tokens = tokens::estimate_messages(&messages);
    obj.insert("messages".into(), messages);
    if stream {
        let mut options = match obj.remove("stream_options") {
            Some(Value::Object(o)) => o,
            _ => Map::new(),
        };
        options.insert("include_usage".into(), Value::Bool(true));
        obj.insert("stream_options".into(), Value::Object(options));
    } else {
        obj.remove("stream_options");
    }
    Ok(ChatRequest {
        model,
        stream,
        include_usage,
        max_tokens,
        n,
        prompt_tokens,
        upstream_body: obj,
        request_id: None,
    })
}

fn messages_from_prompt(obj: &Map<String, Value>) -> Result<Value, RelayError> {
    let prompt = match obj.get("prompt") {
        None | Some(Value::Null) => return Err(RelayError::MissingParameter("prompt".into())),
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err(RelayError::MissingParameter("prompt".into()));
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(RelayError::InvalidParameter(
                "prompt must be a string".into(),
            ));
        }
    };
    let mut messages = Vec::new();
    match obj.get("sys_prompt") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.trim().is_empty() => {}
        Some(Value::String(s)) => messages.push(json!({"role": "system", "content": s})),
        Some(_) => {
            return Err(RelayError::InvalidParameter(
                "sys_prompt must be a string".into(),
            ));
        }
    }
    messages.push(json!({"role": "user", "content": prompt}));
    Ok(Value::Array(messages))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(v: Value) -> String {
        parse(v).unwrap_err().to_string()
    }

    #[test]
    fn seed_form_becomes_messages() {
        let r = parse(json!({"model":"qwen3-max","catelogid":"t2t","prompt":"你好","sys_prompt":"简洁","stream":true})).unwrap();
        assert!(r.stream && !r.include_usage);
        assert_eq!(r.upstream_body["messages"][0]["role"], "system");
        assert_eq!(r.upstream_body["messages"][1]["content"], "你好");
        assert_eq!(r.upstream_body["stream_options"]["include_usage"], true);
        for f in SEED_ONLY {
            assert!(!r.upstream_body.contains_key(f));
        }
    }

    #[test]
    fn openai_form_passes_extras_through() {
        let r = parse(json!({"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function"}],"temperature":0.2,"max_tokens":9,"stream_options":{"include_usage":true}})).unwrap();
        assert_eq!(r.upstream_body["tools"][0]["type"], "function");
        assert_eq!(r.max_tokens, Some(9));
        assert!(!r.stream);
        assert!(!r.upstream_body.contains_key("stream_options"));
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            err(json!({"model":"m"})),
            "Missing required parameter: prompt"
        );
        assert_eq!(
            err(json!({"model":"m","prompt":"  "})),
            "Missing required parameter: prompt"
        );
        assert_eq!(
            err(json!({"prompt":"x"})),
            "Missing required parameter: model"
        );
        assert!(err(json!({"model":"m","prompt":"x","stream":"yes"})).contains("stream"));
        assert!(err(json!({"model":"m","prompt":"x","catelogid":"t2i"})).contains("catelogid"));
        assert!(
            err(json!({"model":"m","messages":[{"content":"x"}]})).contains("messages[0].role")
        );
        assert!(err(json!({"model":"m","prompt":"x","max_tokens":-1})).contains("max_tokens"));
        assert!(err(json!({"model":"m","prompt":"x","n":0})).contains("n must be"));
        assert!(err(json!({"model":"m","prompt":"x","n":1000})).contains("n must be"));
        assert!(err(json!([1, 2])).contains("JSON object"));
    }
}
