//! Channel rows in the database; vendor keys are sealed with the [`SecretBox`] before they are
//! written and opened when the snapshot is built.

use sqlx::Row;

use super::{Channel, ModelRoute};
use crate::secrets::{SecretBox, SecretError};
use crate::storage::{Db, StoreError};
use crate::util::clock::now_ms;
use crate::vendor::Vendor;

/// Why a channel operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("channel {id}: {problem}")]
    Invalid { id: i64, problem: String },
}

impl From<sqlx::Error> for ChannelError {
    fn from(e: sqlx::Error) -> Self {
        ChannelError::Store(StoreError::Sql(e))
    }
}

/// A channel to add.
#[derive(Debug, Clone)]
pub struct NewChannel {
    pub name: String,
    pub vendor: Vendor,
    pub base_url: String,
    pub api_key: String,
    pub models: Vec<ModelRoute>,
    pub priority: i64,
    pub weight: i64,
    pub price_in: Option<i64>,
    pub price_out: Option<i64>,
    pub max_concurrency: Option<i64>,
    pub rpm: Option<i64>,
}

/// Channel persistence.
#[derive(Clone, Debug)]
pub struct ChannelStore {
    db: Db,
    secrets: SecretBox,
}

impl ChannelStore {
    pub fn new(db: Db, secrets: SecretBox) -> ChannelStore {
        ChannelStore { db, secrets }
    }

    pub async fn add(&self, c: &NewChannel) -> Result<i64, ChannelError> {
        let now = now_ms();
        let models = serde_json::to_string(&c.models).unwrap_or_else(|_| "[]".into());
        let row = sqlx::query(
            "INSERT INTO channels (name, vendor, base_url, api_key_enc, models, priority, weight, enabled, price_in, price_out, created_at, updated_at, max_concurrency, rpm) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $10, $10, $11, $12) RETURNING id",
        )
        .bind(&c.name)
        .bind(c.vendor.as_str())
        .bind(c.base_url.trim_end_matches('/'))
        .bind(self.secrets.seal(&c.api_key))
        .bind(models)
        .bind(c.priority)
        .bind(c.weight)
        .bind(c.price_in)
        .bind(c.price_out)
        .bind(now)
        .bind(c.max_concurrency)
        .bind(c.rpm)
        .fetch_one(self.db.writer())
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Insert the channel, or update the one with the same name; its id.
    pub async fn upsert_by_name(&self, c: &NewChannel, enabled: bool) -> Result<i64, ChannelError> {
        let existing = sqlx::query("SELECT id FROM channels WHERE name = $1 ORDER BY id LIMIT 1")
            .bind(&c.name)
            .fetch_optional(self.db.writer())
            .await?;
        let id = match existing {
            Some(row) => {
                let id: i64 = row.try_get("id")?;
                let models = serde_json::to_string(&c.models).unwrap_or_else(|_| "[]".into());
                sqlx::query(
                    "UPDATE channels SET vendor = $1, base_url = $2, api_key_enc = $3, models = $4, priority = $5, weight = $6, \
                     price_in = $7, price_out = $8, max_concurrency = $9, rpm = $10, updated_at = $11 WHERE id = $12",
                )
                .bind(c.vendor.as_str())
                .bind(c.base_url.trim_end_matches('/'))
                .bind(self.secrets.seal(&c.api_key))
                .bind(models)
                .bind(c.priority)
                .bind(c.weight)
                .bind(c.price_in)
                .bind(c.price_out)
                .bind(c.max_concurrency)
                .bind(c.rpm)
                .bind(now_ms())
                .bind(id)
                .execute(self.db.writer())
                .await?;
                id
            }
            None => self.add(c).await?,
        };
        self.set_enabled(id, enabled).await?;
        Ok(id)
    }

    /// Replace a channel's definition (its key too: pass the current one to keep it); false when
    /// no such channel exists. Cooling-off state is cleared: the definition changed.
    pub async fn update(&self, id: i64, c: &NewChannel) -> Result<bool, ChannelError> {
        let models = serde_json::to_string(&c.models).unwrap_or_else(|_| "[]".into());
        let done = sqlx::query(
            "UPDATE channels SET name = $1, vendor = $2, base_url = $3, api_key_enc = $4, models = $5, priority = $6, \
             weight = $7, price_in = $8, price_out = $9, max_concurrency = $10, rpm = $11, updated_at = $12, \
             cooling_until = NULL, cooling_reason = NULL WHERE id = $13",
        )
        .bind(&c.name)
        .bind(c.vendor.as_str())
        .bind(c.base_url.trim_end_matches('/'))
        .bind(self.secrets.seal(&c.api_key))
        .bind(models)
        .bind(c.priority)
        .bind(c.weight)
        .bind(c.price_in)
        .bind(c.price_out)
        .bind(c.max_concurrency)
        .bind(c.rpm)
        .bind(now_ms())
        .bind(id)
        .execute(self.db.writer())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Tasks not finished yet that were sent through the channel.
    pub async fn unfinished_tasks(&self, id: i64) -> Result<i64, ChannelError> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM tasks WHERE channel_id = $1 \
             AND status NOT IN ('SUCCEEDED', 'FAILED')",
        )
        .bind(id)
        .fetch_one(self.db.reader())
        .await?;
        Ok(row.try_get("n")?)
    }

