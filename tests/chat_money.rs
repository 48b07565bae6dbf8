//! Chat money against clients that do not behave like our other tests, through an upstream that
//! bills like vLLM and OpenAI (`mock_metered`: honours `n` and the output bound, bills tools and
//! image parts as input): for n ∈ {1, 20, 50}, 1 MB of tools, image parts, streamed and not,
//! balances below and above the worst case — the credits taken equal the price of the usage the
//! upstream reported (to one unit), the balance never goes below zero and equals the ledger sum.
//! Also: small balances are served, short calls pay list price to 1/10,000 credit, long streams
//! and slow readers pay for what was produced. SQLite by default, PostgreSQL when
//! `LLMAGE_TEST_DATABASE_URL` is set.

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

use common::mock_metered::{self, Behaviour, MockMetered};
use common::{Opts, Server, eventually, sse_data};
use serde_json::{Value, json};

/// qwen3-max's list price: 600 / 2,400 credits per million tokens.
const PRICE_IN: u64 = 600;
const PRICE_OUT: u64 = 2_400;

/// The price of a usage in units (1/10,000 credit), rounded up once.
fn price(prompt: u64, completion: u64) -> i64 {
    ((prompt * PRICE_IN + completion * PRICE_OUT).div_ceil(100)) as i64
}

async fn channel(server: &Server, mock: &MockMetered, key: &str, model: &str) {
    server
        .add_channel(
            "openai",
            &mock.base_url,
            mock_metered::KEY,
            model,
            &[
                "--price-in",
                &PRICE_IN.to_string(),
                "--price-out",
                &PRICE_OUT.to_string(),
            ],
        )
        .await;
    server.wait_routable(key, model).await;
}

struct Case {
    name: &'static str,
    n: u64,
    max_tokens: u64,
    tools_bytes: usize,
    images: usize,
    stream: bool,
    credits: i64,
}

