//! Recharge: orders that turn yuan into credits ([`orders`]), the Alipay Open Platform protocol
//! ([`alipay`]: signed page-pay URLs, precreate QR codes, trade.query, RSA2-verified
//! notifications) and the reconciliation job that settles orders whose notification never came
//! ([`reconcile`]). Amounts are integer fen (分) everywhere; yuan strings only at the edges.

pub mod alipay;
pub mod orders;
pub mod reconcile;
