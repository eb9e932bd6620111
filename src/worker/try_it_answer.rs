//! Try it: when and whether an automation would run for a contact (or system
//! user) and a moment — without recording an event, creating a run or sending
//! anything. The due time and its steps come from the scheduler's own function
//! (`intake::due_time_explained`), the selection from the job's own checks
//! (`jobs::common::contact_meets` / `user_meets`), so the answer cannot disagree
//! with what really happens.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::automations::model::{Automation, EventFilter, State, Target};
use crate::events::catalogue::{NewEvent, Source};
use crate::jobs::registry::Registry;
use crate::state::AppState;

/// What to try: who, when, and the event's values (all optional).
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TryQuery {
    /// The contact, by email or name (or `contact_id`).
    #[serde(default)]
    pub contact: String,
    /// The contact picked in the picker.
    #[serde(default)]
    pub contact_id: String,
    /// The system user (id), for (S) automations.
    #[serde(default)]
    pub system_user: String,
    /// The event's moment, `YYYY-MM-DDTHH:MM` in the automation's zone; now when empty.
    #[serde(default)]
    pub at: String,
    /// Group id (Subscribed / Unsubscribed events).
    #[serde(default)]
    pub group: String,
    /// Attribute name (Profile Data Changed).
    #[serde(default)]
    pub attribute: String,
    /// Source code (Registered to System): ui, import, api, preference_center.
    #[serde(default)]
    pub source: String,
    /// Name (external events).
    #[serde(default)]
    pub name: String,
    /// Role code (System User Created).
    #[serde(default)]
    pub role: String,
    /// yes / no (Contact Import Finished).
    #[serde(default)]
    pub success: String,
    /// hard_bounce, soft_bounce or complaint (Response Received).
    #[serde(default)]
    pub response: String,
    /// The prepared message (id) opened or clicked (Message Opened, Link Clicked).
    #[serde(default)]
    pub message: String,
    /// The target of the link clicked (Link Clicked).
    #[serde(default)]
    pub link: String,
    /// yes / no: the contact's first open of the email, or click of the link.
    #[serde(default)]
    pub first: String,
}

/// One Define Selection condition, checked today.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Condition {
    pub condition: String,
    pub met: bool,
}

/// Try it's answer.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Answer {
    /// In one sentence: would it run, when, or why not.
    pub verdict: String,
    /// Whether a run would be created and executed.
    pub would_run: bool,
    pub automation: String,
    pub event: String,
    /// The event's moment in the automation's zone and in UTC.
    pub event_at: String,
    pub event_at_utc: String,
    /// Whether the event passes Define Event's filter, and why not.
    pub matches_filter: bool,
    pub filter: String,
    /// Whether the automation would take the event at that moment (active, inside
    /// its time frame), and why not.
    pub takes_event: bool,
    pub state: String,
    /// The due time (zone and UTC, and epoch milliseconds), when there is one.
    pub due_at: Option<String>,
    pub due_at_utc: Option<String>,
    pub due_at_ms: Option<i64>,
    /// The steps that produced the due time, in words.
    pub steps: Vec<String>,
    /// Whom the job would be for, in words.
    pub target: Option<String>,
    /// Define Selection, condition by condition, as of now.
    pub selection: Vec<Condition>,
    pub selection_met: bool,
    pub selection_note: String,
    /// What the job would do.
    pub job: String,
    /// Rate limit and frequency cap as of now.
    pub limits: Vec<String>,
    /// For message jobs: the subject as this contact would read it, and the preview.
    pub subject: Option<String>,
    pub preview_url: Option<String>,
}

/// Why Try it cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum TryError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn invalid(field: &'static str, message: impl Into<String>) -> TryError {
    TryError::Invalid {
        field,
        message: message.into(),
    }
}

/// The moment typed (`YYYY-MM-DDTHH:MM` in `a`'s zone), or `now_ms`.
fn moment(a: &Automation, raw: &str, now_ms: i64) -> Result<i64, TryError> {
    if raw.trim().is_empty() {
        return Ok(now_ms);
    }
    crate::automations::wizard::parse_local(raw, &a.zone())
        .map(|t| t.as_millisecond())
        .ok_or_else(|| invalid("at", "Enter the moment as YYYY-MM-DDTHH:MM."))
}

