//! Sign-in throttling (README, Security in short): after 10 failures for one account within 15
//! minutes, each further attempt waits longer (1 s, 2 s, 4 s … up to 30 s); the same
//! per client address after 50. Nobody is locked out for good: failures older than
//! the window stop counting. Failures are stored, so every instance sees them.

use std::time::Duration;

use crate::db::Db;

pub const WINDOW_MS: i64 = 15 * 60 * 1000;
pub const ACCOUNT_FREE_FAILURES: i64 = 10;
pub const IP_FREE_FAILURES: i64 = 50;
pub const MAX_DELAY: Duration = Duration::from_secs(30);
/// The PostgreSQL advisory lock key that serialises starting sign-in attempts.
const SIGN_IN_LOCK: i64 = 0x4865_7261_6c64_5349; // "HeraldSI"

/// The delay for a count of recent failures, given how many are free.
pub fn delay_for(failures: i64, free: i64) -> Duration {
    if failures < free {
        return Duration::ZERO;
    }
    let exp = (failures - free).min(10) as u32;
    Duration::from_secs(1u64 << exp).min(MAX_DELAY)
}

/// How long the next attempt for `account` from `ip` must wait.
pub async fn delay_before_attempt(
    db: &Db,
    now_ms: i64,
    account: &str,
    ip: &str,
) -> Result<Duration, sqlx::Error> {
    let since = now_ms - WINDOW_MS;
    let (by_account, by_ip): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM signin_failures WHERE account = $1 AND at > $2), \
                (SELECT COUNT(*) FROM signin_failures WHERE ip = $3 AND at > $2)",
    )
    .bind(account)
    .bind(since)
    .bind(ip)
    .fetch_one(db.read())
    .await?;
    Ok(delay_for(by_account, ACCOUNT_FREE_FAILURES).max(delay_for(by_ip, IP_FREE_FAILURES)))
}

/// Starts an attempt for `account` from `ip` and returns how long it must wait. The
/// attempt is stored at once, as a failure until it succeeds (a success clears the
/// account's failures), and waits by the failures and attempts stored before it:
/// attempts sent at the same moment count each other and queue one behind the
/// other (1 s, 2 s, 4 s …) instead of waiting out one delay together — on every
/// instance, since the count is the database's.
pub async fn begin_attempt(
    db: &Db,
    now_ms: i64,
    account: &str,
    ip: &str,
) -> Result<Duration, sqlx::Error> {
    // Counting and storing happen under one lock: on PostgreSQL a sequence hands
    // out ids before their rows commit, so counting "ids below mine" missed an
    // attempt sent at the same moment (two waited 4 s together). SQLite's
    // `BEGIN IMMEDIATE` already serialises writers; PostgreSQL takes a
    // transaction-scoped advisory lock shared by every instance.
    let mut tx = db.begin().await?;
    if db.backend == crate::db::Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SIGN_IN_LOCK)
            .execute(&mut *tx)
            .await?;
    }
    let since = now_ms - WINDOW_MS;
    let (by_account, by_ip): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM signin_failures WHERE account = $1 AND at > $2), \
                (SELECT COUNT(*) FROM signin_failures WHERE ip = $3 AND at > $2)",
    )
    .bind(account)
    .bind(since)
    .bind(ip)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO signin_failures (account, ip, at) VALUES ($1, $2, $3)")
        .bind(account)
        .bind(ip)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(delay_for(by_account, ACCOUNT_FREE_FAILURES).max(delay_for(by_ip, IP_FREE_FAILURES)))
}

/// Starts an attempt for `account` from `ip` ([`begin_attempt`]) and waits as long
/// as the throttle asks. A failed attempt needs nothing more: it is stored already.
pub async fn wait_turn(db: &Db, now_ms: i64, account: &str, ip: &str) -> Result<(), sqlx::Error> {
    let delay = begin_attempt(db, now_ms, account, ip).await?;
    if !delay.is_zero() {
        tracing::info!(delay_ms = delay.as_millis() as u64, "sign-in throttled");
        tokio::time::sleep(delay).await;
    }
    Ok(())
}

pub async fn record_failure(
    db: &Db,
    now_ms: i64,
    account: &str,
    ip: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO signin_failures (account, ip, at) VALUES ($1, $2, $3)")
        .bind(account)
        .bind(ip)
        .bind(now_ms)
        .execute(db.write())
        .await?;
    Ok(())
}

/// A successful sign-in clears the account's failures.
pub async fn clear_account(db: &Db, account: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM signin_failures WHERE account = $1")
        .bind(account)
        .execute(db.write())
        .await?;
    Ok(())
}

/// Forgets failures older than the window.
pub async fn purge_old(db: &Db, now_ms: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM signin_failures WHERE at <= $1")
        .bind(now_ms - WINDOW_MS)
        .execute(db.write())
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_grows_after_the_free_failures_and_is_capped() {
        assert_eq!(delay_for(0, 10), Duration::ZERO);
        assert_eq!(delay_for(9, 10), Duration::ZERO);
        assert_eq!(delay_for(10, 10), Duration::from_secs(1));
        assert_eq!(delay_for(11, 10), Duration::from_secs(2));
        assert_eq!(delay_for(13, 10), Duration::from_secs(8));
        assert_eq!(delay_for(100, 10), MAX_DELAY);
    }
}
