//! Recording events — with the runs they trigger, in the caller's transaction —
//! and reading them back.

use sqlx::AnyConnection;

use crate::events::catalogue::{EventType, NewEvent};
use crate::types::EventId;

/// Records `event` on `conn` and enqueues a job run for every automation it
/// triggers: pass the transaction that makes the change, so the event and its runs
/// commit with it or not at all (then [`crate::db::Db::commit`] wakes the
/// scheduler). Returns the event id.
#[tracing::instrument(name = "event", skip(conn, event), fields(kind = event.kind.code()))]
pub async fn record(
    conn: &mut AnyConnection,
    at_ms: i64,
    event: &NewEvent,
) -> Result<EventId, sqlx::Error> {
    let id: EventId = sqlx::query_scalar(
        "INSERT INTO events (type, scope, contact_id, system_user_id, group_id, params, occurred_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(event.kind.code())
    .bind(event.kind.scope().code())
    .bind(event.contact_id)
    .bind(event.system_user_id)
    .bind(event.group_id)
    .bind(event.params.to_string())
    .bind(at_ms)
    .fetch_one(&mut *conn)
    .await?;
    crate::intake::runs::intake(conn, id, at_ms, event).await?;
    Ok(id)
}

/// Events per multi-row INSERT (7 parameters each).
const RECORD_ROWS: usize = 200;

/// Records many events at once, with their runs, in the caller's transaction —
/// multi-row statements, and the automations matched once per event type (a CSV
/// import, an API batch). Returns their ids in the order given.
pub async fn record_many(
    conn: &mut AnyConnection,
    at_ms: i64,
    events: &[NewEvent],
) -> Result<Vec<EventId>, sqlx::Error> {
    Ok(record_many_started(conn, at_ms, events).await?.0)
}

/// [`record_many`], and the runs the events started, per automation.
#[tracing::instrument(name = "events", skip_all, fields(n = events.len()))]
pub async fn record_many_started(
    conn: &mut AnyConnection,
    at_ms: i64,
    events: &[NewEvent],
) -> Result<(Vec<EventId>, crate::intake::runs::Started), sqlx::Error> {
    let mut ids = Vec::with_capacity(events.len());
    let backend = crate::db::Backend::of(conn);
    for chunk in events.chunks(RECORD_ROWS) {
        let sql = backend.positional(format!(
            "INSERT INTO events (type, scope, contact_id, system_user_id, group_id, params, occurred_at) \
             VALUES {} RETURNING id",
            crate::db::placeholders(chunk.len(), 7)
        ));
        let mut q = sqlx::query_scalar::<_, EventId>(sqlx::AssertSqlSafe(sql));
        for e in chunk {
            q = q
                .bind(e.kind.code())
                .bind(e.kind.scope().code())
                .bind(e.contact_id)
                .bind(e.system_user_id)
                .bind(e.group_id)
                .bind(e.params.to_string())
                .bind(at_ms);
        }
        // Ids are handed out in the order of the rows of one statement.
        let mut chunk_ids = q.fetch_all(&mut *conn).await?;
        chunk_ids.sort();
        ids.extend(chunk_ids);
    }
    let recorded: Vec<(EventId, &NewEvent)> = ids.iter().copied().zip(events).collect();
    let started = crate::intake::runs::intake_many(conn, at_ms, &recorded).await?;
    Ok((ids, started))
}

/// A stored event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Event {
    pub id: EventId,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub contact_id: Option<i64>,
    pub system_user_id: Option<i64>,
    pub group_id: Option<i64>,
    pub params: String,
    pub occurred_at: i64,
}

impl Event {
    pub fn label(&self) -> &'static str {
        EventType::from_code(&self.kind).map_or("Unknown event", EventType::label)
    }
    /// When it happened, in `zone`, named.
    pub fn when_in(&self, zone: &str) -> String {
        crate::clock::format_in(self.occurred_at, zone)
    }
    pub fn params_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.params).unwrap_or_default()
    }
    /// How many runs led to this event.
    pub fn chain_depth(&self) -> u64 {
        self.params_json()["chain_depth"].as_u64().unwrap_or(0)
    }

    /// The event's values in words, for timelines: "changed first name and
    /// coupon", "from the CSV import", "order.shipped: order 42" — never JSON.
    pub fn detail(&self) -> String {
        let params = self.params_json();
        let mut parts: Vec<String> = Vec::new();
        if let Some(changed) = params["changed"].as_array() {
            let names: Vec<String> = changed
                .iter()
                .filter_map(|v| v.as_str())
                .map(|n| match n {
                    "first_name" => "first name".to_string(),
                    "last_name" => "last name".to_string(),
                    other => other.to_string(),
                })
                .collect();
            parts.push(format!("changed {}", in_words(&names)));
        }
        if let Some(source) = params["source"]
            .as_str()
            .and_then(crate::events::catalogue::Source::from_code)
        {
            parts.push(format!("from the {}", source.label()));
        }
        if let Some(name) = params["name"].as_str().filter(|n| !n.is_empty()) {
            parts.push(format!("“{name}”"));
        }
        if matches!(
            EventType::from_code(&self.kind),
            Some(EventType::MessageOpened | EventType::LinkClicked)
        ) {
            if let Some(message) = params["message"].as_str() {
                parts.push(format!("the message {message}"));
            }
            if let Some(link) = params["link"].as_str() {
                parts.push(format!("the link {link}"));
            }
            if params["first"] == true {
                parts.push("the first time".into());
            }
        }
        if let Some(data) = params["data"].as_object() {
            let values: Vec<String> = data
                .iter()
                .take(5)
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{k} {s}"),
                    serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
                        format!("{k} (…)")
                    }
                    other => format!("{k} {other}"),
                })
                .collect();
            if !values.is_empty() {
                parts.push(format!(
                    "{}{}",
                    values.join(", "),
                    if data.len() > 5 { ", …" } else { "" }
                ));
            }
        }
        for (key, label) in [
            ("created", "created"),
            ("updated", "updated"),
            ("rejected", "rejected"),
        ] {
            if let Some(n) = params[key].as_i64() {
                parts.push(format!("{n} {label}"));
            }
        }
        if self.chain_depth() > 0 {
            parts.push("by an automation".into());
        }
        let text = parts.join("; ");
        if text.chars().count() > 200 {
            format!("{}…", text.chars().take(200).collect::<String>())
        } else {
            text
        }
    }
}

/// "a", "a and b", "a, b and c".
fn in_words(names: &[String]) -> String {
    match names {
        [] => "nothing".into(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

const EVENT_COLUMNS: &str = "id, type, contact_id, system_user_id, group_id, params, occurred_at";

/// The newest events of a contact.
pub async fn for_contact(
    db: &crate::db::Db,
    contact_id: i64,
    limit: i64,
) -> Result<Vec<Event>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE contact_id = $1 ORDER BY id DESC LIMIT $2"
    )))
    .bind(contact_id)
    .bind(limit)
    .fetch_all(db.read())
    .await
}

/// The newest events of every kind (for tests and diagnostics).
pub async fn latest(db: &crate::db::Db, limit: i64) -> Result<Vec<Event>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {EVENT_COLUMNS} FROM events ORDER BY id DESC LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(db.read())
    .await
}

/// Deletes the events that occurred before `cutoff_ms` and no run holds on to
/// (retention); returns how many.
pub async fn prune(db: &crate::db::Db, cutoff_ms: i64) -> Result<u64, sqlx::Error> {
    crate::db::delete_in_batches(
        db,
        "DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.occurred_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM job_runs r WHERE r.event_id = e.id) LIMIT $2)",
        cutoff_ms,
    )
    .await
}
