//! Rate limits, answered with 429 and `Retry-After`: requests per client IP (every route),
//! requests per API key, and failed authentications per client IP (so guessing keys is no faster
//! than the limit). Counters live in this process — with several gateway processes each one
//! enforces the limits on the traffic it sees — unless Redis is configured (`redis.url`): then
//! the per-IP and per-key request counts are shared by every process (one-second windows of
//! `per_*_per_sec` requests), falling back to the local counters while Redis is unreachable.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::config::LimitsConfig;

/// The limiters of one process.
#[derive(Clone)]
pub struct RateLimits {
    per_ip: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    per_key: Option<Arc<DefaultKeyedRateLimiter<i64>>>,
    auth_failures: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    /// Addresses cooling off after too many failed authentications, until when.
    auth_blocked: moka::sync::Cache<IpAddr, Instant>,
    /// Counters shared through Redis, when configured.
    shared: Option<SharedCounters>,
    per_ip_per_sec: u32,
    per_key_per_sec: u32,
    /// Multipart uploads in flight per user, and the cap (0 = none).
    uploads: Arc<std::sync::Mutex<std::collections::HashMap<i64, u32>>>,
    uploads_per_user: u32,
}

/// One upload in flight for a user (released when dropped).
pub struct UploadPermit {
    uploads: Arc<std::sync::Mutex<std::collections::HashMap<i64, u32>>>,
    user_id: i64,
}

impl Drop for UploadPermit {
    fn drop(&mut self) {
        let mut map = self
            .uploads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.user_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.user_id);
            }
        }
    }
}

/// Request counters in Redis: `INCR` on a key per subject and second, expiring after two.
#[derive(Clone)]
struct SharedCounters {
    conn: redis::aio::ConnectionManager,
    prefix: String,
}

impl SharedCounters {
    /// Count one request; whether it is within `limit` for the current second.
    async fn hit(&self, kind: &str, subject: &str, limit: u32) -> redis::RedisResult<bool> {
        let second = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let key = format!("{}:rl:{kind}:{subject}:{second}", self.prefix);
        let mut conn = self.conn.clone();
        let (count,): (i64,) = redis::pipe()
            .atomic()
            .incr(&key, 1)
            .expire(&key, 2)
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(count <= i64::from(limit))
    }
}

fn limiter<K: std::hash::Hash + Eq + Clone>(
    quota: Option<Quota>,
) -> Option<Arc<DefaultKeyedRateLimiter<K>>> {
    quota.map(|q| Arc::new(RateLimiter::keyed(q)))
}

/// `per_second` sustained with `burst`; `None` when off (0).
fn quota(per_second: u32, burst: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

/// The wait before a retry may succeed, rounded up to whole seconds (at least 1).
fn retry_after(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Why the shared (Redis) counters cannot be used at start-up.
#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    #[error("bad Redis URL: {0}")]
    BadUrl(redis::RedisError),
    #[error("cannot reach Redis: {0}")]
    Unreachable(redis::RedisError),
}

impl RateLimits {
    pub fn new(config: &LimitsConfig) -> RateLimits {
        let per_minute = NonZeroU32::new(config.auth_failures_per_ip_per_minute)
            .map(|n| Quota::per_minute(n).allow_burst(n));
        RateLimits {
            per_ip: limiter(quota(config.per_ip_per_sec, config.per_ip_burst)),
            per_key: limiter(quota(config.per_key_per_sec, config.per_key_burst)),
            auth_failures: limiter(per_minute),
            auth_blocked: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(120))
                .build(),
            shared: None,
            per_ip_per_sec: config.per_ip_per_sec,
            per_key_per_sec: config.per_key_per_sec,
            uploads: Arc::default(),
            uploads_per_user: config.concurrent_uploads_per_user,
        }
    }

    /// Share the request counters through Redis (`redis://…`), keys under `prefix`.
    pub async fn with_redis(
        mut self,
        url: &str,
        prefix: &str,
    ) -> Result<RateLimits, RedisSetupError> {
        let client = redis::Client::open(url).map_err(RedisSetupError::BadUrl)?;
        let conn = client
            .get_connection_manager()
            .await
            .map_err(RedisSetupError::Unreachable)?;
        self.shared = Some(SharedCounters {
            conn,
            prefix: prefix.to_owned(),
        });
        Ok(self)
    }

    /// Count one request against a shared limit; `None` when not shared (or Redis failed).
    async fn check_shared(
        &self,
        kind: &'static str,
        subject: String,
        limit: u32,
    ) -> Option<Result<(), ApiError>> {
        let shared = self.shared.as_ref().filter(|_| limit > 0)?;
        match shared.hit(kind, &subject, limit).await {
            Ok(true) => Some(Ok(())),
            Ok(false) => {
                limited(kind);
                Some(Err(ApiError::RateLimited {
                    retry_after_secs: 1,
                }))
            }
            Err(e) => {
                tracing::warn!(error = %e, "Redis rate-limit counter failed; using this process's counters");
                None
            }
        }
    }

    /// Count one request from `ip` (shared through Redis when configured).
    pub async fn check_ip_shared(&self, ip: IpAddr) -> Result<(), ApiError> {
        match self
            .check_shared("ip", ip.to_string(), self.per_ip_per_sec)
            .await
        {
            Some(result) => result,
            None => self.check_ip(ip),
        }
    }

    /// Count one request made with key `key_id` (shared through Redis when configured).
    pub async fn check_key_shared(&self, key_id: i64) -> Result<(), ApiError> {
        match self
            .check_shared("key", key_id.to_string(), self.per_key_per_sec)
            .await
        {
            Some(result) => result,
            None => self.check_key(key_id),
        }
    }

    /// Count one request from `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        check(self.per_ip.as_deref(), &ip).inspect_err(|_| limited("ip"))
    }

    /// Count one request made with API key `key_id`.
    pub fn check_key(&self, key_id: i64) -> Result<(), ApiError> {
        check(self.per_key.as_deref(), &key_id).inspect_err(|_| limited("key"))
    }

    /// Start an upload for `user_id`: refused with 429 and `Retry-After` while the user already
    /// has `concurrent_uploads_per_user` in flight (in this process).
    pub fn begin_upload(&self, user_id: i64) -> Result<UploadPermit, ApiError> {
        let mut map = self
            .uploads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = map.entry(user_id).or_insert(0);
        if self.uploads_per_user > 0 && *n >= self.uploads_per_user {
            drop(map);
            limited("uploads");
            return Err(ApiError::RateLimited {
                retry_after_secs: 5,
            });
        }
        *n += 1;
        Ok(UploadPermit {
            uploads: self.uploads.clone(),
            user_id,
        })
    }

    /// Whether `ip` may try to authenticate now (it is not cooling off after too many failures).
    pub fn auth_allowed(&self, ip: IpAddr) -> Result<(), ApiError> {
        match self.auth_blocked.get(&ip) {
            Some(until) if until > Instant::now() => Err(ApiError::RateLimited {
                retry_after_secs: retry_after(until - Instant::now()),
            }),
            _ => Ok(()),
        }
    }

    /// Record a failed authentication from `ip`; the error to answer with.
    pub fn auth_failed(&self, ip: Option<IpAddr>) -> ApiError {
        let (Some(ip), Some(limiter)) = (ip, self.auth_failures.as_deref()) else {
            return ApiError::InvalidApiKey;
        };
        match limiter.check_key(&ip) {
            Ok(()) => ApiError::InvalidApiKey,
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                self.auth_blocked.insert(ip, Instant::now() + wait);
                limited("auth_failures");
                ApiError::RateLimited {
                    retry_after_secs: retry_after(wait),
                }
            }
        }
    }
}

