//! The queue: with [`crate::scheduler::enqueue`], the only code that writes
//! `job_runs`. Runs are enqueued (by intake, by the automation store's reminder, by
//! an import; see `enqueue`), claimed here with a lease, and then
//! leave `running` by one named transition — complete, retry, fail, skip, expire —
//! or are cancelled or requeued by staff.

use crate::run_status;
pub use crate::scheduler::status::{RunFor, Target};
use std::time::Duration;

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::db::{Backend, Db};
pub use crate::deliveries::Sent;
use crate::types::{AutomationId, EventId, RunId};

/// How long a claim holds before another worker may take the run over.
pub const LEASE: Duration = Duration::from_secs(30);
/// Attempts before a run fails for good.
pub const MAX_ATTEMPTS: i64 = 8;
/// The job kind of the reminder before an automation's end: a run the scheduler
/// makes itself (`enqueue::schedule_reminder`), so its kind is named here, below
/// the job that sends it.
pub const END_REMINDER: &str = "end_reminder";
/// The event id of runs that no event caused (reminders, imports).
pub const NO_EVENT: EventId = EventId(0);
/// The automation id of runs that belong to no automation (imports).
pub const NO_AUTOMATION: AutomationId = AutomationId(0);

pub use crate::scheduler::complete::{AuditNote, Completed, complete_many};
pub use crate::scheduler::status::RunStatus;

/// One failed attempt, as kept on the run (the `errors` column, JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptError {
    pub attempt: i64,
    pub at: i64,
    pub error: String,
}

impl AttemptError {
    /// The stored list, oldest first; a damaged column reads as empty.
    pub fn parse_list(stored: &str) -> Vec<AttemptError> {
        serde_json::from_str(stored).unwrap_or_default()
    }

    fn to_json(list: &[AttemptError]) -> String {
        serde_json::to_string(list).expect("attempt errors serialise")
    }
}

/// A run this worker holds.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: RunId,
    pub automation_id: AutomationId,
    pub event_id: EventId,
    pub job_kind: String,
    pub due_at: i64,
    pub attempts: i64,
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The work is done; the emails it sent (recorded as deliveries, the last
    /// one's Message-ID on the run), and what the run's history shows (an HTTP
    /// answer, say) when there is more to say than "done" or "delivered".
    Done {
        target: Target,
        sent: Vec<Sent>,
        detail: Option<String>,
        /// What the audit log keeps of the work, written with the run's completion.
        audit: Option<Box<AuditNote>>,
    },
    Skipped {
        target: Option<Target>,
        reason: String,
    },
    /// Could not start in time; `reason` says why that matters for this job.
    Expired { reason: &'static str },
    /// Worth another attempt.
    Retry {
        target: Option<Target>,
        error: String,
    },
    Failed {
        target: Option<Target>,
        error: String,
    },
}

impl Outcome {
    /// Done, with nothing more to say.
    pub fn done(target: Target) -> Self {
        Outcome::Done {
            target,
            sent: Vec::new(),
            detail: None,
            audit: None,
        }
    }

    /// An email went out.
    pub fn sent(target: Target, sent: Sent) -> Self {
        Outcome::Done {
            target,
            sent: vec![sent],
            detail: None,
            audit: None,
        }
    }

    /// This outcome with `note` for the audit log (when it is done).
    pub fn noted(mut self, note: AuditNote) -> Self {
        if let Outcome::Done { audit, .. } = &mut self {
            *audit = Some(Box::new(note));
        }
        self
    }

    pub fn skip(target: Option<Target>, reason: impl Into<String>) -> Self {
        Outcome::Skipped {
            target,
            reason: reason.into(),
        }
    }

    /// Database trouble while executing: worth another attempt later.
    /// A database error at `step` (a transient one, tried again): the attempt's
    /// error and the log line say where, e.g. "database error while loading the
    /// group: …".
    pub fn database(target: Option<Target>, step: &str, e: impl std::fmt::Display) -> Self {
        Outcome::Retry {
            target,
            error: format!("database error while {step}: {e}"),
        }
    }
}

/// Claims up to `limit` due runs (and runs whose lease expired) for `owner`: the
/// expired leases first (their runs have waited longest), then due runs in due
/// order. Two statements, not one with `OR`: with the `OR` the database read and
/// sorted every due run to hand out the first 128 — 6 ms a claim with 20,000 due
/// on PostgreSQL, growing with the backlog — while each half alone walks the
/// `(status, due_at)` index and stops at the limit.
pub async fn claim(
    db: &Db,
    now_ms: i64,
    owner: &str,
    limit: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let mut claimed = claim_where(
        db,
        concat!(
            "status = ",
            run_status!(Running),
            " AND lease_expires_at < $3"
        ),
        now_ms,
        owner,
        limit,
    )
    .await?;
    let left = limit - claimed.len() as i64;
    if left > 0 {
        claimed.extend(claim_due(db, now_ms, owner, left).await?);
    }
    Ok(claimed)
}

/// Claims up to `limit` due runs, leaving runs whose lease expired to [`claim`]
/// (the worker looks for those now and then while a backlog drains, not at every
/// round).
pub async fn claim_due(
    db: &Db,
    now_ms: i64,
    owner: &str,
    limit: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    claim_where(
        db,
        concat!("status = ", run_status!(Pending), " AND due_at <= $3"),
        now_ms,
        owner,
        limit,
    )
    .await
}

async fn claim_where(
    db: &Db,
    which: &str,
    now_ms: i64,
    owner: &str,
    limit: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let lock = if db.backend == Backend::Postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let sql = format!(
        concat!(
            "UPDATE job_runs SET status = ",
            run_status!(Running),
            ", lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1, \
         started_at = $3 WHERE id IN (SELECT id FROM job_runs WHERE {which} ORDER BY due_at LIMIT $4{lock}) \
         RETURNING id, automation_id, event_id, job_kind, due_at, attempts"
        ),
        which = which,
        lock = lock
    );
    // One statement is one transaction: no BEGIN and COMMIT round trips.
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(owner)
        .bind(now_ms + LEASE.as_millis() as i64)
        .bind(now_ms)
        .bind(limit)
        .fetch_all(db.write())
        .await
}

/// Moves the lease of a run this worker holds forward.
pub async fn renew_lease(db: &Db, now_ms: i64, run: RunId, owner: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE job_runs SET lease_expires_at = $1 WHERE id = $2 AND lease_owner = $3")
        .bind(now_ms + LEASE.as_millis() as i64)
        .bind(run)
        .bind(owner)
        .execute(db.write())
        .await?;
    Ok(())
}

/// Moves the leases of every run `owner` holds forward: the process is alive and
/// keeps them while it waits to store their outcomes.
pub async fn renew_leases(db: &Db, now_ms: i64, owner: &str) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "UPDATE job_runs SET lease_expires_at = $1 WHERE status = ",
        run_status!(Running),
        " AND lease_owner = $2"
    ))
    .bind(now_ms + LEASE.as_millis() as i64)
    .bind(owner)
    .execute(db.write())
    .await?;
    Ok(())
}

