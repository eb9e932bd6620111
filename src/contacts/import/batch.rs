//! One batch of rows written in one transaction: rows parsed and checked, contacts
//! created or updated with multi-row statements, attributes, group memberships and,
//! when asked, *Registered to System (C)* for new contacts; refused rows kept with
//! their line and reason.

use std::collections::HashMap;

use serde::Serialize;

use super::check::Columns;
use crate::contacts::{parse_attribute_value, parse_name_part, search_key};
use crate::db::Tx;
use crate::events::catalogue::{NewEvent, Source};
use crate::types::EmailAddress;

/// Rows per transaction.
pub const BATCH_ROWS: usize = 1000;
/// Rows per multi-row statement (keeps well under both engines' parameter limits).
const ROWS_PER_STATEMENT: usize = 100;

/// What to do with each row besides creating or updating the contact.
#[derive(Debug, Clone)]
pub struct Options {
    pub group_id: Option<i64>,
    pub fire_registered: bool,
    pub started_by: i64,
    /// The staff member who asserted that the contacts consented to the group
    /// (empty: nobody did — a group with double opt-in asks each of them).
    pub consent_asserted_by: String,
    /// The file's name, for the consent records.
    pub file_name: String,
}

impl Options {
    /// How the import subscribes its contacts, for their consent records.
    pub fn how(&self) -> crate::consent::How {
        let how = crate::consent::How::new(crate::consent::Method::Import);
        if self.consent_asserted_by.is_empty() {
            how.detail(format!("file {}", self.file_name))
        } else {
            how.detail(format!(
                "file {}; consent asserted by {}",
                self.file_name, self.consent_asserted_by
            ))
            .asserted()
        }
    }
}

/// A row ready to write.
#[derive(Debug)]
pub struct Parsed {
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

pub fn parse_row(
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
        let value = parse_attribute_value(value)
            .map_err(|e| reject(format!("The value of {attr:?}: {}", e.0)))?;
        attributes.push((attr.clone(), value));
    }
    Ok(Parsed {
        line,
        email: email.as_str().to_string(),
        first_name,
        last_name,
        attributes,
    })
}

use crate::db::placeholders;

/// Counts of one batch.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub created: i64,
    pub updated: i64,
    pub rejected: i64,
    /// Contacts new to the import's group.
    pub joined: i64,
    /// Contacts who must confirm the import's group first (double opt-in).
    pub pending: i64,
    /// Registered to System (C) events fired (each contact who joined fired
    /// Subscribed to Group (C)).
    pub events_fired: i64,
    /// The runs the events started, per automation.
    pub started: crate::intake::runs::Started,
}

/// Writes one batch of rows in the open transaction.
pub async fn write_batch(
    tx: &mut Tx,
    import_id: i64,
    options: &Options,
    rows: Vec<Parsed>,
    mut rejections: Vec<Rejection>,
    now: i64,
) -> Result<Counts, sqlx::Error> {
    let backend = crate::db::Backend::of(tx);
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
        let sql = format!(
            "SELECT id, email, last_import_id FROM contacts WHERE email IN {}",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query_as::<_, (i64, String, Option<i64>)>(sqlx::AssertSqlSafe(
            backend.positional(sql),
        ));
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
        let mut q =
            sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(backend.positional(sql)));
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
        let mut q = sqlx::query(sqlx::AssertSqlSafe(backend.positional(sql)));
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
        let mut q = sqlx::query(sqlx::AssertSqlSafe(backend.positional(sql)));
        for (id, name, value) in chunk {
            q = q.bind(*id).bind((*name).clone()).bind((*value).clone());
        }
        q.execute(&mut **tx).await?;
    }
    let mut events: Vec<NewEvent> = Vec::new();
    if options.fire_registered {
        // Through the intake, so automations on Registered to System (C) run.
        events.extend(new_ids.iter().map(|id| {
            let mut event = NewEvent::registered(*id, Source::Import);
            event.params["import_id"] = serde_json::json!(import_id);
            event
        }));
    }
    let (mut joined, mut pending) = (0, 0);
    if let Some(group_id) = options.group_id {
        let ids: Vec<i64> = written.iter().map(|(id, _)| *id).collect();
        let done = crate::consent::subscribe_many(tx, group_id, &ids, &options.how(), now).await?;
        joined = done.joined.len() as i64;
        pending = done.pending;
        // Like every other way in, joining fires Subscribed to Group (C).
        events.extend(done.joined.iter().map(|id| {
            let mut event = NewEvent::membership(*id, group_id, true);
            event.params["import_id"] = serde_json::json!(import_id);
            event
        }));
    }
    let started = if events.is_empty() {
        Default::default()
    } else {
        crate::intake::events::record_many_started(tx, now, &events)
            .await?
            .1
    };
    for chunk in rejections.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO import_rejections (import_id, line, email, reason) VALUES {}",
            placeholders(chunk.len(), 4)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(backend.positional(sql)));
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
        started,
        joined,
        pending,
        events_fired: if options.fire_registered {
            new_ids.len() as i64
        } else {
            0
        },
    })
}
