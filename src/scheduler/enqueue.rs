//! Putting runs on the queue, in the caller's transaction: the runs an event
//! triggers (intake, an import) and the reminder before an automation ends. Every
//! other change to a run is in [`crate::scheduler::queue`].

use crate::run_status;
use sqlx::AnyConnection;

use crate::db::Backend;
use crate::scheduler::queue::{END_REMINDER, NO_EVENT, RunStatus};
use crate::types::{AutomationId, EventId};

/// Runs per multi-row INSERT (8 parameters each: well under both engines' limits).
const ENQUEUE_ROWS: usize = 200;

/// A run to enqueue.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub automation_id: AutomationId,
    pub event_id: EventId,
    pub job_kind: &'a str,
    /// Pending at `due_at`, or already skipped with `skipped_because`.
    pub due_at: i64,
    pub skipped_because: Option<&'static str>,
}

/// Enqueues `runs` on `conn` (the caller's transaction); a run that exists for the
/// same automation and event is left alone. Returns how many were new. On
/// PostgreSQL every instance's scheduler is woken at commit.
pub async fn enqueue(
    conn: &mut AnyConnection,
    now_ms: i64,
    runs: &[NewRun<'_>],
) -> Result<u64, sqlx::Error> {
    let mut enqueued = 0;
    let backend = Backend::of(conn);
    // Multi-row statements: a batch of events enqueues its runs in a few round trips.
    for chunk in runs.chunks(ENQUEUE_ROWS) {
        let sql = backend.positional(format!(
            "INSERT INTO job_runs (automation_id, event_id, job_kind, status, due_at, outcome, created_at, finished_at) \
             VALUES {} ON CONFLICT (automation_id, event_id) DO NOTHING",
            crate::db::placeholders(chunk.len(), 8)
        ));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for run in chunk {
            let status = match run.skipped_because {
                Some(_) => RunStatus::Skipped,
                None => RunStatus::Pending,
            };
            q = q
                .bind(run.automation_id)
                .bind(run.event_id)
                .bind(run.job_kind)
                .bind(status.code())
                .bind(run.due_at)
                .bind(run.skipped_because)
                .bind(now_ms)
                .bind(run.skipped_because.map(|_| now_ms));
        }
        enqueued += q.execute(&mut *conn).await?.rows_affected();
    }
    if enqueued > 0 && backend == Backend::Postgres {
        // Delivered at commit: other instances' schedulers wake up too.
        crate::scheduler::queue::notify_instances(&mut *conn).await?;
    }
    Ok(enqueued)
}

/// Schedules (or moves) the reminder run of an automation, due at `due_ms`. A
/// reminder already sent is not sent again.
pub async fn schedule_reminder(
    conn: &mut AnyConnection,
    automation: AutomationId,
    due_ms: i64,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "INSERT INTO job_runs (automation_id, event_id, job_kind, status, due_at, created_at) \
         VALUES ($1, $2, $3, ",
        run_status!(Pending),
        ", $4, $5) ON CONFLICT (automation_id, event_id) DO UPDATE \
         SET due_at = excluded.due_at, status = ",
        run_status!(Pending),
        ", attempts = 0, finished_at = NULL, outcome = NULL \
         WHERE job_runs.status IN (",
        run_status!(Pending),
        ", ",
        run_status!(Cancelled),
        ", ",
        run_status!(Skipped),
        ")"
    ))
    .bind(automation)
    .bind(NO_EVENT)
    .bind(END_REMINDER)
    .bind(due_ms)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Cancels the pending reminder of an automation (nobody to remind, no end…).
pub async fn cancel_reminder(
    conn: &mut AnyConnection,
    automation: AutomationId,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "UPDATE job_runs SET status = ",
        run_status!(Cancelled),
        ", outcome = 'no reminder wanted any more', finished_at = $1 \
         WHERE automation_id = $2 AND event_id = $3 AND status = ",
        run_status!(Pending)
    ))
    .bind(now_ms)
    .bind(automation)
    .bind(NO_EVENT)
    .execute(conn)
    .await?;
    Ok(())
}
