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

use serde_json::{Value, json};

use super::ProviderError;
use super::media::{
    JobInput, MediaAdapter, MediaJob, MediaOutput, OutputBody, OutputRole, PollOutcome,
};
use super::transport::{Auth, VendorRequest};
use crate::vendor::Vendor;

/// The Ark / ModelArk adapter; `vendor` is [`Vendor::Ark`] or [`Vendor::ModelArk`].
#[derive(Debug, Clone, Copy)]
pub struct Ark {
    pub vendor: Vendor,
}

impl MediaAdapter for Ark {
    fn vendor(&self) -> Vendor {
        self.vendor
    }

    fn submit_request(&self, job: &MediaJob<'_>, base_url: &str) -> VendorRequest {
        VendorRequest::post(
            format!(
                "{}/contents/generations/tasks",
                base_url.trim_end_matches('/')
            ),
            Auth::Bearer,
            request_body(job),
        )
    }

    fn parse_submit(&self, body: &Value) -> Result<String, ProviderError> {
        body.get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| ProviderError::Decode("Ark answered without a task id".into()))
    }

    fn poll_request(&self, base_url: &str, vendor_task_id: &str) -> Option<VendorRequest> {
        Some(VendorRequest::get(
            format!(
                "{}/contents/generations/tasks/{vendor_task_id}",
                base_url.trim_end_matches('/')
            ),
            Auth::Bearer,
        ))
    }

    fn parse_poll(&self, _job: &MediaJob<'_>, _vendor_task_id: &str, body: &Value) -> PollOutcome {
        outcome(body)
    }

    fn error_message(&self, body: &Value) -> Option<String> {
        error_message(&body["error"])
    }

    fn fetches_inputs_by_url(&self) -> bool {
        true
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

    #[test]
    fn requests_and_answers() {
        use crate::providers::media::testing::{url_input, with_job};
        use crate::providers::transport::{Auth, Method};
        let ark = Ark {
            vendor: Vendor::ModelArk,
        };
        let inputs = [url_input("image1_file", "https://in/first.png")];
        let request = with_job(
            "i2v",
            "seedance-up",
            json!({"prompt": "p", "ratio": "16:9", "duration": 5}),
            &inputs,
            |job| ark.submit_request(job, "https://ark.example/api/v3/"),
        );
        assert_eq!(request.method, Method::Post);
        assert_eq!(
            request.url,
            "https://ark.example/api/v3/contents/generations/tasks"
        );
        assert_eq!(request.auth, Auth::Bearer);
        assert_eq!(
            request.body,
            Some(
                json!({"model": "seedance-up", "ratio": "16:9", "duration": 5, "content": [
                    {"type": "text", "text": "p"},
                    {"type": "image_url", "image_url": {"url": "https://in/first.png"}, "role": "first_frame"},
                ]})
            )
        );
        assert_eq!(
            ark.parse_submit(&json!({"id": "cgt-2025"})).unwrap(),
            "cgt-2025"
        );
        assert!(ark.parse_submit(&json!({"id": ""})).is_err());
        assert_eq!(
            ark.poll_request("https://ark.example/api/v3", "cgt-2025")
                .unwrap()
                .url,
            "https://ark.example/api/v3/contents/generations/tasks/cgt-2025"
        );
        assert_eq!(
            ark.error_message(&json!({"error": {"code": "InvalidParameter", "message": "ratio"}})),
            Some("InvalidParameter: ratio".into())
        );
        assert_eq!(ark.error_message(&Value::Null), None);
        assert!(ark.fetches_inputs_by_url());
    }
}
