//! Console helpers: log in with the `log` SMS sender's code, POST with the CSRF token.

use serde_json::{Value, json};

use super::Server;

/// The last code the `log` sender wrote for `phone`.
pub fn code_from_log(server: &Server, phone: &str) -> String {
    let log = server.log();
    let needle = format!("SMS {phone} ");
    let at = log.rfind(&needle).expect("no SMS line in the log");
    log[at + needle.len()..at + needle.len() + 6].to_owned()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

pub async fn post(
    http: &reqwest::Client,
    server: &Server,
    path: &str,
    body: Value,
    csrf: Option<&str>,
) -> (u16, Value) {
    let mut req = http.post(server.url(path)).json(&body);
    if let Some(csrf) = csrf {
        req = req.header("X-CSRF-Token", csrf);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub async fn login(server: &Server, phone: &str) -> (reqwest::Client, String) {
    let http = client();
    post(
        &http,
        server,
        "/api/auth/sms-code",
        json!({"phone": phone}),
        None,
    )
    .await;
    let code = code_from_log(server, phone);
    let (status, body) = post(
        &http,
        server,
        "/api/auth/login",
        json!({"phone": phone, "code": code}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (http, body["csrf_token"].as_str().unwrap().to_owned())
}
