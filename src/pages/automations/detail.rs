//! An automation's page: its settings and its runs (retry, cancel); copy and
//! delete.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::load;
use crate::audit::Action;
use crate::auth::users::{self};
use crate::automations::model::{Automation, Condition, EventFilter, Status, Target};
use crate::automations::store;
use crate::contacts::groups;
use crate::jobs::registry::Registry;
use crate::state::AppState;
use crate::types::AutomationId;
use crate::web::{
    AppError, ConfirmPage, CurrentUser, FlashKind, PageContext, audited_change, flash, redirect,
    render,
};

impl ShowPage {
    /// The emails run `id` sent.
    fn sent_by(&self, id: &crate::types::RunId) -> &[crate::deliveries::Delivery] {
        self.deliveries.get(&id.0).map_or(&[], Vec::as_slice)
    }
}

#[derive(Template)]
#[template(path = "automations/show.html")]
struct ShowPage {
    ctx: PageContext,
    runs: Vec<crate::scheduler::runs::RunRow>,
    /// The emails each run sent, and what became of them.
    deliveries: std::collections::HashMap<i64, Vec<crate::deliveries::Delivery>>,
    /// The zone run times are shown in (Settings).
    zone: String,
    a: Automation,
    job: &'static str,
    /// What the job does with its settings, in words.
    job_words: String,
    /// The prepared message it sends (id and name), linked; `None` for none (or
    /// a deleted one, which the words name).
    message: Option<(i64, String)>,
    status: Status,
    target: String,
    filter: String,
    selection: Vec<String>,
    notify: Vec<String>,
    /// For a password automation: requests the preference center turned away in
    /// the last 24 hours (too many for one address), which reached no automation.
    limited_24h: Option<i64>,
}

async fn describe_filter(state: &AppState, f: &EventFilter) -> Result<String, AppError> {
    Ok(match f {
        EventFilter::Any => "Any".into(),
        EventFilter::Source { source } => format!("Source: {}", source.label()),
        EventFilter::Group { group_id } => {
            format!("Group: {}", group_name(state, *group_id).await?)
        }
        EventFilter::Attribute { name } => format!("Attribute: {name}"),
        EventFilter::Name { name } => format!("Name equals {name:?}"),
        EventFilter::SystemUser { user_id } => {
            format!("System user: {}", user_email(state, *user_id).await?)
        }
        EventFilter::Role { role } => format!("Role: {role}"),
        EventFilter::Success { success } => {
            format!("Success: {}", if *success { "yes" } else { "no" })
        }
        EventFilter::Response { response } => format!("Response: {}", response.label()),
        EventFilter::Engagement {
            message_id,
            link,
            first_only,
        } => {
            let message = match message_id {
                Some(id) => crate::messages::store::name_of(&state.db, *id).await?,
                None => String::new(),
            };
            let words = crate::automations::model::engagement_words(&message, link, *first_only);
            format!("{}{}", words[..1].to_uppercase(), &words[1..])
        }
    })
}

async fn group_name(state: &AppState, id: i64) -> Result<String, AppError> {
    Ok(groups::find(&state.db, id)
        .await?
        .map_or_else(|| format!("group #{id} (deleted)"), |g| g.name))
}

async fn user_email(state: &AppState, id: i64) -> Result<String, AppError> {
    Ok(users::find(&state.db, id)
        .await?
        .map_or_else(|| format!("user #{id} (deleted)"), |u| u.email))
}

pub(super) async fn show(
    state: web::Data<AppState>,
    jobs: web::Data<Registry>,
    ctx: PageContext,
    id: web::Path<AutomationId>,
) -> Result<HttpResponse, AppError> {
    let a = load(&state, *id).await?;
    // A fixed target, looked up once: named under Job, and on the runs not yet run.
    let fixed = match a.target {
        Some(Target::Contact(id)) => crate::contacts::find(&state.db, id).await?.map(|c| {
            (
                "contact",
                id,
                format!("{} {}", c.first_name, c.last_name),
                c.email,
            )
        }),
        Some(Target::SystemUser(id)) => users::find(&state.db, id)
            .await?
            .map(|u| ("system_user", id, u.name, u.email)),
        _ => None,
    };
    let target = match (a.target, &fixed) {
        (None, _) => "—".to_string(),
        (Some(Target::EventParameter), _) => "Use Event Parameter".into(),
        (Some(_), Some((_, _, _, email))) => email.clone(),
        (Some(Target::Contact(id)), None) => format!("contact #{id} (deleted)"),
        (Some(Target::SystemUser(id)), None) => format!("user #{id} (deleted)"),
    };
    let filter = describe_filter(&state, &a.filter).await?;
    let mut selection = Vec::new();
    for c in &a.selection {
        selection.push(match c {
            Condition::MemberOf { group_id } => {
                format!("Member of {}", group_name(&state, *group_id).await?)
            }
            Condition::AttributeEquals { name, value } => format!("{name} equals {value:?}"),
            Condition::RoleIs { role } => format!("Role is {role}"),
        });
    }
    let mut notify = Vec::new();
    for id in &a.notify {
        notify.push(user_email(&state, *id).await?);
    }
    let status = a.status(state.clock.now_ms());
    let mut runs = crate::scheduler::runs::runs_of(&state.db, a.id, 100).await?;
    // Runs not yet run name whom they will be for, as soon as it is known.
    let expected = match a.target {
        Some(Target::EventParameter) => Some(None),
        Some(_) => fixed
            .as_ref()
            .map(|(k, id, n, e)| Some((*k, *id, n.as_str(), e.as_str()))),
        None => None,
    };
    if let Some(expected) = expected {
        for r in runs.iter_mut() {
            r.expect_target(expected);
        }
    }
    let ids: Vec<i64> = runs.iter().map(|r| r.id.0).collect();
    let deliveries = crate::deliveries::of_runs(&state.db, &ids).await?;
    let zone = crate::settings::Settings::load(&state.db)
        .await?
        .default_time_zone;
    let limited_24h = if a.event == crate::events::catalogue::EventType::NewPasswordRequested {
        Some(
            crate::audit::count_since(
                &state.db,
                Action::PasswordRequestLimited,
                state.clock.now_ms() - 24 * 3_600_000,
            )
            .await?,
        )
    } else {
        None
    };
    let chosen = a.job.as_deref().and_then(|k| jobs.get(k));
    let (job_words, message) = match chosen {
        Some(job) => {
            let names = crate::jobs::registry::Choices::load(&state.db).await?;
            let message = job
                .message(&a.job_config)
                .and_then(|id| names.messages.iter().find(|(m, _)| *m == id).cloned());
            (job.explain(&a.job_config, &names), message)
        }
        None => ("Not defined yet: open Define Job.".into(), None),
    };
    render(
        StatusCode::OK,
        &ShowPage {
            zone,
            limited_24h,
            job_words,
            message,
            job: jobs.label(a.job.as_deref()),
            ctx,
            runs,
            deliveries,
            a,
            status,
            target,
            filter,
            selection,
            notify,
        },
    )
}

