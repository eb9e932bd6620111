//! What people did with the emails: opens and clicks, written as they come
//! ([`writer`]) and decided once settled ([`decide`]) into the hourly roll-ups
//! the statistics read, beside the unsubscribes through each email's link.

pub mod decide;
pub mod writer;

/// Records that the unsubscribe link of the email `reference` was used at
/// `now_ms`; the first time, counts it for the email's message and automation.
pub async fn unsubscribed(
    tx: &mut crate::db::Tx,
    reference: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let first: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(
        "UPDATE deliveries SET unsubscribed_at = $1 WHERE reference = $2 AND unsubscribed_at IS NULL \
         RETURNING message_id, automation_id",
    )
    .bind(now_ms)
    .bind(reference)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some((message, automation)) = first {
        let of = (message.unwrap_or(0), automation.unwrap_or(0));
        decide::add_up(tx, of, now_ms, [0, 0, 0, 0, 0, 0, 1]).await?;
    }
    Ok(())
}
