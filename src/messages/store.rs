//! Prepared messages in the database.

use crate::db::{Db, Tx};

/// A prepared message as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Message {
    pub id: i64,
    pub name: String,
    pub subject: String,
    pub sender_name: String,
    pub text_body: String,
    pub html_body: String,
    pub updated_at: i64,
    /// 1: its opens and clicks are tracked (when Settings track them); 0: never.
    pub track: i64,
}

/// A message as entered, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInput {
    pub name: String,
    pub subject: String,
    pub sender_name: String,
    pub text_body: String,
    pub html_body: String,
    /// Whether its opens and clicks are tracked (when Settings track them).
    pub track: bool,
}

const COLUMNS: &str = "id, name, subject, sender_name, text_body, html_body, updated_at, track";

pub async fn find(db: &Db, id: i64) -> Result<Option<Message>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM messages WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db.read())
    .await
}

/// Every message by name.
/// The message's name, or "(deleted)".
pub async fn name_of(db: &Db, id: i64) -> Result<String, sqlx::Error> {
    Ok(find(db, id)
        .await?
        .map_or_else(|| "(deleted)".to_string(), |m| m.name))
}

pub async fn list(db: &Db) -> Result<Vec<Message>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM messages ORDER BY LOWER(name), id"
    )))
    .fetch_all(db.read())
    .await
}

/// Every automation whose job sends a prepared message — `message_of` (the job
/// registry's answer) reads a job kind and its stored settings —: the message's
/// id, the automation's name, and whether it is active, by automation name.
pub async fn senders(
    db: &Db,
    message_of: impl Fn(&str, &serde_json::Value) -> Option<i64>,
) -> Result<Vec<(i64, String, bool)>, sqlx::Error> {
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT name, job_kind, job_config, state FROM automations WHERE job_kind IS NOT NULL ORDER BY name",
    )
    .fetch_all(db.read())
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(name, kind, config, state)| {
            let stored: serde_json::Value = serde_json::from_str(&config).ok()?;
            let message = message_of(&kind, &stored)?;
            Some((message, name, state == "active"))
        })
        .collect())
}

/// The automations whose job sends message `id`: each name, and whether it is
/// active.
pub async fn users_of(
    db: &Db,
    message_of: impl Fn(&str, &serde_json::Value) -> Option<i64>,
    id: i64,
) -> Result<Vec<(String, bool)>, sqlx::Error> {
    Ok(senders(db, message_of)
        .await?
        .into_iter()
        .filter(|(m, _, _)| *m == id)
        .map(|(_, name, active)| (name, active))
        .collect())
}

pub async fn create(tx: &mut Tx, m: &MessageInput, now_ms: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO messages (name, subject, sender_name, text_body, html_body, created_at, updated_at, track) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7) RETURNING id",
    )
    .bind(&m.name)
    .bind(&m.subject)
    .bind(&m.sender_name)
    .bind(&m.text_body)
    .bind(&m.html_body)
    .bind(now_ms)
    .bind(i64::from(m.track))
    .fetch_one(&mut **tx)
    .await
}

pub async fn update(
    tx: &mut Tx,
    id: i64,
    m: &MessageInput,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE messages SET name = $1, subject = $2, sender_name = $3, text_body = $4, html_body = $5, \
         updated_at = $6, track = $8 WHERE id = $7",
    )
    .bind(&m.name)
    .bind(&m.subject)
    .bind(&m.sender_name)
    .bind(&m.text_body)
    .bind(&m.html_body)
    .bind(now_ms)
    .bind(id)
    .bind(i64::from(m.track))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn delete(tx: &mut Tx, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM messages WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
