//! `GET /api/v1/messages/{id}/stats` and `/api/v1/automations/{id}/stats`: the
//! statistics the pages show, as JSON — figures and rates over the last `days`
//! days (in the zone of Settings), each day, and the links.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::api::problem::Problem;
use crate::state::AppState;
use crate::stats::{Report, Scope};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// The range: the last 7, 30 (the default), 90 or 365 days, today included.
    #[serde(default)]
    pub days: Option<usize>,
}

/// The rates, in percent.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Rates {
    /// Unique opens of the delivered emails.
    pub open_rate: f64,
    /// Unique clicks of the delivered emails.
    pub click_rate: f64,
    /// Unique clicks of the unique opens.
    pub click_to_open_rate: f64,
}

/// A message's or automation's statistics.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StatsView {
    pub id: i64,
    pub name: String,
    pub days: usize,
    /// The zone the days are counted in (Settings' default zone).
    pub time_zone: String,
    pub rates: Rates,
    #[serde(flatten)]
    pub report: Report,
}

/// The name of the message or automation `scope` names; `None` when it is gone.
pub async fn name_of(db: &crate::db::Db, scope: Scope) -> Result<Option<String>, sqlx::Error> {
    Ok(match scope {
        Scope::Message(id) => crate::messages::store::find(db, id).await?.map(|m| m.name),
        Scope::Automation(id) => {
            crate::automations::store::find(db, crate::types::AutomationId(id))
                .await?
                .map(|a| a.name)
        }
    })
}

async fn view(state: &AppState, scope: Scope, days: Option<usize>) -> Result<StatsView, Problem> {
    let days = days.unwrap_or(30);
    if !crate::stats::RANGES.contains(&days) {
        return Err(Problem::invalid("days", "Ask for 7, 30, 90 or 365 days."));
    }
    let title = match scope {
        Scope::Message(_) => "Unknown message",
        Scope::Automation(_) => "Unknown automation",
    };
    let (id, name) = match name_of(&state.db, scope).await? {
        Some(name) => (scope.id(), name),
        None => {
            let detail = format!("No {} has this id.", scope.noun());
            return Err(Problem::new(StatusCode::NOT_FOUND, title, detail));
        }
    };
    let settings = state.settings.load(&state.db).await?;
    let zone =
        jiff::tz::TimeZone::get(&settings.default_time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let report = crate::stats::report(&state.db, scope, state.clock.now_ms(), days, &zone).await?;
    let f = &report.figures;
    Ok(StatsView {
        id,
        name,
        days,
        time_zone: settings.default_time_zone.clone(),
        rates: Rates {
            open_rate: f.open_rate(),
            click_rate: f.click_rate(),
            click_to_open_rate: f.click_to_open_rate(),
        },
        report,
    })
}

/// A prepared message's statistics.
#[utoipa::path(
    get,
    path = "/api/v1/messages/{id}/stats",
    tag = "statistics",
    params(("id" = i64, Path, description = "The message's id"), StatsQuery),
    responses(
        (status = 200, description = "The statistics", body = StatsView),
        (status = 400, description = "A query parameter that is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown message", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A range other than 7, 30, 90 or 365 days", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn message(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    q: web::Query<StatsQuery>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(view(&state, Scope::Message(*id), q.days).await?))
}

/// An automation's statistics (every email its runs sent).
#[utoipa::path(
    get,
    path = "/api/v1/automations/{id}/stats",
    tag = "statistics",
    params(("id" = i64, Path, description = "The automation's id"), StatsQuery),
    responses(
        (status = 200, description = "The statistics", body = StatsView),
        (status = 400, description = "A query parameter that is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown automation", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A range other than 7, 30, 90 or 365 days", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn automation(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    q: web::Query<StatsQuery>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(view(&state, Scope::Automation(*id), q.days).await?))
}
