//! Ending a user's running streams when the user is disabled: every chat stream pump selects on
//! its user's cancellation token (a child of the relay's shutdown token), handed out by
//! [`token_for`]. [`end_user`] cancels it at once in this process (the admin API disables
//! through it); [`watch`] looks every half second for users disabled elsewhere (another gateway
//! process, the `admin user disable` command) among those with running streams, so a stream ends
//! within a second wherever the user was disabled.
//!
//! The registry is process-wide (one per server process): it holds one token per user who
//! started a stream in the last hour (longer than any stream may last:
//! `upstream_total_timeout_secs`), never request data.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::storage::Db;

/// A user's token and when a stream last took it.
struct Entry {
    token: CancellationToken,
    used: Instant,
}

static REGISTRY: LazyLock<Mutex<HashMap<i64, Entry>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Entries not used for this long are dropped (no stream of theirs can still be running).
const KEEP: Duration = Duration::from_secs(3_600);

fn registry() -> std::sync::MutexGuard<'static, HashMap<i64, Entry>> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The token a stream of `user_id` ends on: cancelled when the user is disabled or when
/// `shutdown` (the relay's abort token) is.
pub fn token_for(user_id: i64, shutdown: &CancellationToken) -> CancellationToken {
    let mut map = registry();
    let entry = map.entry(user_id).or_insert_with(|| Entry {
        token: shutdown.child_token(),
        used: Instant::now(),
    });
    // Cancelled before (the user was disabled, then enabled again): a fresh one.
    if entry.token.is_cancelled() && !shutdown.is_cancelled() {
        entry.token = shutdown.child_token();
    }
    entry.used = Instant::now();
    entry.token.clone()
}

/// End every running stream of `user_id` now.
pub fn end_user(user_id: i64) {
    if let Some(entry) = registry().remove(&user_id) {
        entry.token.cancel();
    }
}

/// Until `stop`: every 500 ms, end the streams of users disabled by another process.
pub async fn watch(db: Db, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let users: Vec<i64> = {
            let mut map = registry();
            map.retain(|_, e| !e.token.is_cancelled() && e.used.elapsed() < KEEP);
            map.keys().copied().take(500).collect()
        };
        if users.is_empty() {
            continue;
        }
        let list = users
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        // Integers only: nothing from a client reaches this statement.
        let sql = format!("SELECT id FROM users WHERE disabled <> 0 AND id IN ({list})");
        match sqlx::query(&sql).fetch_all(db.reader()).await {
            Ok(rows) => {
                for row in rows {
                    if let Ok(id) = row.try_get::<i64, _>("id") {
                        tracing::info!(user_id = id, "user disabled: ending their streams");
                        end_user(id);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot check for disabled users"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabling_cancels_the_users_token_and_enabling_gets_a_fresh_one() {
        let shutdown = CancellationToken::new();
        let a = token_for(9_000_001, &shutdown);
        let b = token_for(9_000_002, &shutdown);
        end_user(9_000_001);
        assert!(a.is_cancelled());
        assert!(!b.is_cancelled());
        assert!(!token_for(9_000_001, &shutdown).is_cancelled());
        shutdown.cancel();
        assert!(b.is_cancelled());
    }
}
