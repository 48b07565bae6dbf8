//! Completion callbacks: when a task with a `callback_url` ends, POST its JSON there with
//! `X-Llmage-Signature: sha256=<hex HMAC-SHA256 of the body>`, keyed by the SHA-256 (hex) of the
//! API key that submitted the task (the client can compute it; we never store the key itself).
//! Retried with backoff (`callback_retry_secs`, by default 10 s, 1 min, 5 min, 30 min, 2 h) until
//! a 2xx; then given up.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use super::store::TaskStore;
use crate::storage::Db;
use crate::util::clock::now_ms;

/// The signature header value for a body.
pub fn signature(secret: &str, body: &[u8]) -> String {
    match <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        // HMAC takes keys of any length: this arm cannot happen.
        Err(_) => String::new(),
    }
}

/// Delivers due callbacks.
pub struct Callbacks {
    pub store: TaskStore,
    pub db: Db,
    /// A client that only reaches public addresses (see [`crate::net::outbound`]).
    pub http: reqwest::Client,
    pub outbound: crate::net::OutboundGuard,
    pub base_url: String,
    /// Delays before the 2nd, 3rd, … attempt.
    pub retry_secs: Vec<u64>,
}

impl Callbacks {
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let due = match self.store.due_callbacks(32).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read due callbacks");
                    continue;
                }
            };
            for (task, attempts) in due {
                self.deliver(&task, attempts).await;
            }
        }
    }

    async fn deliver(&self, task: &super::Task, attempts: i64) {
        let Some(url) = &task.callback_url else {
            return;
        };
        let body = task.to_json(&self.base_url).to_string();
        // A task submitted with an API key is signed with the key's hash; one submitted from the
        // console (key id = -user id) with the user's callback secret. Never with an empty key.
        let secret = if task.key_id < 0 {
            crate::accounts::users::Users::new(self.db.clone())
                .callback_secret(-task.key_id)
                .await
                .ok()
        } else {
            sqlx::query("SELECT key_hash FROM api_keys WHERE id = $1")
                .bind(task.key_id)
                .fetch_optional(self.db.reader())
                .await
                .ok()
                .flatten()
                .and_then(|r| r.try_get::<String, _>("key_hash").ok())
        };
        let Some(secret) = secret.filter(|s| !s.is_empty()) else {
            // No key to sign with (a store error): tried again later, never sent unsigned.
            tracing::warn!(task = %task.id, "no callback secret; delivery postponed");
            return;
        };
        // Checked again at delivery: the name may resolve elsewhere now (the client's resolver
        // filters DNS answers; this also covers literal addresses).
        if let Err(why) = self.outbound.check_url(url).await {
            tracing::warn!(task = %task.id, why = %why, "callback URL refused; giving up");
            if let Err(e) = self
                .store
                .callback_attempted(&task.id, "failed", None)
                .await
            {
                tracing::warn!(error = %e, "cannot record a callback attempt");
            }
            return;
        }
        let sent = self
            .http
            .post(url)
            .timeout(Duration::from_secs(10))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Llmage-Signature", signature(&secret, body.as_bytes()))
            .header("X-Llmage-Task", &task.id)
            .body(body)
            .send()
            .await;
        let ok = matches!(&sent, Ok(r) if r.status().is_success());
        let (state, next) = if ok {
            ("delivered", None)
        } else {
            match self
                .retry_secs
                .get(usize::try_from(attempts).unwrap_or(usize::MAX))
            {
                Some(delay) => (
                    "pending",
                    Some(now_ms() + i64::try_from(*delay).unwrap_or(i64::MAX / 2_000) * 1000),
                ),
                None => ("failed", None),
            }
        };
        if !ok {
            let why = match &sent {
                Ok(r) => format!("HTTP {}", r.status()),
                Err(e) => {
                    if e.is_timeout() {
                        "timeout".into()
                    } else {
                        "connection failed".into()
                    }
                }
            };
            tracing::warn!(task = %task.id, attempt = attempts + 1, why, "callback not delivered");
        }
        if let Err(e) = self.store.callback_attempted(&task.id, state, next).await {
            tracing::warn!(error = %e, "cannot record a callback attempt");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            super::signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
