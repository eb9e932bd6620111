//! Try it, as a page: the form (who, when, the event's values) and the answer,
//! by GET so it works without JavaScript and can be bookmarked.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::load;
use crate::audit::{self, Action, Actor};
use crate::automations::model::Automation;
use crate::events::catalogue::{FilterKind, Source};
use crate::jobs::registry::Registry;
use crate::state::AppState;
use crate::types::AutomationId;
use crate::web::{AppError, CurrentUser, PageContext, client_ip, render};
use crate::worker::try_it_answer::{Answer, TryError, TryQuery};

#[derive(Template)]
#[template(path = "automations/try_it.html")]
struct TryPage {
    ctx: PageContext,
    a: Automation,
    q: TryQuery,
    filter: FilterKind,
    groups: Vec<(i64, String)>,
    users: Vec<(i64, String)>,
    messages: Vec<(i64, String)>,
    sources: [Source; 4],
    answer: Option<Answer>,
    /// A value to correct: (field, message).
    error: Option<(&'static str, String)>,
    zone: String,
}

impl TryPage {
    fn asks(&self, kind: &str) -> bool {
        matches!(
            (self.filter, kind),
            (FilterKind::Group, "group")
                | (FilterKind::Attribute, "attribute")
                | (FilterKind::Source, "source")
                | (FilterKind::Name, "name")
                | (FilterKind::Role, "role")
                | (FilterKind::Success, "success")
                | (FilterKind::Response, "response")
                | (
                    FilterKind::Opened | FilterKind::Clicked,
                    "message" | "first"
                )
                | (FilterKind::Clicked, "link")
        )
    }
    fn responses(&self) -> [crate::events::catalogue::Response; 3] {
        crate::events::catalogue::Response::ALL
    }
    fn error_for(&self, field: &str) -> Option<&String> {
        self.error
            .as_ref()
            .filter(|(f, _)| *f == field)
            .map(|(_, m)| m)
    }
}

/// Records who tried what (the only thing Try it writes).
async fn audit_tried(state: &AppState, req: &HttpRequest, me: &CurrentUser, a: &Automation) {
    let ip = client_ip(req, &state.config.trusted_proxies);
    let entry = audit::Entry {
        actor: &Actor::user(me.id, &me.email),
        action: Action::AutomationTried,
        target: &a.name,
        detail: "",
        ip: &ip,
    };
    if let Err(e) = audit::record_now(&state.db, state.clock.now_ms(), entry).await {
        tracing::warn!(error = %e, "auditing Try it failed");
    }
}

pub(super) async fn try_page(
    state: web::Data<AppState>,
    jobs: web::Data<Registry>,
    ctx: PageContext,
    me: CurrentUser,
    req: HttpRequest,
    id: web::Path<AutomationId>,
    query: web::Query<TryQuery>,
) -> Result<HttpResponse, AppError> {
    let a = load(&state, *id).await?;
    let q = query.into_inner();
    let asked = req.query_string().contains("try=");
    let (answer, error) = if asked {
        match crate::worker::try_it_answer::answer(&state, &jobs, &a, &q).await {
            Ok(answer) => {
                audit_tried(&state, &req, &me, &a).await;
                (Some(answer), None)
            }
            Err(TryError::Invalid { field, message }) => (None, Some((field, message))),
            Err(TryError::Database(e)) => return Err(e.into()),
        }
    } else {
        (None, None)
    };
    let groups = crate::contacts::groups::list(&state.db)
        .await?
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect();
    let users = crate::auth::users::list(&state.db)
        .await?
        .into_iter()
        .map(|u| (u.id, u.email))
        .collect();
    let messages = crate::messages::store::list(&state.db)
        .await?
        .into_iter()
        .map(|m| (m.id, m.name))
        .collect();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    render(
        status,
        &TryPage {
            ctx,
            filter: a.event.filter_kind(),
            zone: a.time_zone.clone(),
            a,
            q,
            groups,
            users,
            messages,
            sources: Source::ALL,
            answer,
            error,
        },
    )
}
