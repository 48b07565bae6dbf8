//! A key's spending this month and its monthly limit.
//!
//! The limit is checked before a call is accepted: the key's spend this calendar month (China
//! time) plus the call's hold must fit under it. Spend is what the key's finished chat calls were
//! charged (`chat_usage`) plus its tasks' credits (held while running, charged when done, zero
//! when failed). Two calls of one key that start at the same instant can both pass the check;
//! the limit is a budget guard, the balance stays exact either way. This is one small function
//! on purpose: the money engine can take it over (and hold against the limit) later.

use chrono::{Datelike, TimeZone};

use super::keys::KeyOwner;
use crate::storage::{Db, StoreError};
use crate::util::clock::now_ms;

/// China standard time, the calendar the month is counted in.
const CHINA_OFFSET_MS: i64 = 8 * 3600 * 1000;

/// Unix ms of the first instant of the calendar month (China time) that contains `now_ms`.
pub fn month_start_ms(now_ms: i64) -> i64 {
    let local = now_ms.saturating_add(CHINA_OFFSET_MS);
    let Some(day) = chrono::Utc.timestamp_millis_opt(local).single() else {
        return 0;
    };
    chrono::Utc
        .with_ymd_and_hms(day.year(), day.month(), 1, 0, 0, 0)
        .single()
        .map_or(0, |first| first.timestamp_millis() - CHINA_OFFSET_MS)
}

/// Units (1/10,000 credit) a key has spent (or holds for running tasks) since `since` (unix ms):
/// chat usage rows are in units, task prices in whole credits.
pub async fn key_spent_since(db: &Db, key_id: i64, since: i64) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT CAST(COALESCE((SELECT SUM(credits) FROM chat_usage WHERE key_id = $1 AND created_at >= $2), 0) \
              + COALESCE((SELECT SUM(credits) FROM tasks WHERE key_id = $1 AND created_at >= $2), 0) * 10000 AS BIGINT) AS spent",
    )
    .bind(key_id)
    .bind(since)
    .fetch_one(db.reader())
    .await?)
}

/// A key's spend since `since` and the time of its last call (unix ms), for the key list.
pub async fn key_activity(
    db: &Db,
    key_id: i64,
    since: i64,
) -> Result<(i64, Option<i64>), StoreError> {
    let spent = key_spent_since(db, key_id, since).await?;
    let last: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(MAX(t) AS BIGINT) AS last FROM (\
           SELECT MAX(created_at) AS t FROM chat_usage WHERE key_id = $1 \
           UNION ALL SELECT MAX(created_at) FROM tasks WHERE key_id = $1) AS used",
    )
    .bind(key_id)
    .fetch_one(db.reader())
    .await?;
    Ok((spent, last))
}

/// Why a call was refused by its key's monthly spend limit (amounts as credits text).
#[derive(Debug, thiserror::Error)]
pub enum SpendError {
    #[error(
        "该 API Key 本月消费已达上限（已用 {spent} 积分，本次需 {hold} 积分，上限 {limit} 积分）/ this API key's monthly spend limit would be exceeded (spent {spent}, this call {hold}, limit {limit} credits)"
    )]
    OverLimit {
        limit: String,
        spent: String,
        hold: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Refuse a call whose `hold` (units) would take the key past its monthly limit (whole
/// credits) (the API answers 429).
pub async fn check_monthly_limit(db: &Db, owner: &KeyOwner, hold: i64) -> Result<(), SpendError> {
    let Some(limit) = owner.monthly_limit else {
        return Ok(());
    };
    let spent = key_spent_since(db, owner.key_id, month_start_ms(now_ms())).await?;
    if spent.saturating_add(hold.max(0)) > crate::billing::units(limit) {
        return Err(SpendError::OverLimit {
            limit: crate::billing::credits_text(crate::billing::units(limit)),
            spent: crate::billing::credits_text(spent),
            hold: crate::billing::credits_text(hold),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_start_at_china_midnight() {
        // 2026-03-01 00:30 China time = 2026-02-28 16:30 UTC.
        let t = chrono::Utc
            .with_ymd_and_hms(2026, 2, 28, 16, 30, 0)
            .unwrap()
            .timestamp_millis();
        let start = chrono::Utc
            .with_ymd_and_hms(2026, 2, 28, 16, 0, 0)
            .unwrap()
            .timestamp_millis();
        assert_eq!(month_start_ms(t), start);
        // 2026-02-28 15:59 UTC is still February in China.
        let feb = chrono::Utc
            .with_ymd_and_hms(2026, 1, 31, 16, 0, 0)
            .unwrap()
            .timestamp_millis();
        assert_eq!(month_start_ms(start - 60_000), feb);
    }
}
