//! Console sessions: a random token in an HttpOnly cookie, stored as its SHA-256 (so every gateway
//! process shares sessions and a database leak reveals none), with a CSRF token that
//! state-changing requests must echo in `X-CSRF-Token`. Sessions expire after `session_ttl_secs`.

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::storage::{Db, StoreError};
use crate::util::clock::now_ms;

/// The session cookie's name.
pub const COOKIE: &str = "llmage_session";

/// A live session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    pub user_id: i64,
    pub csrf_token: String,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Session storage.
#[derive(Clone, Debug)]
pub struct Sessions {
    db: Db,
    ttl_ms: i64,
}

impl Sessions {
    pub fn new(db: Db, ttl_secs: u64) -> Sessions {
        Sessions {
            db,
            ttl_ms: i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2_000) * 1000,
        }
    }

    /// A new session: (cookie token, CSRF token).
    pub async fn create(&self, user_id: i64) -> Result<(String, String), StoreError> {
        let (token, csrf) = (random_token(), random_token());
        let now = now_ms();
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hash(&token))
        .bind(user_id)
        .bind(&csrf)
        .bind(now)
        .bind(now + self.ttl_ms)
        .execute(self.db.writer())
        .await?;
        Ok((token, csrf))
    }

    /// The session of a cookie token, if it is live.
    pub async fn get(&self, token: &str) -> Result<Option<Session>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT user_id, csrf_token FROM sessions WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(hash(token))
        .bind(now_ms())
        .fetch_optional(self.db.reader())
        .await?)
    }

    /// End a session.
    pub async fn delete(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(hash(token))
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_ms / 1000
    }
}
