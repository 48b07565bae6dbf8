//! The money engine: the one implementation of every balance change — hold, settle, release,
//! credit, debit — and of its rules. Both front doors use it: the ledger API
//! ([`super::ledger::Ledger`], one operation in its own or the caller's transaction) and the chat
//! path's group commit ([`super::group_commit`], many calls' operations in one transaction).
//!
//! The rules:
//! - Every change is a guarded `balance + delta >= 0` update and one ledger row with its
//!   `balance_after` and a unique idempotency key, in the same transaction: the balance never
//!   goes below zero and always equals the sum of the user's ledger rows.
//! - A hold takes between its `min` and `max`: `max` when it fits, else the whole balance when
//!   that is at least `min`, else it is refused.
//! - Closing a hold at a price charges `min(price, hold)` — never more than the hold — and
//!   refunds the rest. A hold closes once; a second close changes nothing.
//! - A hold whose owner process died is released as `orphaned`; if its owner was only slow and
//!   settles later after all, the price is taken then (up to the balance), so nothing the
//!   upstream billed is written off.
//! - Within one transaction a user's refunds and credits come before holds and debits, so the
//!   holds that fit are exactly those that would fit one at a time.
//! - A credit lease claims part of a balance for one process (`users.leased`, the sum of the
//!   live leases): its calls are held in that process's memory and each call's charge is one
//!   ledger row taken from the lease. Everything else may only take `balance - leased`, so what
//!   a lease claims is there when its calls settle. A lease whose owner died goes back (status
//!   `orphaned`); a call its owner settles late is charged then, up to what is free.
//!
//! The statements live behind [`MoneyStore`], once per kind of connection: `sqlite.rs`
//! (rusqlite, the SQLite group-commit writer) and `sqlx_store.rs` (sqlx on either backend: the
//! PostgreSQL group-commit writer and the ledger API).

mod leases;
pub(crate) mod sqlite;
pub(crate) mod sqlx_store;

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::storage::StoreError;
use crate::util::clock::now_ms;

/// Why a ledger operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("insufficient balance")]
    InsufficientBalance,
    #[error("unknown user")]
    UnknownUser,
    /// A single change larger than [`MAX_CHANGE`] units (a typo, or an overflow attempt).
    #[error("amount out of range")]
    OutOfRange,
    /// A credit lease that is no longer live (its owner was taken for dead): take a new one.
    #[error("credit lease gone")]
    LeaseGone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for LedgerError {
    fn from(e: sqlx::Error) -> Self {
        LedgerError::Store(StoreError::Sql(e))
    }
}

/// The largest single balance change in units (10^12 credits = 10^10 yuan at the default
/// rate): larger amounts are refused before they could overflow the balance column.
pub const MAX_CHANGE: i64 = 1_000_000_000_000 * super::UNITS_PER_CREDIT;

/// Kinds of ledger rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Credits given by an admin, demo mode or a new account.
    Grant,
    /// Manual correction by an admin (either sign).
    Adjust,
    /// Worst-case hold before a call.
    Reserve,
    /// Difference between a hold and the actual price (or a late charge of an orphaned hold).
    Settle,
    /// A whole hold given back (failure, cancel, dead owner).
    Release,
    /// A redemption code (兑换码).
    Redeem,
    /// A paid recharge order (支付宝充值).
    Recharge,
    /// A chat call's price, taken from its process's credit lease.
    Charge,
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
            EntryKind::Charge => "charge",
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

/// Units held for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: String,
    pub user_id: i64,
    pub amount: i64,
}

/// What closing a hold did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    /// Units finally taken for the call.
    pub charged: i64,
    /// Part of the price that was not taken: above the hold, or (for an orphaned hold settled
    /// late) above the balance. Zero when the hold was a true bound.
    pub uncovered: i64,
    /// False when the hold had already been closed (nothing changed).
    pub applied: bool,
}

/// One call's usage, recorded with its settlement (chat calls).
#[derive(Debug, Clone)]
pub struct UsageRow {
    pub user_id: i64,
    pub key_id: i64,
    pub model: String,
    pub channel_id: Option<i64>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// `upstream` (reported) or `estimated`.
    pub usage_source: &'static str,
    pub outcome: &'static str,
    pub latency_ms: i64,
    /// The X-Request-Id answered for the call.
    pub request_id: Option<String>,
}

/// Hold between `min` and `max` units for a call.
#[derive(Debug, Clone)]
pub struct Hold {
    pub user_id: i64,
    pub min: i64,
    pub max: i64,
    /// `chat`, `task`, … (what the hold is for; owner-less holds are closed by their engine).
    pub purpose: &'static str,
    pub model: String,
    /// What the user reads for this call (`对话 qwen3-max`).
    pub label: String,
    /// The process that serves the call: the hold is released when that process is gone.
    pub owner: Option<String>,
}

/// Close a hold at `price` units (0 releases it), with the call's usage row (a free call has no
/// hold, only the usage row).
#[derive(Debug, Clone)]
pub struct Close {
    pub reservation_id: Option<String>,
    pub price: i64,
    pub usage: Option<UsageRow>,
    /// Released because the owner process is gone (status `orphaned`).
    pub orphaned: bool,
}

/// Add (or with a negative amount, take) units once per idempotency key.
#[derive(Debug, Clone)]
pub struct Change {
    pub user_id: i64,
    pub amount: i64,
    pub kind: EntryKind,
    /// Internal detail (who, which order).
    pub reason: String,
    /// What the user reads for it, when it differs from the kind's own words.
    pub label: Option<String>,
    pub idem_key: String,
}

/// Claim between `min` and `want` units of a user's free balance (`balance - leased`) for the
/// credit lease `lease_id` (a new one when `new`, else a live one of the same owner).
#[derive(Debug, Clone)]
pub struct Take {
    pub lease_id: String,
    pub user_id: i64,
    /// The process whose calls are held against it (`process_leases.owner`).
    pub owner: String,
    pub new: bool,
    pub min: i64,
    pub want: i64,
}

