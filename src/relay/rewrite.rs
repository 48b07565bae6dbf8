//! Decorating an upstream's `chat.completion` or `chat.completion.chunk` without building a
//! `serde_json::Value`: the object's top-level members stay as the upstream's raw JSON text, only
//! `choices` is read (into small borrowed views) and only `usage` is parsed. Then the object is
//! written back with our model id and the seed's fields (see [`super::decorate`]) and the credits
//! in its `usage`, every other member byte for byte.
//!
//! Building, cloning and dropping `Value` trees was most of the relay's own time, twenty times
//! over for a stream. An object of an unexpected shape (not an object, `choices` that is not a
//! list of objects) falls back to the `Value` path, which [`decorate`](super::decorate) keeps as
//! the reference: the tests check that both give the same answer.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use super::decorate;

/// Which object an upstream sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole `chat.completion` (the seed's fields come from `choices[0].message`).
    Completion,
    /// A `chat.completion.chunk` (from `choices[0].delta`).
    Chunk,
}

/// What to write into an answer besides the upstream's members.
#[derive(Debug, Clone)]
pub struct Decoration<'m> {
    pub kind: Kind,
    /// Our model id, in place of the upstream's.
    pub model: &'m str,
    /// Added to the `usage` object when given (a number of credits, see
    /// [`crate::billing::credits_json`]).
    pub credits: Option<Value>,
    /// Added as `usage` (with the credits) when the answer has none at all.
    pub missing_usage: Option<Value>,
    /// The answer's `id` in place of the upstream's (the request's `X-Request-Id`), added when
    /// the upstream sent none.
    pub id: Option<&'m str>,
}

/// An upstream object, read.
pub enum Answer<'a> {
    Fast(Shallow<'a>),
    /// The reference path, for shapes the fast one does not read.
    Slow(Value),
}

impl<'a> Answer<'a> {
    /// Read an object's JSON text; `None` when it is not JSON at all.
    pub fn parse(raw: &'a [u8]) -> Option<Answer<'a>> {
        match Shallow::parse(raw) {
            Some(fast) => Some(Answer::Fast(fast)),
            None => serde_json::from_slice(raw).ok().map(Answer::Slow),
        }
    }

    /// Text it produced (for estimating usage when the upstream reports none).
    pub fn produced_text(&self) -> String {
        match self {
            Answer::Fast(a) => a.produced_text(),
            Answer::Slow(v) => decorate::produced_text(v),
        }
    }

    /// Whether `choices` is an empty list (a stream's `include_usage` chunk).
    /// What each choice of a chunk produced (by its `index`), and whether it finished.
    pub fn produced_by_choice(&self) -> Vec<ChoiceText> {
        match self {
            Answer::Fast(a) => a
                .choices
                .iter()
                .flatten()
                .enumerate()
                .map(|(position, choice)| ChoiceText {
                    index: choice
                        .index
                        .map_or(position, |i| usize::try_from(i).unwrap_or(0)),
                    text: choice_text(choice),
                    finished: choice.finish_reason.is_some_and(|r| r.get() != "null"),
                })
                .collect(),
            Answer::Slow(v) => decorate::produced_by_choice(v),
        }
    }

    /// The answer's `id`, if it has one.
    pub fn id(&self) -> Option<String> {
        match self {
            Answer::Fast(a) => a
                .members
                .iter()
                .find(|(k, _)| k == "id")
                .and_then(|(_, v)| string_of(Some(v)))
                .map(Cow::into_owned),
            Answer::Slow(v) => v.get("id").and_then(Value::as_str).map(str::to_owned),
        }
    }

    pub fn usage_only(&self) -> bool {
        match self {
            Answer::Fast(a) => a.choices.as_ref().is_some_and(Vec::is_empty),
            Answer::Slow(v) => v
                .get("choices")
                .and_then(Value::as_array)
                .is_some_and(|c| c.is_empty()),
        }
    }

    /// The `usage` member, when there is one that is not `null`.
    pub fn usage(&self) -> Option<&Value> {
        match self {
            Answer::Fast(a) => a.usage.as_ref(),
            Answer::Slow(v) => v.get("usage").filter(|u| !u.is_null()),
        }
    }

    /// Append the decorated object's JSON to `out`.
    pub fn write_decorated(self, out: &mut Vec<u8>, decoration: Decoration<'_>) {
        match self {
            Answer::Fast(a) => a.write_decorated(out, decoration),
            Answer::Slow(v) => {
                let Decoration {
                    kind,
                    model,
                    credits,
                    missing_usage,
                    id,
                } = decoration;
                let mut v = match kind {
                    Kind::Chunk => decorate::chunk(v, model),
                    Kind::Completion => decorate::completion(v, model),
                };
                if let Some(obj) = v.as_object_mut() {
                    if let Some(usage) = missing_usage
                        && !obj.contains_key("usage")
                    {
                        obj.insert("usage".into(), usage);
                    }
                    if let (Some(credits), Some(Value::Object(usage))) =
                        (credits, obj.get_mut("usage"))
                    {
                        usage.insert("credits".into(), credits);
                    }
                    if let Some(id) = id {
                        obj.insert("id".into(), Value::String(id.to_owned()));
                    }
                }
                // Serializing a Value into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, &v);
            }
        }
    }
}

/// An object whose members are raw JSON text, with its `choices` and `usage` read.
pub struct Shallow<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
    /// `None` when there is no `choices` member (or it is `null`).
    choices: Option<Vec<Choice<'a>>>,
    usage: Option<Value>,
}

