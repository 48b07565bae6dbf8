//! Redemption codes (兑换码): an admin creates a batch (`llmage admin redeem create`), each code
//! is shown once and stored as its SHA-256; a user redeems a code once and the credits enter the
//! ledger with the idempotency key `redeem:<code id>`. Claiming the code and crediting are two
//! steps, each exactly-once: a crash between them is completed by the same user redeeming again.

use rand::Rng;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::ledger::{Applied, EntryKind, Ledger, LedgerError};
use crate::storage::{Db, StoreError};
use crate::util::clock::now_ms;

/// Why a code was not redeemed.
#[derive(Debug, thiserror::Error)]
pub enum RedeemError {
    #[error("兑换码无效 / no such code")]
    Unknown,
    #[error("兑换码已被使用 / this code was already redeemed")]
    Used,
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// 一个兑换码的状态,供管理员查看(时间为 Unix 秒) / One code's state, for the admin view (times
/// in unix seconds).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RedeemCode {
    pub id: i64,
    pub batch: String,
    pub credits: i64,
    pub note: String,
    pub created_at: i64,
    pub redeemed_by: Option<i64>,
    pub redeemed_at: Option<i64>,
}

/// Code alphabet: no 0/O/1/I/L to avoid misreading.
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

fn digest(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    hex::encode(Sha256::digest(normal.as_bytes()))
}

/// `XXXX-XXXX-XXXX-XXXX` (80 bits).
fn generate() -> String {
    let mut rng = rand::rng();
    (0..4)
        .map(|_| {
            (0..4)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Redemption codes.
#[derive(Clone, Debug)]
pub struct Redeem {
    db: Db,
    ledger: Ledger,
}

impl Redeem {
    pub fn new(db: Db) -> Redeem {
        Redeem {
            ledger: Ledger::new(db.clone()),
            db,
        }
    }

    /// A batch of `count` codes worth `credits` each; the batch id and the codes (shown once).
    pub async fn create_batch(
        &self,
        credits: i64,
        count: usize,
        note: &str,
    ) -> Result<(String, Vec<String>), StoreError> {
        let batch = crate::util::ids::random_id();
        let mut codes = Vec::with_capacity(count);
        for _ in 0..count {
            let code = generate();
            sqlx::query(
                "INSERT INTO redeem_codes (code_hash, credits, batch, note, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(digest(&code))
            .bind(credits)
            .bind(&batch)
            .bind(note)
            .bind(now_ms())
            .execute(self.db.writer())
            .await?;
            codes.push(code);
        }
        Ok((batch, codes))
    }

    /// The newest codes' state (never the codes themselves: only their hashes are kept).
    pub async fn list(&self, limit: i64) -> Result<Vec<RedeemCode>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, batch, credits, note, created_at, redeemed_by, redeemed_at FROM redeem_codes \
             ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.db.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RedeemCode {
                    id: r.try_get("id")?,
                    batch: r.try_get("batch")?,
                    credits: r.try_get("credits")?,
                    note: r.try_get("note")?,
                    created_at: r.try_get::<i64, _>("created_at")? / 1000,
                    redeemed_by: r.try_get("redeemed_by")?,
                    redeemed_at: r
                        .try_get::<Option<i64>, _>("redeemed_at")?
                        .map(|t| t / 1000),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Redeem `code` for `user_id`; the credits added and the balance after.
    pub async fn redeem(&self, user_id: i64, code: &str) -> Result<(i64, i64), RedeemError> {
        let row = sqlx::query(
            "UPDATE redeem_codes SET redeemed_by = $1, redeemed_at = $2 \
             WHERE code_hash = $3 AND (redeemed_by IS NULL OR redeemed_by = $1) RETURNING id, credits",
        )
        .bind(user_id)
        .bind(now_ms())
        .bind(digest(code))
        .fetch_optional(self.db.writer())
        .await
        .map_err(StoreError::from)?;
        let Some(row) = row else {
            let exists = sqlx::query("SELECT 1 FROM redeem_codes WHERE code_hash = $1")
                .bind(digest(code))
                .fetch_optional(self.db.reader())
                .await
                .map_err(StoreError::from)?;
            return Err(if exists.is_some() {
                RedeemError::Used
            } else {
                RedeemError::Unknown
            });
        };
        let id: i64 = row.try_get("id").map_err(StoreError::from)?;
        let credits: i64 = row.try_get("credits").map_err(StoreError::from)?;
        match self
            .ledger
            .apply_labelled(
                user_id,
                super::units(credits),
                EntryKind::Redeem,
                &format!("redeem code #{id}"),
                Some(&format!("兑换码 #{id}")),
                &format!("redeem:{id}"),
            )
            .await?
        {
            Applied::Now { balance } => Ok((credits, balance)),
            Applied::Before => Err(RedeemError::Used),
        }
    }
}
