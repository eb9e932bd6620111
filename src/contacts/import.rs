//! CSV import: the upload is checked as a whole first (so a bad file changes
//! nothing), then imported in the background in batched transactions, with its
//! progress stored so any page (or instance) can show it.
//!
//! Header row: `email` (required), `first_name`, `last_name`; every other column is
//! an attribute. Empty cells leave existing values as they are. A row that repeats
//! an email seen earlier in the file is rejected, as is a row with a bad email, an
//! over-long value or the wrong number of fields — with its line number.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use futures_util::StreamExt;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use super::groups::{self, Group};
use super::{MAX_ATTRIBUTE_VALUE_CHARS, parse_name_part, search_key};
use crate::audit::{self, Action, Actor};
use crate::clock::Clock;
use crate::db::{Db, Tx};
use crate::events;
use crate::events::catalogue::{EventType, NewEvent, Source};
use crate::state::AppState;
use crate::types::EmailAddress;
use crate::types::parse_attribute_name;
use crate::web::{AppError, CurrentUser, PageContext, client_ip, redirect, render};

/// The largest file accepted.
pub const MAX_UPLOAD_BYTES: u64 = 50 * 1024 * 1024;
/// Rows per transaction.
pub const BATCH_ROWS: usize = 1000;
/// Rows per multi-row statement (keeps well under both engines' parameter limits).
const ROWS_PER_STATEMENT: usize = 100;
/// An import with no progress for this long was cut short by a restart.
const STALE_AFTER_MS: i64 = 2 * 60 * 1000;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/contacts/import", web::get().to(upload_page))
        .route("/contacts/import", web::post().to(upload))
        .route("/contacts/imports/{id}", web::get().to(import_page))
        .route("/contacts/imports/{id}/status", web::get().to(status_json));
}

/// What the header row says about the columns.
#[derive(Debug, Clone)]
pub struct Columns {
    pub email: usize,
    pub first_name: Option<usize>,
    pub last_name: Option<usize>,
    /// (column index, attribute name)
    pub attributes: Vec<(usize, String)>,
    pub width: usize,
}

/// A file that passed the whole-file check.
#[derive(Debug, Clone)]
pub struct CheckedFile {
    pub columns: Columns,
    pub rows: u64,
}

fn reader(file: impl Read) -> csv::Reader<impl Read> {
    csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(file)
}

/// Reads the header row into [`Columns`].
pub fn parse_header(header: &csv::StringRecord) -> Result<Columns, String> {
    let mut email = None;
    let mut first_name = None;
    let mut last_name = None;
    let mut attributes = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, raw) in header.iter().enumerate() {
        let name = raw.trim_start_matches('\u{feff}').trim();
        if !seen.insert(name.to_lowercase()) {
            return Err(format!(
                "The column {name:?} appears twice in the header row."
            ));
        }
        match name.to_lowercase().as_str() {
            "email" => email = Some(i),
            "first_name" => first_name = Some(i),
            "last_name" => last_name = Some(i),
            _ => {
                let n = parse_attribute_name(name)
                    .map_err(|e| format!("Column {} of the header row ({name:?}): {e}", i + 1))?;
                attributes.push((i, n));
            }
        }
    }
    let email = email.ok_or("The header row has no \"email\" column.")?;
    Ok(Columns {
        email,
        first_name,
        last_name,
        attributes,
        width: header.len(),
    })
}

/// Checks the whole file: UTF-8, CSV, a header with an `email` column, at least
/// one row, nothing binary. Runs on a blocking thread.
pub fn check_file(path: &Path) -> Result<CheckedFile, String> {
    let file = std::fs::File::open(path)
        .map_err(|_| "The uploaded file could not be read.".to_string())?;
    let mut csv = reader(std::io::BufReader::new(file));
    let describe = |e: csv::Error| match e.kind() {
        csv::ErrorKind::Utf8 { pos, .. } => format!(
            "The file is not UTF-8 text (line {}). Save it as \"CSV UTF-8\" and upload it again.",
            pos.as_ref().map_or(0, |p| p.line())
        ),
        _ => format!("The file is not valid CSV: {e}"),
    };
    let header = csv.headers().map_err(describe)?.clone();
    if header.iter().all(|h| h.trim().is_empty()) {
        return Err("The file is empty.".into());
    }
    if header.iter().any(|h| h.contains('\0')) {
        return Err("This looks like a binary file, not a CSV file.".into());
    }
    let columns = parse_header(&header)?;
    let mut rows = 0u64;
    let mut record = csv::StringRecord::new();
    while csv.read_record(&mut record).map_err(describe)? {
        if record.iter().any(|f| f.contains('\0')) {
            return Err("This looks like a binary file, not a CSV file.".into());
        }
        rows += 1;
    }
    if rows == 0 {
        return Err("The file has a header row but no contacts below it.".into());
    }
    Ok(CheckedFile { columns, rows })
}

