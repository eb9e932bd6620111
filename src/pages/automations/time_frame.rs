//! Window 3, Define Time Frame: start, zone, end, execution days, holidays and the
//! reminder; Save & Activate.

use actix_session::SessionExt;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::load;
use crate::audit::Action;
use crate::auth::users::{self, SystemUser};
use crate::automations::model::{Automation, State};
use crate::automations::store;
use crate::automations::time_frame::{DAY_MINUTES, HolidayRule, WEEKDAYS, clock, day_bit};
use crate::automations::wizard::{local_input, parse_time_frame};
use crate::jobs::registry::Registry;
use crate::settings::Settings;
use crate::state::AppState;
use crate::types::AutomationId;
use crate::web::form::{FieldErrors, Fields, FormPage};
use crate::web::{
    AppError, CurrentUser, FlashKind, PageContext, audited_change, flash, redirect, render,
};

#[derive(Template)]
#[template(path = "automations/time_frame.html")]
struct TimeFramePage {
    ctx: PageContext,
    a: Automation,
    f: Fields,
    errors: FieldErrors,
    zones: crate::settings::ZoneChoices,
    /// The moment Start shows (ms), so the browser can show it in another zone
    /// when the zone changes before Start was touched; 0 when typed.
    start_instant: i64,
    users: Vec<SystemUser>,
    job: &'static str,
    /// A signing secret the job just made, shown this once.
    secret: Option<String>,
    wizard: super::Wizard,
}

crate::form_page!(TimeFramePage);

impl TimeFramePage {
    fn notified(&self, id: &i64) -> bool {
        self.f.all("notify").iter().any(|v| *v == id.to_string())
    }
    fn days(&self) -> Vec<(String, &'static str)> {
        WEEKDAYS
            .iter()
            .map(|(_, n)| (format!("day_{}", n.to_lowercase()), *n))
            .collect()
    }
    fn holiday_rules(&self) -> [HolidayRule; 3] {
        HolidayRule::ALL
    }
}

fn time_frame_fields(a: &Automation, default_zone: &str, now_ms: i64) -> Fields {
    let mut f = Fields::default();
    let zone = if a.start_at.is_some() {
        a.time_zone.clone()
    } else {
        default_zone.to_string()
    };
    f.set(
        "start",
        local_input(Some(a.start_at.unwrap_or(now_ms)), &zone),
    );
    f.set("end", local_input(a.end_at, &zone));
    f.set("time_zone", zone);
    for (day, short) in WEEKDAYS {
        if a.days & day_bit(day) != 0 {
            f.set(&format!("day_{}", short.to_lowercase()), "on");
        }
    }
    f.set("hours_from", clock(a.hours.from()));
    if a.hours.to() != DAY_MINUTES {
        f.set("hours_to", clock(a.hours.to()));
    }
    f.set("holidays", a.holidays.code());
    f.0.insert(
        "notify".into(),
        a.notify.iter().map(|id| id.to_string()).collect(),
    );
    f.set("notify_days", a.notify_days_before.to_string());
    f
}

pub(super) async fn time_frame_page(
    state: web::Data<AppState>,
    jobs: web::Data<Registry>,
    ctx: PageContext,
    req: HttpRequest,
    id: web::Path<AutomationId>,
) -> Result<HttpResponse, AppError> {
    let a = load(&state, *id).await?;
    let zone = Settings::load(&state.db).await?.default_time_zone;
    let f = time_frame_fields(&a, &zone, state.clock.now_ms());
    let secret = super::take_revealed_secret(&req.get_session(), &state, &jobs, &a);
    let mut response =
        time_frame_render(&state, &jobs, ctx, a, f, FieldErrors::new(), secret.clone()).await?;
    if secret.is_some() {
        // A page showing a secret is kept by no cache.
        response.headers_mut().insert(
            actix_web::http::header::CACHE_CONTROL,
            actix_web::http::header::HeaderValue::from_static("no-store"),
        );
    }
    Ok(response)
}

async fn time_frame_render(
    state: &AppState,
    jobs: &Registry,
    ctx: PageContext,
    a: Automation,
    f: Fields,
    errors: FieldErrors,
    secret: Option<String>,
) -> Result<HttpResponse, AppError> {
    let users = users::list(&state.db).await?;
    let default_zone = Settings::load(&state.db).await?.default_time_zone;
    let start_instant = if errors.is_empty() {
        a.start_at.unwrap_or(state.clock.now_ms())
    } else {
        0
    };
    render(
        crate::web::form::form_status(&errors),
        &TimeFramePage {
            secret,
            job: jobs.label(a.job.as_deref()),
            zones: crate::settings::zone_choices(&default_zone, f.get("time_zone")),
            start_instant,
            ctx,
            wizard: super::Wizard::of(&a, 3),
            a,
            f,
            errors,
            users,
        },
    )
}

pub(super) async fn save_time_frame(
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
    let activate = f.get("action") == "activate";
    let part = match parse_time_frame(&f) {
        Ok(p) => p,
        Err(errors) => return time_frame_render(&state, &jobs, ctx, a, f, errors, None).await,
    };
    for user_id in &part.notify {
        let enabled = users::find(&state.db, *user_id)
            .await?
            .is_some_and(|u| !u.disabled);
        if !enabled {
            let errors = FieldErrors::from([(
                "notify",
                "Choose enabled system users to remind.".to_string(),
            )]);
            return time_frame_render(&state, &jobs, ctx, a, f, errors, None).await;
        }
    }
    if activate && a.job.is_none() {
        let errors =
            FieldErrors::from([("action", "Define the job before activating.".to_string())]);
        return time_frame_render(&state, &jobs, ctx, a, f, errors, None).await;
    }
    audited_change(
        &state,
        &req,
        &me,
        Action::AutomationChanged,
        &a.name,
        "Define Time Frame",
        async |tx, now| store::save_time_frame(tx, a.id, &part, now).await,
    )
    .await?;
    if f.get("action") == "define_job" {
        return Ok(redirect(&format!("/automations/{}/job", a.id)));
    }
    // Try it answers for what was on screen: saved just now.
    if f.get("action") == "try" {
        return Ok(redirect(&format!("/automations/{}/try", a.id)));
    }
    if activate {
        audited_change(
            &state,
            &req,
            &me,
            Action::AutomationActivated,
            &a.name,
            "",
            async |tx, now| store::set_state(tx, a.id, State::Active, now).await,
        )
        .await?;
        flash(
            &session,
            FlashKind::Success,
            if part.start_at <= state.clock.now_ms() {
                format!(
                    "{} is live: from now on Herald runs its job every time {} occurs.",
                    a.name,
                    a.event.label()
                )
            } else {
                format!(
                    "{} is saved and active: it goes live at {}.",
                    a.name,
                    crate::clock::format_in(part.start_at, &part.time_zone)
                )
            },
        );
    } else {
        flash(
            &session,
            FlashKind::Success,
            format!("{} is saved.", a.name),
        );
    }
    // Save (what Enter presses) stays on this window; Save & Close and Save &
    // Activate open the automation they saved.
    Ok(redirect(
        &if f.get("action") == "save" || f.get("action").is_empty() {
            format!("/automations/{}/time-frame", a.id)
        } else {
            format!("/automations/{}", a.id)
        },
    ))
}
