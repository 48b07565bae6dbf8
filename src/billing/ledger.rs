//! The ledger: every change of a user's balance is one guarded `UPDATE users … WHERE balance +
//! delta >= 0` and one `ledger` row (with `balance_after` and a unique idempotency key) in the same
//! transaction. So the balance never goes below zero on any backend under any concurrency, and
//! the balance always equals the sum of the user's ledger rows.
//!
//! Reservations hold the worst-case price of a call: `reserve` debits it, `settle` refunds what
//! was not used (or takes an overrun, never more than the balance), `release` refunds it all.

use rand::Rng;
use sqlx::{Any, Row, Transaction};

use crate::storage::{Backend, Db, StoreError, now_ms};

/// Why a ledger operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("insufficient balance")]
    InsufficientBalance,
    #[error("unknown user")]
    UnknownUser,
    /// A single change larger than [`MAX_CHANGE`] credits (a typo, or an overflow attempt).
    #[error("amount out of range")]
    OutOfRange,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for LedgerError {
    fn from(e: sqlx::Error) -> Self {
        LedgerError::Store(StoreError::Sql(e))
    }
}

/// The largest single balance change (10^12 credits = 10^10 yuan at the default rate): larger
/// amounts are refused before they could overflow the balance column.
pub const MAX_CHANGE: i64 = 1_000_000_000_000;

/// Kinds of ledger rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Credits given by an admin or demo mode.
    Grant,
    /// Manual correction by an admin (either sign).
    Adjust,
    /// Worst-case hold before a call.
    Reserve,
    /// Difference between a reservation and the actual price.
    Settle,
    /// A whole reservation given back (failure, cancel).
    Release,
    /// A redemption code (兑换码).
    Redeem,
    /// A paid recharge order (支付宝充值).
    Recharge,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Grant => "grant",
            EntryKind::Adjust => "adjust",
            EntryKind::Reserve => "reserve",
            EntryKind::Settle => "settle",
            EntryKind::Release => "release",
            EntryKind::Redeem => "redeem",
            EntryKind::Recharge => "recharge",
        }
    }
}

/// Result of an idempotent balance change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Applied now; the balance after it.
    Now { balance: i64 },
    /// A change with the same idempotency key was applied before; nothing changed.
    Before,
}

/// Credits held for one call.
#[derive(Debug, Clone)]
pub struct Reservation {
    pub id: String,
    pub user_id: i64,
    pub amount: i64,
}

/// What settling a reservation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    /// Credits finally taken for the call.
    pub charged: i64,
    /// Part of the price the balance could not cover (an upstream that overran its limit).
    pub shortfall: i64,
    /// False when the reservation had already been closed (nothing changed).
    pub applied: bool,
}

/// Ledger operations over the database.
#[derive(Clone, Debug)]
pub struct Ledger {
    db: Db,
}

impl Ledger {
    pub fn new(db: Db) -> Ledger {
        Ledger { db }
    }

