//! Settling orders from Alipay's side: [`check_order`] asks `alipay.trade.query` about one
//! PENDING order and credits or closes it; [`run`] does that for every open order on a timer, so
//! an order is settled even when its notification never reached us (our server was down, the
//! notify URL unreachable). Orders closed as FAILED in the last `order_timeout` + 24 h are asked
//! about again ([`recheck_failed_order`]): a payment that arrived late (or whose notifications all
//! failed) is credited exactly once. Every process may run it: crediting is idempotent.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::alipay::{Alipay, AlipayError, TradeState};
use super::orders::{FAILED, Order, Orders, PENDING, Paid};
use crate::billing::ledger::LedgerError;
use crate::storage::StoreError;
use crate::util::clock::now_ms;

/// Why one order could not be checked (it stays PENDING and is tried again later).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Alipay(#[from] AlipayError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Orders not found at Alipay this long after they stopped being payable are closed.
const EXPIRY_GRACE_MS: i64 = 5 * 60 * 1000;

/// Ask Alipay about one order and apply the answer; the order's status afterwards.
pub async fn check_order(
    alipay: &Alipay,
    orders: &Orders,
    order: &Order,
) -> Result<String, ReconcileError> {
    if order.status != PENDING {
        return Ok(order.status.clone());
    }
    let state = alipay.query(&order.id).await;
    orders.touch_checked(&order.id).await?;
    match state? {
        TradeState::Paid {
            trade_no,
            total_amount,
        } => {
            if crate::util::yuan::yuan_to_fen(&total_amount) != Some(order.amount_fen) {
                tracing::error!(
                    order = %order.id,
                    "alipay reports a paid amount different from the order; not credited, needs a person"
                );
                return Ok(PENDING.into());
            }
            let paid = orders.mark_paid(order, &trade_no).await?;
            if let Paid::Credited { .. } = paid {
                tracing::info!(order = %order.id, credits = order.credits, "recharge credited by reconciliation");
            }
            Ok(super::orders::SUCCEEDED.into())
        }
        TradeState::Closed => {
            orders
                .mark_failed(&order.id, "支付宝交易已关闭 / the Alipay trade was closed")
                .await?;
            Ok(super::orders::FAILED.into())
        }
        TradeState::NotExist if now_ms() > order.expires_at + EXPIRY_GRACE_MS => {
            orders
                .mark_failed(&order.id, "订单超时未支付 / not paid in time")
                .await?;
            Ok(super::orders::FAILED.into())
        }
        TradeState::NotExist | TradeState::WaitBuyerPay => Ok(PENDING.into()),
    }
}

/// Ask Alipay again about an order we closed as FAILED: a late `TRADE_SUCCESS` (of the right
/// amount) is credited once and the order becomes SUCCEEDED; any other answer leaves it FAILED.
pub async fn recheck_failed_order(
    alipay: &Alipay,
    orders: &Orders,
    order: &Order,
) -> Result<String, ReconcileError> {
    if order.status != FAILED {
        return Ok(order.status.clone());
    }
    let state = alipay.query(&order.id).await;
    orders.touch_checked(&order.id).await?;
    match state? {
        TradeState::Paid {
            trade_no,
            total_amount,
        } if crate::util::yuan::yuan_to_fen(&total_amount) == Some(order.amount_fen) => {
            let paid = orders.mark_paid(order, &trade_no).await?;
            if let Paid::Credited { .. } = paid {
                tracing::warn!(order = %order.id, credits = order.credits, "late payment of a closed order credited by reconciliation");
            }
            Ok(super::orders::SUCCEEDED.into())
        }
        TradeState::Paid { .. } => {
            tracing::error!(
                order = %order.id,
                "alipay reports a paid amount different from a closed order; not credited, needs a person"
            );
            Ok(FAILED.into())
        }
        TradeState::NotExist | TradeState::WaitBuyerPay | TradeState::Closed => Ok(FAILED.into()),
    }
}

/// Check every open order not checked for `every`, and every order closed as FAILED within
/// `recheck_window` (by creation time), until shutdown.
pub async fn run(
    alipay: Arc<Alipay>,
    orders: Orders,
    every: Duration,
    recheck_window: Duration,
    shutdown: CancellationToken,
) {
    let window_ms = i64::try_from(recheck_window.as_millis()).unwrap_or(i64::MAX / 2);
    let every_ms = i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let open = match orders.open_orders(now_ms() - every_ms, 200).await {
            Ok(open) => open,
            Err(e) => {
                tracing::warn!(error = %e, "reconciliation: listing open orders failed");
                continue;
            }
        };
        for order in open {
            if shutdown.is_cancelled() {
                return;
            }
            if let Err(e) = check_order(&alipay, &orders, &order).await {
                tracing::warn!(order = %order.id, error = %e, "reconciliation: order not checked");
            }
        }
        let closed = match orders
            .recently_failed(now_ms() - window_ms, now_ms() - every_ms, 200)
            .await
        {
            Ok(closed) => closed,
            Err(e) => {
                tracing::warn!(error = %e, "reconciliation: listing closed orders failed");
                continue;
            }
        };
        for order in closed {
            if shutdown.is_cancelled() {
                return;
            }
            if let Err(e) = recheck_failed_order(&alipay, &orders, &order).await {
                tracing::warn!(order = %order.id, error = %e, "reconciliation: closed order not checked");
            }
        }
    }
}
