//! The durable scheduler: intake (runs enqueued in the event's transaction), the
//! claim with a lease, the worker loop that sleeps until the next due run or a
//! wake-up, retries with backoff, and a graceful stop.

use std::collections::BTreeSet;
use std::time::Duration;

use actix_web::web;
use jiff::Timestamp;
use rand::RngExt;
use sqlx::AnyConnection;

use crate::app::AppState;
use crate::automations::time_frame::{Calendar, parse_holidays};
use crate::automations::{self, Automation};
use crate::db::Backend;
use crate::events::NewEvent;

pub mod retention;

/// How long a claim holds before another worker may take the run over.
pub const LEASE: Duration = Duration::from_secs(30);
/// Attempts before a run fails for good.
pub const MAX_ATTEMPTS: i64 = 8;
/// Runs claimed per round.
const BATCH: i64 = 32;
/// Runs executing at once in one process.
const MAX_RUNNING: usize = 64;

/// Enqueues a run for every active automation the event triggers (inside the
/// event's transaction). The due time is the event time plus the delay, moved to
/// an allowed day; a run with no allowed day left is stored as skipped.
pub async fn intake(
    conn: &mut AnyConnection,
    event_id: i64,
    at_ms: i64,
    event: &NewEvent,
) -> Result<u64, sqlx::Error> {
    let candidates = automations::active_for_event(&mut *conn, event.kind, at_ms).await?;
    let matching: Vec<Automation> = candidates
        .into_iter()
        .filter(|a| a.filter.matches(event))
        .collect();
    if matching.is_empty() {
        return Ok(0);
    }
    let holidays: Option<String> =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = 'holidays'")
            .fetch_optional(&mut *conn)
            .await?;
    let holiday_dates = holidays
        .as_deref()
        .map(parse_holidays)
        .and_then(Result::ok)
        .unwrap_or_default();
    let mut enqueued = 0;
    for a in matching {
        let (status, due, outcome) = due_time(&a, at_ms, &holiday_dates);
        let done = sqlx::query(
            "INSERT INTO job_runs (automation_id, event_id, job_kind, status, due_at, outcome, created_at, finished_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (automation_id, event_id) DO NOTHING",
        )
        .bind(a.id)
        .bind(event_id)
        .bind(a.job.map_or("", |j| j.code()))
        .bind(status)
        .bind(due)
        .bind(outcome)
        .bind(at_ms)
        .bind((status == "skipped").then_some(at_ms))
        .execute(&mut *conn)
        .await?;
        enqueued += done.rows_affected();
    }
    if enqueued > 0 && is_postgres(conn) {
        // Delivered at commit: other instances' schedulers wake up too.
        sqlx::query("SELECT pg_notify('herald_runs', '')")
            .execute(&mut *conn)
            .await?;
    }
    Ok(enqueued)
}

fn is_postgres(conn: &AnyConnection) -> bool {
    conn.backend_name().eq_ignore_ascii_case("postgresql")
        || conn.backend_name().eq_ignore_ascii_case("postgres")
}

