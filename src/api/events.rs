//! `POST /api/v1/events`: an outside system reports an event — *External Event
//! Received (C)*, *External HTTP Request Received (S)*, or *New Password Requested
//! (C)* (a website's own sign-in page). It is recorded with the runs it triggers, in
//! one transaction; the answer (202) names them. The request, its checks and the
//! batch endpoint are here; the single-event endpoint, which writes calls in groups,
//! is in [`crate::api::event_writer`].

use std::collections::HashSet;

use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::api::idempotency;
use crate::api::keys::ApiKey;
use crate::api::problem::Problem;
use crate::contacts::{self, ContactInput};
use crate::events::catalogue::{EventType, NewEvent, Source};
use crate::state::AppState;
use crate::types::{EmailAddress, EventId};

/// The event types an outside system may report.
pub const ALLOWED: [EventType; 3] = [
    EventType::ExternalEventReceived,
    EventType::ExternalHttpRequestReceived,
    EventType::NewPasswordRequested,
];
/// The largest `data` accepted, serialised.
pub const MAX_DATA_BYTES: usize = 16 * 1024;

/// A contact named by id or by email.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactRef {
    pub id: Option<i64>,
    pub email: Option<String>,
}

/// An event an outside system reports.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventRequest {
    /// external_event_received, external_http_request_received or new_password_requested.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
    pub contact: Option<ContactRef>,
    #[serde(default)]
    pub create_contact: bool,
    pub system_user_id: Option<i64>,
    pub group_id: Option<i64>,
    pub name: Option<String>,
    /// Any JSON, at most 16 KiB.
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
}

/// A run the event scheduled.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScheduledRun {
    pub id: i64,
    pub automation_id: i64,
    pub automation: String,
    #[schema(format = DateTime)]
    pub due_at: String,
}

/// The recorded event and the runs it scheduled.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventAccepted {
    #[schema(value_type = i64)]
    pub event_id: EventId,
    pub runs: Vec<ScheduledRun>,
}

fn no_controls(field: &'static str, s: &str) -> Result<(), Problem> {
    if s.chars().any(char::is_control) {
        return Err(Problem::invalid(
            field,
            "Control characters (such as NUL) are not accepted.",
        ));
    }
    Ok(())
}

/// Checks the request and finds (or creates) what it names; the event to record.
pub(crate) async fn checked(
    tx: &mut crate::db::Tx,
    r: &EventRequest,
    now: i64,
    known: &HashSet<i64>,
) -> Result<NewEvent, Problem> {
    let kind = EventType::from_code(&r.kind)
        .filter(|k| ALLOWED.contains(k))
        .ok_or_else(|| {
            let allowed: Vec<&str> = ALLOWED.iter().map(|k| k.code()).collect();
            Problem::invalid(
                "type",
                format!("An outside system may report {}.", allowed.join(", ")),
            )
        })?;
    let name = r.name.as_deref().unwrap_or_default().trim().to_string();
    no_controls("name", &name)?;
    if name.chars().count() > 100 {
        return Err(Problem::invalid("name", "At most 100 characters."));
    }
    let data = r.data.clone().unwrap_or(serde_json::Value::Null);
    if data.to_string().len() > MAX_DATA_BYTES {
        return Err(Problem::invalid(
            "data",
            format!("At most {MAX_DATA_BYTES} bytes of JSON."),
        ));
    }
    if let Some(id) = r.system_user_id
        && !exists(tx, "system_users", id).await?
    {
        return Err(Problem::invalid(
            "system_user_id",
            "No system user has this id.",
        ));
    }
    if let Some(id) = r.group_id
        && !exists(tx, "contact_groups", id).await?
    {
        return Err(Problem::invalid("group_id", "No group has this id."));
    }
    // Last: it may create the contact, and nothing after it may turn the call down.
    let contact_id = if kind.carries_contact() {
        let Some(c) = &r.contact else {
            return Err(Problem::invalid(
                "contact",
                format!(
                    "{} needs a contact: {{\"id\": …}} or {{\"email\": …}}.",
                    kind.label()
                ),
            ));
        };
        Some(resolve_contact(tx, c, r.create_contact, now, known).await?)
    } else {
        if r.contact.is_some() {
            return Err(Problem::invalid(
                "contact",
                format!("{} names no contact.", kind.label()),
            ));
        }
        None
    };
    Ok(NewEvent {
        kind,
        contact_id,
        system_user_id: r.system_user_id,
        group_id: r.group_id,
        params: serde_json::json!({ "name": name, "data": data, "source": "api" }),
    })
}

