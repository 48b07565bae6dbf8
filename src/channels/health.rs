//! Channel health: consecutive retryable failures of each channel, counted in this process
//! (chat calls and task submissions); after `failures_to_cool` in a row the channel cools off for
//! `cool_secs` — stored in its row, so every process routes around it and `admin channel list`
//! shows until when and why. A success resets the count. It also holds each channel's
//! concurrency cap (`--max-concurrency`) and rate (`--rpm`): a call takes a permit and a slot
//! of the minute, or goes to the next channel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Channel;
use super::store::ChannelStore;
use crate::util::clock::now_ms;

/// Consecutive-failure counters and the cooling rule.
#[derive(Debug)]
pub struct ChannelHealth {
    store: ChannelStore,
    failures: Mutex<HashMap<i64, u32>>,
    /// Channel id → (cap, permits).
    permits: Mutex<HashMap<i64, (i64, Arc<Semaphore>)>>,
    /// Channel id → (rpm, limiter).
    rates: Mutex<HashMap<i64, (i64, Arc<DefaultDirectRateLimiter>)>>,
    threshold: u32,
    cool_for: Duration,
}

impl ChannelHealth {
    pub fn new(store: ChannelStore, threshold: u32, cool_for: Duration) -> ChannelHealth {
        ChannelHealth {
            store,
            failures: Mutex::default(),
            permits: Mutex::default(),
            rates: Mutex::default(),
            threshold,
            cool_for,
        }
    }

    /// A permit for one call through `channel` now, or `None` when it is at its cap (the
    /// permit is held by the returned guard). Channels without a cap always get one.
    pub fn try_acquire(&self, channel: &Channel) -> Option<Option<OwnedSemaphorePermit>> {
        if let Some(rpm) = channel
            .rpm
            .and_then(|r| u32::try_from(r).ok())
            .and_then(NonZeroU32::new)
        {
            let limiter = {
                let mut rates = self.rates.lock().ok()?;
                let entry = rates.entry(channel.id).or_insert_with(|| {
                    (
                        i64::from(rpm.get()),
                        Arc::new(RateLimiter::direct(Quota::per_minute(rpm))),
                    )
                });
                if entry.0 != i64::from(rpm.get()) {
                    *entry = (
                        i64::from(rpm.get()),
                        Arc::new(RateLimiter::direct(Quota::per_minute(rpm))),
                    );
                }
                entry.1.clone()
            };
            limiter.check().ok()?;
        }
        let Some(cap) = channel.max_concurrency.filter(|c| *c > 0) else {
            return Some(None);
        };
        let semaphore = {
            let mut permits = self.permits.lock().ok()?;
            let entry = permits.entry(channel.id).or_insert_with(|| {
                (
                    cap,
                    Arc::new(Semaphore::new(usize::try_from(cap).unwrap_or(1))),
                )
            });
            if entry.0 != cap {
                *entry = (
                    cap,
                    Arc::new(Semaphore::new(usize::try_from(cap).unwrap_or(1))),
                );
            }
            entry.1.clone()
        };
        semaphore.try_acquire_owned().ok().map(Some)
    }

    /// A call through the channel worked.
    pub fn success(&self, channel_id: i64) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&channel_id);
        }
    }

    /// A call through the channel failed in a way the next channel may fix (`reason` is what the
    /// operator reads; never the vendor key).
    pub async fn failure(&self, channel_id: i64, reason: &str) {
        if self.threshold == 0 {
            return;
        }
        let cool = match self.failures.lock() {
            Ok(mut failures) => {
                let count = failures.entry(channel_id).or_insert(0);
                *count += 1;
                if *count >= self.threshold {
                    failures.remove(&channel_id);
                    true
                } else {
                    false
                }
            }
            Err(_) => false,
        };
        if cool {
            let until = now_ms() + i64::try_from(self.cool_for.as_millis()).unwrap_or(i64::MAX / 2);
            let why = format!("{} failures in a row; last: {reason}", self.threshold);
            tracing::warn!(channel = channel_id, reason = %why, "channel cooling off");
            if let Err(e) = self.store.cool(channel_id, until, &why).await {
                tracing::warn!(error = %e, "cannot record a channel's cooling-off");
            }
        }
    }
}
