//! Alibaba Cloud Model Studio (DashScope) native async API for images and videos: Wan
//! text-to-image (`…/text2image/image-synthesis`), Wan and HappyHorse video
//! (`…/video-generation/video-synthesis`), both created with `X-DashScope-Async: enable` and
//! polled at `GET /api/v1/tasks/{task_id}`. Chat goes through the compatible-mode endpoint in
//! [`super::openai`] instead.
//!
//! Our parameters map to the vendor's `input` / `parameters` objects per model family (see
//! `../shared/upstreams.md` §1): Wan t2i always sends `n: 1`; Wan video sends `size`; Wan r2v sends
//! the reference images as `input.reference_urls`; HappyHorse sends `resolution`/`ratio` and its
//! images in `input.media` (`first_frame`, `reference_image`). Input files we stored travel as
//! `data:` URIs. Result URLs expire after 24 h; the engine archives them at once.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::ProviderError;
use super::media::{MediaJob, MediaOutput, OutputBody, OutputRole, PollOutcome};

const IMAGE_PATH: &str = "/api/v1/services/aigc/text2image/image-synthesis";
const VIDEO_PATH: &str = "/api/v1/services/aigc/video-generation/video-synthesis";

/// The DashScope media adapter.
#[derive(Debug, Clone)]
pub struct DashScopeMedia {
    http: reqwest::Client,
    /// First poll delay and the longest one.
    delays: (Duration, Duration),
    /// How long creating a vendor task may take before the channel counts as failed.
    submit_timeout: Duration,
}

impl DashScopeMedia {
    pub fn new(
        http: reqwest::Client,
        delays: (Duration, Duration),
        submit_timeout: Duration,
    ) -> DashScopeMedia {
        DashScopeMedia {
            http,
            delays,
            submit_timeout,
        }
    }

    pub fn poll_delays(&self) -> (Duration, Duration) {
        self.delays
    }

    /// Create the vendor task; its `task_id`.
    pub async fn submit(&self, job: &MediaJob<'_>) -> Result<String, ProviderError> {
        let channel = job.channel()?;
        let path = if job.category == "t2i" {
            IMAGE_PATH
        } else {
            VIDEO_PATH
        };
        let response = self
            .http
            .post(format!("{}{path}", native_base(&channel.base_url)))
            .bearer_auth(channel.api_key.expose())
            .header("X-DashScope-Async", "enable")
            .timeout(self.submit_timeout)
            .json(&request_body(job))
            .send()
            .await
            .map_err(ProviderError::from_reqwest)?;
        let body = read_json(response).await?;
        body.pointer("/output/task_id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| match (body.get("code"), body.get("message")) {
                // A 200 that carries an error: the vendor's own reason (it describes the input).
                (Some(Value::String(code)), Some(Value::String(message))) => {
                    ProviderError::Event(format!("{code}: {message}"))
                }
                _ => ProviderError::Decode("DashScope answered without output.task_id".into()),
            })
    }

    /// Ask how the vendor task stands.
    pub async fn poll(
        &self,
        job: &MediaJob<'_>,
        vendor_task_id: &str,
    ) -> Result<PollOutcome, ProviderError> {
        let channel = job.channel()?;
        let response = self
            .http
            .get(format!(
                "{}/api/v1/tasks/{vendor_task_id}",
                native_base(&channel.base_url)
            ))
            .bearer_auth(channel.api_key.expose())
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(ProviderError::from_reqwest)?;
        let body = read_json(response).await?;
        Ok(outcome(job.category, &body))
    }
}

/// The native API root of a channel's base URL (which may be given with a compatible-mode or
/// `/api/v1` suffix).
fn native_base(base_url: &str) -> &str {
    let base = base_url.trim_end_matches('/');
    base.strip_suffix("/compatible-mode/v1")
        .or_else(|| base.strip_suffix("/api/v1"))
        .unwrap_or(base)
}

/// Move a parameter into `target` when the client (or the default) gave it.
fn copy(job: &MediaJob<'_>, name: &str, target: &mut Map<String, Value>) {
    if let Some(value) = job.params.get(name).filter(|v| !v.is_null()) {
        target.insert(name.to_owned(), value.clone());
    }
}

/// The vendor request for a job.
pub fn request_body(job: &MediaJob<'_>) -> Value {
    let mut input = Map::new();
    let mut parameters = Map::new();
    input.insert(
        "prompt".into(),
        Value::String(job.str_param("prompt").unwrap_or_default().to_owned()),
    );
    if let Some(negative) = job.str_param("negative_prompt").filter(|n| !n.is_empty()) {
        input.insert("negative_prompt".into(), Value::String(negative.to_owned()));
    }
    let happyhorse = job.upstream_model.starts_with("happyhorse");
    if job.category == "t2i" {
        // The vendor's default may be 4 images; we sell one.
        parameters.insert("n".into(), json!(1));
        copy(job, "size", &mut parameters);
    } else if happyhorse {
        let mut media = Vec::new();
        for input_file in job.inputs_of("image_file") {
            media.push(json!({"type": "first_frame", "url": input_file.data.url_or_data_uri()}));
        }
        for input_file in job.inputs_of("image_files") {
            media
                .push(json!({"type": "reference_image", "url": input_file.data.url_or_data_uri()}));
        }
        if !media.is_empty() {
            input.insert("media".into(), Value::Array(media));
        }
        copy(job, "resolution", &mut parameters);
        copy(job, "duration", &mut parameters);
        // "adaptive" (the seed's default) means: let the vendor follow the input.
        if let Some(ratio) = job.str_param("ratio").filter(|r| *r != "adaptive") {
            parameters.insert("ratio".into(), Value::String(ratio.to_owned()));
        }
    } else {
        // Wan video: t2v by prompt; r2v with its reference images in order.
        let references: Vec<Value> = ["image_file1", "image_file2", "image_files"]
            .iter()
            .flat_map(|field| job.inputs_of(field))
            .map(|i| Value::String(i.data.url_or_data_uri()))
            .collect();
        if !references.is_empty() {
            input.insert("reference_urls".into(), Value::Array(references));
        }
        if let Some(image) = job.inputs_of("image_file").next() {
            input.insert(
                "img_url".into(),
                Value::String(image.data.url_or_data_uri()),
            );
        }
        copy(job, "size", &mut parameters);
        copy(job, "resolution", &mut parameters);
        copy(job, "duration", &mut parameters);
    }
    json!({"model": job.upstream_model, "input": input, "parameters": parameters})
}

