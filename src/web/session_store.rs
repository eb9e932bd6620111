//! Server-side sessions in the database, so every instance serves every request and
//! signing out, disabling a user or changing a password ends sessions for real.
//!
//! The cookie carries a random key; the table holds only its SHA-256, so a copy of
//! the database opens no session. Expiry is enforced here: `expires_at` (idle) moves
//! with each request but never past `absolute_expires_at`, fixed at creation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration as CookieDuration;

use crate::clock::Clock;
use crate::db::Db;

/// The kind of the preference center's sessions (a contact's id in `user_id`).
pub const CONTACT_SESSIONS: &str = "contact";

/// The session keys that name the signed-in account; copied into `user_id` so that
/// all of a user's sessions can be ended at once.
pub const USER_ID_KEY: &str = "uid";

#[derive(Clone)]
pub struct DbSessionStore {
    db: Db,
    clock: Arc<dyn Clock>,
    kind: &'static str,
    absolute: Duration,
}

impl DbSessionStore {
    /// `kind` separates staff sessions from preference-center sessions.
    pub fn new(db: Db, clock: Arc<dyn Clock>, kind: &'static str, absolute: Duration) -> Self {
        Self {
            db,
            clock,
            kind,
            absolute,
        }
    }

    fn expiry(&self, now: i64, ttl: &CookieDuration, absolute_at: i64) -> i64 {
        (now + ttl.whole_milliseconds() as i64).min(absolute_at)
    }

    fn user_id(state: &HashMap<String, String>) -> Option<i64> {
        state.get(USER_ID_KEY).and_then(|v| v.parse().ok())
    }
}

/// The stored form of a session key.
pub fn hash_key(key: &str) -> String {
    crate::types::sha256_hex(key.as_bytes())
}

fn new_key() -> String {
    crate::types::random_hex(32)
}

/// Ends every session of `user_id` of this kind (sign-out everywhere).
pub async fn end_sessions_of(db: &Db, kind: &str, user_id: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sessions WHERE kind = $1 AND user_id = $2")
        .bind(kind)
        .bind(user_id)
        .execute(db.write())
        .await?;
    Ok(done.rows_affected())
}

/// Deletes expired sessions; run now and then.
pub async fn purge_expired(db: &Db, now_ms: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now_ms)
        .execute(db.write())
        .await?;
    Ok(done.rows_affected())
}

impl SessionStore for DbSessionStore {
    async fn load(
        &self,
        session_key: &SessionKey,
    ) -> Result<Option<HashMap<String, String>>, LoadError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT state FROM sessions WHERE id_hash = $1 AND kind = $2 AND expires_at > $3",
        )
        .bind(hash_key(session_key.as_ref()))
        .bind(self.kind)
        .bind(self.clock.now_ms())
        .fetch_optional(self.db.read())
        .await
        .map_err(|e| LoadError::Other(e.into()))?;
        match row {
            None => Ok(None),
            Some((state,)) => serde_json::from_str(&state)
                .map(Some)
                .map_err(|e| LoadError::Deserialization(e.into())),
        }
    }

    async fn save(
        &self,
        session_state: HashMap<String, String>,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, SaveError> {
        let state = serde_json::to_string(&session_state)
            .map_err(|e| SaveError::Serialization(e.into()))?;
        let now = self.clock.now_ms();
        let absolute_at = now + self.absolute.as_millis() as i64;
        let key = new_key();
        sqlx::query(
            "INSERT INTO sessions (id_hash, kind, user_id, state, created_at, expires_at, absolute_expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(hash_key(&key))
        .bind(self.kind)
        .bind(Self::user_id(&session_state))
        .bind(state)
        .bind(now)
        .bind(self.expiry(now, ttl, absolute_at))
        .bind(absolute_at)
        .execute(self.db.write())
        .await
        .map_err(|e| SaveError::Other(e.into()))?;
        SessionKey::try_from(key).map_err(|e| SaveError::Other(e.into()))
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: HashMap<String, String>,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        let state = serde_json::to_string(&session_state)
            .map_err(|e| UpdateError::Serialization(e.into()))?;
        let now = self.clock.now_ms();
        let done = sqlx::query(
            "UPDATE sessions SET state = $1, user_id = $2, \
             expires_at = CASE WHEN absolute_expires_at < $3 THEN absolute_expires_at ELSE $3 END \
             WHERE id_hash = $4 AND kind = $5 AND expires_at > $6",
        )
        .bind(state)
        .bind(Self::user_id(&session_state))
        .bind(now + ttl.whole_milliseconds() as i64)
        .bind(hash_key(session_key.as_ref()))
        .bind(self.kind)
        .bind(now)
        .execute(self.db.write())
        .await
        .map_err(|e| UpdateError::Other(e.into()))?;
        if done.rows_affected() == 0 {
            // Ended meanwhile (signed out elsewhere, user disabled): never revive it.
            return self
                .save(HashMap::new(), ttl)
                .await
                .map_err(|e| UpdateError::Other(anyhow::anyhow!("{e}")));
        }
        Ok(session_key)
    }

    async fn update_ttl(
        &self,
        session_key: &SessionKey,
        ttl: &CookieDuration,
    ) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let ttl_ms = ttl.whole_milliseconds() as i64;
        let new_expiry = now + ttl_ms;
        // Skip the write when the expiry moved only a moment ago (a tenth of the
        // idle timeout, at most a minute): most requests then only read.
        let slack = (ttl_ms / 10).min(60_000);
        // Decided on a reader first: an UPDATE that changes nothing still waits for
        // the single writer (and, on SQLite, for another process's write lock).
        let expires: Option<i64> =
            sqlx::query_scalar("SELECT expires_at FROM sessions WHERE id_hash = $1 AND kind = $2")
                .bind(hash_key(session_key.as_ref()))
                .bind(self.kind)
                .fetch_optional(self.db.read())
                .await?;
        if expires.is_none_or(|e| e <= now || e >= new_expiry - slack) {
            return Ok(());
        }
        sqlx::query(
            "UPDATE sessions SET expires_at = CASE WHEN absolute_expires_at < $1 THEN absolute_expires_at ELSE $1 END \
             WHERE id_hash = $2 AND kind = $3 AND expires_at > $4 AND expires_at < $5",
        )
        .bind(new_expiry)
        .bind(hash_key(session_key.as_ref()))
        .bind(self.kind)
        .bind(now)
        .bind(new_expiry - slack)
        .execute(self.db.write())
        .await?;
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1 AND kind = $2")
            .bind(hash_key(session_key.as_ref()))
            .bind(self.kind)
            .execute(self.db.write())
            .await?;
        Ok(())
    }
}