/// Pay one call from a credit lease: `min(price, hold)` units, one ledger row (`charge`, key
/// `chat:<call_id>`) with the call's usage row. With `end_lease`, the lease's unspent units go
/// back in the same transaction (its owner has no other call on it).
#[derive(Debug, Clone)]
pub struct Spend {
    pub lease_id: String,
    pub user_id: i64,
    pub call_id: String,
    /// What the owner held for the call in memory: never charged more.
    pub hold: i64,
    pub price: i64,
    pub label: String,
    pub model: String,
    pub usage: Option<UsageRow>,
    pub end_lease: bool,
    /// Sent again after an error: the ledger is asked whether it committed before. A first try
    /// skips that lookup (the key's unique index still refuses a second row).
    pub retry: bool,
}

/// Give a credit lease's unspent units back: its owner needs it no more, or (`orphaned`) its
/// owner's process lease ran out.
#[derive(Debug, Clone)]
pub struct EndLease {
    pub lease_id: String,
    pub orphaned: bool,
}

/// One operation.
#[derive(Debug, Clone)]
pub enum Op {
    Hold(Hold),
    Close(Close),
    Change(Change),
    Take(Take),
    Spend(Spend),
    EndLease(EndLease),
}

/// What an operation came to.
#[derive(Debug)]
pub enum Outcome {
    Held(Result<Reservation, LedgerError>),
    /// A hold or a spend closed.
    Closed(Settlement),
    Changed(Result<Applied, LedgerError>),
    /// Units taken into a lease.
    Took(Result<i64, LedgerError>),
    /// Units a lease gave back (0 when it was not live).
    Ended(i64),
}

/// A hold found open (or orphaned) and closed now.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Closing {
    pub user_id: i64,
    pub reserved: i64,
    /// It had been released as orphaned: the price is taken now instead of refunded.
    pub was_orphaned: bool,
}

/// A hold about to be inserted.
pub(crate) struct NewReservation<'a> {
    pub id: String,
    pub user_id: i64,
    pub amount: i64,
    pub purpose: &'a str,
    pub model: &'a str,
    pub label: &'a str,
    pub owner: Option<&'a str>,
}

/// A balance change that becomes one ledger row.
pub(crate) struct Entry {
    pub op: usize,
    pub user_id: i64,
    pub amount: i64,
    pub kind: EntryKind,
    pub reason: String,
    pub label: Option<String>,
    pub idem_key: String,
    pub reservation_id: Option<String>,
    pub balance_after: i64,
    /// Take up to the balance instead of refusing (a late charge).
    pub capped: bool,
}

/// The rows a transaction inserts.
pub(crate) struct Rows<'a> {
    pub reservations: Vec<NewReservation<'a>>,
    pub entries: Vec<Entry>,
    /// Each with what was charged and what the call held (when it had a hold).
    pub usage: Vec<(&'a UsageRow, i64, Option<i64>)>,
}

