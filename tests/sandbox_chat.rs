//! The demo sandbox through the gateway: `n`, `tools`, `response_format`, the system prompt and
//! `max_tokens` reach it and come back in OpenAI's shape (and the seed's fields), each completion
//! with its own id, billed by the usage it reports.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use common::{DEMO_KEY, Opts, Server, demo_phone};
use serde_json::{Value, json};

async fn chat(server: &Server, body: Value) -> Value {
    let (status, answer) = server
        .post_json("/llmage/v1/chat/completions", Some(DEMO_KEY), &body)
        .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

#[tokio::test]
async fn the_sandbox_honours_n_tools_response_format_and_the_system_prompt() {
    let server = Server::start(Opts::demo()).await;

    // n = 3: three different choices, one id per completion.
    let body = json!({"model": "qwen3-max", "n": 3, "max_tokens": 12,
        "messages": [{"role": "user", "content": "如何学习 Rust?"}]});
    let a = chat(&server, body.clone()).await;
    let b = chat(&server, body).await;
    let choices = a["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 3, "{a}");
    assert_ne!(
        choices[0]["message"]["content"],
        choices[1]["message"]["content"]
    );
    assert!(choices.iter().all(|c| c["finish_reason"] == "length"));
    assert_ne!(a["id"], b["id"]);
    assert!(a["usage"]["completion_tokens"].as_u64().unwrap() <= 36);

    // The system prompt (the seed's sys_prompt) is followed and acknowledged.
    let answer = chat(
        &server,
        json!({"model": "qwen3-max", "prompt": "你好", "sys_prompt": "Always answer in English."}),
    )
    .await;
    let content = answer["content"].as_str().unwrap();
    assert!(
        content.contains("Following the system prompt") && content.contains("sandbox"),
        "{content}"
    );

    // response_format json_object: the content is valid JSON.
    let answer = chat(
        &server,
        json!({"model": "qwen3-max", "prompt": "列出三种水果", "response_format": {"type": "json_object"}}),
    )
    .await;
    let parsed: Value = serde_json::from_str(answer["content"].as_str().unwrap()).unwrap();
    assert!(parsed.is_object(), "{parsed}");

    // tools: a tool call, streamed too; its arguments are JSON fitting the schema.
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "required": ["city"],
                       "properties": {"city": {"type": "string"}}}}}]);
    let body = json!({"model": "qwen3-max", "tools": tools,
        "messages": [{"role": "user", "content": "北京天气如何?"}]});
    let answer = chat(&server, body.clone()).await;
    assert_eq!(
        answer["choices"][0]["finish_reason"], "tool_calls",
        "{answer}"
    );
    let call = &answer["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(args["city"].is_string());
    let mut streamed = body;
    streamed["stream"] = json!(true);
    let response = server
        .http
        .post(server.url("/llmage/v1/chat/completions"))
        .bearer_auth(DEMO_KEY)
        .json(&streamed)
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    assert!(
        text.contains("\"tool_calls\"") && text.ends_with("data: [DONE]\n\n"),
        "{text}"
    );

    // Every call was billed: balance = ledger sum.
    let (balance, sum) = server.money_units(demo_phone()).await;
    assert_eq!(balance, sum);
}
