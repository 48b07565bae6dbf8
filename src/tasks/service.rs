//! Accepting a submission: idempotency, price, input files stored, then the credit hold and the
//! task row in one transaction, engine woken. A rejected submission stores and charges nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::store::{NewTask, TaskStore};
use super::{Task, TaskInput};
use crate::accounts::keys::KeyOwner;
use crate::billing::ledger::{Ledger, LedgerError, record_reserve};
use crate::billing::media::quote;
use crate::catalog::validate::{InputSource, Validated};
use crate::channels::ChannelTable;
use crate::net::OutboundGuard;
use crate::storage::StoreError;
use crate::storage::files::{FileError, FileKind, FileStore};
use crate::util::ids::random_id;
use crate::vendor::Vendor;

/// Reservation purpose prefix of tasks.
pub const TASK_PURPOSE: &str = "task";

/// Why a submission was refused or a task not found, in the words the client reads.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("Invalid parameter: {0}")]
    InvalidParameter(String),
    #[error("No available channel for model {0}")]
    NoChannel(String),
    #[error("Not found: {0}")]
    NotFound(String),
    /// An `Idempotency-Key` already used for a different request body.
    #[error("Idempotency-Key {0} was already used with a different request body")]
    IdempotencyKeyReused(String),
    /// The task just stored cannot be read back.
    #[error("Internal server error")]
    Internal,
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    File(#[from] FileError),
}

/// How long a task may take before it fails (and is refunded).
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    pub image: Duration,
    pub video: Duration,
    /// Off-peak (错峰) tasks, which a vendor may hold for up to 48 hours.
    pub off_peak: Duration,
}

/// Task submission and lookup.
#[derive(Clone, Debug)]
pub struct TaskService {
    pub store: TaskStore,
    pub ledger: Ledger,
    pub files: FileStore,
    /// Wakes the engine when a task arrives.
    pub wake: Arc<Notify>,
    /// Demo mode: the sandbox serves models without a channel.
    pub demo: bool,
    pub deadlines: Deadlines,
    /// Refuses callback and input URLs that point inside our network.
    pub outbound: OutboundGuard,
}

impl TaskService {
    /// Store a checked submission as a new task (or return the task an idempotency key made).
    pub async fn submit(
        &self,
        table: &ChannelTable,
        owner: &KeyOwner,
        v: Validated,
        idem_key: Option<String>,
        request_id: Option<String>,
    ) -> Result<Task, TaskError> {
        let request_hash = request_hash(&v);
        if let Some(key) = &idem_key
            && let Some(task) = self.store.by_idem_key(owner.user_id, key).await?
        {
            return same_request(task, key, &request_hash);
        }
        // The first channel by priority/weight; the engine fails over along the rest. Demo mode
        // serves models without a channel from the sandbox.
        let (vendor, channel_id) = match table.routes(&v.model.id).first() {
            Some(route) => (route.channel.vendor, Some(route.channel.id)),
            None if self.demo => (Vendor::Sandbox, None),
            None => return Err(TaskError::NoChannel(v.model.id.clone())),
        };
        self.check_urls(&v).await?;
        let quote = quote(&v.model, &v.category, &v.params);
        // A balance that cannot cover the price is refused before the inputs are uploaded (the
        // guarded hold below decides; this only spares the upload).
        if quote.credits > 0
            && self.ledger.balance(owner.user_id).await? < crate::billing::units(quote.credits)
        {
            return Err(LedgerError::InsufficientBalance.into());
        }
        let id = random_id();
        let inputs = self.store_inputs(owner.user_id, &id, &v).await?;
        let deadline = if crate::billing::media::off_peak(&v.params) {
            self.deadlines.off_peak
        } else if v.category == "t2i" {
            self.deadlines.image
        } else {
            self.deadlines.video
        };
        let mut new = NewTask {
            id: id.clone(),
            user_id: owner.user_id,
            key_id: owner.key_id,
            model: v.model.id.clone(),
            category: v.category.clone(),
            params: v.params,
            inputs,
            vendor,
            channel_id,
            allowed_ms: i64::try_from(deadline.as_millis()).unwrap_or(i64::MAX / 2),
            reservation_id: None,
            credits: quote.credits,
            label: quote.label,
            usage: quote.usage,
            idem_key: idem_key.clone(),
            callback_url: v.callback_url,
            request_hash: Some(request_hash.clone()),
            request_id,
        };
        // The hold and the task row commit together: a crash can leave neither, or both (and
        // the engine then settles the task), never credits held for a task that does not exist.
        let accepted = self.hold_and_insert(&mut new).await;
        if let Err(e) = accepted {
            self.delete_inputs(&new.inputs).await;
            // Two submissions with one idempotency key raced: the other one won.
            if let LedgerError::Store(e) = &e
                && e.is_unique_violation()
                && let Some(key) = &idem_key
                && let Some(task) = self.store.by_idem_key(owner.user_id, key).await?
            {
                return same_request(task, key, &request_hash);
            }
            return Err(e.into());
        }
        let mut task = self.store.get(&id).await?.ok_or(TaskError::Internal)?;
        // The answer to a new submission is the state it was accepted in (the seed's `CREATED`),
        // even if the engine has already picked it up in the meantime.
        task.status = super::TaskStatus::Created;
        self.wake.notify_one();
        Ok(task)
    }

