//! SMS login codes: 6 digits, stored as a SHA-256 of phone and code, single use, expiring after
//! `code_ttl_secs`; at most one code per phone per `resend_secs`, `daily_cap` per phone and
//! `ip_hourly_cap` per client address a day/hour; `max_attempts` wrong tries lock the code (the
//! right code no longer works either; the user must ask for a new one).

use rand::Rng;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::config::AuthConfig;
use crate::storage::{Db, StoreError, now_ms};

/// Why a code was not issued or not accepted.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    #[error("验证码发送过于频繁,请 {0} 秒后再试 / wait {0} s before asking for another code")]
    TooSoon(u64),
    #[error("今日验证码次数已达上限 / daily code limit reached for this number")]
    DailyCap,
    #[error("该地址请求验证码过多,请稍后再试 / too many codes requested from this address")]
    IpCap,
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
        let row = sqlx::query(sql)
            .bind(subject)
            .bind(since)
            .fetch_one(self.db.writer())
            .await?;
        Ok(row.try_get("n")?)
    }

    /// A new code for `phone` (the caller sends it), within the limits.
    pub async fn issue(&self, phone: &str, ip: Option<&str>) -> Result<String, CodeError> {
        let now = now_ms();
        let last: Option<i64> =
            sqlx::query("SELECT MAX(created_at) AS t FROM sms_codes WHERE phone = $1")
                .bind(phone)
                .fetch_one(self.db.writer())
                .await
                .map_err(StoreError::from)?
                .try_get("t")
                .map_err(StoreError::from)?;
        let resend_ms = i64::try_from(self.rules.resend_secs).unwrap_or(i64::MAX / 2) * 1000;
        if let Some(last) = last
            && now - last < resend_ms
        {
            let wait = (resend_ms - (now - last) + 999) / 1000;
            return Err(CodeError::TooSoon(u64::try_from(wait).unwrap_or(1).max(1)));
        }
        let day = now - 86_400_000;
        let per_phone = self
            .count("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM sms_codes WHERE phone = $1 AND created_at > $2", phone, day)
            .await?;
        if per_phone >= i64::from(self.rules.daily_cap) {
            return Err(CodeError::DailyCap);
        }
        if let Some(ip) = ip {
            let per_ip = self
                .count("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM sms_codes WHERE ip = $1 AND created_at > $2", ip, now - 3_600_000)
                .await?;
            if per_ip >= i64::from(self.rules.ip_hourly_cap) {
                return Err(CodeError::IpCap);
            }
        }
        let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
        let ttl_ms = i64::try_from(self.rules.code_ttl_secs).unwrap_or(i64::MAX / 2) * 1000;
        sqlx::query(
            "INSERT INTO sms_codes (phone, code_hash, ip, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(phone)
        .bind(digest(phone, &code))
        .bind(ip)
        .bind(now)
        .bind(now + ttl_ms)
        .execute(self.db.writer())
        .await
        .map_err(StoreError::from)?;
        Ok(code)
    }

    /// Accept `code` for `phone` once.
    pub async fn verify(&self, phone: &str, code: &str) -> Result<(), CodeError> {
        let row = sqlx::query(
            "SELECT id, code_hash, attempts, expires_at FROM sms_codes WHERE phone = $1 AND used = 0 \
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(phone)
        .fetch_optional(self.db.writer())
        .await
        .map_err(StoreError::from)?;
        let Some(row) = row else {
            return Err(CodeError::Expired);
        };
        let id: i64 = row.try_get("id").map_err(StoreError::from)?;
        let attempts: i64 = row.try_get("attempts").map_err(StoreError::from)?;
        let expires_at: i64 = row.try_get("expires_at").map_err(StoreError::from)?;
        let stored: String = row.try_get("code_hash").map_err(StoreError::from)?;
        if attempts >= i64::from(self.rules.max_attempts) {
            return Err(CodeError::Locked);
        }
        if now_ms() > expires_at {
            return Err(CodeError::Expired);
        }
        // Both sides are digests: comparing them reveals nothing about the code.
        if stored != digest(phone, code.trim()) {
            sqlx::query("UPDATE sms_codes SET attempts = attempts + 1 WHERE id = $1")
                .bind(id)
                .execute(self.db.writer())
                .await
                .map_err(StoreError::from)?;
            return Err(if attempts + 1 >= i64::from(self.rules.max_attempts) {
                CodeError::Locked
            } else {
                CodeError::Wrong
            });
        }
        let used = sqlx::query("UPDATE sms_codes SET used = 1 WHERE id = $1 AND used = 0")
            .bind(id)
            .execute(self.db.writer())
            .await
            .map_err(StoreError::from)?;
        if used.rows_affected() == 1 {
            Ok(())
        } else {
            Err(CodeError::Expired)
        }
    }
}
