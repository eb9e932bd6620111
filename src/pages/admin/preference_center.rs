//! Whether the preference center works: the events it fires, the active
//! automations that handle each, a warning where none does — above all when no
//! automation sends the password contacts ask for — and a button that starts the
//! missing password automation in the wizard, prefilled.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::audit::Action;
use crate::automations::model::{Automation, EventFilter, Target};
use crate::automations::{store, wizard};
use crate::events::catalogue::{EventType, Source};
use crate::jobs::registry::Registry;
use crate::settings::Settings;
use crate::state::AppState;
use crate::web::{AppError, CurrentUser, PageContext, audited_change, redirect, render};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/preference-center", web::get().to(page)).route(
        "/preference-center/password-automation",
        web::post().to(start_password_automation),
    );
}

/// One event the preference center fires, and who handles it.
pub struct Line {
    pub event: EventType,
    /// When the preference center fires it.
    pub when: String,
    /// The active automations that react to it from the preference center:
    /// (id, name, job label).
    pub handlers: Vec<(i64, String, &'static str)>,
    /// Why it matters that nothing handles it, if nothing does.
    pub warning: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "admin/preference_center.html")]
struct Page {
    ctx: PageContext,
    lines: Vec<Line>,
    /// No active automation sends the password contacts ask for.
    password_missing: bool,
    self_signup: bool,
    visible_groups: Vec<String>,
}

/// Whether `a` reacts to the event when the preference center fires it.
fn reacts(a: &Automation, visible_groups: &[i64]) -> bool {
    match &a.filter {
        EventFilter::Any => true,
        EventFilter::Source { source } => *source == Source::PreferenceCenter,
        EventFilter::Group { group_id } => visible_groups.contains(group_id),
        _ => false,
    }
}

async fn page(
    state: web::Data<AppState>,
    jobs: web::Data<Registry>,
    ctx: PageContext,
) -> Result<HttpResponse, AppError> {
    let settings = Settings::load(&state.db).await?;
    let groups: Vec<_> = crate::contacts::groups::list(&state.db)
        .await?
        .into_iter()
        .filter(|g| g.visible_in_preference_center)
        .collect();
    let visible: Vec<i64> = groups.iter().map(|g| g.id).collect();
    let now = state.clock.now_ms();
    let mut conn = state.db.read().acquire().await?;
    let mut lines = Vec::new();
    let mut password_missing = false;
    for (event, when, warning) in [
        (
            EventType::NewPasswordRequested,
            "A contact asks “Send me a new password”.",
            "Contacts who ask for a password get nothing: no active automation sends it.",
        ),
        (
            EventType::RegisteredToSystem,
            "Someone signs up (self sign-up in Settings).",
            "Nothing happens after a sign-up (a welcome message, say).",
        ),
        (
            EventType::SubscribedToGroup,
            "A contact ticks a group.",
            "Nothing happens when a contact joins a group.",
        ),
        (
            EventType::UnsubscribedFromGroup,
            "A contact unticks a group.",
            "Nothing happens when a contact leaves a group.",
        ),
    ] {
        let active: Vec<Automation> = store::active_for_event(&mut conn, event, now)
            .await?
            .into_iter()
            .filter(|a| reacts(a, &visible))
            .collect();
        let missing = if event == EventType::NewPasswordRequested {
            let password_job = jobs.preference_center_password();
            password_missing = !active
                .iter()
                .any(|a| password_job.is_some_and(|k| a.job.as_deref() == Some(k)));
            password_missing
        } else {
            active.is_empty()
        };
        let handlers = active
            .iter()
            .map(|a| (a.id.0, a.name.clone(), jobs.label(a.job.as_deref())))
            .collect();
        lines.push(Line {
            event,
            when: when.to_string(),
            handlers,
            warning: missing.then_some(warning),
        });
    }
    render(
        StatusCode::OK,
        &Page {
            ctx,
            lines,
            password_missing,
            self_signup: settings.self_signup,
            visible_groups: groups.into_iter().map(|g| g.name).collect(),
        },
    )
}

/// Creates the password automation — *New Password Requested (C)* → *Send New
/// Password to Contact (C)* for the contact of the event — inactive, and opens
/// Define Job so staff check it, set the time frame and activate it.
async fn start_password_automation(
    state: web::Data<AppState>,
    jobs: web::Data<Registry>,
    req: HttpRequest,
    me: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let kind = jobs
        .preference_center_password()
        .ok_or_else(|| anyhow::anyhow!("no job sends the preference center's password"))?;
    let zone = Settings::load(&state.db).await?.default_time_zone;
    let part = wizard::EventPart {
        name: "New password from the preference center".into(),
        description:
            "Emails a new password to a contact who asks for one in the preference center.".into(),
        event: EventType::NewPasswordRequested,
        filter: EventFilter::Any,
        selection: Vec::new(),
    };
    let job = wizard::JobChoice {
        kind: kind.into(),
        target: Some(Target::EventParameter),
        config: serde_json::Value::Null,
        delay: None,
    };
    let mut id = crate::types::AutomationId(0);
    audited_change(
        &state,
        &req,
        &me,
        Action::AutomationCreated,
        &part.name,
        "from the preference center page",
        async |tx, now| {
            id = store::create(tx, me.id, &part, &zone, now).await?;
            store::save_job(tx, id, &job, now).await
        },
    )
    .await?;
    Ok(redirect(&format!("/automations/{id}/job")))
}
