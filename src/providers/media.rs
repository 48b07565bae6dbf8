//! Async media generation (image/video tasks) across vendors: what a job is, what a poll can
//! answer, [`MediaAdapter`] (a vendor's protocol as pure functions) and [`MediaBackend`], which
//! runs an adapter over the shared [`Transport`] (or the offline sandbox).

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value};

use std::time::Duration;

use super::ProviderError;
use super::sandbox::SandboxMedia;
use super::transport::{POLL_TIMEOUT, Transport, VendorRequest};
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

/// A media vendor's protocol as pure functions: the requests it takes and what its answers
/// mean. No I/O: the [`Transport`] sends the requests (with the channel's key, which no request
/// carries) and reads the answers, so each function can be tested on recorded vendor payloads.
/// `providers::media_adapter` maps each [`Vendor`] to its adapter.
pub trait MediaAdapter: Send + Sync + 'static {
    /// The vendor it speaks for.
    fn vendor(&self) -> Vendor;

    /// The request that creates the vendor task (`base_url`: the channel's).
    fn submit_request(&self, job: &MediaJob<'_>, base_url: &str) -> VendorRequest;

    /// The vendor's task id in its answer to the submission.
    fn parse_submit(&self, body: &Value) -> Result<String, ProviderError>;

    /// The task query; `None` when the answer is known without one (see [`Self::parse_poll`]).
    fn poll_request(&self, base_url: &str, vendor_task_id: &str) -> Option<VendorRequest>;

    /// What a task query answered (`Value::Null` when [`Self::poll_request`] made none).
    fn parse_poll(&self, job: &MediaJob<'_>, vendor_task_id: &str, body: &Value) -> PollOutcome;

    /// The message in the vendor's error body (`Value::Null` when it was not JSON), if any.
    fn error_message(&self, body: &Value) -> Option<String>;

    /// First poll delay and the longest one, given the configured ones.
    fn poll_delays(&self, configured: (Duration, Duration)) -> (Duration, Duration) {
        configured
    }

    /// How long a submission may take, given the configured time.
    fn submit_timeout(&self, configured: Duration) -> Duration {
        configured
    }

    /// The free read call that tests a channel's key (the console's "测试"): by default the task
    /// query of a task that cannot exist (else a GET of the base URL).
    fn probe_request(&self, base_url: &str) -> VendorRequest {
        self.poll_request(base_url, PROBE_TASK_ID)
            .unwrap_or_else(|| {
                VendorRequest::get(base_url.to_owned(), super::transport::Auth::Bearer)
            })
    }

    /// Whether the vendor fetches uploaded inputs by URL only (it then needs `public_base_url`
    /// for our signed `/idfile` links).
    fn fetches_inputs_by_url(&self) -> bool {
        false
    }
}

/// The task id a channel test asks about.
pub const PROBE_TASK_ID: &str = "llmage-channel-test-0";

/// A vendor's media backend: the offline sandbox, or an adapter over the shared transport.
#[derive(Clone)]
pub enum MediaBackend {
    Sandbox(SandboxMedia),
    Vendor {
        adapter: &'static dyn MediaAdapter,
        transport: Transport,
    },
}

impl std::fmt::Debug for MediaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MediaBackend")
            .field(&self.vendor().as_str())
            .finish()
    }
}

impl MediaBackend {
    /// The backend of `vendor`, if it makes images or videos.
    pub fn of(
        vendor: Vendor,
        transport: &Transport,
        sandbox: &SandboxMedia,
    ) -> Option<MediaBackend> {
        match vendor {
            Vendor::Sandbox => Some(MediaBackend::Sandbox(sandbox.clone())),
            _ => super::media_adapter(vendor).map(|adapter| MediaBackend::Vendor {
                adapter,
                transport: transport.clone(),
            }),
        }
    }

    /// The vendor recorded on the task.
    pub fn vendor(&self) -> Vendor {
        match self {
            MediaBackend::Sandbox(_) => Vendor::Sandbox,
            MediaBackend::Vendor { adapter, .. } => adapter.vendor(),
        }
    }

    /// Hand the task to the vendor; returns the vendor's task id.
    pub async fn submit(&self, job: &MediaJob<'_>) -> Result<String, ProviderError> {
        match self {
            MediaBackend::Sandbox(s) => Ok(s.submit(job)),
            MediaBackend::Vendor { adapter, transport } => {
                let channel = job.channel()?;
                let request = adapter.submit_request(job, &channel.base_url);
                let timeout = adapter.submit_timeout(transport.submit_timeout);
                let body = transport
                    .call(adapter.vendor(), channel, request, timeout, &|body| {
                        adapter.error_message(body)
                    })
                    .await?;
                adapter.parse_submit(&body)
            }
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
            MediaBackend::Vendor { adapter, transport } => {
                let channel = job.channel()?;
                let body = match adapter.poll_request(&channel.base_url, vendor_task_id) {
                    Some(request) => {
                        transport
                            .call(adapter.vendor(), channel, request, POLL_TIMEOUT, &|body| {
                                adapter.error_message(body)
                            })
                            .await?
                    }
                    None => Value::Null,
                };
                Ok(adapter.parse_poll(job, vendor_task_id, &body))
            }
        }
    }

    /// First poll delay and the longest one (polls back off in between).
    pub fn poll_delays(&self) -> (Duration, Duration) {
        match self {
            MediaBackend::Sandbox(_) => (Duration::from_millis(200), Duration::from_millis(1000)),
            MediaBackend::Vendor { adapter, transport } => {
                adapter.poll_delays(transport.poll_delays)
            }
        }
    }
}

/// Jobs for the adapters' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Run `f` on a job of the catalog's first model with these fields.
    pub fn with_job<R>(
        category: &str,
        upstream_model: &str,
        params: Value,
        inputs: &[JobInput],
        f: impl FnOnce(&MediaJob<'_>) -> R,
    ) -> R {
        let catalog = crate::catalog::Catalog::builtin().unwrap();
        let model = catalog.models()[0].clone();
        let params = params.as_object().cloned().unwrap_or_default();
        f(&MediaJob {
            task_id: "task-1",
            model: &model,
            upstream_model,
            category,
            params: &params,
            inputs,
            channel: None,
        })
    }

    /// A client's input URL under a field.
    pub fn url_input(field: &str, url: &str) -> JobInput {
        JobInput {
            field: field.into(),
            data: InputData::Url(url.into()),
            public_url: None,
        }
    }
}
