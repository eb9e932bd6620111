//! Window 2, Define Job: the job (from the registry), its fields, its target and
//! the delay.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::load;
use crate::audit::Action;
use crate::auth::users::{self};
use crate::automations::model::{Automation, Target};
use crate::automations::store;
use crate::automations::time_frame::DelayUnit;
use crate::automations::wizard::{JobChoice, JobTarget, parse_job};
use crate::jobs::registry::{Choices, JobForm, Registry};
use crate::state::AppState;
use crate::types::AutomationId;
use crate::web::form::{Checked, FieldErrors, Fields, FormPage, Refused};
use crate::web::{AppError, CurrentUser, PageContext, audited_change, redirect, render};

#[derive(Template)]
#[template(path = "automations/job.html")]
struct JobPage {
    ctx: PageContext,
    a: Automation,
    f: Fields,
    errors: FieldErrors,
    /// (code, label, target: "contact", "system_user" or "") of the jobs offered.
    jobs: Vec<(&'static str, &'static str, &'static str)>,
    /// The targets the offered jobs may have (their fields are shown once).
    target_kinds: Vec<&'static str>,
    users: Vec<crate::auth::users::SystemUser>,
    /// Each offered job's Define Job fields, rendered by the job.
    forms: Vec<String>,
    /// What Use Event Parameter takes from the event ("contact", "system user").
    target_noun: &'static str,
    wizard: super::Wizard,
}

crate::form_page!(JobPage);

/// The code of a target kind in the page: "contact", "system_user" or "".
fn target_code(kind: Option<crate::automations::model::TargetKind>) -> &'static str {
    match kind {
        Some(crate::automations::model::TargetKind::Contact) => "contact",
        Some(crate::automations::model::TargetKind::SystemUser) => "system_user",
        None => "",
    }
}

impl JobPage {
    fn offers_target(&self, code: &str) -> bool {
        self.target_kinds.contains(&code)
    }
    fn units(&self) -> [DelayUnit; 4] {
        DelayUnit::ALL
    }
}

async fn job_fields(state: &AppState, jobs: &Registry, a: &Automation) -> Result<Fields, AppError> {
    let mut f = Fields::default();
    if let Some(kind) = &a.job {
        f.set("job", kind);
        if let Some(job) = jobs.get(kind) {
            job.fill(&a.job_config, &mut f);
        }
    } else if let [only] = jobs.offered_for(a.event).as_slice() {
        f.set("job", only.kind());
    }
    match a.target {
        Some(Target::EventParameter) => f.set("use_event_parameter", "on"),
        Some(Target::Contact(id)) => {
            if let Some(c) = crate::contacts::find(&state.db, id).await? {
                f.set("contact", c.email);
            }
        }
        Some(Target::SystemUser(id)) => f.set("system_user", id.to_string()),
        None => {}
    }
    match a.delay {
        Some(d) => {
            f.set("delay", "yes");
            f.set("delay_unit", d.unit.code());
            f.set("delay_value", d.value.to_string());
        }
        None => f.set("delay", "no"),
    }
    Ok(f)
}

pub(super) async fn job_page(
    state: web::Data<AppState>,
    jobs: web::Data<Registry>,
    ctx: PageContext,
    id: web::Path<AutomationId>,
) -> Result<HttpResponse, AppError> {
    let a = load(&state, *id).await?;
    let f = job_fields(&state, &jobs, &a).await?;
    job_render(&state, &jobs, ctx, a, f, FieldErrors::new()).await
}

async fn job_render(
    state: &AppState,
    jobs: &Registry,
    ctx: PageContext,
    a: Automation,
    f: Fields,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let choices = job_choices(state).await?;
    let offered = jobs.offered_for(a.event);
    let view = JobForm {
        f: &f,
        errors: &errors,
        choices: &choices,
        event: a.event,
    };
    let forms = offered
        .iter()
        .map(|j| j.form(&view))
        .collect::<Result<Vec<_>, _>>()?;
    let target_noun = if a.event.carries_contact() {
        "contact"
    } else {
        "system user"
    };
    let jobs: Vec<_> = offered
        .iter()
        .map(|j| (j.kind(), j.label(), target_code(j.target())))
        .collect();
    let mut target_kinds: Vec<&'static str> =
        jobs.iter().map(|j| j.2).filter(|t| !t.is_empty()).collect();
    target_kinds.dedup();
    let wizard = super::Wizard::of(&a, 2);
    render(
        crate::web::form::form_status(&errors),
        &JobPage {
            wizard,
            users: choices.users.clone(),
            target_kinds,
            jobs,
            forms,
            target_noun,
            ctx,
            a,
            f,
            errors,
        },
    )
}

