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
        changed(conn).await?;
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
    if changed == 1 {
        self::changed(conn).await?;
    }
    Ok(changed == 1)
}

/// Takes `address` off the list; returns whether it was on it.
pub async fn remove(conn: &mut AnyConnection, address: &str) -> Result<bool, sqlx::Error> {
    let removed = sqlx::query("DELETE FROM suppressions WHERE address = $1")
        .bind(address.trim().to_lowercase())
        .execute(&mut *conn)
        .await?
        .rows_affected()
        == 1;
    if removed {
        changed(conn).await?;
    }
    Ok(removed)
}

/// How many addresses are on the list, by reason (every reason, 0 included).
pub async fn counts(db: &Db) -> Result<Vec<(Reason, i64)>, sqlx::Error> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT reason, COUNT(*) FROM suppressions GROUP BY reason")
            .fetch_all(db.read())
            .await?;
    Ok(Reason::ALL
        .into_iter()
        .map(|r| {
            let n = rows
                .iter()
                .filter(|(code, _)| Reason::from_code(code).unwrap_or(Reason::HardBounce) == r)
                .map(|(_, n)| n)
                .sum();
            (r, n)
        })
        .collect())
}

/// The highest list version this process wrote (see [`Checker`]).
static WRITTEN: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Records a change of the list, in the changing transaction: the version every
/// instance's [`Checker`] compares with. This process's checkers trust no copy
/// older than it, so a change made here counts at once (once committed).
async fn changed(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    let version: i64 = sqlx::query_scalar(
        "UPDATE suppression_version SET version = version + 1 WHERE id = 1 RETURNING version",
    )
    .fetch_one(conn)
    .await?;
    WRITTEN.fetch_max(version, std::sync::atomic::Ordering::SeqCst);
    Ok(())
}

/// The check before every send: the suppressed addresses as a set of hashes, so
/// an address that is not on the list (nearly every one) costs no query. The set
/// is read again when the list's version in the database moved — looked at no
/// more than once a second, so a change another instance made counts within a
/// second, and at once when this process wrote a newer version than the copy's.
#[derive(Default)]
pub struct Checker {
    snapshot: std::sync::RwLock<Snapshot>,
    reload: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Snapshot {
    /// The list's version the set holds; `None` before the first read.
    version: Option<i64>,
    looked: Option<std::time::Instant>,
    hashes: std::collections::HashSet<u64>,
}

fn hash_of(address: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    address.trim().to_lowercase().hash(&mut h);
    h.finish()
}

impl Checker {
    /// The suppression of `address`, as [`find`] says, asking the database only
    /// when the set holds the address (or the set must be read again).
    pub async fn find(&self, db: &Db, address: &str) -> Result<Option<Suppression>, sqlx::Error> {
        let hash = hash_of(address);
        let listed = match self.fresh(|s| s.hashes.contains(&hash)) {
            Some(listed) => listed,
            None => {
                self.refresh(db).await?;
                self.fresh(|s| s.hashes.contains(&hash)).unwrap_or(true)
            }
        };
        if listed {
            find(db, address).await
        } else {
            Ok(None)
        }
    }

    /// `read` of the snapshot while it may be trusted.
    fn fresh<T>(&self, read: impl FnOnce(&Snapshot) -> T) -> Option<T> {
        let s = self.snapshot.read().ok()?;
        let written = WRITTEN.load(std::sync::atomic::Ordering::SeqCst);
        let trusted = s.version.is_some_and(|v| v >= written)
            && s.looked.is_some_and(|t| t.elapsed() < crate::cache::FRESH);
        trusted.then(|| read(&s))
    }

    /// Looks at the version, and reads the set again when it moved.
    async fn refresh(&self, db: &Db) -> Result<(), sqlx::Error> {
        let _one = self.reload.lock().await;
        if self.fresh(|_| ()).is_some() {
            return Ok(());
        }
        let version: i64 =
            sqlx::query_scalar("SELECT version FROM suppression_version WHERE id = 1")
                .fetch_one(db.read())
                .await?;
        let same = self
            .snapshot
            .read()
            .map(|s| s.version == Some(version))
            .unwrap_or(false);
        let hashes = if same {
            None
        } else {
            let addresses: Vec<String> = sqlx::query_scalar("SELECT address FROM suppressions")
                .fetch_all(db.read())
                .await?;
            Some(addresses.iter().map(|a| hash_of(a)).collect())
        };
        if let Ok(mut s) = self.snapshot.write() {
            s.version = Some(version);
            s.looked = Some(std::time::Instant::now());
            if let Some(hashes) = hashes {
                s.hashes = hashes;
            }
        }
        Ok(())
    }
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
