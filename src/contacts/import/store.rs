//! Imports in the database: starting one (with its queued run), running it batch
//! by batch (resuming after a restart), its end, and reading it back for pages.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::batch::{BATCH_ROWS, Counts, Options, Parsed, Rejection, parse_row, write_batch};
use super::check::{CheckedFile, Columns, open, parse_header};
use crate::clock::Clock;
use crate::db::{Db, Tx};
use crate::events::catalogue::{EventType, NewEvent};
use crate::scheduler::enqueue::{self, NewRun};
use crate::scheduler::queue;
use crate::types::{EventId, ImportId};

/// The job kind of an import's run: a run this store makes itself (`start`), so
/// its kind is named here, below the job that carries it out.
pub const JOB_KIND: &str = "contact_import";

/// Records the import and queues its run, in one transaction: the scheduler imports
/// the file (`file_path`, deleted at the end) and survives restarts. An import
/// that will email `confirmations` (> 0) confirmation requests waits instead, until
/// staff have seen how many and [`go_ahead`].
pub async fn start(
    db: &Db,
    now: i64,
    file_path: &Path,
    checked: &CheckedFile,
    options: &Options,
    confirmations: i64,
) -> Result<ImportId, sqlx::Error> {
    let mut tx = db.begin().await?;
    let waits = confirmations > 0;
    let id: ImportId = sqlx::query_scalar(
        "INSERT INTO imports (file_name, file_path, status, total_rows, group_id, fire_registered, started_by, \
         started_at, progressed_at, consent_asserted_by, confirmations_expected, waiting) \
         VALUES ($1, $2, 'running', $3, $4, $5, $6, $7, $7, $8, $9, $10) RETURNING id",
    )
    .bind(&options.file_name)
    .bind(file_path.to_string_lossy().into_owned())
    .bind(checked.rows as i64)
    .bind(options.group_id)
    .bind(i64::from(options.fire_registered))
    .bind(options.started_by)
    .bind(now)
    .bind(&options.consent_asserted_by)
    .bind(confirmations)
    .bind(i64::from(waits))
    .fetch_one(&mut *tx)
    .await?;
    if !waits {
        queue_run(&mut tx, now, id).await?;
    }
    db.commit(tx).await?;
    Ok(id)
}

async fn queue_run(tx: &mut Tx, now: i64, id: ImportId) -> Result<(), sqlx::Error> {
    let run = NewRun {
        automation_id: queue::NO_AUTOMATION,
        event_id: EventId(id.0),
        job_kind: JOB_KIND,
        due_at: now,
        skipped_because: None,
    };
    enqueue::enqueue(tx, now, &[run]).await?;
    Ok(())
}

/// Starts an import that waited for staff; `false` when it was not waiting.
pub async fn go_ahead(db: &Db, now: i64, id: ImportId) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let started = sqlx::query(
        "UPDATE imports SET waiting = 0, started_at = $1, progressed_at = $1 WHERE id = $2 AND waiting = 1",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if started {
        queue_run(&mut tx, now, id).await?;
    }
    db.commit(tx).await?;
    Ok(started)
}

/// What a cancelled import says.
pub const CANCELLED: &str = "Cancelled before it started: nothing was imported.";

/// Drops an import that waited for staff, with its file; `false` when it was not waiting.
pub async fn call_off(db: &Db, now: i64, id: ImportId) -> Result<bool, sqlx::Error> {
    let path: Option<Option<String>> = sqlx::query_scalar(
        "UPDATE imports SET status = 'failed', waiting = 0, error = $3, finished_at = $1, progressed_at = $1 \
         WHERE id = $2 AND waiting = 1 RETURNING file_path",
    )
    .bind(now)
    .bind(id)
    .bind(CANCELLED)
    .fetch_optional(db.write())
    .await?;
    if let Some(Some(path)) = &path {
        let _ = tokio::fs::remove_file(path).await;
    }
    Ok(path.is_some())
}

/// How an import ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Done,
    Failed(String),
    /// It had ended before (a run repeated after a crash).
    AlreadyOver,
}

/// Imports the file of import `id`, batch by batch, starting after the rows a
/// previous attempt finished (so a restart resumes, never duplicates); ends with
/// *Contact Import Finished (S)* and deletes the file.
pub async fn run(db: &Db, clock: &dyn Clock, id: ImportId) -> Result<Ended, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Pending {
        status: String,
        waiting: i64,
        file_path: Option<String>,
        rows_done: i64,
        group_id: Option<i64>,
        fire_registered: i64,
        started_by: Option<i64>,
        file_name: String,
        consent_asserted_by: String,
    }
    let row: Option<Pending> = sqlx::query_as(
        "SELECT status, waiting, file_path, rows_done, group_id, fire_registered, started_by, file_name, consent_asserted_by \
         FROM imports WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db.read())
    .await?;
    let Some(row) = row.filter(|r| r.status == "running" && r.waiting == 0) else {
        return Ok(Ended::AlreadyOver);
    };
    let options = Options {
        group_id: row.group_id,
        fire_registered: row.fire_registered != 0,
        started_by: row.started_by.unwrap_or(0),
        file_name: row.file_name,
        consent_asserted_by: row.consent_asserted_by,
    };
    let path = PathBuf::from(row.file_path.unwrap_or_default());
    let failure = import_rows(db, clock, id, &path, row.rows_done as usize, &options).await?;
    let _ = tokio::fs::remove_file(&path).await;
    finish(db, clock.now_ms(), id, &options, failure.as_deref()).await?;
    Ok(match failure {
        Some(f) => Ended::Failed(f),
        None => Ended::Done,
    })
}

