//! `Idempotency-Key`: a retried call is harmless. Per API key, the first answer to
//! a key is kept for 24 hours (written in the same transaction as the change it
//! answers); the same key with the same body gets it again and records nothing new;
//! the same key with another body is a conflict.

use actix_web::http::StatusCode;

use crate::api::problem::Problem;
use crate::db::Tx;

/// How long an answer is kept.
pub const KEEP_MS: i64 = 24 * 3_600_000;

/// A stored answer: status and JSON body.
pub type Stored = (u16, String);

pub fn body_hash(body: &[u8]) -> String {
    crate::types::sha256_hex(body)
}

/// The `Idempotency-Key` header, checked: 1 to 255 visible characters.
pub fn header(req: &actix_web::HttpRequest) -> Result<Option<String>, Problem> {
    let Some(v) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    match v.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 255 => Ok(Some(k.to_string())),
        _ => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "Invalid Idempotency-Key",
            "The Idempotency-Key header holds 1 to 255 visible characters.",
        )),
    }
}

/// The answer kept for `key`, if the same body was sent before; 409 for another body.
pub async fn replay<'c>(
    on: impl sqlx::Executor<'c, Database = sqlx::Any>,
    api_key: i64,
    key: &str,
    hash: &str,
    now_ms: i64,
) -> Result<Option<Stored>, Problem> {
    let row: Option<(String, i64, String)> = sqlx::query_as(
        "SELECT body_hash, status, response FROM api_idempotency \
         WHERE api_key_id = $1 AND idempotency_key = $2 AND created_at > $3",
    )
    .bind(api_key)
    .bind(key)
    .bind(now_ms - KEEP_MS)
    .fetch_optional(on)
    .await?;
    match row {
        Some((h, status, response)) if h == hash => Ok(Some((status as u16, response))),
        Some(_) => Err(Problem::new(
            StatusCode::CONFLICT,
            "Idempotency-Key reused",
            "This Idempotency-Key was used with another body in the last 24 hours.",
        )),
        None => Ok(None),
    }
}

/// Keeps the answer to `key`, in the transaction of the change it answers (an
/// expired one is replaced; a live one makes it fail as a unique violation).
pub async fn keep(
    tx: &mut Tx,
    api_key: i64,
    key: &str,
    hash: &str,
    answer: &Stored,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    // Only an expired answer: a live one (kept by a call that committed after this
    // one looked) must make this INSERT fail, not be replaced.
    sqlx::query(
        "DELETE FROM api_idempotency WHERE api_key_id = $1 AND idempotency_key = $2 AND created_at <= $3",
    )
    .bind(api_key)
    .bind(key)
    .bind(now_ms - KEEP_MS)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO api_idempotency (api_key_id, idempotency_key, body_hash, status, response, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(api_key)
    .bind(key)
    .bind(hash)
    .bind(i64::from(answer.0))
    .bind(&answer.1)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A failed [`keep`]: another call with the same key got there first (409), or
/// the database failed.
pub fn conflict_or_problem(e: sqlx::Error) -> Problem {
    if crate::db::is_unique_violation(&e) {
        Problem::new(
            actix_web::http::StatusCode::CONFLICT,
            "Idempotency-Key in use",
            "A request with this Idempotency-Key is being processed; send it again in a moment.",
        )
    } else {
        e.into()
    }
}

/// Forgets the answers kept for longer than [`KEEP_MS`] before `now_ms` (the API
/// promises a day).
pub async fn prune(db: &crate::db::Db, now_ms: i64) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM api_idempotency WHERE created_at < $1")
            .bind(now_ms - KEEP_MS)
            .execute(db.write())
            .await?
            .rows_affected(),
    )
}
