//! The automation pages: the overview and the wizard (1 Edit Event → 2 Define Job
//! → 3 Define Time Frame), detail, copy and delete.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::time_frame::{DelayUnit, HolidayRule, WEEKDAYS, day_bit};
use super::{
    Automation, Condition, EventFilter, EventPart, Fields, JobTarget, State, Status, Target,
    local_input, parse_event, parse_job, parse_time_frame,
};
use crate::app::AppState;
use crate::audit::Action;
use crate::auth::users::{self, Role, SystemUser};
use crate::contacts::groups::{self, Group};
use crate::events::{EventType, FilterKind, Source};
use crate::jobs::JobKind;
use crate::settings::{FieldErrors, Settings};
use crate::web::{
    AppError, ConfirmPage, CurrentUser, FlashKind, PageContext, audited_change, flash, redirect,
    render,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/automations", web::get().to(overview))
        .route("/automations", web::post().to(create))
        .route("/automations/new", web::get().to(new_page))
        .route("/automations/state", web::post().to(change_state))
        .route("/automations/{id}", web::get().to(show))
        .route("/automations/{id}/event", web::get().to(event_page))
        .route("/automations/{id}/event", web::post().to(save_event))
        .route("/automations/{id}/job", web::get().to(job_page))
        .route("/automations/{id}/job", web::post().to(save_job))
        .route(
            "/automations/{id}/time-frame",
            web::get().to(time_frame_page),
        )
        .route(
            "/automations/{id}/time-frame",
            web::post().to(save_time_frame),
        )
        .route("/automations/{id}/copy", web::post().to(copy))
        .route(
            "/automations/{id}/runs/{run}/retry",
            web::post().to(retry_run),
        )
        .route(
            "/automations/{id}/runs/{run}/cancel",
            web::post().to(cancel_run),
        )
        .route("/automations/{id}/delete", web::get().to(confirm_delete))
        .route("/automations/{id}/delete", web::post().to(delete));
}

const PAGE_SIZE: i64 = 50;

#[derive(Deserialize)]
struct OverviewQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    q: String,
    page: Option<i64>,
}

