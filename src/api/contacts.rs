//! `POST /api/v1/contacts` (create, or update by email — the same events a change in
//! the admin UI fires), `GET /api/v1/contacts/{id}`, and `GET /api/v1/runs/{id}`.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::api::events::read;
use crate::api::problem::Problem;
use crate::consent::{How, Method};
use crate::contacts::{self, ContactForm};
use crate::events::catalogue::Source;
use crate::state::AppState;
use crate::types::RunId;

/// A contact to create, or to update by email.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactRequest {
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Attributes to set (others stay as they are).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Groups to join (memberships not named stay as they are). A group that asks
    /// for double opt-in makes the contact a pending member, and emails them a
    /// confirmation link: see `pending_groups`.
    #[serde(default)]
    pub groups: Vec<i64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GroupRef {
    pub id: i64,
    pub name: String,
}

/// A contact as Herald holds it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ContactView {
    pub id: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub status: &'static str,
    pub unsubscribed_from_all: bool,
    pub attributes: BTreeMap<String, String>,
    pub groups: Vec<GroupRef>,
    /// Groups the contact asked to join, waiting for their confirmation (double
    /// opt-in): not members yet.
    pub pending_groups: Vec<GroupRef>,
    /// How the contact's consent to each group was given and withdrawn, newest
    /// first (never changed).
    pub consent: Vec<ConsentView>,
}

/// One consent record.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConsentView {
    /// The group's name as it was then.
    pub group: String,
    pub group_id: Option<i64>,
    /// requested, confirmed, subscribed, withdrawn or expired.
    pub action: String,
    /// preference_center, sign_up, api, import, staff, automation,
    /// confirmation_link, unsubscribe_link or expiry.
    pub method: String,
    /// The API key, the import file and who asserted consent, the staff member, the automation.
    pub detail: String,
    pub ip: String,
    pub user_agent: String,
    /// The confirmation email's version (0: as shipped), for a confirmation.
    pub confirmation_email_version: Option<i64>,
    #[schema(format = DateTime)]
    pub at: String,
}

impl From<crate::consent::ConsentRecord> for ConsentView {
    fn from(r: crate::consent::ConsentRecord) -> Self {
        Self {
            at: jiff::Timestamp::from_millisecond(r.at)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            group: r.group_name,
            group_id: r.group_id,
            action: r.action,
            method: r.method,
            detail: r.detail,
            ip: r.ip,
            user_agent: r.user_agent,
            confirmation_email_version: r.email_version,
        }
    }
}

/// The answer for an id no contact has.
fn unknown_contact() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "Unknown contact",
        "No contact has this id.",
    )
}

/// "API key <name>": who made a request, as records name it.
fn key_name(req: &actix_web::HttpRequest) -> String {
    actix_web::HttpMessage::extensions(req)
        .get::<crate::api::keys::ApiKey>()
        .map(|k| format!("API key {}", k.name))
        .unwrap_or_default()
}

async fn view(state: &AppState, id: i64) -> Result<ContactView, Problem> {
    let c = contacts::find(&state.db, id)
        .await?
        .ok_or_else(unknown_contact)?;
    let attributes = contacts::attributes(&state.db, id)
        .await?
        .into_iter()
        .collect();
    let groups = contacts::groups::of_contact(&state.db, id)
        .await?
        .into_iter()
        .map(|g| GroupRef {
            id: g.id,
            name: g.name,
        })
        .collect();
    let pending_groups = crate::consent::pending_of(&state.db, id)
        .await?
        .into_iter()
        .map(|p| GroupRef {
            id: p.group_id,
            name: p.group_name,
        })
        .collect();
    let consent = crate::consent::records_of(&state.db, id)
        .await?
        .into_iter()
        .map(ConsentView::from)
        .collect();
    Ok(ContactView {
        id: c.id,
        status: c.status.code(),
        unsubscribed_from_all: c.is_opted_out(),
        email: c.email,
        first_name: c.first_name,
        last_name: c.last_name,
        attributes,
        groups,
        pending_groups,
        consent,
    })
}