/// The text one choice of a chunk produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChoiceText {
    pub index: usize,
    pub text: String,
    pub finished: bool,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(borrow, default)]
    delta: Option<Message<'a>>,
    #[serde(borrow, default)]
    message: Option<Message<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    reasoning_content: Option<&'a RawValue>,
    #[serde(default)]
    tool_calls: Option<Value>,
}

/// The text a choice produced: content, reasoning and tool calls.
fn choice_text(choice: &Choice<'_>) -> String {
    let mut out = String::new();
    let Some(message) = choice.delta.as_ref().or(choice.message.as_ref()) else {
        return out;
    };
    for text in [
        string_of(message.content),
        string_of(message.reasoning_content),
    ]
    .into_iter()
    .flatten()
    {
        out.push_str(&text);
    }
    if let Some(calls) = &message.tool_calls {
        decorate::push_tool_call_text(&mut out, calls);
    }
    out
}

/// A raw member that is a JSON string, unescaped.
fn string_of(raw: Option<&RawValue>) -> Option<Cow<'_, str>> {
    let raw = raw?;
    if !raw.get().starts_with('"') {
        return None;
    }
    serde_json::from_str::<Cow<'_, str>>(raw.get()).ok()
}

/// The names of the members we set, in the order the reference path adds them.
const SEED_FIELDS: [&str; 4] = ["model", "content", "reasoning_content", "finish"];

