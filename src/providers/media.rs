//! Async media generation (image/video tasks) across vendors: what a job is, what a poll can
//! answer, and [`MediaBackend`], the one place that dispatches to a vendor's adapter.

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value};

use super::ProviderError;
use super::ark::ArkMedia;
use super::dashscope::DashScopeMedia;
use super::sandbox::SandboxMedia;
use super::vidu::ViduMedia;
use super::zhipu::ZhipuMedia;
use crate::catalog::Model;
use crate::channels::Channel;
use crate::vendor::Vendor;

/// One task as a vendor adapter sees it.
#[derive(Debug, Clone, Copy)]
pub struct MediaJob<'a> {
    pub task_id: &'a str,
    pub model: &'a Model,
    /// The vendor's name for the model (the channel's mapping, else our id).
    pub upstream_model: &'a str,
    pub category: &'a str,
    /// Checked parameters, defaults filled in (`model`, `catelogid` and file fields excluded).
    pub params: &'a Map<String, Value>,
    /// Input files in the order the client gave them. Filled on submit; empty on poll.
    pub inputs: &'a [JobInput],
    /// The vendor account (base URL, key); `None` for the sandbox.
    pub channel: Option<&'a Channel>,
}

impl MediaJob<'_> {
    /// The inputs sent under one of the seed's file field names (`image_file`, `image_files`, …).
    pub fn inputs_of<'s>(&'s self, field: &'s str) -> impl Iterator<Item = &'s JobInput> + 's {
        self.inputs.iter().filter(move |i| i.field == field)
    }

    /// The channel, or a configuration error for adapters that need one.
    pub fn channel(&self) -> Result<&Channel, ProviderError> {
        self.channel
            .ok_or_else(|| ProviderError::Event("internal: a vendor task without a channel".into()))
    }

    /// A string parameter.
    pub fn str_param(&self, name: &str) -> Option<&str> {
        self.params.get(name).and_then(Value::as_str)
    }

    /// An integer parameter.
    pub fn int_param(&self, name: &str) -> Option<i64> {
        self.params.get(name).and_then(Value::as_i64)
    }
}

/// An input file for a vendor: a URL the client gave, or bytes we stored.
#[derive(Debug, Clone)]
pub struct JobInput {
    /// The submission's field name.
    pub field: String,
    pub data: InputData,
    /// Our public link to a stored input (`{public_base_url}/idfile?path=…`), for vendors that
    /// only take URLs for some media; `None` without `public_base_url` or for client URLs.
    pub public_url: Option<String>,
}

/// Where an input's bytes are.
#[derive(Debug, Clone)]
pub enum InputData {
    Url(String),
    Bytes { bytes: Bytes, mime: String },
}

impl InputData {
    /// The URL, or the bytes as a `data:<mime>;base64,…` URI (what the vendors accept inline).
    pub fn url_or_data_uri(&self) -> String {
        match self {
            InputData::Url(url) => url.clone(),
            InputData::Bytes { bytes, mime } => format!(
                "data:{mime};base64,{}",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            ),
        }
    }
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
    DashScope(DashScopeMedia),
    Zhipu(ZhipuMedia),
    /// Volcengine Ark and BytePlus ModelArk.
    Ark(ArkMedia),
    Vidu(ViduMedia),
}

impl MediaBackend {
    /// The vendor recorded on the task.
    pub fn vendor(&self) -> Vendor {
        match self {
            MediaBackend::Sandbox(_) => Vendor::Sandbox,
            MediaBackend::DashScope(_) => Vendor::DashScope,
            MediaBackend::Zhipu(_) => Vendor::Zhipu,
            MediaBackend::Ark(a) => a.vendor(),
            MediaBackend::Vidu(_) => Vendor::Vidu,
        }
    }

    /// Hand the task to the vendor; returns the vendor's task id.
    pub async fn submit(&self, job: &MediaJob<'_>) -> Result<String, ProviderError> {
        match self {
            MediaBackend::Sandbox(s) => Ok(s.submit(job)),
            MediaBackend::DashScope(d) => d.submit(job).await,
            MediaBackend::Zhipu(z) => z.submit(job).await,
            MediaBackend::Ark(a) => a.submit(job).await,
            MediaBackend::Vidu(v) => v.submit(job).await,
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
            MediaBackend::DashScope(d) => d.poll(job, vendor_task_id).await,
            MediaBackend::Zhipu(z) => Ok(z.poll(vendor_task_id)),
            MediaBackend::Ark(a) => a.poll(job, vendor_task_id).await,
            MediaBackend::Vidu(v) => v.poll(job, vendor_task_id).await,
        }
    }

    /// First poll delay and the longest one (polls back off in between).
    pub fn poll_delays(&self) -> (std::time::Duration, std::time::Duration) {
        use std::time::Duration;
        match self {
            MediaBackend::Sandbox(_) => (Duration::from_millis(200), Duration::from_millis(1000)),
            MediaBackend::DashScope(d) => d.poll_delays(),
            MediaBackend::Zhipu(z) => z.poll_delays(),
            MediaBackend::Ark(a) => a.poll_delays(),
            MediaBackend::Vidu(v) => v.poll_delays(),
        }
    }
}
