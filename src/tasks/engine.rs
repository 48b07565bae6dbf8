//! The task engine: leases due tasks from the database, sends new ones to their vendor, polls
//! running ones with per-vendor backoff and concurrency limits, archives results, settles or
//! releases the reservation, and fails tasks past their deadline (refunded).
//!
//! Crash safety: every step is a guarded update of the task row, so a restarted process resumes
//! where the rows say. Money is exactly-once because a reservation closes once (settle/release
//! check its state). The one window that can make a vendor see a task twice is between sending it
//! and recording the vendor's task id: `submit_started_at` is written durably just before the send
//! and the id right after the answer, so the window is one vendor round trip. A crash inside it
//! leaves a CREATED task with `submit_started_at` set; it is sent again after restart (logged),
//! which may cost one duplicate vendor job but never a second charge to the user.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::store::TaskStore;
use super::{Task, TaskResult, TaskStatus};
use crate::billing::ledger::Ledger;
use crate::channels::{Channel, ChannelTable, Channels, Route};
use crate::providers::ProviderError;
use crate::providers::media::{
    InputData, JobInput, MediaBackend, MediaJob, MediaOutput, OutputBody, OutputRole, PollOutcome,
};
use crate::storage::files::{FileKind, FileStore};
use crate::storage::staging::{StagedFile, StagingError};
use crate::util::clock::now_ms;
use crate::vendor::Vendor;

