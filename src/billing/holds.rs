//! Holds live as long as their call: a chat hold names the process that serves the call (its
//! owner), and each process keeps a lease row in `process_leases` renewed by a heartbeat. A hold
//! is released only when its owner's lease has run out — the process died or lost the
//! database for longer than the lease — never because the call is long or its client reads
//! slowly. Such a hold becomes `orphaned`; if its owner was only slow and settles after all, the
//! engine still charges the price (see [`super::engine`]).

use std::time::Duration;

use sqlx::Row;
use tokio_util::sync::CancellationToken;

use super::ledger::{Ledger, LedgerError};
use crate::storage::{Db, StoreError};
use crate::util::clock::now_ms;
use crate::util::ids::random_id;

/// This process's lease on its holds.
#[derive(Debug, Clone)]
pub struct ProcessLease {
    db: Db,
    owner: String,
    lease: Duration,
}

impl ProcessLease {
    /// Register a new owner (pid + random) with a fresh lease.
    pub async fn register(db: Db, lease: Duration) -> Result<ProcessLease, StoreError> {
        let this = ProcessLease {
            db,
            owner: format!("{}-{}", std::process::id(), random_id()),
            lease,
        };
        this.renew().await?;
        Ok(this)
    }

    /// The owner id its holds carry.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Extend the lease by its length from now.
    pub async fn renew(&self) -> Result<(), StoreError> {
        let now = now_ms();
        let until = now.saturating_add(i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX));
        sqlx::query(
            "INSERT INTO process_leases (owner, lease_until, started_at) VALUES ($1, $2, $3) \
             ON CONFLICT (owner) DO UPDATE SET lease_until = excluded.lease_until",
        )
        .bind(&self.owner)
        .bind(until)
        .bind(now)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// Give the lease up (a clean shutdown, after every call was settled): whatever this
    /// process still holds is released by the next sweep of any process.
    pub async fn end(&self) {
        let ended = sqlx::query("DELETE FROM process_leases WHERE owner = $1")
            .bind(&self.owner)
            .execute(self.db.writer())
            .await;
        if let Err(e) = ended {
            tracing::warn!(error = %e, "cannot end the process lease; it expires by itself");
        }
    }

    /// Renew the lease and release dead owners' holds every third of the lease, until `stop`.
    pub async fn keep(self, ledger: Ledger, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.lease / 3);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => break,
            }
            if let Err(e) = self.renew().await {
                tracing::warn!(error = %e, "cannot renew the process lease");
            }
            match release_orphans(&self.db, &ledger).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::warn!(released = n, "released the holds of a process that is gone")
                }
                Err(e) => tracing::warn!(error = %e, "orphaned hold sweep failed"),
            }
        }
    }
}

/// Release the open holds whose owner's lease has run out; how many were released.
pub async fn release_orphans(db: &Db, ledger: &Ledger) -> Result<usize, LedgerError> {
    let now = now_ms();
    let rows = sqlx::query(
        "SELECT id FROM reservations r WHERE r.status = 'open' AND r.owner IS NOT NULL \
         AND NOT EXISTS (SELECT 1 FROM process_leases p WHERE p.owner = r.owner AND p.lease_until > $1)",
    )
    .bind(now)
    .fetch_all(db.reader())
    .await?;
    let mut released = 0;
    for row in rows {
        let id: String = row.try_get("id")?;
        if ledger.release_orphan(&id).await?.applied {
            released += 1;
        }
    }
    // The credit leases of dead owners go back the same way.
    let rows = sqlx::query(
        "SELECT id FROM credit_leases c WHERE c.status = 'live' \
         AND NOT EXISTS (SELECT 1 FROM process_leases p WHERE p.owner = c.owner AND p.lease_until > $1)",
    )
    .bind(now)
    .fetch_all(db.reader())
    .await?;
    for row in rows {
        let id: String = row.try_get("id")?;
        let rest = ledger.end_orphaned_lease(&id).await?;
        tracing::warn!(lease = %id, units = rest, "returned the credit lease of a process that is gone");
    }
    // Leases long gone whose holds are all closed are of no more use.
    let day = 86_400_000;
    sqlx::query(
        "DELETE FROM process_leases WHERE lease_until < $1 AND NOT EXISTS \
         (SELECT 1 FROM reservations r WHERE r.owner = process_leases.owner AND r.status = 'open') \
         AND NOT EXISTS (SELECT 1 FROM credit_leases c WHERE c.owner = process_leases.owner AND c.status = 'live')",
    )
    .bind(now - day)
    .execute(db.writer())
    .await?;
    Ok(released)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::engine::tests::{balance, db, user};
    use crate::billing::engine::{Close, Hold};
    use crate::billing::group_commit::GroupCommit;

    #[tokio::test]
    async fn holds_are_released_only_when_their_owner_is_gone() {
        let (_dir, db) = db().await;
        let a = user(&db, "13000000009", 100).await;
        let ledger = Ledger::new(db.clone());
        let commits =
            GroupCommit::start(db.clone(), &tokio_util::task::TaskTracker::new()).unwrap();
        let live = ProcessLease::register(db.clone(), Duration::from_secs(60))
            .await
            .unwrap();
        let dead = ProcessLease::register(db.clone(), Duration::from_millis(1))
            .await
            .unwrap();
        let hold = |owner: &str| Hold {
            user_id: a,
            min: 10,
            max: 10,
            purpose: "chat",
            model: "m".into(),
            label: "对话 m".into(),
            owner: Some(owner.to_owned()),
        };
        let mine = commits.hold(hold(live.owner())).await.unwrap();
        let theirs = commits.hold(hold(dead.owner())).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(release_orphans(&db, &ledger).await.unwrap(), 1);
        assert_eq!(
            balance(&db, a).await,
            90,
            "only the dead owner's hold came back"
        );
        // The slow owner settles after all: the price is still taken.
        let late = commits
            .close(Close {
                reservation_id: Some(theirs.id.clone()),
                price: 4,
                usage: None,
                orphaned: false,
            })
            .await
            .unwrap();
        assert_eq!(late.charged, 4);
        assert_eq!(balance(&db, a).await, 86);
        live.end().await;
        assert_eq!(release_orphans(&db, &ledger).await.unwrap(), 1);
        assert_eq!(balance(&db, a).await, 96);
        let _ = mine;
    }
}
