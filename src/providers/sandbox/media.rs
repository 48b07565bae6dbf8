//! Sandbox images and videos: a task "queues" for the first quarter of its configured time,
//! "runs" for the rest, then succeeds with a real PNG (t2i) or a real H.264 MP4 of the requested
//! duration and aspect plus a JPEG cover (video categories). The vendor task id carries the
//! submission time, so progress survives a restart of the gateway exactly like a real vendor's.

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::media;
use crate::providers::ProviderError;
use crate::providers::media::{MediaJob, MediaOutput, OutputBody, OutputRole, PollOutcome};
use crate::util::clock::now_ms;

/// Offline image/video generation with realistic timing.
#[derive(Debug, Clone)]
pub struct SandboxMedia {
    /// Total time of an image task.
    pub image_time: Duration,
    /// Total time of a video task.
    pub video_time: Duration,
}

/// Side of the square sandbox image.
const IMAGE_SIDE: u32 = 512;

impl SandboxMedia {
    /// Accept a task; the id records when.
    pub fn submit(&self, job: &MediaJob<'_>) -> String {
        format!("sbx-{}-{}", now_ms(), job.task_id)
    }

    /// Where a task stands; on success, its media.
    pub async fn poll(
        &self,
        job: &MediaJob<'_>,
        vendor_task_id: &str,
    ) -> Result<PollOutcome, ProviderError> {
        let submitted: i64 = vendor_task_id
            .strip_prefix("sbx-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| {
                ProviderError::Decode(format!("not a sandbox task id: {vendor_task_id}"))
            })?;
        let total = if job.category == "t2i" {
            self.image_time
        } else {
            self.video_time
        };
        let total_ms = i64::try_from(total.as_millis()).unwrap_or(i64::MAX);
        let elapsed = now_ms() - submitted;
        if elapsed < total_ms / 4 {
            return Ok(PollOutcome::Pending);
        }
        if elapsed < total_ms {
            return Ok(PollOutcome::Running);
        }
        let prompt = job
            .params
            .get("prompt")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if job.category == "t2i" {
            let png = tokio::task::spawn_blocking(move || {
                media::sandbox_image(&prompt, IMAGE_SIDE, IMAGE_SIDE)
            })
            .await
            .map_err(|e| ProviderError::Decode(e.to_string()))?
            .map_err(|e| ProviderError::Decode(e.to_string()))?;
            return Ok(PollOutcome::Succeeded(vec![MediaOutput {
                role: OutputRole::Image,
                body: OutputBody::Bytes {
                    bytes: Bytes::from(png),
                    mime: "image/png".into(),
                },
            }]));
        }
        let ratio = aspect_ratio(job.params);
        let seconds = job
            .params
            .get("duration")
            .and_then(Value::as_i64)
            .unwrap_or(5)
            .clamp(1, 60) as u32;
        let video =
            tokio::task::spawn_blocking(move || media::sandbox_video(&prompt, &ratio, seconds))
                .await
                .map_err(|e| ProviderError::Decode(e.to_string()))?
                .map_err(|e| ProviderError::Decode(e.to_string()))?;
        Ok(PollOutcome::Succeeded(vec![
            MediaOutput {
                role: OutputRole::Video,
                body: OutputBody::Bytes {
                    bytes: Bytes::from(video.mp4),
                    mime: "video/mp4".into(),
                },
            },
            MediaOutput {
                role: OutputRole::Cover,
                body: OutputBody::Bytes {
                    bytes: Bytes::from(video.cover_jpeg),
                    mime: "image/jpeg".into(),
                },
            },
        ]))
    }
}

/// The aspect ratio asked for: `ratio`, or the shape of Wan's `size` (`1280*720` → 16:9).
fn aspect_ratio(params: &serde_json::Map<String, Value>) -> String {
    if let Some(r) = params.get("ratio").and_then(Value::as_str) {
        return r.to_owned();
    }
    let Some((w, h)) = params
        .get("size")
        .and_then(Value::as_str)
        .and_then(|s| s.split_once('*'))
    else {
        return "16:9".into();
    };
    let (Ok(w), Ok(h)) = (w.parse::<f64>(), h.parse::<f64>()) else {
        return "16:9".into();
    };
    let r = w / h;
    [
        ("16:9", 16.0 / 9.0),
        ("4:3", 4.0 / 3.0),
        ("1:1", 1.0),
        ("3:4", 0.75),
        ("9:16", 9.0 / 16.0),
    ]
    .iter()
    .min_by(|a, b| (a.1 - r).abs().total_cmp(&(b.1 - r).abs()))
    .map(|(name, _)| (*name).to_owned())
    .unwrap_or_else(|| "16:9".into())
}