/// The statements of the engine, on one kind of connection. Every method but `begin` runs
/// inside the transaction that `begin` opened (or that the caller passed in).
pub(crate) trait MoneyStore {
    async fn begin(&mut self) -> Result<(), LedgerError>;
    async fn commit(&mut self) -> Result<(), LedgerError>;
    async fn rollback(&mut self);
    /// Close these holds if their status is `from` (`open`, or `orphaned` for a late
    /// settlement): `(id, price, new status)`, the charged amount being `min(price, hold)`.
    /// Returns `id → (user, hold)` of the holds closed now.
    async fn close(
        &mut self,
        closing: &[(&str, i64, &'static str)],
        from: &'static str,
        now: i64,
    ) -> Result<HashMap<String, (i64, i64)>, LedgerError>;
    /// Which of these idempotency keys the ledger has already.
    async fn seen_keys(&mut self, keys: &[&str]) -> Result<HashSet<String>, LedgerError>;
    /// Add each `(user, sum)` whose balance stays ≥ its leased units; the new balances of those
    /// users.
    async fn add_sums(&mut self, sums: &[(i64, i64)]) -> Result<BTreeMap<i64, i64>, LedgerError>;
    /// One change guarded by `balance + delta >= leased`; `InsufficientBalance` / `UnknownUser`
    /// when refused.
    async fn change_balance(&mut self, user_id: i64, delta: i64) -> Result<i64, LedgerError>;
    /// What a user may take (`balance - leased`), locked until the end of the transaction.
    async fn free_balance(&mut self, user_id: i64) -> Result<i64, LedgerError>;
    /// Insert the granted holds, the ledger entries (in the order given) and usage rows.
    async fn insert_rows(&mut self, rows: &Rows<'_>, now: i64) -> Result<(), LedgerError>;
    /// The credit leases with these ids, locked until the end of the transaction.
    async fn leases(&mut self, ids: &[&str]) -> Result<HashMap<String, LeaseRow>, LedgerError>;
    /// Store a lease's amount and status.
    async fn set_lease(
        &mut self,
        id: &str,
        amount: i64,
        status: &'static str,
        now: i64,
    ) -> Result<(), LedgerError>;
    /// Insert a live lease.
    async fn insert_lease(&mut self, lease: &NewLease<'_>, now: i64) -> Result<(), LedgerError>;
    /// Change a user's balance and leased units together (a lease's charges and what it gives
    /// back, which never make `balance - leased` smaller); the new balance.
    async fn move_leased(
        &mut self,
        user_id: i64,
        balance_delta: i64,
        leased_delta: i64,
    ) -> Result<i64, LedgerError>;
    /// Claim `amount` units of the user's free balance for leases, if that many are free.
    async fn claim(&mut self, user_id: i64, amount: i64) -> Result<bool, LedgerError>;
}

/// A credit lease as stored.
#[derive(Debug, Clone)]
pub(crate) struct LeaseRow {
    pub user_id: i64,
    pub amount: i64,
    pub status: String,
}

/// A credit lease about to be inserted.
pub(crate) struct NewLease<'a> {
    pub id: &'a str,
    pub user_id: i64,
    pub owner: &'a str,
    pub amount: i64,
}

/// Run `ops` in one transaction of `store`; one outcome per op, in order.
pub(crate) async fn run<S: MoneyStore>(
    store: &mut S,
    ops: &[Op],
) -> Result<Vec<Outcome>, LedgerError> {
    store.begin().await?;
    let outcomes = match apply(store, ops).await {
        Ok(outcomes) => outcomes,
        Err(e) => {
            store.rollback().await;
            return Err(e);
        }
    };
    store.commit().await?;
    count(&outcomes);
    Ok(outcomes)
}

/// Apply `ops` inside the store's open transaction (the caller commits, then calls
/// [`count`]). Two closes of one hold in the same batch are applied one after the other (the
/// second sees what the first did).
pub(crate) async fn apply<S: MoneyStore>(
    store: &mut S,
    ops: &[Op],
) -> Result<Vec<Outcome>, LedgerError> {
    let mut closing = HashSet::new();
    let repeat = ops.iter().position(|op| match op {
        Op::Close(Close {
            reservation_id: Some(id),
            ..
        }) => !closing.insert(id.as_str()),
        _ => false,
    });
    match repeat {
        Some(at) => {
            let mut outcomes = Box::pin(apply_distinct(store, &ops[..at])).await?;
            outcomes.extend(Box::pin(apply(store, &ops[at..])).await?);
            Ok(outcomes)
        }
        None => apply_distinct(store, ops).await,
    }
}

/// [`apply`] for ops that close each hold at most once.
async fn apply_distinct<S: MoneyStore>(
    store: &mut S,
    ops: &[Op],
) -> Result<Vec<Outcome>, LedgerError> {
    for op in ops {
        if let Op::Change(c) = op
            && !(-MAX_CHANGE..=MAX_CHANGE).contains(&c.amount)
        {
            return Err(LedgerError::OutOfRange);
        }
        if let Op::Hold(h) = op
            && !(0..=MAX_CHANGE).contains(&h.max)
        {
            return Err(LedgerError::OutOfRange);
        }
        if let Op::Take(t) = op
            && !(0..=MAX_CHANGE).contains(&t.want)
        {
            return Err(LedgerError::OutOfRange);
        }
        if let Op::Spend(sp) = op
            && !(0..=MAX_CHANGE).contains(&sp.hold)
        {
            return Err(LedgerError::OutOfRange);
        }
    }
    let now = now_ms();
    let mut outcomes: Vec<Option<Outcome>> = ops.iter().map(|_| None).collect();

    let seen = seen_changes(store, ops).await?;

    // 1. The calls paid from credit leases, and the leases that end: what a live lease claimed
    //    becomes the charge (or goes back); a call whose lease is gone is a late charge below.
    let spent = leases::spend(store, ops, &seen, now, &mut outcomes).await?;

    // 2. Close the holds still open (a hold closes once: a sweep or an earlier close may have
    //    got there first); an owner settling an orphaned hold late reopens the charge.
    let closing = close_holds(store, ops, now).await?;

    // 3. The balance changes, per user: refunds and credits, then holds and debits, then late
    //    charges (taken up to what is free).
    let mut first = Vec::new();
    let mut second = spent.late;
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Take(_) | Op::Spend(_) | Op::EndLease(_) => {}
            Op::Hold(h) => {
                let id = super::ledger::time_ordered_id();
                second.push(Entry {
                    op: i,
                    user_id: h.user_id,
                    amount: -h.max,
                    kind: EntryKind::Reserve,
                    reason: format!("{} {}", h.purpose, h.model),
                    label: Some(h.label.clone()),
                    idem_key: format!("reserve:{id}"),
                    reservation_id: Some(id),
                    balance_after: 0,
                    capped: false,
                });
            }
            Op::Close(c) => match c
                .reservation_id
                .as_ref()
                .and_then(|id| closing.get(id).map(|f| (id, f)))
            {
                None => {
                    outcomes[i] = Some(Outcome::Closed(Settlement {
                        charged: 0,
                        uncovered: 0,
                        applied: false,
                    }));
                }
                Some((id, found)) => {
                    let price = c.price.max(0);
                    let charged = price.min(found.reserved);
                    outcomes[i] = Some(Outcome::Closed(Settlement {
                        charged,
                        uncovered: price - charged,
                        applied: true,
                    }));
                    if found.was_orphaned {
                        if charged > 0 {
                            second.push(Entry {
                                op: i,
                                user_id: found.user_id,
                                amount: -charged,
                                kind: EntryKind::Settle,
                                reason: format!("late settlement: price {charged}"),
                                label: None,
                                idem_key: format!("late:{id}"),
                                reservation_id: Some(id.clone()),
                                balance_after: 0,
                                capped: true,
                            });
                        }
                    } else if found.reserved > charged {
                        let (kind, reason) = settle_entry(charged, found.reserved);
                        first.push(Entry {
                            op: i,
                            user_id: found.user_id,
                            amount: found.reserved - charged,
                            kind,
                            reason,
                            label: None,
                            idem_key: format!("settle:{id}"),
                            reservation_id: Some(id.clone()),
                            balance_after: 0,
                            capped: false,
                        });
                    }
                }
            },
            Op::Change(c) => {
                if seen.contains(&i) {
                    outcomes[i] = Some(Outcome::Changed(Ok(Applied::Before)));
                    continue;
                }
                let entry = Entry {
                    op: i,
                    user_id: c.user_id,
                    amount: c.amount,
                    kind: c.kind,
                    reason: c.reason.clone(),
                    label: c.label.clone(),
                    idem_key: c.idem_key.clone(),
                    reservation_id: None,
                    balance_after: 0,
                    capped: false,
                };
                if c.amount >= 0 {
                    first.push(entry);
                } else {
                    second.push(entry);
                }
            }
        }
    }
    let mut entries = spent.entries;
    entries.extend(apply_changes(store, ops, first, second, &mut outcomes).await?);

    // 4. Claims for leases, from what is free after everything else.
    leases::take(store, ops, &spent.leases, now, &mut outcomes).await?;

    // 5. The rows: holds that were granted, ledger entries (in the order applied, so ids and
    //    `balance_after` tell the same story), usage.
    let granted: Vec<NewReservation<'_>> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::Reserve)
        .filter_map(|e| match (&ops[e.op], &e.reservation_id) {
            (Op::Hold(h), Some(id)) => Some(NewReservation {
                id: id.clone(),
                user_id: h.user_id,
                amount: -e.amount,
                purpose: h.purpose,
                model: &h.model,
                label: &h.label,
                owner: h.owner.as_deref(),
            }),
            _ => None,
        })
        .collect();
    let usage: Vec<(&UsageRow, i64, Option<i64>)> = ops
        .iter()
        .zip(&outcomes)
        .enumerate()
        .filter_map(|(i, (op, outcome))| match (op, outcome) {
            (
                Op::Close(Close {
                    usage: Some(usage),
                    reservation_id,
                    ..
                }),
                Some(Outcome::Closed(s)),
            ) => Some((
                usage,
                s.charged,
                reservation_id
                    .as_ref()
                    .and_then(|id| closing.get(id))
                    .map(|c| c.reserved),
            )),
            (
                Op::Spend(Spend {
                    usage: Some(usage),
                    hold,
                    ..
                }),
                Some(Outcome::Closed(s)),
            ) if !seen.contains(&i) => Some((usage, s.charged, Some(*hold))),
            _ => None,
        })
        .collect();
    let rows = Rows {
        reservations: granted,
        entries,
        usage,
    };
    store.insert_rows(&rows, now).await?;
    outcomes
        .into_iter()
        .map(|o| o.ok_or(LedgerError::Store(StoreError::Sql(sqlx::Error::PoolClosed))))
        .collect()
}

/// Close the holds of the `Close` ops: open ones, and then orphaned ones whose owner settles
/// late.
async fn close_holds<S: MoneyStore>(
    store: &mut S,
    ops: &[Op],
    now: i64,
) -> Result<HashMap<String, Closing>, LedgerError> {
    let wanted: Vec<(&str, i64, &'static str)> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Close(c) => c
                .reservation_id
                .as_deref()
                .map(|id| (id, c.price.max(0), close_status(c))),
            _ => None,
        })
        .collect();
    let mut found = HashMap::new();
    if wanted.is_empty() {
        return Ok(found);
    }
    for (id, (user_id, reserved)) in store.close(&wanted, "open", now).await? {
        found.insert(
            id,
            Closing {
                user_id,
                reserved,
                was_orphaned: false,
            },
        );
    }
    // An owner's late settlement of a hold the sweep released (never the sweep itself).
    let late: Vec<(&str, i64, &'static str)> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Close(c) if !c.orphaned && c.price > 0 => c
                .reservation_id
                .as_deref()
                .filter(|id| !found.contains_key(*id))
                .map(|id| (id, c.price, "settled")),
            _ => None,
        })
        .collect();
    if !late.is_empty() {
        for (id, (user_id, reserved)) in store.close(&late, "orphaned", now).await? {
            found.insert(
                id,
                Closing {
                    user_id,
                    reserved,
                    was_orphaned: true,
                },
            );
        }
    }
    Ok(found)
}