/// A vendor error body (`{"code","message"}`) as a message we may show.
fn error_message(body: &Value) -> String {
    let code = body.get("code").and_then(Value::as_str).unwrap_or("error");
    let message = body.get("message").and_then(Value::as_str).unwrap_or("");
    if message.is_empty() {
        code.to_owned()
    } else {
        format!("{code}: {message}")
    }
}

async fn read_json(response: reqwest::Response) -> Result<Value, ProviderError> {
    let status = response.status();
    let text = response.text().await.map_err(ProviderError::from_reqwest)?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(ProviderError::Status {
            status: status.as_u16(),
            message: if body.is_object() {
                error_message(&body)
            } else {
                format!("HTTP {}", status.as_u16())
            },
        });
    }
    if !body.is_object() {
        return Err(ProviderError::Decode(
            "DashScope sent a non-JSON answer".into(),
        ));
    }
    Ok(body)
}

/// Map a task query answer to our outcome.
pub fn outcome(category: &str, body: &Value) -> PollOutcome {
    let output = body.get("output").cloned().unwrap_or(Value::Null);
    let status = output
        .get("task_status")
        .and_then(Value::as_str)
        .unwrap_or("");
    match status {
        "PENDING" => PollOutcome::Pending,
        "RUNNING" => PollOutcome::Running,
        "SUCCEEDED" if category == "t2i" => {
            let results = output
                .get("results")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            match results
                .iter()
                .find_map(|r| r.get("url").and_then(Value::as_str))
            {
                Some(url) => PollOutcome::Succeeded(vec![MediaOutput {
                    role: OutputRole::Image,
                    body: OutputBody::Url(url.to_owned()),
                }]),
                None => PollOutcome::Failed(
                    results
                        .first()
                        .map(error_message)
                        .unwrap_or_else(|| "the vendor returned no image".into()),
                ),
            }
        }
        "SUCCEEDED" => match output.get("video_url").and_then(Value::as_str) {
            Some(url) => PollOutcome::Succeeded(vec![MediaOutput {
                role: OutputRole::Video,
                body: OutputBody::Url(url.to_owned()),
            }]),
            None => PollOutcome::Failed("the vendor returned no video".into()),
        },
        "FAILED" | "CANCELED" => PollOutcome::Failed(error_message(&output)),
        "UNKNOWN" => PollOutcome::Failed(
            "the vendor no longer knows this task (expired or not found)".into(),
        ),
        // Unknown statuses are treated as still running; the deadline bounds them.
        _ => PollOutcome::Running,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_results_map() {
        let ok = json!({"output": {"task_status": "SUCCEEDED", "results": [{"code": "X", "message": "bad"}, {"url": "https://oss/x.png?Expires=1"}]}});
        assert!(
            matches!(outcome("t2i", &ok), PollOutcome::Succeeded(v) if matches!(&v[0].body, OutputBody::Url(u) if u.contains("x.png")))
        );
        let failed = json!({"output": {"task_status": "FAILED", "code": "InvalidParameter.FileDownload", "message": "cannot download"}});
        assert!(
            matches!(outcome("t2v", &failed), PollOutcome::Failed(m) if m == "InvalidParameter.FileDownload: cannot download")
        );
        assert!(matches!(
            outcome("t2v", &json!({"output": {"task_status": "PENDING"}})),
            PollOutcome::Pending
        ));
        assert!(matches!(
            outcome("t2v", &json!({"output": {"task_status": "UNKNOWN"}})),
            PollOutcome::Failed(_)
        ));
        let video = json!({"output": {"task_status": "SUCCEEDED", "video_url": "https://oss/v.mp4"}, "usage": {"SR": "720", "duration": 5.0}});
        assert!(matches!(outcome("i2v", &video), PollOutcome::Succeeded(_)));
    }

    #[test]
    fn base_urls_are_normalised() {
        assert_eq!(
            native_base("https://dashscope.aliyuncs.com/compatible-mode/v1/"),
            "https://dashscope.aliyuncs.com"
        );
        assert_eq!(
            native_base("https://dashscope.aliyuncs.com/api/v1"),
            "https://dashscope.aliyuncs.com"
        );
        assert_eq!(native_base("http://127.0.0.1:9"), "http://127.0.0.1:9");
    }
}
