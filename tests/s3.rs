//! Stored files on an S3-compatible service: a real S3 API server (`moto` in server mode, from
//! PyPI; `scripts/test.sh` installs it) started by the test. A task's inputs and results land in
//! the bucket under the configured prefix, and `/idfile` serves them with ranges.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{DEMO_KEY, Opts, Server, eventually};
use serde_json::json;

struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_moto() -> (Moto, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m moto.server (pip install 'moto[server]'; scripts/test.sh does)");
    let moto = Moto(child);
    let endpoint = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    eventually(Duration::from_secs(30), "moto to listen", || {
        let (http, endpoint) = (http.clone(), endpoint.clone());
        async move { http.get(&endpoint).send().await.is_ok() }
    })
    .await;
    (moto, endpoint)
}

#[tokio::test]
async fn files_live_in_the_bucket_and_are_served_with_ranges() {
    let (_moto, endpoint) = start_moto().await;
    let http = reqwest::Client::new();
    // CreateBucket (moto accepts unsigned requests).
    let created = http
        .put(format!("{endpoint}/llmage-files"))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{:?}", created.text().await);

    let mut opts = Opts::demo();
    opts.env = vec![
        (
            "LLMAGE_STORAGE__URL".into(),
            "s3://llmage-files/prod/v1".into(),
        ),
        ("LLMAGE_STORAGE__ENDPOINT".into(), endpoint.clone()),
        ("LLMAGE_STORAGE__REGION".into(), "us-east-1".into()),
        ("LLMAGE_STORAGE__ACCESS_KEY_ID".into(), "testing".into()),
        ("LLMAGE_STORAGE__SECRET_ACCESS_KEY".into(), "testing".into()),
    ];
    let server = Server::start(opts).await;
    let (status, answer) = server
        .post_json(
            "/llmage/v1/video/generations",
            Some(DEMO_KEY),
            &json!({"model": "viduq3-pro", "catelogid": "t2v", "prompt": "桶里的视频", "duration": 1}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["taskid"].as_str().unwrap().to_owned();
    let task = std::sync::Arc::new(std::sync::Mutex::new(serde_json::Value::Null));
    eventually(Duration::from_secs(30), "the task to succeed", || {
        let (server, id, task) = (&server, id.clone(), task.clone());
        async move {
            let (_, t) = server
                .get_json(&format!("/llmage/v1/tasks?taskid={id}"), Some(DEMO_KEY))
                .await;
            let done = t["status"] == "SUCCEEDED";
            *task.lock().unwrap() = t;
            done
        }
    })
    .await;
    let task = task.lock().unwrap().clone();

    // The objects are in the bucket, under the prefix, and not on the local disk.
    let listing = http
        .get(format!(
            "{endpoint}/llmage-files?list-type=2&prefix=prod/v1/"
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        listing.matches("<Key>prod/v1/").count(),
        3,
        "video + cover + the gallery's thumbnail: {listing}"
    );
    assert!(!server.data_dir.path().join("files").exists());

    // Served from the bucket, whole and by range.
    let video = task["video"].as_str().unwrap();
    let whole = server.http.get(video).send().await.unwrap();
    assert_eq!(whole.status(), 200);
    let bytes = whole.bytes().await.unwrap();
    let info = llmage::media::probe_mp4(&bytes).expect("a real MP4");
    assert_eq!(info.codec, "avc1");
    let part = server
        .http
        .get(video)
        .header("Range", "bytes=10-99")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(&part.bytes().await.unwrap()[..], &bytes[10..100]);
}
