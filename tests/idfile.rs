//! `GET`/`HEAD /idfile?path=<id>` against the real server: files stored through `FileStore` under
//! the server's own root are served without an API key, with caching and content headers, byte
//! ranges, conditional requests, and nothing but 404 JSON for any `path` that is not a known id.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use bytes::Bytes;
use common::{Opts, Server};
use llmage::storage::files::{FileKind, FileStore, StoredFile};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use serde_json::Value;

/// Deterministic, non-repeating-looking content (so a wrong offset shows).
fn content(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

async fn store(server: &Server, mime: &str, bytes: &[u8]) -> StoredFile {
    let db = server.db().await;
    let staging =
        llmage::storage::staging::Staging::new(&server.data_dir.path().join("tmp")).unwrap();
    let files =
        FileStore::local(db.clone(), &server.data_dir.path().join("files"), staging).unwrap();
    let file = files
        .put(
            1,
            None,
            FileKind::Result,
            mime,
            Bytes::copy_from_slice(bytes),
        )
        .await
        .unwrap();
    db.close().await;
    file
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(&name)
        .unwrap_or_else(|| panic!("missing {name}"))
        .to_str()
        .unwrap()
}

async fn get(
    server: &Server,
    id: &str,
    extra: &[(header::HeaderName, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = server
        .http
        .get(server.url("/idfile"))
        .query(&[("path", id)]);
    for (name, value) in extra {
        req = req.header(name, *value);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.unwrap().to_vec();
    (status, headers, body)
}

#[tokio::test]
async fn idfile_serves_full_head_ranges_and_conditionals() {
    let server = Server::start(Opts::demo()).await;
    let data = content(300_000);
    let file = store(&server, "video/mp4", &data).await;
    let size = data.len();

    // Full GET, no Authorization header.
    let (status, h, body) = get(&server, &file.id, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, data);
    assert_eq!(header(&h, header::CONTENT_TYPE), "video/mp4");
    assert_eq!(header(&h, header::CONTENT_LENGTH), size.to_string());
    assert_eq!(header(&h, header::ETAG), file.etag);
    assert!(file.etag.starts_with('"') && file.etag.ends_with('"') && file.etag.len() == 34);
    assert_eq!(header(&h, header::ACCEPT_RANGES), "bytes");
    assert_eq!(
        header(&h, header::CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        header(&h, header::CONTENT_DISPOSITION),
        format!("inline; filename=\"{}.mp4\"", file.id)
    );
    assert_eq!(header(&h, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert!(h.get(header::CONTENT_RANGE).is_none());

    // HEAD: same headers, no body.
    let resp = server
        .http
        .head(server.url("/idfile"))
        .query(&[("path", &file.id)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers().clone();
    assert_eq!(header(&h, header::CONTENT_LENGTH), size.to_string());
    assert_eq!(header(&h, header::CONTENT_TYPE), "video/mp4");
    assert_eq!(header(&h, header::ETAG), file.etag);
    assert_eq!(header(&h, header::ACCEPT_RANGES), "bytes");
    assert!(resp.bytes().await.unwrap().is_empty());

    // First bytes.
    let (status, h, body) = get(&server, &file.id, &[(header::RANGE, "bytes=0-99")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, &data[..100]);
    assert_eq!(
        header(&h, header::CONTENT_RANGE),
        format!("bytes 0-99/{size}")
    );
    assert_eq!(header(&h, header::CONTENT_LENGTH), "100");
    assert_eq!(header(&h, header::CONTENT_TYPE), "video/mp4");
    assert_eq!(header(&h, header::ETAG), file.etag);

    // Open-ended, crossing many read chunks.
    let (status, h, body) = get(&server, &file.id, &[(header::RANGE, "bytes=1000-")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, &data[1000..]);
    assert_eq!(
        header(&h, header::CONTENT_RANGE),
        format!("bytes 1000-{}/{size}", size - 1)
    );
    assert_eq!(
        header(&h, header::CONTENT_LENGTH),
        (size - 1000).to_string()
    );

    // Suffix.
    let (status, h, body) = get(&server, &file.id, &[(header::RANGE, "bytes=-500")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, &data[size - 500..]);
    assert_eq!(
        header(&h, header::CONTENT_RANGE),
        format!("bytes {}-{}/{size}", size - 500, size - 1)
    );

    // Last byte past the end is clamped.
    let range = format!("bytes={}-{}", size - 10, size + 1000);
    let (status, h, body) = get(&server, &file.id, &[(header::RANGE, &range)]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, &data[size - 10..]);
    assert_eq!(header(&h, header::CONTENT_LENGTH), "10");

    // Unsatisfiable.
    let range = format!("bytes={size}-");
    let (status, h, body) = get(&server, &file.id, &[(header::RANGE, &range)]).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&h, header::CONTENT_RANGE), format!("bytes */{size}"));
    assert!(body.len() < 100);

    // Several ranges, or a malformed one: the full file.
    for range in ["bytes=0-1,5-9", "bytes=9-2", "bytes=abc", "lines=0-1"] {
        let (status, h, body) = get(&server, &file.id, &[(header::RANGE, range)]).await;
        assert_eq!(status, StatusCode::OK, "{range}");
        assert_eq!(body, data, "{range}");
        assert!(h.get(header::CONTENT_RANGE).is_none());
    }

    // If-Range: a matching ETag honours the range, another validator gets the full file.
    let (status, _, body) = get(
        &server,
        &file.id,
        &[(header::RANGE, "bytes=0-9"), (header::IF_RANGE, &file.etag)],
    )
    .await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, &data[..10]);
    let (status, _, body) = get(
        &server,
        &file.id,
        &[
            (header::RANGE, "bytes=0-9"),
            (header::IF_RANGE, "\"other\""),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, data);

    // If-None-Match.
    for inm in [
        file.etag.clone(),
        format!("\"x\", W/{}", file.etag),
        "*".into(),
    ] {
        let (status, h, body) = get(&server, &file.id, &[(header::IF_NONE_MATCH, &inm)]).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{inm}");
        assert!(body.is_empty());
        assert_eq!(header(&h, header::ETAG), file.etag);
    }
    let (status, _, body) = get(&server, &file.id, &[(header::IF_NONE_MATCH, "\"stale\"")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, data);
}

#[tokio::test]
async fn idfile_content_headers_follow_the_mime() {
    let server = Server::start(Opts::demo()).await;
    let png = store(&server, "image/png", b"\x89PNG fake").await;
    let (status, h, body) = get(&server, &png.id, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"\x89PNG fake");
    assert_eq!(header(&h, header::CONTENT_TYPE), "image/png");
    assert_eq!(
        header(&h, header::CONTENT_DISPOSITION),
        format!("inline; filename=\"{}.png\"", png.id)
    );

    // A document that a browser would run is only offered as a download, sandboxed.
    let html = store(&server, "text/html", b"<script>alert(1)</script>").await;
    let (status, h, _) = get(&server, &html.id, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header(&h, header::CONTENT_DISPOSITION),
        format!("attachment; filename=\"{}.bin\"", html.id)
    );
    assert!(header(&h, header::CONTENT_SECURITY_POLICY).contains("sandbox"));
    assert_eq!(header(&h, header::X_CONTENT_TYPE_OPTIONS), "nosniff");

    // An empty file: 200 with no body; any range is unsatisfiable.
    let empty = store(&server, "image/webp", b"").await;
    let (status, h, body) = get(&server, &empty.id, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(header(&h, header::CONTENT_LENGTH), "0");
    let (status, h, _) = get(&server, &empty.id, &[(header::RANGE, "bytes=0-")]).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&h, header::CONTENT_RANGE), "bytes */0");
}

#[tokio::test]
async fn idfile_hostile_paths_are_404_json() {
    let server = Server::start(Opts::demo()).await;
    let data = b"top secret stored bytes";
    let file = store(&server, "image/png", data).await;
    std::fs::write(server.data_dir.path().join("secret.key"), "SECRET-MARKER").unwrap();

    let long = "a".repeat(10 * 1024);
    let unknown = llmage::util::ids::random_id();
    let object_key = file.object_key.clone();
    let upper = file.id.to_uppercase();
    let hostile: Vec<&str> = vec![
        "../llmage.db",
        "../../llmage.db",
        "/etc/passwd",
        "../secret.key",
        "..%2F..%2Fsecret.key",
        &unknown,
        "",
        &long,
        &object_key,
        &upper,
        "files/../secret.key",
        "0123456789abcdef0123456789abcde/",
    ];
    let check = |status: StatusCode, h: &HeaderMap, body: &[u8], what: &str| {
        assert_eq!(status, StatusCode::NOT_FOUND, "{what}");
        assert_eq!(
            header(h, header::CONTENT_TYPE),
            "application/json",
            "{what}"
        );
        let json: Value = serde_json::from_slice(body).unwrap();
        assert!(json["error"].is_string(), "{what}: {json}");
        let text = String::from_utf8_lossy(body);
        assert!(
            !text.contains("SECRET-MARKER") && !text.contains("root:"),
            "{what}"
        );
        assert!(!text.contains("SQLite format"), "{what}");
        assert!(!body.windows(data.len()).any(|w| w == data), "{what}");
        assert!(body.len() < 200, "{what}");
    };
    for path in &hostile {
        let (status, h, body) = get(&server, path, &[]).await;
        check(status, &h, &body, path);
    }
    // Raw query strings, not re-encoded by the client.
    for raw in [
        "/idfile",
        "/idfile?",
        "/idfile?path",
        "/idfile?path=",
        "/idfile?path=..%2F..%2Fsecret.key",
        "/idfile?path=%2Fetc%2Fpasswd",
        "/idfile?path=../llmage.db",
        "/idfile?path=%00",
        "/idfile?path=%ZZ",
        "/idfile?id=0123456789abcdef0123456789abcdef",
    ] {
        let resp = server.http.get(server.url(raw)).send().await.unwrap();
        let (status, h) = (resp.status(), resp.headers().clone());
        let body = resp.bytes().await.unwrap();
        check(status, &h, &body, raw);
    }
    // Duplicate parameters are rejected rather than guessed at.
    let dup = format!("/idfile?path={}&path=../llmage.db", file.id);
    let resp = server.http.get(server.url(&dup)).send().await.unwrap();
    let (status, h) = (resp.status(), resp.headers().clone());
    let body = resp.bytes().await.unwrap();
    check(status, &h, &body, &dup);

    // The real id still works, without any Authorization header, and with a wrong key too.
    let (status, _, body) = get(&server, &file.id, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, data);
    let resp = server
        .http
        .get(server.url("/idfile"))
        .query(&[("path", &file.id)])
        .bearer_auth("sk-wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // Other methods are not served.
    let resp = server
        .http
        .post(server.url("/idfile"))
        .query(&[("path", &file.id)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
}