/// On SQLite, takes (or renews) the one-scheduler lock for `owner`.
async fn hold_lock(state: &AppState, owner: &str) -> Result<bool, sqlx::Error> {
    let now = state.clock.now_ms();
    let done = sqlx::query(
        "INSERT INTO scheduler_lock (id, owner, expires_at) VALUES (1, $1, $2) \
         ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
         WHERE scheduler_lock.owner = excluded.owner OR scheduler_lock.expires_at < $3",
    )
    .bind(owner)
    .bind(now + LEASE.as_millis() as i64)
    .bind(now)
    .execute(state.db.write())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// On PostgreSQL, wakes this process's scheduler when any instance enqueues runs.
async fn listen(state: web::Data<AppState>) {
    loop {
        match sqlx::postgres::PgListener::connect(state.config.database_url.expose()).await {
            Ok(mut listener) => {
                if let Err(e) = listener.listen("herald_runs").await {
                    tracing::warn!(error = %e, "LISTEN herald_runs failed");
                } else {
                    while let Ok(_notification) = listener.recv().await {
                        state.db.wake_scheduler();
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "scheduler: cannot listen for other instances' runs")
            }
        }
        // The connection dropped: wake once (runs may have been missed) and reconnect.
        state.db.wake_scheduler();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// (status, due time, outcome) of a new run for `a` and an event at `at_ms`.
fn due_time(
    a: &Automation,
    at_ms: i64,
    holidays: &BTreeSet<jiff::civil::Date>,
) -> (&'static str, i64, Option<&'static str>) {
    let zone = a.zone();
    let event_at = Timestamp::from_millisecond(at_ms).unwrap_or(Timestamp::UNIX_EPOCH);
    let due = a.delay.map_or(event_at, |d| d.apply(event_at, &zone));
    let calendar = Calendar {
        zone,
        days: a.days,
        holidays: a.holidays,
        holiday_dates: holidays.clone(),
    };
    let end = a.end_at.and_then(|e| Timestamp::from_millisecond(e).ok());
    match calendar.next_allowed(due, end) {
        Some(t) => ("pending", t.as_millisecond(), None),
        None => (
            "skipped",
            due.as_millisecond(),
            Some("no allowed day left before the time frame ends"),
        ),
    }
}

/// A run this worker holds.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub automation_id: i64,
    pub event_id: i64,
    pub job_kind: String,
    pub due_at: i64,
    pub attempts: i64,
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done {
        target: Target,
        message_id: String,
    },
    Skipped {
        target: Option<Target>,
        reason: String,
    },
    Expired,
    /// Worth another attempt (with a fresh password).
    Retry {
        target: Option<Target>,
        error: String,
    },
    Failed {
        target: Option<Target>,
        error: String,
    },
}

/// Whom a run was for, once resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub kind: &'static str,
    pub id: i64,
}

/// Claims due runs (and runs whose lease expired) for `owner`.
pub async fn claim(state: &AppState, owner: &str, limit: i64) -> Result<Vec<Claimed>, sqlx::Error> {
    let now = state.clock.now_ms();
    let lock = if state.db.backend == Backend::Postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE job_runs SET status = 'running', lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1, \
         started_at = $3 WHERE id IN (SELECT id FROM job_runs WHERE (status = 'pending' AND due_at <= $3) \
         OR (status = 'running' AND lease_expires_at < $3) ORDER BY due_at LIMIT $4{lock}) \
         RETURNING id, automation_id, event_id, job_kind, due_at, attempts"
    );
    let mut tx = state.db.begin().await?;
    let claimed = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(owner)
        .bind(now + LEASE.as_millis() as i64)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(claimed)
}

/// Exponential backoff with jitter: 10 s, 20 s, 40 s … capped at one hour, ±20 %.
pub fn backoff(attempts: i64) -> Duration {
    let base = 10u64
        .saturating_mul(1 << (attempts.clamp(1, 20) - 1))
        .min(3600);
    let jitter = rand::rng().random_range(0.8..1.2);
    Duration::from_secs_f64(base as f64 * jitter)
}

/// Stores the outcome of an attempt (only while this worker still holds the lease).
pub async fn finish(
    state: &AppState,
    owner: &str,
    run: &Claimed,
    outcome: &Outcome,
) -> Result<(), sqlx::Error> {
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let errors: Option<String> =
        sqlx::query_scalar("SELECT errors FROM job_runs WHERE id = $1 AND lease_owner = $2")
            .bind(run.id)
            .bind(owner)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(errors) = errors else {
        // The lease was lost (taken over after expiry): the other worker decides.
        return Ok(());
    };
    let mut errors: Vec<serde_json::Value> = serde_json::from_str(&errors).unwrap_or_default();
    let (status, due, outcome_text, error, message_id, target) = match outcome {
        Outcome::Done { target, message_id } => (
            "done",
            run.due_at,
            Some("delivered".to_string()),
            None,
            Some(message_id.clone()),
            Some(*target),
        ),
        Outcome::Skipped { target, reason } => (
            "skipped",
            run.due_at,
            Some(reason.clone()),
            None,
            None,
            *target,
        ),
        Outcome::Expired => (
            "expired",
            run.due_at,
            Some(
                "could not start in time: the password would be stale (limit in Settings)"
                    .to_string(),
            ),
            None,
            None,
            None,
        ),
        Outcome::Retry { target, error } if run.attempts < MAX_ATTEMPTS => {
            let next = now + backoff(run.attempts).as_millis() as i64;
            ("pending", next, None, Some(error.clone()), None, *target)
        }
        Outcome::Retry { target, error } | Outcome::Failed { target, error } => (
            "failed",
            run.due_at,
            None,
            Some(error.clone()),
            None,
            *target,
        ),
    };
    if let Some(e) = &error {
        errors.push(serde_json::json!({ "attempt": run.attempts, "at": now, "error": e }));
    }
    let finished = (status != "pending").then_some(now);
    sqlx::query(
        "UPDATE job_runs SET status = $1, due_at = $2, outcome = $3, last_error = COALESCE($4, last_error), errors = $5, \
         message_id = COALESCE($6, message_id), target_kind = COALESCE($7, target_kind), \
         target_id = COALESCE($8, target_id), finished_at = $9, lease_owner = NULL, lease_expires_at = NULL \
         WHERE id = $10 AND lease_owner = $11",
    )
    .bind(status)
    .bind(due)
    .bind(outcome_text)
    .bind(error)
    .bind(serde_json::Value::Array(errors).to_string())
    .bind(message_id)
    .bind(target.map(|t| t.kind))
    .bind(target.map(|t| t.id))
    .bind(finished)
    .bind(run.id)
    .bind(owner)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Executes one claimed run, renewing its lease while it works. An attempt that
/// takes longer than `job_timeout` is abandoned and the run retried with backoff,
/// so a mail server that stops answering cannot hold the queue.
async fn execute(state: &AppState, owner: &str, run: Claimed) {
    crate::metrics::RUN_ATTEMPTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let late = (state.clock.now_ms() - run.due_at).max(0);
    crate::metrics::RUN_LATENESS.observe(Duration::from_millis(late as u64));
    let limit = state.config.job_timeout;
    let work = crate::jobs::execute(state, &run);
    tokio::pin!(work);
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    let outcome = loop {
        tokio::select! {
            outcome = &mut work => break outcome,
            _ = &mut deadline => break Outcome::Retry {
                target: None,
                error: format!("the attempt took longer than {} s and was abandoned", limit.as_secs()),
            },
            _ = tokio::time::sleep(LEASE / 3) => {
                let renewed = sqlx::query("UPDATE job_runs SET lease_expires_at = $1 WHERE id = $2 AND lease_owner = $3")
                    .bind(state.clock.now_ms() + LEASE.as_millis() as i64)
                    .bind(run.id)
                    .bind(owner)
                    .execute(state.db.write())
                    .await;
                if let Err(e) = renewed {
                    tracing::warn!(run = run.id, error = %e, "lease renewal failed");
                }
            }
        }
    };
    match &outcome {
        Outcome::Done { .. } => tracing::info!(run = run.id, "run done"),
        Outcome::Skipped { reason, .. } => tracing::info!(run = run.id, reason, "run skipped"),
        Outcome::Expired => tracing::warn!(run = run.id, "run expired"),
        Outcome::Retry { error, .. } => tracing::warn!(
            run = run.id,
            attempts = run.attempts,
            error,
            "run will be retried"
        ),
        Outcome::Failed { error, .. } => tracing::warn!(run = run.id, error, "run failed"),
    }
    if let Err(e) = finish(state, owner, &run, &outcome).await {
        tracing::error!(run = run.id, error = ?e, "storing a run's outcome failed; its lease will expire and it will run again");
    }
}

/// The runs this process is executing.
#[derive(Default)]
struct Running {
    tasks: tokio::task::JoinSet<i64>,
    ids: std::collections::HashSet<i64>,
}

impl Running {
    fn is_full(&self) -> bool {
        self.ids.len() >= MAX_RUNNING
    }

    fn finished(&mut self, id: Result<i64, tokio::task::JoinError>) {
        if let Ok(id) = id {
            self.ids.remove(&id);
        }
    }

    /// Waits until one run finishes (never, when none runs).
    async fn one_finished(&mut self) {
        match self.tasks.join_next().await {
            Some(id) => self.finished(id),
            None => std::future::pending().await,
        }
        while let Some(id) = self.tasks.try_join_next() {
            self.finished(id);
        }
    }
}

/// Claims as many due runs as there are free slots (at most [`BATCH`] at once) and
/// starts each; returns how many it claimed. Runs finish on their own: a slow one
/// never holds up the claiming of others.
async fn claim_into(
    state: &web::Data<AppState>,
    owner: &str,
    running: &mut Running,
) -> Result<usize, sqlx::Error> {
    let free = MAX_RUNNING
        .saturating_sub(running.ids.len())
        .min(BATCH as usize);
    if free == 0 {
        return Ok(0);
    }
    let runs = claim(state, owner, free as i64).await?;
    let n = runs.len();
    for run in runs {
        // Still executing here (its lease looked expired after a jump of the
        // clock): the claim only renewed the lease.
        if !running.ids.insert(run.id) {
            continue;
        }
        let (state, owner) = (state.clone(), owner.to_string());
        running.tasks.spawn(async move {
            let id = run.id;
            execute(&state, &owner, run).await;
            id
        });
    }
    Ok(n)
}

/// How long to sleep: until the next pending run is due or a lease expires.
async fn next_wait(state: &AppState) -> Duration {
    let next: Result<(Option<i64>, Option<i64>), sqlx::Error> = sqlx::query_as(
        "SELECT (SELECT MIN(due_at) FROM job_runs WHERE status = 'pending'), \
                (SELECT MIN(lease_expires_at) FROM job_runs WHERE status = 'running')",
    )
    .fetch_one(state.db.read())
    .await;
    let now = state.clock.now_ms();
    match next {
        Ok((due, lease)) => match due.into_iter().chain(lease).min() {
            Some(t) => Duration::from_millis((t - now).clamp(0, 3_600_000) as u64),
            None => Duration::from_secs(3600),
        },
        Err(e) => {
            tracing::warn!(error = %e, "scheduler: database unavailable");
            Duration::from_secs(1)
        }
    }
}

/// The running worker.
pub struct Worker {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    owner: String,
}

/// A name for this process's claims.
fn owner_name() -> String {
    let mut bytes = [0u8; 4];
    rand::rng().fill(&mut bytes);
    let host = hostname();
    format!(
        "{host}-{}-{}",
        std::process::id(),
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "herald".into())
}

impl Worker {
    /// Starts the worker loop.
    pub fn start(state: web::Data<AppState>) -> Self {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let owner = owner_name();
        let me = owner.clone();
        let listener =
            (state.db.backend == Backend::Postgres).then(|| tokio::spawn(listen(state.clone())));
        let task = tokio::spawn(async move {
            if state.db.backend == Backend::Sqlite {
                // One scheduler per SQLite database: wait while another process holds it.
                let mut said = false;
                loop {
                    match hold_lock(&state, &me).await {
                        Ok(true) => break,
                        Ok(false) if !said => {
                            said = true;
                            tracing::warn!(
                                "another Herald process runs the scheduler for this SQLite database; this one serves \
                                 pages only and takes over if that process stops (use PostgreSQL to run several)"
                            );
                        }
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, "scheduler lock"),
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(LEASE / 3) => {}
                        _ = stopped.changed() => return,
                    }
                }
            }
            tracing::info!(owner = %me, "scheduler started");
            let pruning = tokio::spawn(retention::run(state.db.clone(), state.clock.clone()));
            // The lock's heartbeat runs beside the loop, which sleeps until work is due.
            let (lost_tx, mut lost) = tokio::sync::watch::channel(false);
            let heartbeat = (state.db.backend == Backend::Sqlite).then(|| {
                let (state, me, lost_tx) = (state.clone(), me.clone(), lost_tx.clone());
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(LEASE / 3).await;
                        if let Ok(false) = hold_lock(&state, &me).await {
                            tracing::error!(
                                "the scheduler lock was taken over; stopping this scheduler"
                            );
                            let _ = lost_tx.send(true);
                            return;
                        }
                    }
                })
            });
            let mut running = Running::default();
            loop {
                if *stopped.borrow() {
                    break;
                }
                match claim_into(&state, &me, &mut running).await {
                    // A full round: more may be due at once.
                    Ok(n) if n == BATCH as usize => continue,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "scheduler: claiming failed"),
                }
                // With every slot taken, only a finished run lets more start.
                let wait = if running.is_full() {
                    Duration::from_secs(3600)
                } else {
                    next_wait(&state).await
                };
                tokio::select! {
                    _ = state.db.scheduler_woken() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = running.one_finished() => {}
                    _ = stopped.changed() => break,
                    _ = lost.changed() => break,
                }
            }
            // Stop claiming; the runs already started finish (within the grace period).
            while running.tasks.join_next().await.is_some() {}
            if let Some(l) = listener {
                l.abort();
            }
            if let Some(h) = heartbeat {
                h.abort();
            }
            pruning.abort();
            drop(lost_tx);
            tracing::info!("scheduler stopped");
        });
        Self { stop, task, owner }
    }

    /// Stops claiming, lets running jobs finish for up to `grace`, then releases the
    /// leases of whatever is left.
    pub async fn stop(self, state: &AppState, grace: Duration) {
        let _ = self.stop.send(true);
        let task = self.task;
        let abort = task.abort_handle();
        if tokio::time::timeout(grace, task).await.is_err() {
            tracing::warn!(
                "scheduler: jobs still running after the grace period; releasing their leases"
            );
            // Dropping the worker's task set stops the jobs still running.
            abort.abort();
        }
        let released = sqlx::query(
            "UPDATE job_runs SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL \
             WHERE lease_owner = $1 AND status = 'running'",
        )
        .bind(&self.owner)
        .execute(state.db.write())
        .await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "releasing leases failed; they expire by themselves");
        }
        let _ = sqlx::query("DELETE FROM scheduler_lock WHERE owner = $1")
            .bind(&self.owner)
            .execute(state.db.write())
            .await;
    }
}