/// Why archiving a finished task's results failed this time (the task is released and retried).
#[derive(Debug, thiserror::Error)]
enum ArchiveError {
    #[error(transparent)]
    Store(#[from] crate::storage::StoreError),
    #[error(transparent)]
    File(#[from] crate::storage::files::FileError),
    #[error(transparent)]
    Ledger(#[from] crate::billing::ledger::LedgerError),
    #[error("download failed: {0}")]
    Download(reqwest::Error),
    #[error("download answered HTTP {0}")]
    Status(reqwest::StatusCode),
    #[error("result file too large")]
    TooLarge,
    #[error("cannot store the result: {0}")]
    Staging(StagingError),
}

/// Most tasks in work at once in this process.
const CAPACITY: usize = 256;
/// How long a signed link to an input file works (the vendor fetches it after we submit).
pub const INPUT_LINK_SECS: i64 = 2 * 3600;
/// Submission attempts before a task fails.
const MAX_SUBMIT_ATTEMPTS: i64 = 5;
/// Largest picture read back into memory to make its gallery thumbnail.
const MAX_THUMBNAIL_SOURCE: u64 = 64 * 1024 * 1024;
/// Largest result file we download.
const MAX_RESULT_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// The engine's parts.
pub struct Engine {
    pub store: TaskStore,
    pub ledger: Ledger,
    pub files: FileStore,
    /// Channels and the catalog they extend.
    pub channels: Arc<Channels>,
    /// Consecutive failures per channel; repeated ones cool a channel off.
    pub health: Arc<crate::channels::ChannelHealth>,
    /// Vendor → adapter.
    pub backends: HashMap<Vendor, MediaBackend>,
    /// Vendor → concurrent calls allowed.
    pub limits: HashMap<Vendor, Arc<Semaphore>>,
    pub http: reqwest::Client,
    pub wake: Arc<Notify>,
    /// This process's lease name.
    pub owner: String,
    pub inflight: AtomicUsize,
    /// Ids of the tasks this process is stepping now. A step that outlives its lease (a slow
    /// download on a loaded machine) lets the claim query hand the same task out again; it is
    /// not stepped a second time beside itself.
    pub stepping: std::sync::Mutex<std::collections::HashSet<String>>,
    /// How long a process owns a task it works on; a process that dies holding a lease has its
    /// tasks taken over by another once this passes. Long steps (downloads) renew it.
    pub lease: Duration,
    /// Base of our public links (`public_base_url`), for inputs vendors must fetch by URL.
    pub public_base_url: Option<String>,
    /// Signs those links (valid for [`INPUT_LINK_SECS`]).
    pub links: crate::secrets::LinkSigner,
    pub tracker: TaskTracker,
}

impl Engine {
    /// Run until `stop`; in-flight steps finish (they are tracked).
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            let room = CAPACITY.saturating_sub(self.inflight.load(Ordering::Relaxed));
            let claimed = if room == 0 {
                Vec::new()
            } else {
                match self
                    .store
                    .claim_due(&self.owner, room as i64, self.lease_ms())
                    .await
                {
                    Ok(tasks) => tasks,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot claim tasks");
                        Vec::new()
                    }
                }
            };
            let full = claimed.len() == room && room > 0;
            for task in claimed {
                if !self.start_stepping(&task.id) {
                    continue;
                }
                self.inflight.fetch_add(1, Ordering::Relaxed);
                let engine = self.clone();
                self.tracker.spawn(async move {
                    let id = task.id.clone();
                    engine.step(task).await;
                    engine.stop_stepping(&id);
                    engine.inflight.fetch_sub(1, Ordering::Relaxed);
                    engine.wake.notify_one();
                });
            }
            if full {
                continue;
            }
            let wait = match self.store.next_due().await {
                Ok(Some(t)) => {
                    Duration::from_millis(u64::try_from(t - now_ms()).unwrap_or(0).clamp(10, 1000))
                }
                _ => Duration::from_secs(1),
            };
            tokio::select! {
                () = stop.cancelled() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Mark a task as stepped by this process; false when it already is.
    fn start_stepping(&self, id: &str) -> bool {
        self.stepping
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.to_owned())
    }

    fn stop_stepping(&self, id: &str) {
        self.stepping
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX / 2)
    }

    /// One step of one task.
    async fn step(&self, task: Task) {
        let step = match task.status {
            TaskStatus::Created => "submit",
            _ => "poll",
        };
        metrics::counter!("llmage_task_steps_total", "vendor" => task.vendor.as_str(), "step" => step)
            .increment(1);
        let Some(backend) = self.backends.get(&task.vendor) else {
            self.fail(
                &task,
                &format!("vendor {} is not configured on this server", task.vendor),
            )
            .await;
            return;
        };
        let table = self.channels.table();
        let Some(model) = table.catalog.get(&task.model).cloned() else {
            self.fail(
                &task,
                &format!("model {} is no longer in the catalog", task.model),
            )
            .await;
            return;
        };
        if now_ms() > task.deadline_at {
            let secs = (task.deadline_at - task.created_at) / 1000;
            let within = if secs < 120 {
                format!("{secs} 秒 / seconds")
            } else {
                format!("{} 分钟 / minutes", secs / 60)
            };
            let mut reason = format!("任务超时 / timed out: not finished within {within}");
            if let Some(note) = &task.error {
                reason.push_str(&format!("; 最近的问题 / last problem: {note}"));
            }
            self.fail(&task, &reason).await;
            return;
        }
        let channel = match task.channel_id {
            None => None,
            Some(id) => match table.channel(id) {
                Some(channel) => Some(channel.clone()),
                None => {
                    self.fail(&task, "the channel serving this task was removed")
                        .await;
                    return;
                }
            },
        };
        let upstream_model = channel
            .as_ref()
            .and_then(|c| c.models.iter().find(|r| r.model == task.model))
            .map_or(task.model.as_str(), |r| r.upstream.as_str());
        // The channel's own cap: at it, the step waits a moment.
        let _channel_permit = match &channel {
            Some(channel) => match self.health.try_acquire(channel) {
                Some(permit) => permit,
                None => {
                    if let Err(e) = self
                        .store
                        .defer(&task.id, &self.owner, now_ms() + 250)
                        .await
                    {
                        tracing::warn!(task = %task.id, error = %e, "cannot requeue a task");
                    }
                    return;
                }
            },
            None => None,
        };
        let _permit = match self.limits.get(&task.vendor) {
            Some(sem) => sem.clone().acquire_owned().await.ok(),
            None => None,
        };
        let inputs = if task.status == TaskStatus::Created {
            match self.resolve_inputs(&task).await {
                Ok(inputs) => inputs,
                Err(e) => {
                    self.fail(&task, &format!("cannot read an input file: {e}"))
                        .await;
                    return;
                }
            }
        } else {
            Vec::new()
        };
        let job = MediaJob {
            task_id: &task.id,
            model: &model,
            upstream_model,
            category: &task.category,
            params: &task.params,
            inputs: &inputs,
            channel: channel.as_deref(),
        };
        let (first, longest) = backend.poll_delays();
        let backoff = |polls: i64| {
            let factor = 1.5f64.powi(i32::try_from(polls.min(30)).unwrap_or(30));
            let ms = (first.as_millis() as f64 * factor).min(longest.as_millis() as f64);
            now_ms() + ms as i64
        };
        let result = match task.status {
            TaskStatus::Created => self.submit(backend, &job, &task, &table, backoff(0)).await,
            TaskStatus::Pending | TaskStatus::Running => {
                let Some(vendor_id) = task.vendor_task_id.as_deref() else {
                    self.fail(&task, "internal: running task without a vendor id")
                        .await;
                    return;
                };
                match backend.poll(&job, vendor_id).await {
                    Ok(PollOutcome::Pending) => {
                        self.store
                            .mark_progress(
                                &task.id,
                                &self.owner,
                                TaskStatus::Pending,
                                backoff(task.polls),
                            )
                            .await
                    }
                    Ok(PollOutcome::Running) => {
                        self.store
                            .mark_progress(
                                &task.id,
                                &self.owner,
                                TaskStatus::Running,
                                backoff(task.polls),
                            )
                            .await
                    }
                    Ok(PollOutcome::Succeeded(outputs)) => {
                        match self.complete(&task, outputs).await {
                            Ok(()) => Ok(()),
                            Err(e) => {
                                tracing::warn!(task = %task.id, error = %e, "archiving results failed; will retry");
                                self.store
                                    .release_noted(
                                        &task.id,
                                        &self.owner,
                                        backoff(task.polls),
                                        "结果文件无法下载或保存 / the results could not be fetched from the vendor or stored",
                                    )
                                    .await
                            }
                        }
                    }
                    Ok(PollOutcome::Failed(reason)) => {
                        self.fail(&task, &reason).await;
                        Ok(())
                    }
                    Err(e) => {
                        tracing::warn!(task = %task.id, vendor = %task.vendor, error = %e, "poll failed; will retry");
                        self.store
                            .release_noted(
                                &task.id,
                                &self.owner,
                                backoff(task.polls),
                                &vendor_message(&e),
                            )
                            .await
                    }
                }
            }
            TaskStatus::Succeeded | TaskStatus::Failed => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(task = %task.id, error = %e, "task step could not be recorded; it will be retried after its lease");
        }
    }

    async fn submit(
        &self,
        backend: &MediaBackend,
        job: &MediaJob<'_>,
        task: &Task,
        table: &ChannelTable,
        next_poll: i64,
    ) -> Result<(), crate::storage::StoreError> {
        if task.submit_started_at.is_some() {
            tracing::warn!(task = %task.id, "re-sending a task whose previous send was not recorded (crash in the send window)");
        }
        if !self.store.mark_submitting(&task.id, &self.owner).await? {
            return Ok(());
        }
        match backend.submit(job).await {
            Ok(vendor_id) => {
                if let Some(id) = task.channel_id {
                    self.health.success(id);
                }
                self.store
                    .mark_submitted(&task.id, &self.owner, &vendor_id, next_poll)
                    .await?;
                Ok(())
            }
            Err(e) if e.retryable() && task.attempts + 1 < MAX_SUBMIT_ATTEMPTS => {
                if let Some(id) = task.channel_id {
                    self.health.failure(id, &vendor_message(&e)).await;
                }
                // Fail over to the model's next channel (in priority order, wrapping around);
                // with one channel, retry it after the backoff.
                let next = task
                    .channel_id
                    .and_then(|current| next_channel(&table.ordered_routes(&task.model), current));
                match next {
                    Some(channel) => {
                        tracing::warn!(task = %task.id, error = %e, from = ?task.channel_id, to = channel.id, "vendor did not accept the task; failing over");
                        self.store
                            .switch_channel(&task.id, &self.owner, channel.id, channel.vendor)
                            .await
                    }
                    None => {
                        tracing::warn!(task = %task.id, error = %e, "vendor did not accept the task; will retry");
                        self.store.release(&task.id, &self.owner, next_poll).await
                    }
                }
            }
            Err(e) => {
                self.fail(task, &vendor_message(&e)).await;
                Ok(())
            }
        }
    }

    /// The task's input files: client URLs as they are, our stored files as bytes.
    async fn resolve_inputs(&self, task: &Task) -> Result<Vec<JobInput>, String> {
        let mut inputs = Vec::with_capacity(task.inputs.len());
        for input in &task.inputs {
            let public_url = match (&input.file_id, &self.public_base_url) {
                (Some(id), Some(base)) => {
                    let expires = now_ms() / 1000 + INPUT_LINK_SECS;
                    Some(format!(
                        "{}&exp={expires}&sig={}",
                        super::file_url(base, id),
                        self.links.sign(id, expires)
                    ))
                }
                _ => None,
            };
            let data = match (&input.file_id, &input.url) {
                (Some(id), _) => {
                    let file = self
                        .files
                        .meta(id)
                        .await
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| format!("{} is missing", input.field))?;
                    let bytes = self.files.read(&file).await.map_err(|e| e.to_string())?;
                    InputData::Bytes {
                        bytes,
                        mime: file.mime,
                    }
                }
                (None, Some(url)) => InputData::Url(url.clone()),
                (None, None) => continue,
            };
            inputs.push(JobInput {
                field: input.field.clone(),
                data,
                public_url,
            });
        }
        Ok(inputs)
    }