/// What to do with each row besides creating or updating the contact.
#[derive(Debug, Clone)]
pub struct Options {
    pub group_id: Option<i64>,
    pub fire_registered: bool,
    pub started_by: i64,
}

/// A row ready to write.
#[derive(Debug)]
struct Parsed {
    line: u64,
    email: String,
    first_name: Option<String>,
    last_name: Option<String>,
    attributes: Vec<(String, String)>,
}

/// A refused row.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Rejection {
    pub line: i64,
    pub email: String,
    pub reason: String,
}

fn parse_row(
    columns: &Columns,
    line: u64,
    record: &csv::StringRecord,
) -> Result<Parsed, Rejection> {
    let raw_email = record.get(columns.email).unwrap_or("").trim().to_string();
    let reject = |reason: String| Rejection {
        line: line as i64,
        email: raw_email.chars().take(254).collect(),
        reason,
    };
    if record.len() != columns.width {
        return Err(reject(format!(
            "The row has {} fields; the header row has {}.",
            record.len(),
            columns.width
        )));
    }
    let email = EmailAddress::parse(&raw_email).map_err(|e| reject(e.0))?;
    let name = |idx: Option<usize>, what: &str| -> Result<Option<String>, Rejection> {
        match idx
            .and_then(|i| record.get(i))
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            None => Ok(None),
            Some(v) => parse_name_part(v, what).map(Some).map_err(|e| reject(e.0)),
        }
    };
    let first_name = name(columns.first_name, "first name")?;
    let last_name = name(columns.last_name, "last name")?;
    let mut attributes = Vec::new();
    for (i, attr) in &columns.attributes {
        let value = record.get(*i).unwrap_or("").trim();
        if value.is_empty() {
            continue;
        }
        if value.chars().count() > MAX_ATTRIBUTE_VALUE_CHARS {
            return Err(reject(format!(
                "The value of {attr:?} has more than {MAX_ATTRIBUTE_VALUE_CHARS} characters."
            )));
        }
        attributes.push((attr.clone(), value.to_string()));
    }
    Ok(Parsed {
        line,
        email: email.as_str().to_string(),
        first_name,
        last_name,
        attributes,
    })
}

/// `($1, $2, $3), ($4, $5, $6)` for `rows` rows of `cols` columns.
pub fn placeholders(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (1..=cols).map(|c| format!("${}", r * cols + c)).collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Counts of one batch.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    created: i64,
    updated: i64,
    rejected: i64,
}

