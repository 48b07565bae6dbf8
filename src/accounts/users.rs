//! Users: created by `admin user create`, by demo mode, and by their first phone login.

use crate::billing::ledger::{Applied, EntryKind, Ledger, LedgerError};
use crate::storage::{Db, Flag, StoreError};
use crate::util::clock::now_ms;

/// A user row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub phone: String,
    pub role: String,
    pub balance: i64,
    #[sqlx(try_from = "Flag")]
    pub disabled: bool,
}

/// A fresh callback secret: `whsec_` and 128 random bits in hex.
fn new_callback_secret() -> String {
    format!("whsec_{}", crate::util::ids::random_id())
}

/// Why a phone number was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid mainland China mobile number: expected 11 digits starting with 1 (e.g. 13800000000)"
)]
pub struct InvalidPhone;

/// Check a mainland mobile number (`+86`/`86` prefixes and spaces/dashes tolerated) and return
/// its 11-digit form.
pub fn normalize_phone(raw: &str) -> Result<String, InvalidPhone> {
    let digits: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let digits = digits
        .strip_prefix("+86")
        .or_else(|| digits.strip_prefix("86").filter(|d| d.len() == 11))
        .unwrap_or(&digits);
    let ok = digits.len() == 11
        && digits.starts_with('1')
        && digits.as_bytes()[1].is_ascii_digit()
        && (b'3'..=b'9').contains(&digits.as_bytes()[1])
        && digits.chars().all(|c| c.is_ascii_digit());
    if ok {
        Ok(digits.to_owned())
    } else {
        Err(InvalidPhone)
    }
}

/// User lookups and creation.
#[derive(Clone, Debug)]
pub struct Users {
    db: Db,
}

impl Users {
    pub fn new(db: Db) -> Users {
        Users { db }
    }

    /// Find a user by phone.
    pub async fn by_phone(&self, phone: &str) -> Result<Option<User>, StoreError> {
        Ok(
            sqlx::query_as("SELECT id, phone, role, balance, disabled FROM users WHERE phone = $1")
                .bind(phone)
                .fetch_optional(self.db.reader())
                .await?,
        )
    }

    /// Find a user by id.
    pub async fn by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        Ok(
            sqlx::query_as("SELECT id, phone, role, balance, disabled FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(self.db.reader())
                .await?,
        )
    }

    /// Set a user's role (`user` or `admin`).
    pub async fn set_role(&self, id: i64, role: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
            .bind(role)
            .bind(id)
            .execute(self.db.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Disable (or enable) a user: their keys and sessions stop working within a second.
    pub async fn set_disabled(&self, id: i64, disabled: bool) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
            .bind(i64::from(disabled))
            .bind(id)
            .execute(self.db.writer())
            .await?;
        if disabled {
            // Their running streams end now (other processes notice within a second).
            super::streams::end_user(id);
        }
        Ok(done.rows_affected() == 1)
    }

    /// The secret that signs the callbacks of tasks this user submits from the console (where
    /// no API key is involved); made on first use.
    pub async fn callback_secret(&self, id: i64) -> Result<String, StoreError> {
        sqlx::query(
            "UPDATE users SET callback_secret = $1 WHERE id = $2 AND callback_secret IS NULL",
        )
        .bind(new_callback_secret())
        .bind(id)
        .execute(self.db.writer())
        .await?;
        let secret: Option<String> =
            sqlx::query_scalar("SELECT callback_secret FROM users WHERE id = $1")
                .bind(id)
                .fetch_one(self.db.writer())
                .await?;
        Ok(secret.unwrap_or_default())
    }

    /// Replace the user's callback secret; the new one.
    pub async fn rotate_callback_secret(&self, id: i64) -> Result<String, StoreError> {
        let secret = new_callback_secret();
        sqlx::query("UPDATE users SET callback_secret = $1 WHERE id = $2")
            .bind(&secret)
            .bind(id)
            .execute(self.db.writer())
            .await?;
        Ok(secret)
    }

    /// Users, newest first, after the cursor id.
    pub async fn list(&self, limit: i64, before_id: Option<i64>) -> Result<Vec<User>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, phone, role, balance, disabled FROM users WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self.db.reader())
        .await?)
    }

    /// The user with that phone, created if there is none; true when this call created it (of
    /// two racing first logins exactly one does).
    pub async fn register(&self, phone: &str) -> Result<(User, bool), LedgerError> {
        if let Some(user) = self.by_phone(phone).await? {
            return Ok((user, false));
        }
        let inserted = sqlx::query("INSERT INTO users (phone, created_at) VALUES ($1, $2)")
            .bind(phone)
            .bind(now_ms())
            .execute(self.db.writer())
            .await;
        let created = match inserted {
            Ok(_) => true,
            Err(e) => {
                let e = StoreError::from(e);
                if !e.is_unique_violation() {
                    return Err(e.into());
                }
                false
            }
        };
        let user = self
            .by_phone(phone)
            .await?
            .ok_or(LedgerError::UnknownUser)?;
        Ok((user, created))
    }

    /// Create a user (or return the existing one with that phone) and grant it `credits` once.
    pub async fn ensure(
        &self,
        phone: &str,
        credits: i64,
        grant_key: &str,
    ) -> Result<User, LedgerError> {
        let (user, _) = self.register(phone).await?;
        if credits > 0 {
            let ledger = Ledger::new(self.db.clone());
            if let Applied::Now { balance } = ledger
                .apply(
                    user.id,
                    crate::billing::units(credits),
                    EntryKind::Grant,
                    "initial credits",
                    grant_key,
                )
                .await?
            {
                return Ok(User { balance, ..user });
            }
        }
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones() {
        assert_eq!(normalize_phone("13800000000").unwrap(), "13800000000");
        assert_eq!(normalize_phone("+86 138-0000-0000").unwrap(), "13800000000");
        assert_eq!(normalize_phone("8613800000000").unwrap(), "13800000000");
        assert!(normalize_phone("12800000000").is_err());
        assert!(normalize_phone("1380000000").is_err());
        assert!(normalize_phone("1380000000a").is_err());
        assert!(normalize_phone("").is_err());
    }
}
