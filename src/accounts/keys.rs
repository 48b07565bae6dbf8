//! API keys: `sk-` + 40 URL-safe characters (240 random bits). Only the SHA-256 of a key is
//! stored; a key is shown once, at creation.
//!
//! Lookups on the request path come from an in-memory cache keyed by that hash. Entries live one
//! second, so a key revoked by another process (the `admin` CLI, another gateway node) stops
//! working within a second; a revocation in this process drops the entry at once. Unknown keys
//! are cached too (as misses), so guessing keys does not turn into database load. Comparing
//! hashes by map lookup leaks nothing useful about a key: the attacker does not control the hash.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::storage::{Db, StoreError, json_column};
use crate::util::clock::now_ms;

/// Who a valid key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    pub key_id: i64,
    pub user_id: i64,
    pub expires_at: Option<i64>,
    /// Models this key may call (`None` = any).
    pub models: Option<Vec<String>>,
    /// Client addresses or networks this key may be used from (`None` = any).
    pub allowed_ips: Option<Vec<String>>,
    /// Most credits this key may spend in a calendar month (China time; `None` = no limit).
    pub monthly_limit: Option<i64>,
}

impl KeyOwner {
    /// Whether the key may call `model`.
    pub fn may_use_model(&self, model: &str) -> bool {
        self.models
            .as_ref()
            .is_none_or(|list| list.iter().any(|m| m == model))
    }

    /// Whether the key may be used from `ip`.
    pub fn may_use_from(&self, ip: Option<std::net::IpAddr>) -> bool {
        let Some(list) = &self.allowed_ips else {
            return true;
        };
        let Some(ip) = ip else { return false };
        list.iter().any(|entry| {
            entry
                .parse::<ipnet::IpNet>()
                .map(|net| net.contains(&ip))
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(|one| one == ip))
                .unwrap_or(false)
        })
    }
}

/// A new key, as shown to its owner once.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub id: i64,
    pub key: String,
    pub masked: String,
}

/// Generate a fresh key string.
pub fn generate() -> String {
    let mut bytes = [0u8; 30];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "sk-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// SHA-256 of a key, hex.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// `sk-abcd…wxyz`: enough to recognise a key, useless to use it.
pub fn mask(key: &str) -> String {
    let prefix: String = key.chars().take(7).collect();
    let suffix: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{prefix}…{suffix}")
}

/// A key as listed to its owner (never the key itself).
#[derive(Debug, Clone)]
pub struct KeySummary {
    pub id: i64,
    pub name: String,
    pub masked: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked: bool,
    pub expired: bool,
    /// The key's allow-lists (`None` = any).
    pub models: Option<Vec<String>>,
    pub allowed_ips: Option<Vec<String>>,
    pub monthly_limit: Option<i64>,
    /// Switched off by its owner (can be switched on again, unlike a revocation).
    pub disabled: bool,
}

/// What an owner may change on a key (`None` = leave as is; `Some(None)` = clear).
#[derive(Debug, Clone, Default)]
pub struct KeyUpdate {
    pub name: Option<String>,
    pub models: Option<Option<Vec<String>>>,
    pub allowed_ips: Option<Option<Vec<String>>>,
    pub monthly_limit: Option<Option<i64>>,
    pub disabled: Option<bool>,
}

/// Key storage plus the request-path cache.
#[derive(Clone)]
pub struct Keys {
    db: Db,
    cache: moka::sync::Cache<String, Option<Arc<KeyOwner>>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("cached", &self.cache.entry_count())
            .finish()
    }
}

/// How long a looked-up key is trusted without asking the database again: a revoked key, or a
/// disabled user's key, is refused by every process within this time.
pub const CACHE_TTL: Duration = Duration::from_millis(500);

impl Keys {
    pub fn new(db: Db) -> Keys {
        let cache = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(CACHE_TTL)
            .build();
        Keys { db, cache }
    }

    /// Store a key for a user. With `fixed`, that exact key is used (demo mode's `--demo-key`).
    pub async fn create(
        &self,
        user_id: i64,
        name: &str,
        fixed: Option<&str>,
        expires_at: Option<i64>,
    ) -> Result<NewKey, StoreError> {
        self.create_limited(user_id, name, fixed, expires_at, None, None)
            .await
    }