    /// The gallery's thumbnail of an archived picture (made off the async threads); `None`
    /// when the picture cannot be decoded (the gallery then shows the original).
    async fn thumbnail(&self, task: &Task, picture: bytes::Bytes) -> Option<String> {
        let jpeg = tokio::task::spawn_blocking(move || crate::media::thumbnail_jpeg(&picture))
            .await
            .ok()?
            .map_err(|e| tracing::debug!(task = %task.id, error = %e, "no thumbnail"))
            .ok()?;
        self.files
            .put(
                task.user_id,
                Some(&task.id),
                FileKind::Result,
                "image/jpeg",
                jpeg.into(),
            )
            .await
            .map_err(|e| tracing::warn!(task = %task.id, error = %e, "storing a thumbnail failed"))
            .ok()
            .map(|f| f.id)
    }

    /// Archive results, settle the price, mark SUCCEEDED (in that order; each step idempotent).
    /// The files of an attempt that does not end the task (an error, or another process that
    /// finished it first) are deleted again: a task keeps exactly the files its result names.
    async fn complete(&self, task: &Task, outputs: Vec<MediaOutput>) -> Result<(), ArchiveError> {
        let mut stored = Vec::new();
        let completed = self.archive_and_finish(task, outputs, &mut stored).await;
        if !matches!(completed, Ok(true)) {
            for id in &stored {
                if let Err(e) = self.files.delete(id).await {
                    tracing::warn!(task = %task.id, file = %id, error = %e, "cannot delete the file of an archival that did not end the task");
                }
            }
        }
        completed.map(|_| ())
    }