    /// Add (or with a negative amount, take) credits, once per idempotency key.
    pub async fn apply(
        &self,
        user_id: i64,
        amount: i64,
        kind: EntryKind,
        reason: &str,
        idem_key: &str,
    ) -> Result<Applied, LedgerError> {
        if !(-MAX_CHANGE..=MAX_CHANGE).contains(&amount) {
            return Err(LedgerError::OutOfRange);
        }
        let mut tx = self.db.begin_write().await?;
        let seen = sqlx::query("SELECT 1 FROM ledger WHERE idem_key = $1")
            .bind(idem_key)
            .fetch_optional(&mut *tx)
            .await?;
        if seen.is_some() {
            return Ok(Applied::Before);
        }
        let balance = change_balance(&mut tx, user_id, amount).await?;
        let inserted = insert_entry(
            &mut tx, user_id, amount, balance, kind, reason, idem_key, None,
        )
        .await;
        match inserted {
            Ok(()) => {}
            Err(e) if e.is_unique_violation() => return Ok(Applied::Before),
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(Applied::Now { balance })
    }

    /// Hold `amount` credits for a call; `InsufficientBalance` when it does not fit.
    pub async fn reserve(
        &self,
        user_id: i64,
        amount: i64,
        purpose: &str,
        model: &str,
    ) -> Result<Reservation, LedgerError> {
        let mut tx = self.db.begin_write().await?;
        let reservation = self
            .reserve_in(&mut tx, user_id, amount, purpose, model)
            .await?;
        tx.commit().await?;
        record_reserve();
        Ok(reservation)
    }

    /// [`Ledger::reserve`] inside the caller's write transaction, so the hold commits (or rolls
    /// back) together with whatever the caller writes beside it — a task row, for instance. Call
    /// [`record_reserve`] after the commit.
    pub async fn reserve_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        user_id: i64,
        amount: i64,
        purpose: &str,
        model: &str,
    ) -> Result<Reservation, LedgerError> {
        let id = random_id();
        let balance = match change_balance(tx, user_id, -amount).await {
            Ok(balance) => balance,
            Err(e) => {
                if matches!(e, LedgerError::InsufficientBalance) {
                    metrics::counter!("llmage_ledger_operations_total", "op" => "refused")
                        .increment(1);
                }
                return Err(e);
            }
        };
        sqlx::query(
            "INSERT INTO reservations (id, user_id, amount, status, purpose, model, created_at) \
             VALUES ($1, $2, $3, 'open', $4, $5, $6)",
        )
        .bind(&id)
        .bind(user_id)
        .bind(amount)
        .bind(purpose)
        .bind(model)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        let reason = format!("{purpose} {model}");
        insert_entry(
            tx,
            user_id,
            -amount,
            balance,
            EntryKind::Reserve,
            &reason,
            &format!("reserve:{id}"),
            Some(&id),
        )
        .await?;
        Ok(Reservation {
            id,
            user_id,
            amount,
        })
    }

    /// Close a reservation at its actual price: refund the rest, or take an overrun up to what
    /// the balance holds. A reservation closes once; later calls change nothing.
    pub async fn settle(
        &self,
        reservation_id: &str,
        price: i64,
    ) -> Result<Settlement, LedgerError> {
        let settled = self.settle_inner(reservation_id, price).await;
        if settled.as_ref().is_ok_and(|s| s.applied) {
            metrics::counter!("llmage_ledger_operations_total", "op" => "settle").increment(1);
        }
        settled
    }