fn limited(limit: &'static str) {
    metrics::counter!("llmage_rate_limited_total", "limit" => limit).increment(1);
}

fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: Option<&DefaultKeyedRateLimiter<K>>,
    key: &K,
) -> Result<(), ApiError> {
    let Some(limiter) = limiter else {
        return Ok(());
    };
    limiter
        .check_key(key)
        .map_err(|not_until| ApiError::RateLimited {
            retry_after_secs: retry_after(not_until.wait_time_from(DefaultClock::default().now())),
        })
}

/// The client's address: the TCP peer, or the forwarded client behind a trusted proxy
/// (`security.trusted_proxies`, decided once by [`super::guard::client_ip`]).
pub fn peer_ip(request_extensions: &axum::http::Extensions) -> Option<IpAddr> {
    if let Some(super::guard::ClientIp(ip)) = request_extensions.get::<super::guard::ClientIp>() {
        return Some(*ip);
    }
    request_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// Middleware: the per-IP limit on every route.
pub async fn per_ip(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(ip) = peer_ip(request.extensions())
        && let Err(e) = state.limits.check_ip_shared(ip).await
    {
        return e.into_response();
    }
    next.run(request).await
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("per_ip", &self.per_ip.is_some())
            .field("per_key", &self.per_key.is_some())
            .field("auth_failures", &self.auth_failures.is_some())
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(per_key: u32, failures: u32) -> LimitsConfig {
        LimitsConfig {
            per_ip_per_sec: 0,
            per_ip_burst: 0,
            per_key_per_sec: per_key,
            per_key_burst: per_key,
            auth_failures_per_ip_per_minute: failures,
            concurrent_uploads_per_user: 2,
            unfinished_tasks_per_user: 0,
        }
    }

    #[test]
    fn per_key_limit_answers_retry_after() {
        let limits = RateLimits::new(&config(2, 0));
        assert!(limits.check_key(1).is_ok());
        assert!(limits.check_key(1).is_ok());
        match limits.check_key(1) {
            Err(ApiError::RateLimited { retry_after_secs }) => assert_eq!(retry_after_secs, 1),
            other => panic!("{other:?}"),
        }
        assert!(limits.check_key(2).is_ok(), "keys are counted apart");
    }

    #[test]
    fn failed_authentications_cool_an_address_off() {
        let limits = RateLimits::new(&config(0, 3));
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        for _ in 0..3 {
            assert!(limits.auth_allowed(ip).is_ok());
            assert!(matches!(
                limits.auth_failed(Some(ip)),
                ApiError::InvalidApiKey
            ));
        }
        assert!(matches!(
            limits.auth_failed(Some(ip)),
            ApiError::RateLimited { .. }
        ));
        match limits.auth_allowed(ip) {
            Err(ApiError::RateLimited { retry_after_secs }) => {
                assert!((1..=60).contains(&retry_after_secs))
            }
            other => panic!("{other:?}"),
        }
        assert!(limits.auth_allowed("203.0.113.10".parse().unwrap()).is_ok());
    }

    #[test]
    fn uploads_per_user_are_capped_and_released() {
        let limits = RateLimits::new(&config(0, 0));
        let a = limits.begin_upload(7).unwrap();
        let _b = limits.begin_upload(7).unwrap();
        assert!(matches!(
            limits.begin_upload(7),
            Err(ApiError::RateLimited { .. })
        ));
        assert!(limits.begin_upload(8).is_ok(), "users are counted apart");
        drop(a);
        assert!(limits.begin_upload(7).is_ok());
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let limits = RateLimits::new(&config(0, 0));
        for _ in 0..1000 {
            assert!(limits.check_key(1).is_ok());
            assert!(limits.check_ip("198.51.100.1".parse().unwrap()).is_ok());
        }
    }
}
