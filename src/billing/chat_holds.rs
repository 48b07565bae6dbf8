//! Chat holds made in memory against a credit lease, so a chat call waits for one commit (its
//! settlement) instead of two (hold, then settlement). The money rules stay the engine's
//! ([`super::engine`]); this module only decides when to claim and give back.
//!
//! Per user, this process keeps at most one live lease: units of the user's balance claimed in
//! the database (`credit_leases`, `users.leased`) for the calls this process serves. A call
//! holds between its `min` and `max` from the lease's unheld part; when that is short, the
//! process claims more in one transaction: what is missing for every call waiting for the
//! claim, plus headroom for the next calls (one more `max` for each call in flight or waiting,
//! doubling with every claim of the same lease up to 1,024 times that, so a lease under steady
//! load stops needing claims even when each call is charged its whole hold), or, when the
//! balance cannot give that, everything free if that covers the call's `min` — the same "whole
//! balance when at least the minimum" rule as a database hold. The call's settlement charges
//! `min(price, hold)` from the lease in the group commit.
//!
//! A lease that has no call in flight is given back once it has stayed so for the *linger*
//! ([`ChatHolds::end_idle`], run every few milliseconds by the server; 100 ms by default), so an
//! idle process claims nothing for long. Under load the calls of a user come in waves with
//! instants between them when none is in flight; giving the lease back at each of those instants
//! (what a linger of zero does: the last call's settlement gives the rest back in its own
//! commit) made the next wave claim again from nothing, its calls queued behind one claim after
//! another while the headroom doubled back up — a commit per wave on the calls' path, which is
//! what the lease is there to take away (docs/benchmarks.md, 2026-12-08).
//!
//! If this process dies, its leases go back once its process lease runs out
//! ([`super::holds::release_orphans`]); if it was only slow, its late settlements are still
//! charged, up to what is free.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::engine::{Close, EndLease, Hold, LedgerError, Reservation, Settlement, Spend, Take};
use super::group_commit::GroupCommit;
use super::ledger::{MAX_CHANGE, time_ordered_id};

/// A lease's headroom (what a claim takes beyond the calls waiting for it: one call's maximum
/// for each call in flight or waiting) doubles with each claim up to 2^this times that: 1,024
/// rounds of the same calls between claims under steady load.
const MAX_HEADROOM_DOUBLINGS: u32 = 10;

/// One user's lease in this process.
struct Lease {
    id: String,
    /// Whether its row exists (its first claim committed).
    opened: bool,
    /// Units it claims, as this process counts them (the row's amount once every settlement
    /// sent has committed).
    amount: i64,
    /// Units held by calls in flight.
    held: i64,
    /// Calls in flight on it.
    calls: usize,
    /// Calls waiting for a claim on it.
    claiming: usize,
    /// Claims made for it so far: each claims twice the headroom of the one before (up to
    /// [`MAX_HEADROOM_DOUBLINGS`]), so a lease under steady load stops needing claims even when
    /// every call is charged its whole hold.
    claims: u32,
    /// One claim at a time per lease.
    claim_lock: Arc<tokio::sync::Mutex<()>>,
    /// Since when it has had no call in flight and none waiting (`None` while it has one).
    idle_since: Option<Instant>,
}

impl Lease {
    fn free(&self) -> i64 {
        self.amount - self.held
    }

    fn idle(&self) -> bool {
        self.calls == 0 && self.claiming == 0
    }
}

/// A call in flight.
struct Call {
    lease_id: String,
    user_id: i64,
    hold: i64,
    model: String,
    label: String,
    /// Its settlement, once asked for (sent again as is when the first try failed).
    spend: Option<Spend>,
}

#[derive(Default)]
struct State {
    leases: HashMap<i64, Lease>,
    calls: HashMap<String, Call>,
}

