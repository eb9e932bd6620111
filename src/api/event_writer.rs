//! `POST /api/v1/events` (what it accepts and checks is in [`crate::api::events`])
//! and its group commit: calls that arrive while a transaction is
//! being written wait for the next one and are recorded together — one `BEGIN`, one
//! multi-row insert of their events and runs, one `COMMIT` — instead of one
//! transaction each. On SQLite every write goes through one connection, so a
//! transaction per call made the calls queue behind each other's statements; on
//! PostgreSQL each commit waits for its own WAL flush.
//!
//! Each call still gets its own answer: a call that names an unknown contact is
//! turned down without touching the others. Should the shared transaction fail
//! (a database error, a contact created by two calls at once, one
//! `Idempotency-Key` in two calls), every call of the group is written again in a
//! transaction of its own, so one call's trouble never becomes another's.

use std::collections::HashSet;

use actix_web::{HttpRequest, HttpResponse, web};
use tokio::sync::{mpsc, oneshot};

use crate::api::events::{
    EventAccepted, EventRequest, accepted, api_key, checked, known_contacts, read, replayed,
    scheduled, to_json,
};
use crate::api::idempotency;
use crate::api::problem::Problem;
use crate::db::Db;
use crate::state::AppState;

/// Reports an event; answers with the runs it scheduled.
#[utoipa::path(
    post,
    path = "/api/v1/events",
    tag = "events",
    request_body = EventRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried call harmless (per API key, 24 hours)")),
    responses(
        (status = 202, description = "Recorded", body = EventAccepted),
        (status = 400, description = "Bad JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown contact", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Idempotency-Key used with another body", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is wrong", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn post_event(
    state: web::Data<AppState>,
    writer: web::Data<EventWriter>,
    req: HttpRequest,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, Problem> {
    let body = body.into_inner();
    let key = api_key(&req)?;
    let idempotency = idempotency::header(&req)?;
    let hash = idempotency::body_hash(body.to_string().as_bytes());
    if let Some(k) = &idempotency
        && let Some(stored) =
            idempotency::replay(state.db.read(), key.id, k, &hash, state.clock.now_ms()).await?
    {
        return Ok(replayed(stored));
    }
    let request: EventRequest = read(body)?;
    // Written with the calls that arrive meanwhile, in one transaction.
    let answer = writer
        .record(key.id, request, idempotency.map(|k| (k, hash)))
        .await?;
    Ok(accepted(answer))
}

/// The most calls written in one transaction.
const MAX_GROUP: usize = 256;

/// A call waiting for its transaction.
struct Call {
    key_id: i64,
    request: EventRequest,
    /// The `Idempotency-Key` and the body's hash.
    idempotency: Option<(String, String)>,
    answer: oneshot::Sender<Result<String, Problem>>,
}

/// The handle the event endpoint hands its calls to.
#[derive(Clone)]
pub struct EventWriter {
    calls: mpsc::Sender<Call>,
}

impl EventWriter {
    /// Starts the writer tasks on `db` (connections of their own, which outlive the
    /// HTTP workers: calls still being answered at a graceful stop are written);
    /// they end when the last handle is dropped.
    pub fn start(db: Db, clock: std::sync::Arc<dyn crate::clock::Clock>) -> Self {
        let writer = std::sync::Arc::new(Writer { db, clock });
        let (calls, waiting) = mpsc::channel(4 * MAX_GROUP);
        let waiting = std::sync::Arc::new(tokio::sync::Mutex::new(waiting));
        // SQLite has one writer connection. On PostgreSQL groups are written side by
        // side, each waiting for its round trips and its commit: measured with 64
        // clients (bench-api), 1 writer made 0.47 of the bare INSERT's rate, 2 0.57,
        // 4 0.64, 8 0.74, 16 0.59 (more connections than the pool spares).
        let writers = match writer.db.backend {
            crate::db::Backend::Sqlite => 1,
            crate::db::Backend::Postgres => 8,
        };
        for _ in 0..writers {
            tokio::spawn(write_groups(writer.clone(), waiting.clone()));
        }
        Self { calls }
    }

    /// Records the event in the next group; the JSON answer (202) or the problem.
    pub async fn record(
        &self,
        key_id: i64,
        request: EventRequest,
        idempotency: Option<(String, String)>,
    ) -> Result<String, Problem> {
        let (answer, answered) = oneshot::channel();
        let call = Call {
            key_id,
            request,
            idempotency,
            answer,
        };
        let stopped = || {
            Problem::new(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "Herald is stopping; send the event again in a moment.",
            )
        };
        self.calls.send(call).await.map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

/// Where the writer tasks write, and their clock.
struct Writer {
    db: Db,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
}

async fn write_groups(
    state: std::sync::Arc<Writer>,
    waiting: std::sync::Arc<tokio::sync::Mutex<mpsc::Receiver<Call>>>,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while waiting.lock().await.recv_many(&mut group, MAX_GROUP).await > 0 {
        write_group(&state, std::mem::take(&mut group)).await;
    }
}

/// Writes `group` in one transaction, or — when that fails — each call alone.
async fn write_group(state: &Writer, group: Vec<Call>) {
    // One Idempotency-Key twice in a group: the later call waits for a group of its own.
    let mut keys = HashSet::new();
    let (group, later): (Vec<Call>, Vec<Call>) = group.into_iter().partition(|c| {
        c.idempotency
            .as_ref()
            .is_none_or(|(k, _)| keys.insert((c.key_id, k.clone())))
    });
    let singles = match write(&state.db, state.clock.now_ms(), &group).await {
        Ok(answers) => {
            let mut singles = later;
            for (call, answer) in group.into_iter().zip(answers) {
                match answer {
                    Err(p) if p.status == 409 => singles.push(call),
                    answer => {
                        let _ = call.answer.send(answer);
                    }
                }
            }
            singles
        }
        // Each alone (a group of one: once more).
        Err(_) => group.into_iter().chain(later).collect(),
    };
    // A conflict (409): another transaction made the same contact or used the same
    // Idempotency-Key. It has committed by now (PostgreSQL reports the conflict once
    // it does), so a try on its own finds its work. A call rewritten alone because
    // the group failed for another call may meet such a conflict on that try: it
    // gets one more.
    for call in singles {
        let mut answer = alone(state, &call).await;
        if matches!(&answer, Err(p) if p.status == 409) {
            answer = alone(state, &call).await;
        }
        let _ = call.answer.send(answer);
    }
}

/// Records one call in a transaction of its own.
async fn alone(state: &Writer, call: &Call) -> Result<String, Problem> {
    let mut answers = write(&state.db, state.clock.now_ms(), std::slice::from_ref(call)).await?;
    answers
        .pop()
        .unwrap_or_else(|| Err(Problem::from(sqlx::Error::RowNotFound)))
}

/// Records the calls' events at `now` in one transaction: one answer per call
/// (a call turned down does not stop the others), or the problem that rolled the
/// whole transaction back.
async fn write(db: &Db, now: i64, calls: &[Call]) -> Result<Vec<Result<String, Problem>>, Problem> {
    let mut tx = db.begin().await?;
    let known = known_contacts(&mut tx, calls.iter().map(|c| &c.request)).await?;
    // `None`: the call's event is recorded below.
    let mut answers: Vec<Option<Result<String, Problem>>> = Vec::with_capacity(calls.len());
    let mut events = Vec::with_capacity(calls.len());
    for call in calls {
        // Answered meanwhile (by an earlier group): the kept answer, nothing written.
        let kept = match &call.idempotency {
            Some((key, hash)) => idempotency::replay(&mut *tx, call.key_id, key, hash, now).await,
            None => Ok(None),
        };
        let answer = match kept {
            Ok(Some((_, stored))) => Some(Ok(stored)),
            Err(p) => Some(Err(p)),
            Ok(None) => match checked(&mut tx, &call.request, now, &known).await {
                Ok(event) => {
                    events.push(event);
                    None
                }
                Err(p) => Some(Err(p)),
            },
        };
        // A database error: the transaction may be unusable (PostgreSQL).
        if let Some(Err(p)) = &answer
            && p.status >= 500
        {
            return Err(p.clone());
        }
        answers.push(answer);
    }
    let ids = crate::intake::events::record_many(&mut tx, now, &events).await?;
    let mut runs = scheduled(&mut tx, &ids).await?;
    let mut ids = ids.into_iter();
    let mut out = Vec::with_capacity(calls.len());
    for (call, answer) in calls.iter().zip(answers) {
        if let Some(done) = answer {
            out.push(done);
            continue;
        }
        let event_id = ids.next().ok_or(sqlx::Error::RowNotFound)?;
        let json = to_json(&EventAccepted {
            event_id,
            runs: runs.remove(&event_id).unwrap_or_default(),
        })?;
        if let Some((key, hash)) = &call.idempotency {
            idempotency::keep(&mut tx, call.key_id, key, hash, &(202, json.clone()), now)
                .await
                .map_err(idempotency::conflict_or_problem)?;
        }
        out.push(Ok(json));
    }
    db.commit(tx).await?;
    Ok(out)
}
