//! The engine's credit-lease steps: paying calls from their process's lease and ending leases
//! (before any other change of the transaction, since they only free money), and claiming
//! units for leases (after every other change, from what is then free).
//!
//! A lease's `amount` is what it still claims; `users.leased` is the sum over a user's live
//! leases. A call's charge lowers the balance, the lease's amount and `leased` together, so
//! `balance - leased` (what anything else may take) does not move; an ending lease lowers
//! `leased` by its rest. A call whose lease is no longer live (its owner was taken for dead and
//! the lease went back) is charged late, up to what is free, like a late settlement of an
//! orphaned hold: nothing the upstream billed is written off while there is money.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{
    Entry, EntryKind, LeaseRow, LedgerError, MoneyStore, NewLease, Op, Outcome, Settlement,
    spend_key,
};

/// What [`spend`] did.
#[derive(Default)]
pub(super) struct Spent {
    /// Charges taken from live leases, in op order, each with its `balance_after`.
    pub entries: Vec<Entry>,
    /// Charges of calls whose lease is gone: taken later, up to what is free.
    pub late: Vec<Entry>,
    /// The leases the batch names, as they stand after the charges and ends.
    pub leases: HashMap<String, LeaseRow>,
}

/// Pay the batch's `Spend`s from their leases and apply its `EndLease`s (and the ends the
/// spends ask for); sets those ops' outcomes.
pub(super) async fn spend<S: MoneyStore>(
    store: &mut S,
    ops: &[Op],
    seen: &HashSet<usize>,
    now: i64,
    outcomes: &mut [Option<Outcome>],
) -> Result<Spent, LedgerError> {
    let mut ids: Vec<&str> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Spend(sp) => Some(sp.lease_id.as_str()),
            Op::EndLease(e) => Some(e.lease_id.as_str()),
            Op::Take(t) if !t.new => Some(t.lease_id.as_str()),
            _ => None,
        })
        .collect();
    if ids.is_empty() {
        return Ok(Spent::default());
    }
    ids.sort_unstable();
    ids.dedup();
    let mut leases = store.leases(&ids).await?;
    let mut changed: HashSet<String> = HashSet::new();
    // Per user: (balance change, leased change, charges in op order).
    let mut per_user: BTreeMap<i64, (i64, i64, Vec<Entry>)> = BTreeMap::new();
    let mut late = Vec::new();

    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Spend(sp) => {
                if seen.contains(&i) {
                    // Paid before (a retry after a lost answer): nothing changes, and its lease
                    // ended then if it was to.
                    outcomes[i] = Some(Outcome::Closed(Settlement {
                        charged: 0,
                        uncovered: 0,
                        applied: false,
                    }));
                    continue;
                }
                let price = sp.price.max(0);
                let charged = price.min(sp.hold.max(0));
                outcomes[i] = Some(Outcome::Closed(Settlement {
                    charged,
                    uncovered: price - charged,
                    applied: true,
                }));
                if charged > 0 {
                    let mut entry = Entry {
                        op: i,
                        user_id: sp.user_id,
                        amount: -charged,
                        kind: EntryKind::Charge,
                        reason: format!("chat {}: price {charged}, hold {}", sp.model, sp.hold),
                        label: Some(sp.label.clone()),
                        idem_key: spend_key(&sp.call_id),
                        reservation_id: None,
                        balance_after: 0,
                        capped: false,
                    };
                    match leases.get_mut(&sp.lease_id).filter(|l| {
                        l.status == "live" && l.user_id == sp.user_id && l.amount >= charged
                    }) {
                        Some(lease) => {
                            lease.amount -= charged;
                            if !changed.contains(&sp.lease_id) {
                                changed.insert(sp.lease_id.clone());
                            }
                            let user = per_user.entry(sp.user_id).or_default();
                            user.0 -= charged;
                            user.1 -= charged;
                            user.2.push(entry);
                        }
                        None => {
                            entry.capped = true;
                            entry.reason =
                                format!("late charge: chat {}: price {charged}", sp.model);
                            late.push(entry);
                        }
                    }
                }
                if sp.end_lease {
                    end(
                        &mut leases,
                        &mut changed,
                        &mut per_user,
                        &sp.lease_id,
                        "ended",
                    );
                }
            }
            Op::EndLease(e) => {
                let status = if e.orphaned { "orphaned" } else { "ended" };
                let rest = end(
                    &mut leases,
                    &mut changed,
                    &mut per_user,
                    &e.lease_id,
                    status,
                );
                outcomes[i] = Some(Outcome::Ended(rest));
            }
            _ => {}
        }
    }

    let mut changed: Vec<&String> = changed.iter().collect();
    changed.sort_unstable();
    for id in changed {
        if let Some(lease) = leases.get(id.as_str()) {
            let status = match lease.status.as_str() {
                "ended" => "ended",
                "orphaned" => "orphaned",
                _ => "live",
            };
            store.set_lease(id, lease.amount, status, now).await?;
        }
    }
    let mut entries = Vec::new();
    for (user, (balance_delta, leased_delta, charges)) in per_user {
        let after = store.move_leased(user, balance_delta, leased_delta).await?;
        let mut balance = after - balance_delta;
        for mut e in charges {
            balance += e.amount;
            e.balance_after = balance;
            entries.push(e);
        }
    }
    Ok(Spent {
        entries,
        late,
        leases,
    })
}