/// Writes one batch of rows in the open transaction.
async fn write_batch(
    tx: &mut Tx,
    import_id: i64,
    options: &Options,
    rows: Vec<Parsed>,
    mut rejections: Vec<Rejection>,
    now: i64,
) -> Result<Counts, sqlx::Error> {
    // Repeats inside the batch: the first one wins.
    let mut first_line: HashMap<String, u64> = HashMap::new();
    let mut unique = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(line) = first_line.get(&row.email) {
            rejections.push(Rejection {
                line: row.line as i64,
                email: row.email.clone(),
                reason: format!("This email already appears on line {line}."),
            });
        } else {
            first_line.insert(row.email.clone(), row.line);
            unique.push(row);
        }
    }
    // Which contacts exist already (and whether this import touched them before).
    let mut existing: HashMap<String, (i64, Option<i64>)> = HashMap::new();
    for chunk in unique.chunks(ROWS_PER_STATEMENT * 5) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, email, last_import_id FROM contacts WHERE email IN ({})",
            marks.join(", ")
        );
        let mut q = sqlx::query_as::<_, (i64, String, Option<i64>)>(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            q = q.bind(row.email.clone());
        }
        for (id, email, last) in q.fetch_all(&mut **tx).await? {
            existing.insert(email, (id, last));
        }
    }
    let mut inserts = Vec::new();
    let mut updates = Vec::new();
    for row in unique {
        match existing.get(&row.email) {
            Some((_, Some(last))) if *last == import_id => rejections.push(Rejection {
                line: row.line as i64,
                email: row.email.clone(),
                reason: "This email already appears earlier in the file.".into(),
            }),
            Some((id, _)) => updates.push((*id, row)),
            None => inserts.push(row),
        }
    }
    let mut ids: HashMap<String, i64> = HashMap::new();
    let mut new_ids = Vec::new();
    for chunk in inserts.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO contacts (email, first_name, last_name, first_key, last_key, status, last_import_id, created_at, updated_at) \
             VALUES {} RETURNING id, email",
            placeholders(chunk.len(), 9)
        );
        let mut q = sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            let first = row.first_name.clone().unwrap_or_default();
            let last = row.last_name.clone().unwrap_or_default();
            q = q
                .bind(row.email.clone())
                .bind(first.clone())
                .bind(last.clone())
                .bind(search_key(&first))
                .bind(search_key(&last))
                .bind("active")
                .bind(import_id)
                .bind(now)
                .bind(now);
        }
        for (id, email) in q.fetch_all(&mut **tx).await? {
            new_ids.push(id);
            ids.insert(email, id);
        }
    }
    for chunk in updates.chunks(ROWS_PER_STATEMENT) {
        // Empty cells arrive as NULL and keep the stored value.
        let sql = format!(
            "UPDATE contacts SET first_name = COALESCE(v.column2, contacts.first_name), \
             last_name = COALESCE(v.column3, contacts.last_name), \
             first_key = COALESCE(v.column4, contacts.first_key), \
             last_key = COALESCE(v.column5, contacts.last_key), \
             last_import_id = v.column6, updated_at = v.column7 \
             FROM (VALUES {}) AS v WHERE contacts.id = v.column1",
            placeholders(chunk.len(), 7)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, row) in chunk {
            q = q
                .bind(*id)
                .bind(row.first_name.clone())
                .bind(row.last_name.clone())
                .bind(row.first_name.as_deref().map(search_key))
                .bind(row.last_name.as_deref().map(search_key))
                .bind(import_id)
                .bind(now);
            ids.insert(row.email.clone(), *id);
        }
        q.execute(&mut **tx).await?;
    }
    let written: Vec<(i64, &Parsed)> = inserts
        .iter()
        .chain(updates.iter().map(|(_, r)| r))
        .filter_map(|r| ids.get(&r.email).map(|id| (*id, r)))
        .collect();
    let attributes: Vec<(i64, &String, &String)> = written
        .iter()
        .flat_map(|(id, r)| r.attributes.iter().map(move |(n, v)| (*id, n, v)))
        .collect();
    for chunk in attributes.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO contact_attributes (contact_id, name, value) VALUES {} \
             ON CONFLICT (contact_id, name) DO UPDATE SET value = excluded.value",
            placeholders(chunk.len(), 3)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, name, value) in chunk {
            q = q.bind(*id).bind((*name).clone()).bind((*value).clone());
        }
        q.execute(&mut **tx).await?;
    }
    if let Some(group_id) = options.group_id {
        for chunk in written.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO group_members (group_id, contact_id, created_at) VALUES {} ON CONFLICT DO NOTHING",
                placeholders(chunk.len(), 3)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (id, _) in chunk {
                q = q.bind(group_id).bind(*id).bind(now);
            }
            q.execute(&mut **tx).await?;
        }
    }
    if options.fire_registered {
        // Through the intake, so automations on Registered to System (C) run.
        for id in &new_ids {
            let mut event = NewEvent::registered(*id, Source::Import);
            event.params["import_id"] = serde_json::json!(import_id);
            events::store::record(tx, now, &event).await?;
        }
    }
    for chunk in rejections.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO import_rejections (import_id, line, email, reason) VALUES {}",
            placeholders(chunk.len(), 4)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            q = q
                .bind(import_id)
                .bind(r.line)
                .bind(r.email.clone())
                .bind(r.reason.clone());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(Counts {
        created: new_ids.len() as i64,
        updated: updates.len() as i64,
        rejected: rejections.len() as i64,
    })
}

