//! The suppression list (the suite's system blacklist): addresses that get no
//! prepared message, by address in lower case — it outlives the contact, so a
//! deleted and re-created contact stays suppressed. Each entry says why (a hard
//! bounce, repeated soft bounces, a complaint, or by hand), who or what added it,
//! and when.
//!
//! The rules of what a suppression stops are the senders': a prepared message to a
//! suppressed address is skipped; a contact's password email goes unless the
//! address hard-bounced (it is transactional); emails to staff and test sends are
//! never suppressed.

use serde::Serialize;
use sqlx::AnyConnection;

use crate::db::Db;
use crate::types::EmailAddress;

/// Why an address is suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The mailbox does not exist (a permanent failure, 5.x.x).
    HardBounce,
    /// Temporary failures, several within days, with no delivery between.
    SoftBounces,
    /// The recipient reported the message as spam.
    Complaint,
    /// Added by staff, by the API or by an import.
    Manual,
}

impl Reason {
    pub const ALL: [Reason; 4] = [
        Reason::HardBounce,
        Reason::SoftBounces,
        Reason::Complaint,
        Reason::Manual,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Reason::HardBounce => "hard_bounce",
            Reason::SoftBounces => "soft_bounces",
            Reason::Complaint => "complaint",
            Reason::Manual => "manual",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// As staff read it: "hard bounce".
    pub fn label(self) -> &'static str {
        match self {
            Reason::HardBounce => "hard bounce",
            Reason::SoftBounces => "repeated soft bounces",
            Reason::Complaint => "complaint",
            Reason::Manual => "added by hand",
        }
    }

    /// Whether it stops a contact's password email too (only a mailbox that does
    /// not exist does: the email is transactional).
    pub fn stops_transactional(self) -> bool {
        self == Reason::HardBounce
    }
}

/// One suppressed address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppression {
    pub id: i64,
    pub address: String,
    pub reason: Reason,
    /// Who or what added it: "ann@example.com", "API key Shop", "import", "bounce".
    pub source: String,
    /// What the mail system said, or the note of whoever added it.
    pub detail: String,
    pub created_at: i64,
}

impl Suppression {
    /// Why a send was skipped, in the run's words, e.g. "address suppressed: hard
    /// bounce on 2026-12-04".
    pub fn skip_reason(&self) -> String {
        format!("address suppressed: {}", self.why())
    }

    /// Why and since when, e.g. "hard bounce on 2026-12-04" (the day in UTC).
    pub fn why(&self) -> String {
        let day = jiff::Timestamp::from_millisecond(self.created_at)
            .map(|t| t.strftime("%Y-%m-%d").to_string())
            .unwrap_or_default();
        format!("{} on {day}", self.reason.label())
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    address: String,
    reason: String,
    source: String,
    detail: String,
    created_at: i64,
}

impl From<Row> for Suppression {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            address: r.address,
            // A code this version does not know is treated as the strictest.
            reason: Reason::from_code(&r.reason).unwrap_or(Reason::HardBounce),
            source: r.source,
            detail: r.detail,
            created_at: r.created_at,
        }
    }
}

/// The columns a `Row` reads.
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, address, reason, source, detail, created_at FROM suppressions ",
            $rest
        )
    };
}

/// The furthest a page may start (far beyond any list; keeps `offset + limit` a
/// number).
pub const MAX_OFFSET: i64 = 1 << 40;

/// The longest note kept with an entry.
pub const MAX_DETAIL_CHARS: usize = 500;

/// The suppression of `address` (any case), if any.
pub async fn find(db: &Db, address: &str) -> Result<Option<Suppression>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(select!("WHERE address = $1"))
        .bind(address.trim().to_lowercase())
        .fetch_optional(db.read())
        .await?;
    Ok(row.map(Suppression::from))
}

/// Suppresses `address`. An address already on the list keeps its entry, unless
/// the new reason is a hard bounce or a complaint and the old one was weaker (a
/// complaint outranks a hand-made entry, a hard bounce everything). Returns
/// whether the list changed.
pub async fn add(
    conn: &mut AnyConnection,
    address: &EmailAddress,
    reason: Reason,
    source: &str,
    detail: &str,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let detail: String = detail.chars().take(MAX_DETAIL_CHARS).collect();
    let inserted = sqlx::query(
        "INSERT INTO suppressions (address, reason, source, detail, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (address) DO NOTHING",
    )
    .bind(address.as_str())
    .bind(reason.code())
    .bind(source)
    .bind(&detail)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(true);
    }
    // One statement: the entry is replaced only when its reason is weaker.
    let upgrade = match reason {
        Reason::HardBounce => {
            "UPDATE suppressions SET reason = $1, source = $2, detail = $3, created_at = $4 \
             WHERE address = $5 AND reason IN ('soft_bounces', 'complaint', 'manual')"
        }
        Reason::Complaint => {
            "UPDATE suppressions SET reason = $1, source = $2, detail = $3, created_at = $4 \
             WHERE address = $5 AND reason IN ('soft_bounces', 'manual')"
        }
        Reason::SoftBounces | Reason::Manual => return Ok(false),
    };
    let changed = sqlx::query(upgrade)
        .bind(reason.code())
        .bind(source)
        .bind(&detail)
        .bind(now_ms)
        .bind(address.as_str())
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(changed == 1)
}

/// Takes `address` off the list; returns whether it was on it.
pub async fn remove(conn: &mut AnyConnection, address: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM suppressions WHERE address = $1")
        .bind(address.trim().to_lowercase())
        .execute(conn)
        .await?
        .rows_affected()
        == 1)
}

/// A page of the list, newest first, whose address contains `query` (any case);
/// and the number of entries that match.
pub async fn page(
    db: &Db,
    query: &str,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Suppression>, i64), sqlx::Error> {
    let pattern = format!("%{}%", like_escaped(&query.trim().to_lowercase()));
    let rows: Vec<Row> = sqlx::query_as(select!(
        "WHERE address LIKE $1 ESCAPE '\\' ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(&pattern)
    .bind(limit)
    .bind(offset)
    .fetch_all(db.read())
    .await?;
    let total: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM suppressions WHERE address LIKE $1 ESCAPE '\\'")
            .bind(&pattern)
            .fetch_one(db.read())
            .await?;
    Ok((rows.into_iter().map(Suppression::from).collect(), total))
}

/// Every entry, oldest first (the CSV export).
pub async fn all(db: &Db) -> Result<Vec<Suppression>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(select!("ORDER BY created_at, id"))
        .fetch_all(db.read())
        .await?;
    Ok(rows.into_iter().map(Suppression::from).collect())
}

/// `text` with LIKE's wildcards and escape character taken literally.
fn like_escaped(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_and_only_a_hard_bounce_stops_a_password_email() {
        for r in Reason::ALL {
            assert_eq!(Reason::from_code(r.code()), Some(r));
        }
        assert_eq!(
            Reason::ALL
                .iter()
                .filter(|r| r.stops_transactional())
                .count(),
            1
        );
        assert_eq!(like_escaped("50%_a\\"), "50\\%\\_a\\\\");
    }

    #[test]
    fn a_skip_says_why_and_since_when() {
        let s = Suppression {
            id: 1,
            address: "ann@example.com".into(),
            reason: Reason::HardBounce,
            source: "bounce".into(),
            detail: String::new(),
            created_at: 1_796_342_400_000,
        };
        assert_eq!(
            s.skip_reason(),
            "address suppressed: hard bounce on 2026-12-04"
        );
    }
}
