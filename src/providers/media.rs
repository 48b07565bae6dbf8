//! Async media generation (image/video tasks) across vendors: what a job is, what a poll can
//! answer, and [`MediaBackend`], the one place that dispatches to a vendor's adapter.

use bytes::Bytes;
use serde_json::{Map, Value};

use super::ProviderError;
use super::sandbox::SandboxMedia;
use crate::catalog::Model;
use crate::tasks::TaskInput;

/// One task as a vendor adapter sees it.
#[derive(Debug, Clone, Copy)]
pub struct MediaJob<'a> {
    pub task_id: &'a str,
    pub model: &'a Model,
    /// The vendor's name for the model.
    pub upstream_model: &'a str,
    pub category: &'a str,
    /// Checked parameters, defaults filled in.
    pub params: &'a Map<String, Value>,
    pub inputs: &'a [TaskInput],
}

/// What a result file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputRole {
    Image,
    Video,
    /// The cover (first frame) of a video.
    Cover,
}

/// A result: a (short-lived) vendor URL to download, or bytes already in hand.
#[derive(Debug, Clone)]
pub enum OutputBody {
    Url(String),
    Bytes { bytes: Bytes, mime: String },
}

/// One result file.
#[derive(Debug, Clone)]
pub struct MediaOutput {
    pub role: OutputRole,
    pub body: OutputBody,
}

/// The answer to a poll.
#[derive(Debug, Clone)]
pub enum PollOutcome {
    Pending,
    Running,
    Succeeded(Vec<MediaOutput>),
    /// The vendor gave up on the task; the reason is shown to the user.
    Failed(String),
}

/// A media vendor adapter.
#[derive(Debug, Clone)]
pub enum MediaBackend {
    Sandbox(SandboxMedia),
}

impl MediaBackend {
    /// Vendor name recorded on the task.
    pub fn vendor(&self) -> &'static str {
        match self {
            MediaBackend::Sandbox(_) => "sandbox",
        }
    }

    /// Hand the task to the vendor; returns the vendor's task id.
    pub async fn submit(&self, job: &MediaJob<'_>) -> Result<String, ProviderError> {
        match self {
            MediaBackend::Sandbox(s) => Ok(s.submit(job)),
        }
    }

    /// Ask the vendor how the task stands.
    pub async fn poll(
        &self,
        job: &MediaJob<'_>,
        vendor_task_id: &str,
    ) -> Result<PollOutcome, ProviderError> {
        match self {
            MediaBackend::Sandbox(s) => s.poll(job, vendor_task_id).await,
        }
    }

    /// First poll delay and the longest one (polls back off in between).
    pub fn poll_delays(&self) -> (std::time::Duration, std::time::Duration) {
        use std::time::Duration;
        match self {
            MediaBackend::Sandbox(_) => (Duration::from_millis(200), Duration::from_millis(1000)),
        }
    }
}
