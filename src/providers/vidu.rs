//! Vidu (`api.vidu.cn` / `api.vidu.com`): `Authorization: Token <key>`; text-to-video at
//! `POST /ent/v2/text2video`, one image at `/ent/v2/img2video` (start frame), two at
//! `/ent/v2/start-end2video` (start and end frames); the task at `GET /ent/v2/tasks/{id}/creations`
//! with `creations[].url` (video) and `cover_url`. Our `off_peak` (`Y`/`N`, as the seed spells it)
//! is the vendor's boolean `off_peak`; our `ratio` is its `aspect_ratio`. Images travel inline as
//! `data:` URIs (Vidu accepts them up to a 20 MB request).

use std::time::Duration;

use serde_json::{Value, json};

use super::ProviderError;
use super::media::{MediaJob, MediaOutput, OutputBody, OutputRole, PollOutcome};

/// The Vidu adapter.
#[derive(Debug, Clone)]
pub struct ViduMedia {
    http: reqwest::Client,
    delays: (Duration, Duration),
    /// How long creating a vendor task may take before the channel counts as failed.
    submit_timeout: Duration,
}

impl ViduMedia {
    pub fn new(
        http: reqwest::Client,
        delays: (Duration, Duration),
        submit_timeout: Duration,
    ) -> ViduMedia {
        ViduMedia {
            http,
            delays,
            submit_timeout,
        }
    }

    pub fn poll_delays(&self) -> (Duration, Duration) {
        self.delays
    }

    pub async fn submit(&self, job: &MediaJob<'_>) -> Result<String, ProviderError> {
        let channel = job.channel()?;
        let (path, body) = request(job);
        let response = self
            .http
            .post(format!("{}{path}", channel.base_url.trim_end_matches('/')))
            .header(
                reqwest::header::AUTHORIZATION,
                format!("Token {}", channel.api_key.expose()),
            )
            .timeout(self.submit_timeout)
            .json(&body)
            .send()
            .await
            .map_err(ProviderError::from_reqwest)?;
        let body = read_json(response).await?;
        match &body["task_id"] {
            Value::String(id) if !id.is_empty() => Ok(id.clone()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(ProviderError::Decode(
                "Vidu answered without a task_id".into(),
            )),
        }
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
                "{}/ent/v2/tasks/{vendor_task_id}/creations",
                channel.base_url.trim_end_matches('/')
            ))
            .header(
                reqwest::header::AUTHORIZATION,
                format!("Token {}", channel.api_key.expose()),
            )
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(ProviderError::from_reqwest)?;
        Ok(outcome(&read_json(response).await?))
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

async fn read_json(response: reqwest::Response) -> Result<Value, ProviderError> {
    let status = response.status();
    let text = response.text().await.map_err(ProviderError::from_reqwest)?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !status.is_success() {
        let reason = body["reason"]
            .as_str()
            .or(body["code"].as_str())
            .unwrap_or("");
        let message = body["message"].as_str().unwrap_or("");
        return Err(ProviderError::Status {
            status: status.as_u16(),
            message: if reason.is_empty() && message.is_empty() {
                format!("HTTP {}", status.as_u16())
            } else {
                format!("{reason}: {message}")
            },
        });
    }
    if !body.is_object() {
        return Err(ProviderError::Decode("Vidu sent a non-JSON answer".into()));
    }
    Ok(body)
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
}