/// End a live lease: its rest goes back. Returns the rest (0 when it was not live).
fn end(
    leases: &mut HashMap<String, LeaseRow>,
    changed: &mut HashSet<String>,
    per_user: &mut BTreeMap<i64, (i64, i64, Vec<Entry>)>,
    id: &str,
    status: &'static str,
) -> i64 {
    let Some(lease) = leases.get_mut(id).filter(|l| l.status == "live") else {
        return 0;
    };
    let rest = lease.amount;
    lease.amount = 0;
    lease.status = status.to_owned();
    changed.insert(id.to_owned());
    per_user.entry(lease.user_id).or_default().1 -= rest;
    rest
}

/// Claim units for the batch's `Take`s, each between its `min` and `want` from what is free:
/// `want` when it fits, else everything free when that is at least `min`, else refused. A take
/// on a lease that is not live any more is refused with [`LedgerError::LeaseGone`].
pub(super) async fn take<S: MoneyStore>(
    store: &mut S,
    ops: &[Op],
    leases: &HashMap<String, LeaseRow>,
    now: i64,
    outcomes: &mut [Option<Outcome>],
) -> Result<(), LedgerError> {
    // Amounts added to existing leases in this batch.
    let mut added: HashMap<&str, i64> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        let Op::Take(t) = op else { continue };
        if !t.new
            && !leases
                .get(&t.lease_id)
                .is_some_and(|l| l.status == "live" && l.user_id == t.user_id)
        {
            outcomes[i] = Some(Outcome::Took(Err(LedgerError::LeaseGone)));
            continue;
        }
        let got = if t.want > 0 && store.claim(t.user_id, t.want).await? {
            Ok(t.want)
        } else {
            match store.free_balance(t.user_id).await {
                Ok(free) if free > 0 && free >= t.min.max(1) && free < t.want => {
                    if store.claim(t.user_id, free).await? {
                        Ok(free)
                    } else {
                        Err(LedgerError::InsufficientBalance)
                    }
                }
                Ok(_) => Err(LedgerError::InsufficientBalance),
                Err(LedgerError::UnknownUser) => Err(LedgerError::UnknownUser),
                Err(e) => return Err(e),
            }
        };
        if let Ok(got) = got {
            if t.new {
                let lease = NewLease {
                    id: &t.lease_id,
                    user_id: t.user_id,
                    owner: &t.owner,
                    amount: got,
                };
                store.insert_lease(&lease, now).await?;
            } else {
                let before = leases.get(&t.lease_id).map_or(0, |l| l.amount);
                let sum = added.entry(t.lease_id.as_str()).or_insert(before);
                *sum += got;
                store.set_lease(&t.lease_id, *sum, "live", now).await?;
            }
        }
        outcomes[i] = Some(Outcome::Took(got));
    }
    Ok(())
}
