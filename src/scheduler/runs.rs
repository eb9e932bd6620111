//! Run history for pages, the dashboard, metrics and jobs: read-only queries.

use crate::run_status;
use std::collections::HashMap;

use crate::db::Db;
use crate::scheduler::queue::{RunStatus, Target};
use crate::types::{AutomationId, ContactId, EventId, RunId};

/// An hour in milliseconds: runs are counted per hour since the epoch.
pub const HOUR_MS: i64 = 3_600_000;

impl RunStatus {
    /// The word pages show, and its badge's classes.
    pub fn label(self) -> (&'static str, &'static str) {
        match self {
            RunStatus::Pending => ("Pending", "text-bg-info"),
            RunStatus::Running => ("Running", "text-bg-primary"),
            RunStatus::Done => ("Done", "text-bg-success"),
            RunStatus::Failed => ("Failed", "text-bg-danger"),
            RunStatus::Skipped => ("Skipped", "text-bg-secondary"),
            RunStatus::Cancelled => ("Cancelled", "text-bg-light"),
            RunStatus::Expired => ("Expired", "text-bg-warning"),
        }
    }
}

/// A run as the pages list it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunRow {
    pub id: RunId,
    pub event_id: EventId,
    #[sqlx(try_from = "String")]
    pub status: RunStatus,
    pub due_at: i64,
    pub attempts: i64,
    pub target_kind: Option<String>,
    pub target_id: Option<i64>,
    pub outcome: Option<String>,
    pub last_error: Option<String>,
    pub message_id: Option<String>,
    pub finished_at: Option<i64>,
    pub automation_id: AutomationId,
    /// The automation's name, the event's type, and the target's name and email
    /// (joined for the pages; `None` when deleted since).
    pub automation_name: Option<String>,
    pub event_type: Option<String>,
    pub target_name: Option<String>,
    pub target_email: Option<String>,
    /// Whom the event names (a contact or a system user), for runs not yet run:
    /// with Use Event Parameter, that is whom the run will be for.
    pub event_target_kind: Option<String>,
    pub event_target_id: Option<i64>,
    pub event_target_name: Option<String>,
    pub event_target_email: Option<String>,
}

impl RunRow {
    /// The due time in `zone`, named.
    pub fn due_in(&self, zone: &str) -> String {
        crate::clock::format_in(self.due_at, zone)
    }
    /// A run not yet run is for whom its automation will take: the event's contact
    /// or system user with Use Event Parameter (`None`), or `fixed` (kind, id, name,
    /// email). A run that has its target keeps it.
    pub fn expect_target(&mut self, fixed: Option<(&str, i64, &str, &str)>) {
        if self.target_kind.is_some() {
            return;
        }
        match fixed {
            Some((kind, id, name, email)) => {
                self.target_kind = Some(kind.to_string());
                self.target_id = Some(id);
                self.target_name = Some(name.to_string());
                self.target_email = Some(email.to_string());
            }
            None => {
                self.target_kind = self.event_target_kind.clone();
                self.target_id = self.event_target_id;
                self.target_name = self.event_target_name.clone();
                self.target_email = self.event_target_email.clone();
            }
        }
    }
    /// Whom it was for, as stored: `contact #4`.
    pub fn target(&self) -> String {
        match (&self.target_kind, self.target_id) {
            (Some(k), Some(id)) => format!("{} #{id}", k.replace('_', " ")),
            _ => "—".into(),
        }
    }
    /// Whom it was for, in words: "Lena Vogel <lena@example.com>", an email, an
    /// automation's name, or a dash.
    pub fn target_label(&self) -> String {
        let name = self.target_name.as_deref().map(str::trim).unwrap_or("");
        match (self.target_kind.as_deref(), self.target_email.as_deref()) {
            (_, Some(email)) if !name.is_empty() => format!("{name} <{email}>"),
            (_, Some(email)) => email.to_string(),
            (Some("automation"), None) => self.automation_name.clone().unwrap_or_default(),
            (Some(_), None) => "(deleted)".into(),
            (None, _) => "—".into(),
        }
    }
    /// The page of the contact it was for, if it was for one.
    pub fn target_link(&self) -> Option<String> {
        match (
            self.target_kind.as_deref(),
            self.target_id,
            &self.target_email,
        ) {
            (Some("contact"), Some(id), Some(_)) => Some(format!("/contacts/{id}")),
            _ => None,
        }
    }
    /// The event's name, e.g. "New Password Requested (C)".
    pub fn event_label(&self) -> &'static str {
        match self.event_type.as_deref() {
            Some(code) => crate::events::catalogue::EventType::from_code(code)
                .map_or("Unknown event", |e| e.label()),
            None if self.event_id.0 <= 0 => "Herald (the automation's end)",
            None => "(event deleted)",
        }
    }
    /// Finished with its job done (its outcome is its last attempt's).
    pub fn is_done(&self) -> bool {
        self.status == RunStatus::Done
    }
    /// Staff may put it back in the queue.
    pub fn retryable(&self) -> bool {
        matches!(self.status, RunStatus::Failed | RunStatus::Expired)
    }
    /// Staff may cancel it.
    pub fn cancellable(&self) -> bool {
        self.status == RunStatus::Pending
    }
}

