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

use serde_json::{Map, Value, json};

use super::ProviderError;
use super::media::{MediaAdapter, MediaJob, MediaOutput, OutputBody, OutputRole, PollOutcome};
use super::transport::{Auth, VendorRequest};
use crate::vendor::Vendor;

const IMAGE_PATH: &str = "/api/v1/services/aigc/text2image/image-synthesis";
const VIDEO_PATH: &str = "/api/v1/services/aigc/video-generation/video-synthesis";

/// The DashScope media adapter.
#[derive(Debug, Clone, Copy)]
pub struct DashScope;

impl MediaAdapter for DashScope {
    fn vendor(&self) -> Vendor {
        Vendor::DashScope
    }

    fn submit_request(&self, job: &MediaJob<'_>, base_url: &str) -> VendorRequest {
        let path = if job.category == "t2i" {
            IMAGE_PATH
        } else {
            VIDEO_PATH
        };
        VendorRequest::post(
            format!("{}{path}", native_base(base_url)),
            Auth::Bearer,
            request_body(job),
        )
        .header("X-DashScope-Async", "enable")
    }

    /// The `output.task_id`.
    fn parse_submit(&self, body: &Value) -> Result<String, ProviderError> {
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

    fn poll_request(&self, base_url: &str, vendor_task_id: &str) -> Option<VendorRequest> {
        Some(VendorRequest::get(
            format!("{}/api/v1/tasks/{vendor_task_id}", native_base(base_url)),
            Auth::Bearer,
        ))
    }

    fn parse_poll(&self, job: &MediaJob<'_>, _vendor_task_id: &str, body: &Value) -> PollOutcome {
        outcome(job.category, body)
    }

    fn error_message(&self, body: &Value) -> Option<String> {
        body.is_object().then(|| error_message(body))
    }
}

/// The native API root of a channel's base URL (which may be given with a compatible-mode or
/// `/api/v1` suffix).
pub fn native_base(base_url: &str) -> &str {
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

    #[test]
    fn requests_and_answers() {
        use crate::providers::media::testing::with_job;
        use crate::providers::transport::Auth;
        let request = with_job(
            "t2i",
            "wan2.2-t2i-plus",
            json!({"prompt": "猫", "size": "1024*1024"}),
            &[],
            |job| {
                DashScope.submit_request(job, "https://dashscope.aliyuncs.com/compatible-mode/v1")
            },
        );
        assert_eq!(
            request.url,
            format!("https://dashscope.aliyuncs.com{IMAGE_PATH}")
        );
        assert_eq!(request.auth, Auth::Bearer);
        assert_eq!(request.headers, [("X-DashScope-Async", "enable")]);
        assert_eq!(
            request.body,
            Some(
                json!({"model": "wan2.2-t2i-plus", "input": {"prompt": "猫"}, "parameters": {"n": 1, "size": "1024*1024"}})
            )
        );
        let accepted = json!({"output": {"task_status": "PENDING", "task_id": "0385dc79"}, "request_id": "4909100c"});
        assert_eq!(DashScope.parse_submit(&accepted).unwrap(), "0385dc79");
        let refused = json!({"code": "DataInspectionFailed", "message": "Input data may contain inappropriate content."});
        assert!(matches!(
            DashScope.parse_submit(&refused),
            Err(ProviderError::Event(m)) if m.starts_with("DataInspectionFailed: ")
        ));
        assert_eq!(
            DashScope
                .poll_request("https://dashscope.aliyuncs.com/api/v1", "0385dc79")
                .unwrap()
                .url,
            "https://dashscope.aliyuncs.com/api/v1/tasks/0385dc79"
        );
        assert_eq!(
            DashScope.error_message(
                &json!({"code": "InvalidApiKey", "message": "Invalid API-key provided."})
            ),
            Some("InvalidApiKey: Invalid API-key provided.".into())
        );
        assert_eq!(DashScope.error_message(&Value::Null), None);
    }
}
