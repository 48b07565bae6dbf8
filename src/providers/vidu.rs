//! Vidu (`api.vidu.cn` / `api.vidu.com`): `Authorization: Token <key>`; text-to-video at
//! `POST /ent/v2/text2video`, one image at `/ent/v2/img2video` (start frame), two at
//! `/ent/v2/start-end2video` (start and end frames); the task at `GET /ent/v2/tasks/{id}/creations`
//! with `creations[].url` (video) and `cover_url`. Our `off_peak` (`Y`/`N`, as the seed spells it)
//! is the vendor's boolean `off_peak`; our `ratio` is its `aspect_ratio`. Images travel inline as
//! `data:` URIs (Vidu accepts them up to a 20 MB request).

use serde_json::{Value, json};

use super::ProviderError;
use super::media::{MediaAdapter, MediaJob, MediaOutput, OutputBody, OutputRole, PollOutcome};
use super::transport::{Auth, VendorRequest};
use crate::vendor::Vendor;

/// The Vidu adapter.
#[derive(Debug, Clone, Copy)]
pub struct Vidu;

impl MediaAdapter for Vidu {
    fn vendor(&self) -> Vendor {
        Vendor::Vidu
    }

    fn submit_request(&self, job: &MediaJob<'_>, base_url: &str) -> VendorRequest {
        let (path, body) = request(job);
        VendorRequest::post(
            format!("{}{path}", base_url.trim_end_matches('/')),
            Auth::Token,
            body,
        )
    }

    /// The `task_id` (a string or a number).
    fn parse_submit(&self, body: &Value) -> Result<String, ProviderError> {
        match &body["task_id"] {
            Value::String(id) if !id.is_empty() => Ok(id.clone()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(ProviderError::Decode(
                "Vidu answered without a task_id".into(),
            )),
        }
    }

    fn poll_request(&self, base_url: &str, vendor_task_id: &str) -> Option<VendorRequest> {
        Some(VendorRequest::get(
            format!(
                "{}/ent/v2/tasks/{vendor_task_id}/creations",
                base_url.trim_end_matches('/')
            ),
            Auth::Token,
        ))
    }

    fn parse_poll(&self, _job: &MediaJob<'_>, _vendor_task_id: &str, body: &Value) -> PollOutcome {
        outcome(body)
    }

    /// `reason` (or `code`) and `message`.
    fn error_message(&self, body: &Value) -> Option<String> {
        let reason = body["reason"]
            .as_str()
            .or(body["code"].as_str())
            .unwrap_or("");
        let message = body["message"].as_str().unwrap_or("");
        (!(reason.is_empty() && message.is_empty())).then(|| format!("{reason}: {message}"))
    }
}

/// The endpoint and body for a job.
pub fn request(job: &MediaJob<'_>) -> (&'static str, Value) {
    let images: Vec<Value> = [
        "image_file1",
        "image_file2",
        "image_file",
        "image1_file",
        "image2_file",
    ]
    .iter()
    .flat_map(|field| job.inputs_of(field))
    .map(|i| Value::String(i.data.url_or_data_uri()))
    .collect();
    let path = match images.len() {
        0 => "/ent/v2/text2video",
        1 => "/ent/v2/img2video",
        _ => "/ent/v2/start-end2video",
    };
    let mut body = json!({
        "model": job.upstream_model,
        "prompt": job.str_param("prompt").unwrap_or_default(),
        "off_peak": job.str_param("off_peak").is_some_and(|v| v.eq_ignore_ascii_case("Y")),
    });
    if !images.is_empty() {
        body["images"] = Value::Array(images);
    }
    if let Some(duration) = job.int_param("duration") {
        body["duration"] = json!(duration);
    }
    if let Some(resolution) = job.str_param("resolution") {
        body["resolution"] = json!(resolution.to_ascii_lowercase());
    }
    // Image modes follow the image's shape.
    if path == "/ent/v2/text2video"
        && let Some(ratio) = job.str_param("ratio")
    {
        body["aspect_ratio"] = json!(ratio);
    }
    (path, body)
}

/// Map a creations query to our outcome.
pub fn outcome(body: &Value) -> PollOutcome {
    match body["state"].as_str().unwrap_or("") {
        "created" | "queueing" => PollOutcome::Pending,
        "processing" => PollOutcome::Running,
        "success" => {
            let creation = &body["creations"][0];
            match creation["url"].as_str() {
                Some(url) => {
                    let mut outputs = vec![MediaOutput {
                        role: OutputRole::Video,
                        body: OutputBody::Url(url.to_owned()),
                    }];
                    if let Some(cover) = creation["cover_url"].as_str().filter(|c| !c.is_empty()) {
                        outputs.push(MediaOutput {
                            role: OutputRole::Cover,
                            body: OutputBody::Url(cover.to_owned()),
                        });
                    }
                    PollOutcome::Succeeded(outputs)
                }
                None => PollOutcome::Failed("the vendor returned no video".into()),
            }
        }
        "failed" => PollOutcome::Failed(match body["err_code"].as_str() {
            Some(code) if !code.is_empty() => format!("Vidu: {code}"),
            _ => "the vendor failed the task".into(),
        }),
        _ => PollOutcome::Running,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_map() {
        assert!(matches!(
            outcome(&json!({"state": "queueing"})),
            PollOutcome::Pending
        ));
        assert!(matches!(
            outcome(&json!({"state": "processing"})),
            PollOutcome::Running
        ));
        assert!(
            matches!(outcome(&json!({"state": "success", "creations": [{"url": "u", "cover_url": "c"}]})), PollOutcome::Succeeded(v) if v.len() == 2)
        );
        assert!(
            matches!(outcome(&json!({"state": "failed", "err_code": "CreationPolicyViolation"})), PollOutcome::Failed(m) if m.contains("CreationPolicyViolation"))
        );
    }

    #[test]
    fn requests_and_answers() {
        use crate::providers::media::testing::{url_input, with_job};
        use crate::providers::transport::Auth;
        let inputs = [
            url_input("image_file1", "https://in/a.png"),
            url_input("image_file2", "https://in/b.png"),
        ];
        let request = with_job(
            "i2v",
            "viduq1",
            json!({"prompt": "p", "off_peak": "Y", "resolution": "1080P", "duration": 5, "ratio": "16:9"}),
            &inputs,
            |job| Vidu.submit_request(job, "https://api.vidu.cn/"),
        );
        assert_eq!(request.url, "https://api.vidu.cn/ent/v2/start-end2video");
        assert_eq!(request.auth, Auth::Token);
        assert_eq!(
            request.body,
            Some(
                json!({"model": "viduq1", "prompt": "p", "off_peak": true, "duration": 5,
                "resolution": "1080p", "images": ["https://in/a.png", "https://in/b.png"]})
            )
        );
        assert_eq!(
            Vidu.parse_submit(&json!({"task_id": "8766"})).unwrap(),
            "8766"
        );
        assert_eq!(
            Vidu.parse_submit(&json!({"task_id": 8766})).unwrap(),
            "8766"
        );
        assert!(Vidu.parse_submit(&json!({"state": "created"})).is_err());
        assert_eq!(
            Vidu.poll_request("https://api.vidu.cn", "8766")
                .unwrap()
                .url,
            "https://api.vidu.cn/ent/v2/tasks/8766/creations"
        );
        assert_eq!(
            Vidu.error_message(&json!({"reason": "TaskPromptPolicyViolation", "message": "m"})),
            Some("TaskPromptPolicyViolation: m".into())
        );
        assert_eq!(Vidu.error_message(&Value::Null), None);
    }
}