fn close_status(c: &Close) -> &'static str {
    if c.orphaned {
        "orphaned"
    } else if c.price <= 0 {
        "released"
    } else {
        "settled"
    }
}

/// Indexes of `Change` ops whose idempotency key was applied before (in the ledger, or earlier
/// in the same batch).
async fn seen_changes<S: MoneyStore>(
    store: &mut S,
    ops: &[Op],
) -> Result<HashSet<usize>, LedgerError> {
    // A settlement's first try is not looked up: its call is settled once per try, and a
    // retry is only sent after its first try's batch ended.
    let owned: Vec<(usize, std::borrow::Cow<'_, str>)> = ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| match op {
            Op::Change(c) => Some((i, std::borrow::Cow::Borrowed(c.idem_key.as_str()))),
            Op::Spend(sp) if sp.retry => Some((i, std::borrow::Cow::Owned(spend_key(&sp.call_id)))),
            _ => None,
        })
        .collect();
    if owned.is_empty() {
        return Ok(HashSet::new());
    }
    let keys: Vec<&str> = owned.iter().map(|(_, k)| k.as_ref()).collect();
    let known = store.seen_keys(&keys).await?;
    let mut first_use = HashSet::new();
    let mut seen = HashSet::new();
    for (i, key) in &owned {
        if known.contains(key.as_ref()) || !first_use.insert(key.as_ref()) {
            seen.insert(*i);
        }
    }
    Ok(seen)
}

/// The idempotency key of a call paid from a credit lease.
pub(crate) fn spend_key(call_id: &str) -> String {
    format!("chat:{call_id}")
}

/// The kind and reason of the ledger row that closes a hold of `reserved` at `charged`.
fn settle_entry(charged: i64, reserved: i64) -> (EntryKind, String) {
    if charged == 0 {
        (EntryKind::Release, "release reservation".to_owned())
    } else {
        (
            EntryKind::Settle,
            format!("settle: price {charged}, reserved {reserved}"),
        )
    }
}