/// Creates the import record; the caller then runs [`run`].
pub async fn start(
    db: &Db,
    now: i64,
    file_name: &str,
    checked: &CheckedFile,
    options: &Options,
) -> Result<i64, sqlx::Error> {
    let mut tx = db.begin().await?;
    let id = sqlx::query_scalar(
        "INSERT INTO imports (file_name, status, total_rows, group_id, fire_registered, started_by, started_at, progressed_at) \
         VALUES ($1, 'running', $2, $3, $4, $5, $6, $6) RETURNING id",
    )
    .bind(file_name)
    .bind(checked.rows as i64)
    .bind(options.group_id)
    .bind(i64::from(options.fire_registered))
    .bind(options.started_by)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Imports the checked file, batch by batch; ends with *Contact Import Finished
/// (S)*. The file is deleted at the end.
pub async fn run(
    db: Db,
    clock: Arc<dyn Clock>,
    import_id: i64,
    path: PathBuf,
    columns: Columns,
    options: Options,
) {
    let (sender, mut batches) = tokio::sync::mpsc::channel::<Vec<(u64, csv::StringRecord)>>(4);
    let reader_path = path.clone();
    let reading = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let file = std::fs::File::open(&reader_path).map_err(|e| e.to_string())?;
        let mut csv = reader(std::io::BufReader::with_capacity(256 * 1024, file));
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        let mut record = csv::StringRecord::new();
        while csv.read_record(&mut record).map_err(|e| e.to_string())? {
            let line = record.position().map_or(0, |p| p.line());
            batch.push((line, std::mem::take(&mut record)));
            if batch.len() == BATCH_ROWS
                && sender.blocking_send(std::mem::take(&mut batch)).is_err()
            {
                return Ok(());
            }
        }
        if !batch.is_empty() {
            let _ = sender.blocking_send(batch);
        }
        Ok(())
    });
    let mut totals = Counts::default();
    let mut failure: Option<String> = None;
    while let Some(batch) = batches.recv().await {
        let n = batch.len() as i64;
        let (rows, rejections): (Vec<_>, Vec<_>) = batch
            .iter()
            .map(|(line, rec)| parse_row(&columns, *line, rec))
            .partition(Result::is_ok);
        let rows: Vec<Parsed> = rows.into_iter().filter_map(Result::ok).collect();
        let rejections: Vec<Rejection> = rejections.into_iter().filter_map(Result::err).collect();
        let result: Result<Counts, sqlx::Error> = async {
            let now = clock.now_ms();
            let mut tx = db.begin().await?;
            let counts = write_batch(&mut tx, import_id, &options, rows, rejections, now).await?;
            sqlx::query(
                "UPDATE imports SET rows_done = rows_done + $1, created = created + $2, updated = updated + $3, \
                 rejected = rejected + $4, progressed_at = $5 WHERE id = $6",
            )
            .bind(n)
            .bind(counts.created)
            .bind(counts.updated)
            .bind(counts.rejected)
            .bind(now)
            .bind(import_id)
            .execute(&mut *tx)
            .await?;
            db.commit(tx).await?;
            Ok(counts)
        }
        .await;
        match result {
            Ok(c) => {
                totals.created += c.created;
                totals.updated += c.updated;
                totals.rejected += c.rejected;
            }
            Err(e) => {
                tracing::error!(import_id, error = ?e, "import batch failed");
                failure = Some(
                    "A database error stopped the import; rows before it were imported.".into(),
                );
                break;
            }
        }
    }
    drop(batches);
    if let Ok(Err(e)) = reading.await {
        tracing::error!(import_id, error = %e, "reading the import file failed");
        failure.get_or_insert_with(|| "The file could not be read to the end.".into());
    }
    let _ = tokio::fs::remove_file(&path).await;
    if let Err(e) = finish(
        &db,
        clock.now_ms(),
        import_id,
        &options,
        totals,
        failure.as_deref(),
    )
    .await
    {
        tracing::error!(import_id, error = ?e, "recording the end of an import failed");
    }
}

async fn finish(
    db: &Db,
    now: i64,
    import_id: i64,
    options: &Options,
    totals: Counts,
    failure: Option<&str>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE imports SET status = $1, error = $2, finished_at = $3, progressed_at = $3 WHERE id = $4")
        .bind(if failure.is_some() { "failed" } else { "done" })
        .bind(failure)
        .bind(now)
        .bind(import_id)
        .execute(&mut *tx)
        .await?;
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
    tracing::info!(
        import_id,
        created = totals.created,
        updated = totals.updated,
        rejected = totals.rejected,
        "import finished"
    );
    Ok(())
}

async fn record_finished(
    tx: &mut Tx,
    now: i64,
    import_id: i64,
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
            "import_id": import_id,
            "success": success,
            "created": totals.created,
            "updated": totals.updated,
            "rejected": totals.rejected,
        }),
    };
    events::store::record(tx, now, &event).await
}