const COLUMNS: &str = "r.id, r.event_id, r.status, r.due_at, r.attempts, r.target_kind, r.target_id, r.outcome, \
     r.last_error, r.message_id, r.finished_at, r.automation_id, a.name AS automation_name, e.type AS event_type, \
     COALESCE(c.first_name || ' ' || c.last_name, u.name) AS target_name, COALESCE(c.email, u.email) AS target_email, \
     CASE WHEN ec.id IS NOT NULL THEN 'contact' WHEN eu.id IS NOT NULL THEN 'system_user' END AS event_target_kind, \
     COALESCE(ec.id, eu.id) AS event_target_id, \
     COALESCE(ec.first_name || ' ' || ec.last_name, eu.name) AS event_target_name, COALESCE(ec.email, eu.email) AS event_target_email";

/// The run and what it refers to, for [`COLUMNS`].
const FROM: &str = "job_runs r LEFT JOIN automations a ON a.id = r.automation_id \
     LEFT JOIN events e ON e.id = r.event_id \
     LEFT JOIN contacts c ON r.target_kind = 'contact' AND c.id = r.target_id \
     LEFT JOIN system_users u ON r.target_kind = 'system_user' AND u.id = r.target_id \
     LEFT JOIN contacts ec ON ec.id = e.contact_id \
     LEFT JOIN system_users eu ON eu.id = e.system_user_id";

/// The newest runs of an automation.
pub async fn runs_of(
    db: &Db,
    automation: AutomationId,
    limit: i64,
) -> Result<Vec<RunRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE r.automation_id = $1 ORDER BY r.id DESC LIMIT $2"
    )))
    .bind(automation)
    .bind(limit)
    .fetch_all(db.read())
    .await
}

/// One run by id.
pub async fn run(db: &Db, id: RunId) -> Result<Option<RunRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE r.id = $1"
    )))
    .bind(id)
    .fetch_optional(db.read())
    .await
}

/// The runs that targeted a contact, newest first (for its timeline).
pub async fn runs_for_contact(
    db: &Db,
    contact: ContactId,
    limit: i64,
) -> Result<Vec<RunRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM {FROM} \
         WHERE (r.target_kind = 'contact' AND r.target_id = $1) OR (r.target_kind IS NULL AND e.contact_id = $1) \
         ORDER BY r.id DESC LIMIT $2"
    )))
    .bind(contact)
    .bind(limit)
    .fetch_all(db.read())
    .await
}

/// Failed runs of an automation since its last activation, plus the failed
/// attempts of its runs still being retried, and the latest error of either.
#[derive(Debug, Clone, Default)]
pub struct ErrorSummary {
    pub count: i64,
    pub last_at: Option<i64>,
    pub last_error: Option<String>,
}

/// Runs waiting to be tried again after failed attempts, and the newest failure.
#[derive(Debug, Clone, Default)]
pub struct Retrying {
    pub runs: i64,
    /// The newest failed attempt's error and when it was.
    pub latest: Option<(String, i64)>,
    /// When the oldest failed attempt of the runs retrying now was.
    pub since: Option<i64>,
}

/// Where a pending run has failed before (the partial index `job_runs_retrying`).
const RETRYING: &str = concat!(
    "status = ",
    run_status!(Pending),
    " AND last_error IS NOT NULL AND attempts > 0"
);

/// The newest and the oldest failed attempt in the stored attempt lists `lists`.
fn attempt_span<'a>(
    lists: impl IntoIterator<Item = &'a String>,
) -> (Option<(String, i64)>, Option<i64>) {
    let attempts: Vec<crate::scheduler::queue::AttemptError> = lists
        .into_iter()
        .flat_map(|l| crate::scheduler::queue::AttemptError::parse_list(l))
        .collect();
    let latest = attempts
        .iter()
        .max_by_key(|a| a.at)
        .map(|a| (a.error.clone(), a.at));
    (latest, attempts.iter().map(|a| a.at).min())
}

