//! Hostile input. Property tests (proptest, bounded case counts so CI stays fast) feed arbitrary
//! JSON, form fields, file bytes and ids to the parsers and validators: they must answer, never
//! panic, and whatever they accept must obey the model's table. Then the real server gets the
//! classic attacks over HTTP: deep nesting, malformed UTF-8, 10,000 form parts, huge fields,
//! wrong content types, SQL-injection strings, oversized headers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::sync::OnceLock;

use bytes::Bytes;
use common::{DEMO_KEY, Opts, Server, demo_phone};
use llmage::catalog::Catalog;
use llmage::catalog::validate::{Endpoint, FieldValue, Limits, Submission, Upload, validate};
use proptest::prelude::*;
use serde_json::{Value, json};

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::builtin().unwrap())
}

/// Arbitrary JSON, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        prop::sample::select(vec![
            "t2i",
            "t2v",
            "i2v",
            "ref2v",
            "t2t",
            "720p",
            "720P",
            "1080p",
            "16:9",
            "Y",
            "N",
            "5",
            "15",
            "1024*1024",
            "' OR 1=1 --",
            "\u{0}",
            "%00",
            "../../etc/passwd",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "model",
            "catelogid",
            "prompt",
            "negative_prompt",
            "size",
            "duration",
            "ratio",
            "resolution",
            "off_peak",
            "image_file",
            "image1_file",
            "image2_file",
            "image_file1",
            "image_file2",
            "image_files",
            "video_files",
            "audio_files",
            "callback_url",
            "seed",
        ])
        .prop_map(str::to_owned),
        ".{0,16}",
    ]
}

fn model_id() -> impl Strategy<Value = Value> {
    let ids: Vec<String> = catalog().models().iter().map(|m| m.id.clone()).collect();
    prop_oneof![
        prop::sample::select(ids).prop_map(Value::String),
        any_json(),
    ]
}

fn file_bytes() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from),
        Just(Bytes::from_static(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")),
        Just(Bytes::from_static(b"\xff\xd8\xff\xe0\0\x10JFIF\0")),
        Just(Bytes::from_static(b"RIFF\0\0\0\0WEBPVP8 ")),
        Just(Bytes::from_static(b"\0\0\0\x18ftypmp42")),
    ]
}

/// One staging directory for the process's proptest cases.
fn staging() -> &'static llmage::storage::staging::Staging {
    static STAGING: std::sync::OnceLock<llmage::storage::staging::Staging> =
        std::sync::OnceLock::new();
    STAGING.get_or_init(|| llmage::storage::staging::Staging::in_temp_dir().expect("staging dir"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn chat_requests_never_panic(body in any_json(), model in model_id(), prompt in any_json()) {
        let _ = llmage::relay::request::parse(body);
        let _ = llmage::relay::request::parse(json!({"model": model, "prompt": prompt}));
    }

    #[test]
    fn submissions_never_panic_and_accepted_ones_obey_the_table(
        model in model_id(),
        category in prop::sample::select(vec!["t2i", "t2v", "i2v", "ref2v", "t2t", "x"]),
        fields in prop::collection::vec((field_name(), any_json()), 0..8),
        texts in prop::collection::vec((field_name(), ".{0,20}"), 0..4),
        files in prop::collection::vec((field_name(), file_bytes()), 0..4),
        video in any::<bool>(),
    ) {
        let mut submission = Submission::default();
        submission.fields.push(("model".into(), FieldValue::Json(model)));
        submission.fields.push(("catelogid".into(), FieldValue::Json(Value::String(category.into()))));
        submission.fields.push(("prompt".into(), FieldValue::Text("一只猫".into())));
        for (k, v) in fields {
            submission.fields.push((k, FieldValue::Json(v)));
        }
        for (k, v) in texts {
            submission.fields.push((k, FieldValue::Text(v)));
        }
        for (k, bytes) in files {
            let file = staging().stage_bytes_blocking(&bytes).expect("staged");
            submission.files.push((k, Upload { file, filename: Some("f".into()) }));
        }
        let endpoint = if video { Endpoint::Video } else { Endpoint::Image };
        if let Ok(v) = validate(catalog(), endpoint, submission, Limits { max_file_bytes: 1 << 20 }) {
            let table = v.model.category(&v.category).expect("accepted category is the model's");
            for (name, value) in &v.params {
                let param = table.params.iter().find(|p| &p.name == name);
                prop_assert!(param.is_some(), "accepted unknown parameter {name}");
                let param = param.unwrap();
                if let Some(allowed) = &param.allowed {
                    let ok = allowed.iter().any(|a| a == value || a.as_str().zip(value.as_str()).is_some_and(|(a, b)| a.eq_ignore_ascii_case(b)))
                        || param.default.as_ref() == Some(value);
                    prop_assert!(ok, "{name}={value} not allowed");
                }
                if let Some(i) = value.as_i64() {
                    prop_assert!(param.min.is_none_or(|m| i >= m) && param.max.is_none_or(|m| i <= m), "{name}={i} out of range");
                }
            }
            for p in table.params.iter().filter(|p| p.required) {
                prop_assert!(
                    v.params.contains_key(&p.name) || v.inputs.iter().any(|i| i.field == p.name)
                        || p.name == "model" || p.name == "catelogid",
                    "required {} missing", p.name
                );
            }
        }
    }

    #[test]
    fn sniffing_and_mp4_probing_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = llmage::media::sniff(&bytes);
        let _ = llmage::media::probe_mp4(&bytes);
    }

    #[test]
    fn only_well_formed_file_ids_are_valid(id in ".{0,80}") {
        if llmage::storage::files::is_valid_id(&id) {
            prop_assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        }
    }
}

