//! The balance never goes below zero and always equals the ledger sum, with 100 concurrent chat
//! calls and 200 concurrent task reservations from one user whose credits cover only some of them
//! (SQLite by default; PostgreSQL when `LLMAGE_TEST_DATABASE_URL` is set).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::time::Duration;

use common::mock_openai::{self, MOCK_KEY, Mode};
use common::{Opts, Server, eventually};
use serde_json::json;

#[tokio::test]
async fn concurrent_chats_never_overdraw() {
    let mock = mock_openai::start(Mode::Normal).await;
    let server = Server::start(Opts::default()).await;
    let phone = "13600000000";
    // Upstream usage is 1000 + 2000 tokens; at 1000/1000 credits per million a call costs 3.
    // The reservation (worst case: prompt estimate + max_tokens 2000) is larger, so fewer calls
    // fit at once than the final price alone would allow.
    let credits = 100;
    let key = server.user(phone, credits);
    server
        .add_channel(
            "openai",
            &mock.base_url,
            MOCK_KEY,
            "metered",
            &["--price-in", "1000", "--price-out", "1000"],
        )
        .await;
    eventually(Duration::from_secs(5), "channel", || async {
        let (_, list) = server.get_json("/llmage/v1/models", Some(&key)).await;
        list["data"]
            .as_array()
            .is_some_and(|d| d.iter().any(|m| m["id"] == "metered"))
    })
    .await;

    let calls = (0..100).map(|i| {
        let http = server.http.clone();
        let url = server.url("/llmage/v1/chat/completions");
        let key = key.clone();
        tokio::spawn(async move {
            let resp = http
                .post(url)
                .bearer_auth(key)
                .json(&json!({"model":"metered","prompt":format!("call {i}"),"max_tokens":2000,"stream": i % 2 == 0}))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap();
            (status, body)
        })
    });
    let results = futures_util::future::join_all(calls).await;
    let mut ok = 0;
    let mut refused = 0;
    for r in results {
        let (status, body) = r.unwrap();
        match status {
            200 => ok += 1,
            429 => {
                assert!(
                    body.starts_with(
                        r#"{"error":"Insufficient balance: this call needs at least "#
                    ),
                    "{body}"
                );
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        ok > 0 && refused > 0,
        "some calls fit and some did not: ok={ok} refused={refused}"
    );
    // This mock reports 1000 + 2000 tokens whatever bound it is sent (an upstream that ignores
    // `max_tokens`): a call whose bound was lowered to what the balance affords pays its hold,
    // never more. Every call's charge is in its usage row.
    let db = server.db().await;
    eventually(Duration::from_secs(10), "all calls settled", || async {
        let (balance, sum) = server.money_units(phone).await;
        let used: i64 =
            sqlx::query_scalar("SELECT CAST(COALESCE(SUM(credits), 0) AS BIGINT) FROM chat_usage")
                .fetch_one(db.reader())
                .await
                .unwrap();
        balance == sum && balance == credits * 10_000 - used
    })
    .await;
    let (balance, _) = server.money_units(phone).await;
    assert!(balance >= 0);
    // Every reservation was settled.
    server.wait_no_open_holds().await;
    let negative: i64 =
        sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM ledger WHERE balance_after < 0")
            .fetch_one(db.reader())
            .await
            .unwrap();
    assert_eq!(negative, 0, "no ledger row ever saw a negative balance");
}

/// 200 concurrent image submissions from one account whose credits cover exactly 37: exactly 37
/// are accepted, the rest refused with 429, and the balance ends at zero, equal to the ledger sum.
#[tokio::test]
async fn two_hundred_concurrent_reservations_on_one_account() {
    let server = Server::start(Opts::demo()).await;
    let phone = "13600000200";
    let price = 20; // wan2.2-t2i-plus, one image (catalog)
    let key = server.user(phone, price * 37);
    let calls = (0..200).map(|i| {
        let http = server.http.clone();
        let url = server.url("/llmage/v1/image/generations");
        let key = key.clone();
        tokio::spawn(async move {
            let resp = http
                .post(url)
                .bearer_auth(key)
                .json(&json!({"model": "wan2.2-t2i-plus", "catelogid": "t2i", "prompt": format!("猫 {i}")}))
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        })
    });
    let mut accepted = 0;
    for r in futures_util::future::join_all(calls).await {
        let (status, body) = r.unwrap();
        match status {
            200 => accepted += 1,
            429 => assert_eq!(body, r#"{"error":"Insufficient balance"}"#),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(accepted, 37);
    let (balance, sum) = server.money(phone).await;
    assert_eq!((balance, sum), (0, 0));
    let db = server.db().await;
    let reservations: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM reservations")
        .fetch_one(db.reader())
        .await
        .unwrap();
    assert_eq!(reservations, 37);
    let negative: i64 =
        sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM ledger WHERE balance_after < 0")
            .fetch_one(db.reader())
            .await
            .unwrap();
    assert_eq!(negative, 0);
}