/// One contact.
#[utoipa::path(
    get,
    path = "/api/v1/contacts/{id}",
    tag = "contacts",
    params(("id" = i64, Path, description = "The contact's id")),
    responses(
        (status = 200, description = "The contact", body = ContactView),
        (status = 400, description = "A control character in the address", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown contact", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_contact(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(view(&state, *id).await?))
}

/// The first message of a form's errors as a problem naming the field.
fn first_error(errors: crate::web::form::FieldErrors) -> Problem {
    let (field, message) = errors
        .into_iter()
        .next()
        .unwrap_or(("email", "Invalid.".into()));
    Problem::invalid(field, message)
}

/// Creates a contact (201) or updates the one with this email (200).
#[utoipa::path(
    post,
    path = "/api/v1/contacts",
    tag = "contacts",
    request_body = ContactRequest,
    responses(
        (status = 200, description = "Updated", body = ContactView),
        (status = 201, description = "Created", body = ContactView),
        (status = 400, description = "Bad JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Created at the same moment", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is wrong", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn post_contact(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, Problem> {
    let r: ContactRequest = read(body.into_inner())?;
    let existing = match crate::types::EmailAddress::parse(&r.email) {
        Ok(e) => contacts::find_by_email(&state.db, e.as_str()).await?,
        Err(e) => return Err(Problem::invalid("email", e.0)),
    };
    let mut attributes: BTreeMap<String, String> = match &existing {
        Some(c) => contacts::attributes(&state.db, c.id)
            .await?
            .into_iter()
            .collect(),
        None => BTreeMap::new(),
    };
    attributes.extend(r.attributes.clone());
    let form = ContactForm {
        email: r.email.clone(),
        first_name: r
            .first_name
            .clone()
            .or_else(|| existing.as_ref().map(|c| c.first_name.clone()))
            .unwrap_or_default(),
        last_name: r
            .last_name
            .clone()
            .or_else(|| existing.as_ref().map(|c| c.last_name.clone()))
            .unwrap_or_default(),
        attributes: attributes.into_iter().collect(),
    };
    let input = form.parse().map_err(first_error)?;
    for g in &r.groups {
        if contacts::groups::find(&state.db, *g).await?.is_none() {
            return Err(Problem::invalid(
                "groups",
                format!("No group has the id {g}."),
            ));
        }
    }
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let (id, status) = match &existing {
        Some(c) => {
            contacts::update(&mut tx, c, &input, now)
                .await
                .map_err(save_error)?;
            (c.id, StatusCode::OK)
        }
        None => (
            contacts::create(&mut tx, &input, Source::Api, now)
                .await
                .map_err(save_error)?,
            StatusCode::CREATED,
        ),
    };
    let key = key_name(&req);
    let how = How::new(Method::Api)
        .detail(key)
        .from_request(&req, &state.config.trusted_proxies);
    for g in &r.groups {
        crate::consent::subscribe(&mut tx, id, *g, &how, now).await?;
    }
    state.db.commit(tx).await?;
    Ok(HttpResponse::build(status).json(view(&state, id).await?))
}

fn save_error(e: contacts::SaveError) -> Problem {
    match e {
        contacts::SaveError::Duplicate => Problem::new(
            StatusCode::CONFLICT,
            "Conflict",
            "A contact with this email was created at the same moment; send the request again.",
        ),
        contacts::SaveError::Database(e) => e.into(),
    }
}

/// A job run.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunView {
    #[schema(value_type = i64)]
    pub id: RunId,
    pub status: String,
    #[schema(format = DateTime)]
    pub due_at: String,
    pub attempts: i64,
    pub target: Option<String>,
    pub outcome: Option<String>,
    pub last_error: Option<String>,
    /// The emails the run sent, and what became of each.
    pub deliveries: Vec<DeliveryView>,
}

/// An email Herald sent, and what the mail system later said of it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    /// password, message, reminder or test.
    pub kind: String,
    /// The recipient's address.
    pub address: String,
    pub contact_id: Option<i64>,
    /// The prepared message, for prepared messages.
    pub message_id: Option<i64>,
    /// The Message-ID header the email carried.
    pub smtp_message_id: String,
    #[schema(format = DateTime)]
    pub sent_at: String,
    /// sent, delayed, soft_bounce, hard_bounce or complained.
    pub fate: String,
    #[schema(format = DateTime)]
    pub fate_at: Option<String>,
    /// What the mail system said ("5.1.1 user unknown").
    pub fate_detail: String,
}

impl From<crate::deliveries::Delivery> for DeliveryView {
    fn from(d: crate::deliveries::Delivery) -> Self {
        let time = |ms: i64| {
            jiff::Timestamp::from_millisecond(ms)
                .map(|t| t.to_string())
                .unwrap_or_default()
        };
        Self {
            id: d.id,
            kind: d.kind().code().to_string(),
            contact_id: d.contact_id,
            message_id: d.message_id,
            smtp_message_id: d.smtp_message_id.clone(),
            sent_at: time(d.sent_at),
            fate: d.fate().code().to_string(),
            fate_at: d.fate_at.map(time),
            fate_detail: d.fate_detail,
            address: d.address,
        }
    }
}

/// One run.
#[utoipa::path(
    get,
    path = "/api/v1/runs/{id}",
    tag = "runs",
    params(("id" = i64, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The run", body = RunView),
        (status = 400, description = "A control character in the address", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown run", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_run(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    let run = crate::scheduler::runs::run(&state.db, RunId(*id))
        .await?
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "Unknown run", "No run has this id."))?;
    let deliveries = crate::deliveries::of_run(&state.db, run.id.0).await?;
    Ok(HttpResponse::Ok().json(RunView {
        deliveries: deliveries.into_iter().map(DeliveryView::from).collect(),
        id: run.id,
        status: run.status.code().to_string(),
        due_at: jiff::Timestamp::from_millisecond(run.due_at)
            .map(|t| t.to_string())
            .unwrap_or_default(),
        attempts: run.attempts,
        target: run
            .target_kind
            .clone()
            .zip(run.target_id)
            .map(|(k, i)| format!("{k}:{i}")),
        outcome: run.outcome,
        last_error: run.last_error,
    }))
}

/// Everything Herald holds about one contact (the right of access): profile,
/// attributes, groups and pending ones, consent records, events, runs, emails with
/// their fates, opens and clicks.
#[utoipa::path(
    get,
    path = "/api/v1/contacts/{id}/export",
    tag = "contacts",
    params(("id" = i64, Path, description = "The contact's id")),
    responses(
        (status = 200, description = "The contact's data", body = Object),
        (status = 400, description = "A control character in the address", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown contact", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn export_contact(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    id: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    let key = key_name(&req);
    let entry = crate::audit::Entry {
        actor: &crate::audit::Actor::named(key),
        action: crate::audit::Action::ContactExported,
        target: &format!("contact #{}", *id),
        detail: "",
        ip: &crate::web::client_ip(&req, &state.config.trusted_proxies),
    };
    let data = contacts::export::audited(&state.db, *id, state.clock.now_ms(), entry)
        .await?
        .ok_or_else(unknown_contact)?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(data))
}