/// Marks imports that stopped making progress (their process ended) as failed.
pub async fn fail_stale(db: &Db, now: i64) -> Result<(), sqlx::Error> {
    let stale: Vec<(i64, i64, i64, i64, Option<i64>)> = sqlx::query_as(
        "SELECT id, created, updated, rejected, started_by FROM imports WHERE status = 'running' AND progressed_at < $1",
    )
    .bind(now - STALE_AFTER_MS)
    .fetch_all(db.read())
    .await?;
    for (id, created, updated, rejected, started_by) in stale {
        let mut tx = db.begin().await?;
        let done = sqlx::query(
            "UPDATE imports SET status = 'failed', finished_at = $1, error = $2 WHERE id = $3 AND status = 'running'",
        )
        .bind(now)
        .bind("Herald stopped during the import. Import the file again: rows already imported are updated, not duplicated.")
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            let totals = Counts {
                created,
                updated,
                rejected,
            };
            record_finished(&mut tx, now, id, started_by.unwrap_or(0), false, totals).await?;
        }
        db.commit(tx).await?;
    }
    Ok(())
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
    pub started_at: i64,
    pub progressed_at: i64,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
}

impl Import {
    pub fn is_running(&self) -> bool {
        self.status == "running"
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
    pub fn started(&self) -> String {
        crate::clock::format_utc(self.started_at)
    }
}

const IMPORT_COLUMNS: &str = "id, file_name, status, total_rows, rows_done, created, updated, rejected, started_at, progressed_at, finished_at, error";

pub async fn find(db: &Db, id: i64) -> Result<Option<Import>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {IMPORT_COLUMNS} FROM imports WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db.read())
    .await
}

pub async fn recent(db: &Db, limit: i64) -> Result<Vec<Import>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {IMPORT_COLUMNS} FROM imports ORDER BY id DESC LIMIT $1"
    )))
    .bind(limit)
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

#[derive(Template)]
#[template(path = "contacts/import.html")]
struct UploadPage {
    ctx: PageContext,
    groups: Vec<Group>,
    imports: Vec<Import>,
    error: Option<String>,
}

async fn upload_page(
    state: web::Data<AppState>,
    ctx: PageContext,
) -> Result<HttpResponse, AppError> {
    upload_form(&state, ctx, StatusCode::OK, None).await
}

async fn upload_form(
    state: &AppState,
    ctx: PageContext,
    status: StatusCode,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let groups = groups::list(&state.db).await?;
    let imports = recent(&state.db, 20).await?;
    render(
        status,
        &UploadPage {
            ctx,
            groups,
            imports,
            error,
        },
    )
}

/// A file being uploaded: deleted unless handed on.
struct Upload(PathBuf);

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

enum UploadError {
    TooLarge,
    Bad(String),
}

/// Reads the multipart form: the file to a temporary path, and the options.
async fn receive(
    dir: &Path,
    mut payload: Multipart,
) -> Result<(Upload, String, Option<String>, bool), UploadError> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|_| UploadError::Bad("The upload could not be stored.".into()))?;
    let mut upload = Upload(PathBuf::new());
    let mut file_name = String::new();
    let mut group = None;
    let mut fire = false;
    let broken = |_| UploadError::Bad("The upload was interrupted or is not a form upload.".into());
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(broken)?;
        let field_name = field.name().unwrap_or("").to_string();
        match field_name.as_str() {
            "file" => {
                file_name = field
                    .content_disposition()
                    .and_then(|cd| cd.get_filename())
                    .unwrap_or("upload.csv")
                    .chars()
                    .take(200)
                    .collect();
                let mut random = [0u8; 8];
                rand::RngExt::fill(&mut rand::rng(), &mut random);
                let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
                upload = Upload(dir.join(format!("upload-{name}.csv")));
                let mut out = tokio::fs::File::create(&upload.0)
                    .await
                    .map_err(|_| UploadError::Bad("The upload could not be stored.".into()))?;
                let mut size = 0u64;
                while let Some(chunk) = field.next().await {
                    let chunk = chunk.map_err(broken)?;
                    size += chunk.len() as u64;
                    if size > MAX_UPLOAD_BYTES {
                        return Err(UploadError::TooLarge);
                    }
                    out.write_all(&chunk)
                        .await
                        .map_err(|_| UploadError::Bad("The upload could not be stored.".into()))?;
                }
                out.flush()
                    .await
                    .map_err(|_| UploadError::Bad("The upload could not be stored.".into()))?;
            }
            other => {
                let mut value = Vec::new();
                while let Some(chunk) = field.next().await {
                    value.extend_from_slice(&chunk.map_err(broken)?);
                    if value.len() > 1024 {
                        return Err(UploadError::Bad(format!(
                            "The field {other:?} is too long."
                        )));
                    }
                }
                let value = String::from_utf8_lossy(&value).trim().to_string();
                match other {
                    "group_id" if !value.is_empty() => group = Some(value),
                    "fire_registered" => fire = true,
                    _ => {}
                }
            }
        }
    }
    if upload.0.as_os_str().is_empty() {
        return Err(UploadError::Bad("Choose a CSV file to import.".into()));
    }
    Ok((upload, file_name, group, fire))
}

