//! Runs that ended done, written many per statement: what the worker does with
//! them, so a fast job costs a fraction of a write — with the audit notes and the
//! deliveries (the emails it sent) they carry, in the same statement or
//! transaction. Part of the queue: with [`crate::scheduler::queue`] the only
//! writer of `job_runs`' outcomes.

use crate::run_status;

use crate::audit::Action;
use crate::db::{Backend, Db};
use crate::deliveries::Sent;
use crate::scheduler::status::Target;
use crate::types::RunId;

/// An entry a done run leaves in the audit log (by [`crate::audit::SCHEDULER`], from no IP). It
/// is written with the run's completion — in the same statement on PostgreSQL, the
/// same transaction on SQLite — rather than in a write of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditNote {
    pub action: Action,
    pub target: String,
    pub detail: String,
}

/// What a done run's history says: its `detail`, or "delivered" when it sent the
/// email `message_id`, or "done".
fn done_outcome<'a>(message_id: Option<&str>, detail: Option<&'a str>) -> &'a str {
    detail.unwrap_or(if message_id.is_some() {
        "delivered"
    } else {
        "done"
    })
}

/// A done run, as the worker hands it to [`complete_many`].
#[derive(Debug, Clone)]
pub struct Completed {
    pub run: RunId,
    pub target: Target,
    /// The emails it sent.
    pub sent: Vec<Sent>,
    pub detail: Option<String>,
    pub audit: Option<Box<AuditNote>>,
}

impl Completed {
    /// The Message-ID the run keeps: its last email's.
    fn message_id(&self) -> Option<&str> {
        self.sent.last().map(|s| s.smtp_message_id.as_str())
    }
}

/// Rows per multi-row completion (6 parameters each, 3 more with an audit note).
const COMPLETE_ROWS: usize = 500;
/// Deliveries per multi-row completion (7 parameters each): with the rows, well
/// under SQLite's 32,766 parameters.
const COMPLETE_DELIVERIES: usize = 2000;

/// `done` in chunks of at most [`COMPLETE_ROWS`] runs and [`COMPLETE_DELIVERIES`]
/// emails.
fn chunks(done: &[Completed]) -> Vec<&[Completed]> {
    let mut out = Vec::new();
    let (mut start, mut emails) = (0, 0);
    for (i, c) in done.iter().enumerate() {
        if i > start && (i - start == COMPLETE_ROWS || emails + c.sent.len() > COMPLETE_DELIVERIES)
        {
            out.push(&done[start..i]);
            (start, emails) = (i, 0);
        }
        emails += c.sent.len();
    }
    if start < done.len() {
        out.push(&done[start..]);
    }
    out
}

type AnyQuery = sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>;

/// Writes runs that ended done (one statement per 500): what the worker does with
/// them, so a fast job costs a fraction of a write. Each run's outcome is its
/// `detail`, or "delivered" when it sent an email, or "done"; only a run `owner`
/// still holds changes. Their audit notes and deliveries are written with them —
/// they record work that was done, whoever holds the run now.
pub async fn complete_many(
    db: &Db,
    now_ms: i64,
    owner: &str,
    done: &[Completed],
) -> Result<(), sqlx::Error> {
    for chunk in chunks(done) {
        let n = chunk.len() * 6;
        // The owner is a column of each row, compared in the join, not a filter on
        // job_runs: PostgreSQL estimates `lease_owner = $x` from statistics taken
        // when no run was leased (one row), and then scanned every run once per
        // row of the list — 70 to 300 ms a statement with 20,000 runs.
        // `$1` the time, then the rows: numbered in the order they appear, as SQLite
        // binds a long statement fastest (`Backend::positional`).
        let update = db.backend.positional(format!(
            concat!("UPDATE job_runs SET status = ", run_status!(Done), ", outcome = v.column2, message_id = COALESCE(v.column3, job_runs.message_id), \
             target_kind = v.column4, target_id = v.column5, finished_at = $1, lease_owner = NULL, lease_expires_at = NULL \
             FROM (VALUES {}) AS v WHERE job_runs.id = v.column1 AND job_runs.lease_owner = v.column6"),
            crate::db::placeholders_from(2, chunk.len(), 6),
        ));
        let notes: Vec<&AuditNote> = chunk.iter().filter_map(|c| c.audit.as_deref()).collect();
        let sent: Vec<(RunId, &Sent)> = chunk
            .iter()
            .flat_map(|c| c.sent.iter().map(move |s| (c.run, s)))
            .collect();
        let bind_update = |q: AnyQuery| {
            let mut q = q.bind(now_ms);
            for c in chunk {
                q = q
                    .bind(c.run)
                    .bind(done_outcome(c.message_id(), c.detail.as_deref()).to_string())
                    .bind(c.message_id().map(str::to_string))
                    .bind(c.target.kind.code())
                    .bind(c.target.id)
                    .bind(owner.to_string());
            }
            q
        };
        let bind_notes = |mut q: AnyQuery| {
            for note in &notes {
                q = crate::audit::bind_note(q, note.action, &note.target, &note.detail);
            }
            q
        };
        let bind_sent = |mut q: AnyQuery| {
            for (run, s) in &sent {
                q = crate::deliveries::bind(q, Some(run.0), s);
            }
            q
        };
        match (notes.is_empty() && sent.is_empty(), db.backend) {
            (true, _) => {
                bind_update(sqlx::query(sqlx::AssertSqlSafe(update)))
                    .execute(db.write())
                    .await?;
            }
            // One statement: the entries are inserted whatever the update finds.
            (false, Backend::Postgres) => {
                // The update's time (`$1`) is the entries' too; their values follow.
                let mut with = Vec::new();
                let mut next = n + 2;
                if !notes.is_empty() {
                    let insert = crate::audit::scheduler_entries_sql(notes.len(), 1, next);
                    with.push(format!("noted AS ({insert})"));
                    next += 3 * notes.len();
                }
                if !sent.is_empty() {
                    let insert = crate::deliveries::insert_sql(sent.len(), 1, next);
                    with.push(format!("sent AS ({insert})"));
                }
                let sql = format!("WITH {} {update}", with.join(", "));
                bind_sent(bind_notes(bind_update(sqlx::query(sqlx::AssertSqlSafe(
                    sql,
                )))))
                .execute(db.write())
                .await?;
            }
            (false, Backend::Sqlite) => {
                let mut tx = db.begin().await?;
                bind_update(sqlx::query(sqlx::AssertSqlSafe(update)))
                    .execute(&mut *tx)
                    .await?;
                // Each insert's own numbering: `$1` the time, then its rows.
                if !notes.is_empty() {
                    let insert = crate::audit::scheduler_entries_sql(notes.len(), 1, 2);
                    bind_notes(sqlx::query(sqlx::AssertSqlSafe(insert)).bind(now_ms))
                        .execute(&mut *tx)
                        .await?;
                }
                if !sent.is_empty() {
                    let insert = crate::deliveries::insert_sql(sent.len(), 1, 2);
                    bind_sent(sqlx::query(sqlx::AssertSqlSafe(insert)).bind(now_ms))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }
        }
        for note in notes {
            crate::audit::traced(crate::audit::SCHEDULER, note.action, &note.target, "");
        }
    }
    Ok(())
}