/// One overview row.
pub struct Line {
    pub a: Automation,
    pub status: Status,
    pub errors: crate::scheduler::ErrorSummary,
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

async fn overview(
    state: web::Data<AppState>,
    ctx: PageContext,
    query: web::Query<OverviewQuery>,
) -> Result<HttpResponse, AppError> {
    let now = state.clock.now_ms();
    let status = Status::from_code(&query.status);
    let page = query.page.unwrap_or(1).clamp(1, 100_000);
    let q: String = query.q.chars().take(100).collect();
    let (list, more) = super::list(&state.db, now, status, &q, page, PAGE_SIZE).await?;
    let ids: Vec<i64> = list.iter().map(|a| a.id).collect();
    let mut errors = crate::scheduler::error_summaries(&state.db, &ids).await?;
    let lines = list
        .into_iter()
        .map(|a| Line {
            status: a.status(now),
            errors: errors.remove(&a.id).unwrap_or_default(),
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

/// What the wizard pages need besides the form.
pub struct Choices {
    pub groups: Vec<Group>,
    pub users: Vec<SystemUser>,
}

async fn choices(state: &AppState) -> Result<Choices, AppError> {
    Ok(Choices {
        groups: groups::list(&state.db).await?,
        users: users::list(&state.db).await?,
    })
}

/// The wizard's steps, for the stepper.
pub const STEPS: [(u8, &str, &str); 3] = [
    (1, "Edit Event", "event"),
    (2, "Define Job", "job"),
    (3, "Define Time Frame", "time-frame"),
];

#[derive(Template)]
#[template(path = "automations/event.html")]
struct EventPage {
    ctx: PageContext,
    id: Option<i64>,
    f: Fields,
    errors: FieldErrors,
    choices: Choices,
    step: u8,
}

impl EventPage {
    fn v(&self, name: &str) -> &str {
        self.f.get(name)
    }
    fn error(&self, field: &str) -> Option<&String> {
        self.errors.get(field)
    }
    fn grouped(&self) -> Vec<(&'static str, Vec<EventType>)> {
        EventType::grouped()
    }
    fn sources(&self) -> [Source; 4] {
        Source::ALL
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
            _ => FilterKind::Success,
        };
        EventType::ALL
            .iter()
            .filter(|e| e.filter_kind() == kind)
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

async fn new_page(state: web::Data<AppState>, ctx: PageContext) -> Result<HttpResponse, AppError> {
    let choices = choices(&state).await?;
    render(
        StatusCode::OK,
        &EventPage {
            ctx,
            id: None,
            f: Fields::default(),
            errors: FieldErrors::new(),
            choices,
            step: 1,
        },
    )
}

async fn load(state: &AppState, id: i64) -> Result<Automation, AppError> {
    super::find(&state.db, id).await?.ok_or(AppError::NotFound)
}

async fn event_page(
    state: web::Data<AppState>,
    ctx: PageContext,
    id: web::Path<i64>,
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
            step: 1,
        },
    )
}

/// Parses Edit Event and checks that the groups and users it names exist.
async fn checked_event(
    state: &AppState,
    f: &Fields,
) -> Result<Result<EventPart, FieldErrors>, AppError> {
    let part = match parse_event(f) {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
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
    Ok(if errors.is_empty() {
        Ok(part)
    } else {
        Err(errors)
    })
}

async fn event_invalid(
    state: &AppState,
    ctx: PageContext,
    id: Option<i64>,
    f: Fields,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let choices = choices(state).await?;
    render(
        StatusCode::UNPROCESSABLE_ENTITY,
        &EventPage {
            ctx,
            id,
            f,
            errors,
            choices,
            step: 1,
        },
    )
}

async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: PageContext,
    me: CurrentUser,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let f = Fields::from_pairs(form.into_inner());
    let part = match checked_event(&state, &f).await? {
        Ok(p) => p,
        Err(errors) => return event_invalid(&state, ctx, None, f, errors).await,
    };
    let zone = Settings::load(&state.db).await?.default_time_zone;
    let mut id = 0;
    audited_change(
        &state,
        &req,
        &me,
        Action::AutomationCreated,
        &part.name,
        "",
        async |tx, now| {
            id = super::create(tx, me.id, &part, &zone, now).await?;
            Ok(())
        },
    )
    .await?;
    Ok(redirect(&format!("/automations/{id}/job")))
}

async fn save_event(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: PageContext,
    me: CurrentUser,
    session: Session,
    id: web::Path<i64>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let a = load(&state, *id).await?;
    let f = Fields::from_pairs(form.into_inner());
    let part = match checked_event(&state, &f).await? {
        Ok(p) => p,
        Err(errors) => return event_invalid(&state, ctx, Some(a.id), f, errors).await,
    };
    let mut cleared = false;
    audited_change(
        &state,
        &req,
        &me,
        Action::AutomationChanged,
        &part.name,
        "Edit Event",
        async |tx, now| {
            cleared = super::save_event(tx, &a, &part, now).await?;
            Ok(())
        },
    )
    .await?;
    if cleared {
        flash(
            &session,
            FlashKind::Info,
            "The job did not fit the new event; choose it again.",
        );
    }
    Ok(redirect(&format!("/automations/{}/job", a.id)))
}

#[derive(Template)]
#[template(path = "automations/job.html")]
struct JobPage {
    ctx: PageContext,
    a: Automation,
    f: Fields,
    errors: FieldErrors,
    jobs: Vec<JobKind>,
    users: Vec<SystemUser>,
    step: u8,
}

impl JobPage {
    fn v(&self, name: &str) -> &str {
        self.f.get(name)
    }
    fn checked(&self, name: &str) -> bool {
        self.f.has(name)
    }
    fn error(&self, field: &str) -> Option<&String> {
        self.errors.get(field)
    }
    fn units(&self) -> [DelayUnit; 4] {
        DelayUnit::ALL
    }
    fn offers(&self, job: &str) -> bool {
        self.jobs.iter().any(|j| j.code() == job)
    }
}

async fn job_fields(state: &AppState, a: &Automation) -> Result<Fields, AppError> {
    let mut f = Fields::default();
    if let Some(job) = a.job {
        f.set("job", job.code());
    } else if let [only] = JobKind::compatible_with(a.event).as_slice() {
        f.set("job", only.code());
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

async fn job_page(
    state: web::Data<AppState>,
    ctx: PageContext,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let a = load(&state, *id).await?;
    let f = job_fields(&state, &a).await?;
    job_render(&state, ctx, a, f, FieldErrors::new()).await
}

async fn job_render(
    state: &AppState,
    ctx: PageContext,
    a: Automation,
    f: Fields,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let users = users::list(&state.db).await?;
    let jobs = JobKind::compatible_with(a.event);
    render(
        status,
        &JobPage {
            ctx,
            a,
            f,
            errors,
            jobs,
            users,
            step: 2,
        },
    )
}

async fn save_job(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: PageContext,
    me: CurrentUser,
    id: web::Path<i64>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let a = load(&state, *id).await?;
    let f = Fields::from_pairs(form.into_inner());
    let next = match f.get("action") {
        "cancel" => return Ok(redirect("/automations")),
        "edit_event" => format!("/automations/{}/event", a.id),
        _ => format!("/automations/{}/time-frame", a.id),
    };
    let part = match parse_job(a.event, &f) {
        Ok(p) => p,
        Err(errors) => return job_render(&state, ctx, a, f, errors).await,
    };
    let target = match &part.target {
        JobTarget::EventParameter => Target::EventParameter,
        JobTarget::ContactEmail(email) => {
            match crate::contacts::find_by_email(&state.db, email).await? {
                None => {
                    let errors = FieldErrors::from([(
                        "contact",
                        format!("No contact has the email {email:?}."),
                    )]);
                    return job_render(&state, ctx, a, f, errors).await;
                }
                Some(c) if c.is_blocked() => {
                    let errors = FieldErrors::from([(
                        "contact",
                        format!("{} is blocked: choose an active contact.", c.email),
                    )]);
                    return job_render(&state, ctx, a, f, errors).await;
                }
                Some(c) => Target::Contact(c.id),
            }
        }
        JobTarget::SystemUser(id) => match users::find(&state.db, *id).await? {
            Some(u) if !u.disabled => Target::SystemUser(u.id),
            _ => {
                let errors = FieldErrors::from([(
                    "system_user",
                    "Choose an enabled system user.".to_string(),
                )]);
                return job_render(&state, ctx, a, f, errors).await;
            }
        },
    };
    audited_change(
        &state,
        &req,
        &me,
        Action::AutomationChanged,
        &a.name,
        "Define Job",
        async |tx, now| super::save_job(tx, a.id, part.kind, target, part.delay, now).await,
    )
    .await?;
    Ok(redirect(&next))
}

#[derive(Template)]
#[template(path = "automations/time_frame.html")]
struct TimeFramePage {
    ctx: PageContext,
    a: Automation,
    f: Fields,
    errors: FieldErrors,
    zones: Vec<String>,
    users: Vec<SystemUser>,
    step: u8,
}

impl TimeFramePage {
    fn v(&self, name: &str) -> &str {
        self.f.get(name)
    }
    fn checked(&self, name: &str) -> bool {
        self.f.has(name)
    }
    fn notified(&self, id: &i64) -> bool {
        self.f.all("notify").iter().any(|v| *v == id.to_string())
    }
    fn error(&self, field: &str) -> Option<&String> {
        self.errors.get(field)
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
    f.set("holidays", a.holidays.code());
    f.0.insert(
        "notify".into(),
        a.notify.iter().map(|id| id.to_string()).collect(),
    );
    f.set("notify_days", a.notify_days_before.to_string());
    f
}

async fn time_frame_page(
    state: web::Data<AppState>,
    ctx: PageContext,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let a = load(&state, *id).await?;
    let zone = Settings::load(&state.db).await?.default_time_zone;
    let f = time_frame_fields(&a, &zone, state.clock.now_ms());
    time_frame_render(&state, ctx, a, f, FieldErrors::new()).await
}

async fn time_frame_render(
    state: &AppState,
    ctx: PageContext,
    a: Automation,
    f: Fields,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let users = users::list(&state.db).await?;
    render(
        status,
        &TimeFramePage {
            ctx,
            a,
            f,
            errors,
            zones: crate::admin::time_zone_names(),
            users,
            step: 3,
        },
    )
}

async fn save_time_frame(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: PageContext,
    me: CurrentUser,
    session: Session,
    id: web::Path<i64>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let a = load(&state, *id).await?;
    let f = Fields::from_pairs(form.into_inner());
    let activate = f.get("action") == "activate";
    let part = match parse_time_frame(&f) {
        Ok(p) => p,
        Err(errors) => return time_frame_render(&state, ctx, a, f, errors).await,
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
            return time_frame_render(&state, ctx, a, f, errors).await;
        }
    }
    if activate && a.job.is_none() {
        let errors =
            FieldErrors::from([("action", "Define the job before activating.".to_string())]);
        return time_frame_render(&state, ctx, a, f, errors).await;
    }
    audited_change(
        &state,
        &req,
        &me,
        Action::AutomationChanged,
        &a.name,
        "Define Time Frame",
        async |tx, now| super::save_time_frame(tx, a.id, &part, now).await,
    )
    .await?;
    if f.get("action") == "define_job" {
        return Ok(redirect(&format!("/automations/{}/job", a.id)));
    }
    if activate {
        audited_change(
            &state,
            &req,
            &me,
            Action::AutomationActivated,
            &a.name,
            "",
            async |tx, now| super::set_state(tx, a.id, State::Active, now).await,
        )
        .await?;
        flash(
            &session,
            FlashKind::Success,
            format!("{} is saved and active.", a.name),
        );
    } else {
        flash(
            &session,
            FlashKind::Success,
            format!("{} is saved.", a.name),
        );
    }
    Ok(redirect("/automations"))
}

/// Activate or Deactivate the checked rows of the overview.
async fn change_state(
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
    let ids: Vec<i64> = f.all("ids").iter().filter_map(|v| v.parse().ok()).collect();
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
        let Some(a) = super::find(&state.db, id).await? else {
            continue;
        };
        if target == State::Active && !a.is_complete() {
            incomplete.push(a.name);
            continue;
        }
        if a.state != target {
            audited_change(&state, &req, &me, action, &a.name, "", async |tx, now| {
                super::set_state(tx, a.id, target, now).await
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
    Ok(redirect("/automations"))
}

#[derive(Template)]
#[template(path = "automations/show.html")]
struct ShowPage {
    ctx: PageContext,
    runs: Vec<crate::scheduler::RunRow>,
    a: Automation,
    status: Status,
    target: String,
    filter: String,
    selection: Vec<String>,
    notify: Vec<String>,
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

async fn show(
    state: web::Data<AppState>,
    ctx: PageContext,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let a = load(&state, *id).await?;
    let target = match a.target {
        None => "—".to_string(),
        Some(Target::EventParameter) => "Use Event Parameter".into(),
        Some(Target::Contact(id)) => crate::contacts::find(&state.db, id)
            .await?
            .map_or_else(|| format!("contact #{id} (deleted)"), |c| c.email),
        Some(Target::SystemUser(id)) => user_email(&state, id).await?,
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
    let runs = crate::scheduler::runs_of(&state.db, a.id, 100).await?;
    render(
        StatusCode::OK,
        &ShowPage {
            ctx,
            runs,
            a,
            status,
            target,
            filter,
            selection,
            notify,
        },
    )
}

async fn copy(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: CurrentUser,
    session: Session,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let a = load(&state, *id).await?;
    let mut new_id = 0;
    audited_change(
        &state,
        &req,
        &me,
        Action::AutomationCreated,
        &a.name,
        &format!("copy of automation #{}", a.id),
        async |tx, now| {
            new_id = super::copy(tx, a.id, me.id, now).await?;
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

async fn confirm_delete(
    state: web::Data<AppState>,
    ctx: PageContext,
    id: web::Path<i64>,
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

async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: CurrentUser,
    session: Session,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let a = load(&state, *id).await?;
    audited_change(
        &state,
        &req,
        &me,
        Action::AutomationDeleted,
        &a.name,
        &format!("automation #{}", a.id),
        async |tx, _| super::delete(tx, a.id).await,
    )
    .await?;
    flash(&session, FlashKind::Success, format!("Deleted {}.", a.name));
    Ok(redirect("/automations"))
}

async fn retry_run(
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let (id, run) = path.into_inner();
    let text = if crate::scheduler::retry(&state.db, id, run, state.clock.now_ms()).await? {
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

async fn cancel_run(
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let (id, run) = path.into_inner();
    let text = if crate::scheduler::cancel(&state.db, id, run, state.clock.now_ms()).await? {
        (FlashKind::Success, "The run is cancelled.")
    } else {
        (FlashKind::Error, "Only pending runs can be cancelled.")
    };
    flash(&session, text.0, text.1);
    Ok(redirect(&format!("/automations/{id}")))
}