    /// Store a key with optional model and address allow-lists.
    pub async fn create_limited(
        &self,
        user_id: i64,
        name: &str,
        fixed: Option<&str>,
        expires_at: Option<i64>,
        models: Option<&[String]>,
        allowed_ips: Option<&[String]>,
    ) -> Result<NewKey, StoreError> {
        let key = fixed.map(str::to_owned).unwrap_or_else(generate);
        let masked = mask(&key);
        let as_json =
            |list: Option<&[String]>| list.map(|l| serde_json::to_string(l).unwrap_or_default());
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_keys (user_id, name, key_hash, masked, created_at, expires_at, models, allowed_ips) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(user_id)
        .bind(name)
        .bind(hash(&key))
        .bind(&masked)
        .bind(now_ms())
        .bind(expires_at)
        .bind(as_json(models))
        .bind(as_json(allowed_ips))
        .fetch_one(self.db.writer())
        .await?;
        Ok(NewKey { id, key, masked })
    }

    /// Whether a key (by its hash) is stored, revoked or not.
    pub async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM api_keys WHERE key_hash = $1")
            .bind(hash(key))
            .fetch_optional(self.db.reader())
            .await?;
        Ok(row.is_some())
    }

    /// A user's keys, newest first.
    pub async fn list(&self, user_id: i64) -> Result<Vec<KeySummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, masked, created_at, expires_at, revoked_at, models, allowed_ips, monthly_limit, disabled_at \
             FROM api_keys WHERE user_id = $1 AND hidden_at IS NULL ORDER BY id DESC",
        )
        .bind(user_id)
        .fetch_all(self.db.reader())
        .await?;
        let now = now_ms();
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get("id")?;
                let expires_at: Option<i64> = r.try_get("expires_at")?;
                let list = |column: &str| json_column(r, column, "api_keys", id);
                Ok(KeySummary {
                    models: list("models")?,
                    allowed_ips: list("allowed_ips")?,
                    id,
                    name: r.try_get("name")?,
                    masked: r.try_get("masked")?,
                    created_at: r.try_get("created_at")?,
                    expires_at,
                    revoked: r.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
                    expired: expires_at.is_some_and(|t| t <= now),
                    monthly_limit: r.try_get("monthly_limit")?,
                    disabled: r.try_get::<Option<i64>, _>("disabled_at")?.is_some(),
                })
            })
            .collect()
    }

    /// Change one of a user's keys (name, allow-lists, monthly limit, on/off); `false` when the
    /// user has no such live key. The change applies here at once and within a second elsewhere.
    pub async fn update_owned(
        &self,
        key_id: i64,
        user_id: i64,
        update: &KeyUpdate,
    ) -> Result<bool, StoreError> {
        let as_json = |list: &Option<Vec<String>>| {
            list.as_ref()
                .map(|l| serde_json::to_string(l).unwrap_or_default())
        };
        // One statement: each field is either kept (flag 0) or set to the given value.
        let key_hash: Option<String> = sqlx::query_scalar(
            "UPDATE api_keys SET \
               name = CASE WHEN $1 = 1 THEN $2 ELSE name END, \
               models = CASE WHEN $3 = 1 THEN $4 ELSE models END, \
               allowed_ips = CASE WHEN $5 = 1 THEN $6 ELSE allowed_ips END, \
               monthly_limit = CASE WHEN $7 = 1 THEN $8 ELSE monthly_limit END, \
               disabled_at = CASE WHEN $9 = 1 THEN $10 ELSE disabled_at END \
             WHERE id = $11 AND user_id = $12 AND revoked_at IS NULL RETURNING key_hash",
        )
        .bind(i32::from(update.name.is_some()))
        .bind(update.name.clone().unwrap_or_default())
        .bind(i32::from(update.models.is_some()))
        .bind(update.models.as_ref().and_then(as_json))
        .bind(i32::from(update.allowed_ips.is_some()))
        .bind(update.allowed_ips.as_ref().and_then(as_json))
        .bind(i32::from(update.monthly_limit.is_some()))
        .bind(update.monthly_limit.flatten())
        .bind(i32::from(update.disabled.is_some()))
        .bind(update.disabled.unwrap_or(false).then(now_ms))
        .bind(key_id)
        .bind(user_id)
        .fetch_optional(self.db.writer())
        .await?;
        Ok(self.forget(key_hash))
    }

    /// Remove a revoked key of a user from their list (the row stays for the call log and the
    /// ledger); `false` when the user has no such revoked key.
    pub async fn hide_revoked(&self, key_id: i64, user_id: i64) -> Result<bool, StoreError> {
        let key_hash: Option<String> = sqlx::query_scalar(
            "UPDATE api_keys SET hidden_at = $1 WHERE id = $2 AND user_id = $3 \
             AND revoked_at IS NOT NULL AND hidden_at IS NULL RETURNING key_hash",
        )
        .bind(now_ms())
        .bind(key_id)
        .bind(user_id)
        .fetch_optional(self.db.writer())
        .await?;
        Ok(self.forget(key_hash))
    }

    /// Drop a changed key (its hash, if one was changed) from the cache; whether one was.
    fn forget(&self, key_hash: Option<String>) -> bool {
        match key_hash {
            Some(key_hash) => {
                self.cache.invalidate(&key_hash);
                true
            }
            None => false,
        }
    }

    /// Revoke a key by id; it stops working at once here and within a second elsewhere.
    pub async fn revoke(&self, key_id: i64) -> Result<bool, StoreError> {
        self.revoke_where(key_id, None).await
    }

    /// Revoke one of a user's keys (another user's id is "not found").
    pub async fn revoke_owned(&self, key_id: i64, user_id: i64) -> Result<bool, StoreError> {
        self.revoke_where(key_id, Some(user_id)).await
    }

    async fn revoke_where(&self, key_id: i64, user_id: Option<i64>) -> Result<bool, StoreError> {
        let key_hash: Option<String> = sqlx::query_scalar(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL \
             AND ($3 IS NULL OR user_id = $3) RETURNING key_hash",
        )
        .bind(now_ms())
        .bind(key_id)
        .bind(user_id)
        .fetch_optional(self.db.writer())
        .await?;
        Ok(self.forget(key_hash))
    }

    /// The owner of a presented key, or `None` for a missing, wrong, revoked, expired key or a
    /// disabled user.
    pub async fn authenticate(&self, key: &str) -> Result<Option<Arc<KeyOwner>>, StoreError> {
        if !crate::util::ids::is_well_formed_key(key) {
            return Ok(None);
        }
        let key_hash = hash(key);
        let owner = match self.cache.get(&key_hash) {
            Some(hit) => hit,
            None => {
                let owner = self.load(&key_hash).await?.map(Arc::new);
                self.cache.insert(key_hash, owner.clone());
                owner
            }
        };
        Ok(owner.filter(|o| o.expires_at.is_none_or(|t| t > now_ms())))
    }

    async fn load(&self, key_hash: &str) -> Result<Option<KeyOwner>, StoreError> {
        let row = sqlx::query(
            "SELECT k.id, k.user_id, k.expires_at, k.models, k.allowed_ips, k.monthly_limit FROM api_keys k JOIN users u ON u.id = k.user_id \
             WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND k.disabled_at IS NULL AND u.disabled = 0",
        )
        .bind(key_hash)
        .fetch_optional(self.db.reader())
        .await?;
        row.map(|r| {
            // A list that does not decode is an error, never "no restriction".
            let key_id: i64 = r.try_get("id")?;
            let list = |column: &str| json_column(&r, column, "api_keys", key_id);
            Ok(KeyOwner {
                key_id,
                user_id: r.try_get("user_id")?,
                expires_at: r.try_get("expires_at")?,
                models: list("models")?,
                allowed_ips: list("allowed_ips")?,
                monthly_limit: r.try_get("monthly_limit")?,
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_well_formed_and_distinct() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(crate::util::ids::is_well_formed_key(&a), "{a}");
        assert_eq!(a.len(), 43);
        assert!(!crate::util::ids::is_well_formed_key("sk-short"));
        assert!(!crate::util::ids::is_well_formed_key(
            "sk-abcdefghijklmnopqrstuvwxyz!!"
        ));
        assert!(!crate::util::ids::is_well_formed_key(
            "Bearer sk-abcdefghijklmnopqrst"
        ));
        assert_eq!(hash("x").len(), 64);
        let m = mask(&a);
        assert!(m.starts_with("sk-") && m.contains('…') && !m.contains(&a[7..39]));
    }
}
