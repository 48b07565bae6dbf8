//! Hardening, round two (issue 16): each attack that once worked against the real server, now
//! refused — SMS code guessing in parallel, login CSRF, IPv6 forms of private addresses, silent
//! connections, metrics label growth, uploads before the balance check, and the rest. Tests that
//! could connect out assert the refusal before any connection.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::time::Duration;

use common::console::{client, code_from_log, post};
use common::{Opts, Server};
use serde_json::{Value, json};

fn opts(env: &[(&str, &str)]) -> Opts {
    let mut opts = Opts::demo();
    opts.env = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    opts
}

/// 60 wrong guesses sent at once: at most `max_attempts` are checked, the rest find the code
/// locked, and the right code no longer works.
#[tokio::test]
async fn parallel_code_guesses_are_checked_at_most_max_attempts_times() {
    let server = Server::start(opts(&[("LLMAGE_AUTH__MAX_ATTEMPTS", "5")])).await;
    let phone = "13766665555";
    let (status, body) = post(
        &client(),
        &server,
        "/api/auth/sms-code",
        json!({"phone": phone}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let code = code_from_log(&server, phone);
    let wrong: Vec<String> = (0..60u32)
        .map(|i| format!("{:06}", (code.parse::<u32>().unwrap() + 1 + i) % 1_000_000))
        .collect();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(wrong.len()));
    let mut guesses = Vec::new();
    for guess in wrong {
        let http = client();
        let url = server.url("/api/auth/login");
        let barrier = barrier.clone();
        guesses.push(tokio::spawn(async move {
            barrier.wait().await;
            let resp = http
                .post(url)
                .json(&json!({"phone": phone, "code": guess}))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }));
    }
    let mut wrong_answers = 0;
    for guess in guesses {
        let (status, body) = guess.await.unwrap();
        assert_eq!(status, 400, "{body}");
        let error = body["error"].as_str().unwrap_or_default();
        if error.contains("wrong code") {
            wrong_answers += 1;
        } else {
            assert!(error.contains("too many wrong tries"), "{body}");
        }
    }
    // The fifth wrong try is answered "locked": at most four "wrong" answers.
    assert!(wrong_answers <= 4, "{wrong_answers} guesses were checked");
    let db = server.db().await;
    let attempts: i64 = sqlx::Row::get(
        &sqlx::query("SELECT attempts FROM sms_codes WHERE phone = $1")
            .bind(phone)
            .fetch_one(db.reader())
            .await
            .unwrap(),
        "attempts",
    );
    db.close().await;
    assert!(attempts <= 5, "{attempts} tries were counted");
    let (status, body) = post(
        &client(),
        &server,
        "/api/auth/login",
        json!({"phone": phone, "code": code}),
        None,
    )
    .await;
    assert_eq!(status, 400, "the right code after the lock: {body}");
}

/// Login CSRF: a cross-site form can send `text/plain` (no preflight) with a JSON-looking body;
/// login (and every cookie-less `/api/*` POST) takes only `application/json`, and a foreign
/// `Origin` or `Sec-Fetch-Site: cross-site` is refused.
#[tokio::test]
async fn login_takes_only_json_from_this_origin() {
    let server = Server::start(opts(&[("LLMAGE_AUTH__RESEND_SECS", "0")])).await;
    let phone = "13766664444";
    let http = reqwest::Client::new();
    // Asking for a code is an `/api/*` POST without a session too.
    let resp = http
        .post(server.url("/api/auth/sms-code"))
        .header("content-type", "text/plain")
        .body(json!({"phone": phone}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    let (status, _) = post(
        &client(),
        &server,
        "/api/auth/sms-code",
        json!({"phone": phone}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let code = code_from_log(&server, phone);
    let body = json!({"phone": phone, "code": code}).to_string();
    for (content_type, extra) in [
        ("text/plain", None),
        ("application/x-www-form-urlencoded", None),
        ("multipart/form-data; boundary=x", None),
        ("application/json", Some(("origin", "https://evil.example"))),
        ("application/json", Some(("origin", "null"))),
        ("application/json", Some(("sec-fetch-site", "cross-site"))),
    ] {
        let mut req = http
            .post(server.url("/api/auth/login"))
            .header("content-type", content_type)
            .body(body.clone());
        if let Some((name, value)) = extra {
            req = req.header(name, value);
        }
        let resp = req.send().await.unwrap();
        assert!(
            [403, 415].contains(&resp.status().as_u16()),
            "{content_type} {extra:?}: {}",
            resp.status()
        );
        assert!(resp.headers().get("set-cookie").is_none());
    }
    // The console itself (same origin, JSON) still logs in, and the code was not used up.
    let host = server.base.trim_start_matches("http://").to_owned();
    let resp = http
        .post(server.url("/api/auth/login"))
        .header("content-type", "application/json")
        .header("origin", format!("http://{host}"))
        .header("sec-fetch-site", "same-origin")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// IPv6 forms that carry a private IPv4 address are refused as callback and input URLs, before
/// any connection: a listener on loopback sees nothing.
#[tokio::test]
async fn ipv6_forms_of_private_addresses_are_refused_before_connecting() {
    let server = Server::start(Opts::demo()).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    for host in [
        "[::127.0.0.1]",
        "[::ffff:127.0.0.1]",
        "[64:ff9b::7f00:1]",
        "[64:ff9b::a9fe:a9fe]",
        "[64:ff9b:1::7f00:1]",
        "[2002:7f00:1::1]",
        "[2001:0:808:808::80ff:fffe]",
        "[fec0::1]",
    ] {
        let url = format!("http://{host}:{port}/hook");
        let (status, body) = server
            .post_json(
                "/llmage/v1/image/generations",
                Some(common::DEMO_KEY),
                &json!({"model": "wan2.2-t2i-plus", "catelogid": "t2i", "prompt": "猫",
                        "callback_url": url}),
            )
            .await;
        assert_eq!(status, 400, "{url}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("callback_url"),
            "{body}"
        );
    }
    let (status, body) = server
        .post_json(
            "/llmage/v1/video/generations",
            Some(common::DEMO_KEY),
            &json!({"model": "happyhorse-1.0-i2v", "catelogid": "i2v", "prompt": "动",
                    "duration": 3, "image_file": format!("http://[::127.0.0.1]:{port}/a.jpg")}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(listener.accept().is_err(), "nothing connected to loopback");
}

async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    within: Duration,
) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Connections that never send a byte, idle keep-alive connections and bodies trickling in
/// below the minimum rate are closed.
#[tokio::test]
async fn silent_idle_and_trickling_connections_are_closed() {
    use tokio::io::AsyncWriteExt;
    let server = Server::start(opts(&[
        ("LLMAGE_SECURITY__CONNECTION_IDLE_SECS", "1"),
        ("LLMAGE_SECURITY__MIN_BODY_BYTES_PER_SEC", "1000"),
        ("LLMAGE_SECURITY__BODY_RATE_GRACE_SECS", "1"),
    ]))
    .await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    // Silent: not a byte sent.
    let started = std::time::Instant::now();
    let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    assert!(
        read_until_closed(&mut silent, Duration::from_secs(5))
            .await
            .is_some(),
        "a silent connection stayed open"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    // Idle keep-alive after one request.
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    idle.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let answer = read_until_closed(&mut idle, Duration::from_secs(5))
        .await
        .expect("an idle keep-alive connection stayed open");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    // A body at one byte per 100 ms, far below 1000 bytes/s.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(
        format!(
            "POST /llmage/v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
            common::DEMO_KEY
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(8) {
        if slow.write_all(b" ").await.is_err() {
            closed = true;
            break;
        }
        let mut probe = [0u8; 1024];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(100), slow.peek(&mut probe)).await
        {
            // An answer (400) or the end of the connection.
            let _ = n;
            closed = true;
            break;
        }
    }
    assert!(closed, "a trickling body was not cut");
    assert!(started.elapsed() < Duration::from_secs(6));
}

/// Invented methods and unmatched paths do not create metric series.
#[tokio::test]
async fn metrics_labels_stay_bounded() {
    let server = Server::start(Opts::demo()).await;
    let http = reqwest::Client::new();
    for i in 0..40 {
        let method = reqwest::Method::from_bytes(format!("ZZMETHOD{i}").as_bytes()).unwrap();
        http.request(method.clone(), server.url(&format!("/no/such/path/{i}")))
            .send()
            .await
            .unwrap();
        http.request(method, server.url("/llmage/v1/models"))
            .send()
            .await
            .unwrap();
        http.get(server.url(&format!("/zzpath{i}")))
            .send()
            .await
            .unwrap();
    }
    let metrics = http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains("ZZMETHOD"), "method names became labels");
    assert!(!metrics.contains("zzpath"), "raw paths became labels");
    assert!(!metrics.contains("/no/such"), "raw paths became labels");
    assert!(metrics.contains("method=\"other\""), "{metrics}");
    assert!(metrics.contains("route=\"unmatched\""));
    let series = metrics
        .lines()
        .filter(|l| l.starts_with("llmage_http_requests_total{"))
        .count();
    assert!(series < 20, "{series} request series");
}

/// `nosniff` on every answer; the console's CSP allows no inline script, and its page has none.
#[tokio::test]
async fn every_answer_has_nosniff_and_the_console_a_strict_csp() {
    let server = Server::start(Opts::demo()).await;
    let http = reqwest::Client::new();
    for (path, key) in [
        ("/", None),
        ("/assets/app.js", None),
        ("/healthz", None),
        ("/llmage/v1/models", Some(common::DEMO_KEY)),
        ("/llmage/v1/models", None),
        ("/no/such/thing", None),
        ("/api/me", None),
    ] {
        let mut req = http.get(server.url(path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(
            resp.headers()
                .get("x-content-type-options")
                .map(|v| v.to_str().unwrap()),
            Some("nosniff"),
            "{path}"
        );
    }
    let resp = http.get(server.url("/")).send().await.unwrap();
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let script_src = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src"))
        .expect("script-src");
    assert_eq!(script_src, "script-src 'self'", "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert!(csp.contains("object-src 'none'") && csp.contains("frame-ancestors 'none'"));
    let html = resp.text().await.unwrap().to_lowercase();
    // Every script is a file; no inline handlers or styles.
    for tag in html.split("<script").skip(1) {
        assert!(tag.trim_start().starts_with("src="), "inline script: {tag}");
    }
    assert!(
        !html.contains(" style=") && !html.contains("<style"),
        "inline style"
    );
    for handler in [
        " onclick=",
        " onload=",
        " onerror=",
        " onsubmit=",
        "javascript:",
    ] {
        assert!(!html.contains(handler), "{handler}");
    }
}

const MIB: usize = 1024 * 1024;

/// Starts a multipart submission by hand: the head, the plain fields and the first file part's
/// header plus `send_bytes` of it; the declared length is that of `files` × `file_bytes`.
async fn start_upload(
    server: &Server,
    key: &str,
    files: usize,
    file_bytes: usize,
    send_bytes: usize,
) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let boundary = "llmageboundary7MA4YWxkTrZu0gW";
    let mut fields = String::new();
    for (name, value) in [
        ("model", "happyhorse-1.0-r2v"),
        ("catelogid", "ref2v"),
        ("prompt", "参考图"),
        ("duration", "5"),
    ] {
        fields.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    let part_head = |i: usize| {
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"image_files\"; filename=\"{i}.jpg\"\r\n\
             Content-Type: image/jpeg\r\n\r\n"
        )
    };
    let tail = format!("--{boundary}--\r\n");
    let total = fields.len()
        + (0..files)
            .map(|i| part_head(i).len() + file_bytes + 2)
            .sum::<usize>()
        + tail.len();
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /llmage/v1/video/generations HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {total}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(fields.as_bytes()).await.unwrap();
    stream.write_all(part_head(0).as_bytes()).await.unwrap();
    let mut jpeg = vec![0u8; send_bytes];
    if send_bytes >= 3 {
        jpeg[..3].copy_from_slice(&[0xff, 0xd8, 0xff]);
    }
    stream.write_all(&jpeg).await.unwrap();
    stream
}

async fn read_status(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 8192];
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&got).into_owned())
}

/// A user who cannot pay is refused (429) when the first file part begins, without the server
/// reading it: the client sent 1 MiB of a declared 180 MiB and got its answer.
#[tokio::test]
async fn uploads_are_refused_for_the_balance_before_files_are_read() {
    let server = Server::start(Opts::demo()).await;
    let poor = server.user("13766663333", 0);
    let mut upload = start_upload(&server, &poor, 9, 20 * MIB, MIB).await;
    let head = read_status(&mut upload, Duration::from_secs(10))
        .await
        .expect("an answer before the files were sent");
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
}

/// Concurrent uploads per user and unfinished tasks per user are capped: 429 with Retry-After.
#[tokio::test]
async fn uploads_in_flight_and_unfinished_tasks_are_capped_per_user() {
    let server = Server::start(opts(&[
        ("LLMAGE_LIMITS__CONCURRENT_UPLOADS_PER_USER", "1"),
        ("LLMAGE_LIMITS__UNFINISHED_TASKS_PER_USER", "2"),
        ("LLMAGE_SANDBOX__IMAGE_MS", "600000"),
    ]))
    .await;
    let key = server.user("13766662222", 1_000_000);
    // One upload in flight (the server is reading its first file part).
    let first = start_upload(&server, &key, 1, 4 * MIB, 64 * 1024).await;
    let small = || {
        reqwest::multipart::Form::new()
            .text("model", "happyhorse-1.0-i2v")
            .text("catelogid", "i2v")
            .text("prompt", "动起来")
            .text("duration", "3")
            .part(
                "image_file",
                reqwest::multipart::Part::bytes(common::jpeg("cap", 64)).file_name("a.jpg"),
            )
    };
    let mut refused = None;
    for _ in 0..50 {
        let resp = reqwest::Client::new()
            .post(server.url("/llmage/v1/video/generations"))
            .bearer_auth(&key)
            .multipart(small())
            .send()
            .await
            .unwrap();
        if resp.status() == 429 {
            refused = Some(resp);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = refused.expect("a second upload while one is in flight is refused");
    assert!(refused.headers().contains_key("retry-after"));
    // Another user is not affected.
    let other = server.user("13766662223", 1_000_000);
    // (A fresh client: the refused upload's connection was closed with its body unread.)
    let resp = reqwest::Client::new()
        .post(server.url("/llmage/v1/video/generations"))
        .bearer_auth(&other)
        .multipart(small())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    drop(first);

    // Unfinished tasks: two image tasks that take ten minutes, then the third is refused. (A
    // user of their own: an upload of the loop above may have been accepted before the first
    // one reached its file part, and its task would count.)
    let key = server.user("13766662224", 1_000_000);
    let body = json!({"model": "wan2.2-t2i-plus", "catelogid": "t2i", "prompt": "猫"});
    for _ in 0..2 {
        let (status, answer) = server
            .post_json("/llmage/v1/image/generations", Some(&key), &body)
            .await;
        assert_eq!(status, 200, "{answer}");
    }
    let resp = server
        .http
        .post(server.url("/llmage/v1/image/generations"))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// Six users with 0 credits, each sending 9 × 20 MiB uploads at once: the peak RSS stays below
/// idle + 100 MiB and RSS is back within 20 % of idle within a minute. Prints the figures.
#[tokio::test]
async fn six_users_without_credits_uploading_do_not_grow_memory() {
    let server = Server::start(Opts::demo()).await;
    let pid = server.pid().unwrap();
    let keys: Vec<String> = (0..6)
        .map(|i| server.user(&format!("1376666100{i}"), 0))
        .collect();
    // Warm up: one request of each kind the burst makes.
    let (status, _) = server.get_json("/llmage/v1/models", Some(&keys[0])).await;
    assert_eq!(status, 200);
    let mut warm = start_upload(&server, &keys[0], 1, MIB, 1024).await;
    let _ = read_status(&mut warm, Duration::from_secs(10)).await;
    drop(warm);
    let idle = rss_kib(pid, "VmRSS:");
    // Reset the peak (VmHWM) to the current RSS, so the peak is the burst's.
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    let file = bytes::Bytes::from(vec![0u8; 20 * MIB]);
    let mut uploads = Vec::new();
    for key in &keys {
        for _ in 0..9 {
            let key = key.clone();
            let url = server.url("/llmage/v1/video/generations");
            let file = file.clone();
            uploads.push(tokio::spawn(async move {
                let form = reqwest::multipart::Form::new()
                    .text("model", "happyhorse-1.0-r2v")
                    .text("catelogid", "ref2v")
                    .text("prompt", "参考图")
                    .part(
                        "image_files",
                        reqwest::multipart::Part::stream(reqwest::Body::from(file))
                            .file_name("a.jpg"),
                    );
                match reqwest::Client::new()
                    .post(url)
                    .bearer_auth(key)
                    .multipart(form)
                    .send()
                    .await
                {
                    Ok(resp) => resp.status().as_u16(),
                    // The server answered early and closed while the body was being sent.
                    Err(_) => 0,
                }
            }));
        }
    }
    let mut statuses = Vec::new();
    for upload in uploads {
        statuses.push(upload.await.unwrap());
    }
    assert!(
        statuses.iter().all(|s| *s == 429 || *s == 0),
        "{statuses:?}"
    );
    let peak = rss_kib(pid, "VmHWM:");
    let started = std::time::Instant::now();
    let mut after = rss_kib(pid, "VmRSS:");
    while after as f64 > idle as f64 * 1.2 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        after = rss_kib(pid, "VmRSS:");
    }
    println!(
        "upload burst RSS: idle {} KiB, peak {} KiB (+{} KiB), after {} KiB ({:.1} s later)",
        idle,
        peak,
        peak.saturating_sub(idle),
        after,
        started.elapsed().as_secs_f64()
    );
    assert!(peak < idle + 100 * 1024, "peak {peak} KiB, idle {idle} KiB");
    assert!(
        after as f64 <= idle as f64 * 1.2,
        "after {after} KiB, idle {idle} KiB"
    );
}

/// Accepted uploads are streamed to a staging file as they arrive and from there to the file
/// store, never held whole in memory: six paying users each sending a 20 MiB reference image at
/// once (120 MiB in all) raise the peak RSS by far less than one file per user, every file is
/// stored with its exact size, and the staging directory is empty afterwards. An upload over the
/// cap is refused and leaves nothing behind either.
#[tokio::test]
async fn uploads_are_staged_on_disk_as_they_arrive() {
    // The engine reads a task's inputs when it sends them to the vendor, at most
    // `max_concurrent_calls` at a time per vendor; one at a time here, so the peak measures the
    // upload path (six staged uploads at once) plus at most one input being sent.
    let server = Server::start(opts(&[("LLMAGE_VENDORS__MAX_CONCURRENT_CALLS", "1")])).await;
    let pid = server.pid().unwrap();
    let staging = server.data_dir.path().join("tmp");
    let keys: Vec<String> = (0..6)
        .map(|i| server.user(&format!("1376667100{i}"), 100_000))
        .collect();
    let (status, _) = server.get_json("/llmage/v1/models", Some(&keys[0])).await;
    assert_eq!(status, 200);
    let idle = rss_kib(pid, "VmRSS:");
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    let size = 20 * MIB - 4096;
    let mut jpeg = vec![0u8; size];
    jpeg[..3].copy_from_slice(&[0xff, 0xd8, 0xff]);
    let file = bytes::Bytes::from(jpeg);
    let form = |file: bytes::Bytes| {
        reqwest::multipart::Form::new()
            .text("model", "happyhorse-1.0-r2v")
            .text("catelogid", "ref2v")
            .text("prompt", "参考图")
            .text("duration", "5")
            .part(
                "image_files",
                reqwest::multipart::Part::stream(reqwest::Body::from(file))
                    .file_name("a.jpg")
                    .mime_str("image/jpeg")
                    .unwrap(),
            )
    };
    let mut uploads = Vec::new();
    for key in &keys {
        let request = reqwest::Client::new()
            .post(server.url("/llmage/v1/video/generations"))
            .bearer_auth(key)
            .multipart(form(file.clone()));
        uploads.push(tokio::spawn(async move {
            let resp = request.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }));
    }
    for upload in uploads {
        let (status, body) = upload.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let peak = rss_kib(pid, "VmHWM:");
    println!(
        "staged uploads RSS: idle {idle} KiB, peak {peak} KiB (+{} KiB) for 6 x {} KiB",
        peak.saturating_sub(idle),
        size / 1024
    );
    assert!(
        peak < idle + 60 * 1024,
        "peak {peak} KiB, idle {idle} KiB: uploads were held in memory"
    );
    let stored = server
        .count(&format!(
            "SELECT COUNT(*) FROM files WHERE kind = 'input' AND size = {size}"
        ))
        .await;
    assert_eq!(stored, 6);
    let staged_files = || std::fs::read_dir(&staging).map_or(0, |dir| dir.count());
    common::eventually(Duration::from_secs(10), "staging emptied", || async {
        staged_files() == 0
    })
    .await;

    // Over the 20 MiB cap: refused as the bytes arrive, and the partial file is removed.
    let mut big = vec![0u8; 20 * MIB + 1];
    big[..3].copy_from_slice(&[0xff, 0xd8, 0xff]);
    let resp = reqwest::Client::new()
        .post(server.url("/llmage/v1/video/generations"))
        .bearer_auth(&keys[0])
        .multipart(form(bytes::Bytes::from(big)))
        .send()
        .await;
    // (The server may answer before the client has sent everything and close: no answer.)
    if let Ok(resp) = resp {
        assert_eq!(resp.status(), 400);
        let body = resp.text().await.unwrap();
        assert!(body.contains("too large"), "{body}");
    }
    common::eventually(
        Duration::from_secs(10),
        "staging emptied after a refusal",
        || async { staged_files() == 0 },
    )
    .await;
}

/// A client address behind a trusted proxy (the forwarded one) — and only then.
fn via_proxy(req: reqwest::RequestBuilder, client: &str) -> reqwest::RequestBuilder {
    req.header("x-forwarded-for", client)
}

/// Strangers asking for codes for someone's phone are limited per address (and per device) in
/// front of the per-phone cap, and a device that logged in to the phone before still gets a code
/// when strangers used the phone's daily cap up.
#[tokio::test]
async fn strangers_cannot_use_up_a_phones_codes() {
    let server = Server::start(opts(&[
        ("LLMAGE_AUTH__RESEND_SECS", "0"),
        ("LLMAGE_AUTH__DAILY_CAP", "6"),
        ("LLMAGE_AUTH__REQUESTER_DAILY_CAP", "2"),
        ("LLMAGE_SECURITY__TRUSTED_PROXIES", "[\"127.0.0.1/32\"]"),
    ]))
    .await;
    let victim_phone = "13766660001";
    // The owner logs in once from their browser (it keeps the device cookie).
    let owner = client();
    let ask = |http: &reqwest::Client, ip: &str| {
        via_proxy(http.post(server.url("/api/auth/sms-code")), ip)
            .json(&json!({"phone": victim_phone}))
            .send()
    };
    assert_eq!(ask(&owner, "198.51.100.10").await.unwrap().status(), 200);
    let code = code_from_log(&server, victim_phone);
    let resp = via_proxy(owner.post(server.url("/api/auth/login")), "198.51.100.10")
        .json(&json!({"phone": victim_phone, "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // A stranger from one address gets two codes for the phone, then no more.
    let stranger = reqwest::Client::new();
    let mut sent = 0;
    for _ in 0..5 {
        if ask(&stranger, "203.0.113.7").await.unwrap().status() == 200 {
            sent += 1;
        }
    }
    assert_eq!(sent, 2, "per-requester cap");
    // Strangers from more addresses use up the phone's daily cap (6: 1 + 2 + 2 + 1).
    for ip in ["203.0.113.8", "203.0.113.9", "203.0.113.10"] {
        for _ in 0..2 {
            let _ = ask(&stranger, ip).await.unwrap();
        }
    }
    let resp = ask(&stranger, "203.0.113.11").await.unwrap();
    assert_eq!(resp.status(), 429, "the phone's cap holds for strangers");
    // The owner's browser still gets a code, and logs in with it.
    let resp = ask(&owner, "198.51.100.10").await.unwrap();
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    let code = code_from_log(&server, victim_phone);
    let resp = via_proxy(owner.post(server.url("/api/auth/login")), "198.51.100.10")
        .json(&json!({"phone": victim_phone, "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// Forwarding headers are believed only from `security.trusted_proxies`: per-client rate limits,
/// the `/metrics` loopback rule and key IP allow-lists use the forwarded client behind a trusted
/// proxy and ignore the header from anyone else.
#[tokio::test]
async fn forwarded_clients_are_believed_only_from_trusted_proxies() {
    // Not trusted: the header is ignored (loopback reads /metrics, one bucket for all).
    let plain = Server::start(opts(&[
        ("LLMAGE_LIMITS__PER_IP_PER_SEC", "1"),
        ("LLMAGE_LIMITS__PER_IP_BURST", "1"),
    ]))
    .await;
    let http = reqwest::Client::new();
    let resp = via_proxy(http.get(plain.url("/metrics")), "203.0.113.5")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "a forged header does not hide a loopback client"
    );
    let resp = via_proxy(http.get(plain.url("/healthz")), "203.0.113.6")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        429,
        "a forged header does not pick a fresh bucket"
    );

    let proxied = Server::start(opts(&[
        ("LLMAGE_LIMITS__PER_IP_PER_SEC", "1"),
        ("LLMAGE_LIMITS__PER_IP_BURST", "1"),
        ("LLMAGE_SECURITY__TRUSTED_PROXIES", "[\"127.0.0.0/8\"]"),
    ]))
    .await;
    let resp = via_proxy(http.get(proxied.url("/metrics")), "203.0.113.5")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        403,
        "a remote client behind the proxy may not read /metrics"
    );
    // Each forwarded client has its own bucket.
    let mut statuses = Vec::new();
    for ip in ["198.51.100.1", "198.51.100.1", "198.51.100.2"] {
        let resp = via_proxy(http.get(proxied.url("/healthz")), ip)
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses, [200, 429, 200]);
    // The right-most untrusted hop counts, not what the client wrote first.
    let resp = via_proxy(http.get(proxied.url("/healthz")), "10.9.9.9, 198.51.100.3")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = via_proxy(http.get(proxied.url("/healthz")), "10.9.9.9, 198.51.100.3")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    // A key allowed only from 198.51.100.9 (a server without the tight per-client limit).
    let proxied = Server::start(opts(&[(
        "LLMAGE_SECURITY__TRUSTED_PROXIES",
        "[\"127.0.0.0/8\"]",
    )]))
    .await;
    let (user_http, csrf) = common::console::login(&proxied, "13766660009").await;
    let (status, created) = post(
        &user_http,
        &proxied,
        "/api/keys",
        json!({"name": "office", "allowed_ips": ["198.51.100.9"]}),
        Some(&csrf),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let from = |ip: &'static str| {
        via_proxy(
            http.get(proxied.url("/llmage/v1/models")).bearer_auth(&key),
            ip,
        )
        .send()
    };
    assert_eq!(from("198.51.100.9").await.unwrap().status(), 200);
    assert_eq!(from("198.51.100.8").await.unwrap().status(), 403);
}

/// The data directory is 0700, the database (and -wal/-shm) and stored files 0600, whatever
/// the umask the server was started with (the test runner's is usually 022).
#[cfg(unix)]
#[tokio::test]
async fn data_files_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start(Opts::demo()).await;
    let (status, task) = server
        .post_json(
            "/llmage/v1/image/generations",
            Some(common::DEMO_KEY),
            &json!({"model": "wan2.2-t2i-plus", "catelogid": "t2i", "prompt": "猫"}),
        )
        .await;
    assert_eq!(status, 200, "{task}");
    let done = server
        .finish_task(
            common::DEMO_KEY,
            task["taskid"].as_str().unwrap(),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let root = server.data_dir.path();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(root), 0o700, "data dir");
    let mut files = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name == "server.log" {
                continue; // written by the test harness, not the server
            }
            if path.is_dir() {
                assert_eq!(mode(&path), 0o700, "{}", path.display());
                stack.push(path);
            } else {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
                files += 1;
            }
        }
    }
    assert!(files >= 2, "the database and a stored result");
}

/// An admin's idempotency key is scoped to the target user: the same key for another user is
/// another adjustment, and a retry for the same user is not.
#[tokio::test]
async fn admin_idempotency_keys_are_per_target_user() {
    let server = Server::start(Opts::demo()).await;
    let admin_phone = "13766660010";
    server.admin_ok(&["user", "create", "--phone", admin_phone]);
    server.admin_ok(&[
        "user",
        "set-role",
        "--phone",
        admin_phone,
        "--role",
        "admin",
    ]);
    let (admin, csrf) = common::console::login(&server, admin_phone).await;
    server.user("13766660011", 0);
    server.user("13766660012", 0);
    let users: Value = admin
        .get(server.url("/api/admin/users"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id_of = |phone: &str| {
        users["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["phone"] == phone)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    for (phone, expect_applied) in [
        ("13766660011", true),
        ("13766660012", true),
        ("13766660011", false),
    ] {
        let (status, body) = post(
            &admin,
            &server,
            &format!("/api/admin/users/{}/credits", id_of(phone)),
            json!({"amount": 50, "reason": "补偿", "idempotency_key": "ticket-1"}),
            Some(&csrf),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["already_applied"].as_bool().unwrap_or(false),
            !expect_applied,
            "{phone}: {body}"
        );
    }
    assert_eq!(server.money("13766660011").await, (50, 50));
    assert_eq!(server.money("13766660012").await, (50, 50));
    // The command line too.
    server.user("13766660013", 0);
    for phone in ["13766660012", "13766660013"] {
        server.admin_ok(&[
            "credits",
            "add",
            "--phone",
            phone,
            "--amount",
            "7",
            "--reason",
            "r",
            "--idempotency-key",
            "cli-1",
        ]);
    }
    assert_eq!(server.money("13766660012").await, (57, 57));
    assert_eq!(server.money("13766660013").await, (7, 7));
}

/// Tasks submitted from the console sign their callbacks with the user's callback secret (shown
/// in the console, rotatable), never with an empty key.
#[tokio::test]
async fn console_tasks_sign_callbacks_with_the_users_secret() {
    use axum::http::HeaderMap;
    type Calls = std::sync::Arc<std::sync::Mutex<Vec<(HeaderMap, String)>>>;
    let received: Calls = Calls::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push((headers, body));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let server = Server::start(opts(&[("LLMAGE_OUTBOUND_ALLOW", "[\"127.0.0.1\"]")])).await;
    let phone = "13766660020";
    let (http, csrf) = common::console::login(&server, phone).await;
    server.admin_ok(&[
        "credits", "add", "--phone", phone, "--amount", "1000", "--reason", "t",
    ]);
    let secret: Value = http
        .get(server.url("/api/callback-secret"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = secret["callback_secret"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() > 30,
        "{secret}"
    );
    let (status, task) = post(
        &http,
        &server,
        "/llmage/v1/image/generations",
        json!({"model": "wan2.2-t2i-plus", "catelogid": "t2i", "prompt": "猫", "callback_url": hook}),
        Some(&csrf),
    )
    .await;
    assert_eq!(status, 200, "{task}");
    common::eventually(Duration::from_secs(30), "the callback", || {
        let received = received.clone();
        async move { !received.lock().unwrap().is_empty() }
    })
    .await;
    let (headers, body) = received.lock().unwrap()[0].clone();
    let signature = headers["x-llmage-signature"].to_str().unwrap().to_owned();
    assert_eq!(
        signature,
        llmage::tasks::callback::signature(&secret, body.as_bytes())
    );
    assert_ne!(
        signature,
        llmage::tasks::callback::signature("", body.as_bytes())
    );
    // Rotating gives a new secret (CSRF-checked).
    let (status, _) = post(&http, &server, "/api/callback-secret", json!({}), None).await;
    assert_eq!(status, 403);
    let (status, rotated) = post(
        &http,
        &server,
        "/api/callback-secret",
        json!({}),
        Some(&csrf),
    )
    .await;
    assert_eq!(status, 200);
    let rotated = rotated["callback_secret"].as_str().unwrap();
    assert!(rotated.starts_with("whsec_") && rotated != secret);
}

/// Disabling a user ends their running stream within a second; `bearer` works in any case,
/// also for the metrics token.
#[tokio::test]
async fn disabling_a_user_ends_their_stream_and_bearer_is_case_insensitive() {
    use futures_util::StreamExt;
    let server = Server::start(opts(&[
        ("LLMAGE_SANDBOX__CHAT_CHUNK_DELAY_MS", "250"),
        ("LLMAGE_METRICS_TOKEN", "metrics-secret-123"),
    ]))
    .await;
    let http = reqwest::Client::new();
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let resp = http
            .get(server.url("/metrics"))
            .header("authorization", format!("{scheme} metrics-secret-123"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{scheme}");
        let resp = http
            .get(server.url("/llmage/v1/models"))
            .header("authorization", format!("{scheme} {}", common::DEMO_KEY))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{scheme}");
    }
    let resp = http
        .get(server.url("/metrics"))
        .header("authorization", "bearer wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    let phone = "13766660030";
    let key = server.user(phone, 1_000_000);
    let admin_phone = "13766660031";
    server.admin_ok(&["user", "create", "--phone", admin_phone]);
    server.admin_ok(&[
        "user",
        "set-role",
        "--phone",
        admin_phone,
        "--role",
        "admin",
    ]);
    let (admin, csrf) = common::console::login(&server, admin_phone).await;
    let resp = http
        .post(server.url("/llmage/v1/chat/completions"))
        .bearer_auth(&key)
        .json(
            &json!({"model": "qwen3-max", "catelogid": "t2t", "stream": true,
                      "prompt": "请详细介绍一下你自己,越长越好,讲一个很长的故事"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    let users: Value = admin
        .get(server.url("/api/admin/users"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = users["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["phone"] == phone)
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, _) = post(
        &admin,
        &server,
        &format!("/api/admin/users/{id}/disable"),
        json!({}),
        Some(&csrf),
    )
    .await;
    assert_eq!(status, 200);
    let disabled_at = std::time::Instant::now();
    let mut chunks_after = 0;
    while let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_secs(5), body.next()).await {
        if chunk.is_err() {
            break;
        }
        chunks_after += 1;
    }
    assert!(
        disabled_at.elapsed() < Duration::from_millis(1500),
        "the stream went on for {:?} ({chunks_after} chunks) after the user was disabled",
        disabled_at.elapsed()
    );
}

/// An order closed as FAILED whose payment arrives late (all notifications lost) is credited
/// by reconciliation, exactly once.
#[tokio::test]
async fn reconciliation_credits_a_late_payment_of_a_failed_order_once() {
    use common::mock_alipay::{self, MockAlipay, Mode};
    let mock = mock_alipay::start(Mode::Normal).await;
    let server =
        mock_alipay::server_with_alipay(&mock, &[("LLMAGE_ALIPAY__RECONCILE_SECS", "1")]).await;
    let phone = "13766660040";
    let (http, csrf) = common::console::login(&server, phone).await;
    let (status, order) = post(
        &http,
        &server,
        "/api/recharge/alipay",
        json!({"amount": "2.00"}),
        Some(&csrf),
    )
    .await;
    assert_eq!(status, 201, "{order}");
    let id = order["order_id"].as_str().unwrap().to_owned();
    // We closed it (say: expired unpaid); then the buyer's payment went through at Alipay.
    let db = server.db().await;
    sqlx::query("UPDATE recharge_orders SET status = 'FAILED', failure = 'expired' WHERE id = $1")
        .bind(&id)
        .execute(db.writer())
        .await
        .unwrap();
    mock.pay_silently(&id);
    common::eventually(Duration::from_secs(20), "the late payment credited", || {
        let db = db.clone();
        let id = id.clone();
        async move {
            let orders = llmage::payments::orders::Orders::new(db);
            orders.get(&id).await.unwrap().unwrap().status == "SUCCEEDED"
        }
    })
    .await;
    assert_eq!(server.money(phone).await, (200, 200));
    // A late notification changes nothing.
    let notify = server.url("/api/payments/alipay/notify");
    assert_eq!(
        MockAlipay::deliver(&notify, &mock.notification(&id)).await,
        "success"
    );
    assert_eq!(server.money(phone).await, (200, 200));
    db.close().await;
}