/// Runs waiting to be tried again: how many, the newest failure and since when
/// they fail (read from the 200 most recently failed).
pub async fn retrying(db: &Db) -> Result<Retrying, sqlx::Error> {
    let runs: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM job_runs WHERE {RETRYING}"
    )))
    .fetch_one(db.read())
    .await?;
    if runs == 0 {
        return Ok(Retrying::default());
    }
    let lists: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT errors FROM job_runs WHERE {RETRYING} ORDER BY id DESC LIMIT 200"
    )))
    .fetch_all(db.read())
    .await?;
    let (latest, since) = attempt_span(&lists);
    Ok(Retrying {
        runs,
        latest,
        since,
    })
}

/// [`ErrorSummary`] per automation, for the overview.
pub async fn error_summaries(
    db: &Db,
    automations: &[AutomationId],
) -> Result<HashMap<AutomationId, ErrorSummary>, sqlx::Error> {
    let mut out = HashMap::new();
    if automations.is_empty() {
        return Ok(out);
    }
    let marks: Vec<String> = (1..=automations.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        concat!(
            "SELECT r.automation_id, COUNT(*), MAX(r.finished_at) FROM job_runs r JOIN automations a ON a.id = r.automation_id \
         WHERE r.automation_id IN ({}) AND r.status = ",
            run_status!(Failed),
            " AND r.finished_at >= COALESCE(a.activated_at, 0) \
         GROUP BY r.automation_id"
        ),
        marks.join(", ")
    );
    let mut q = sqlx::query_as::<_, (AutomationId, i64, Option<i64>)>(sqlx::AssertSqlSafe(sql));
    for id in automations {
        q = q.bind(*id);
    }
    for (id, count, last_at) in q.fetch_all(db.read()).await? {
        let last_error: Option<String> = sqlx::query_scalar(concat!(
            "SELECT last_error FROM job_runs WHERE automation_id = $1 AND status = ",
            run_status!(Failed),
            " ORDER BY finished_at DESC LIMIT 1"
        ))
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
    // Runs being retried: each failed attempt counts, and the newest failure is
    // the latest error when it is newer than the last failed run.
    let sql = format!(
        "SELECT automation_id, CAST(SUM(attempts) AS BIGINT), MAX(id) FROM job_runs \
         WHERE automation_id IN ({}) AND {RETRYING} GROUP BY automation_id",
        marks.join(", ")
    );
    let mut q = sqlx::query_as::<_, (AutomationId, i64, RunId)>(sqlx::AssertSqlSafe(sql));
    for id in automations {
        q = q.bind(*id);
    }
    for (id, attempts, newest) in q.fetch_all(db.read()).await? {
        let list: Option<String> = sqlx::query_scalar("SELECT errors FROM job_runs WHERE id = $1")
            .bind(newest)
            .fetch_optional(db.read())
            .await?;
        let (latest, _) = attempt_span(&list);
        let summary = out.entry(id).or_default();
        summary.count += attempts;
        if let Some((error, at)) = latest
            && summary.last_at.is_none_or(|last| at > last)
        {
            summary.last_at = Some(at);
            summary.last_error = Some(error);
        }
    }
    Ok(out)
}

/// How many runs are in each status (for `/metrics`).
pub async fn count_by_status(db: &Db) -> Result<Vec<(RunStatus, i64)>, sqlx::Error> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM job_runs GROUP BY status")
            .fetch_all(db.read())
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(s, n)| RunStatus::from_code(&s).map(|s| (s, n)))
        .collect())
}

/// The dashboard's figures: (active automations not ended at `now_ms`, pending,
/// running, done since `since_ms`, failed since `since_ms`).
pub async fn dashboard_counts(
    db: &Db,
    now_ms: i64,
    since_ms: i64,
) -> Result<[i64; 5], sqlx::Error> {
    // Whole hours from the hourly counts; only the part of an hour at the start of
    // the window is counted run by run (at most an hour of runs).
    let first_whole_hour = since_ms.div_euclid(HOUR_MS) + 1;
    let finished_since = |status: &str| {
        format!(
            "(SELECT COUNT(*) FROM job_runs WHERE status = '{status}' AND finished_at > $2 AND finished_at < $3) \
             + (SELECT CAST(COALESCE(SUM(runs), 0) AS BIGINT) FROM run_hours WHERE status = '{status}' AND hour >= $4)"
        )
    };
    // One statement: on a busy machine every round trip waits its turn.
    let sql = format!(
        concat!(
            "SELECT (SELECT COUNT(*) FROM automations WHERE state = 'active' AND (end_at IS NULL OR end_at > $1)), \
                (SELECT COUNT(*) FROM job_runs WHERE status = ",
            run_status!(Pending),
            "), \
                (SELECT COUNT(*) FROM job_runs WHERE status = ",
            run_status!(Running),
            "), \
                {}, {}"
        ),
        finished_since("done"),
        finished_since("failed"),
    );
    let (active, pending, running, done, failed): (i64, i64, i64, i64, i64) =
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(now_ms)
            .bind(since_ms)
            .bind(first_whole_hour * HOUR_MS)
            .bind(first_whole_hour)
            .fetch_one(db.read())
            .await?;
    Ok([active, pending, running, done, failed])
}

