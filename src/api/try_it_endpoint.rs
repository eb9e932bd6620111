//! `GET /api/v1/automations/{id}/try`: Try it as JSON — when and whether an
//! automation would run for a contact and a moment, recording nothing.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::api::problem::Problem;
use crate::jobs::registry::Registry;
use crate::state::AppState;
use crate::types::AutomationId;
use crate::worker::try_it_answer::{Answer, TryError, TryQuery};

/// Try an automation.
#[utoipa::path(
    get,
    path = "/api/v1/automations/{id}/try",
    tag = "automations",
    params(("id" = i64, Path, description = "The automation's id"), TryQuery),
    responses(
        (status = 200, description = "What would happen", body = Answer),
        (status = 400, description = "A control character in the address", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown automation", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A value to correct, named", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn try_automation(
    state: web::Data<AppState>,
    jobs: web::Data<Registry>,
    id: web::Path<i64>,
    query: web::Query<TryQuery>,
) -> Result<HttpResponse, Problem> {
    let a = crate::automations::store::find(&state.db, AutomationId(*id))
        .await?
        .ok_or_else(|| {
            Problem::new(
                StatusCode::NOT_FOUND,
                "Unknown automation",
                "No automation has this id.",
            )
        })?;
    match crate::worker::try_it_answer::answer(&state, &jobs, &a, &query).await {
        Ok(answer) => Ok(HttpResponse::Ok().json(answer)),
        Err(TryError::Invalid { field, message }) => Err(Problem::invalid(field, message)),
        Err(TryError::Database(e)) => Err(e.into()),
    }
}