/// A run as the automation's page lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunRow {
    pub id: i64,
    pub event_id: i64,
    pub status: String,
    pub due_at: i64,
    pub attempts: i64,
    pub target_kind: Option<String>,
    pub target_id: Option<i64>,
    pub outcome: Option<String>,
    pub last_error: Option<String>,
    pub message_id: Option<String>,
    pub finished_at: Option<i64>,
}

impl RunRow {
    pub fn due(&self) -> String {
        crate::clock::format_utc(self.due_at)
    }
    pub fn target(&self) -> String {
        match (&self.target_kind, self.target_id) {
            (Some(k), Some(id)) => format!("{} #{id}", k.replace('_', " ")),
            _ => "—".into(),
        }
    }
}

/// The newest runs of an automation.
pub async fn runs_of(
    db: &crate::db::Db,
    automation_id: i64,
    limit: i64,
) -> Result<Vec<RunRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, event_id, status, due_at, attempts, target_kind, target_id, outcome, last_error, message_id, \
         finished_at FROM job_runs WHERE automation_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(automation_id)
    .bind(limit)
    .fetch_all(db.read())
    .await
}

/// One run by id.
pub async fn run(db: &crate::db::Db, id: i64) -> Result<Option<RunRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, event_id, status, due_at, attempts, target_kind, target_id, outcome, last_error, message_id, \
         finished_at FROM job_runs WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db.read())
    .await
}

