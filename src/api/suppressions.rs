//! `GET /api/v1/suppressions` (the list, or one address), `POST` (suppress an
//! address) and `DELETE /api/v1/suppressions/{address}` (take it off). Changes
//! are audited under the key's name.

use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::api::events::read;
use crate::api::problem::Problem;
use crate::audit::{self, Action, Actor};
use crate::state::AppState;
use crate::suppressions::{self, Reason, Suppression};
use crate::types::EmailAddress;

/// A suppressed address.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SuppressionView {
    pub address: String,
    /// `hard_bounce`, `soft_bounces`, `complaint` or `manual`.
    pub reason: &'static str,
    /// Who or what added it.
    pub source: String,
    pub detail: String,
    /// When, in RFC 3339 (UTC).
    pub added_at: String,
}

impl From<Suppression> for SuppressionView {
    fn from(s: Suppression) -> Self {
        Self {
            reason: s.reason.code(),
            added_at: jiff::Timestamp::from_millisecond(s.created_at)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            address: s.address,
            source: s.source,
            detail: s.detail,
        }
    }
}

/// A page of the list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SuppressionList {
    pub suppressions: Vec<SuppressionView>,
    /// Entries that match, on every page.
    pub total: i64,
    /// The `offset` of the next page, if there is one.
    pub next_offset: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only addresses that contain this text.
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub offset: i64,
    /// At most 1,000 (100 if left out).
    pub limit: Option<i64>,
}

/// An address to suppress.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuppressionRequest {
    pub address: String,
    /// Why, in a few words (kept with the entry).
    #[serde(default)]
    pub note: String,
}

/// The key's name, for the audit log.
fn caller(req: &HttpRequest) -> String {
    req.extensions()
        .get::<crate::api::keys::ApiKey>()
        .map_or_else(|| "API key".to_string(), |k| format!("API key {}", k.name))
}

/// The suppression list, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/suppressions",
    tag = "suppressions",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of the list", body = SuppressionList),
        (status = 400, description = "A query parameter that is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, Problem> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let offset = query.offset.clamp(0, suppressions::MAX_OFFSET);
    let (entries, total) = suppressions::page(&state.db, &query.q, offset, limit).await?;
    Ok(HttpResponse::Ok().json(SuppressionList {
        suppressions: entries.into_iter().map(SuppressionView::from).collect(),
        total,
        next_offset: (offset + limit < total).then_some(offset + limit),
    }))
}

/// Suppresses an address (201), or answers the entry it already has (200).
#[utoipa::path(
    post,
    path = "/api/v1/suppressions",
    tag = "suppressions",
    request_body = SuppressionRequest,
    responses(
        (status = 200, description = "Already suppressed", body = SuppressionView),
        (status = 201, description = "Suppressed", body = SuppressionView),
        (status = 400, description = "Bad JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not an address", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn add(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, Problem> {
    let r: SuppressionRequest = read(body.into_inner())?;
    let address = EmailAddress::parse(&r.address).map_err(|e| Problem::invalid("address", e.0))?;
    if r.note.chars().count() > suppressions::MAX_DETAIL_CHARS || r.note.contains(char::is_control)
    {
        return Err(Problem::invalid(
            "note",
            format!(
                "One line of at most {} characters.",
                suppressions::MAX_DETAIL_CHARS
            ),
        ));
    }
    let who = caller(&req);
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let added = suppressions::add(&mut tx, &address, Reason::Manual, &who, &r.note, now).await?;
    if added {
        audit::record(
            &mut tx,
            now,
            audit::Entry {
                actor: &Actor::named(&who),
                action: Action::SuppressionAdded,
                target: address.as_str(),
                detail: Reason::Manual.code(),
                ip: "",
            },
        )
        .await?;
    }
    state.db.commit(tx).await?;
    let entry = suppressions::find(&state.db, address.as_str())
        .await?
        .ok_or_else(|| {
            Problem::new(
                StatusCode::CONFLICT,
                "Conflict",
                "Removed at the same moment.",
            )
        })?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(SuppressionView::from(entry)))
}

/// Takes an address off the list (204); 404 when it is not on it.
#[utoipa::path(
    delete,
    path = "/api/v1/suppressions/{address}",
    tag = "suppressions",
    params(("address" = String, Path, description = "The address, in any case")),
    responses(
        (status = 204, description = "Taken off"),
        (status = 400, description = "A control character in the address", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not on the list", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn remove(
    state: web::Data<AppState>,
    req: HttpRequest,
    address: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let who = caller(&req);
    let now = state.clock.now_ms();
    let entry = suppressions::find(&state.db, &address).await?;
    let mut tx = state.db.begin().await?;
    let removed = suppressions::remove(&mut tx, &address).await?;
    let Some(entry) = entry.filter(|_| removed) else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "Not suppressed",
            "This address is not on the suppression list.",
        ));
    };
    audit::record(
        &mut tx,
        now,
        audit::Entry {
            actor: &Actor::named(&who),
            action: Action::SuppressionRemoved,
            target: &entry.address,
            detail: entry.reason.code(),
            ip: "",
        },
    )
    .await?;
    state.db.commit(tx).await?;
    Ok(HttpResponse::NoContent().finish())
}
