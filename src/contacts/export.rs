//! A contact's data as one JSON document (the right of access): the profile,
//! attributes, groups and pending ones with their consent records, events, runs,
//! emails with their fates, and opens and clicks — everything Herald holds about
//! the person, and nothing about anyone else (other people's names in a run's
//! target or an event are never joined in).

use serde_json::{Value, json};

use crate::db::Db;

/// At most this many rows of each kind (a contact has far fewer).
const ROWS: i64 = 100_000;

/// A time as RFC 3339, or null.
fn time(ms: Option<i64>) -> Value {
    ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or(Value::Null, |t| Value::String(t.to_string()))
}

#[derive(sqlx::FromRow)]
struct EventRow {
    kind: String,
    group_id: Option<i64>,
    params: String,
    occurred_at: i64,
}

#[derive(sqlx::FromRow)]
struct RunRow {
    automation_id: i64,
    automation: Option<String>,
    status: String,
    due_at: i64,
    attempts: i64,
    outcome: Option<String>,
    last_error: Option<String>,
    finished_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    kind: String,
    address: String,
    message: Option<String>,
    smtp_message_id: String,
    sent_at: i64,
    fate: String,
    fate_at: Option<i64>,
    fate_detail: String,
    unsubscribed_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct EngagementRow {
    at: i64,
    message: Option<String>,
    target: Option<String>,
    machine: String,
}

/// The contact's data, or `None` when no contact has this id.
pub async fn export(db: &Db, id: i64, now_ms: i64) -> Result<Option<Value>, sqlx::Error> {
    let Some(c) = super::find(db, id).await? else {
        return Ok(None);
    };
    let untracked = super::refuses_tracking(db, id).await?;
    let attributes: serde_json::Map<String, Value> = super::attributes(db, id)
        .await?
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let groups: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT g.id, g.name, m.created_at FROM group_members m JOIN contact_groups g ON g.id = m.group_id \
         WHERE m.contact_id = $1 ORDER BY g.name",
    )
    .bind(id)
    .fetch_all(db.read())
    .await?;
    let pending = crate::consent::pending_of(db, id).await?;
    let consent = crate::consent::records_of(db, id).await?;
    let events: Vec<EventRow> = sqlx::query_as(
        "SELECT type AS kind, group_id, params, occurred_at FROM events WHERE contact_id = $1 ORDER BY id LIMIT $2",
    )
    .bind(id)
    .bind(ROWS)
    .fetch_all(db.read())
    .await?;
    let runs: Vec<RunRow> = sqlx::query_as(
        "SELECT r.automation_id, a.name AS automation, r.status, r.due_at, r.attempts, r.outcome, r.last_error, r.finished_at \
         FROM job_runs r LEFT JOIN automations a ON a.id = r.automation_id \
         LEFT JOIN events e ON e.id = r.event_id \
         WHERE (r.target_kind = 'contact' AND r.target_id = $1) OR (r.target_kind IS NULL AND e.contact_id = $1) \
         ORDER BY r.id LIMIT $2",
    )
    .bind(id)
    .bind(ROWS)
    .fetch_all(db.read())
    .await?;
    let deliveries: Vec<DeliveryRow> = sqlx::query_as(
        "SELECT d.kind, d.address, m.name AS message, d.smtp_message_id, d.sent_at, d.fate, d.fate_at, d.fate_detail, \
         d.unsubscribed_at FROM deliveries d LEFT JOIN messages m ON m.id = d.message_id \
         WHERE d.contact_id = $1 ORDER BY d.id LIMIT $2",
    )
    .bind(id)
    .bind(ROWS)
    .fetch_all(db.read())
    .await?;
    let opens: Vec<EngagementRow> = sqlx::query_as(
        "SELECT o.at, m.name AS message, NULL AS target, o.machine FROM opens o \
         LEFT JOIN messages m ON m.id = o.message_id WHERE o.contact_id = $1 ORDER BY o.id LIMIT $2",
    )
    .bind(id)
    .bind(ROWS)
    .fetch_all(db.read())
    .await?;
    let clicks: Vec<EngagementRow> = sqlx::query_as(
        "SELECT k.at, m.name AS message, k.target, k.machine FROM clicks k \
         LEFT JOIN messages m ON m.id = k.message_id WHERE k.contact_id = $1 ORDER BY k.id LIMIT $2",
    )
    .bind(id)
    .bind(ROWS)
    .fetch_all(db.read())
    .await?;
    let engagement = |rows: Vec<EngagementRow>, with_target: bool| -> Value {
        rows.into_iter()
            .map(|r| {
                let mut v = json!({
                    "at": time(Some(r.at)),
                    "message": r.message,
                    "by_a_machine": !r.machine.is_empty(),
                });
                if with_target {
                    v["target"] = json!(r.target);
                }
                v
            })
            .collect()
    };
    Ok(Some(json!({
        "exported_at": time(Some(now_ms)),
        "contact": {
            "id": c.id,
            "email": c.email,
            "first_name": c.first_name,
            "last_name": c.last_name,
            "status": c.status.code(),
            "unsubscribed_from_all_since": time(c.opted_out_at),
            "opens_and_clicks_not_kept": untracked,
            "created_at": time(Some(c.created_at)),
            "updated_at": time(Some(c.updated_at)),
        },
        "attributes": attributes,
        "groups": groups.into_iter().map(|(gid, name, at)| json!({
            "id": gid, "name": name, "member_since": time(Some(at)),
        })).collect::<Vec<_>>(),
        "pending_groups": pending.into_iter().map(|p| json!({
            "id": p.group_id, "name": p.group_name, "asked_at": time(Some(p.requested_at)),
            "link_expires_at": time(Some(p.expires_at)),
        })).collect::<Vec<_>>(),
        "consent": consent.into_iter().map(|r| json!({
            "group": r.group_name, "action": r.action, "method": r.method, "detail": r.detail,
            "ip": r.ip, "user_agent": r.user_agent, "confirmation_email_version": r.email_version,
            "at": time(Some(r.at)),
        })).collect::<Vec<_>>(),
        "events": events.into_iter().map(|e| {
            let params: Value = serde_json::from_str(&e.params).unwrap_or(Value::Null);
            json!({ "type": e.kind, "group_id": e.group_id, "params": params, "occurred_at": time(Some(e.occurred_at)) })
        }).collect::<Vec<_>>(),
        "runs": runs.into_iter().map(|r| json!({
            "automation_id": r.automation_id, "automation": r.automation, "status": r.status,
            "due_at": time(Some(r.due_at)), "attempts": r.attempts, "outcome": r.outcome,
            "last_error": r.last_error, "finished_at": time(r.finished_at),
        })).collect::<Vec<_>>(),
        "emails": deliveries.into_iter().map(|d| json!({
            "kind": d.kind, "to": d.address, "message": d.message, "message_id_header": d.smtp_message_id,
            "sent_at": time(Some(d.sent_at)), "fate": d.fate, "fate_at": time(d.fate_at),
            "fate_detail": d.fate_detail, "unsubscribed_with_its_link_at": time(d.unsubscribed_at),
        })).collect::<Vec<_>>(),
        "opens": engagement(opens, false),
        "clicks": engagement(clicks, true),
    })))
}

/// [`export`], and its entry in the audit log (who asked, from where) once
/// there is something to give.
pub async fn audited(
    db: &Db,
    id: i64,
    now_ms: i64,
    asked: crate::audit::Entry<'_>,
) -> Result<Option<Value>, sqlx::Error> {
    let data = export(db, id, now_ms).await?;
    if data.is_some() {
        crate::audit::record_now(db, now_ms, asked).await?;
    }
    Ok(data)
}

/// The file name of an export: `herald-data-<id>.json`.
pub fn file_name(id: i64) -> String {
    format!("herald-data-{id}.json")
}

/// Serialised, pretty.
pub fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap_or_default()
}