/// Reads the file on a blocking thread (its header, then the rows after the first
/// `skip`) and writes it in batches; returns why it stopped early, if it did.
async fn import_rows(
    db: &Db,
    clock: &dyn Clock,
    import_id: ImportId,
    path: &Path,
    skip: usize,
    options: &Options,
) -> Result<Option<String>, sqlx::Error> {
    type Batch = Vec<(u64, csv::StringRecord)>;
    let (sender, mut batches) = tokio::sync::mpsc::channel::<(Columns, Batch)>(4);
    let reader_path = path.to_path_buf();
    let reading = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let mut csv = open(&reader_path, 256 * 1024).map_err(|e| e.to_string())?;
        let columns = parse_header(csv.headers().map_err(|e| e.to_string())?)?;
        let mut records = csv.into_records().skip(skip);
        loop {
            let mut batch = Vec::with_capacity(BATCH_ROWS);
            for record in records.by_ref().take(BATCH_ROWS) {
                let record = record.map_err(|e| e.to_string())?;
                let line = record.position().map_or(0, |p| p.line());
                batch.push((line, record));
            }
            if batch.is_empty() || sender.blocking_send((columns.clone(), batch)).is_err() {
                return Ok(());
            }
        }
    });
    let mut failure = None;
    while let Some((columns, batch)) = batches.recv().await {
        if let Err(e) = write_one(db, clock, import_id, options, &columns, &batch).await {
            tracing::error!(%import_id, error = ?e, "import batch failed");
            failure = Some(
                "A database error stopped the import; rows before it were imported.".to_string(),
            );
            break;
        }
    }
    drop(batches);
    let read = reading.await.map_err(|e| e.to_string()).and_then(|r| r);
    if let Err(e) = read {
        tracing::error!(%import_id, error = %e, "reading the import file failed");
        failure.get_or_insert_with(|| "The file could not be read to the end.".into());
    }
    Ok(failure)
}

/// Writes one batch and the import's progress in one transaction.
async fn write_one(
    db: &Db,
    clock: &dyn Clock,
    import_id: ImportId,
    options: &Options,
    columns: &Columns,
    batch: &[(u64, csv::StringRecord)],
) -> Result<(), sqlx::Error> {
    let (rows, rejections): (Vec<_>, Vec<_>) = batch
        .iter()
        .map(|(line, rec)| parse_row(columns, *line, rec))
        .partition(Result::is_ok);
    let rows: Vec<Parsed> = rows.into_iter().filter_map(Result::ok).collect();
    let rejections: Vec<Rejection> = rejections.into_iter().filter_map(Result::err).collect();
    let now = clock.now_ms();
    let mut tx = db.begin().await?;
    let counts = write_batch(&mut tx, import_id.0, options, rows, rejections, now).await?;
    sqlx::query(
        "UPDATE imports SET rows_done = rows_done + $1, created = created + $2, updated = updated + $3, \
         rejected = rejected + $4, progressed_at = $5, joined = joined + $7, events_fired = events_fired + $8, \
         pending = pending + $9 WHERE id = $6",
    )
    .bind(batch.len() as i64)
    .bind(counts.created)
    .bind(counts.updated)
    .bind(counts.rejected)
    .bind(now)
    .bind(import_id)
    .bind(counts.joined)
    .bind(counts.events_fired)
    .bind(counts.pending)
    .execute(&mut *tx)
    .await?;
    for (automation, runs) in &counts.started.by_automation {
        sqlx::query(
            "INSERT INTO import_runs (import_id, automation_id, runs) VALUES ($1, $2, $3) \
             ON CONFLICT (import_id, automation_id) DO UPDATE SET runs = import_runs.runs + excluded.runs",
        )
        .bind(import_id)
        .bind(automation)
        .bind(*runs as i64)
        .execute(&mut *tx)
        .await?;
    }
    db.commit(tx).await
}