#[test]
fn mutated_real_mp4s_never_panic_the_prober() {
    let video = llmage::media::sandbox_video("p", "16:9", 1).unwrap().mp4;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(
            &prop::collection::vec((0..video.len(), any::<u8>()), 1..16),
            |flips| {
                let mut bytes = video.clone();
                for (at, value) in flips {
                    bytes[at] = value;
                }
                let _ = llmage::media::probe_mp4(&bytes);
                let _ = llmage::media::sniff(&bytes);
                Ok(())
            },
        )
        .unwrap();
}

#[tokio::test]
async fn hostile_requests_get_clean_errors_and_change_nothing() {
    let server = Server::start(Opts::demo()).await;
    let (balance, _) = server.money(demo_phone()).await;
    // A fresh connection per hostile request: the server may answer before reading a hostile
    // body and then close the connection, which a pooled client would trip over next time.
    let post_raw = |path: &str, content_type: &str, body: Vec<u8>| {
        reqwest::Client::new()
            .post(server.url(path))
            .bearer_auth(DEMO_KEY)
            .header("content-type", content_type.to_owned())
            .body(body)
            .send()
    };
    let chat = "/llmage/v1/chat/completions";
    let image = "/llmage/v1/image/generations";
    let video = "/llmage/v1/video/generations";

    // Deeply nested JSON: refused by the parser's depth limit, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    for path in [chat, image] {
        let resp = post_raw(path, "application/json", deep.clone().into_bytes())
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{path}");
    }
    // Malformed UTF-8 inside a JSON string.
    let mut bad = br#"{"model":"qwen3-max","prompt":""#.to_vec();
    bad.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    bad.extend_from_slice(br#""}"#);
    let resp = post_raw(chat, "application/json", bad).await.unwrap();
    assert_eq!(resp.status(), 400);
    // Wrong content types.
    let resp = post_raw(image, "text/xml", b"<a/>".to_vec()).await.unwrap();
    assert_eq!(resp.status(), 400);
    let resp = post_raw(video, "multipart/form-data", b"--x\r\n".to_vec())
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "multipart without a boundary");
    // 10,000 form parts.
    let mut form = String::new();
    for i in 0..10_000 {
        form.push_str(&format!(
            "--B\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nv\r\n"
        ));
    }
    form.push_str("--B--\r\n");
    let resp = post_raw(video, "multipart/form-data; boundary=B", form.into_bytes())
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("too many form parts"),
        "{body}"
    );
    // A huge text field.
    let huge = "长".repeat(200_000);
    let body = json!({"model": "wan2.2-t2i-plus", "catelogid": "t2i", "prompt": huge}).to_string();
    let resp = post_raw(image, "application/json", body.into_bytes())
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // SQL-injection strings are just text: a clean 400/404, or a normal answer.
    for evil in ["' OR '1'='1", "x'); DROP TABLE users; --", "\" OR 1=1 --"] {
        let (status, body) = server
            .post_json(
                image,
                Some(DEMO_KEY),
                &json!({"model": evil, "catelogid": "t2i", "prompt": evil}),
            )
            .await;
        assert_eq!(status, 404, "{body}");
        let (status, _) = server
            .get_json(
                &format!("/llmage/v1/tasks?taskid={}", urlencode(evil)),
                Some(DEMO_KEY),
            )
            .await;
        assert_eq!(status, 404);
        let (status, _) = server
            .get_json(
                &format!("/llmage/v1/models?catelogid={}", urlencode(evil)),
                Some(DEMO_KEY),
            )
            .await;
        assert!(status == 200 || status == 400, "{status}");
    }
    // An oversized header.
    let resp = server
        .http
        .get(server.url("/llmage/v1/models"))
        .bearer_auth(DEMO_KEY)
        .header("x-junk", "a".repeat(200_000))
        .send()
        .await;
    assert!(resp.map_or(true, |r| r.status().is_client_error()));

    // Still serving, nothing stored, nothing charged.
    let (status, _) = server.get_json("/healthz", None).await;
    assert_eq!(status, 200);
    let db = server.db().await;
    let tasks: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM tasks")
        .fetch_one(db.reader())
        .await
        .unwrap();
    assert_eq!(tasks, 0);
    let users: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM users")
        .fetch_one(db.reader())
        .await
        .unwrap();
    assert_eq!(users, 1);
    db.close().await;
    assert_eq!(server.money(demo_phone()).await, (balance, balance));
    assert!(!server.log().contains("panicked"));
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A "decompression bomb" picture: a PNG whose header claims 100,000 × 100,000 pixels (40 GB
/// decoded). The gateway only sniffs uploads (it never decodes them), so the bomb costs nothing:
/// the task is accepted at once, the file is kept byte for byte, and the server stays healthy.
#[tokio::test]
async fn a_decompression_bomb_picture_is_never_decoded() {
    let server = Server::start(Opts::demo()).await;
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(b"IHDR");
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&[0, 0, 0, 0]); // CRC (not checked by a sniffer)
    png.extend(std::iter::repeat_n(0u8, 64 * 1024));
    let started = std::time::Instant::now();
    let form = reqwest::multipart::Form::new()
        .text("model", "happyhorse-1.0-i2v")
        .text("catelogid", "i2v")
        .text("prompt", "bomb")
        .text("duration", "3")
        .part(
            "image_file",
            reqwest::multipart::Part::bytes(png.clone()).file_name("bomb.png"),
        );
    let resp = server
        .http
        .post(server.url("/llmage/v1/video/generations"))
        .bearer_auth(DEMO_KEY)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(status, 200, "{body}");
    let task = server
        .finish_task(
            DEMO_KEY,
            body["taskid"].as_str().unwrap(),
            std::time::Duration::from_secs(30),
        )
        .await;
    assert_eq!(task["status"], "SUCCEEDED", "{task}");
    let db = server.db().await;
    let stored: i64 =
        sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM files WHERE size = $1")
            .bind(png.len() as i64)
            .fetch_one(db.reader())
            .await
            .unwrap();
    db.close().await;
    assert_eq!(stored, 1, "the upload is kept as sent");
    let (status, _) = server.get_json("/healthz", None).await;
    assert_eq!(status, 200);
    assert!(!server.log().contains("panicked"));
}
