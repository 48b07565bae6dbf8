//! Accepting a submission: idempotency, price and reservation, input files stored, task row
//! written, engine woken. A rejected submission stores and charges nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::store::{NewTask, TaskStore};
use super::{Task, TaskInput};
use crate::accounts::keys::KeyOwner;
use crate::billing::ledger::{Ledger, random_id};
use crate::billing::media::quote;
use crate::catalog::validate::{InputSource, Validated};
use crate::channels::ChannelTable;
use crate::error::ApiError;
use crate::net::OutboundGuard;
use crate::storage::files::{FileKind, FileStore};

/// Reservation purpose prefix of tasks.
pub const TASK_PURPOSE: &str = "task";

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
    ) -> Result<Task, ApiError> {
        if let Some(key) = &idem_key
            && let Some(task) = self.store.by_idem_key(owner.user_id, key).await?
        {
            return Ok(task);
        }
        // The first channel by priority/weight; the engine fails over along the rest. Demo mode
        // serves models without a channel from the sandbox.
        let (vendor, channel_id) = match table.routes(&v.model.id).first() {
            Some(route) => (route.channel.vendor.as_str(), Some(route.channel.id)),
            None if self.demo => ("sandbox", None),
            None => return Err(ApiError::NoChannel(v.model.id.clone())),
        };
        self.check_urls(&v).await?;
        let quote = quote(&v.model, &v.category, &v.params);
        let reservation = if quote.credits > 0 {
            Some(
                self.ledger
                    .reserve(owner.user_id, quote.credits, TASK_PURPOSE, &v.model.id)
                    .await?,
            )
        } else {
            None
        };
        let id = random_id();
        let stored = self.store_inputs(owner.user_id, &id, &v).await;
        let inputs = match stored {
            Ok(inputs) => inputs,
            Err(e) => {
                self.release(reservation.as_ref().map(|r| r.id.as_str()))
                    .await;
                return Err(e);
            }
        };
        let deadline = if crate::billing::media::off_peak(&v.params) {
            self.deadlines.off_peak
        } else if v.category == "t2i" {
            self.deadlines.image
        } else {
            self.deadlines.video
        };
        let new = NewTask {
            id: id.clone(),
            user_id: owner.user_id,
            key_id: owner.key_id,
            model: v.model.id.clone(),
            category: v.category.clone(),
            params: v.params,
            inputs,
            vendor: vendor.to_owned(),
            channel_id,
            allowed_ms: i64::try_from(deadline.as_millis()).unwrap_or(i64::MAX / 2),
            reservation_id: reservation.as_ref().map(|r| r.id.clone()),
            credits: quote.credits,
            usage: quote.usage,
            idem_key: idem_key.clone(),
            callback_url: v.callback_url,
        };
        if let Err(e) = self.store.insert(&new).await {
            self.release(new.reservation_id.as_deref()).await;
            // Two submissions with one idempotency key raced: the other one won.
            if e.is_unique_violation()
                && let Some(key) = &idem_key
                && let Some(task) = self.store.by_idem_key(owner.user_id, key).await?
            {
                return Ok(task);
            }
            return Err(e.into());
        }
        let mut task = self.store.get(&id).await?.ok_or(ApiError::Internal)?;
        // The answer to a new submission is the state it was accepted in (the seed's `CREATED`),
        // even if the engine has already picked it up in the meantime.
        task.status = super::TaskStatus::Created;
        self.wake.notify_one();
        Ok(task)
    }

    /// Callback and input-file URLs must point at public addresses (checked before anything is
    /// stored or charged).
    async fn check_urls(&self, v: &Validated) -> Result<(), ApiError> {
        if let Some(url) = &v.callback_url {
            self.outbound
                .check_url(url)
                .await
                .map_err(|why| ApiError::InvalidParameter(format!("callback_url {why}")))?;
        }
        for input in &v.inputs {
            if let InputSource::Url(url) = &input.source {
                self.outbound.check_url(url).await.map_err(|why| {
                    ApiError::InvalidParameter(format!("{} URL {why}", input.field))
                })?;
            }
        }
        Ok(())
    }

    async fn store_inputs(
        &self,
        user_id: i64,
        task_id: &str,
        v: &Validated,
    ) -> Result<Vec<TaskInput>, ApiError> {
        let mut inputs = Vec::with_capacity(v.inputs.len());
        for input in &v.inputs {
            inputs.push(match &input.source {
                InputSource::Bytes { bytes, mime } => {
                    let file = self
                        .files
                        .put(user_id, Some(task_id), FileKind::Input, mime, bytes.clone())
                        .await?;
                    TaskInput {
                        field: input.field.clone(),
                        file_id: Some(file.id),
                        url: None,
                        mime: Some((*mime).to_owned()),
                    }
                }
                InputSource::Url(url) => TaskInput {
                    field: input.field.clone(),
                    file_id: None,
                    url: Some(url.clone()),
                    mime: None,
                },
            });
        }
        Ok(inputs)
    }

    async fn release(&self, reservation_id: Option<&str>) {
        if let Some(id) = reservation_id
            && let Err(e) = self.ledger.release(id).await
        {
            tracing::error!(error = %e, reservation = id, "cannot release a reservation");
        }
    }

    /// One of the owner's tasks (another user's id is "not found").
    pub async fn get(&self, owner: &KeyOwner, id: &str) -> Result<Task, ApiError> {
        match self.store.get(id).await? {
            Some(task) if task.user_id == owner.user_id => Ok(task),
            _ => Err(ApiError::NotFound(format!("task {id}"))),
        }
    }
}