    /// [`Engine::complete`]'s work; the ids of the files it stored go to `stored` as they are
    /// made. Whether this attempt finished the task.
    async fn archive_and_finish(
        &self,
        task: &Task,
        outputs: Vec<MediaOutput>,
        stored_ids: &mut Vec<String>,
    ) -> Result<bool, ArchiveError> {
        let mut result = TaskResult::default();
        for output in outputs {
            // A download may take long: keep the task ours meanwhile.
            self.store
                .extend_lease(&task.id, &self.owner, now_ms() + self.lease_ms())
                .await?;
            let picture = matches!(output.role, OutputRole::Image | OutputRole::Cover)
                && result.thumbnail.is_none();
            let (stored, thumb_source) = match output.body {
                OutputBody::Bytes { bytes, mime } => {
                    let thumb_source = picture.then(|| bytes.clone());
                    let stored = self
                        .files
                        .put(task.user_id, Some(&task.id), FileKind::Result, &mime, bytes)
                        .await?;
                    (stored, thumb_source)
                }
                OutputBody::Url(url) => {
                    let (staged, mime) = self.download(&url).await?;
                    let stored = self
                        .files
                        .put_staged(
                            task.user_id,
                            Some(&task.id),
                            FileKind::Result,
                            &mime,
                            &staged,
                        )
                        .await?;
                    // A picture small enough to decode is read back for its thumbnail.
                    let thumb_source = if picture && staged.size <= MAX_THUMBNAIL_SOURCE {
                        staged.read_all().await.ok()
                    } else {
                        None
                    };
                    (stored, thumb_source)
                }
            };
            stored_ids.push(stored.id.clone());
            if let Some(source) = thumb_source {
                result.thumbnail = self.thumbnail(task, source).await;
                stored_ids.extend(result.thumbnail.clone());
            }
            match output.role {
                OutputRole::Image | OutputRole::Cover => result.image = Some(stored.id),
                OutputRole::Video => result.video = Some(stored.id),
            }
        }
        let mut charged = task.credits;
        if let Some(reservation) = &task.reservation_id {
            let settled = self
                .ledger
                .settle(reservation, crate::billing::units(task.credits))
                .await?;
            if settled.applied {
                charged = settled.charged / crate::billing::UNITS_PER_CREDIT;
            }
        }
        let mut usage = task.usage.clone().unwrap_or_default();
        if let Some(obj) = usage.as_object_mut() {
            obj.insert("credits".into(), charged.into());
        }
        let finished = self
            .store
            .finish(
                &task.id,
                TaskStatus::Succeeded,
                Some(&result),
                Some(&usage),
                charged,
                None,
            )
            .await?;
        if finished {
            metrics::counter!("llmage_credit_units_charged_total", "kind" => "task")
                .increment(u64::try_from(crate::billing::units(charged)).unwrap_or(0));
            tracing::info!(task = %task.id, model = %task.model, credits = charged, "task succeeded");
        } else {
            tracing::warn!(task = %task.id, "the task was finished by another attempt; this one's files are deleted");
        }
        Ok(finished)
    }

