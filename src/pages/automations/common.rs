//! What the automation pages share: their routes, the wizard's frame and steps,
//! loading an automation, the choices of the forms, the revealed webhook secret.

use super::{detail, event, job, overview, time_frame, try_it_page};
use crate::web::Step;
use actix_web::web;

use crate::auth::users::{self, SystemUser};
use crate::automations::model::Automation;
use crate::contacts::groups::{self, Group};
use crate::state::AppState;
use crate::types::AutomationId;
use crate::web::AppError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/automations", web::get().to(overview::overview))
        .route("/automations", web::post().to(event::create))
        .route("/automations/new", web::get().to(event::new_page))
        .route("/automations/state", web::post().to(overview::change_state))
        .route("/automations/{id}", web::get().to(detail::show))
        .route("/automations/{id}/event", web::get().to(event::event_page))
        .route("/automations/{id}/event", web::post().to(event::save_event))
        .route("/automations/{id}/job", web::get().to(job::job_page))
        .route("/automations/{id}/job", web::post().to(job::save_job))
        .route(
            "/automations/{id}/time-frame",
            web::get().to(time_frame::time_frame_page),
        )
        .route(
            "/automations/{id}/time-frame",
            web::post().to(time_frame::save_time_frame),
        )
        .route("/automations/{id}/copy", web::post().to(detail::copy))
        .route(
            "/automations/{id}/try",
            web::get().to(try_it_page::try_page),
        )
        .route(
            "/automations/{id}/runs/{run}/retry",
            web::post().to(detail::retry_run),
        )
        .route(
            "/automations/{id}/runs/{run}/cancel",
            web::post().to(detail::cancel_run),
        )
        .route(
            "/automations/{id}/delete",
            web::get().to(detail::confirm_delete),
        )
        .route("/automations/{id}/delete", web::post().to(detail::delete))
        .route(
            "/automations/{id}/cancel",
            web::post().to(detail::cancel_window),
        );
}

/// What the wizard pages need besides the form.
pub struct Choices {
    pub groups: Vec<Group>,
    pub users: Vec<SystemUser>,
    /// The prepared messages, for the Message Opened / Link Clicked filter.
    pub messages: Vec<crate::messages::store::Message>,
}

pub(super) async fn choices(state: &AppState) -> Result<Choices, AppError> {
    Ok(Choices {
        groups: groups::list(&state.db).await?,
        users: users::list(&state.db).await?,
        messages: crate::messages::store::list(&state.db).await?,
    })
}

/// The wizard's steps, for the stepper.
/// Where a wizard window is: its step, and for a saved automation which windows
/// can be opened from the stepper and whether it is active (changes apply to
/// events from then on).
pub struct Wizard {
    pub step: u8,
    id: Option<AutomationId>,
    has_job: bool,
    pub live: bool,
}

impl Wizard {
    /// Edit Event of an automation not saved yet.
    pub fn new_automation() -> Self {
        Self {
            step: 1,
            id: None,
            has_job: false,
            live: false,
        }
    }

    /// Window `step` of the saved automation `a`.
    pub fn of(a: &Automation, step: u8) -> Self {
        Self {
            step,
            id: Some(a.id),
            has_job: a.job.is_some(),
            live: a.is_active(),
        }
    }

    /// The address of window `n`, when the stepper may lead there (another
    /// window of a saved automation; the time frame once a job is defined).
    pub fn link(&self, n: &u8) -> Option<String> {
        let id = self.id?;
        if *n == self.step || (*n == 3 && !self.has_job) {
            return None;
        }
        let (_, _, path) = STEPS.iter().find(|(m, _, _)| m == n)?;
        Some(format!("/automations/{id}/{path}"))
    }
}

pub const STEPS: [(u8, &str, &str); 3] = [
    (1, "Edit Event", "event"),
    (2, "Define Job", "job"),
    (3, "Define Time Frame", "time-frame"),
];

pub(super) async fn load(state: &AppState, id: AutomationId) -> Result<Automation, AppError> {
    crate::automations::store::find(&state.db, id)
        .await
        .step("loading the automation")?
        .ok_or(AppError::NotFound)
}

/// The session key naming the automation whose new secret the next window shows.
const REVEAL_KEY: &str = "reveal_secret";

/// Asks the next window to show the new secret of automation `id` (the session
/// holds the automation's id, never the secret).
pub(super) fn reveal_secret_next(session: &actix_session::Session, id: AutomationId) {
    if let Err(e) = session.insert(REVEAL_KEY, id.0) {
        tracing::warn!(error = %e, "the session could not note a new secret");
    }
}

/// The new secret of `a`'s job, once: when the session asks for it.
pub(super) fn take_revealed_secret(
    session: &actix_session::Session,
    state: &AppState,
    jobs: &crate::jobs::registry::Registry,
    a: &Automation,
) -> Option<String> {
    let wanted = session.get::<i64>(REVEAL_KEY).ok().flatten()?;
    if wanted != a.id.0 {
        return None;
    }
    session.remove(REVEAL_KEY);
    jobs.get(a.job.as_deref()?)?
        .secret(&a.job_config, &state.webhook_keys)
}