/// Failed runs of an automation since its last activation, and the latest error.
#[derive(Debug, Clone, Default)]
pub struct ErrorSummary {
    pub count: i64,
    pub last_at: Option<i64>,
    pub last_error: Option<String>,
}

impl ErrorSummary {
    pub fn last_at_text(&self) -> String {
        self.last_at
            .map(crate::clock::format_utc)
            .unwrap_or_default()
    }
}

/// [`ErrorSummary`] per automation id, for the overview.
pub async fn error_summaries(
    db: &crate::db::Db,
    automation_ids: &[i64],
) -> Result<std::collections::HashMap<i64, ErrorSummary>, sqlx::Error> {
    let mut out = std::collections::HashMap::new();
    if automation_ids.is_empty() {
        return Ok(out);
    }
    let marks: Vec<String> = (1..=automation_ids.len())
        .map(|i| format!("${i}"))
        .collect();
    let sql = format!(
        "SELECT r.automation_id, COUNT(*), MAX(r.finished_at) FROM job_runs r JOIN automations a ON a.id = r.automation_id \
         WHERE r.automation_id IN ({}) AND r.status = 'failed' AND r.finished_at >= COALESCE(a.activated_at, 0) \
         GROUP BY r.automation_id",
        marks.join(", ")
    );
    let mut q = sqlx::query_as::<_, (i64, i64, Option<i64>)>(sqlx::AssertSqlSafe(sql));
    for id in automation_ids {
        q = q.bind(*id);
    }
    for (id, count, last_at) in q.fetch_all(db.read()).await? {
        let last_error: Option<String> = sqlx::query_scalar(
            "SELECT last_error FROM job_runs WHERE automation_id = $1 AND status = 'failed' ORDER BY finished_at DESC LIMIT 1",
        )
        .bind(id)
        .fetch_optional(db.read())
        .await?
        .flatten();
        out.insert(
            id,
            ErrorSummary {
                count,
                last_at,
                last_error,
            },
        );
    }
    Ok(out)
}