    /// Delete a channel; false when no such channel exists.
    pub async fn delete(&self, id: i64) -> Result<bool, ChannelError> {
        let done = sqlx::query("DELETE FROM channels WHERE id = $1")
            .bind(id)
            .execute(self.db.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Enable or disable a channel; false when no such channel exists.
    pub async fn set_enabled(&self, id: i64, enabled: bool) -> Result<bool, ChannelError> {
        let done = sqlx::query("UPDATE channels SET enabled = $1, updated_at = $2 WHERE id = $3")
            .bind(i64::from(enabled))
            .bind(now_ms())
            .bind(id)
            .execute(self.db.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// All channels, keys decrypted.
    pub async fn load_all(&self) -> Result<Vec<Channel>, ChannelError> {
        let rows = sqlx::query(
            "SELECT id, name, vendor, base_url, api_key_enc, models, priority, weight, enabled, price_in, price_out, \
             cooling_until, cooling_reason, max_concurrency, rpm FROM channels ORDER BY id",
        )
        .fetch_all(self.db.reader())
        .await?;
        rows.iter().map(|r| self.decode_row(r)).collect()
    }

    /// Put a channel on cooling-off until `until` (unix ms) with a reason (every process sees it
    /// at its next reload).
    pub async fn cool(&self, id: i64, until: i64, reason: &str) -> Result<(), ChannelError> {
        sqlx::query("UPDATE channels SET cooling_until = $1, cooling_reason = $2, updated_at = $3 WHERE id = $4")
            .bind(until)
            .bind(reason)
            .bind(now_ms())
            .bind(id)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    /// A value that changes whenever any channel row changes.
    pub async fn stamp(&self) -> Result<(i64, i64), ChannelError> {
        let row = sqlx::query("SELECT CAST(COALESCE(MAX(updated_at), 0) AS BIGINT) AS t, CAST(COUNT(*) AS BIGINT) AS n FROM channels")
            .fetch_one(self.db.reader())
            .await?;
        Ok((row.try_get("t")?, row.try_get("n")?))
    }

    fn decode_row(&self, r: &sqlx::any::AnyRow) -> Result<Channel, ChannelError> {
        let id: i64 = r.try_get("id")?;
        let vendor: String = r.try_get("vendor")?;
        let vendor = Vendor::parse_channel(&vendor).ok_or_else(|| ChannelError::Invalid {
            id,
            problem: format!("unknown vendor `{vendor}`"),
        })?;
        let models: String = r.try_get("models")?;
        let models: Vec<ModelRoute> =
            serde_json::from_str(&models).map_err(|e| ChannelError::Invalid {
                id,
                problem: format!("bad models list: {e}"),
            })?;
        Ok(Channel {
            id,
            name: r.try_get("name")?,
            vendor,
            base_url: r.try_get("base_url")?,
            api_key: self.secrets.open(&r.try_get::<String, _>("api_key_enc")?)?,
            models,
            priority: r.try_get("priority")?,
            weight: r.try_get("weight")?,
            enabled: r.try_get::<i64, _>("enabled")? != 0,
            price_in: r.try_get("price_in")?,
            price_out: r.try_get("price_out")?,
            cooling_until: r.try_get("cooling_until")?,
            cooling_reason: r.try_get("cooling_reason")?,
            max_concurrency: r.try_get("max_concurrency")?,
            rpm: r.try_get("rpm")?,
        })
    }
}
