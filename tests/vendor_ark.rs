//! Volcengine Ark and BytePlus ModelArk channels against the local mock of the content-generation
//! task API: the seed's Seedance curls verbatim and every other model/category from the tables
//! reach SUCCEEDED with the documented `content` items and roles, archived before the vendor link
//! expires and priced right; a vendor failure is refunded with its reason; a throttled channel
//! hands the task to the next; the key is never shown.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::time::Duration;

use common::mock_ark::{self, KEY, Mode};
use common::{Opts, Server, jpeg, run_curl, seed_post_curls};
use serde_json::{Value, json};

const PHONE: &str = "13500000002";
const ARK_MODELS: &str =
    "doubao-seedance-2-0-260128,doubao-seedance-2-0-fast-260128,doubao-seedance-1-5-pro-251215";

fn opts() -> Opts {
    Opts {
        env: vec![
            ("LLMAGE_VENDORS__POLL_FIRST_MS".into(), "50".into()),
            ("LLMAGE_VENDORS__POLL_MAX_MS".into(), "200".into()),
            // Reference clips by URL from the mock on loopback.
            ("LLMAGE_OUTBOUND_ALLOW".into(), "[\"127.0.0.1\"]".into()),
        ],
        ..Opts::default()
    }
}

async fn submit(server: &Server, key: &str, body: Value) -> String {
    let (status, answer) = server
        .post_json("/llmage/v1/video/generations", Some(key), &body)
        .await;
    assert_eq!(status, 200, "{body} → {answer}");
    answer["taskid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_seedance_model_succeeds_through_ark_and_modelark_channels() {
    let ark = mock_ark::start(Mode::Normal).await;
    let modelark = mock_ark::start(Mode::Normal).await;
    let server = Server::start(opts()).await;
    let key = server.user(PHONE, 10_000_000);
    server
        .add_channel("ark", &ark.base_url, KEY, ARK_MODELS, &["--priority", "0"])
        .await;
    server
        .add_channel(
            "modelark",
            &modelark.base_url,
            KEY,
            "dreamina-seedance-2-0-260128",
            &["--priority", "0"],
        )
        .await;
    server
        .wait_routable(&key, "dreamina-seedance-2-0-260128")
        .await;
    server
        .wait_routable(&key, "doubao-seedance-1-5-pro-251215")
        .await;

    let dir = tempfile::tempdir().unwrap();
    for name in ["myimg1.jpg", "myimg2.jpg", "1.jpg", "2.jpg"] {
        std::fs::write(dir.path().join(name), jpeg(name, 96)).unwrap();
    }
    let mut ids = Vec::new();
    let curls = seed_post_curls("seedance");
    assert_eq!(curls.len(), 3, "1.5 t2v, 2.0 i2v, 2.0 ref2v in the seed");
    for block in &curls {
        let answer = run_curl(block, &server.base, &key, dir.path()).await;
        ids.push(answer["taskid"].as_str().expect("taskid").to_owned());
    }
    ids.push(submit(&server, &key, json!({"model": "doubao-seedance-2-0-260128", "catelogid": "t2v", "prompt": "海边日落"})).await);
    ids.push(submit(&server, &key, json!({"model": "doubao-seedance-2-0-fast-260128", "catelogid": "t2v", "prompt": "城市夜景", "duration": 4, "resolution": "480p"})).await);
    ids.push(submit(&server, &key, json!({"model": "dreamina-seedance-2-0-260128", "catelogid": "t2v", "prompt": "sunrise", "ratio": "9:16"})).await);
    // A reference clip by URL (Ark takes no base64 video) plus a reference image.
    let form_ref = reqwest::multipart::Form::new()
        .text("model", "dreamina-seedance-2-0-260128")
        .text("catelogid", "ref2v")
        .text("prompt", "参考视频的运镜")
        .text("ratio", "16:9")
        .text("video_files", ark.clip_url.clone())
        .part(
            "image_files",
            reqwest::multipart::Part::bytes(jpeg("r", 64)).file_name("r.jpg"),
        );
    let form_i2v = reqwest::multipart::Form::new()
        .text("model", "doubao-seedance-1-5-pro-251215")
        .text("catelogid", "i2v")
        .text("prompt", "花开")
        .text("duration", "5")
        .part(
            "image_file1",
            reqwest::multipart::Part::bytes(jpeg("f", 64)).file_name("f.jpg"),
        );
    for form in [form_ref, form_i2v] {
        let answer: Value = server
            .http
            .post(server.url("/llmage/v1/video/generations"))
            .bearer_auth(&key)
            .multipart(form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(
            answer["taskid"]
                .as_str()
                .unwrap_or_else(|| panic!("{answer}"))
                .to_owned(),
        );
    }

    let mut charged = 0;
    for id in &ids {
        let task = server.finish_task(&key, id, Duration::from_secs(30)).await;
        assert_eq!(task["status"], "SUCCEEDED", "{task}");
        let credits = task["usage"]["credits"].as_i64().unwrap();
        assert!(credits > 0);
        charged += credits;
        let video = server
            .http
            .get(task["video"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(
            video.status(),
            200,
            "archived although the vendor link expired"
        );
        llmage::media::probe_mp4(&video.bytes().await.unwrap()).expect("an MP4");
        assert!(!task.to_string().contains(KEY));
    }
    assert_eq!(
        server.money(PHONE).await,
        (10_000_000 - charged, 10_000_000 - charged)
    );

    // What the vendors received.
    let sent: Vec<Value> = ark
        .bodies
        .lock()
        .unwrap()
        .iter()
        .chain(modelark.bodies.lock().unwrap().iter())
        .cloned()
        .collect();
    let find = |model: &str, pred: &dyn Fn(&Value) -> bool| {
        sent.iter()
            .find(|b| b["model"] == model && pred(b))
            .cloned()
            .unwrap_or_else(|| panic!("{model} not sent"))
    };
    let t2v15 = find("doubao-seedance-1-5-pro-251215", &|b| {
        b["content"].as_array().unwrap().len() == 1
    });
    assert_eq!(
        t2v15["content"][0],
        json!({"type": "text", "text": "小猫在抓老鼠"})
    );
    assert_eq!(
        (
            t2v15["duration"].clone(),
            t2v15["ratio"].clone(),
            t2v15["resolution"].clone()
        ),
        (json!(5), json!("16:9"), json!("480p"))
    );
    let i2v = find("doubao-seedance-2-0-260128", &|b| {
        b["content"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["role"] == "last_frame")
    });
    let roles: Vec<&str> = i2v["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["role"].as_str())
        .collect();
    assert_eq!(roles, ["first_frame", "last_frame"]);
    assert!(
        i2v["content"][1]["image_url"]["url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/jpeg;base64,")
    );
    let ref2v = find("doubao-seedance-2-0-260128", &|b| {
        b["content"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["role"] == "reference_image")
    });
    assert_eq!(
        ref2v["content"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["role"] == "reference_image")
            .count(),
        2
    );
    assert_eq!(ref2v["ratio"], "4:3");
    let clip = find("dreamina-seedance-2-0-260128", &|b| {
        b["content"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["role"] == "reference_video")
    });
    assert!(
        clip["content"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["video_url"]["url"] == ark.clip_url.as_str())
    );
    let i2v15 = find("doubao-seedance-1-5-pro-251215", &|b| {
        b["content"].as_array().unwrap().len() == 2
    });
    assert_eq!(i2v15["content"][1]["role"], "first_frame");
    assert!(!server.log().contains(KEY));
}

#[tokio::test]
async fn vendor_failures_are_refunded_and_throttled_channels_fail_over() {
    let failing = mock_ark::start(Mode::TaskFails).await;
    let server = Server::start(opts()).await;
    let key = server.user(PHONE, 100_000);
    server
        .add_channel(
            "ark",
            &failing.base_url,
            KEY,
            "doubao-seedance-2-0-fast-260128",
            &["--priority", "0"],
        )
        .await;
    server
        .wait_routable(&key, "doubao-seedance-2-0-fast-260128")
        .await;
    let id = submit(&server, &key, json!({"model": "doubao-seedance-2-0-fast-260128", "catelogid": "t2v", "prompt": "x", "duration": 4})).await;
    let task = server.finish_task(&key, &id, Duration::from_secs(30)).await;
    assert_eq!(task["status"], "FAILED");
    assert!(
        task["error"]
            .as_str()
            .unwrap()
            .contains("OutputVideoSensitiveContentDetected"),
        "{task}"
    );
    assert_eq!(server.money(PHONE).await, (100_000, 100_000));

    let throttled = mock_ark::start(Mode::Throttled).await;
    let good = mock_ark::start(Mode::Normal).await;
    let server = Server::start(opts()).await;
    let key = server.user(PHONE, 100_000);
    server
        .add_channel(
            "ark",
            &throttled.base_url,
            KEY,
            "doubao-seedance-2-0-fast-260128",
            &["--priority", "10"],
        )
        .await;
    server
        .add_channel(
            "ark",
            &good.base_url,
            KEY,
            "doubao-seedance-2-0-fast-260128",
            &["--priority", "0"],
        )
        .await;
    server
        .wait_routable(&key, "doubao-seedance-2-0-fast-260128")
        .await;
    let id = submit(&server, &key, json!({"model": "doubao-seedance-2-0-fast-260128", "catelogid": "t2v", "prompt": "y", "duration": 4})).await;
    let task = server.finish_task(&key, &id, Duration::from_secs(30)).await;
    assert_eq!(task["status"], "SUCCEEDED", "{task}");
    assert_eq!(good.bodies.lock().unwrap().len(), 1);
    let price = task["usage"]["credits"].as_i64().unwrap();
    assert_eq!(
        server.money(PHONE).await,
        (100_000 - price, 100_000 - price)
    );
}

#[tokio::test]
async fn uploaded_videos_reach_ark_as_short_lived_signed_links() {
    let ark = mock_ark::start(Mode::Normal).await;
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut o = opts();
    o.listen = Some(format!("127.0.0.1:{port}"));
    o.args = vec!["--public-base-url".into(), base.clone()];
    let server = Server::start(o).await;
    let key = server.user(PHONE, 10_000_000);
    server
        .add_channel("ark", &ark.base_url, KEY, ARK_MODELS, &["--priority", "0"])
        .await;
    server
        .wait_routable(&key, "doubao-seedance-2-0-260128")
        .await;
    let clip = llmage::media::sandbox_video("参考", "16:9", 1).unwrap().mp4;
    let form = reqwest::multipart::Form::new()
        .text("model", "doubao-seedance-2-0-260128")
        .text("catelogid", "ref2v")
        .text("prompt", "参考视频")
        .text("ratio", "16:9")
        .part(
            "video_files",
            reqwest::multipart::Part::bytes(clip.clone()).file_name("clip.mp4"),
        )
        .part(
            "image_files",
            reqwest::multipart::Part::bytes(jpeg("i", 64)).file_name("i.jpg"),
        );
    let answer: Value = server
        .http
        .post(server.url("/llmage/v1/video/generations"))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let task = server
        .finish_task(
            &key,
            answer["taskid"]
                .as_str()
                .unwrap_or_else(|| panic!("{answer}")),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(task["status"], "SUCCEEDED", "{task}");
    let sent = ark.bodies.lock().unwrap()[0].clone();
    let link = sent["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["role"] == "reference_video")
        .and_then(|c| c["video_url"]["url"].as_str())
        .unwrap()
        .to_owned();
    assert!(
        link.starts_with(&format!("{base}/idfile?path="))
            && link.contains("&exp=")
            && link.contains("&sig="),
        "{link}"
    );
    // The vendor can fetch it; without or with a forged signature nobody can.
    let fetched = reqwest::get(&link).await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.headers()["cache-control"], "private, no-store");
    assert_eq!(&fetched.bytes().await.unwrap()[..], &clip[..]);
    let unsigned = link.split("&exp=").next().unwrap().to_owned();
    assert_eq!(reqwest::get(&unsigned).await.unwrap().status(), 404);
    let forged = format!("{}0000", &link[..link.len() - 4]);
    assert_eq!(reqwest::get(&forged).await.unwrap().status(), 404);
}

#[tokio::test]
async fn an_ark_channel_without_a_public_base_url_stops_the_start_with_a_clear_error() {
    let server = Server::start(opts()).await;
    server
        .add_channel(
            "ark",
            "https://ark.cn-beijing.volces.com/api/v3",
            KEY,
            ARK_MODELS,
            &["--priority", "0"],
        )
        .await;
    let out = std::process::Command::new(common::bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(server.data_dir.path())
        .arg("--database-url")
        .arg(&server.database_url)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("public_base_url") && err.contains("(#1, ark)"),
        "{err}"
    );
    assert!(!err.contains(KEY));
}