    async fn settle_inner(
        &self,
        reservation_id: &str,
        actual: i64,
    ) -> Result<Settlement, LedgerError> {
        let actual = actual.max(0);
        let mut tx = self.db.begin_write().await?;
        let row = sqlx::query(
            "UPDATE reservations SET status = $2, charged = $3, closed_at = $4 \
             WHERE id = $1 AND status = 'open' RETURNING user_id, amount",
        )
        .bind(reservation_id)
        .bind(if actual == 0 { "released" } else { "settled" })
        .bind(actual)
        .bind(now_ms())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Settlement {
                charged: 0,
                shortfall: 0,
                applied: false,
            });
        };
        let user_id: i64 = row.try_get("user_id")?;
        let reserved: i64 = row.try_get("amount")?;
        let (kind, reason) = settle_entry(actual, reserved);
        let idem = format!("settle:{reservation_id}");
        let mut shortfall = 0;
        let delta = reserved - actual;
        if delta > 0 {
            let balance = change_balance(&mut tx, user_id, delta).await?;
            insert_entry(
                &mut tx,
                user_id,
                delta,
                balance,
                kind,
                &reason,
                &idem,
                Some(reservation_id),
            )
            .await?;
        } else if delta < 0 {
            let over = -delta;
            let current = locked_balance(self.db.backend(), &mut tx, user_id).await?;
            let take = over.min(current);
            shortfall = over - take;
            if take > 0 {
                let balance = change_balance(&mut tx, user_id, -take).await?;
                insert_entry(
                    &mut tx,
                    user_id,
                    -take,
                    balance,
                    kind,
                    &reason,
                    &idem,
                    Some(reservation_id),
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(Settlement {
            charged: actual - shortfall,
            shortfall,
            applied: true,
        })
    }

    /// Give a whole reservation back.
    pub async fn release(&self, reservation_id: &str) -> Result<Settlement, LedgerError> {
        let settled = self.settle_inner(reservation_id, 0).await;
        if settled.as_ref().is_ok_and(|s| s.applied) {
            metrics::counter!("llmage_ledger_operations_total", "op" => "release").increment(1);
        }
        settled
    }

    /// Release open reservations of one purpose prefix older than `older_than_ms` (calls that died
    /// with their process). Returns how many were released.
    pub async fn release_stale(
        &self,
        purpose_prefix: &str,
        older_than_ms: i64,
    ) -> Result<usize, LedgerError> {
        let cutoff = now_ms() - older_than_ms;
        let rows = sqlx::query(
            "SELECT id FROM reservations WHERE status = 'open' AND created_at < $1 AND purpose LIKE $2",
        )
        .bind(cutoff)
        .bind(format!("{purpose_prefix}%"))
        .fetch_all(self.db.reader())
        .await?;
        let mut released = 0;
        for row in rows {
            let id: String = row.try_get("id")?;
            if self.release(&id).await?.applied {
                released += 1;
            }
        }
        Ok(released)
    }

    /// Current balance.
    pub async fn balance(&self, user_id: i64) -> Result<i64, LedgerError> {
        let row = sqlx::query("SELECT balance FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(self.db.reader())
            .await?
            .ok_or(LedgerError::UnknownUser)?;
        Ok(row.try_get("balance")?)
    }

    /// Sum of a user's ledger rows (equals the balance; used by checks and tests).
    pub async fn ledger_sum(&self, user_id: i64) -> Result<i64, LedgerError> {
        let row = sqlx::query("SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS total FROM ledger WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(self.db.reader())
            .await?;
        Ok(row.try_get("total")?)
    }
}

/// Count one committed reservation (the `reserve` operation of `llmage_ledger_operations_total`).
pub fn record_reserve() {
    metrics::counter!("llmage_ledger_operations_total", "op" => "reserve").increment(1);
}

/// The kind and reason of the ledger row that closes a reservation of `reserved` at `actual`.
pub(crate) fn settle_entry(actual: i64, reserved: i64) -> (EntryKind, String) {
    if actual == 0 {
        (EntryKind::Release, "release reservation".to_owned())
    } else {
        (
            EntryKind::Settle,
            format!("settle: price {actual}, reserved {reserved}"),
        )
    }
}

/// A user's balance, locked for the rest of the transaction.
pub(crate) async fn locked_balance(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    user_id: i64,
) -> Result<i64, LedgerError> {
    let sql = match backend {
        Backend::Postgres => "SELECT balance FROM users WHERE id = $1 FOR UPDATE",
        // On SQLite every write transaction holds the database's write lock from its start
        // (BEGIN IMMEDIATE), so nobody else changes the balance until it ends.
        Backend::Sqlite => "SELECT balance FROM users WHERE id = $1",
    };
    let row = sqlx::query(sql)
        .bind(user_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(LedgerError::UnknownUser)?;
    Ok(row.try_get("balance")?)
}

/// The one guarded balance update: fails with `InsufficientBalance` rather than go below zero.
pub(crate) async fn change_balance(
    tx: &mut Transaction<'static, Any>,
    user_id: i64,
    delta: i64,
) -> Result<i64, LedgerError> {
    let row = sqlx::query("UPDATE users SET balance = balance + $1 WHERE id = $2 AND balance + $1 >= 0 RETURNING balance")
        .bind(delta)
        .bind(user_id)
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(row) => Ok(row.try_get("balance")?),
        None => {
            let exists = sqlx::query("SELECT 1 FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&mut **tx)
                .await?;
            Err(if exists.is_some() {
                LedgerError::InsufficientBalance
            } else {
                LedgerError::UnknownUser
            })
        }
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "one ledger row has this many columns"
)]
async fn insert_entry(
    tx: &mut Transaction<'static, Any>,
    user_id: i64,
    amount: i64,
    balance_after: i64,
    kind: EntryKind,
    reason: &str,
    idem_key: &str,
    reservation_id: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO ledger (user_id, amount, balance_after, kind, reason, idem_key, reservation_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(user_id)
    .bind(amount)
    .bind(balance_after)
    .bind(kind.as_str())
    .bind(reason)
    .bind(idem_key)
    .bind(reservation_id)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An id that sorts by creation time: 48 bits of unix milliseconds, then 80 random bits (32 hex
/// digits, like [`random_id`]). Rows keyed by it are appended to the end of their indexes instead
/// of landing on a random page each, so a commit writes fewer pages.
pub fn time_ordered_id() -> String {
    let random: [u8; 10] = rand::rng().random();
    let millis = u64::try_from(now_ms()).unwrap_or(0) & 0xffff_ffff_ffff;
    format!("{millis:012x}{}", hex::encode(random))
}

/// A random, unguessable id (128 bits, hex).
pub fn random_id() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}