/// What the jobs' fields offer.
async fn job_choices(state: &AppState) -> Result<Choices, AppError> {
    Ok(Choices::load(&state.db).await?)
}

/// Parses the whole window — the job choice, its own fields, the target, the
/// delay — and resolves the target, collecting every message at once.
async fn checked_job(
    state: &AppState,
    jobs: &Registry,
    a: &Automation,
    f: &Fields,
) -> Checked<JobChoice> {
    let mut errors = FieldErrors::new();
    let job = match jobs.get(f.get("job")).filter(|j| j.offered()) {
        Some(job) if job.combines_with(a.event) => Some(job),
        Some(_) => {
            errors.insert(
                "job",
                crate::automations::wizard::mismatch_message(a.event).into(),
            );
            None
        }
        None => {
            errors.insert(
                "job",
                crate::automations::wizard::job_choice_message(f.get("job")).into(),
            );
            None
        }
    };
    let choices = job_choices(state).await?;
    let config = match job.map(|j| j.parse(a.event, f, &choices)) {
        Some(Ok(config)) => config,
        Some(Err(e)) => {
            errors.extend(e);
            serde_json::Value::Null
        }
        None => serde_json::Value::Null,
    };
    let part = parse_job(a.event, job.and_then(|j| j.target()), f, &mut errors);
    let target = match &part.target {
        None => None,
        Some(JobTarget::EventParameter) => Some(Target::EventParameter),
        Some(JobTarget::ContactEmail(typed)) => {
            match crate::contacts::search::pick(&state.db, f.get("contact_id"), typed).await? {
                Err(message) => {
                    errors.insert("contact", message);
                    None
                }
                Ok(c) if c.is_blocked() => {
                    errors.insert(
                        "contact",
                        format!("{} is blocked: choose an active contact.", c.email),
                    );
                    None
                }
                Ok(c) => Some(Target::Contact(c.id)),
            }
        }
        Some(JobTarget::SystemUser(id)) => match users::find(&state.db, *id).await? {
            Some(u) if !u.disabled => Some(Target::SystemUser(u.id)),
            _ => {
                errors.insert("system_user", "Choose an enabled system user.".to_string());
                None
            }
        },
    };
    match job {
        Some(job) if errors.is_empty() => Ok(JobChoice {
            kind: job.kind().to_string(),
            target,
            config,
            delay: part.delay,
        }),
        _ => Err(Refused::Invalid(errors)),
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn save_job(
    state: web::Data<AppState>,
    jobs: web::Data<Registry>,
    req: HttpRequest,
    ctx: PageContext,
    me: CurrentUser,
    session: Session,
    id: web::Path<AutomationId>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let a = load(&state, *id).await?;
    let f = Fields::from_pairs(form.into_inner());
    let mut next = match f.get("action") {
        "edit_event" => format!("/automations/{}/event", a.id),
        _ => format!("/automations/{}/time-frame", a.id),
    };
    let choice = match checked_job(&state, &jobs, &a, &f).await {
        Ok(c) => c,
        Err(r) => return job_render(&state, &jobs, ctx, a, f, r.fields()?).await,
    };
    let secret_of = |kind: &str, config: &serde_json::Value| {
        jobs.get(kind)
            .and_then(|j| j.secret(config, &state.webhook_keys))
    };
    let new_secret = secret_of(&choice.kind, &choice.config)
        .is_some_and(|new| a.job.as_deref().and_then(|k| secret_of(k, &a.job_config)) != Some(new));
    audited_change(
        &state,
        &req,
        &me,
        Action::AutomationChanged,
        &a.name,
        "Define Job",
        async |tx, now| store::save_job(tx, a.id, &choice, now).await,
    )
    .await?;
    if new_secret {
        // Shown once, on the next window (which is where it goes).
        super::reveal_secret_next(&session, a.id);
        next = format!("/automations/{}/time-frame", a.id);
    }
    Ok(redirect(&next))
}