fn shown(ms: i64, a: &Automation) -> (String, String) {
    let t = Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH);
    (
        t.to_zoned(a.zone())
            .strftime("%a %Y-%m-%d %H:%M %Z")
            .to_string(),
        t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// Answers Try it for automation `a`; records nothing but the caller's audit entry.
pub async fn answer(
    state: &AppState,
    jobs: &Registry,
    a: &Automation,
    q: &TryQuery,
) -> Result<Answer, TryError> {
    let now = state.clock.now_ms();
    let at = moment(a, &q.at, now)?;
    let (event_at, event_at_utc) = shown(at, a);
    let mut out = Answer {
        automation: a.name.clone(),
        event: a.event.label().into(),
        event_at,
        event_at_utc,
        ..Answer::default()
    };

    // Who: the contact (or system user) the event would name.
    let mut event = NewEvent {
        kind: a.event,
        contact_id: None,
        system_user_id: None,
        group_id: None,
        params: serde_json::json!({}),
    };
    let mut contact = None;
    if a.event.carries_contact() {
        if q.contact.trim().is_empty() && q.contact_id.trim().is_empty() {
            return Err(invalid("contact", "Choose the contact the event is about."));
        }
        let c = crate::contacts::search::pick(&state.db, &q.contact_id, &q.contact)
            .await?
            .map_err(|m| invalid("contact", m))?;
        event.contact_id = Some(c.id);
        contact = Some(c);
    }
    let mut user = None;
    if a.event.carries_system_user() && !q.system_user.trim().is_empty() {
        let id: i64 = q
            .system_user
            .trim()
            .parse()
            .map_err(|_| invalid("system_user", "Choose a system user."))?;
        let u = crate::auth::users::find(&state.db, id)
            .await?
            .ok_or_else(|| invalid("system_user", "Choose a system user."))?;
        event.system_user_id = Some(u.id);
        user = Some(u);
    }
    // The event's values, for its filter.
    if let Ok(g) = q.group.trim().parse::<i64>() {
        event.group_id = Some(g);
    }
    let mut params = serde_json::Map::new();
    if !q.attribute.trim().is_empty() {
        params.insert("changed".into(), serde_json::json!([q.attribute.trim()]));
    }
    if let Some(source) = Source::from_code(q.source.trim()) {
        params.insert("source".into(), source.code().into());
    }
    if !q.name.trim().is_empty() {
        params.insert("name".into(), q.name.trim().into());
    }
    if !q.role.trim().is_empty() {
        params.insert("role".into(), q.role.trim().into());
    }
    match q.success.trim() {
        "yes" => drop(params.insert("success".into(), true.into())),
        "no" => drop(params.insert("success".into(), false.into())),
        _ => {}
    }
    if let Some(r) = crate::events::catalogue::Response::from_code(q.response.trim()) {
        params.insert("response".into(), r.code().into());
    }
    if let Ok(message) = q.message.trim().parse::<i64>() {
        params.insert("message_id".into(), message.into());
    }
    if !q.link.trim().is_empty() {
        params.insert("link".into(), q.link.trim().into());
    }
    match q.first.trim() {
        "yes" => drop(params.insert("first".into(), true.into())),
        "no" => drop(params.insert("first".into(), false.into())),
        _ => {}
    }
    event.params = serde_json::Value::Object(params);

    // Define Event's filter.
    out.matches_filter = a.filter.matches(&event);
    out.filter = describe_filter(state, &a.filter, out.matches_filter).await?;

    // Would the automation take the event then?
    let (takes, why) = match a.state {
        State::Inactive => (
            false,
            "The automation is inactive: activate it first.".to_string(),
        ),
        State::Deactivated => (false, "The automation is deactivated.".to_string()),
        State::Active if a.job.is_none() => (false, "The automation has no job yet.".to_string()),
        State::Active => match (a.start_at, a.end_at) {
            (Some(start), _) if at < start => (
                false,
                format!(
                    "The time frame starts {}: an event before it is ignored.",
                    shown(start, a).0
                ),
            ),
            (_, Some(end)) if at >= end => (
                false,
                format!(
                    "The time frame ended {}: the event would be ignored.",
                    shown(end, a).0
                ),
            ),
            _ => (
                true,
                "Active, and the moment is inside the time frame.".to_string(),
            ),
        },
    };
    out.takes_event = takes;
    out.state = why;

    // The due time, by the scheduler's own computation.
    let mut conn = state.db.read().acquire().await?;
    let holidays = crate::settings::holiday_dates(&mut conn).await?;
    drop(conn);
    let due = crate::intake::runs::due_time_explained(a, at, &holidays, Some(&mut out.steps));
    if let Ok(ms) = due {
        let (local, utc) = shown(ms, a);
        out.due_at = Some(local);
        out.due_at_utc = Some(utc);
        out.due_at_ms = Some(ms);
    }

    // Whom the job is for, and Define Selection today.
    let target_contact = match a.target {
        Some(Target::EventParameter) => contact.clone(),
        Some(Target::Contact(id)) => crate::contacts::find(&state.db, id).await?,
        _ => None,
    };
    let target_user = match a.target {
        Some(Target::EventParameter) if !a.event.carries_contact() => user.clone(),
        Some(Target::SystemUser(id)) => crate::auth::users::find(&state.db, id).await?,
        _ => None,
    };
    out.selection_met = true;
    let subject_contact = target_contact.clone().or(contact.clone());
    if let Some(c) = &subject_contact {
        out.target = Some(match a.target {
            Some(Target::EventParameter) => format!(
                "{} <{}> (Use Event Parameter: the event's contact)",
                c.name(),
                c.email
            ),
            _ => format!("{} <{}>", c.name(), c.email),
        });
        if c.is_blocked() {
            out.selection_met = false;
            out.selection.push(Condition {
                condition: "the contact is active (not blocked)".into(),
                met: false,
            });
        }
        for condition in &a.selection {
            let met = crate::jobs::common::contact_meets(&state.db, condition, c.id).await?;
            out.selection_met &= met;
            out.selection.push(Condition {
                condition: crate::jobs::common::describe(&state.db, condition).await?,
                met,
            });
        }
    } else if let Some(u) = &target_user {
        out.target = Some(format!("{} <{}>", u.name, u.email));
        if u.disabled {
            out.selection_met = false;
            out.selection.push(Condition {
                condition: "the system user is enabled".into(),
                met: false,
            });
        }
        for condition in &a.selection {
            let met = crate::jobs::common::user_meets(condition, u.role.code());
            out.selection_met &= met;
            out.selection.push(Condition {
                condition: crate::jobs::common::describe(&state.db, condition).await?,
                met,
            });
        }
    }
    out.selection_note = "Define Selection is checked again when the job executes: a contact who changes before then may pass or fail it.".into();

    // What the job would do, and its limits now.
    let settings = crate::settings::Settings::load(&state.db).await?;
    if let Some(job) = a.job.as_deref().and_then(|k| jobs.get(k)) {
        let names = crate::jobs::registry::Choices::load(&state.db).await?;
        out.job = format!("{}: {}", job.label(), job.explain(&a.job_config, &names));
        if let Some(c) = &target_contact {
            let target = crate::scheduler::queue::Target {
                kind: crate::scheduler::queue::RunFor::Contact,
                id: c.id,
            };
            use crate::jobs::registry::Limit;
            // The suppression list as of now: it stops prepared messages, and a
            // password email only after a hard bounce.
            if let Some(limit) = job.limit()
                && let Some(s) = crate::suppressions::find(&state.db, &c.email).await?
                && (limit == Limit::MessagesPerDay || s.reason.stops_transactional())
            {
                out.limits.push(format!(
                    "The address is on the suppression list ({}): the run would be skipped.",
                    s.why()
                ));
            }
            if job.limit() == Some(Limit::PasswordsPerHour) {
                let n = crate::scheduler::runs::done_for_target_since(
                    &state.db,
                    target,
                    now - 3_600_000,
                )
                .await?;
                out.limits.push(format!(
                    "{n} of {} password emails to this contact in the last hour{}",
                    settings.password_emails_per_hour,
                    if n >= settings.password_emails_per_hour {
                        ": the run would be skipped (rate limited)"
                    } else {
                        ""
                    }
                ));
            }
            if job.limit() == Some(Limit::MessagesPerDay) {
                let n = crate::scheduler::runs::done_of_kinds_for_target_since(
                    &state.db,
                    &jobs.kinds_limited_by(Limit::MessagesPerDay),
                    target,
                    now - 24 * 3_600_000,
                )
                .await?;
                out.limits.push(format!(
                    "{n} of {} prepared messages to this contact in 24 hours{}",
                    settings.messages_per_day,
                    if n >= settings.messages_per_day {
                        ": the run would be skipped (frequency cap)"
                    } else {
                        ""
                    }
                ));
                if c.is_opted_out() {
                    out.limits.push("The contact unsubscribed from all prepared messages: the run would be skipped.".into());
                }
                if let Some(m) = job.message(&a.job_config)
                    && let Some(message) = crate::messages::store::find(&state.db, m).await?
                {
                    let values = crate::messages::template::Personal {
                        contact: crate::messages::compose::contact_values(&state.db, c.id)
                            .await?
                            .unwrap_or_default(),
                        event: event.params.clone(),
                        ..Default::default()
                    };
                    out.subject =
                        crate::messages::template::render(&message.subject, &values, false).ok();
                    out.preview_url = Some(format!("/messages/{m}/preview?contact_id={}", c.id));
                }
            }
        }
    } else {
        out.job = "No job defined yet.".into();
    }

    out.would_run = out.matches_filter && out.takes_event && due.is_ok() && out.selection_met;
    out.verdict = if !out.matches_filter {
        "Would not run: the event does not pass Define Event's filter.".into()
    } else if !out.takes_event {
        format!("Would not run: {}", out.state)
    } else if due.is_err() {
        "A run would be created and skipped: no allowed day is left before the time frame ends."
            .into()
    } else if !out.selection_met {
        format!(
            "A run would be due {}, and skipped if the selection still fails then.",
            out.due_at.clone().unwrap_or_default()
        )
    } else {
        format!("Would run {}.", out.due_at.clone().unwrap_or_default())
    };
    Ok(out)
}

/// Define Event's filter in words, and whether this event passes it.
async fn describe_filter(
    state: &AppState,
    f: &EventFilter,
    matches: bool,
) -> Result<String, sqlx::Error> {
    let what = match f {
        EventFilter::Any => return Ok("No filter: every such event counts.".into()),
        EventFilter::Source { source } => format!("source {}", source.label()),
        EventFilter::Group { group_id } => format!(
            "group {}",
            crate::contacts::groups::find(&state.db, *group_id)
                .await?
                .map_or_else(|| "(deleted)".to_string(), |g| g.name)
        ),
        EventFilter::Attribute { name } => format!("attribute {name}"),
        EventFilter::Name { name } => format!("name “{name}”"),
        EventFilter::SystemUser { user_id } => format!(
            "system user {}",
            crate::auth::users::find(&state.db, *user_id)
                .await?
                .map_or_else(|| "(deleted)".to_string(), |u| u.email)
        ),
        EventFilter::Role { role } => format!("role {role}"),
        EventFilter::Success { success } => {
            format!("success {}", if *success { "yes" } else { "no" })
        }
        EventFilter::Response { response } => {
            format!("the response {}", response.label().to_lowercase())
        }
        EventFilter::Engagement {
            message_id,
            link,
            first_only,
        } => {
            let message = match message_id {
                Some(id) => crate::messages::store::name_of(&state.db, *id).await?,
                None => String::new(),
            };
            crate::automations::model::engagement_words(&message, link, *first_only)
        }
    };
    Ok(if matches {
        format!("Only events with {what}: this one has it.")
    } else {
        format!("Only events with {what}: this one has not (give the event's values above).")
    })
}
