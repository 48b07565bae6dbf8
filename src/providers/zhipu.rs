//! Zhipu BigModel CogView (`cogview-3-flash`): a synchronous image API
//! (`POST {base}/images/generations`, `Authorization: Bearer`), answered with the image URL.
//!
//! The task engine is asynchronous, so `submit` makes the whole call and returns the result URL
//! as the "vendor task id"; the first poll then reports SUCCEEDED with that URL and the engine
//! archives it. A crash between the call and recording its answer re-sends the call once (one
//! extra image at the vendor; the user is charged once). The negative prompt, which CogView has
//! no field for, is appended to the prompt as an instruction.

use std::time::Duration;

use serde_json::{Value, json};

use super::ProviderError;
use super::media::{MediaJob, MediaOutput, OutputBody, OutputRole, PollOutcome};

/// The Zhipu image adapter.
#[derive(Debug, Clone)]
pub struct ZhipuMedia {
    http: reqwest::Client,
}

impl ZhipuMedia {
    pub fn new(http: reqwest::Client) -> ZhipuMedia {
        ZhipuMedia { http }
    }

    /// The result is ready when `submit` returns: poll at once.
    pub fn poll_delays(&self) -> (Duration, Duration) {
        (Duration::from_millis(1), Duration::from_secs(5))
    }

    /// Generate the image; its URL.
    pub async fn submit(&self, job: &MediaJob<'_>) -> Result<String, ProviderError> {
        let channel = job.channel()?;
        let response = self
            .http
            .post(format!(
                "{}/images/generations",
                channel.base_url.trim_end_matches('/')
            ))
            .bearer_auth(channel.api_key.expose())
            .timeout(Duration::from_secs(120))
            .json(&request_body(job))
            .send()
            .await
            .map_err(ProviderError::from_reqwest)?;
        let status = response.status();
        let text = response.text().await.map_err(ProviderError::from_reqwest)?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let error = &body["error"];
            let code = match &error["code"] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => String::new(),
            };
            let message = error["message"].as_str().unwrap_or("");
            return Err(ProviderError::Status {
                status: status.as_u16(),
                message: if code.is_empty() && message.is_empty() {
                    format!("HTTP {}", status.as_u16())
                } else {
                    format!("{code}: {message}")
                },
            });
        }
        body.pointer("/data/0/url")
            .and_then(Value::as_str)
            .filter(|u| u.starts_with("http"))
            .map(str::to_owned)
            .ok_or_else(|| ProviderError::Decode("CogView answered without data[0].url".into()))
    }

    /// The image is there: its URL is the id `submit` returned.
    pub fn poll(&self, vendor_task_id: &str) -> PollOutcome {
        PollOutcome::Succeeded(vec![MediaOutput {
            role: OutputRole::Image,
            body: OutputBody::Url(vendor_task_id.to_owned()),
        }])
    }
}

/// The vendor request for a job.
pub fn request_body(job: &MediaJob<'_>) -> Value {
    let mut prompt = job.str_param("prompt").unwrap_or_default().to_owned();
    if let Some(negative) = job
        .str_param("negative_prompt")
        .filter(|n| !n.trim().is_empty())
    {
        prompt.push_str(&format!("\n不要出现 / avoid: {negative}"));
    }
    let mut body = json!({"model": job.upstream_model, "prompt": prompt});
    if let Some(size) = job.str_param("size") {
        body["size"] = Value::String(size.to_owned());
    }
    body
}
