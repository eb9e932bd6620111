//! Window 1, Edit Event: name, event, its Define Event filter and the selection.

use actix_session::SessionExt;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::{Choices, choices, load};
use crate::audit::Action;
use crate::auth::users::{self, Role};
use crate::automations::model::{Automation, Condition, EventFilter, Target};
use crate::automations::store;
use crate::automations::wizard::{EventPart, parse_event};
use crate::contacts::groups;
use crate::events::catalogue::{EventType, FilterKind, Source};
use crate::jobs::registry::Registry;
use crate::settings::Settings;
use crate::state::AppState;
use crate::types::AutomationId;
use crate::web::form::{Checked, FieldErrors, Fields, FormPage, Refused};
use crate::web::{
    AppError, CurrentUser, FlashKind, PageContext, audited_change, flash, redirect, render,
};

#[derive(Template)]
#[template(path = "automations/event.html")]
struct EventPage {
    ctx: PageContext,
    id: Option<AutomationId>,
    f: Fields,
    errors: FieldErrors,
    choices: Choices,
    wizard: super::Wizard,
}

crate::form_page!(EventPage);

impl EventPage {
    fn grouped(&self) -> Vec<(&'static str, Vec<EventType>)> {
        EventType::grouped()
    }
    fn sources(&self) -> [Source; 4] {
        Source::ALL
    }
    fn responses(&self) -> [crate::events::catalogue::Response; 3] {
        crate::events::catalogue::Response::ALL
    }
    fn roles(&self) -> [Role; 2] {
        Role::ALL
    }
    fn action(&self) -> String {
        self.id.map_or_else(
            || "/automations".to_string(),
            |id| format!("/automations/{id}/event"),
        )
    }
    /// The event codes whose filter is `kind` (for showing the right filter only).
    fn events_with(&self, kind: &str) -> String {
        let kind = match kind {
            "source" => FilterKind::Source,
            "group" => FilterKind::Group,
            "attribute" => FilterKind::Attribute,
            "name" => FilterKind::Name,
            "user" => FilterKind::SystemUser,
            "role" => FilterKind::Role,
            "success" => FilterKind::Success,
            "response" => FilterKind::Response,
            "clicked" => FilterKind::Clicked,
            // The message and first-time filters are shared by both.
            "engaged" => {
                return Self::codes(|e| {
                    matches!(e.filter_kind(), FilterKind::Opened | FilterKind::Clicked)
                });
            }
            _ => FilterKind::None,
        };
        Self::codes(|e| e.filter_kind() == kind)
    }
    /// The event codes that have a filter at all.
    fn events_with_a_filter(&self) -> String {
        Self::codes(|e| e.filter_kind() != FilterKind::None)
    }
    /// The event codes of scope `code` ("C" or "S"), for the selection conditions
    /// that apply to their target.
    fn events_of_scope(&self, code: &str) -> String {
        Self::codes(|e| e.scope().code() == code)
    }
    fn codes(keep: impl Fn(&EventType) -> bool) -> String {
        EventType::ALL
            .iter()
            .filter(|e| keep(e))
            .map(|e| e.code())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn event_fields(a: &Automation) -> Fields {
    let mut f = Fields::default();
    f.set("name", &a.name);
    f.set("description", &a.description);
    f.set("event", a.event.code());
    match &a.filter {
        EventFilter::Any => {}
        EventFilter::Source { source } => f.set("filter_source", source.code()),
        EventFilter::Group { group_id } => f.set("filter_group", group_id.to_string()),
        EventFilter::Attribute { name } => f.set("filter_attribute", name),
        EventFilter::Name { name } => f.set("filter_name", name),
        EventFilter::SystemUser { user_id } => f.set("filter_user", user_id.to_string()),
        EventFilter::Role { role } => f.set("filter_role", role),
        EventFilter::Success { success } => {
            f.set("filter_success", if *success { "yes" } else { "no" })
        }
        EventFilter::Response { response } => f.set("filter_response", response.code()),
        EventFilter::Engagement {
            message_id,
            link,
            first_only,
        } => {
            if let Some(id) = message_id {
                f.set("filter_message", id.to_string());
            }
            f.set("filter_link", link);
            if *first_only {
                f.set("filter_first", "yes");
            }
        }
    }
    for c in &a.selection {
        match c {
            Condition::MemberOf { group_id } => f.set("sel_group", group_id.to_string()),
            Condition::AttributeEquals { name, value } => {
                f.set("sel_attr_name", name);
                f.set("sel_attr_value", value);
            }
            Condition::RoleIs { role } => f.set("sel_role", role),
        }
    }
    f
}

pub(super) async fn new_page(
    state: web::Data<AppState>,
    ctx: PageContext,
) -> Result<HttpResponse, AppError> {
    let choices = choices(&state).await?;
    render(
        StatusCode::OK,
        &EventPage {
            ctx,
            id: None,
            f: Fields::default(),
            errors: FieldErrors::new(),
            choices,
            wizard: super::Wizard::new_automation(),
        },
    )
}

pub(super) async fn event_page(
    state: web::Data<AppState>,
    ctx: PageContext,
    id: web::Path<AutomationId>,
) -> Result<HttpResponse, AppError> {
    let a = load(&state, *id).await?;
    let choices = choices(&state).await?;
    render(
        StatusCode::OK,
        &EventPage {
            ctx,
            id: Some(a.id),
            f: event_fields(&a),
            errors: FieldErrors::new(),
            choices,
            wizard: super::Wizard::of(&a, 1),
        },
    )
}

/// Parses Edit Event and checks that the groups and users it names exist.
async fn checked_event(state: &AppState, f: &Fields) -> Checked<EventPart> {
    let part = parse_event(f)?;
    let mut errors = FieldErrors::new();
    let group_exists = async |id: i64| groups::find(&state.db, id).await.map(|g| g.is_some());
    if let EventFilter::Group { group_id } = part.filter
        && !group_exists(group_id).await?
    {
        errors.insert(
            "filter_group",
            "This group does not exist (any more).".into(),
        );
    }
    if let EventFilter::SystemUser { user_id } = part.filter
        && users::find(&state.db, user_id).await?.is_none()
    {
        errors.insert("filter_user", "This system user does not exist.".into());
    }
    for c in &part.selection {
        if let Condition::MemberOf { group_id } = c
            && !group_exists(*group_id).await?
        {
            errors.insert("sel_group", "This group does not exist (any more).".into());
        }
    }
    if errors.is_empty() {
        Ok(part)
    } else {
        Err(Refused::Invalid(errors))
    }
}

async fn event_invalid(
    state: &AppState,
    ctx: PageContext,
    id: Option<AutomationId>,
    f: Fields,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let choices = choices(state).await?;
    let wizard = match id {
        Some(id) => super::Wizard::of(&load(state, id).await?, 1),
        None => super::Wizard::new_automation(),
    };
    render(
        StatusCode::UNPROCESSABLE_ENTITY,
        &EventPage {
            ctx,
            id,
            f,
            errors,
            choices,
            wizard,
        },
    )
}

pub(super) async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: PageContext,
    me: CurrentUser,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let f = Fields::from_pairs(form.into_inner());
    let part = match checked_event(&state, &f).await {
        Ok(p) => p,
        Err(r) => return event_invalid(&state, ctx, None, f, r.fields()?).await,
    };
    let zone = Settings::load(&state.db).await?.default_time_zone;
    let mut id = AutomationId(0);
    audited_change(
        &state,
        &req,
        &me,
        Action::AutomationCreated,
        &part.name,
        "",
        async |tx, now| {
            id = store::create(tx, me.id, &part, &zone, now).await?;
            Ok(())
        },
    )
    .await?;
    Ok(redirect(&format!("/automations/{id}/job")))
}

pub(super) async fn save_event(
    state: web::Data<AppState>,
    jobs: web::Data<Registry>,
    req: HttpRequest,
    ctx: PageContext,
    me: CurrentUser,
    id: web::Path<AutomationId>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let session = req.get_session();
    let a = load(&state, *id).await?;
    let f = Fields::from_pairs(form.into_inner());
    let part = match checked_event(&state, &f).await {
        Ok(p) => p,
        Err(r) => return event_invalid(&state, ctx, Some(a.id), f, r.fields()?).await,
    };
    let job_fits = a
        .job
        .as_deref()
        .is_none_or(|kind| jobs.fits(kind, a.target == Some(Target::EventParameter), part.event));
    audited_change(
        &state,
        &req,
        &me,
        Action::AutomationChanged,
        &part.name,
        "Edit Event",
        async |tx, now| store::save_event(tx, &a, &part, job_fits, now).await,
    )
    .await?;
    if !job_fits {
        flash(
            &session,
            FlashKind::Info,
            "The job did not fit the new event; choose it again.",
        );
    }
    Ok(redirect(&format!("/automations/{}/job", a.id)))
}
