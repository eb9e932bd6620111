//! Retention: deletes finished runs, events and audit entries older than the
//! periods in Settings, in batches of at most [`BATCH`] rows a statement, so the
//! single SQLite writer is never held long and pages stay fast.

use crate::run_status;
use std::time::Duration;

use crate::db::Db;
use crate::scheduler::runs::forget_empty_hours;
use crate::settings::Settings;

/// Rows deleted by one statement.
pub const BATCH: i64 = 1000;
const DAY_MS: i64 = 86_400_000;
/// How often the scheduler prunes.
pub const EVERY: Duration = Duration::from_secs(3600);

/// What one pruning pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub runs: u64,
    pub events: u64,
    pub audit_entries: u64,
}

/// Runs `batch` (which deletes at most [`BATCH`] rows) until a batch comes back
/// short; returns how many rows went.
async fn in_batches<F, Fut>(mut batch: F) -> Result<u64, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, sqlx::Error>>,
{
    let mut total = 0;
    loop {
        let done = batch().await?;
        total += done;
        if done < BATCH as u64 {
            return Ok(total);
        }
        // Let waiting writers (sign-ins, page saves, the scheduler) in between batches.
        tokio::task::yield_now().await;
    }
}

/// Deletes with `sql` (`$1` the cutoff, `$2` the batch size) in batches.
async fn delete_in_batches(db: &Db, sql: &'static str, cutoff: i64) -> Result<u64, sqlx::Error> {
    in_batches(|| async move {
        Ok(sqlx::query(sql)
            .bind(cutoff)
            .bind(BATCH)
            .execute(db.write())
            .await?
            .rows_affected())
    })
    .await
}

/// Deletes up to `limit` runs finished before `cutoff_ms` (retention); returns how
/// many went.
pub async fn prune_finished(db: &Db, cutoff_ms: i64, limit: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(concat!(
        "DELETE FROM job_runs WHERE id IN (SELECT id FROM job_runs WHERE finished_at < $1 \
         AND status IN (",
        run_status!(Done),
        ", ",
        run_status!(Failed),
        ", ",
        run_status!(Skipped),
        ", ",
        run_status!(Cancelled),
        ", ",
        run_status!(Expired),
        ") LIMIT $2)"
    ))
    .bind(cutoff_ms)
    .bind(limit)
    .execute(db.write())
    .await?
    .rows_affected())
}

/// One pruning pass at `now_ms` with the retention periods from Settings.
pub async fn prune(db: &Db, now_ms: i64) -> Result<Pruned, sqlx::Error> {
    let settings = Settings::load(db).await?;
    // Runs first: events they held on to may go in the same pass.
    let run_cutoff = now_ms - settings.run_retention_days * DAY_MS;
    let runs = in_batches(|| prune_finished(db, run_cutoff, BATCH)).await?;
    forget_empty_hours(db).await?;
    let events = delete_in_batches(
        db,
        "DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.occurred_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM job_runs r WHERE r.event_id = e.id) LIMIT $2)",
        now_ms - settings.event_retention_days * DAY_MS,
    )
    .await?;
    let audit_entries = delete_in_batches(
        db,
        "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < $1 LIMIT $2)",
        now_ms - settings.audit_retention_days * DAY_MS,
    )
    .await?;
    // Idempotency-Key answers are kept for a day (the API's promise).
    sqlx::query("DELETE FROM api_idempotency WHERE created_at < $1")
        .bind(now_ms - DAY_MS)
        .execute(db.write())
        .await?;
    let pruned = Pruned {
        runs,
        events,
        audit_entries,
    };
    if pruned != Pruned::default() {
        tracing::info!(
            runs,
            events,
            audit_entries,
            "retention: deleted records past their keeping period"
        );
    }
    Ok(pruned)
}

/// Prunes now and then every [`EVERY`], for as long as the scheduler runs.
pub async fn run(db: Db, clock: std::sync::Arc<dyn crate::clock::Clock>) {
    loop {
        if let Err(e) = prune(&db, clock.now_ms()).await {
            tracing::warn!(error = %e, "retention: pruning failed; trying again later");
        }
        tokio::time::sleep(EVERY).await;
    }
}