/// Apply the changes per user: the whole sum in one guarded update per user, or for a user
/// whose sum does not fit, change by change (`first` before `second`). Sets the outcome of each
/// hold and change; returns the entries applied, each with its `balance_after`.
async fn apply_changes<S: MoneyStore>(
    store: &mut S,
    ops: &[Op],
    first: Vec<Entry>,
    second: Vec<Entry>,
    outcomes: &mut [Option<Outcome>],
) -> Result<Vec<Entry>, LedgerError> {
    let mut per_user: BTreeMap<i64, Vec<Entry>> = BTreeMap::new();
    for e in first.into_iter().chain(second) {
        per_user.entry(e.user_id).or_default().push(e);
    }
    if per_user.is_empty() {
        return Ok(Vec::new());
    }
    // Users with a late charge go one by one (it is taken up to the balance).
    let sums: Vec<(i64, i64)> = per_user
        .iter()
        .filter(|(_, entries)| entries.iter().all(|e| !e.capped))
        .map(|(user, entries)| (*user, entries.iter().map(|e| e.amount).sum()))
        .collect();
    let finals = if sums.is_empty() {
        BTreeMap::new()
    } else {
        store.add_sums(&sums).await?
    };

    let mut applied = Vec::new();
    for (user, entries) in per_user {
        if let Some(final_balance) = finals.get(&user) {
            let sum: i64 = entries.iter().map(|e| e.amount).sum();
            let mut balance = final_balance - sum;
            for mut e in entries {
                balance += e.amount;
                e.balance_after = balance;
                grant(&e, ops, outcomes);
                applied.push(e);
            }
            continue;
        }
        // The sum does not fit (or the user is unknown): one guarded change at a time.
        for mut e in entries {
            if e.capped {
                let take = (-e.amount).min(store.free_balance(user).await?);
                if let Some(Outcome::Closed(s)) = &mut outcomes[e.op] {
                    s.uncovered += s.charged - take;
                    s.charged = take;
                }
                if take <= 0 {
                    continue;
                }
                e.amount = -take;
            }
            match store.change_balance(user, e.amount).await {
                Ok(balance) => {
                    e.balance_after = balance;
                    grant(&e, ops, outcomes);
                    applied.push(e);
                }
                Err(LedgerError::InsufficientBalance) if e.kind == EntryKind::Reserve => {
                    // A flexible hold takes the whole balance when that is at least its minimum.
                    let min = match &ops[e.op] {
                        Op::Hold(h) => h.min.max(1),
                        _ => i64::MAX,
                    };
                    let balance = store.free_balance(user).await?;
                    if balance >= min && balance < -e.amount {
                        e.amount = -balance;
                        e.balance_after = store.change_balance(user, e.amount).await?;
                        grant(&e, ops, outcomes);
                        applied.push(e);
                    } else {
                        outcomes[e.op] = Some(Outcome::Held(Err(LedgerError::InsufficientBalance)));
                    }
                }
                Err(refused @ (LedgerError::InsufficientBalance | LedgerError::UnknownUser)) => {
                    outcomes[e.op] = Some(match (&ops[e.op], &outcomes[e.op]) {
                        (Op::Hold(_), _) => Outcome::Held(Err(refused)),
                        // A late charge that found nothing to take.
                        (Op::Close(_) | Op::Spend(_), Some(Outcome::Closed(s))) => {
                            Outcome::Closed(Settlement {
                                charged: 0,
                                uncovered: s.uncovered + s.charged,
                                applied: s.applied,
                            })
                        }
                        _ => Outcome::Changed(Err(refused)),
                    });
                }
                Err(other) => return Err(other),
            }
        }
    }
    Ok(applied)
}

/// The outcome of a hold or change that was applied.
fn grant(e: &Entry, ops: &[Op], outcomes: &mut [Option<Outcome>]) {
    match &ops[e.op] {
        Op::Hold(h) => {
            outcomes[e.op] = Some(Outcome::Held(Ok(Reservation {
                id: e.reservation_id.clone().unwrap_or_default(),
                user_id: h.user_id,
                amount: -e.amount,
            })));
        }
        Op::Change(_) => {
            outcomes[e.op] = Some(Outcome::Changed(Ok(Applied::Now {
                balance: e.balance_after,
            })));
        }
        Op::Close(_) | Op::Take(_) | Op::Spend(_) | Op::EndLease(_) => {}
    }
}

