//! A headless Chromium driven over WebDriver (Debian's `/usr/bin/chromium` and
//! `/usr/bin/chromedriver`): start, wait for elements and text by polling (no fixed sleeps), and
//! screenshots at desktop (1280) and phone (390) width into `target/console-screenshots/`.
//! A missing browser or driver fails the test with a clear message; it never skips.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::http::Method;
use base64::Engine;
use fantoccini::elements::Element;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a wait for an element, a text or a condition may take.
pub const WAIT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(50);

pub const DESKTOP: (u32, u32) = (1280, 900);
pub const PHONE: (u32, u32) = (390, 844);

pub struct Browser {
    pub client: Client,
    driver: Child,
    shots: PathBuf,
}

/// Where screenshots go.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots")
}

impl Browser {
    pub async fn start() -> Browser {
        for (path, what) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromedriver")] {
            assert!(
                Path::new(path).exists(),
                "{what} is missing at {path}: the console browser tests need Debian's chromium and \
                 chromium-driver packages (apt-get install chromium chromium-driver)"
            );
        }
        let port = super::free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        let mut browser_driver = DriverGuard(Some(driver));
        let url = format!("http://127.0.0.1:{port}");
        // Wait until the driver answers its status endpoint.
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(resp) = http.get(format!("{url}/status")).send().await
                && resp.status().is_success()
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver on port {port} did not answer within 20 s"
            );
            tokio::time::sleep(POLL).await;
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    format!("--window-size={},{}", DESKTOP.0, DESKTOP.1), "--lang=zh-CN",
                    "--autoplay-policy=no-user-gesture-required",
                ],
                "prefs": {"intl.accept_languages": "zh-CN,zh"},
            }),
        );
        // Plain HTTP to the local driver (no TLS provider to choose).
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot open a chromium session through chromedriver: {e}"));
        let shots = screenshot_dir();
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            client,
            driver: browser_driver.0.take().unwrap(),
            shots,
        }
    }

    /// End the session (chromium exits) and the driver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// Set the URL fragment (a console route) without reloading.
    pub async fn route(&self, hash: &str) {
        self.js(&format!("location.hash = {}; return true", json!(hash)))
            .await;
    }

    /// Run a script (its `return` value).
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Poll `script` until it returns something truthy (not null/false/0/""); that value.
    pub async fn wait_js(&self, script: &str, what: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut last_err = String::new();
        loop {
            match self.client.execute(script, vec![]).await {
                Ok(v) if truthy(&v) => return v,
                Ok(_) => {}
                Err(e) => last_err = e.to_string(),
            }
            if tokio::time::Instant::now() >= deadline {
                let body = self.body_text().await;
                panic!(
                    "timed out waiting for {what} ({script}) {last_err}\n--- page text ---\n{body}"
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The first element matching `css`, once it exists and is displayed.
    pub async fn wait_for(&self, css: &str) -> Element {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await
                && el.is_displayed().await.unwrap_or(false)
            {
                return el;
            }
            if tokio::time::Instant::now() >= deadline {
                let body = self.body_text().await;
                panic!("timed out waiting for `{css}`\n--- page text ---\n{body}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Wait until the element `css` shows `text`; its whole text.
    pub async fn wait_text(&self, css: &str, text: &str) -> String {
        let script = format!(
            "const e = document.querySelector({}); return e && e.innerText.includes({}) ? e.innerText : null",
            json!(css),
            json!(text)
        );
        self.wait_js(&script, &format!("`{css}` to show {text:?}"))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn text(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.unwrap_or_default()
    }

    pub async fn body_text(&self) -> String {
        match self
            .client
            .execute(
                "return document.body ? document.body.innerText : ''",
                vec![],
            )
            .await
        {
            Ok(Value::String(s)) => s,
            _ => String::new(),
        }
    }

    pub async fn click(&self, css: &str) {
        let el = self.wait_for(css).await;
        if let Err(e) = el.click().await {
            // Covered by an animation or a sticky bar: scroll it into view and click by script.
            let _ = e;
            self.js(&format!(
                "const e = document.querySelector({}); e.scrollIntoView({{block: 'center'}}); e.click(); return true",
                json!(css)
            ))
            .await;
        }
    }

    /// Replace an input's value by typing (so `input` events fire).
    pub async fn fill(&self, css: &str, text: &str) {
        let el = self.wait_for(css).await;
        el.clear().await.unwrap();
        el.send_keys(text).await.unwrap();
    }

    pub async fn size(&self, (w, h): (u32, u32)) {
        self.client.set_window_size(w, h).await.unwrap();
        // The layout viewport follows the window; wait until it has.
        self.wait_js(
            &format!("return Math.abs(window.innerWidth - {w}) <= 20"),
            "the window to resize",
        )
        .await;
    }

    /// Screenshots of the whole page at desktop and phone width:
    /// `<dir>/<name>-desktop.png` and `<dir>/<name>-phone.png`.
    pub async fn screenshot(&self, name: &str) {
        for (suffix, size) in [("desktop", DESKTOP), ("phone", PHONE)] {
            self.size(size).await;
            if size == PHONE {
                // A phone: overlay scrollbars and the mobile viewport, as on the device.
                self.cdp(
                    "Emulation.setDeviceMetricsOverride",
                    json!({"width": PHONE.0, "height": PHONE.1, "deviceScaleFactor": 1, "mobile": true}),
                )
                .await;
            }
            // From the top (a sticky bar stays at the top), after a frame for the layout to settle.
            self.js_async(
                "window.scrollTo(0, 0); requestAnimationFrame(() => requestAnimationFrame(() => done(true)))",
            )
            .await;
            let png = self.full_page_png().await;
            std::fs::write(self.shots.join(format!("{name}-{suffix}.png")), png).unwrap();
            if size == PHONE {
                self.cdp("Emulation.clearDeviceMetricsOverride", json!({}))
                    .await;
            }
        }
        self.size(DESKTOP).await;
    }

    /// A phone-width screenshot after clicking `css` (a menu that only a phone shows):
    /// `<dir>/<name>-phone.png`.
    pub async fn screenshot_phone_after_click(&self, name: &str, css: &str) {
        self.size(PHONE).await;
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": PHONE.0, "height": PHONE.1, "deviceScaleFactor": 1, "mobile": true}),
        )
        .await;
        self.js("window.scrollTo(0, 0); return true").await;
        self.click(css).await;
        self.js_async("requestAnimationFrame(() => requestAnimationFrame(() => done(true)))")
            .await;
        let png = self.full_page_png().await;
        std::fs::write(self.shots.join(format!("{name}-phone.png")), png).unwrap();
        self.cdp("Emulation.clearDeviceMetricsOverride", json!({}))
            .await;
        self.size(DESKTOP).await;
    }

    /// The whole page (beyond the viewport) as PNG, through the DevTools protocol.
    pub async fn full_page_png(&self) -> Vec<u8> {
        let metrics = self.cdp("Page.getLayoutMetrics", json!({})).await;
        let size = &metrics["cssContentSize"];
        let width = size["width"].as_f64().unwrap_or(f64::from(DESKTOP.0));
        let height = size["height"]
            .as_f64()
            .unwrap_or(f64::from(DESKTOP.1))
            .min(8000.0);
        let shot = self
            .cdp(
                "Page.captureScreenshot",
                json!({
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
                }),
            )
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("screenshot base64")
    }

    /// A Chrome DevTools Protocol command through chromedriver.
    pub async fn cdp(&self, cmd: &'static str, params: Value) -> Value {
        self.client
            .issue_cmd(Cdp { cmd, params })
            .await
            .unwrap_or_else(|e| panic!("CDP {cmd} failed: {e}"))
    }

    /// An asynchronous script: it calls `done(value)`.
    pub async fn js_async(&self, body: &str) -> Value {
        let script = format!("const done = arguments[arguments.length - 1]; {body}");
        self.client
            .execute_async(&script, vec![])
            .await
            .unwrap_or_else(|e| panic!("async script failed: {e}\n{body}"))
    }
}

/// chromedriver's `goog/cdp/execute` endpoint.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &reqwest::Url,
        session_id: Option<&str>,
    ) -> Result<reqwest::Url, <reqwest::Url as std::str::FromStr>::Err> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _url: &reqwest::Url) -> (Method, Option<String>) {
        (
            Method::POST,
            Some(json!({"cmd": self.cmd, "params": self.params}).to_string()),
        )
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// Kills chromedriver if the start fails half-way.
struct DriverGuard(Option<Child>);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SIGTERM first: chromedriver then ends the chromium it started.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.driver.id().to_string())
            .status();
        for _ in 0..40 {
            if matches!(self.driver.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