/// Which of the contacts the requests name by id exist: one query for a whole
/// batch instead of one per event.
pub(crate) async fn known_contacts<'a>(
    tx: &mut crate::db::Tx,
    requests: impl Iterator<Item = &'a EventRequest>,
) -> Result<HashSet<i64>, sqlx::Error> {
    let ids: Vec<i64> = requests
        .filter_map(|r| r.contact.as_ref().and_then(|c| c.id))
        .collect::<HashSet<i64>>()
        .into_iter()
        .collect();
    let mut known = HashSet::with_capacity(ids.len());
    let backend = crate::db::Backend::of(tx);
    for chunk in ids.chunks(500) {
        let sql = backend.positional(format!(
            "SELECT id FROM contacts WHERE id IN {}",
            crate::db::placeholders(1, chunk.len())
        ));
        let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(*id);
        }
        known.extend(q.fetch_all(&mut **tx).await?);
    }
    Ok(known)
}

/// Whether `table` has a row `id`, read on the call's transaction: on PostgreSQL a
/// second connection from the pool while the transaction holds one could wait for
/// ever once every connection is held by a call doing the same.
async fn exists(tx: &mut crate::db::Tx, table: &str, id: i64) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM {table} WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(found.is_some())
}

async fn resolve_contact(
    tx: &mut crate::db::Tx,
    c: &ContactRef,
    create: bool,
    now: i64,
    known: &HashSet<i64>,
) -> Result<i64, Problem> {
    let not_found = || {
        Problem::new(
            StatusCode::NOT_FOUND,
            "Unknown contact",
            "No contact matches; send \"create_contact\": true to create one by email.",
        )
    };
    match (c.id, c.email.as_deref()) {
        (Some(id), None) => match known.contains(&id) || exists(tx, "contacts", id).await? {
            true => Ok(id),
            false => Err(not_found()),
        },
        (None, Some(raw)) => {
            no_controls("contact.email", raw)?;
            let email =
                EmailAddress::parse(raw).map_err(|e| Problem::invalid("contact.email", e.0))?;
            // In the transaction: an earlier item of the same batch may have created it.
            if let Some(found) = contacts::find_by_email_on(&mut *tx, email.as_str()).await? {
                return Ok(found.id);
            }
            if !create {
                return Err(not_found());
            }
            let input = ContactInput {
                email,
                first_name: String::new(),
                last_name: String::new(),
                attributes: Default::default(),
            };
            contacts::create(tx, &input, Source::Api, now)
                .await
                .map_err(|e| match e {
                    contacts::SaveError::Duplicate => Problem::new(
                        StatusCode::CONFLICT,
                        "Conflict",
                        "The contact was created at the same moment; send the event again.",
                    ),
                    contacts::SaveError::Database(e) => e.into(),
                })
        }
        _ => Err(Problem::invalid(
            "contact",
            "Name the contact by \"id\" or by \"email\", not both.",
        )),
    }
}

/// The API key the request came with (the door put it there).
pub fn api_key(req: &HttpRequest) -> Result<ApiKey, Problem> {
    req.extensions()
        .get::<ApiKey>()
        .cloned()
        .ok_or_else(Problem::unauthorized)
}

/// Reads a JSON value into `T`, as a 400 problem when it does not fit.
pub fn read<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, Problem> {
    serde_json::from_value(value).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "Invalid JSON",
            format!("The body could not be read: {e}."),
        )
    })
}

/// The most events in one batch.
pub const MAX_BATCH: usize = 1000;

/// Up to 1,000 events, recorded in one transaction.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub events: Vec<EventRequest>,
}

/// The batch's events, in the order given, with the runs each scheduled.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchAccepted {
    pub events: Vec<EventAccepted>,
}