async fn call(server: &Server, key: &str, body: &Value) -> (u16, String) {
    let resp = server
        .http
        .post(server.url("/llmage/v1/chat/completions"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

fn body_of(case: &Case, model: &str) -> Value {
    let mut content = vec![json!({"type": "text", "text": "描述这些图片,然后写一首长诗"})];
    for i in 0..case.images {
        content.push(json!({"type": "image_url", "image_url": {"url": format!("https://example.com/{i}.png")}}));
    }
    let mut body = json!({
        "model": model,
        "messages": [{"role": "system", "content": "你是诗人"}, {"role": "user", "content": content}],
        "n": case.n,
        "max_tokens": case.max_tokens,
        "stream": case.stream,
    });
    if case.tools_bytes > 0 {
        body["tools"] = json!([{"type": "function", "function": {
            "name": "lookup", "description": "x".repeat(case.tools_bytes),
            "parameters": {"type": "object", "properties": {}}}}]);
    }
    body
}

#[tokio::test]
async fn every_billed_token_is_paid_and_never_more_than_the_balance() {
    let mock = mock_metered::start(Behaviour {
        chunk_tokens: 25,
        ..Behaviour::default()
    })
    .await;
    let server = Server::start(Opts::default()).await;
    let setup_key = server.user("13700000000", 1);
    channel(&server, &mock, &setup_key, "metered-max").await;
    let cases = [
        (1, false, 10_000),
        (1, true, 10_000),
        (20, false, 1_000),
        (20, true, 1_000),
        (50, false, 10_000),
        (50, true, 10_000),
        (50, false, 60),
        (50, true, 60),
        (20, true, 30),
        (1, false, 2),
    ]
    .into_iter()
    .map(|(n, stream, credits)| Case {
        name: "n",
        n,
        max_tokens: 1_000,
        tools_bytes: 0,
        images: 0,
        stream,
        credits,
    })
    .chain([
        Case {
            name: "1 MB of tools, small balance",
            n: 1,
            max_tokens: 1_000,
            tools_bytes: 1 << 20,
            images: 0,
            stream: false,
            credits: 60,
        },
        Case {
            name: "1 MB of tools",
            n: 1,
            max_tokens: 1_000,
            tools_bytes: 1 << 20,
            images: 0,
            stream: true,
            credits: 2_000,
        },
        Case {
            name: "image parts",
            n: 2,
            max_tokens: 500,
            tools_bytes: 0,
            images: 3,
            stream: false,
            credits: 100,
        },
        Case {
            name: "image parts, streamed, small balance",
            n: 2,
            max_tokens: 500,
            tools_bytes: 0,
            images: 3,
            stream: true,
            credits: 12,
        },
    ]);
    let mut served = 0;
    for (i, case) in cases.enumerate() {
        let phone = format!("137000001{i:02}");
        let key = server.user(&phone, case.credits);
        let before = server.money_units(&phone).await.0;
        let reported_before = mock.seen.reported.lock().unwrap().len();
        let (status, text) = call(&server, &key, &body_of(&case, "metered-max")).await;
        let what = format!(
            "{} (n={}, stream={}, {} credits)",
            case.name, case.n, case.stream, case.credits
        );
        eventually(Duration::from_secs(10), "the call is settled", || async {
            server.open_holds().await == 0
        })
        .await;
        let (after, sum) = server.money_units(&phone).await;
        assert_eq!(after, sum, "{what}: balance = ledger sum");
        assert!(after >= 0, "{what}: balance {after}");
        let taken = before - after;
        match status {
            200 => {
                served += 1;
                let reported = mock.seen.reported.lock().unwrap()[reported_before..].to_vec();
                assert_eq!(reported.len(), 1, "{what}: one upstream call");
                let (p, c) = reported[0];
                assert_eq!(
                    p,
                    mock_metered::input_tokens(mock.seen.bodies.lock().unwrap().last().unwrap()),
                );
                let expected = price(p, c);
                assert!(
                    (taken - expected).abs() <= 1,
                    "{what}: taken {taken} units, the upstream billed {p}+{c} tokens = {expected} units"
                );
                if case.stream {
                    let data = sse_data(&text);
                    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{what}");
                } else {
                    let v: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(
                        v["choices"].as_array().map(Vec::len),
                        Some(case.n as usize),
                        "{what}"
                    );
                    let shown = v["usage"]["credits"].as_f64().unwrap();
                    assert!(
                        (shown * 10_000.0 - taken as f64).abs() < 0.5,
                        "{what}: usage.credits {shown} = what was taken"
                    );
                }
            }
            429 => {
                assert_eq!(taken, 0, "{what}: a refused call takes nothing");
                assert!(
                    text.contains("this call needs at least") && text.contains("balance"),
                    "{what}: the refusal names the amount: {text}"
                );
            }
            other => panic!("{what}: HTTP {other}: {text}"),
        }
    }
    assert!(served >= 10, "most cases are served ({served})");
}

/// After a 1-yuan recharge (100 credits) the seed's own chat example answers 200; a user with 2
/// credits gets an answer capped by what they can pay.
#[tokio::test]
async fn small_balances_are_served_capped_by_what_they_pay() {
    let mock = mock_metered::start(Behaviour::default()).await;
    let server = Server::start(Opts::default()).await;
    let key = server.user("13700000201", 100);
    channel(&server, &mock, &key, "qwen3-max").await;
    let seed = json!({"model": "qwen3-max", "catelogid": "t2t", "prompt": "你的问题", "sys_prompt": "", "stream": false});
    let (status, text) = call(&server, &key, &seed).await;
    assert_eq!(status, 200, "{text}");

    let poor = server.user("13700000202", 2);
    let (status, text) = call(&server, &poor, &seed).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    let sent = mock.seen.bodies.lock().unwrap().last().unwrap()["max_tokens"]
        .as_u64()
        .unwrap();
    assert!((16..1_000).contains(&sent), "bound lowered to {sent}");
    let (balance, sum) = server.money_units("13700000202").await;
    assert_eq!(balance, sum);
    assert!(balance >= 0);

    // Below even the smallest bound: 429 naming what the call needs.
    let broke = server.user("13700000203", 0);
    let (status, text) = call(&server, &broke, &seed).await;
    assert_eq!(status, 429, "{text}");
    assert!(
        text.contains("Insufficient balance: this call needs at least 0.")
            && text.contains("balance 0"),
        "{text}"
    );
}

/// Ten calls of 47 + 105 tokens on qwen3-max cost 2.802 credits (0.2802 each), shown as such in
/// the balance, the answers' usage.credits and the finance views.
#[tokio::test]
async fn short_calls_pay_list_price_to_a_ten_thousandth() {
    let mock = mock_metered::start(Behaviour {
        fixed: Some((47, 105)),
        ..Behaviour::default()
    })
    .await;
    let server = Server::start(Opts::default()).await;
    let phone = "13700000301";
    let key = server.user(phone, 100);
    channel(&server, &mock, &key, "qwen3-max").await;
    for i in 0..10 {
        let stream = i % 2 == 1;
        let body = json!({"model": "qwen3-max", "prompt": "你好", "stream": stream,
            "stream_options": {"include_usage": true}});
        let (status, text) = call(&server, &key, &body).await;
        assert_eq!(status, 200, "{text}");
        let usage = if stream {
            let data = sse_data(&text);
            let last: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
            last["usage"].clone()
        } else {
            serde_json::from_str::<Value>(&text).unwrap()["usage"].clone()
        };
        assert_eq!(usage["credits"], json!(0.2802), "{usage}");
    }
    assert_eq!(
        server.money_units(phone).await,
        (1_000_000 - 28_020, 1_000_000 - 28_020)
    );
    let (_, balance) = server.get_json("/llmage/v1/balance", Some(&key)).await;
    assert_eq!(balance["balance"], json!(97.198));

    // The finance views: one row per call with its final amount and a Chinese description.
    let (console, _) = common::console::login(&server, phone).await;
    let get = |path: &str| console.get(server.url(path)).send();
    let ledger: Value = get("/api/finance/ledger")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows = ledger["data"].as_array().unwrap();
    let calls: Vec<&Value> = rows.iter().filter(|r| r["kind"] == "chat").collect();
    assert_eq!(calls.len(), 10, "{ledger}");
    for r in &calls {
        assert_eq!(r["amount"], json!(-0.2802), "{r}");
        assert_eq!(r["description"], "对话 qwen3-max");
        assert_eq!(r["status"], "done");
    }
    assert_eq!(ledger["balance"], json!(97.198));
    let usage: Value = get("/api/finance/usage")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(usage["data"][0]["credits"], json!(2.802), "{usage}");
    let csv = get("/api/finance/ledger?format=csv")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.contains("-0.2802") && csv.contains("对话 qwen3-max"),
        "{csv}"
    );
    assert!(
        !csv.contains("reserve") && !csv.contains("settle:"),
        "{csv}"
    );
}

/// A stream that lasts longer than `upstream_total_timeout_secs + 5`, and one whose client
/// stops reading for that long, are both charged for what was produced.
#[tokio::test]
async fn long_streams_and_slow_readers_pay_for_what_was_produced() {
    let mock = mock_metered::start(Behaviour {
        chunk_delay: Duration::from_millis(100),
        chunk_tokens: 10,
        ..Behaviour::default()
    })
    .await;
    let server = Server::start(Opts {
        env: vec![
            ("LLMAGE_UPSTREAM_TOTAL_TIMEOUT_SECS".into(), "1".into()),
            ("LLMAGE_CLIENT_WRITE_TIMEOUT_SECS".into(), "30".into()),
        ],
        ..Opts::default()
    })
    .await;
    let phone = "13700000401";
    let key = server.user(phone, 100);
    channel(&server, &mock, &key, "long").await;
    // 70 chunks, 100 ms apart: 7 s, longer than 1 + 5 s. The first client reads all along; the
    // second reads the first bytes, then nothing for 7 s, then the rest.
    for slow_reader in [false, true] {
        let before = server.money_units(phone).await.0;
        let reported_before = mock.seen.reported.lock().unwrap().len();
        let mut resp = server
            .http
            .post(server.url("/llmage/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({"model": "long", "prompt": "写一个很长的故事", "max_tokens": 700, "stream": true}))
            .send()
            .await
            .unwrap();
        let mut text = String::new();
        let first = resp.chunk().await.unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&first));
        if slow_reader {
            // The scenario: a client that stops reading for longer than the write timeout.
            tokio::time::sleep(Duration::from_secs(7)).await;
        }
        while let Some(chunk) = resp.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(text.ends_with("data: [DONE]\n\n"), "served to the end");
        eventually(Duration::from_secs(10), "settled", || async {
            mock.seen.reported.lock().unwrap().len() > reported_before
                && server.money_units(phone).await.0 < before
        })
        .await;
        let (p, c) = mock.seen.reported.lock().unwrap()[reported_before];
        assert_eq!(c, 700);
        let (after, sum) = server.money_units(phone).await;
        assert_eq!(after, sum);
        assert_eq!(before - after, price(p, c), "slow reader: {slow_reader}");
    }
}

/// A client that stops reading longer than the write timeout is cut and pays for what was
/// produced up to then (by estimate: the upstream's usage never comes).
#[tokio::test]
async fn a_stalled_reader_is_cut_and_pays_for_what_was_produced() {
    let mock = mock_metered::start(Behaviour {
        chunk_tokens: 2_000,
        ..Behaviour::default()
    })
    .await;
    let server = Server::start(Opts {
        env: vec![("LLMAGE_CLIENT_WRITE_TIMEOUT_SECS".into(), "2".into())],
        ..Opts::default()
    })
    .await;
    let phone = "13700000501";
    let key = server.user(phone, 10_000_000);
    channel(&server, &mock, &key, "stall").await;
    let before = server.money_units(phone).await.0;
    let mut resp = server
        .http
        .post(server.url("/llmage/v1/chat/completions"))
        .bearer_auth(&key)
        // A bound far beyond what the connection's buffers hold (300 MB of answer).
        .json(&json!({"model": "stall", "prompt": "x", "max_tokens": 100_000_000, "stream": true}))
        .send()
        .await
        .unwrap();
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(!first.is_empty());
    // Stop reading: the gateway's buffers fill, then its write timeout cuts the stream.
    eventually(Duration::from_secs(30), "the stream is cut", || async {
        mock.seen.cancelled.load(Ordering::SeqCst)
    })
    .await;
    eventually(Duration::from_secs(10), "settled", || async {
        server.money_units(phone).await.0 < before
    })
    .await;
    let (after, sum) = server.money_units(phone).await;
    assert_eq!(after, sum);
    let written = mock.seen.written.load(Ordering::SeqCst);
    let taken = before - after;
    assert!(
        taken > 0 && taken <= price(64, written),
        "taken {taken}, produced {written} tokens"
    );
    drop(resp);
    let db = server.db().await;
    let outcome: String =
        sqlx::query_scalar("SELECT outcome FROM chat_usage ORDER BY id DESC LIMIT 1")
            .fetch_one(db.reader())
            .await
            .unwrap();
    assert_eq!(outcome, "client_stalled");
}

/// One chat call of a random schedule.
#[derive(Debug, Clone)]
struct RandomCall {
    n: u64,
    max_tokens: u64,
    stream: bool,
    /// Hang up after this many body bytes (streams).
    hang_up_after: Option<usize>,
}

fn random_call() -> impl proptest::strategy::Strategy<Value = RandomCall> {
    use proptest::prelude::*;
    (
        1u64..6,
        20u64..400,
        any::<bool>(),
        proptest::option::of(1usize..3000),
    )
        .prop_map(|(n, max_tokens, stream, hang_up_after)| RandomCall {
            n,
            max_tokens,
            stream,
            hang_up_after,
        })
}

async fn random_schedule(calls: Vec<RandomCall>, kill_after_ms: Option<u64>, credits: i64) {
    let mock = mock_metered::start(Behaviour {
        chunk_delay: Duration::from_millis(5),
        chunk_tokens: 7,
        ..Behaviour::default()
    })
    .await;
    let mut server = Server::start(Opts::default()).await;
    let phone = "13700000601";
    let key = server.user(phone, credits);
    channel(&server, &mock, &key, "prop").await;
    let tasks: Vec<_> = calls
        .into_iter()
        .map(|c| {
            let http = server.http.clone();
            let url = server.url("/llmage/v1/chat/completions");
            let key = key.clone();
            tokio::spawn(async move {
                let body = json!({"model": "prop", "prompt": "讲个故事", "n": c.n,
                    "max_tokens": c.max_tokens, "stream": c.stream});
                let Ok(mut resp) = http.post(url).bearer_auth(key).json(&body).send().await else {
                    return;
                };
                let mut read = 0;
                while let Ok(Some(chunk)) = resp.chunk().await {
                    read += chunk.len();
                    if c.hang_up_after.is_some_and(|limit| read >= limit) {
                        return;
                    }
                }
            })
        })
        .collect();
    if let Some(ms) = kill_after_ms {
        // The scenario: SIGKILL at a random moment of the calls (part of the generated case).
        tokio::time::sleep(Duration::from_millis(ms)).await;
        server.kill9();
        server = server.restart(Opts::default()).await;
    }
    for t in tasks {
        let _ = t.await;
    }
    // Every hold is closed once its owner is gone or done (a killed owner's lease runs out).
    eventually(Duration::from_secs(20), "no hold left open", || async {
        server.open_holds().await == 0
    })
    .await;
    let (balance, sum) = server.money_units(phone).await;
    assert_eq!(balance, sum, "balance = ledger sum");
    assert!(balance >= 0);
    let over = server
        .count(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM (SELECT r.id FROM reservations r \
             JOIN ledger l ON l.reservation_id = r.id GROUP BY r.id, r.amount \
             HAVING -SUM(l.amount) > r.amount OR -SUM(l.amount) < 0) t",
        )
        .await;
    assert_eq!(over, 0, "no call took more than its hold");
    let negative = server
        .count("SELECT CAST(COUNT(*) AS BIGINT) FROM ledger WHERE balance_after < 0")
        .await;
    assert_eq!(negative, 0);
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config {
        cases: 4,
        max_shrink_iters: 4,
        ..proptest::test_runner::Config::default()
    })]

    /// Random interleavings of concurrent holds, streams, hang-ups and a SIGKILL never leave a
    /// hold open after its owner is gone, never make the balance differ from the ledger, and
    /// never take more than the hold.
    #[test]
    fn random_calls_hang_ups_and_crashes_keep_the_money_rules(
        calls in proptest::collection::vec(random_call(), 1..12),
        kill_after_ms in proptest::option::of(50u64..600),
        credits in 1i64..40,
    ) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(random_schedule(calls, kill_after_ms, credits));
    }
}
