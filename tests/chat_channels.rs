//! `openai` channels against a local OpenAI-compatible mock: faithful relay (every delta, tool
//! call, reasoning text, finish reason and usage), failover on 503, billing by the upstream's
//! usage, and a client that hangs up mid-stream.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::mock_openai::{self, MOCK_KEY, Mode};
use common::{Opts, Server, eventually, sse_data};
use futures_util::StreamExt;
use serde_json::{Value, json};

const PHONE: &str = "13700000000";

#[tokio::test]
async fn relays_json_and_streams_intact_and_bills_upstream_usage() {
    let mock = mock_openai::start(Mode::Normal).await;
    let server = Server::start(Opts::default()).await;
    let key = server.user(PHONE, 1_000);
    // A model only this channel knows, priced 1000 / 3000 credits per million tokens.
    server
        .add_channel(
            "openai",
            &mock.base_url,
            MOCK_KEY,
            "my-llama=llama-3-70b",
            &["--price-in", "1000", "--price-out", "3000"],
        )
        .await;
    server.wait_routable(&key, "my-llama").await;
    let per_call = 1 + 6; // 1000 × 1000 / 1e6 + 2000 × 3000 / 1e6

    // Non-streaming, OpenAI form with tools.
    let body = json!({"model":"my-llama","messages":[{"role":"user","content":"weather?"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{}}}],"temperature":0.1});
    let (status, v) = server
        .post_json("/llmage/v1/chat/completions", Some(&key), &body)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["model"], "my-llama");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Beijing\"}"
    );
    assert_eq!(
        v["choices"][0]["message"]["reasoning_content"],
        "Let me think."
    );
    assert_eq!(
        (
            v["content"].as_str(),
            v["reasoning_content"].as_str(),
            v["finish"].as_str()
        ),
        (Some("Hello, world!"), Some("Let me think."), Some("1"))
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens":1000,"completion_tokens":2000,"total_tokens":3000,"credits":per_call})
    );
    {
        let seen = mock.seen.bodies.lock().unwrap();
        let up = &seen[0];
        assert_eq!(up["model"], "llama-3-70b", "model renamed for the upstream");
        assert_eq!(up["tools"], body["tools"]);
        assert_eq!(up["temperature"], 0.1);
        assert!(up.get("stream_options").is_none());
    }
    assert_eq!(
        server.money(PHONE).await,
        (1_000 - per_call, 1_000 - per_call)
    );

    // Streaming in the seed's form, usage requested.
    let resp = server
        .http
        .post(server.url("/llmage/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model":"my-llama","catelogid":"t2t","prompt":"weather?","sys_prompt":"be brief","stream":true,"stream_options":{"include_usage":true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(request_id.starts_with("chatcmpl-"), "{request_id}");
    let events = sse_data(&resp.text().await.unwrap());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let got: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let expected = mock_openai::stream_events("llama-3-70b");
    assert_eq!(got.len(), expected.len(), "every upstream chunk is relayed");
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(
            g["choices"], e["choices"],
            "deltas, tool calls, finish reasons intact"
        );
        assert_eq!(g["model"], "my-llama");
        // The completion id is our request id (the call log's key), not the upstream's.
        assert_eq!(g["id"], request_id.as_str());
        assert_ne!(g["id"], e["id"]);
    }
    let reasoning: String = got
        .iter()
        .filter_map(|c| c["reasoning_content"].as_str())
        .collect();
    assert_eq!(reasoning, "Let me think.");
    let content: String = got.iter().map(|c| c["content"].as_str().unwrap()).collect();
    assert_eq!(content, "Hello, world!");
    let last = got.last().unwrap();
    assert_eq!(last["usage"]["prompt_tokens"], 1000);
    assert_eq!(last["usage"]["completion_tokens"], 2000);
    assert_eq!(last["usage"]["credits"], per_call);
    {
        let seen = mock.seen.bodies.lock().unwrap();
        let up = &seen[1];
        assert_eq!(
            up["messages"],
            json!([{"role":"system","content":"be brief"},{"role":"user","content":"weather?"}])
        );
        assert_eq!(up["stream_options"]["include_usage"], true);
        assert!(
            up.get("prompt").is_none()
                && up.get("catelogid").is_none()
                && up.get("sys_prompt").is_none()
        );
    }
    // Without include_usage the client gets no usage chunk, and is still billed by it.
    let (status, text) = server
        .post_json(
            "/llmage/v1/chat/completions",
            Some(&key),
            &json!({"model":"my-llama","prompt":"again","stream":true}),
        )
        .await;
    assert_eq!(status, 200);
    let events = sse_data(text.as_str().unwrap());
    assert_eq!(
        events.len(),
        expected.len(),
        "usage chunk dropped, [DONE] kept"
    );
    assert_eq!(
        mock.seen.bodies.lock().unwrap()[2]["stream_options"]["include_usage"],
        true
    );
    eventually(Duration::from_secs(5), "stream settled", || async {
        server.money(PHONE).await == (1_000 - 3 * per_call, 1_000 - 3 * per_call)
    })
    .await;
}

/// `GET /healthz` tells when a channel change made by the `admin` CLI (another process) has
/// reached the server: `synced` is true only once the live snapshot matches the database, and
/// `generation` counts the snapshots built.
#[tokio::test]
async fn healthz_shows_when_a_channel_change_has_been_loaded() {
    let mock = mock_openai::start(Mode::Normal).await;
    let server = Server::start(Opts::default()).await;
    let key = server.user(PHONE, 1_000);
    let generation = || async {
        let (status, health) = server.get_json("/healthz", None).await;
        assert_eq!(status, 200, "{health}");
        health["channels"]["generation"].as_u64().unwrap()
    };
    let before = generation().await;
    server
        .add_channel("openai", &mock.base_url, MOCK_KEY, "synced-llama", &[])
        .await;
    assert!(generation().await > before);
    // Synced means loaded: the new model is routable without any further wait.
    let (_, list) = server.get_json("/llmage/v1/models", Some(&key)).await;
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "synced-llama" && m["available"] == true),
        "{list}"
    );
    // A change that is not a new row (a disable) is seen too.
    let id = server
        .admin_ok(&["channel", "list"])
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let before = generation().await;
    server.admin_ok(&["channel", "disable", &id]);
    server.wait_channels_synced().await;
    assert!(generation().await > before);
    let (_, list) = server.get_json("/llmage/v1/models", Some(&key)).await;
    assert!(
        !list["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "synced-llama" && m["available"] == true),
        "{list}"
    );
}

