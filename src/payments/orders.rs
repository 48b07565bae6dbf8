//! Recharge orders (充值订单) in the database. An order is created PENDING with its amount in fen
//! and the credits it buys fixed at that moment; paying it enters the credits in the ledger under
//! the idempotency key `recharge:<order id>` and then marks it SUCCEEDED, so a notification and
//! the reconciliation job racing, a replay, or a crash between the two steps credit exactly once.

use serde::Serialize;

use crate::billing::ledger::{Applied, EntryKind, Ledger, LedgerError};
use crate::storage::{Db, StoreError};
use crate::util::clock::now_ms;
use crate::util::ids::random_id;

pub const PENDING: &str = "PENDING";
pub const SUCCEEDED: &str = "SUCCEEDED";
pub const FAILED: &str = "FAILED";

/// One recharge order.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Order {
    #[serde(rename = "order_id")]
    pub id: String,
    pub user_id: i64,
    pub provider: String,
    pub amount_fen: i64,
    pub credits: i64,
    pub status: String,
    pub trade_no: Option<String>,
    #[serde(skip)]
    pub qr_code: Option<String>,
    pub failure: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub expires_at: i64,
    pub paid_at: Option<i64>,
    #[serde(skip)]
    pub checked_at: Option<i64>,
}

impl Order {
    /// `"10.00"`.
    pub fn amount_yuan(&self) -> String {
        crate::util::yuan::fen_to_yuan(self.amount_fen)
    }
}

const COLUMNS: &str = "id, user_id, provider, amount_fen, credits, status, trade_no, qr_code, failure, created_at, expires_at, paid_at, checked_at";

/// What applying a payment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paid {
    /// Credited now; the balance after.
    Credited { balance: i64 },
    /// Credited before (a replay, or the other path got there first).
    AlreadyCredited,
}

/// The orders table.
#[derive(Clone, Debug)]
pub struct Orders {
    db: Db,
    ledger: Ledger,
}

impl Orders {
    pub fn new(db: Db) -> Orders {
        Orders {
            ledger: Ledger::new(db.clone()),
            db,
        }
    }

    /// A new PENDING order; its id is unguessable and is the `out_trade_no`.
    pub async fn create(
        &self,
        user_id: i64,
        provider: &str,
        amount_fen: i64,
        credits: i64,
        payable_ms: i64,
    ) -> Result<Order, StoreError> {
        let now = now_ms();
        // Alipay takes up to 64 characters of letters, digits and underscores.
        let id = format!("R{}{}", now, &random_id()[..16]);
        Ok(sqlx::query_as(&format!(
            "INSERT INTO recharge_orders (id, user_id, provider, amount_fen, credits, status, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
        ))
        .bind(&id)
        .bind(user_id)
        .bind(provider)
        .bind(amount_fen)
        .bind(credits)
        .bind(PENDING)
        .bind(now)
        .bind(now + payable_ms)
        .fetch_one(self.db.writer())
        .await?)
    }

    pub async fn set_qr_code(&self, id: &str, qr_code: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE recharge_orders SET qr_code = $1 WHERE id = $2")
            .bind(qr_code)
            .bind(id)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    pub async fn get(&self, id: &str) -> Result<Option<Order>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM recharge_orders WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.db.writer())
        .await?)
    }

    /// Credit the order's credits exactly once and mark it SUCCEEDED. A late payment of an
    /// order we had closed as expired is still credited: the buyer's money arrived.
    pub async fn mark_paid(&self, order: &Order, trade_no: &str) -> Result<Paid, LedgerError> {
        let applied = self
            .ledger
            .apply_labelled(
                order.user_id,
                crate::billing::units(order.credits),
                EntryKind::Recharge,
                &if order.provider == "sandbox" {
                    format!(
                        "沙盒充值 {} 元(演示,未收款)/ sandbox recharge (demo, no money), order {}, trade {trade_no}",
                        order.amount_yuan(),
                        order.id
                    )
                } else {
                    format!(
                        "支付宝充值 {} 元 / Alipay recharge, order {}, trade {trade_no}",
                        order.amount_yuan(),
                        order.id
                    )
                },
                Some(&if order.provider == "sandbox" {
                    format!("沙盒充值 ¥{}(演示)", order.amount_yuan())
                } else {
                    format!("支付宝充值 ¥{}", order.amount_yuan())
                }),
                &format!("recharge:{}", order.id),
            )
            .await?;
        sqlx::query(
            "UPDATE recharge_orders SET status = $1, trade_no = $2, paid_at = $3, failure = NULL \
             WHERE id = $4 AND status <> $1",
        )
        .bind(SUCCEEDED)
        .bind(trade_no)
        .bind(now_ms())
        .bind(&order.id)
        .execute(self.db.writer())
        .await
        .map_err(StoreError::from)?;
        Ok(match applied {
            Applied::Now { balance } => Paid::Credited { balance },
            Applied::Before => Paid::AlreadyCredited,
        })
    }

    /// Close a still-PENDING order unpaid.
    pub async fn mark_failed(&self, id: &str, why: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE recharge_orders SET status = $1, failure = $2 WHERE id = $3 AND status = $4",
        )
        .bind(FAILED)
        .bind(why)
        .bind(id)
        .bind(PENDING)
        .execute(self.db.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn touch_checked(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE recharge_orders SET checked_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    /// PENDING orders not checked since `checked_before` (oldest first).
    pub async fn open_orders(
        &self,
        checked_before: i64,
        limit: i64,
    ) -> Result<Vec<Order>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM recharge_orders WHERE status = $1 \
             AND COALESCE(checked_at, created_at) < $2 ORDER BY created_at LIMIT $3"
        ))
        .bind(PENDING)
        .bind(checked_before)
        .bind(limit)
        .fetch_all(self.db.reader())
        .await?)
    }

    /// FAILED orders created after `created_after` and not checked since `checked_before`
    /// (oldest first): the ones a late payment may still turn into SUCCEEDED.
    pub async fn recently_failed(
        &self,
        created_after: i64,
        checked_before: i64,
        limit: i64,
    ) -> Result<Vec<Order>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM recharge_orders WHERE status = $1 AND created_at > $2 \
             AND COALESCE(checked_at, created_at) < $3 ORDER BY created_at LIMIT $4"
        ))
        .bind(FAILED)
        .bind(created_after)
        .bind(checked_before)
        .bind(limit)
        .fetch_all(self.db.reader())
        .await?)
    }

    /// A user's orders (newest first), or everyone's with `user_id = None`.
    pub async fn list(&self, user_id: Option<i64>, limit: i64) -> Result<Vec<Order>, StoreError> {
        let orders = match user_id {
            Some(user) => {
                sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM recharge_orders WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2"
                ))
                .bind(user)
                .bind(limit)
                .fetch_all(self.db.reader())
                .await?
            }
            None => {
                sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM recharge_orders ORDER BY created_at DESC LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(self.db.reader())
                .await?
            }
        };
        Ok(orders)
    }
}