impl<'a> Shallow<'a> {
    fn parse(raw: &'a [u8]) -> Option<Shallow<'a>> {
        let Members(members) = serde_json::from_slice(raw).ok()?;
        let member = |name: &str| {
            members
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.get())
                .filter(|v| *v != "null")
        };
        let choices = match member("choices") {
            None => None,
            Some(text) => Some(serde_json::from_str::<Vec<Choice<'a>>>(text).ok()?),
        };
        let usage = match member("usage") {
            None => None,
            Some(text) => Some(serde_json::from_str::<Value>(text).ok()?),
        };
        Some(Shallow {
            members,
            choices,
            usage,
        })
    }

    fn produced_text(&self) -> String {
        self.choices.iter().flatten().map(choice_text).collect()
    }

    fn write_decorated(self, out: &mut Vec<u8>, decoration: Decoration<'_>) {
        let Decoration {
            kind,
            model,
            credits,
            missing_usage,
            id,
        } = decoration;
        let choices = self.choices.as_deref().unwrap_or_default();
        let message = choices.first().and_then(|c| match kind {
            Kind::Chunk => c.delta.as_ref(),
            Kind::Completion => c.message.as_ref(),
        });
        let content = message
            .and_then(|m| string_of(m.content))
            .unwrap_or_default();
        let reasoning = message
            .and_then(|m| m.reasoning_content)
            .filter(|r| r.get().starts_with('"'))
            .map_or("null", RawValue::get);
        let finished = kind == Kind::Completion
            || choices.is_empty()
            || choices.iter().any(|c| c.finish_reason.is_some());
        let finish = if finished { "\"1\"" } else { "\"0\"" };
        let has_usage = self.members.iter().any(|(k, _)| k == "usage");
        let mut usage = match (self.usage, missing_usage) {
            (Some(usage), _) => Some(usage),
            (None, Some(missing)) if !has_usage => Some(missing),
            (None, _) => None,
        };
        if let (Some(credits), Some(Value::Object(u))) = (credits, usage.as_mut()) {
            u.insert("credits".into(), credits);
        }

        let write_seed_field = |out: &mut Vec<u8>, i: usize| match i {
            0 => write_string(out, model),
            1 => write_string(out, &content),
            2 => out.extend_from_slice(reasoning.as_bytes()),
            _ => out.extend_from_slice(finish.as_bytes()),
        };
        let mut written = [false; SEED_FIELDS.len()];
        let mut first = true;
        let mut member = |out: &mut Vec<u8>, key: &str| {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            write_string(out, key);
            out.push(b':');
        };
        out.push(b'{');
        for (key, value) in &self.members {
            member(out, key);
            if key == "id"
                && let Some(id) = id
            {
                write_string(out, id);
            } else if let Some(i) = SEED_FIELDS.iter().position(|f| f == key) {
                written[i] = true;
                write_seed_field(out, i);
            } else if key == "usage"
                && let Some(usage) = &usage
            {
                let _ = serde_json::to_writer(&mut *out, usage);
            } else {
                out.extend_from_slice(value.get().as_bytes());
            }
        }
        for (i, name) in SEED_FIELDS.iter().enumerate() {
            if !written[i] {
                member(out, name);
                write_seed_field(out, i);
            }
        }
        if !has_usage && let Some(usage) = &usage {
            member(out, "usage");
            let _ = serde_json::to_writer(&mut *out, usage);
        }
        if let Some(id) = id
            && !self.members.iter().any(|(k, _)| k == "id")
        {
            member(out, "id");
            write_string(out, id);
        }
        out.push(b'}');
    }
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    // Serializing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// An object's members in order, values as raw text; a repeated key keeps its first place and
/// its last value (as a `serde_json::Map` does).
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut members: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::with_capacity(8);
                while let Some((key, value)) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    match members.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1 = value,
                        None => members.push((key, value)),
                    }
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(MembersVisitor)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The fast path and the reference path give the same answer: equal values, members in the
    /// same order, the same produced text, usage and `usage_only`.
    fn same_as_reference(
        raw: &str,
        kind: Kind,
        credits: Option<Value>,
        missing: Option<Value>,
        id: Option<&str>,
    ) {
        let fast =
            Shallow::parse(raw.as_bytes()).unwrap_or_else(|| panic!("fast path refused {raw}"));
        let slow: Value = serde_json::from_str(raw).unwrap();
        let (fast, slow) = (Answer::Fast(fast), Answer::Slow(slow));
        assert_eq!(fast.produced_text(), slow.produced_text(), "{raw}");
        assert_eq!(
            fast.produced_by_choice(),
            slow.produced_by_choice(),
            "{raw}"
        );
        assert_eq!(fast.usage_only(), slow.usage_only(), "{raw}");
        assert_eq!(fast.usage(), slow.usage(), "{raw}");
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let decoration = Decoration {
            kind,
            model: "我的模型",
            credits,
            missing_usage: missing,
            id,
        };
        fast.write_decorated(&mut a, decoration.clone());
        slow.write_decorated(&mut b, decoration);
        let a: Value = serde_json::from_slice(&a).unwrap();
        let b: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(a, b, "{raw}");
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&a), keys(&b), "{raw}");
        if let Some(id) = id {
            assert_eq!(a["id"].as_str(), Some(id), "{raw}");
        }
    }

    const CASES: [&str; 19] = [
        r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"up","system_fingerprint":"fp","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
        r#"{"id":"c1","model":"up","choices":[{"index":0,"delta":{"content":"你好, \"世界\"\n\u00e9\ud83d\ude00"},"finish_reason":null}]}"#,
        r#"{"choices":[{"delta":{"reasoning_content":"想一想"},"finish_reason":null}],"model":"up"}"#,
        r#"{"choices":[{"delta":{"reasoning_content":null,"content":null},"finish_reason":"stop"}]}"#,
        r#"{"choices":[{"delta":{},"finish_reason":"length"}],"usage":null}"#,
        r#"{"id":"c1","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42}}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":12}}"#,
        r#"{"choices":[],"usage":{}}"#,
        r#"{"choices":[],"usage":"odd"}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"get_weather","arguments":"{\"city\":"}}]},"finish_reason":null}]}"#,
        r#"{"choices":[{"delta":{"content":"a"}},{"delta":{"content":"b"},"finish_reason":"stop"}]}"#,
        r#"{"id":"x","content":"upstream's own","finish":"?","reasoning_content":5,"choices":[{"delta":{"content":"ours"}}]}"#,
        r#"{"model":"a","model":"b","choices":[{"delta":{"content":"dup"}}]}"#,
        r#"{"id":"c1"}"#,
        r#"{"choices":null,"extra":{"nested":[1,2.50,-3e2,true,{"k":"v"}]}}"#,
        r#"{"choices":[{"delta":{"content":[{"type":"text","text":"parts"}]}}]}"#,
        r#" { "id" : "spaced" , "choices" : [ { "delta" : { "content" : "x" } , "finish_reason" : null } ] } "#,
        // Whole completions.
        r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"up","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!","reasoning_content":"想","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}"#,
        r#"{"id":"chatcmpl-2","choices":[{"message":{"content":"no usage"},"finish_reason":"stop"}],"system_fingerprint":null}"#,
    ];

    #[test]
    fn fast_answers_match_the_reference() {
        let missing = json!({"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3});
        for raw in CASES {
            for kind in [Kind::Chunk, Kind::Completion] {
                same_as_reference(raw, kind, None, None, None);
                same_as_reference(raw, kind, Some(json!(0.2802)), None, None);
                same_as_reference(raw, kind, Some(json!(7)), Some(missing.clone()), None);
                same_as_reference(raw, kind, None, None, Some("req_0123abcd"));
            }
        }
    }

    #[test]
    fn odd_shapes_take_the_reference_path() {
        for raw in [
            r#"[1,2]"#,
            r#""text""#,
            r#"{"choices":{"delta":{}}}"#,
            r#"{"choices":[1,2]}"#,
            r#"{"choices":[{"delta":"text"}]}"#,
        ] {
            assert!(Shallow::parse(raw.as_bytes()).is_none(), "{raw}");
            let answer = Answer::parse(raw.as_bytes()).unwrap();
            assert!(matches!(answer, Answer::Slow(_)), "{raw}");
            let mut out = Vec::new();
            let decoration = Decoration {
                kind: Kind::Chunk,
                model: "m",
                credits: None,
                missing_usage: None,
                id: None,
            };
            answer.write_decorated(&mut out, decoration);
            let reference = decorate::chunk(serde_json::from_str(raw).unwrap(), "m");
            assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), reference);
        }
        assert!(Answer::parse(b"not json").is_none());
    }
}