    /// Callback and input-file URLs must point at public addresses (checked before anything is
    /// stored or charged).
    async fn check_urls(&self, v: &Validated) -> Result<(), TaskError> {
        if let Some(url) = &v.callback_url {
            self.outbound
                .check_url(url)
                .await
                .map_err(|why| TaskError::InvalidParameter(format!("callback_url {why}")))?;
        }
        for input in &v.inputs {
            if let InputSource::Url(url) = &input.source {
                self.outbound.check_url(url).await.map_err(|why| {
                    TaskError::InvalidParameter(format!("{} URL {why}", input.field))
                })?;
            }
        }
        Ok(())
    }

    /// Store a submission's received files (URLs are kept as they are). On failure, the files
    /// stored so far are deleted again.
    async fn store_inputs(
        &self,
        user_id: i64,
        task_id: &str,
        v: &Validated,
    ) -> Result<Vec<TaskInput>, TaskError> {
        let mut inputs = Vec::with_capacity(v.inputs.len());
        for input in &v.inputs {
            let stored = match &input.source {
                InputSource::Bytes { bytes, mime } => self
                    .files
                    .put(user_id, Some(task_id), FileKind::Input, mime, bytes.clone())
                    .await
                    .map(|file| (file, mime)),
                InputSource::Staged { file, mime } => self
                    .files
                    .put_staged(user_id, Some(task_id), FileKind::Input, mime, file)
                    .await
                    .map(|file| (file, mime)),
                InputSource::Url(url) => {
                    inputs.push(TaskInput {
                        field: input.field.clone(),
                        file_id: None,
                        url: Some(url.clone()),
                        mime: None,
                    });
                    continue;
                }
            };
            match stored {
                Ok((file, mime)) => inputs.push(TaskInput {
                    field: input.field.clone(),
                    file_id: Some(file.id),
                    url: None,
                    mime: Some((*mime).to_owned()),
                }),
                Err(e) => {
                    self.delete_inputs(&inputs).await;
                    return Err(e.into());
                }
            }
        }
        Ok(inputs)
    }

    /// In one write transaction: hold the task's credits (when it has a price) and insert its row.
    async fn hold_and_insert(&self, new: &mut NewTask) -> Result<(), LedgerError> {
        let mut tx = self.store.db().begin_write().await?;
        if new.credits > 0 {
            let reservation = self
                .ledger
                .reserve_in(
                    &mut tx,
                    new.user_id,
                    crate::billing::units(new.credits),
                    TASK_PURPOSE,
                    &new.model,
                    &new.label,
                )
                .await?;
            new.reservation_id = Some(reservation.id);
        }
        TaskStore::insert(&mut tx, new).await?;
        tx.commit().await?;
        if new.reservation_id.is_some() {
            record_reserve();
        }
        Ok(())
    }

    /// Remove the stored inputs of a submission that was not accepted (best effort: an input
    /// left behind costs disk, not money).
    async fn delete_inputs(&self, inputs: &[TaskInput]) {
        for file_id in inputs.iter().filter_map(|i| i.file_id.as_deref()) {
            if let Err(e) = self.files.delete(file_id).await {
                tracing::warn!(error = %e, file = file_id, "cannot delete the input of a refused submission");
            }
        }
    }

    /// One of the owner's tasks (another user's id, or one the owner deleted, is "not found").
    pub async fn get(&self, owner: &KeyOwner, id: &str) -> Result<Task, TaskError> {
        match self.store.get(id).await? {
            Some(task) if task.user_id == owner.user_id && !task.hidden => Ok(task),
            _ => Err(TaskError::NotFound(format!("task {id}"))),
        }
    }
}

/// The task an idempotency key made, if it was made from the same request; a different request
/// under the same key is refused (as Stripe does) rather than answered with the first task.
fn same_request(task: Task, key: &str, request_hash: &str) -> Result<Task, TaskError> {
    match &task.request_hash {
        Some(first) if first != request_hash => {
            Err(TaskError::IdempotencyKeyReused(key.to_owned()))
        }
        _ => Ok(task),
    }
}

/// A digest of a checked submission: model, category, parameters (defaults filled in, in the
/// table's order and spelling), input files (by content or URL) and callback URL. Two requests
/// that differ only in how they were sent (JSON or multipart, the `/v1` or the seed route, the
/// multipart boundary) have the same digest.
pub fn request_hash(v: &Validated) -> String {
    use sha2::{Digest, Sha256};
    let inputs: Vec<serde_json::Value> = v
        .inputs
        .iter()
        .map(|input| match &input.source {
            InputSource::Bytes { bytes, .. } => serde_json::json!({
                "field": input.field,
                "sha256": hex::encode(Sha256::digest(bytes)),
            }),
            InputSource::Staged { file, .. } => serde_json::json!({
                "field": input.field,
                "sha256": hex::encode(file.sha256),
            }),
            InputSource::Url(url) => serde_json::json!({"field": input.field, "url": url}),
        })
        .collect();
    let canonical = serde_json::json!({
        "model": v.model.id,
        "category": v.category,
        "params": v.params,
        "inputs": inputs,
        "callback_url": v.callback_url,
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}