/// Count committed outcomes in `llmage_ledger_operations_total`.
pub(crate) fn count(outcomes: &[Outcome]) {
    let (mut reserved, mut refused, mut settled, mut released, mut changed) = (0, 0, 0, 0, 0);
    for o in outcomes {
        match o {
            Outcome::Held(Ok(_)) => reserved += 1,
            Outcome::Held(Err(LedgerError::InsufficientBalance)) => refused += 1,
            Outcome::Held(Err(_)) => {}
            Outcome::Closed(s) if s.applied && s.charged == 0 => released += 1,
            Outcome::Closed(s) if s.applied => settled += 1,
            Outcome::Closed(_) => {}
            Outcome::Changed(Ok(Applied::Now { .. })) => changed += 1,
            Outcome::Changed(_) | Outcome::Took(_) | Outcome::Ended(_) => {}
        }
    }
    for (op, n) in [
        ("reserve", reserved),
        ("refused", refused),
        ("settle", settled),
        ("release", released),
        ("apply", changed),
    ] {
        if n > 0 {
            metrics::counter!("llmage_ledger_operations_total", "op" => op).increment(n);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use sqlx::Row;

    use super::*;
    use crate::storage::Db;

    pub(crate) async fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&crate::storage::sqlite_url_for(dir.path()))
            .await
            .unwrap();
        (dir, db)
    }

    /// A user with `amount` units.
    pub(crate) async fn user(db: &Db, phone: &str, amount: i64) -> i64 {
        let id = sqlx::query(
            "INSERT INTO users (phone, balance, created_at) VALUES ($1, 0, 0) RETURNING id",
        )
        .bind(phone)
        .fetch_one(db.writer())
        .await
        .unwrap()
        .try_get("id")
        .unwrap();
        crate::billing::ledger::Ledger::new(db.clone())
            .apply(id, amount, EntryKind::Grant, "test", &format!("grant:{id}"))
            .await
            .unwrap();
        id
    }

    pub(crate) async fn balance(db: &Db, user: i64) -> i64 {
        sqlx::query("SELECT balance FROM users WHERE id = $1")
            .bind(user)
            .fetch_one(db.reader())
            .await
            .unwrap()
            .try_get("balance")
            .unwrap()
    }

    /// Replaying a user's ledger rows in id order gives each row's `balance_after`, never below
    /// zero, and ends at the balance.
    pub(crate) async fn assert_ledger_replays(db: &Db, user: i64) {
        let rows =
            sqlx::query("SELECT amount, balance_after FROM ledger WHERE user_id = $1 ORDER BY id")
                .bind(user)
                .fetch_all(db.reader())
                .await
                .unwrap();
        let mut running = 0;
        for row in rows {
            let amount: i64 = row.try_get("amount").unwrap();
            let after: i64 = row.try_get("balance_after").unwrap();
            running += amount;
            assert_eq!(
                running, after,
                "user {user}: balance_after follows the amounts"
            );
            assert!(after >= 0, "user {user}: balance_after {after} below zero");
        }
        assert_eq!(
            running,
            balance(db, user).await,
            "user {user}: ledger sum = balance"
        );
    }

    fn hold(user_id: i64, min: i64, max: i64) -> Op {
        Op::Hold(Hold {
            user_id,
            min,
            max,
            purpose: "chat",
            model: "m".into(),
            label: "对话 m".into(),
            owner: Some("p1".into()),
        })
    }

    fn close(reservation: &Reservation, price: i64) -> Op {
        Op::Close(Close {
            reservation_id: Some(reservation.id.clone()),
            price,
            orphaned: false,
            usage: Some(UsageRow {
                user_id: reservation.user_id,
                key_id: 1,
                model: "m".into(),
                channel_id: None,
                prompt_tokens: 1,
                completion_tokens: 1,
                usage_source: "upstream",
                outcome: "ok",
                latency_ms: 1,
                request_id: None,
            }),
        })
    }

    fn orphan(reservation: &Reservation) -> Op {
        Op::Close(Close {
            reservation_id: Some(reservation.id.clone()),
            price: 0,
            orphaned: true,
            usage: None,
        })
    }

    fn change(user_id: i64, amount: i64, key: &str) -> Op {
        Op::Change(Change {
            user_id,
            amount,
            kind: if amount > 0 {
                EntryKind::Grant
            } else {
                EntryKind::Adjust
            },
            reason: "test".into(),
            label: None,
            idem_key: key.into(),
        })
    }

    fn held(o: &Outcome) -> Reservation {
        match o {
            Outcome::Held(Ok(r)) => r.clone(),
            other => panic!("expected a hold, got {other:?}"),
        }
    }

    fn settled(o: &Outcome) -> Settlement {
        match o {
            Outcome::Closed(s) => *s,
            other => panic!("expected a settlement, got {other:?}"),
        }
    }

    fn settlement(charged: i64, uncovered: i64, applied: bool) -> Settlement {
        Settlement {
            charged,
            uncovered,
            applied,
        }
    }

    async fn the_money_rules_hold<S: MoneyStore>(store: &mut S, db: &Db) {
        let a = user(db, "13000000001", 100).await;
        let b = user(db, "13000000002", 50).await;

        // Every hold fits: one summed update per user.
        let out = run(
            store,
            &[
                hold(a, 30, 30),
                hold(a, 30, 30),
                hold(b, 20, 20),
                hold(a, 30, 30),
            ],
        )
        .await
        .unwrap();
        let r: Vec<Reservation> = out.iter().map(held).collect();
        assert_eq!((balance(db, a).await, balance(db, b).await), (10, 30));

        // A's sum does not fit (10 + 20 - 25 - 25 < 0): change by change, the refund first, so
        // one hold fits and one is refused. B's call priced above its hold pays the hold only.
        let out = run(
            store,
            &[
                hold(a, 25, 25),
                close(&r[0], 10),
                hold(a, 25, 25),
                close(&r[2], 35),
            ],
        )
        .await
        .unwrap();
        let a_hold = held(&out[0]);
        assert!(matches!(
            out[2],
            Outcome::Held(Err(LedgerError::InsufficientBalance))
        ));
        assert_eq!(settled(&out[1]), settlement(10, 0, true));
        assert_eq!(settled(&out[3]), settlement(20, 15, true));
        assert_eq!((balance(db, a).await, balance(db, b).await), (5, 30));

        // A flexible hold takes the whole balance when its maximum does not fit; below its
        // minimum it is refused.
        let out = run(store, &[hold(b, 5, 100)]).await.unwrap();
        let b_all = held(&out[0]);
        assert_eq!(b_all.amount, 30);
        let out = run(store, &[hold(a, 6, 100)]).await.unwrap();
        assert!(matches!(
            out[0],
            Outcome::Held(Err(LedgerError::InsufficientBalance))
        ));

        // A hold closes once; a release gives everything back.
        let out = run(
            store,
            &[close(&r[0], 99), close(&a_hold, 0), close(&b_all, 12)],
        )
        .await
        .unwrap();
        assert_eq!(settled(&out[0]), settlement(0, 0, false));
        assert_eq!(settled(&out[1]), settlement(0, 0, true));
        assert_eq!(settled(&out[2]), settlement(12, 0, true));
        assert_eq!((balance(db, a).await, balance(db, b).await), (30, 18));

        // An orphaned hold is given back; its owner's late settlement still charges the price
        // (up to the balance), once.
        let h = held(&run(store, &[hold(a, 10, 10)]).await.unwrap()[0]);
        run(store, &[orphan(&h)]).await.unwrap();
        assert_eq!(balance(db, a).await, 30);
        let out = run(store, &[close(&h, 7)]).await.unwrap();
        assert_eq!(settled(&out[0]), settlement(7, 0, true));
        let out = run(store, &[close(&h, 7)]).await.unwrap();
        assert_eq!(settled(&out[0]), settlement(0, 0, false));
        assert_eq!(balance(db, a).await, 23);

        // Changes apply once per key, debits are guarded.
        let out = run(
            store,
            &[
                change(a, 5, "k1"),
                change(a, 5, "k1"),
                change(a, -1000, "k2"),
            ],
        )
        .await
        .unwrap();
        assert!(matches!(
            out[0],
            Outcome::Changed(Ok(Applied::Now { balance: 28 }))
        ));
        assert!(matches!(out[1], Outcome::Changed(Ok(Applied::Before))));
        assert!(matches!(
            out[2],
            Outcome::Changed(Err(LedgerError::InsufficientBalance))
        ));
        let out = run(store, &[change(a, 5, "k1")]).await.unwrap();
        assert!(matches!(out[0], Outcome::Changed(Ok(Applied::Before))));
        assert_eq!(balance(db, a).await, 28);

        assert_ledger_replays(db, a).await;
        assert_ledger_replays(db, b).await;
        let statuses = sqlx::query(
            "SELECT status, CAST(COUNT(*) AS BIGINT) AS n FROM reservations GROUP BY status ORDER BY status",
        )
        .fetch_all(db.reader())
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.try_get::<String, _>("status").unwrap(),
                row.try_get::<i64, _>("n").unwrap(),
            )
        })
        .collect::<Vec<_>>();
        assert_eq!(
            statuses,
            [
                ("open".to_owned(), 2),
                ("released".to_owned(), 1),
                ("settled".to_owned(), 4)
            ]
        );
        let usage: i64 = sqlx::query("SELECT CAST(SUM(credits) AS BIGINT) AS c FROM chat_usage")
            .fetch_one(db.reader())
            .await
            .unwrap()
            .try_get("c")
            .unwrap();
        assert_eq!(usage, 10 + 20 + 12 + 7, "usage rows carry what was charged");
    }

    #[tokio::test]
    async fn the_money_rules_hold_on_the_sqlite_writer() {
        let (_dir, db) = db().await;
        let path = db.sqlite_path().unwrap().to_owned();
        let mut store = sqlite::SqliteStore::open_for_test(&path);
        the_money_rules_hold(&mut store, &db).await;
    }

    #[tokio::test]
    async fn the_money_rules_hold_through_sqlx() {
        // The sqlx store's SQL is portable: run it on SQLite here (and on PostgreSQL through the
        // integration tests' second pass).
        let (_dir, db) = db().await;
        let mut store = sqlx_store::SqlxStore::new(db.clone());
        the_money_rules_hold(&mut store, &db).await;
    }
}

