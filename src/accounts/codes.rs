//! SMS login codes: 6 digits, stored as a SHA-256 of phone and code, single use, expiring after
//! `code_ttl_secs`; at most one code per phone per `resend_secs`; `max_attempts` wrong tries lock
//! the code (the right code no longer works either; the user must ask for a new one).
//!
//! Limits on who asks, in front of the per-phone cap (so a stranger cannot use up someone's
//! codes): `ip_hourly_cap` per client address, `requester_daily_cap` per phone from one address,
//! `device_hourly_cap` per device (the `llmage_device` cookie). `daily_cap` per phone bounds the
//! cost, but a device that has logged in to the phone before is not held to it.

use rand::Rng;
use sha2::{Digest, Sha256};

use crate::config::AuthConfig;
use crate::storage::{Db, StoreError};
use crate::util::clock::now_ms;

/// Why a code was not issued or not accepted.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    #[error("验证码发送过于频繁,请 {0} 秒后再试 / wait {0} s before asking for another code")]
    TooSoon(u64),
    #[error("今日验证码次数已达上限 / daily code limit reached for this number")]
    DailyCap,
    #[error("该地址请求验证码过多,请稍后再试 / too many codes requested from this address")]
    IpCap,
    #[error("该设备请求验证码过多,请稍后再试 / too many codes requested from this device")]
    DeviceCap,
    #[error("验证码错误 / wrong code")]
    Wrong,
    #[error(
        "验证码已过期或不存在,请重新获取 / the code expired or was never sent; ask for a new one"
    )]
    Expired,
    #[error("验证码错误次数过多,已失效,请重新获取 / too many wrong tries; ask for a new code")]
    Locked,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Issues and checks codes.
#[derive(Clone, Debug)]
pub struct Codes {
    db: Db,
    rules: AuthConfig,
}

fn digest(phone: &str, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{phone}:{code}").as_bytes()))
}

impl Codes {
    pub fn new(db: Db, rules: AuthConfig) -> Codes {
        Codes { db, rules }
    }

    async fn count(&self, sql: &str, subject: &str, since: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(sql)
            .bind(subject)
            .bind(since)
            .fetch_one(self.db.writer())
            .await?)
    }

    /// A new code for `phone` (the caller sends it), within the limits; `ip` and `device` (the
    /// hash of the device cookie) are who asks.
    pub async fn issue(
        &self,
        phone: &str,
        ip: Option<&str>,
        device: Option<&str>,
    ) -> Result<String, CodeError> {
        let now = now_ms();
        let last: Option<i64> =
            sqlx::query_scalar("SELECT MAX(created_at) AS t FROM sms_codes WHERE phone = $1")
                .bind(phone)
                .fetch_one(self.db.writer())
                .await
                .map_err(StoreError::from)?;
        let resend_ms = i64::try_from(self.rules.resend_secs).unwrap_or(i64::MAX / 2) * 1000;
        if let Some(last) = last
            && now - last < resend_ms
        {
            let wait = (resend_ms - (now - last) + 999) / 1000;
            return Err(CodeError::TooSoon(u64::try_from(wait).unwrap_or(1).max(1)));
        }
        let day = now - 86_400_000;
        let hour = now - 3_600_000;
        // Who asks first: their address, their address for this phone, their device.
        if let Some(ip) = ip {
            let per_ip = self
                .count("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM sms_codes WHERE ip = $1 AND created_at > $2", ip, hour)
                .await?;
            if per_ip >= i64::from(self.rules.ip_hourly_cap) {
                return Err(CodeError::IpCap);
            }
            let per_pair: i64 = sqlx::query_scalar(
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM sms_codes WHERE phone = $1 AND ip = $2 AND created_at > $3",
            )
            .bind(phone)
            .bind(ip)
            .bind(day)
            .fetch_one(self.db.writer())
            .await
            .map_err(StoreError::from)?;
            if per_pair >= i64::from(self.rules.requester_daily_cap) {
                return Err(CodeError::IpCap);
            }
        }
        let mut known_device = false;
        if let Some(device) = device {
            let per_device = self
                .count("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM sms_codes WHERE device = $1 AND created_at > $2", device, hour)
                .await?;
            if per_device >= i64::from(self.rules.device_hourly_cap) {
                return Err(CodeError::DeviceCap);
            }
            known_device = sqlx::query(
                "SELECT 1 AS one FROM sms_codes WHERE phone = $1 AND device = $2 AND used = 1 LIMIT 1",
            )
            .bind(phone)
            .bind(device)
            .fetch_optional(self.db.writer())
            .await
            .map_err(StoreError::from)?
            .is_some();
        }
        if !known_device {
            let per_phone = self
                .count("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM sms_codes WHERE phone = $1 AND created_at > $2", phone, day)
                .await?;
            if per_phone >= i64::from(self.rules.daily_cap) {
                return Err(CodeError::DailyCap);
            }
        }
        let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
        let ttl_ms = i64::try_from(self.rules.code_ttl_secs).unwrap_or(i64::MAX / 2) * 1000;
        sqlx::query(
            "INSERT INTO sms_codes (phone, code_hash, ip, device, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(phone)
        .bind(digest(phone, &code))
        .bind(ip)
        .bind(device)
        .bind(now)
        .bind(now + ttl_ms)
        .execute(self.db.writer())
        .await
        .map_err(StoreError::from)?;
        Ok(code)
    }

    /// Accept `code` for `phone` once.
    ///
    /// The check is one statement: it compares the digest and, on a mismatch, counts the try,
    /// only while the code is unused, unexpired and below `max_attempts` — so parallel guesses
    /// cannot each read the same count and be checked beyond the limit (the row is locked by the
    /// UPDATE in PostgreSQL; SQLite has one writer).
    pub async fn verify(&self, phone: &str, code: &str) -> Result<(), CodeError> {
        let given = digest(phone, code.trim());
        let max = i64::from(self.rules.max_attempts);
        let checked: Option<(i64, i64)> = sqlx::query_as(
            "UPDATE sms_codes SET \
                 used = CASE WHEN code_hash = $1 THEN 1 ELSE used END, \
                 attempts = attempts + CASE WHEN code_hash = $1 THEN 0 ELSE 1 END \
             WHERE id = (SELECT id FROM sms_codes WHERE phone = $2 AND used = 0 \
                         ORDER BY created_at DESC, id DESC LIMIT 1) \
               AND used = 0 AND attempts < $3 AND expires_at >= $4 \
             RETURNING used, attempts",
        )
        .bind(&given)
        .bind(phone)
        .bind(max)
        .bind(now_ms())
        .fetch_optional(self.db.writer())
        .await
        .map_err(StoreError::from)?;
        if let Some((used, attempts)) = checked {
            return if used == 1 {
                Ok(())
            } else if attempts >= max {
                Err(CodeError::Locked)
            } else {
                Err(CodeError::Wrong)
            };
        }
        // Not checked: say why (nothing was counted).
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT attempts, expires_at FROM sms_codes WHERE phone = $1 AND used = 0 \
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(phone)
        .fetch_optional(self.db.writer())
        .await
        .map_err(StoreError::from)?;
        let Some((attempts, expires_at)) = row else {
            return Err(CodeError::Expired);
        };
        // Locked, or changed between the two statements (used or locked by a parallel try),
        // unless it simply expired.
        if attempts < max && now_ms() > expires_at {
            Err(CodeError::Expired)
        } else {
            Err(CodeError::Locked)
        }
    }
}