/// The chat path's holds (cheap to clone).
#[derive(Clone)]
pub struct ChatHolds {
    commits: GroupCommit,
    owner: String,
    /// How long a lease with no call in flight is kept before it is given back (zero: given
    /// back by the settlement of its last call).
    linger: Duration,
    state: Arc<Mutex<State>>,
    /// Claims committed (each one transaction on the hot path of the call that needed it).
    claims: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for ChatHolds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatHolds")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl ChatHolds {
    /// Holds of the process `owner` (its `process_leases` row), committed through `commits`; a
    /// lease idle for `linger` is given back by [`ChatHolds::end_idle`] (with a zero linger, by
    /// the settlement of its last call).
    pub fn new(commits: GroupCommit, owner: String, linger: Duration) -> ChatHolds {
        ChatHolds {
            commits,
            owner,
            linger,
            state: Arc::default(),
            claims: Arc::default(),
        }
    }

    /// The group commit it writes through (for operations that are not lease holds).
    pub fn commits(&self) -> &GroupCommit {
        &self.commits
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave a half-made change: every update below
        // is a few integer assignments.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Hold between `hold.min` and `hold.max` units for a call; the reservation's id names the
    /// call for [`ChatHolds::close`]. Refused with `InsufficientBalance` when not even `min` is
    /// free.
    pub async fn hold(&self, mut hold: Hold) -> Result<Reservation, LedgerError> {
        if !(0..=MAX_CHANGE).contains(&hold.max) {
            return Err(LedgerError::OutOfRange);
        }
        let min = hold.min.clamp(1, hold.max.max(1));
        // A lease with no call in flight (lingering) may outlive the database's reachability:
        // a call is not started from it unless the database answers, so that a call is never
        // served whose settlement cannot be written (the first call of each wave pays one read).
        let lingering = self
            .lock()
            .leases
            .get(&hold.user_id)
            .is_some_and(|lease| lease.idle_since.is_some());
        if lingering {
            self.commits.ping().await?;
        }
        loop {
            // Without a commit when the lease has room.
            let (lease_id, claim_lock) = {
                let mut state = self.lock();
                let max = hold.max;
                if let Some(granted) = self.grant(&mut state, &mut hold, max) {
                    return Ok(granted);
                }
                let lease = state.leases.entry(hold.user_id).or_insert_with(|| Lease {
                    id: time_ordered_id(),
                    opened: false,
                    amount: 0,
                    held: 0,
                    calls: 0,
                    claiming: 0,
                    claims: 0,
                    claim_lock: Arc::default(),
                    idle_since: None,
                });
                lease.claiming += 1;
                lease.idle_since = None;
                (lease.id.clone(), lease.claim_lock.clone())
            };
            let claimed = self.claim(&hold, min, &lease_id, &claim_lock).await;
            match self.after_claim(&mut hold, min, &lease_id, claimed) {
                Next::Granted(granted) => return Ok(granted),
                Next::Again => {}
                Next::Refused(e, end) => {
                    self.end(end).await;
                    return Err(e);
                }
            }
        }
    }

    /// What a claim's result means for the call.
    fn after_claim(
        &self,
        hold: &mut Hold,
        min: i64,
        lease_id: &str,
        claimed: Result<Claim, LedgerError>,
    ) -> Next {
        let mut state = self.lock();
        let Some(lease) = state
            .leases
            .get_mut(&hold.user_id)
            .filter(|l| l.id == lease_id)
        else {
            // The lease was given back meanwhile (what was claimed went with it): again.
            return Next::Again;
        };
        lease.claiming -= 1;
        match claimed {
            Ok(Claim::Taken { units, all_free }) => {
                lease.amount += units;
                lease.opened = true;
                lease.claims = lease.claims.saturating_add(1);
                match all_free {
                    // The balance had less than asked: the call takes what there is.
                    true => self
                        .grant(&mut state, hold, min)
                        .map_or(Next::Again, Next::Granted),
                    false => Next::Again,
                }
            }
            Ok(Claim::Raced) => Next::Again,
            Err(LedgerError::InsufficientBalance) => {
                // Everything free is claimed: the call takes the lease's unheld rest when that
                // covers its minimum.
                if let Some(granted) = self.grant(&mut state, hold, min) {
                    return Next::Granted(granted);
                }
                let end = self.drop_if_idle(&mut state, hold.user_id);
                metrics::counter!("llmage_ledger_operations_total", "op" => "refused").increment(1);
                Next::Refused(LedgerError::InsufficientBalance, end)
            }
            Err(LedgerError::LeaseGone) => {
                // Taken for dead by another process: its calls settle late; start anew.
                state.leases.remove(&hold.user_id);
                Next::Again
            }
            Err(e) => {
                let end = self.drop_if_idle(&mut state, hold.user_id);
                Next::Refused(e, end)
            }
        }
    }

    /// Hold for `hold`'s call from its user's lease: `hold.max` when the unheld part has it,
    /// else all of that part when it is at least `at_least`.
    fn grant(&self, state: &mut State, hold: &mut Hold, at_least: i64) -> Option<Reservation> {
        let lease = state.leases.get_mut(&hold.user_id)?;
        if !lease.opened {
            return None;
        }
        let amount = hold.max.min(lease.free());
        if amount < at_least.max(1) {
            return None;
        }
        lease.held += amount;
        lease.calls += 1;
        lease.idle_since = None;
        super::ledger::record_reserve();
        let lease_id = lease.id.clone();
        let id = time_ordered_id();
        state.calls.insert(
            id.clone(),
            Call {
                lease_id,
                user_id: hold.user_id,
                hold: amount,
                model: std::mem::take(&mut hold.model),
                label: std::mem::take(&mut hold.label),
                spend: None,
            },
        );
        Some(Reservation {
            id,
            user_id: hold.user_id,
            amount,
        })
    }

    /// Claim more for the lease (one claim at a time per lease; a caller that waited for
    /// another's claim tries the lease again first).
    async fn claim(
        &self,
        hold: &Hold,
        min: i64,
        lease_id: &str,
        claim_lock: &tokio::sync::Mutex<()>,
    ) -> Result<Claim, LedgerError> {
        let _one_at_a_time = claim_lock.lock().await;
        let (opened, free, claims, waiting, concurrent) = {
            let state = self.lock();
            match state.leases.get(&hold.user_id).filter(|l| l.id == lease_id) {
                Some(lease) if lease.opened && lease.free() >= hold.max => {
                    return Ok(Claim::Raced);
                }
                Some(lease) => (
                    lease.opened,
                    lease.free(),
                    lease.claims,
                    i64::try_from(lease.claiming.max(1)).unwrap_or(i64::MAX),
                    i64::try_from((lease.calls + lease.claiming).max(1)).unwrap_or(i64::MAX),
                ),
                None => return Ok(Claim::Raced),
            }
        };
        // Enough for every call waiting for a claim of this lease (counted as calls like this
        // one), so they do not queue for one claim each.
        let missing = hold.max.saturating_mul(waiting) - free;
        let headroom = hold
            .max
            .saturating_mul(concurrent)
            .saturating_mul(1_i64 << claims.min(MAX_HEADROOM_DOUBLINGS));
        let take = Take {
            lease_id: lease_id.to_owned(),
            user_id: hold.user_id,
            owner: self.owner.clone(),
            new: !opened,
            min: (min - free).max(1),
            want: missing.saturating_add(headroom).min(MAX_CHANGE),
        };
        let want = take.want;
        let units = self.commits.take(take).await?;
        self.claims
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        metrics::counter!("llmage_credit_lease_events_total", "event" => "claim").increment(1);
        Ok(Claim::Taken {
            units,
            all_free: units < want,
        })
    }

    /// Take an idle lease out of the map; the id of its row, if it has one, to end.
    fn drop_if_idle(&self, state: &mut State, user_id: i64) -> Option<String> {
        let lease = state.leases.get(&user_id)?;
        if !lease.idle() {
            return None;
        }
        let lease = state.leases.remove(&user_id)?;
        lease.opened.then_some(lease.id)
    }

    async fn end(&self, lease_id: Option<String>) {
        let Some(lease_id) = lease_id else { return };
        let ended = self
            .commits
            .end_lease(EndLease {
                lease_id,
                orphaned: false,
            })
            .await;
        if ended.is_ok() {
            metrics::counter!("llmage_credit_lease_events_total", "event" => "end").increment(1);
        }
        if let Err(e) = ended {
            tracing::warn!(error = %e, "cannot give a credit lease back; it goes back when this process is gone");
        }
    }

    /// Settle a call at `close.price` (charging at most its hold) with its usage row, committed
    /// when this returns. A call without a hold (`reservation_id: None`) only records its usage.
    /// Safe to call again after an error: the same settlement is sent again.
    pub async fn close(&self, close: Close) -> Result<Settlement, LedgerError> {
        let Some(call_id) = close.reservation_id.clone() else {
            return self.commits.close(close).await;
        };
        let spend = {
            let mut state = self.lock();
            let State { leases, calls } = &mut *state;
            let Some(call) = calls.get_mut(&call_id) else {
                return Ok(Settlement {
                    charged: 0,
                    uncovered: 0,
                    applied: false,
                });
            };
            match &mut call.spend {
                Some(spend) => {
                    spend.retry = true;
                    spend.clone()
                }
                None => {
                    let charged = close.price.max(0).min(call.hold);
                    let mut end_lease = false;
                    if let Some(lease) = leases
                        .get_mut(&call.user_id)
                        .filter(|l| l.id == call.lease_id)
                    {
                        lease.held -= call.hold;
                        lease.amount -= charged;
                        lease.calls -= 1;
                        if lease.idle() {
                            if self.linger.is_zero() {
                                leases.remove(&call.user_id);
                                end_lease = true;
                            } else {
                                lease.idle_since = Some(Instant::now());
                            }
                        }
                    }
                    let spend = Spend {
                        lease_id: call.lease_id.clone(),
                        user_id: call.user_id,
                        call_id: call_id.clone(),
                        hold: call.hold,
                        price: close.price,
                        label: call.label.clone(),
                        model: call.model.clone(),
                        usage: close.usage,
                        end_lease,
                        retry: false,
                    };
                    call.spend = Some(spend.clone());
                    spend
                }
            }
        };
        let ends_lease = spend.end_lease;
        let settled = self.commits.spend(spend).await;
        if settled.is_ok() {
            if ends_lease {
                metrics::counter!("llmage_credit_lease_events_total", "event" => "end")
                    .increment(1);
            }
            self.lock().calls.remove(&call_id);
        }
        settled
    }

    /// How many claims this process has committed.
    pub fn claims_made(&self) -> u64 {
        self.claims.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Give back every lease this process holds (a clean shutdown, once every call settled).
    pub async fn end_all(&self) {
        self.end_leases(|_| true).await;
    }

    /// Give back the leases that have had no call in flight for the linger (run by the server
    /// every few milliseconds; see the module header).
    pub async fn end_idle(&self) {
        let linger = self.linger;
        self.end_leases(|lease| lease.idle_since.is_some_and(|t| t.elapsed() >= linger))
            .await;
    }

    /// The linger this was made with.
    pub fn linger(&self) -> Duration {
        self.linger
    }

    /// Give back the idle leases `pick` chooses.
    async fn end_leases(&self, pick: impl Fn(&Lease) -> bool) {
        let ids: Vec<String> = {
            let mut state = self.lock();
            let users: Vec<i64> = state
                .leases
                .iter()
                .filter(|(_, lease)| pick(lease))
                .map(|(user, _)| *user)
                .collect();
            users
                .into_iter()
                .filter_map(|user| self.drop_if_idle(&mut state, user))
                .collect()
        };
        for id in ids {
            self.end(Some(id)).await;
        }
    }
}

/// What a call does after a claim.
enum Next {
    Granted(Reservation),
    Again,
    /// Refused; the id of a lease that became idle, to give back.
    Refused(LedgerError, Option<String>),
}

/// What a claim came to.
enum Claim {
    /// Units added to the lease; `all_free` when that was everything free (less than asked).
    Taken { units: i64, all_free: bool },
    /// Another caller's claim made room meanwhile; nothing was claimed.
    Raced,
}

#[cfg(test)]
mod tests {
    use sqlx::Row;
    use tokio_util::task::TaskTracker;

    use super::*;
    use crate::billing::engine::tests::{assert_ledger_replays, balance, db, user};
    use crate::billing::holds::{ProcessLease, release_orphans};
    use crate::billing::ledger::Ledger;
    use crate::storage::Db;

    /// Holds of process "p" on `db`, with `linger`.
    fn holds_on(db: &Db, tracker: &TaskTracker, linger: Duration) -> ChatHolds {
        ChatHolds::new(
            GroupCommit::start(db.clone(), tracker).unwrap(),
            "p".into(),
            linger,
        )
    }

    fn chat_hold(user_id: i64, min: i64, max: i64) -> Hold {
        Hold {
            user_id,
            min,
            max,
            purpose: "chat",
            model: "m".into(),
            label: "对话 m".into(),
            owner: None,
        }
    }

    fn close(r: &Reservation, price: i64) -> Close {
        Close {
            reservation_id: Some(r.id.clone()),
            price,
            usage: None,
            orphaned: false,
        }
    }

    async fn leased(db: &Db, user: i64) -> (i64, i64) {
        let row = sqlx::query(
            "SELECT leased, (SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM credit_leases \
             WHERE user_id = $1 AND status = 'live') AS live FROM users WHERE id = $1",
        )
        .bind(user)
        .fetch_one(db.reader())
        .await
        .unwrap();
        (row.try_get("leased").unwrap(), row.try_get("live").unwrap())
    }

    #[tokio::test]
    async fn concurrent_calls_fit_exactly_pay_once_and_leave_nothing_claimed() {
        let (_dir, db) = db().await;
        let a = user(&db, "13000000031", 1000).await;
        let tracker = TaskTracker::new();
        let holds = holds_on(&db, &tracker, Duration::ZERO);
        let calls: Vec<_> = (0..300)
            .map(|i| {
                let holds = holds.clone();
                tracker.spawn(async move {
                    let r = holds.hold(chat_hold(a, 7, 7)).await?;
                    tokio::task::yield_now().await;
                    let s = holds.close(close(&r, i % 9)).await?;
                    Ok::<_, LedgerError>((r.amount, s))
                })
            })
            .collect();
        let mut paid = 0;
        for call in calls {
            match call.await.unwrap() {
                Ok((held, s)) => {
                    assert_eq!(held, 7);
                    assert!(s.applied && s.charged <= 7);
                    paid += s.charged;
                }
                Err(LedgerError::InsufficientBalance) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(balance(&db, a).await, 1000 - paid);
        assert_eq!(
            leased(&db, a).await,
            (0, 0),
            "the last call gave the lease back"
        );
        assert_ledger_replays(&db, a).await;
        let rows: i64 = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM ledger WHERE user_id = $1 AND kind = 'charge'",
        )
        .bind(a)
        .fetch_one(db.reader())
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
        assert!(rows > 0 && rows <= 300);
    }

    #[tokio::test]
    async fn a_lease_under_steady_load_needs_few_claims_even_when_calls_pay_their_whole_hold() {
        let (_dir, db) = db().await;
        let a = user(&db, "13000000034", 1_000_000).await;
        let tracker = TaskTracker::new();
        let holds = holds_on(&db, &tracker, Duration::ZERO);
        // One call stays open, so the lease lives through the loop.
        let keeper = holds.hold(chat_hold(a, 3, 3)).await.unwrap();
        for _ in 0..2000 {
            let r = holds.hold(chat_hold(a, 3, 3)).await.unwrap();
            assert_eq!(holds.close(close(&r, 3)).await.unwrap().charged, 3);
        }
        // Headroom doubling: 1, 2, 4, …, 1,024 calls between claims (2,000 without it).
        assert!(holds.claims_made() <= 14, "{} claims", holds.claims_made());
        holds.close(close(&keeper, 0)).await.unwrap();
        assert_eq!(balance(&db, a).await, 1_000_000 - 2000 * 3);
        assert_eq!(leased(&db, a).await, (0, 0));
        assert_ledger_replays(&db, a).await;
    }

    #[tokio::test]
    async fn calls_waiting_for_a_claim_share_one_and_a_lingering_lease_serves_the_next_wave() {
        let (_dir, db) = db().await;
        let a = user(&db, "13000000035", 1_000_000).await;
        let tracker = TaskTracker::new();
        // Long enough that a loaded machine cannot stall past it between the last wave and the
        // "kept" check below.
        let linger = Duration::from_millis(300);
        let holds = holds_on(&db, &tracker, linger);
        // Waves of 32 calls, nothing in flight between waves (as under load, one core).
        for wave in 0..20 {
            let calls: Vec<_> = (0..32)
                .map(|_| {
                    let holds = holds.clone();
                    tracker.spawn(async move {
                        let r = holds.hold(chat_hold(a, 5, 5)).await.unwrap();
                        tokio::task::yield_now().await;
                        holds.close(close(&r, 5)).await.unwrap()
                    })
                })
                .collect();
            for call in calls {
                assert_eq!(call.await.unwrap().charged, 5);
            }
            if wave == 0 {
                // The first wave's calls queued for the lease's first claims together.
                assert!(holds.claims_made() <= 3, "{} claims", holds.claims_made());
            }
        }
        // One lease served every wave: its headroom only grew (without the linger each wave
        // started a new lease from nothing: 20 waves, a few claims each).
        assert!(holds.claims_made() <= 8, "{} claims", holds.claims_made());
        holds.end_idle().await;
        assert!(leased(&db, a).await.0 > 0, "kept through its linger");
        // The scenario: the lease stays idle longer than its linger.
        tokio::time::sleep(linger + Duration::from_millis(20)).await;
        holds.end_idle().await;
        assert_eq!(leased(&db, a).await, (0, 0), "given back after its linger");
        assert_eq!(balance(&db, a).await, 1_000_000 - 20 * 32 * 5);
        assert_ledger_replays(&db, a).await;
    }

    #[tokio::test]
    async fn a_small_balance_is_held_whole_and_what_is_leased_is_not_taken_by_others() {
        let (_dir, db) = db().await;
        let a = user(&db, "13000000032", 100).await;
        let tracker = TaskTracker::new();
        let holds = holds_on(&db, &tracker, Duration::ZERO);
        // The call's maximum does not fit: it holds the whole balance (above its minimum).
        let r = holds.hold(chat_hold(a, 10, 500)).await.unwrap();
        assert_eq!(r.amount, 100);
        assert!(matches!(
            holds.hold(chat_hold(a, 1, 5)).await,
            Err(LedgerError::InsufficientBalance)
        ));
        // A debit elsewhere cannot take what the lease claims.
        let ledger = Ledger::new(db.clone());
        assert!(matches!(
            ledger
                .apply(a, -1, crate::billing::ledger::EntryKind::Adjust, "t", "k")
                .await,
            Err(LedgerError::InsufficientBalance)
        ));
        let s = holds.close(close(&r, 130)).await.unwrap();
        assert_eq!((s.charged, s.uncovered), (100, 30));
        assert_eq!(balance(&db, a).await, 0);
        assert_eq!(leased(&db, a).await, (0, 0));
        // Closing twice changes nothing.
        assert!(!holds.close(close(&r, 130)).await.unwrap().applied);
        assert_ledger_replays(&db, a).await;
    }

    #[tokio::test]
    async fn a_dead_owners_lease_goes_back_and_its_late_settlement_is_still_charged() {
        let (_dir, db) = db().await;
        let a = user(&db, "13000000033", 100).await;
        let tracker = TaskTracker::new();
        let commits = GroupCommit::start(db.clone(), &tracker).unwrap();
        let dead = ProcessLease::register(db.clone(), std::time::Duration::from_millis(1))
            .await
            .unwrap();
        let holds = ChatHolds::new(commits, dead.owner().to_owned(), Duration::ZERO);
        let r = holds.hold(chat_hold(a, 10, 40)).await.unwrap();
        assert!(leased(&db, a).await.0 >= 40);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        release_orphans(&db, &Ledger::new(db.clone()))
            .await
            .unwrap();
        assert_eq!(
            leased(&db, a).await,
            (0, 0),
            "the dead owner's lease went back"
        );
        // The owner was only slow: its settlement is still charged, from what is free.
        let s = holds.close(close(&r, 25)).await.unwrap();
        assert_eq!((s.charged, s.uncovered), (25, 0));
        assert_eq!(balance(&db, a).await, 75);
        // And its next call starts a new lease.
        let next = holds.hold(chat_hold(a, 10, 40)).await.unwrap();
        holds.close(close(&next, 5)).await.unwrap();
        assert_eq!(balance(&db, a).await, 70);
        assert_eq!(leased(&db, a).await, (0, 0));
        assert_ledger_replays(&db, a).await;
    }
}