/// Exponential backoff with jitter: 10 s, 20 s, 40 s … capped at one hour, ±20 %.
pub fn backoff(attempts: i64) -> Duration {
    let base = 10u64
        .saturating_mul(1 << (attempts.clamp(1, 20) - 1))
        .min(3600);
    let jitter = rand::rng().random_range(0.8..1.2);
    Duration::from_secs_f64(base as f64 * jitter)
}

/// The new state of a run leaving `running`.
struct Transition<'a> {
    status: RunStatus,
    due_at: i64,
    outcome: Option<&'a str>,
    error: Option<&'a str>,
    message_id: Option<&'a str>,
    target: Option<Target>,
}

/// Writes `t` for a run this worker still holds (a lost lease changes nothing:
/// the worker that took the run over decides); an error joins the run's list.
async fn transition(
    db: &Db,
    now_ms: i64,
    owner: &str,
    run: &Claimed,
    t: Transition<'_>,
) -> Result<(), sqlx::Error> {
    let finished = t.status.is_finished().then_some(now_ms);
    let update = |errors: Option<String>| {
        sqlx::query(
            "UPDATE job_runs SET status = $1, due_at = $2, outcome = $3, last_error = COALESCE($4, last_error), \
             errors = COALESCE($5, errors), message_id = COALESCE($6, message_id), \
             target_kind = COALESCE($7, target_kind), target_id = COALESCE($8, target_id), finished_at = $9, \
             lease_owner = NULL, lease_expires_at = NULL WHERE id = $10 AND lease_owner = $11",
        )
        .bind(t.status.code())
        .bind(t.due_at)
        .bind(t.outcome)
        .bind(t.error)
        .bind(errors)
        .bind(t.message_id)
        .bind(t.target.map(|t| t.kind.code()))
        .bind(t.target.map(|t| t.id))
        .bind(finished)
        .bind(run.id)
        .bind(owner)
    };
    let Some(error) = t.error else {
        // No error to add: one statement (the common case, and the hot path).
        update(None).execute(db.write()).await?;
        return Ok(());
    };
    let mut tx = db.begin().await?;
    let stored: Option<String> =
        sqlx::query_scalar("SELECT errors FROM job_runs WHERE id = $1 AND lease_owner = $2")
            .bind(run.id)
            .bind(owner)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(stored) = stored else {
        return Ok(());
    };
    let mut errors = AttemptError::parse_list(&stored);
    errors.push(AttemptError {
        attempt: run.attempts,
        at: now_ms,
        error: error.to_string(),
    });
    update(Some(AttemptError::to_json(&errors)))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The job found nothing to do, and says why.
pub async fn skip(
    db: &Db,
    now_ms: i64,
    owner: &str,
    run: &Claimed,
    target: Option<Target>,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let t = Transition {
        status: RunStatus::Skipped,
        due_at: run.due_at,
        outcome: Some(reason),
        error: None,
        message_id: None,
        target,
    };
    transition(db, now_ms, owner, run, t).await
}

/// The run could not start in time and would do stale work.
pub async fn expire(
    db: &Db,
    now_ms: i64,
    owner: &str,
    run: &Claimed,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let t = Transition {
        status: RunStatus::Expired,
        due_at: run.due_at,
        outcome: Some(reason),
        error: None,
        message_id: None,
        target: None,
    };
    transition(db, now_ms, owner, run, t).await
}

/// A transient failure: pending again after the backoff, or failed once the
/// attempts are used up.
pub async fn retry(
    db: &Db,
    now_ms: i64,
    owner: &str,
    run: &Claimed,
    target: Option<Target>,
    error: &str,
) -> Result<(), sqlx::Error> {
    if run.attempts >= MAX_ATTEMPTS {
        return fail(db, now_ms, owner, run, target, error).await;
    }
    let t = Transition {
        status: RunStatus::Pending,
        due_at: now_ms + backoff(run.attempts).as_millis() as i64,
        outcome: None,
        error: Some(error),
        message_id: None,
        target,
    };
    transition(db, now_ms, owner, run, t).await?;
    // Due again later: a scheduler asleep until some other time must know.
    db.wake_scheduler();
    Ok(())
}

/// A permanent failure: no more attempts.
pub async fn fail(
    db: &Db,
    now_ms: i64,
    owner: &str,
    run: &Claimed,
    target: Option<Target>,
    error: &str,
) -> Result<(), sqlx::Error> {
    let t = Transition {
        status: RunStatus::Failed,
        due_at: run.due_at,
        outcome: None,
        error: Some(error),
        message_id: None,
        target,
    };
    transition(db, now_ms, owner, run, t).await
}

/// Stores an attempt's outcome through its transition.
pub async fn finish(
    db: &Db,
    now_ms: i64,
    owner: &str,
    run: &Claimed,
    outcome: &Outcome,
) -> Result<(), sqlx::Error> {
    match outcome {
        Outcome::Done {
            target,
            sent,
            detail,
            audit,
        } => {
            let done = Completed {
                run: run.id,
                target: *target,
                sent: sent.clone(),
                detail: detail.clone(),
                audit: audit.clone(),
            };
            complete_many(db, now_ms, owner, &[done]).await
        }
        Outcome::Skipped { target, reason } => skip(db, now_ms, owner, run, *target, reason).await,
        Outcome::Expired { reason } => expire(db, now_ms, owner, run, reason).await,
        Outcome::Retry { target, error } => retry(db, now_ms, owner, run, *target, error).await,
        Outcome::Failed { target, error } => fail(db, now_ms, owner, run, *target, error).await,
    }
}

/// Puts the runs `owner` still holds back in the queue (at shutdown), and wakes
/// the other instances' schedulers on PostgreSQL: they run them now, not when they
/// next happen to look.
pub async fn release(db: &Db, owner: &str) -> Result<(), sqlx::Error> {
    let released = sqlx::query(concat!(
        "UPDATE job_runs SET status = ",
        run_status!(Pending),
        ", lease_owner = NULL, lease_expires_at = NULL \
         WHERE lease_owner = $1 AND status = ",
        run_status!(Running)
    ))
    .bind(owner)
    .execute(db.write())
    .await?
    .rows_affected();
    if released > 0 && db.backend == Backend::Postgres {
        notify_instances(db.write()).await?;
    }
    Ok(())
}

/// PostgreSQL: wakes every instance's scheduler (they `LISTEN herald_runs`); inside
/// a transaction, at its commit.
pub async fn notify_instances<'c>(
    conn: impl sqlx::Executor<'c, Database = sqlx::Any>,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify('herald_runs', '')")
        .execute(conn)
        .await?;
    Ok(())
}
