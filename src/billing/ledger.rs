//! The ledger API, the money engine's front door for single operations (credits, recharges,
//! redemptions, admin adjustments, a task's hold and its settlement): each runs the engine
//! ([`super::engine`]) in a write transaction of its own, or in the caller's when the money must
//! commit with the caller's rows (a task's hold with its task row).

use rand::Rng;
use sqlx::{Any, Row, Transaction};

use super::engine::{self, Change, Close, EndLease, Hold, Op, Outcome, sqlx_store::SqlxStore};
pub use super::engine::{Applied, EntryKind, LedgerError, MAX_CHANGE, Reservation, Settlement};
use crate::storage::{Db, StoreError};
use crate::util::clock::now_ms;

/// Ledger operations over the database.
#[derive(Clone, Debug)]
pub struct Ledger {
    db: Db,
}

impl Ledger {
    pub fn new(db: Db) -> Ledger {
        Ledger { db }
    }

    /// Add (or with a negative amount, take) `amount` units, once per idempotency key. `label`
    /// is what the user reads for the row when it should differ from the kind's own words.
    pub async fn apply_labelled(
        &self,
        user_id: i64,
        amount: i64,
        kind: EntryKind,
        reason: &str,
        label: Option<&str>,
        idem_key: &str,
    ) -> Result<Applied, LedgerError> {
        let op = Op::Change(Change {
            user_id,
            amount,
            kind,
            reason: reason.to_owned(),
            label: label.map(str::to_owned),
            idem_key: idem_key.to_owned(),
        });
        match self.run_one(op).await {
            Ok(Outcome::Changed(applied)) => applied,
            Ok(_) => Err(unexpected()),
            // Two processes applied the same key at once: the other one won.
            Err(LedgerError::Store(e)) if e.is_unique_violation() => Ok(Applied::Before),
            Err(e) => Err(e),
        }
    }

    /// [`Ledger::apply_labelled`] without a label of its own.
    pub async fn apply(
        &self,
        user_id: i64,
        amount: i64,
        kind: EntryKind,
        reason: &str,
        idem_key: &str,
    ) -> Result<Applied, LedgerError> {
        self.apply_labelled(user_id, amount, kind, reason, None, idem_key)
            .await
    }

    /// Hold `amount` units inside the caller's write transaction, so the hold commits (or rolls
    /// back) together with whatever the caller writes beside it — a task row, for instance.
    /// Call [`record_reserve`] after the commit.
    pub async fn reserve_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        user_id: i64,
        amount: i64,
        purpose: &'static str,
        model: &str,
        label: &str,
    ) -> Result<Reservation, LedgerError> {
        let op = Op::Hold(Hold {
            user_id,
            min: amount,
            max: amount,
            purpose,
            model: model.to_owned(),
            label: label.to_owned(),
            owner: None,
        });
        let mut store = SqlxStore::within(self.db.backend(), tx);
        let outcome = engine::apply(&mut store, std::slice::from_ref(&op))
            .await?
            .pop()
            .ok_or_else(unexpected)?;
        match outcome {
            Outcome::Held(Err(e)) => {
                if matches!(e, LedgerError::InsufficientBalance) {
                    metrics::counter!("llmage_ledger_operations_total", "op" => "refused")
                        .increment(1);
                }
                Err(e)
            }
            Outcome::Held(Ok(r)) => Ok(r),
            _ => Err(unexpected()),
        }
    }

    /// Close a hold at its actual price (units): charge `min(price, hold)` and refund the rest.
    /// A hold closes once; later calls change nothing.
    pub async fn settle(
        &self,
        reservation_id: &str,
        price: i64,
    ) -> Result<Settlement, LedgerError> {
        self.close(reservation_id, price, false).await
    }

    /// Give a whole hold back.
    pub async fn release(&self, reservation_id: &str) -> Result<Settlement, LedgerError> {
        self.close(reservation_id, 0, false).await
    }

    /// Give back a hold whose owner process is gone (status `orphaned`: a late settlement by its
    /// owner still charges it).
    pub async fn release_orphan(&self, reservation_id: &str) -> Result<Settlement, LedgerError> {
        self.close(reservation_id, 0, true).await
    }

    /// Give back the rest of a credit lease whose owner process is gone (status `orphaned`:
    /// a call its owner settles late is still charged, up to what is free). The units returned.
    pub async fn end_orphaned_lease(&self, lease_id: &str) -> Result<i64, LedgerError> {
        let op = Op::EndLease(EndLease {
            lease_id: lease_id.to_owned(),
            orphaned: true,
        });
        match self.run_one(op).await? {
            Outcome::Ended(rest) => Ok(rest),
            _ => Err(unexpected()),
        }
    }

    async fn close(
        &self,
        reservation_id: &str,
        price: i64,
        orphaned: bool,
    ) -> Result<Settlement, LedgerError> {
        let op = Op::Close(Close {
            reservation_id: Some(reservation_id.to_owned()),
            price,
            usage: None,
            orphaned,
        });
        match self.run_one(op).await? {
            Outcome::Closed(s) => Ok(s),
            _ => Err(unexpected()),
        }
    }

    async fn run_one(&self, op: Op) -> Result<Outcome, LedgerError> {
        let mut store = SqlxStore::new(self.db.clone());
        engine::run(&mut store, std::slice::from_ref(&op))
            .await?
            .pop()
            .ok_or_else(unexpected)
    }

    /// Current balance (units).
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

fn unexpected() -> LedgerError {
    LedgerError::Store(StoreError::Sql(sqlx::Error::Protocol(
        "the money engine gave no outcome for an operation".into(),
    )))
}

/// Count one committed hold (the `reserve` operation of `llmage_ledger_operations_total`).
pub fn record_reserve() {
    metrics::counter!("llmage_ledger_operations_total", "op" => "reserve").increment(1);
}

/// An id that sorts by creation time: 48 bits of unix milliseconds, then 80 random bits (32 hex
/// digits, like [`crate::util::ids::random_id`]). Rows keyed by it are appended to the end of
/// their indexes instead of landing on a random page each, so a commit writes fewer pages.
pub fn time_ordered_id() -> String {
    let random: [u8; 10] = rand::rng().random();
    let millis = u64::try_from(now_ms()).unwrap_or(0) & 0xffff_ffff_ffff;
    format!("{millis:012x}{}", hex::encode(random))
}