async fn finish(
    db: &Db,
    now: i64,
    import_id: ImportId,
    options: &Options,
    failure: Option<&str>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    let done = sqlx::query(
        "UPDATE imports SET status = $1, error = $2, finished_at = $3, progressed_at = $3 WHERE id = $4 AND status = 'running'",
    )
    .bind(if failure.is_some() { "failed" } else { "done" })
    .bind(failure)
    .bind(now)
    .bind(import_id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(());
    }
    let (created, updated, rejected, joined, events_fired): (i64, i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT created, updated, rejected, joined, events_fired FROM imports WHERE id = $1",
        )
        .bind(import_id)
        .fetch_one(&mut *tx)
        .await?;
    let totals = Counts {
        created,
        updated,
        rejected,
        joined,
        pending: 0,
        events_fired,
        started: Default::default(),
    };
    record_finished(
        &mut tx,
        now,
        import_id,
        options.started_by,
        failure.is_none(),
        totals,
    )
    .await?;
    db.commit(tx).await?;
    tracing::info!(%import_id, created, updated, rejected, "import finished");
    Ok(())
}

async fn record_finished(
    tx: &mut Tx,
    now: i64,
    import_id: ImportId,
    started_by: i64,
    success: bool,
    totals: Counts,
) -> Result<crate::types::EventId, sqlx::Error> {
    let event = NewEvent {
        kind: EventType::ContactImportFinished,
        contact_id: None,
        system_user_id: Some(started_by),
        group_id: None,
        params: serde_json::json!({
            "import_id": import_id.0,
            "success": success,
            "created": totals.created,
            "updated": totals.updated,
            "rejected": totals.rejected,
        }),
    };
    crate::intake::events::record(tx, now, &event).await
}

/// An import as its page shows it.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Import {
    pub id: i64,
    pub file_name: String,
    pub status: String,
    pub total_rows: i64,
    pub rows_done: i64,
    pub created: i64,
    pub updated: i64,
    pub rejected: i64,
    /// Contacts new to the import's group, and the group (its name).
    pub joined: i64,
    pub group_name: Option<String>,
    /// Contacts asked to confirm the group (double opt-in), and how many
    /// confirmation emails staff were told it would send before it started.
    pub pending: i64,
    pub confirmations_expected: i64,
    /// Who asserted the contacts' consent to the group (empty: nobody).
    pub consent_asserted_by: String,
    /// 1: waiting for staff to start it.
    pub waiting: i64,
    /// Registered to System (C) events fired.
    pub events_fired: i64,
    pub started_at: i64,
    pub progressed_at: i64,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
}

impl Import {
    pub fn is_running(&self) -> bool {
        self.status == "running" && self.waiting == 0
    }
    /// Waiting for staff to start it (it will send confirmation emails).
    pub fn is_waiting(&self) -> bool {
        self.waiting != 0
    }
    /// Cancelled by staff while it waited.
    pub fn is_cancelled(&self) -> bool {
        self.error.as_deref() == Some(CANCELLED)
    }
    /// Rows per second so far.
    pub fn rate(&self) -> i64 {
        let end = self.finished_at.unwrap_or(self.progressed_at);
        let secs = ((end - self.started_at) as f64 / 1000.0).max(0.001);
        (self.rows_done as f64 / secs) as i64
    }
    pub fn percent(&self) -> i64 {
        if self.total_rows == 0 {
            100
        } else {
            self.rows_done * 100 / self.total_rows
        }
    }
}

const IMPORT_COLUMNS: &str = "i.id, i.file_name, i.status, i.total_rows, i.rows_done, i.created, i.updated, \
     i.rejected, i.joined, g.name AS group_name, i.pending, i.confirmations_expected, i.consent_asserted_by, i.waiting, i.events_fired, i.started_at, i.progressed_at, i.finished_at, i.error \
     FROM imports i LEFT JOIN contact_groups g ON g.id = i.group_id";

pub async fn find(db: &Db, id: i64) -> Result<Option<Import>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {IMPORT_COLUMNS} WHERE i.id = $1"
    )))
    .bind(id)
    .fetch_optional(db.read())
    .await
}

pub async fn recent(db: &Db, limit: i64) -> Result<Vec<Import>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {IMPORT_COLUMNS} ORDER BY i.id DESC LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(db.read())
    .await
}

/// The runs an import's events started, per automation: its id and name (`None`
/// once deleted) and the count, most first.
pub async fn runs_started(
    db: &Db,
    id: i64,
) -> Result<Vec<(i64, Option<String>, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.automation_id, a.name, r.runs FROM import_runs r \
         LEFT JOIN automations a ON a.id = r.automation_id WHERE r.import_id = $1 \
         ORDER BY r.runs DESC, r.automation_id",
    )
    .bind(id)
    .fetch_all(db.read())
    .await
}

pub async fn rejections(db: &Db, id: i64, limit: i64) -> Result<Vec<Rejection>, sqlx::Error> {
    sqlx::query_as("SELECT line, email, reason FROM import_rejections WHERE import_id = $1 ORDER BY line LIMIT $2")
        .bind(id)
        .bind(limit)
        .fetch_all(db.read())
        .await
}