    /// A result file, staged on disk as its bytes arrive (the size cap checked on the way),
    /// with its type: sniffed from its first bytes, else the answer's `Content-Type`.
    async fn download(&self, url: &str) -> Result<(StagedFile, String), ArchiveError> {
        let mut resp = self
            .http
            .get(url)
            .timeout(Duration::from_secs(300))
            .send()
            .await
            .map_err(ArchiveError::Download)?;
        if !resp.status().is_success() {
            return Err(ArchiveError::Status(resp.status()));
        }
        if resp
            .content_length()
            .is_some_and(|len| len > MAX_RESULT_BYTES)
        {
            return Err(ArchiveError::TooLarge);
        }
        let mime = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
            .unwrap_or_else(|| "application/octet-stream".into());
        let stage_error = |e: StagingError| match e {
            StagingError::TooLarge { .. } => ArchiveError::TooLarge,
            e => {
                tracing::error!(error = %e, "cannot stage a result file");
                ArchiveError::Staging(e)
            }
        };
        let mut writer = self
            .files
            .staging()
            .writer(MAX_RESULT_BYTES)
            .await
            .map_err(stage_error)?;
        while let Some(chunk) = resp.chunk().await.map_err(ArchiveError::Download)? {
            writer.write(&chunk).await.map_err(stage_error)?;
        }
        let staged = writer.finish().await.map_err(stage_error)?;
        let mime = crate::media::sniff(&staged.head)
            .map(|s| s.mime.to_owned())
            .unwrap_or(mime);
        Ok((staged, mime))
    }

    /// Release the reservation and mark FAILED with a reason the user can read.
    async fn fail(&self, task: &Task, reason: &str) {
        if let Some(reservation) = &task.reservation_id
            && let Err(e) = self.ledger.release(reservation).await
        {
            tracing::error!(task = %task.id, error = %e, "cannot release a failed task's reservation; will retry");
            let _ = self
                .store
                .release(&task.id, &self.owner, now_ms() + 5_000)
                .await;
            return;
        }
        match self
            .store
            .finish(&task.id, TaskStatus::Failed, None, None, 0, Some(reason))
            .await
        {
            Ok(_) => tracing::info!(task = %task.id, model = %task.model, reason, "task failed"),
            Err(e) => {
                tracing::error!(task = %task.id, error = %e, "cannot record a failed task; will retry")
            }
        }
    }
}

/// The channel after `current` among a model's routes (wrapping), if it is another one.
fn next_channel(routes: &[Route], current: i64) -> Option<Arc<Channel>> {
    let position = routes.iter().position(|r| r.channel.id == current);
    let next = match position {
        Some(i) => routes.get((i + 1) % routes.len())?,
        None => routes.first()?,
    };
    (next.channel.id != current).then(|| next.channel.clone())
}

/// What a user may read about a vendor error (never our keys or internals).
fn vendor_message(e: &ProviderError) -> String {
    match e {
        ProviderError::Status {
            status: 401 | 403, ..
        } => "vendor refused the channel's credentials".into(),
        ProviderError::Status { status, message } => {
            format!("vendor answered HTTP {status}: {message}")
        }
        ProviderError::Timeout => "vendor timed out".into(),
        ProviderError::Connect(_) => "cannot reach the vendor".into(),
        ProviderError::Decode(_) => "vendor sent an unreadable answer".into(),
        ProviderError::Event(m) => m.clone(),
        ProviderError::Throttled { .. } => "vendor rate limit exceeded".into(),
    }
}