#[cfg(test)]
mod properties {
    //! Random interleavings of holds (fixed and flexible), settlements above and below the
    //! hold, releases, orphaning by a sweep and late settlements, credits and debits, in random
    //! batches: the balance never goes below zero, always equals the ledger sum, a hold never
    //! takes more than it held, and a hold closes once.

    use proptest::prelude::*;
    use sqlx::Row;

    use super::tests::{assert_ledger_replays, balance, db, user};
    use super::*;

    #[derive(Debug, Clone)]
    enum Step {
        Hold {
            min: i64,
            max: i64,
        },
        Close {
            which: usize,
            price: i64,
        },
        Orphan {
            which: usize,
        },
        Change {
            amount: i64,
        },
        /// Claim for the current credit lease (or a new one).
        Take {
            min: i64,
            want: i64,
            fresh: bool,
        },
        /// Pay a call from the current lease, whatever the caller held (the engine must not
        /// trust it), perhaps ending the lease.
        Spend {
            hold: i64,
            price: i64,
            end: bool,
        },
        /// End the current lease (given back, or taken for dead).
        EndLease {
            orphaned: bool,
        },
        /// Commit what is queued as one batch.
        Commit,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (1i64..50, 0i64..80).prop_map(|(min, extra)| Step::Hold {
                min,
                max: min + extra
            }),
            (0usize..64, 0i64..200).prop_map(|(which, price)| Step::Close { which, price }),
            (0usize..64).prop_map(|which| Step::Orphan { which }),
            (-60i64..60).prop_map(|amount| Step::Change { amount }),
            (1i64..40, 0i64..120, any::<bool>()).prop_map(|(min, want, fresh)| Step::Take {
                min,
                want,
                fresh
            }),
            (0i64..60, 0i64..90, prop::bool::weighted(0.2))
                .prop_map(|(hold, price, end)| Step::Spend { hold, price, end }),
            any::<bool>().prop_map(|orphaned| Step::EndLease { orphaned }),
            Just(Step::Commit),
        ]
    }

    async fn check(steps: Vec<Step>, on_writer: bool) {
        let (_dir, db) = db().await;
        if on_writer {
            let mut store = sqlite::SqliteStore::open_for_test(db.sqlite_path().unwrap());
            check_on(&mut store, &db, steps).await;
        } else {
            let mut store = sqlx_store::SqlxStore::new(db.clone());
            check_on(&mut store, &db, steps).await;
        }
    }

    async fn check_on<S: MoneyStore>(store: &mut S, db: &crate::storage::Db, steps: Vec<Step>) {
        let a = user(db, "13000000077", 200).await;
        let mut holds: Vec<Reservation> = Vec::new();
        let mut batch: Vec<Op> = Vec::new();
        let mut keys = 0;
        let mut lease: Option<String> = None;
        let mut calls = 0;
        let mut sent = HashSet::new();
        let mut in_batch = HashSet::new();
        for step in steps.into_iter().chain([Step::Commit]) {
            match step {
                Step::Take { min, want, fresh } => {
                    let new = fresh || lease.is_none();
                    if new {
                        lease = Some(format!("lease{}", keys + calls));
                        calls += 1;
                    }
                    batch.push(Op::Take(Take {
                        lease_id: lease.clone().unwrap_or_default(),
                        user_id: a,
                        owner: "p".into(),
                        new,
                        min,
                        want,
                    }));
                }
                Step::Spend { hold, price, end } if lease.is_some() => {
                    calls += 1;
                    // The same call sent again is a retry (ids repeat on purpose), sent only
                    // after the batch of its first try.
                    let id = calls % 40;
                    if !in_batch.insert(id) {
                        continue;
                    }
                    let retry = !sent.insert(id);
                    batch.push(Op::Spend(Spend {
                        lease_id: lease.clone().unwrap_or_default(),
                        user_id: a,
                        call_id: format!("call{id}"),
                        hold,
                        price,
                        label: "对话 m".into(),
                        model: "m".into(),
                        usage: None,
                        end_lease: end,
                        retry,
                    }));
                }
                Step::EndLease { orphaned } if lease.is_some() => {
                    batch.push(Op::EndLease(EndLease {
                        lease_id: lease.clone().unwrap_or_default(),
                        orphaned,
                    }));
                }
                Step::Hold { min, max } => batch.push(Op::Hold(Hold {
                    user_id: a,
                    min,
                    max,
                    purpose: "chat",
                    model: "m".into(),
                    label: "对话 m".into(),
                    owner: Some("p".into()),
                })),
                Step::Close { which, price } if !holds.is_empty() => batch.push(Op::Close(Close {
                    reservation_id: Some(holds[which % holds.len()].id.clone()),
                    price,
                    usage: None,
                    orphaned: false,
                })),
                Step::Orphan { which } if !holds.is_empty() => batch.push(Op::Close(Close {
                    reservation_id: Some(holds[which % holds.len()].id.clone()),
                    price: 0,
                    usage: None,
                    orphaned: true,
                })),
                Step::Change { amount } if amount != 0 => {
                    keys += 1;
                    batch.push(Op::Change(Change {
                        user_id: a,
                        amount,
                        kind: EntryKind::Adjust,
                        reason: "p".into(),
                        label: None,
                        idem_key: format!("k{}", keys % 7),
                    }));
                }
                Step::Commit if !batch.is_empty() => {
                    in_batch.clear();
                    let ops = std::mem::take(&mut batch);
                    let outcomes = run(store, &ops).await.unwrap();
                    for (op, outcome) in ops.iter().zip(outcomes) {
                        match (op, outcome) {
                            (Op::Hold(h), Outcome::Held(Ok(r))) => {
                                assert!(r.amount >= h.min && r.amount <= h.max, "{r:?} {h:?}");
                                holds.push(r);
                            }
                            (Op::Spend(sp), Outcome::Closed(s)) => {
                                assert!(s.charged >= 0 && s.charged <= sp.hold.max(0));
                            }
                            (Op::Take(t), Outcome::Took(Ok(got))) => {
                                assert!(
                                    got >= t.min.max(1).min(t.want) && got <= t.want,
                                    "{t:?} took {got}"
                                );
                            }
                            (Op::Take(t), Outcome::Took(Err(_))) if t.new => {
                                // A new lease that got nothing has no row: forget it.
                                lease = None;
                            }
                            (Op::Close(c), Outcome::Closed(s)) if s.applied => {
                                let held = holds
                                    .iter()
                                    .find(|r| Some(&r.id) == c.reservation_id.as_ref())
                                    .map(|r| r.amount)
                                    .unwrap_or(0);
                                assert!(s.charged <= held, "charged {} > hold {held}", s.charged);
                                assert!(s.charged >= 0);
                            }
                            _ => {}
                        }
                    }
                    assert!(balance(db, a).await >= 0);
                    assert_leases_add_up(db, a).await;
                }
                _ => {}
            }
        }
        assert_ledger_replays(db, a).await;
        // Per hold: what its rows took in all never exceeds what it held.
        let rows = sqlx::query(
            "SELECT r.amount AS held, CAST(-SUM(l.amount) AS BIGINT) AS taken FROM reservations r \
             JOIN ledger l ON l.reservation_id = r.id WHERE r.status <> 'open' GROUP BY r.id, r.amount",
        )
        .fetch_all(db.reader())
        .await
        .unwrap();
        for row in rows {
            let held: i64 = row.try_get("held").unwrap();
            let taken: i64 = row.try_get("taken").unwrap();
            assert!(taken >= 0 && taken <= held, "a hold of {held} took {taken}");
        }
    }

    /// `users.leased` is the sum of the live leases, between 0 and the balance.
    async fn assert_leases_add_up(db: &crate::storage::Db, user: i64) {
        let row = sqlx::query(
            "SELECT balance, leased, (SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM credit_leases \
             WHERE user_id = $1 AND status = 'live') AS live FROM users WHERE id = $1",
        )
        .bind(user)
        .fetch_one(db.reader())
        .await
        .unwrap();
        let balance: i64 = row.try_get("balance").unwrap();
        let leased: i64 = row.try_get("leased").unwrap();
        let live: i64 = row.try_get("live").unwrap();
        assert_eq!(leased, live, "leased = the live leases' sum");
        assert!(
            (0..=balance).contains(&leased),
            "0 <= leased {leased} <= balance {balance}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 64, ..ProptestConfig::default() })]

        #[test]
        fn random_interleavings_keep_the_money_rules(steps in prop::collection::vec(step(), 1..80), on_writer in any::<bool>()) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(check(steps, on_writer));
        }
    }
}
