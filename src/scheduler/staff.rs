//! What staff do to single runs from an automation's page: retry a failed run,
//! cancel a pending one. Like the queue's transitions, each is one statement that
//! changes a run only from the state it names.

use crate::db::Db;
use crate::run_status;
use crate::types::{AutomationId, RunId};

/// Puts a failed (or expired) run back in the queue, due now, with a fresh set of
/// attempts (staff asked). Returns whether it was retryable.
pub async fn requeue(
    db: &Db,
    automation: AutomationId,
    run: RunId,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let done = change(
        db,
        concat!(
            "UPDATE job_runs SET status = ",
            run_status!(Pending),
            ", due_at = $1, attempts = 0, finished_at = NULL, outcome = NULL \
         WHERE id = $2 AND automation_id = $3 AND status IN (",
            run_status!(Failed),
            ", ",
            run_status!(Expired),
            ")"
        ),
        automation,
        run,
        now_ms,
    )
    .await?;
    db.wake_scheduler();
    Ok(done)
}

/// Cancels a pending run (staff asked). Returns whether it was pending.
pub async fn cancel(
    db: &Db,
    automation: AutomationId,
    run: RunId,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    change(
        db,
        concat!(
            "UPDATE job_runs SET status = ",
            run_status!(Cancelled),
            ", outcome = 'cancelled by staff', finished_at = $1 \
         WHERE id = $2 AND automation_id = $3 AND status = ",
            run_status!(Pending)
        ),
        automation,
        run,
        now_ms,
    )
    .await
}

/// Runs `sql` (the time `$1`, the run `$2`, its automation `$3`); whether it
/// changed the run.
async fn change(
    db: &Db,
    sql: &'static str,
    automation: AutomationId,
    run: RunId,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(sql)
        .bind(now_ms)
        .bind(run)
        .bind(automation)
        .execute(db.write())
        .await?;
    Ok(done.rows_affected() == 1)
}
