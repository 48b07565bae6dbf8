//! The opt-in low-balance SMS: a sweep (every few seconds, on every node) finds the users who
//! asked for it whose balance fell below their threshold and sends each one SMS per downward
//! crossing through the configured sender. A user is claimed with a conditional update before
//! the send, so two nodes never both send; the mark is cleared once the balance is back at or
//! above the threshold, which arms the next crossing. The text carries the balance and the
//! threshold only.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::sms::SmsSender;
use crate::billing::{credits_text, units};
use crate::storage::{Db, Flag, StoreError};

/// How often the sweep runs.
pub const PERIOD: Duration = Duration::from_secs(2);

/// A user who asked for the SMS, as the sweep reads them.
#[derive(sqlx::FromRow)]
struct Watched {
    id: i64,
    phone: String,
    /// Units.
    balance: i64,
    /// Whole credits.
    #[sqlx(rename = "low_balance")]
    threshold: i64,
    /// An SMS was sent for the current crossing.
    #[sqlx(rename = "low_balance_alerted", try_from = "Flag")]
    alerted: bool,
}

/// One sweep: SMS for new crossings, re-arm users back above. Returns the SMS sent.
pub async fn sweep(db: &Db, sms: &SmsSender) -> Result<usize, StoreError> {
    let watched: Vec<Watched> = sqlx::query_as(
        "SELECT id, phone, balance, low_balance, low_balance_alerted FROM users \
         WHERE low_balance_sms = 1 AND low_balance IS NOT NULL AND disabled = 0",
    )
    .fetch_all(db.reader())
    .await?;
    let mut sent = 0;
    for Watched {
        id,
        phone,
        balance,
        threshold,
        alerted,
    } in watched
    {
        let below = balance < units(threshold);
        if below && !alerted {
            let claimed = sqlx::query(
                "UPDATE users SET low_balance_alerted = 1 WHERE id = $1 AND low_balance_alerted = 0",
            )
            .bind(id)
            .execute(db.writer())
            .await?
            .rows_affected();
            if claimed == 1 {
                let shown = credits_text(balance);
                match sms.send_low_balance(&phone, &shown, threshold).await {
                    Ok(()) => sent += 1,
                    Err(e) => tracing::warn!(user_id = id, error = %e, "low-balance SMS not sent"),
                }
            }
        } else if !below && alerted {
            sqlx::query(
                "UPDATE users SET low_balance_alerted = 0 WHERE id = $1 AND low_balance_alerted = 1",
            )
            .bind(id)
            .execute(db.writer())
            .await?;
        }
    }
    Ok(sent)
}

/// Run [`sweep`] every [`PERIOD`] until `stop`.
pub async fn watch(db: Db, sms: SmsSender, stop: CancellationToken) {
    let mut tick = tokio::time::interval(PERIOD);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => break,
        }
        if let Err(e) = sweep(&db, &sms).await {
            tracing::warn!(error = %e, "low-balance sweep failed");
        }
    }
}

/// Set a user's threshold and SMS choice. The mark starts as "already below" when the balance
/// is below the new threshold, so setting it is not itself a crossing.
pub async fn set(
    db: &Db,
    user_id: i64,
    threshold: Option<i64>,
    sms: bool,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE users SET low_balance = $1, low_balance_sms = $2, \
         low_balance_alerted = CASE WHEN $3 > 0 AND balance < $4 THEN 1 ELSE 0 END WHERE id = $5",
    )
    .bind(threshold)
    .bind(i64::from(sms))
    .bind(threshold.map_or(0, units))
    .bind(threshold.map_or(0, units))
    .bind(user_id)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// A user's threshold and SMS choice.
pub async fn get(db: &Db, user_id: i64) -> Result<(Option<i64>, bool), StoreError> {
    let row: Option<(Option<i64>, Flag)> =
        sqlx::query_as("SELECT low_balance, low_balance_sms FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(db.reader())
            .await?;
    Ok(row.map_or((None, false), |(threshold, Flag(sms))| (threshold, sms)))
}
