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
use super::media::{
    MediaAdapter, MediaJob, MediaOutput, OutputBody, OutputRole, PROBE_TASK_ID, PollOutcome,
};
use super::transport::{Auth, VendorRequest};
use crate::vendor::Vendor;

/// The Zhipu image adapter.
#[derive(Debug, Clone, Copy)]
pub struct Zhipu;

impl MediaAdapter for Zhipu {
    fn vendor(&self) -> Vendor {
        Vendor::Zhipu
    }

    fn submit_request(&self, job: &MediaJob<'_>, base_url: &str) -> VendorRequest {
        VendorRequest::post(
            format!("{}/images/generations", base_url.trim_end_matches('/')),
            Auth::Bearer,
            request_body(job),
        )
    }

    /// The image's URL (`data[0].url`), which stands for the vendor task id.
    fn parse_submit(&self, body: &Value) -> Result<String, ProviderError> {
        body.pointer("/data/0/url")
            .and_then(Value::as_str)
            .filter(|u| u.starts_with("http"))
            .map(str::to_owned)
            .ok_or_else(|| ProviderError::Decode("CogView answered without data[0].url".into()))
    }

    /// No query: the image is there.
    fn poll_request(&self, _base_url: &str, _vendor_task_id: &str) -> Option<VendorRequest> {
        None
    }

    /// The image is there: its URL is the id `submit` returned.
    fn parse_poll(&self, _job: &MediaJob<'_>, vendor_task_id: &str, _body: &Value) -> PollOutcome {
        PollOutcome::Succeeded(vec![MediaOutput {
            role: OutputRole::Image,
            body: OutputBody::Url(vendor_task_id.to_owned()),
        }])
    }

    /// `error.code` (a string or a number) and `error.message`.
    fn error_message(&self, body: &Value) -> Option<String> {
        let error = &body["error"];
        let code = match &error["code"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        let message = error["message"].as_str().unwrap_or("");
        (!(code.is_empty() && message.is_empty())).then(|| format!("{code}: {message}"))
    }

    /// The result is ready when `submit` returns: poll at once.
    fn poll_delays(&self, _configured: (Duration, Duration)) -> (Duration, Duration) {
        (Duration::from_millis(1), Duration::from_secs(5))
    }

    /// The call makes the image.
    fn submit_timeout(&self, _configured: Duration) -> Duration {
        Duration::from_secs(120)
    }

    /// Zhipu's async-result query of a task that cannot exist.
    fn probe_request(&self, base_url: &str) -> VendorRequest {
        VendorRequest::get(
            format!(
                "{}/async-result/{PROBE_TASK_ID}",
                base_url.trim_end_matches('/')
            ),
            Auth::Bearer,
        )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::media::testing::with_job;

    #[test]
    fn requests_and_answers() {
        let request = with_job(
            "t2i",
            "cogview-3-flash",
            json!({"prompt": "猫", "negative_prompt": "狗", "size": "1024x1024"}),
            &[],
            |job| Zhipu.submit_request(job, "https://open.bigmodel.cn/api/paas/v4/"),
        );
        assert_eq!(
            request.url,
            "https://open.bigmodel.cn/api/paas/v4/images/generations"
        );
        assert_eq!(request.auth, Auth::Bearer);
        assert_eq!(
            request.body,
            Some(
                json!({"model": "cogview-3-flash", "prompt": "猫\n不要出现 / avoid: 狗", "size": "1024x1024"})
            )
        );
        let answer =
            json!({"created": 1, "data": [{"url": "https://aigc-files.bigmodel.cn/x.png"}]});
        let url = Zhipu.parse_submit(&answer).unwrap();
        assert_eq!(url, "https://aigc-files.bigmodel.cn/x.png");
        assert!(Zhipu.poll_request("https://b", &url).is_none());
        let outcome = with_job("t2i", "cogview-3-flash", json!({}), &[], |job| {
            Zhipu.parse_poll(job, &url, &Value::Null)
        });
        assert!(
            matches!(outcome, PollOutcome::Succeeded(v) if matches!(&v[0].body, OutputBody::Url(u) if *u == url))
        );
        assert_eq!(
            Zhipu.error_message(&json!({"error": {"code": 1301, "message": "unsafe"}})),
            Some("1301: unsafe".into())
        );
        assert_eq!(Zhipu.error_message(&Value::Null), None);
        assert_eq!(
            Zhipu.probe_request("https://b/api/paas/v4").url,
            "https://b/api/paas/v4/async-result/llmage-channel-test-0"
        );
    }
}
