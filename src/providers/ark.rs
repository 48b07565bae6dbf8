//! Volcengine Ark (Doubao Seedance) and BytePlus ModelArk (Dreamina Seedance): the same content
//! generation task API (`POST {base}/contents/generations/tasks`, `GET …/tasks/{id}`,
//! `Authorization: Bearer`), with the base URL ending in `/api/v3` as the consoles give it.
//!
//! The prompt is the `text` item of `content`; images become `image_url` items with the role the
//! seed's field implies (`image1_file`/`image_file1` first frame, `image2_file`/`image_file2` last
//! frame, `image_files` reference images), `video_files` / `audio_files` become `reference_video` /
//! `reference_audio` items. `resolution`, `ratio` and `duration` are body fields (strictly
//! validated by the vendor, unlike the text flags of Seedance 1.x). Ark does not take base64
//! videos or audio: uploaded ones are passed as our public `/idfile` link, so `public_base_url`
//! must be reachable by the vendor for them.

use std::time::Duration;

use serde_json::{Value, json};

use super::ProviderError;
use super::media::{JobInput, MediaJob, MediaOutput, OutputBody, OutputRole, PollOutcome};
use crate::vendor::Vendor;

/// The Ark / ModelArk adapter; `vendor` is `ark` or `modelark`.
#[derive(Debug, Clone)]
pub struct ArkMedia {
    vendor: Vendor,
    http: reqwest::Client,
    delays: (Duration, Duration),
    /// How long creating a vendor task may take before the channel counts as failed.
    submit_timeout: Duration,
}

impl ArkMedia {
    pub fn new(
        vendor: Vendor,
        http: reqwest::Client,
        delays: (Duration, Duration),
        submit_timeout: Duration,
    ) -> ArkMedia {
        ArkMedia {
            vendor,
            http,
            delays,
            submit_timeout,
        }
    }

    pub fn vendor(&self) -> Vendor {
        self.vendor
    }

    pub fn poll_delays(&self) -> (Duration, Duration) {
        self.delays
    }

    pub async fn submit(&self, job: &MediaJob<'_>) -> Result<String, ProviderError> {
        let channel = job.channel()?;
        let response = self
            .http
            .post(format!(
                "{}/contents/generations/tasks",
                channel.base_url.trim_end_matches('/')
            ))
            .bearer_auth(channel.api_key.expose())
            .timeout(self.submit_timeout)
            .json(&request_body(job))
            .send()
            .await
            .map_err(ProviderError::from_reqwest)?;
        let body = read_json(response).await?;
        body.get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| ProviderError::Decode("Ark answered without a task id".into()))
    }

    pub async fn poll(
        &self,
        job: &MediaJob<'_>,
        vendor_task_id: &str,
    ) -> Result<PollOutcome, ProviderError> {
        let channel = job.channel()?;
        let response = self
            .http
            .get(format!(
                "{}/contents/generations/tasks/{vendor_task_id}",
                channel.base_url.trim_end_matches('/')
            ))
            .bearer_auth(channel.api_key.expose())
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(ProviderError::from_reqwest)?;
        Ok(outcome(&read_json(response).await?))
    }
}

/// An input as the vendor reads it: our public link for stored files when we have one.
fn input_url(input: &JobInput) -> String {
    input
        .public_url
        .clone()
        .unwrap_or_else(|| input.data.url_or_data_uri())
}

/// The vendor request for a job.
pub fn request_body(job: &MediaJob<'_>) -> Value {
    let mut content =
        vec![json!({"type": "text", "text": job.str_param("prompt").unwrap_or_default()})];
    let roles = [
        ("image1_file", "image_url", "first_frame"),
        ("image_file1", "image_url", "first_frame"),
        ("image2_file", "image_url", "last_frame"),
        ("image_file2", "image_url", "last_frame"),
        ("image_files", "image_url", "reference_image"),
        ("video_files", "video_url", "reference_video"),
        ("audio_files", "audio_url", "reference_audio"),
    ];
    for (field, kind, role) in roles {
        for input in job.inputs_of(field) {
            content.push(json!({"type": kind, kind: {"url": input_url(input)}, "role": role}));
        }
    }
    let mut body = json!({"model": job.upstream_model, "content": content});
    for name in ["resolution", "ratio", "duration"] {
        if let Some(value) = job.params.get(name).filter(|v| !v.is_null()) {
            body[name] = value.clone();
        }
    }
    body
}

async fn read_json(response: reqwest::Response) -> Result<Value, ProviderError> {
    let status = response.status();
    let text = response.text().await.map_err(ProviderError::from_reqwest)?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(ProviderError::Status {
            status: status.as_u16(),
            message: error_message(&body["error"])
                .unwrap_or_else(|| format!("HTTP {}", status.as_u16())),
        });
    }
    if !body.is_object() {
        return Err(ProviderError::Decode("Ark sent a non-JSON answer".into()));
    }
    Ok(body)
}

fn error_message(error: &Value) -> Option<String> {
    let code = error.get("code").and_then(Value::as_str)?;
    let message = error.get("message").and_then(Value::as_str).unwrap_or("");
    Some(format!("{code}: {message}"))
}

/// Map a task query answer to our outcome.
pub fn outcome(body: &Value) -> PollOutcome {
    match body.get("status").and_then(Value::as_str).unwrap_or("") {
        "queued" => PollOutcome::Pending,
        "running" => PollOutcome::Running,
        "succeeded" => match body.pointer("/content/video_url").and_then(Value::as_str) {
            Some(url) => PollOutcome::Succeeded(vec![MediaOutput {
                role: OutputRole::Video,
                body: OutputBody::Url(url.to_owned()),
            }]),
            None => PollOutcome::Failed("the vendor returned no video".into()),
        },
        "failed" => PollOutcome::Failed(
            error_message(&body["error"]).unwrap_or_else(|| "the vendor failed the task".into()),
        ),
        "cancelled" => PollOutcome::Failed("the vendor cancelled the task".into()),
        "expired" => PollOutcome::Failed("the task expired at the vendor before it ran".into()),
        _ => PollOutcome::Running,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map() {
        assert!(matches!(
            outcome(&json!({"status": "queued"})),
            PollOutcome::Pending
        ));
        assert!(matches!(
            outcome(&json!({"status": "running"})),
            PollOutcome::Running
        ));
        assert!(matches!(
            outcome(&json!({"status": "succeeded", "content": {"video_url": "https://x/v.mp4"}})),
            PollOutcome::Succeeded(_)
        ));
        assert!(
            matches!(outcome(&json!({"status": "failed", "error": {"code": "OutputVideoSensitiveContentDetected", "message": "m"}})),
            PollOutcome::Failed(m) if m.starts_with("OutputVideoSensitiveContentDetected"))
        );
        assert!(matches!(
            outcome(&json!({"status": "expired"})),
            PollOutcome::Failed(_)
        ));
    }
}
