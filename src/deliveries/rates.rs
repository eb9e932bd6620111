//! What the Deliverability page reads of the emails: sent per hour, and per
//! prepared message what bounced or drew a complaint.

use crate::db::Db;

/// Emails sent per hour from `since` on, as (hour since the epoch, count).
pub async fn sent_per_hour(db: &Db, since: i64) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT sent_at / 3600000 AS hour, COUNT(*) FROM deliveries \
         WHERE sent_at >= $1 AND kind <> 'test' GROUP BY sent_at / 3600000",
    )
    .bind(since)
    .fetch_all(db.read())
    .await
}

/// What became of one prepared message's emails.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MessageRates {
    pub message_id: i64,
    /// None for a deleted message.
    pub name: Option<String>,
    pub sent: i64,
    pub hard: i64,
    pub soft: i64,
    pub complained: i64,
}

impl MessageRates {
    /// `n` of the emails sent, as a percentage (see [`percent`]).
    pub fn rate(&self, n: &i64) -> String {
        percent(*n, self.sent)
    }
}

/// `n` of `of` as a percentage with one decimal ("1.5 %"); "—" of nothing.
pub fn percent(n: i64, of: i64) -> String {
    if of == 0 {
        return "—".into();
    }
    format!("{:.1} %", n as f64 * 100.0 / of as f64)
}

/// Per prepared message, the emails sent from `since` on (test sends left out)
/// and how many bounced or drew a complaint; the most sent first.
pub async fn rates_per_message(db: &Db, since: i64) -> Result<Vec<MessageRates>, sqlx::Error> {
    sqlx::query_as(
        "SELECT d.message_id AS message_id, MIN(m.name) AS name, COUNT(*) AS sent, \
         SUM(CASE WHEN d.fate = 'hard_bounce' THEN 1 ELSE 0 END) AS hard, \
         SUM(CASE WHEN d.fate = 'soft_bounce' THEN 1 ELSE 0 END) AS soft, \
         SUM(CASE WHEN d.fate = 'complained' THEN 1 ELSE 0 END) AS complained \
         FROM deliveries d LEFT JOIN messages m ON m.id = d.message_id \
         WHERE d.sent_at >= $1 AND d.kind = 'message' AND d.message_id IS NOT NULL \
         GROUP BY d.message_id ORDER BY COUNT(*) DESC, d.message_id LIMIT 50",
    )
    .bind(since)
    .fetch_all(db.read())
    .await
}