/// Finished runs per hour (hours since the epoch) and status, from the hour
/// `from_hour` on: the hourly counts the database keeps as runs finish.
pub async fn finished_per_hour(
    db: &Db,
    from_hour: i64,
) -> Result<Vec<(i64, RunStatus, i64)>, sqlx::Error> {
    let rows: Vec<(i64, String, i64)> =
        sqlx::query_as("SELECT hour, status, runs FROM run_hours WHERE hour >= $1 AND runs <> 0")
            .bind(from_hour)
            .fetch_all(db.read())
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(h, s, n)| RunStatus::from_code(&s).map(|s| (h, s, n)))
        .collect())
}

/// Removes hourly counts that fell to nothing (their runs were pruned or put back
/// in the queue).
pub async fn forget_empty_hours(db: &Db) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM run_hours WHERE runs = 0")
        .execute(db.write())
        .await?
        .rows_affected())
}

/// Runs for `target` done since `since_ms` (a job's rate limit).
pub async fn done_for_target_since(
    db: &Db,
    target: Target,
    since_ms: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(concat!(
        "SELECT COUNT(*) FROM job_runs WHERE target_kind = $1 AND target_id = $2 AND status = ",
        run_status!(Done),
        " AND finished_at > $3"
    ))
    .bind(target.kind.code())
    .bind(target.id)
    .bind(since_ms)
    .fetch_one(db.read())
    .await
}

/// Runs of the job `kinds` done for `target` since `since_ms` (a frequency cap).
pub async fn done_of_kinds_for_target_since(
    db: &Db,
    kinds: &[&str],
    target: Target,
    since_ms: i64,
) -> Result<i64, sqlx::Error> {
    let marks: Vec<String> = (0..kinds.len()).map(|i| format!("${}", i + 4)).collect();
    let sql = format!(
        concat!(
            "SELECT COUNT(*) FROM job_runs WHERE target_kind = $1 AND target_id = $2 AND status = ",
            run_status!(Done),
            " \
         AND finished_at > $3 AND job_kind IN ({})"
        ),
        marks.join(", ")
    );
    let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(target.kind.code())
        .bind(target.id)
        .bind(since_ms);
    for kind in kinds {
        q = q.bind(*kind);
    }
    q.fetch_one(db.read()).await
}

/// The runs of the events with ids from `first` to `last`: (run, event, automation
/// id, automation name, due time).
pub async fn runs_for_events(
    conn: &mut sqlx::AnyConnection,
    first: EventId,
    last: EventId,
) -> Result<Vec<(i64, EventId, i64, String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.id, r.event_id, r.automation_id, a.name, r.due_at FROM job_runs r \
         JOIN automations a ON a.id = r.automation_id WHERE r.event_id BETWEEN $1 AND $2 ORDER BY r.id",
    )
    .bind(first)
    .bind(last)
    .fetch_all(conn)
    .await
}

/// When the scheduler must look again: the next pending run's due time or the
/// next lease to expire, whichever comes first.
pub async fn next_wake_at(db: &Db) -> Result<Option<i64>, sqlx::Error> {
    let (due, lease): (Option<i64>, Option<i64>) = sqlx::query_as(concat!(
        "SELECT (SELECT MIN(due_at) FROM job_runs WHERE status = ",
        run_status!(Pending),
        "), \
                (SELECT MIN(lease_expires_at) FROM job_runs WHERE status = ",
        run_status!(Running),
        ")"
    ))
    // Planned afresh each time: a statement without parameters is planned once per
    // connection, and on PostgreSQL a plan made while the table was nearly empty
    // (a sequential scan) was kept while a burst of events filled it — read in
    // full after every commit that woke the scheduler.
    .persistent(false)
    .fetch_one(db.read())
    .await?;
    Ok(due.into_iter().chain(lease).min())
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

/// Deletes the runs finished before `cutoff_ms` (retention), and the hourly
/// counts left empty; returns how many runs went.
pub async fn prune(db: &Db, cutoff_ms: i64) -> Result<u64, sqlx::Error> {
    let runs = crate::db::in_batches(|| prune_finished(db, cutoff_ms, crate::db::BATCH)).await?;
    forget_empty_hours(db).await?;
    Ok(runs)
}
