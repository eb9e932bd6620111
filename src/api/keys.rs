//! API keys: 256 random bits shown once as `hk_` + 64 hex digits; only the SHA-256
//! of the key is stored, with its first characters to recognise it by. Keys open
//! `/api/…` only; pages never accept them.

use crate::auth::password::Plaintext;
use crate::db::{Db, Tx};

/// Characters of a key shown after it was created.
const PREFIX_CHARS: usize = 11;

/// A key as the admin page lists it (never the key itself).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl ApiKey {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

pub fn digest(key: &str) -> String {
    crate::types::sha256_hex(key.as_bytes())
}

/// Creates a key named `name`; returns its id and the key, to show once.
pub async fn create(
    tx: &mut Tx,
    name: &str,
    created_by: i64,
    now_ms: i64,
) -> Result<(i64, Plaintext), sqlx::Error> {
    let key = format!("hk_{}", crate::types::random_hex(32));
    let id = sqlx::query_scalar(
        "INSERT INTO api_keys (name, prefix, key_hash, created_by, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(name)
    .bind(&key[..PREFIX_CHARS])
    .bind(digest(&key))
    .bind(created_by)
    .bind(now_ms)
    .fetch_one(&mut **tx)
    .await?;
    Ok((id, Plaintext::new(key)))
}

/// The active key `presented` is, if any; its last use is recorded (at most once a
/// minute, so calls do not all write).
pub async fn authenticate(
    db: &Db,
    presented: &str,
    now_ms: i64,
) -> Result<Option<ApiKey>, sqlx::Error> {
    let key: Option<ApiKey> = sqlx::query_as(
        "SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_keys \
         WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(digest(presented.trim()))
    .fetch_optional(db.read())
    .await?;
    if let Some(k) = &key
        && k.last_used_at.is_none_or(|t| t < now_ms - 60_000)
    {
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(now_ms)
            .bind(k.id)
            .execute(db.write())
            .await?;
    }
    Ok(key)
}

pub async fn list(db: &Db) -> Result<Vec<ApiKey>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_keys ORDER BY id DESC",
    )
    .fetch_all(db.read())
    .await
}

pub async fn find(db: &Db, id: i64) -> Result<Option<ApiKey>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_keys WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db.read())
    .await
}

pub async fn revoke(tx: &mut Tx, id: i64, now_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now_ms)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    REVOKED.bump();
    Ok(())
}

/// Bumped when this process revokes a key (see [`crate::cache`]).
pub static REVOKED: crate::cache::Generation = crate::cache::Generation::new();
