//! The automations overview: filter, search, pages; Activate and Deactivate.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::audit::Action;
use crate::automations::model::{Automation, State, Status};
use crate::automations::store;
use crate::jobs::registry::Registry;
use crate::state::AppState;
use crate::types::AutomationId;
use crate::web::form::Fields;
use crate::web::{
    AppError, CurrentUser, FlashKind, PageContext, audited_change, flash, redirect, render,
};

const PAGE_SIZE: i64 = 50;

#[derive(Deserialize)]
pub(super) struct OverviewQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    q: String,
    page: Option<i64>,
}

/// One overview row.
pub struct Line {
    pub a: Automation,
    /// The job's label.
    pub job: &'static str,
    pub status: Status,
    pub errors: crate::scheduler::runs::ErrorSummary,
}

#[derive(Template)]
#[template(path = "automations/list.html")]
struct OverviewPage {
    ctx: PageContext,
    lines: Vec<Line>,
    status: String,
    q: String,
    page: i64,
    more: bool,
    statuses: [Status; 5],
}

impl OverviewPage {
    fn page_link(&self, page: i64) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("status", &self.status)
            .append_pair("q", &self.q)
            .append_pair("page", &page.to_string())
            .finish()
    }
}

pub(super) async fn overview(
    state: web::Data<AppState>,
    jobs: web::Data<Registry>,
    ctx: PageContext,
    query: web::Query<OverviewQuery>,
) -> Result<HttpResponse, AppError> {
    let now = state.clock.now_ms();
    let status = Status::from_code(&query.status);
    let page = query.page.unwrap_or(1).clamp(1, 100_000);
    let q: String = query.q.chars().take(100).collect();
    let (list, more) = store::list(&state.db, now, status, &q, page, PAGE_SIZE).await?;
    let ids: Vec<AutomationId> = list.iter().map(|a| a.id).collect();
    let mut errors = crate::scheduler::runs::error_summaries(&state.db, &ids).await?;
    let lines = list
        .into_iter()
        .map(|a| Line {
            status: a.status(now),
            errors: errors.remove(&a.id).unwrap_or_default(),
            job: jobs.label(a.job.as_deref()),
            a,
        })
        .collect();
    render(
        StatusCode::OK,
        &OverviewPage {
            ctx,
            lines,
            status: status.map_or("", Status::code).to_string(),
            q,
            page,
            more,
            statuses: Status::ALL,
        },
    )
}

/// Activate or Deactivate the checked rows of the overview.
pub(super) async fn change_state(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: CurrentUser,
    session: Session,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let f = Fields::from_pairs(form.into_inner());
    let (target, action, verb) = match f.get("action") {
        "activate" => (State::Active, Action::AutomationActivated, "activated"),
        "deactivate" => (
            State::Deactivated,
            Action::AutomationDeactivated,
            "deactivated",
        ),
        _ => {
            return Err(AppError::BadRequest(
                "Choose Activate or Deactivate.".into(),
            ));
        }
    };
    let ids: Vec<AutomationId> = f
        .all("ids")
        .iter()
        .filter_map(|v| v.parse().ok().map(AutomationId))
        .collect();
    if ids.is_empty() {
        flash(
            &session,
            FlashKind::Error,
            "Tick the automations to change first.",
        );
        return Ok(redirect("/automations"));
    }
    let mut changed = Vec::new();
    let mut incomplete = Vec::new();
    for id in ids {
        let Some(a) = store::find(&state.db, id).await? else {
            continue;
        };
        if target == State::Active && !a.is_complete() {
            incomplete.push(a.name);
            continue;
        }
        if a.state != target {
            audited_change(&state, &req, &me, action, &a.name, "", async |tx, now| {
                store::set_state(tx, a.id, target, now).await
            })
            .await?;
            changed.push(a.name);
        }
    }
    if !changed.is_empty() {
        flash(
            &session,
            FlashKind::Success,
            format!("{} {verb}: {}.", changed.len(), changed.join(", ")),
        );
    }
    if !incomplete.is_empty() {
        flash(
            &session,
            FlashKind::Error,
            format!(
                "Not activated, because their job or time frame is missing: {}.",
                incomplete.join(", ")
            ),
        );
    }
    // From an automation's own page, back to it.
    match f.get("back").parse::<i64>() {
        Ok(id) if ids_single(&f) == Some(id) => Ok(redirect(&format!("/automations/{id}"))),
        _ => Ok(redirect("/automations")),
    }
}

/// The one automation ticked, if exactly one was.
fn ids_single(f: &Fields) -> Option<i64> {
    match f.all("ids") {
        [one] => one.parse().ok(),
        _ => None,
    }
}
