//! The reports that came in (`mail_reports`): each bounce or complaint, matched
//! to the email it is about or kept — with the start of the message — for an
//! admin to look at.

use serde::Serialize;

use crate::db::Db;

/// The most bytes of an unmatched report kept.
pub const MAX_RAW_KEPT: usize = 64 * 1024;

/// How a report found its email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// Its bounce address (VERP) named the email.
    BounceAddress,
    /// The headers it returned carry the email's Message-ID.
    MessageId,
    /// The sending provider's id for the email (its SMTP answer named it).
    ProviderId,
    /// The latest email to the address it names.
    Address,
}

impl MatchedBy {
    pub fn code(self) -> &'static str {
        match self {
            MatchedBy::BounceAddress => "bounce_address",
            MatchedBy::MessageId => "message_id",
            MatchedBy::ProviderId => "provider_id",
            MatchedBy::Address => "address",
        }
    }
}

/// A report to store.
#[derive(Debug, Clone)]
pub struct NewReport<'a> {
    pub kind: &'static str,
    pub delivery: Option<(i64, MatchedBy)>,
    pub address: &'a str,
    pub status: &'a str,
    pub diagnostic: &'a str,
    /// The envelope sender it came from.
    pub sender: &'a str,
    /// The message as received, kept only when it matched nothing.
    pub raw: &'a [u8],
}

pub async fn insert(
    conn: &mut sqlx::AnyConnection,
    now_ms: i64,
    r: &NewReport<'_>,
) -> Result<(), sqlx::Error> {
    let raw = if r.delivery.is_some() {
        String::new()
    } else {
        let cut = &r.raw[..r.raw.len().min(MAX_RAW_KEPT)];
        String::from_utf8_lossy(cut).replace('\0', "")
    };
    let clip = |s: &str, n: usize| s.chars().filter(|c| *c != '\0').take(n).collect::<String>();
    sqlx::query(
        "INSERT INTO mail_reports (received_at, kind, delivery_id, matched_by, address, status, diagnostic, sender, raw) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(now_ms)
    .bind(r.kind)
    .bind(r.delivery.map(|(id, _)| id))
    .bind(r.delivery.map_or("", |(_, by)| by.code()))
    .bind(clip(r.address, 320))
    .bind(clip(r.status, 16))
    .bind(clip(r.diagnostic, 500))
    .bind(clip(r.sender, 320))
    .bind(raw)
    .execute(conn)
    .await?;
    Ok(())
}

/// A report as the admin page shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Report {
    pub id: i64,
    pub received_at: i64,
    pub kind: String,
    pub delivery_id: Option<i64>,
    pub matched_by: String,
    pub address: String,
    pub status: String,
    pub diagnostic: String,
    pub sender: String,
    pub raw: String,
}

impl Report {
    /// The kind in words.
    pub fn label(&self) -> &str {
        match self.kind.as_str() {
            "hard_bounce" => "hard bounce",
            "soft_bounce" => "soft bounce",
            "delayed" => "delay notice",
            "complaint" => "complaint",
            _ => "not a report Herald can read",
        }
    }

    /// How it found its email, in words.
    pub fn matched_label(&self) -> &str {
        match self.matched_by.as_str() {
            "bounce_address" => "by its bounce address",
            "message_id" => "by the Message-ID it returned",
            "provider_id" => "by the provider's id for the email",
            "address" => "by the latest email to the address",
            _ => "",
        }
    }
}

/// The latest `limit` reports that matched no email, newest first, and how
/// many are kept.
pub async fn unmatched(db: &Db, limit: i64) -> Result<(Vec<Report>, i64), sqlx::Error> {
    let rows = sqlx::query_as(
        "SELECT id, received_at, kind, delivery_id, matched_by, address, status, diagnostic, sender, raw \
         FROM mail_reports WHERE delivery_id IS NULL ORDER BY received_at DESC, id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db.read())
    .await?;
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM mail_reports WHERE delivery_id IS NULL")
            .fetch_one(db.read())
            .await?;
    Ok((rows, count))
}

/// Reports that matched an email, received per hour from `since` on, as (hour
/// since the epoch, kind, count).
pub async fn per_hour(db: &Db, since: i64) -> Result<Vec<(i64, String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT received_at / 3600000 AS hour, kind, COUNT(*) FROM mail_reports \
         WHERE received_at >= $1 AND delivery_id IS NOT NULL GROUP BY received_at / 3600000, kind",
    )
    .bind(since)
    .fetch_all(db.read())
    .await
}

/// One report, by id.
pub async fn find(db: &Db, id: i64) -> Result<Option<Report>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, received_at, kind, delivery_id, matched_by, address, status, diagnostic, sender, raw \
         FROM mail_reports WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db.read())
    .await
}

/// Deletes reports received before `before`, a batch at a time.
pub async fn prune(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    crate::db::delete_in_batches(
        db,
        "DELETE FROM mail_reports WHERE id IN (SELECT id FROM mail_reports WHERE received_at < $1 LIMIT $2)",
        before,
    )
    .await
}