/// Puts a failed (or expired) run back in the queue, due now, with a fresh set of
/// attempts. Returns whether it was retryable.
pub async fn retry(
    db: &crate::db::Db,
    automation_id: i64,
    run_id: i64,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE job_runs SET status = 'pending', due_at = $1, attempts = 0, finished_at = NULL, outcome = NULL \
         WHERE id = $2 AND automation_id = $3 AND status IN ('failed', 'expired')",
    )
    .bind(now_ms)
    .bind(run_id)
    .bind(automation_id)
    .execute(db.write())
    .await?;
    db.wake_scheduler();
    Ok(done.rows_affected() == 1)
}

/// Cancels a pending run. Returns whether it was pending.
pub async fn cancel(
    db: &crate::db::Db,
    automation_id: i64,
    run_id: i64,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE job_runs SET status = 'cancelled', outcome = 'cancelled by staff', finished_at = $1 \
         WHERE id = $2 AND automation_id = $3 AND status = 'pending'",
    )
    .bind(now_ms)
    .bind(run_id)
    .bind(automation_id)
    .execute(db.write())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The runs that targeted a contact, newest first (for its timeline).
pub async fn runs_for_contact(
    db: &crate::db::Db,
    contact_id: i64,
    limit: i64,
) -> Result<Vec<RunRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.id, r.event_id, r.status, r.due_at, r.attempts, r.target_kind, r.target_id, r.outcome, r.last_error, \
         r.message_id, r.finished_at FROM job_runs r JOIN events e ON e.id = r.event_id \
         WHERE (r.target_kind = 'contact' AND r.target_id = $1) OR (r.target_kind IS NULL AND e.contact_id = $1) \
         ORDER BY r.id DESC LIMIT $2",
    )
    .bind(contact_id)
    .bind(limit)
    .fetch_all(db.read())
    .await
}