#[tokio::test]
async fn fails_over_to_the_next_channel_on_503() {
    let broken = mock_openai::start(Mode::Fail503).await;
    let good = mock_openai::start(Mode::Normal).await;
    let server = Server::start(Opts::default()).await;
    let key = server.user(PHONE, 100_000);
    // The broken channel has the higher priority, so it is always tried first.
    server
        .add_channel(
            "openai",
            &broken.base_url,
            MOCK_KEY,
            "qwen3-max",
            &["--priority", "10"],
        )
        .await;
    server
        .add_channel("openai", &good.base_url, MOCK_KEY, "qwen3-max", &[])
        .await;
    assert_eq!(server.admin_ok(&["channel", "list"]).lines().count(), 3);

    let (status, v) = server
        .post_json(
            "/llmage/v1/chat/completions",
            Some(&key),
            &json!({"model":"qwen3-max","prompt":"hi"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["content"], "Hello, world!");
    let (status, text) = server
        .post_json(
            "/llmage/v1/chat/completions",
            Some(&key),
            &json!({"model":"qwen3-max","prompt":"hi","stream":true}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        sse_data(text.as_str().unwrap()).last().map(String::as_str),
        Some("[DONE]")
    );
    assert_eq!(broken.seen.calls.load(Ordering::SeqCst), 2);
    assert_eq!(good.seen.calls.load(Ordering::SeqCst), 2);
    // Billed by the good upstream's usage: qwen3-max 600 / 2400 per million → 0.6 + 4.8 = 5.4.
    let left = 100_000 * 10_000 - 2 * 54_000;
    eventually(Duration::from_secs(5), "billing", || async {
        server.money_units(PHONE).await == (left, left)
    })
    .await;

    // With the good channel disabled every upstream fails: a clean 502 and nothing charged.
    let list = server.admin_ok(&["channel", "list"]);
    let good_id = list
        .lines()
        .nth(2)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    server.admin_ok(&["channel", "disable", &good_id]);
    eventually(
        Duration::from_secs(5),
        "disabled channel dropped",
        || async {
            server
                .post_json(
                    "/llmage/v1/chat/completions",
                    Some(&key),
                    &json!({"model":"qwen3-max","prompt":"hi"}),
                )
                .await
                .0
                == 502
        },
    )
    .await;
    // (Calls made while waiting for the disable to land succeeded and were billed.)
    let before = server.money_units(PHONE).await;
    assert_eq!(before.0, before.1);
    let (status, v) = server
        .post_json(
            "/llmage/v1/chat/completions",
            Some(&key),
            &json!({"model":"qwen3-max","prompt":"hi","stream":true}),
        )
        .await;
    assert_eq!(status, 502);
    assert_eq!(
        v,
        json!({"error": "Upstream error: upstream answered HTTP 503"})
    );
    assert_eq!(
        server.money_units(PHONE).await,
        before,
        "a failed call costs nothing"
    );
    assert!(
        !server.log().contains(MOCK_KEY),
        "vendor keys never reach the log"
    );
}

#[tokio::test]
async fn a_wrong_vendor_key_is_not_blamed_on_the_user() {
    let mock = mock_openai::start(Mode::Normal).await;
    let server = Server::start(Opts::default()).await;
    let key = server.user(PHONE, 100_000);
    server
        .add_channel(
            "openai",
            &mock.base_url,
            "wrong-vendor-key",
            "qwen3-max",
            &[],
        )
        .await;
    server.wait_routable(&key, "qwen3-max").await;
    let (status, v) = server
        .post_json(
            "/llmage/v1/chat/completions",
            Some(&key),
            &json!({"model":"qwen3-max","prompt":"hi"}),
        )
        .await;
    assert_eq!(status, 502, "{v}");
    let message = v["error"].as_str().unwrap();
    assert!(message.contains("authentication"), "{message}");
    assert!(
        !message.contains("mock-***") && !message.contains("wrong-vendor-key"),
        "{message}"
    );
    assert_eq!(server.money(PHONE).await, (100_000, 100_000));
}

#[tokio::test]
async fn a_client_that_hangs_up_before_the_answer_is_still_billed_exactly() {
    let mock = mock_openai::start(Mode::SlowStart).await;
    let server = Server::start(Opts::default()).await;
    let key = server.user(PHONE, 1_000);
    server
        .add_channel(
            "openai",
            &mock.base_url,
            MOCK_KEY,
            "late-model",
            &["--price-in", "1000", "--price-out", "3000"],
        )
        .await;
    server.wait_routable(&key, "late-model").await;
    let per_call = 1 + 6; // the mock's usage: 1000 in, 2000 out
    for (n, stream) in [(1, false), (2, true)] {
        let sent = server
            .http
            .post(server.url("/llmage/v1/chat/completions"))
            .bearer_auth(&key)
            .timeout(Duration::from_millis(150))
            .json(&json!({"model":"late-model","prompt":"hi","stream":stream}))
            .send()
            .await;
        assert!(sent.is_err(), "the client gave up before the answer");
        eventually(Duration::from_secs(10), "the call billed", || async {
            let db = server.db().await;
            let rows: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM chat_usage")
                .fetch_one(db.reader())
                .await
                .unwrap();
            let open: i64 = sqlx::query_scalar(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM reservations WHERE status = 'open'",
            )
            .fetch_one(db.reader())
            .await
            .unwrap();
            db.close().await;
            rows == n && open == 0
        })
        .await;
        let (balance, sum) = server.money(PHONE).await;
        assert_eq!(balance, sum);
        if !stream {
            // The whole answer was produced upstream: billed by its reported usage.
            assert_eq!(balance, 1_000 - per_call);
        }
    }
}

#[tokio::test]
async fn client_disconnect_stops_the_upstream_and_bills_what_was_produced() {
    let mock = mock_openai::start(Mode::Slow).await;
    let server = Server::start(Opts::default()).await;
    let key = server.user(PHONE, 1_000_000);
    server
        .add_channel(
            "openai",
            &mock.base_url,
            MOCK_KEY,
            "slow-model",
            &["--price-in", "0", "--price-out", "100000"],
        )
        .await;
    server.wait_routable(&key, "slow-model").await;
    let resp = server
        .http
        .post(server.url("/llmage/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model":"slow-model","prompt":"tell me a long story","stream":true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let mut received = 0;
    while received < 10 {
        let chunk = body.next().await.unwrap().unwrap();
        received += chunk.windows(5).filter(|w| w == b"data:").count();
    }
    drop(body);
    eventually(
        Duration::from_secs(5),
        "upstream request cancelled",
        || async { mock.seen.cancelled.load(Ordering::SeqCst) },
    )
    .await;
    // Billed by estimate: each chunk is "tok " (1 token) at 100000 credits per million = 0.1 credit.
    // In units (1/10,000 credit): the estimate is a tenth of a credit per chunk relayed, and how
    // many chunks went out before the disconnect was seen is not always a multiple of ten.
    let per = llmage::billing::UNITS_PER_CREDIT;
    eventually(Duration::from_secs(5), "stream billed", || async {
        let (balance, sum) = server.money_units(PHONE).await;
        balance == sum && balance < 1_000_000 * per && balance > (1_000_000 - 20) * per
    })
    .await;
    let db = server.db().await;
    let outcome: String =
        sqlx::query_scalar("SELECT outcome FROM chat_usage ORDER BY id DESC LIMIT 1")
            .fetch_one(db.reader())
            .await
            .unwrap();
    assert_eq!(outcome, "client_closed");
}

#[tokio::test]
async fn upstream_errors_inside_a_stream() {
    let first_fails = mock_openai::start(Mode::ErrorFirst).await;
    let breaks = mock_openai::start(Mode::BreakMidStream).await;
    let server = Server::start(Opts::default()).await;
    let key = server.user(PHONE, 1_000_000);
    // An error event before any data: the next channel answers instead.
    server
        .add_channel(
            "openai",
            &first_fails.base_url,
            MOCK_KEY,
            "m-a",
            &[
                "--priority",
                "5",
                "--price-in",
                "0",
                "--price-out",
                "1000000",
            ],
        )
        .await;
    let good = mock_openai::start(Mode::Normal).await;
    server
        .add_channel("openai", &good.base_url, MOCK_KEY, "m-a", &[])
        .await;
    // An error after data: the client gets what was produced, then an SSE error event.
    server
        .add_channel(
            "openai",
            &breaks.base_url,
            MOCK_KEY,
            "m-b",
            &["--price-in", "0", "--price-out", "1000000"],
        )
        .await;
    server.wait_routable(&key, "m-b").await;
    assert_eq!(server.admin_ok(&["channel", "list"]).lines().count(), 4);

    let (status, text) = server
        .post_json(
            "/llmage/v1/chat/completions",
            Some(&key),
            &json!({"model":"m-a","prompt":"hi","stream":true}),
        )
        .await;
    assert_eq!(status, 200);
    let events = sse_data(text.as_str().unwrap());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(first_fails.seen.calls.load(Ordering::SeqCst), 1);
    assert_eq!(good.seen.calls.load(Ordering::SeqCst), 1);

    let before = server.money(PHONE).await.0;
    let (status, text) = server
        .post_json(
            "/llmage/v1/chat/completions",
            Some(&key),
            &json!({"model":"m-b","prompt":"hi","stream":true}),
        )
        .await;
    assert_eq!(status, 200);
    let events = sse_data(text.as_str().unwrap());
    assert_eq!(events.len(), 3, "{events:?}");
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first["content"], "Hello");
    let error: Value = serde_json::from_str(&events[2]).unwrap();
    assert_eq!(
        error["error"]["message"],
        "Upstream error: internal failure"
    );
    assert_ne!(events.last().map(String::as_str), Some("[DONE]"));
    // Billed by estimate for what was produced ("Hello" 2 tokens + ", " 1 token, 1 credit each).
    eventually(Duration::from_secs(5), "billed", || async {
        let (balance, sum) = server.money(PHONE).await;
        balance == sum && before - balance == 3
    })
    .await;
}

/// A chunk that is not JSON ends the stream like an error event: what was produced, then an
/// SSE error event naming the cause, billed by estimate.
#[tokio::test]
async fn a_chunk_that_is_not_json_ends_the_stream_with_an_error_event() {
    let garbage = mock_openai::start(Mode::GarbageMidStream).await;
    let server = Server::start(Opts::default()).await;
    let key = server.user(PHONE, 1_000_000);
    server
        .add_channel(
            "openai",
            &garbage.base_url,
            MOCK_KEY,
            "m-g",
            &["--price-in", "0", "--price-out", "1000000"],
        )
        .await;
    server.wait_routable(&key, "m-g").await;
    let before = server.money(PHONE).await.0;
    let (status, text) = server
        .post_json(
            "/llmage/v1/chat/completions",
            Some(&key),
            &json!({"model":"m-g","prompt":"hi","stream":true}),
        )
        .await;
    assert_eq!(status, 200);
    let events = sse_data(text.as_str().unwrap());
    assert_eq!(events.len(), 3, "{events:?}");
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(
        (first["content"].as_str(), first["model"].as_str()),
        (Some("Hello"), Some("m-g"))
    );
    let error: Value = serde_json::from_str(&events[2]).unwrap();
    assert_eq!(
        error["error"]["message"],
        "Upstream error: upstream sent an unreadable response"
    );
    eventually(Duration::from_secs(5), "billed", || async {
        let (balance, sum) = server.money(PHONE).await;
        balance == sum && before - balance == 3
    })
    .await;
}

#[tokio::test]
async fn a_channel_at_its_concurrency_cap_passes_calls_to_the_next() {
    let busy = mock_openai::start(Mode::Slow).await;
    let spare = mock_openai::start(Mode::Normal).await;
    let server = Server::start(Opts::default()).await;
    let key = server.user(PHONE, 1_000_000);
    server
        .add_channel(
            "openai",
            &busy.base_url,
            MOCK_KEY,
            "capped",
            &[
                "--priority",
                "10",
                "--max-concurrency",
                "1",
                "--price-in",
                "1",
                "--price-out",
                "1",
            ],
        )
        .await;
    server
        .add_channel(
            "openai",
            &spare.base_url,
            MOCK_KEY,
            "capped",
            &["--price-in", "1", "--price-out", "1"],
        )
        .await;
    server.wait_routable(&key, "capped").await;
    let first = server
        .http
        .post(server.url("/llmage/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": "capped", "prompt": "long", "stream": true}))
        .send()
        .await
        .unwrap();
    let mut body = first.bytes_stream();
    body.next().await.unwrap().unwrap();
    assert_eq!(busy.seen.calls.load(Ordering::SeqCst), 1);
    // The capped channel holds its one call: the next goes to the spare channel.
    let (status, _) = server
        .post_json(
            "/llmage/v1/chat/completions",
            Some(&key),
            &json!({"model": "capped", "prompt": "short"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(busy.seen.calls.load(Ordering::SeqCst), 1);
    assert_eq!(spare.seen.calls.load(Ordering::SeqCst), 1);
    drop(body);
    // Once the stream ended, the capped channel takes calls again.
    eventually(Duration::from_secs(5), "permit returned", || async {
        let (status, _) = server
            .post_json(
                "/llmage/v1/chat/completions",
                Some(&key),
                &json!({"model": "capped", "prompt": "again"}),
            )
            .await;
        status == 200 && busy.seen.calls.load(Ordering::SeqCst) == 2
    })
    .await;
}

#[tokio::test]
async fn a_channel_over_its_rpm_passes_calls_to_the_next() {
    let limited = mock_openai::start(Mode::Normal).await;
    let spare = mock_openai::start(Mode::Normal).await;
    let server = Server::start(Opts::default()).await;
    let key = server.user(PHONE, 1_000_000);
    server
        .add_channel(
            "openai",
            &limited.base_url,
            MOCK_KEY,
            "rated",
            &[
                "--priority",
                "10",
                "--rpm",
                "2",
                "--price-in",
                "1",
                "--price-out",
                "1",
            ],
        )
        .await;
    server
        .add_channel(
            "openai",
            &spare.base_url,
            MOCK_KEY,
            "rated",
            &["--price-in", "1", "--price-out", "1"],
        )
        .await;
    server.wait_routable(&key, "rated").await;
    for _ in 0..3 {
        let (status, _) = server
            .post_json(
                "/llmage/v1/chat/completions",
                Some(&key),
                &json!({"model": "rated", "prompt": "hi"}),
            )
            .await;
        assert_eq!(status, 200);
    }
    assert_eq!(limited.seen.calls.load(Ordering::SeqCst), 2, "two a minute");
    assert_eq!(spare.seen.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn channels_declared_in_the_config_file_are_synced_at_start() {
    let mock = mock_openai::start(Mode::Normal).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("llmage.toml");
    std::fs::write(
        &config,
        format!(
            "[[channels]]\nname = \"from-config\"\nvendor = \"openai\"\nbase_url = \"{}\"\napi_key = \"{MOCK_KEY}\"\n\
             models = [\"conf-model=llama-3-70b\"]\nprice_in = 1000\nprice_out = 3000\nrpm = 600\n",
            mock.base_url
        ),
    )
    .unwrap();
    let opts = Opts {
        args: vec!["--config".into(), config.display().to_string()],
        ..Opts::default()
    };
    let server = Server::start(opts.clone()).await;
    let key = server.user(PHONE, 1_000);
    server.wait_routable(&key, "conf-model").await;
    let (status, body) = server
        .post_json(
            "/llmage/v1/chat/completions",
            Some(&key),
            &json!({"model": "conf-model", "prompt": "hi"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(mock.seen.bodies.lock().unwrap()[0]["model"], "llama-3-70b");
    let list = server.admin_ok(&["channel", "list"]);
    assert!(
        list.contains("from-config") && !list.contains(MOCK_KEY),
        "{list}"
    );
    // A restart updates the same channel instead of adding another.
    let server = server.restart(opts).await;
    let list = server.admin_ok(&["channel", "list"]);
    assert_eq!(list.matches("from-config").count(), 1, "{list}");
}