pub(super) async fn copy(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: CurrentUser,
    session: Session,
    id: web::Path<AutomationId>,
) -> Result<HttpResponse, AppError> {
    let a = load(&state, *id).await?;
    let mut new_id = AutomationId(0);
    // The entry names the new automation (as the store names it) and its original.
    let copy_name: String = format!("Copy of {}", a.name).chars().take(100).collect();
    audited_change(
        &state,
        &req,
        &me,
        Action::AutomationCreated,
        &copy_name,
        &format!("copy of {}", a.name),
        async |tx, now| {
            new_id = store::copy(tx, a.id, me.id, now).await?;
            Ok(())
        },
    )
    .await?;
    flash(
        &session,
        FlashKind::Success,
        format!(
            "Copied {}. The copy is inactive until you activate it.",
            a.name
        ),
    );
    Ok(redirect(&format!("/automations/{new_id}/event")))
}

pub(super) async fn confirm_delete(
    state: web::Data<AppState>,
    ctx: PageContext,
    id: web::Path<AutomationId>,
) -> Result<HttpResponse, AppError> {
    let a = load(&state, *id).await?;
    ConfirmPage {
        ctx,
        title: format!("Delete the automation {}?", a.name),
        message: "It stops reacting to events at once. This cannot be undone; use Deactivate to pause it instead.".into(),
        action: format!("/automations/{}/delete", a.id),
        button: "Delete automation",
        cancel: format!("/automations/{}", a.id),
    }
    .render()
}

pub(super) async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: CurrentUser,
    session: Session,
    id: web::Path<AutomationId>,
) -> Result<HttpResponse, AppError> {
    let a = load(&state, *id).await?;
    audited_change(
        &state,
        &req,
        &me,
        Action::AutomationDeleted,
        &a.name,
        &format!("automation #{}", a.id),
        async |tx, _| store::delete(tx, a.id).await,
    )
    .await?;
    flash(&session, FlashKind::Success, format!("Deleted {}.", a.name));
    Ok(redirect("/automations"))
}

/// Cancel on a wizard window: leaves without saving the window. A copy no window
/// of which was ever saved is discarded (the copy was the only change), back to
/// the automation it was copied from.
pub(super) async fn cancel_window(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: CurrentUser,
    session: Session,
    id: web::Path<AutomationId>,
) -> Result<HttpResponse, AppError> {
    let a = load(&state, *id).await?;
    let Some(original) = a.copied_from.filter(|_| !a.is_active()) else {
        return Ok(redirect(&format!("/automations/{}", a.id)));
    };
    audited_change(
        &state,
        &req,
        &me,
        Action::AutomationDeleted,
        &a.name,
        "an unsaved copy, discarded by Cancel",
        async |tx, _| store::delete(tx, a.id).await,
    )
    .await?;
    flash(
        &session,
        FlashKind::Info,
        format!("Cancelled: the copy {} was discarded.", a.name),
    );
    Ok(redirect(&match store::find(&state.db, original).await? {
        Some(o) => format!("/automations/{}", o.id),
        None => "/automations".to_string(),
    }))
}

pub(super) async fn retry_run(
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(AutomationId, crate::types::RunId)>,
) -> Result<HttpResponse, AppError> {
    let (id, run) = path.into_inner();
    let text = if crate::scheduler::staff::requeue(&state.db, id, run, state.clock.now_ms()).await?
    {
        (FlashKind::Success, "The run will be tried again now.")
    } else {
        (
            FlashKind::Error,
            "Only failed or expired runs can be retried.",
        )
    };
    flash(&session, text.0, text.1);
    Ok(redirect(&format!("/automations/{id}")))
}

pub(super) async fn cancel_run(
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(AutomationId, crate::types::RunId)>,
) -> Result<HttpResponse, AppError> {
    let (id, run) = path.into_inner();
    let text = if crate::scheduler::staff::cancel(&state.db, id, run, state.clock.now_ms()).await? {
        (FlashKind::Success, "The run is cancelled.")
    } else {
        (FlashKind::Error, "Only pending runs can be cancelled.")
    };
    flash(&session, text.0, text.1);
    Ok(redirect(&format!("/automations/{id}")))
}