async fn upload(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: PageContext,
    me: CurrentUser,
    payload: Multipart,
) -> Result<HttpResponse, AppError> {
    let dir = state.config.data_dir.join("imports");
    let (upload, file_name, group, fire) = match receive(&dir, payload).await {
        Ok(parts) => parts,
        Err(UploadError::TooLarge) => {
            let msg = format!(
                "The file is larger than {} MB.",
                MAX_UPLOAD_BYTES / 1024 / 1024
            );
            return upload_form(&state, ctx, StatusCode::PAYLOAD_TOO_LARGE, Some(msg)).await;
        }
        Err(UploadError::Bad(msg)) => {
            return upload_form(&state, ctx, StatusCode::BAD_REQUEST, Some(msg)).await;
        }
    };
    let group_id = match group {
        None => None,
        Some(raw) => match raw.parse::<i64>() {
            Ok(id) if groups::find(&state.db, id).await?.is_some() => Some(id),
            _ => {
                return upload_form(
                    &state,
                    ctx,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some("Choose one of the groups.".into()),
                )
                .await;
            }
        },
    };
    let path = upload.0.clone();
    let checked = tokio::task::spawn_blocking(move || check_file(&path))
        .await
        .map_err(|e| anyhow::anyhow!("checking the upload: {e}"))?;
    let checked = match checked {
        Ok(c) => c,
        Err(msg) => {
            return upload_form(&state, ctx, StatusCode::UNPROCESSABLE_ENTITY, Some(msg)).await;
        }
    };
    let options = Options {
        group_id,
        fire_registered: fire,
        started_by: me.id,
    };
    let now = state.clock.now_ms();
    let id = start(&state.db, now, &file_name, &checked, &options).await?;
    let ip = client_ip(&req, &state.config.trusted_proxies);
    audit::record_now(
        &state.db,
        now,
        audit::Entry {
            actor: &Actor::user(me.id, &me.email),
            action: Action::ContactsImported,
            target: &file_name,
            detail: &format!("import #{id}, {} rows", checked.rows),
            ip: &ip,
        },
    )
    .await?;
    // Hand the file to the background import, which deletes it when done.
    let mut upload = upload;
    let path = std::mem::take(&mut upload.0);
    tokio::spawn(run(
        state.db.clone(),
        state.clock.clone(),
        id,
        path,
        checked.columns,
        options,
    ));
    Ok(redirect(&format!("/contacts/imports/{id}")))
}

#[derive(Template)]
#[template(path = "contacts/import_status.html")]
struct ImportPage {
    ctx: PageContext,
    import: Import,
    rejections: Vec<Rejection>,
}

async fn load(state: &AppState, id: i64) -> Result<Import, AppError> {
    fail_stale(&state.db, state.clock.now_ms()).await?;
    find(&state.db, id).await?.ok_or(AppError::NotFound)
}

async fn import_page(
    state: web::Data<AppState>,
    ctx: PageContext,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let import = load(&state, *id).await?;
    let rejections = rejections(&state.db, import.id, 1000).await?;
    render(
        StatusCode::OK,
        &ImportPage {
            ctx,
            import,
            rejections,
        },
    )
}

#[derive(Serialize)]
struct ImportStatus {
    #[serde(flatten)]
    import: Import,
    percent: i64,
    rate: i64,
}

async fn status_json(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let import = load(&state, *id).await?;
    Ok(HttpResponse::Ok().json(ImportStatus {
        percent: import.percent(),
        rate: import.rate(),
        import,
    }))
}