/// Reports up to 1,000 events at once: all are recorded, or none (the first wrong
/// one is named by its index).
#[utoipa::path(
    post,
    path = "/api/v1/events/batch",
    tag = "events",
    request_body = BatchRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried call harmless (per API key, 24 hours)")),
    responses(
        (status = 202, description = "All recorded", body = BatchAccepted),
        (status = 400, description = "Bad JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown contact", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Idempotency-Key used with another body", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "More than 1,000 events, or over 4 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An event is wrong", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn post_batch(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, Problem> {
    let body = body.into_inner();
    answer_once(&state, &req, &body, async |tx, now| {
        let batch: BatchRequest = read(body.clone())?;
        if batch.events.len() > MAX_BATCH {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too many events",
                format!(
                    "A batch holds at most {MAX_BATCH} events; this one has {}.",
                    batch.events.len()
                ),
            ));
        }
        let known = known_contacts(tx, batch.events.iter()).await?;
        let mut events = Vec::with_capacity(batch.events.len());
        for (i, r) in batch.events.iter().enumerate() {
            events.push(
                checked(tx, r, now, &known)
                    .await
                    .map_err(|p| p.in_item(i))?,
            );
        }
        let ids = crate::intake::events::record_many(tx, now, &events).await?;
        let mut runs = scheduled(tx, &ids).await?;
        let events = ids
            .iter()
            .map(|id| EventAccepted {
                event_id: *id,
                runs: runs.remove(id).unwrap_or_default(),
            })
            .collect();
        to_json(&BatchAccepted { events })
    })
    .await
}

pub(crate) fn to_json<T: Serialize>(answer: &T) -> Result<String, Problem> {
    serde_json::to_string(answer).map_err(|e| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Unexpected",
            e.to_string(),
        )
    })
}

/// The runs `events` scheduled, by event.
pub(crate) async fn scheduled(
    tx: &mut crate::db::Tx,
    events: &[EventId],
) -> Result<std::collections::HashMap<EventId, Vec<ScheduledRun>>, Problem> {
    let (Some(first), Some(last)) = (events.iter().min(), events.iter().max()) else {
        return Ok(Default::default());
    };
    let mut out: std::collections::HashMap<EventId, Vec<ScheduledRun>> = Default::default();
    for (run, event, automation_id, automation, due) in
        crate::scheduler::runs::runs_for_events(tx, *first, *last).await?
    {
        if !events.contains(&event) {
            continue;
        }
        out.entry(event).or_default().push(ScheduledRun {
            id: run,
            automation_id,
            automation,
            due_at: jiff::Timestamp::from_millisecond(due)
                .map(|t| t.to_string())
                .unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Does `work` in one transaction and answers 202 with what it returns — once per
/// `Idempotency-Key`: the same key and body get the first answer again and change
/// nothing; another body is a 409.
async fn answer_once(
    state: &AppState,
    req: &HttpRequest,
    body: &serde_json::Value,
    work: impl AsyncFnOnce(&mut crate::db::Tx, i64) -> Result<String, Problem>,
) -> Result<HttpResponse, Problem> {
    let key = api_key(req)?;
    let idempotency = idempotency::header(req)?;
    let hash = idempotency::body_hash(body.to_string().as_bytes());
    let now = state.clock.now_ms();
    if let Some(k) = &idempotency
        && let Some(stored) = idempotency::replay(state.db.read(), key.id, k, &hash, now).await?
    {
        return Ok(replayed(stored));
    }
    let mut tx = state.db.begin().await?;
    let answer = work(&mut tx, now).await?;
    if let Some(k) = &idempotency {
        idempotency::keep(&mut tx, key.id, k, &hash, &(202, answer.clone()), now)
            .await
            .map_err(idempotency::conflict_or_problem)?;
    }
    state.db.commit(tx).await?;
    Ok(accepted(answer))
}

/// 202 with the JSON answer.
pub(crate) fn accepted(answer: String) -> HttpResponse {
    HttpResponse::build(StatusCode::ACCEPTED)
        .content_type("application/json")
        .body(answer)
}

/// The answer kept for a repeated `Idempotency-Key`, as it was first given.
pub(crate) fn replayed((status, stored): idempotency::Stored) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::ACCEPTED);
    HttpResponse::build(status)
        .content_type("application/json")
        .body(stored)
}
