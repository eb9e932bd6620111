//! Automations: "when this event happens, run this job, optionally after a delay,
//! while the time frame is active". The model, its parsing at the boundary (one
//! parser per wizard step) and its store. The pages live in `pages.rs`.

mod pages;
pub mod time_frame;

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

pub use pages::{STEPS, routes};
use time_frame::{ALL_DAYS, Delay, DelayUnit, HolidayRule, WEEKDAYS, day_bit};

use crate::auth::users::Role;
use crate::db::{Db, Tx};
use crate::events::{EventType, FilterKind, Source};
use crate::jobs::JobKind;
use crate::settings::FieldErrors;

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 1000;
pub const MAX_NOTIFY_USERS: usize = 10;

/// The Define Event filter of an automation (`Any` = no filter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventFilter {
    Any,
    Source { source: Source },
    Group { group_id: i64 },
    Attribute { name: String },
    Name { name: String },
    SystemUser { user_id: i64 },
    Role { role: String },
    Success { success: bool },
}

impl EventFilter {
    /// Whether `event` passes this Define Event filter.
    pub fn matches(&self, event: &crate::events::NewEvent) -> bool {
        let p = &event.params;
        match self {
            EventFilter::Any => true,
            EventFilter::Source { source } => p["source"] == source.code(),
            EventFilter::Group { group_id } => event.group_id == Some(*group_id),
            EventFilter::Attribute { name } => p["changed"]
                .as_array()
                .is_some_and(|names| names.iter().any(|n| n == name.as_str())),
            EventFilter::Name { name } => p["name"] == name.as_str(),
            EventFilter::SystemUser { user_id } => event.system_user_id == Some(*user_id),
            EventFilter::Role { role } => p["role"] == role.as_str(),
            EventFilter::Success { success } => p["success"] == *success,
        }
    }
}

/// A Define Selection condition, checked when the job executes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Condition {
    MemberOf { group_id: i64 },
    AttributeEquals { name: String, value: String },
    RoleIs { role: String },
}

/// Whom the job is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The contact or system user the event names.
    EventParameter,
    Contact(i64),
    SystemUser(i64),
}

/// Activation as staff set it; the shown status also depends on the time frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Inactive,
    Active,
    Deactivated,
}

impl State {
    fn code(self) -> &'static str {
        match self {
            State::Inactive => "inactive",
            State::Active => "active",
            State::Deactivated => "deactivated",
        }
    }
}

/// The status the overview shows (SPEC §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Inactive,
    Scheduled,
    Running,
    Done,
    Deactivated,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Inactive,
        Status::Scheduled,
        Status::Running,
        Status::Done,
        Status::Deactivated,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Status::Inactive => "Inactive",
            Status::Scheduled => "Scheduled",
            Status::Running => "Running",
            Status::Done => "Done",
            Status::Deactivated => "Deactivated",
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Status::Inactive => "inactive",
            Status::Scheduled => "scheduled",
            Status::Running => "running",
            Status::Done => "done",
            Status::Deactivated => "deactivated",
        }
    }

    pub fn badge(self) -> &'static str {
        match self {
            Status::Inactive => "text-bg-light",
            Status::Scheduled => "text-bg-info",
            Status::Running => "text-bg-success",
            Status::Done => "text-bg-secondary",
            Status::Deactivated => "text-bg-warning",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The SQL condition selecting automations in this status at `$1` (now).
    fn condition(self) -> &'static str {
        match self {
            Status::Inactive => "a.state = 'inactive'",
            Status::Deactivated => "a.state = 'deactivated'",
            Status::Scheduled => "a.state = 'active' AND a.start_at > $1",
            Status::Done => {
                "a.state = 'active' AND a.start_at <= $1 AND a.end_at IS NOT NULL AND a.end_at <= $1"
            }
            Status::Running => {
                "a.state = 'active' AND a.start_at <= $1 AND (a.end_at IS NULL OR a.end_at > $1)"
            }
        }
    }
}

/// An automation as stored.
#[derive(Debug, Clone)]
pub struct Automation {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub owner_id: i64,
    pub owner_name: String,
    pub event: EventType,
    pub filter: EventFilter,
    pub selection: Vec<Condition>,
    pub job: Option<JobKind>,
    pub target: Option<Target>,
    pub delay: Option<Delay>,
    pub start_at: Option<i64>,
    pub time_zone: String,
    pub end_at: Option<i64>,
    pub days: u8,
    pub holidays: HolidayRule,
    pub notify: Vec<i64>,
    pub notify_days_before: i64,
    pub state: State,
    pub activated_at: Option<i64>,
    pub created_at: i64,
}

impl Automation {
    /// The status at `now_ms`.
    pub fn status(&self, now_ms: i64) -> Status {
        match self.state {
            State::Inactive => Status::Inactive,
            State::Deactivated => Status::Deactivated,
            State::Active => match (self.start_at, self.end_at) {
                (Some(start), _) if start > now_ms => Status::Scheduled,
                (_, Some(end)) if end <= now_ms => Status::Done,
                _ => Status::Running,
            },
        }
    }

    /// Whether every window was completed (a job and a time frame).
    pub fn is_complete(&self) -> bool {
        self.job.is_some() && self.start_at.is_some()
    }

    pub fn job_label(&self) -> &'static str {
        self.job.map_or("—", JobKind::label)
    }

    pub fn zone(&self) -> TimeZone {
        TimeZone::get(&self.time_zone).unwrap_or(TimeZone::UTC)
    }

    /// A stored time shown in the automation's zone, e.g. `2026-03-29 12:00 CEST`.
    pub fn local(&self, ms: &Option<i64>) -> String {
        match ms.and_then(|m| Timestamp::from_millisecond(m).ok()) {
            Some(t) => t
                .to_zoned(self.zone())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string(),
            None => "—".into(),
        }
    }

    pub fn delay_text(&self) -> String {
        match self.delay {
            None => "No delay".into(),
            Some(d) => format!("{} {}", d.value, d.unit.label().to_lowercase()),
        }
    }

    pub fn days_text(&self) -> String {
        if self.days == ALL_DAYS {
            return "Every day".into();
        }
        WEEKDAYS
            .iter()
            .filter(|(d, _)| self.days & day_bit(*d) != 0)
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    name: String,
    description: String,
    owner_id: i64,
    owner_name: Option<String>,
    event_type: String,
    event_filter: String,
    selection: String,
    job_kind: Option<String>,
    job_target: Option<String>,
    delay_unit: Option<String>,
    delay_value: Option<i64>,
    start_at: Option<i64>,
    time_zone: String,
    end_at: Option<i64>,
    execution_days: i64,
    holidays: String,
    notify_user_ids: String,
    notify_days_before: i64,
    state: String,
    activated_at: Option<i64>,
    created_at: i64,
}

impl TryFrom<Row> for Automation {
    type Error = sqlx::Error;
    fn try_from(r: Row) -> Result<Self, sqlx::Error> {
        let bad =
            |what: &str| sqlx::Error::Decode(format!("automation {}: bad {what}", r.id).into());
        Ok(Automation {
            id: r.id,
            event: EventType::from_code(&r.event_type).ok_or_else(|| bad("event type"))?,
            filter: serde_json::from_str(&r.event_filter).map_err(|_| bad("event filter"))?,
            selection: serde_json::from_str(&r.selection).map_err(|_| bad("selection"))?,
            job: r.job_kind.as_deref().and_then(JobKind::from_code),
            target: r
                .job_target
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok()),
            delay: match (
                r.delay_unit.as_deref().and_then(DelayUnit::from_code),
                r.delay_value,
            ) {
                (Some(unit), Some(v)) => Delay::new(unit, u32::try_from(v).unwrap_or(0)),
                _ => None,
            },
            start_at: r.start_at,
            time_zone: r.time_zone,
            end_at: r.end_at,
            days: (r.execution_days & i64::from(ALL_DAYS)) as u8,
            holidays: HolidayRule::from_code(&r.holidays).unwrap_or(HolidayRule::Always),
            notify: serde_json::from_str(&r.notify_user_ids).unwrap_or_default(),
            notify_days_before: r.notify_days_before,
            state: match r.state.as_str() {
                "active" => State::Active,
                "deactivated" => State::Deactivated,
                _ => State::Inactive,
            },
            activated_at: r.activated_at,
            created_at: r.created_at,
            name: r.name,
            description: r.description,
            owner_id: r.owner_id,
            owner_name: r.owner_name.unwrap_or_else(|| "(deleted user)".into()),
        })
    }
}

const SELECT: &str = "SELECT a.id, a.name, a.description, a.owner_id, u.name AS owner_name, a.event_type, \
     a.event_filter, a.selection, a.job_kind, a.job_target, a.delay_unit, a.delay_value, a.start_at, a.time_zone, \
     a.end_at, a.execution_days, a.holidays, a.notify_user_ids, a.notify_days_before, a.state, a.activated_at, \
     a.created_at FROM automations a LEFT JOIN system_users u ON u.id = a.owner_id";

/// The active automations on `event_type` whose time frame holds `at_ms` and whose
/// job is defined (read inside the transaction that records the event).
pub async fn active_for_event(
    conn: &mut sqlx::AnyConnection,
    event_type: EventType,
    at_ms: i64,
) -> Result<Vec<Automation>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE a.event_type = $1 AND a.state = 'active' AND a.job_kind IS NOT NULL \
         AND a.start_at <= $2 AND (a.end_at IS NULL OR a.end_at > $2)"
    )))
    .bind(event_type.code())
    .bind(at_ms)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Automation::try_from).collect()
}

pub async fn find(db: &Db, id: i64) -> Result<Option<Automation>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE a.id = $1")))
        .bind(id)
        .fetch_optional(db.read())
        .await?;
    row.map(Automation::try_from).transpose()
}

/// A page of the overview: newest first, optionally one status and a name search.
pub async fn list(
    db: &Db,
    now_ms: i64,
    status: Option<Status>,
    name: &str,
    page: i64,
    per_page: i64,
) -> Result<(Vec<Automation>, bool), sqlx::Error> {
    let mut conditions = vec!["$1 = $1".to_string()];
    if let Some(s) = status {
        conditions.push(s.condition().to_string());
    }
    let pattern = format!(
        "%{}%",
        name.trim()
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    conditions.push("LOWER(a.name) LIKE $2 ESCAPE '\\'".into());
    let sql = format!(
        "{SELECT} WHERE {} ORDER BY a.id DESC LIMIT $3 OFFSET $4",
        conditions.join(" AND ")
    );
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(now_ms)
        .bind(pattern)
        .bind(per_page + 1)
        .bind((page.max(1) - 1) * per_page)
        .fetch_all(db.read())
        .await?;
    let more = rows.len() as i64 > per_page;
    let list = rows
        .into_iter()
        .take(per_page as usize)
        .map(Automation::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((list, more))
}

/// Step 1, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPart {
    pub name: String,
    pub description: String,
    pub event: EventType,
    pub filter: EventFilter,
    pub selection: Vec<Condition>,
}

/// Reads a form's URL-encoded pairs into a map of field → values.
pub fn form_map(pairs: Vec<(String, String)>) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in pairs {
        map.entry(k).or_default().push(v);
    }
    map
}

/// A submitted form: one value per field (the first), or several.
#[derive(Debug, Clone, Default)]
pub struct Fields(pub BTreeMap<String, Vec<String>>);

impl Fields {
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self(form_map(pairs))
    }
    pub fn get(&self, name: &str) -> &str {
        self.0
            .get(name)
            .and_then(|v| v.first())
            .map_or("", String::as_str)
    }
    pub fn all(&self, name: &str) -> &[String] {
        self.0.get(name).map_or(&[], Vec::as_slice)
    }
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.insert(name.to_string(), vec![value.into()]);
    }
}

fn parse_id(raw: &str) -> Option<i64> {
    raw.trim().parse().ok().filter(|n| *n > 0)
}

const FORGED: &str = "Choose one of the options offered.";

/// Parses Edit Event. Referenced groups and users are checked by the caller.
pub fn parse_event(f: &Fields) -> Result<EventPart, FieldErrors> {
    let mut errors = FieldErrors::new();
    let name = f.get("name").trim().to_string();
    if name.is_empty() {
        errors.insert("name", "Enter a name.".into());
    } else if name.chars().count() > MAX_NAME_CHARS {
        errors.insert(
            "name",
            format!("The name has at most {MAX_NAME_CHARS} characters."),
        );
    } else if name.chars().any(char::is_control) {
        errors.insert("name", "The name cannot contain control characters.".into());
    }
    let description = f.get("description").trim().to_string();
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        errors.insert(
            "description",
            "The description has at most 1,000 characters.".to_string(),
        );
    }
    let event = EventType::from_code(f.get("event"));
    if event.is_none() {
        errors.insert(
            "event",
            if f.get("event").is_empty() {
                "Choose an event.".into()
            } else {
                FORGED.into()
            },
        );
    }
    let mut filter = EventFilter::Any;
    if let Some(event) = event {
        let mut bad = |field: &'static str| {
            errors.insert(field, FORGED.into());
        };
        filter = match event.filter_kind() {
            FilterKind::None => EventFilter::Any,
            FilterKind::Source => match f.get("filter_source") {
                "" => EventFilter::Any,
                code => Source::from_code(code).map_or_else(
                    || {
                        bad("filter_source");
                        EventFilter::Any
                    },
                    |source| EventFilter::Source { source },
                ),
            },
            FilterKind::Group => match f.get("filter_group") {
                "" => EventFilter::Any,
                raw => parse_id(raw).map_or_else(
                    || {
                        bad("filter_group");
                        EventFilter::Any
                    },
                    |group_id| EventFilter::Group { group_id },
                ),
            },
            FilterKind::Attribute => match f.get("filter_attribute").trim() {
                "" => EventFilter::Any,
                name => match crate::contacts::parse_attribute_name(name) {
                    Ok(name) => EventFilter::Attribute { name },
                    Err(e) => {
                        errors.insert("filter_attribute", e.0);
                        EventFilter::Any
                    }
                },
            },
            FilterKind::Name => match f.get("filter_name").trim() {
                "" => EventFilter::Any,
                name if name.chars().count() > 100 => {
                    errors.insert("filter_name", "The name has at most 100 characters.".into());
                    EventFilter::Any
                }
                name => EventFilter::Name {
                    name: name.to_string(),
                },
            },
            FilterKind::SystemUser => match f.get("filter_user") {
                "" => EventFilter::Any,
                raw => parse_id(raw).map_or_else(
                    || {
                        bad("filter_user");
                        EventFilter::Any
                    },
                    |user_id| EventFilter::SystemUser { user_id },
                ),
            },
            FilterKind::Role => match f.get("filter_role") {
                "" => EventFilter::Any,
                raw => Role::parse(raw).map_or_else(
                    |_| {
                        bad("filter_role");
                        EventFilter::Any
                    },
                    |r| EventFilter::Role {
                        role: r.code().into(),
                    },
                ),
            },
            FilterKind::Success => match f.get("filter_success") {
                "" => EventFilter::Any,
                "yes" => EventFilter::Success { success: true },
                "no" => EventFilter::Success { success: false },
                _ => {
                    bad("filter_success");
                    EventFilter::Any
                }
            },
        };
    }
    // Define Selection: each condition is optional.
    let mut selection = Vec::new();
    let contact_event = event.is_some_and(EventType::carries_contact);
    match f.get("sel_group") {
        "" => {}
        raw => match parse_id(raw) {
            Some(group_id) if contact_event => selection.push(Condition::MemberOf { group_id }),
            Some(_) => {
                errors.insert(
                    "sel_group",
                    "Group membership is a condition for contacts: choose a (C) event.".into(),
                );
            }
            None => {
                errors.insert("sel_group", FORGED.into());
            }
        },
    }
    let attr_name = f.get("sel_attr_name").trim();
    let attr_value = f.get("sel_attr_value").trim();
    if !attr_name.is_empty() || !attr_value.is_empty() {
        match crate::contacts::parse_attribute_name(attr_name) {
            Ok(_) if !contact_event => {
                errors.insert(
                    "sel_attr_name",
                    "Attributes are a condition for contacts: choose a (C) event.".into(),
                );
            }
            Ok(name) => selection.push(Condition::AttributeEquals {
                name,
                value: attr_value.chars().take(1000).collect(),
            }),
            Err(e) => {
                errors.insert("sel_attr_name", e.0);
            }
        }
    }
    match f.get("sel_role") {
        "" => {}
        raw => match Role::parse(raw) {
            Ok(_) if contact_event => {
                errors.insert(
                    "sel_role",
                    "The role is a condition for system users: choose an (S) event.".into(),
                );
            }
            Ok(r) => selection.push(Condition::RoleIs {
                role: r.code().into(),
            }),
            Err(_) => {
                errors.insert("sel_role", FORGED.into());
            }
        },
    }
    match event {
        Some(event) if errors.is_empty() => Ok(EventPart {
            name,
            description,
            event,
            filter,
            selection,
        }),
        _ => Err(errors),
    }
}

/// Step 2, parsed (a fixed contact still named by email, resolved by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPart {
    pub kind: JobKind,
    pub target: JobTarget,
    pub delay: Option<Delay>,
}

/// The target as entered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobTarget {
    EventParameter,
    ContactEmail(String),
    SystemUser(i64),
}

/// The refusal for a (C)/(S) mismatch (SPEC §4).
pub fn mismatch_message(event: EventType) -> &'static str {
    match event.scope() {
        crate::events::Scope::Contact => "Combine a (C) event with a (C) job.",
        crate::events::Scope::System => "Combine an (S) event with an (S) job.",
    }
}

/// Parses Define Job for an automation whose event is `event`.
pub fn parse_job(event: EventType, f: &Fields) -> Result<JobPart, FieldErrors> {
    let mut errors = FieldErrors::new();
    let kind = match JobKind::from_code(f.get("job")) {
        None if f.get("job").is_empty() => {
            errors.insert("job", "Choose a job.".into());
            None
        }
        None => {
            errors.insert("job", FORGED.into());
            None
        }
        Some(kind) if kind.scope() != event.scope() => {
            errors.insert("job", mismatch_message(event).into());
            None
        }
        Some(kind) => Some(kind),
    };
    let use_event = f.has("use_event_parameter");
    let target = kind.and_then(|kind| {
        if use_event {
            if kind.event_carries_target(event) {
                return Some(JobTarget::EventParameter);
            }
            let what = match kind {
                JobKind::SendNewPasswordToContact => "contact",
                JobKind::SendNewPasswordToSystemUser => "system user",
            };
            errors.insert(
                "use_event_parameter",
                format!(
                    "The event {} names no {what}: choose the {what} instead.",
                    event.label()
                ),
            );
            return None;
        }
        match kind {
            JobKind::SendNewPasswordToContact => match f.get("contact").trim() {
                "" => {
                    errors.insert(
                        "contact",
                        "Choose the contact, or tick Use Event Parameter.".into(),
                    );
                    None
                }
                email => Some(JobTarget::ContactEmail(email.to_string())),
            },
            JobKind::SendNewPasswordToSystemUser => match f.get("system_user") {
                "" => {
                    errors.insert(
                        "system_user",
                        "Choose the system user, or tick Use Event Parameter.".into(),
                    );
                    None
                }
                raw => match parse_id(raw) {
                    Some(id) => Some(JobTarget::SystemUser(id)),
                    None => {
                        errors.insert("system_user", FORGED.into());
                        None
                    }
                },
            },
        }
    });
    let delay = match f.get("delay") {
        "" | "no" => None,
        "yes" => {
            let unit = DelayUnit::from_code(f.get("delay_unit"));
            if unit.is_none() {
                errors.insert("delay_unit", "Choose Minutes, Hours, Days or Weeks.".into());
            }
            let raw = f.get("delay_value").trim();
            let value = match raw.parse::<u32>() {
                Ok(v) if v >= 1 => Some(v),
                _ if raw.is_empty() => {
                    errors.insert(
                        "delay_value",
                        "Enter the delay as a whole number of at least 1.".into(),
                    );
                    None
                }
                _ => {
                    errors.insert(
                        "delay_value",
                        "The delay is a whole number of at least 1.".into(),
                    );
                    None
                }
            };
            match (unit, value) {
                (Some(unit), Some(value)) => match Delay::new(unit, value) {
                    Some(d) => Some(d),
                    None => {
                        errors.insert(
                            "delay_value",
                            "The delay is at most 365 days in total.".into(),
                        );
                        None
                    }
                },
                _ => None,
            }
        }
        _ => {
            errors.insert("delay", FORGED.into());
            None
        }
    };
    match (kind, target) {
        (Some(kind), Some(target)) if errors.is_empty() => Ok(JobPart {
            kind,
            target,
            delay,
        }),
        _ => Err(errors),
    }
}

/// Step 3, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeFramePart {
    pub start_at: i64,
    pub time_zone: String,
    pub end_at: Option<i64>,
    pub days: u8,
    pub holidays: HolidayRule,
    pub notify: Vec<i64>,
    pub notify_days_before: i64,
}

/// The `datetime-local` form of a stored time in `zone`.
pub fn local_input(ms: Option<i64>, zone: &str) -> String {
    let tz = TimeZone::get(zone).unwrap_or(TimeZone::UTC);
    ms.and_then(|m| Timestamp::from_millisecond(m).ok())
        .map(|t| t.to_zoned(tz).strftime("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

fn parse_local(raw: &str, tz: &TimeZone) -> Option<Timestamp> {
    let dt: jiff::civil::DateTime = raw.trim().parse().ok()?;
    dt.to_zoned(tz.clone()).ok().map(|z| z.timestamp())
}

/// Parses Define Time Frame. Notification users are checked by the caller.
pub fn parse_time_frame(f: &Fields) -> Result<TimeFramePart, FieldErrors> {
    let mut errors = FieldErrors::new();
    let zone = match crate::settings::parse_time_zone(f.get("time_zone")) {
        Ok(z) => Some(z),
        Err(e) => {
            errors.insert("time_zone", e.0);
            None
        }
    };
    let tz = zone
        .as_deref()
        .and_then(|z| TimeZone::get(z).ok())
        .unwrap_or(TimeZone::UTC);
    let start = match f.get("start").trim() {
        "" => {
            errors.insert("start", "Enter the start date and time.".into());
            None
        }
        raw => parse_local(raw, &tz).or_else(|| {
            errors.insert(
                "start",
                "Enter a date and time like 2026-12-01 09:00.".into(),
            );
            None
        }),
    };
    let end = match f.get("end").trim() {
        "" => None,
        raw => parse_local(raw, &tz).or_else(|| {
            errors.insert(
                "end",
                "Enter a date and time like 2027-12-01 09:00, or leave it empty.".into(),
            );
            None
        }),
    };
    if let (Some(s), Some(e)) = (start, end) {
        let limit = s
            .to_zoned(tz.clone())
            .checked_add(5.years())
            .map(|z| z.timestamp());
        if e <= s {
            errors.insert("end", "The end must be after the start.".into());
        } else if limit.is_ok_and(|l| e > l) {
            errors.insert("end", "The end is at most 5 years after the start.".into());
        }
    }
    let mut days = 0u8;
    for (day, short) in WEEKDAYS {
        if f.has(&format!("day_{}", short.to_lowercase())) {
            days |= day_bit(day);
        }
    }
    if days == 0 {
        errors.insert("days", "Choose at least one execution day.".into());
    }
    let holidays = HolidayRule::from_code(f.get("holidays")).unwrap_or_else(|| {
        errors.insert("holidays", FORGED.into());
        HolidayRule::Always
    });
    let mut notify = Vec::new();
    for raw in f.all("notify") {
        match parse_id(raw) {
            Some(id) if !notify.contains(&id) => notify.push(id),
            Some(_) => {}
            None => {
                errors.insert("notify", FORGED.into());
            }
        }
    }
    if notify.len() > MAX_NOTIFY_USERS {
        errors.insert(
            "notify",
            format!("Choose at most {MAX_NOTIFY_USERS} system users to remind."),
        );
    }
    let notify_days_before = match f.get("notify_days").trim() {
        "" => 30,
        raw => match raw.parse::<i64>() {
            Ok(n) if (1..=365).contains(&n) => n,
            _ => {
                errors.insert(
                    "notify_days",
                    "Enter a whole number of days from 1 to 365.".into(),
                );
                30
            }
        },
    };
    match (start, zone) {
        (Some(start_at), Some(time_zone)) if errors.is_empty() => Ok(TimeFramePart {
            start_at: start_at.as_millisecond(),
            time_zone,
            end_at: end.map(|e| e.as_millisecond()),
            days,
            holidays,
            notify,
            notify_days_before,
        }),
        _ => Err(errors),
    }
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serialisable")
}

/// Creates an Inactive automation from Edit Event; returns its id.
pub async fn create(
    tx: &mut Tx,
    owner_id: i64,
    part: &EventPart,
    time_zone: &str,
    now_ms: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO automations (name, description, owner_id, event_type, event_filter, selection, time_zone, \
         state, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'inactive', $8, $8) RETURNING id",
    )
    .bind(&part.name)
    .bind(&part.description)
    .bind(owner_id)
    .bind(part.event.code())
    .bind(json(&part.filter))
    .bind(json(&part.selection))
    .bind(time_zone)
    .bind(now_ms)
    .fetch_one(&mut **tx)
    .await
}

/// Saves Edit Event. A job that no longer fits the event is cleared (returns true).
pub async fn save_event(
    tx: &mut Tx,
    current: &Automation,
    part: &EventPart,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let job_fits = current.job.is_none_or(|job| {
        job.scope() == part.event.scope()
            && (current.target != Some(Target::EventParameter)
                || job.event_carries_target(part.event))
    });
    sqlx::query(
        "UPDATE automations SET name = $1, description = $2, event_type = $3, event_filter = $4, selection = $5, \
         job_kind = CASE WHEN $6 = 1 THEN job_kind ELSE NULL END, \
         job_target = CASE WHEN $6 = 1 THEN job_target ELSE NULL END, updated_at = $7 WHERE id = $8",
    )
    .bind(&part.name)
    .bind(&part.description)
    .bind(part.event.code())
    .bind(json(&part.filter))
    .bind(json(&part.selection))
    .bind(i64::from(job_fits))
    .bind(now_ms)
    .bind(current.id)
    .execute(&mut **tx)
    .await?;
    Ok(!job_fits)
}

pub async fn save_job(
    tx: &mut Tx,
    id: i64,
    kind: JobKind,
    target: Target,
    delay: Option<Delay>,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE automations SET job_kind = $1, job_target = $2, delay_unit = $3, delay_value = $4, updated_at = $5 \
         WHERE id = $6",
    )
    .bind(kind.code())
    .bind(json(&target))
    .bind(delay.map(|d| d.unit.code()))
    .bind(delay.map(|d| i64::from(d.value)))
    .bind(now_ms)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn save_time_frame(
    tx: &mut Tx,
    id: i64,
    part: &TimeFramePart,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE automations SET start_at = $1, time_zone = $2, end_at = $3, execution_days = $4, holidays = $5, \
         notify_user_ids = $6, notify_days_before = $7, updated_at = $8 WHERE id = $9",
    )
    .bind(part.start_at)
    .bind(&part.time_zone)
    .bind(part.end_at)
    .bind(i64::from(part.days))
    .bind(part.holidays.code())
    .bind(json(&part.notify))
    .bind(part.notify_days_before)
    .bind(now_ms)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    refresh_reminder(tx, id, now_ms).await
}

/// Schedules (or moves, or cancels) the reminder run before the automation's end:
/// due `notify_days_before` days before the end, for an active automation with an
/// end and someone to remind. A reminder already sent is not sent again.
pub async fn refresh_reminder(tx: &mut Tx, id: i64, now_ms: i64) -> Result<(), sqlx::Error> {
    let row: Option<(String, Option<i64>, String, i64)> = sqlx::query_as(
        "SELECT state, end_at, notify_user_ids, notify_days_before FROM automations WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    let wanted = row.and_then(|(state, end, notify, days)| {
        let notify: Vec<i64> = serde_json::from_str(&notify).unwrap_or_default();
        match end {
            Some(end) if state == "active" && !notify.is_empty() && end > now_ms => {
                Some((end - days * 86_400_000).max(now_ms))
            }
            _ => None,
        }
    });
    let kind = crate::jobs::end_reminder::KIND;
    match wanted {
        Some(due) => {
            sqlx::query(
                "INSERT INTO job_runs (automation_id, event_id, job_kind, status, due_at, created_at) \
                 VALUES ($1, 0, $2, 'pending', $3, $4) ON CONFLICT (automation_id, event_id) DO UPDATE \
                 SET due_at = excluded.due_at, status = 'pending', attempts = 0, finished_at = NULL, outcome = NULL \
                 WHERE job_runs.status IN ('pending', 'cancelled', 'skipped')",
            )
            .bind(id)
            .bind(kind)
            .bind(due)
            .bind(now_ms)
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query(
                "UPDATE job_runs SET status = 'cancelled', outcome = 'no reminder wanted any more', finished_at = $1 \
                 WHERE automation_id = $2 AND event_id = 0 AND status = 'pending'",
            )
            .bind(now_ms)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// Activates or deactivates. Activation needs a complete automation.
pub async fn set_state(tx: &mut Tx, id: i64, state: State, now_ms: i64) -> Result<(), sqlx::Error> {
    let column = if state == State::Active {
        "activated_at"
    } else {
        "deactivated_at"
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE automations SET state = $1, {column} = $2, updated_at = $2 WHERE id = $3"
    )))
    .bind(state.code())
    .bind(now_ms)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    refresh_reminder(tx, id, now_ms).await
}

/// Copies an automation as a new Inactive one owned by `owner_id`.
pub async fn copy(tx: &mut Tx, id: i64, owner_id: i64, now_ms: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO automations (name, description, owner_id, event_type, event_filter, selection, job_kind, \
         job_target, delay_unit, delay_value, start_at, time_zone, end_at, execution_days, holidays, notify_user_ids, \
         notify_days_before, state, created_at, updated_at) \
         SELECT SUBSTR('Copy of ' || name, 1, 100), description, $1, event_type, event_filter, selection, job_kind, \
         job_target, delay_unit, delay_value, start_at, time_zone, end_at, execution_days, holidays, notify_user_ids, \
         notify_days_before, 'inactive', $2, $2 FROM automations WHERE id = $3 RETURNING id",
    )
    .bind(owner_id)
    .bind(now_ms)
    .bind(id)
    .fetch_one(&mut **tx)
    .await
}

pub async fn delete(tx: &mut Tx, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM automations WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn status_follows_activation_and_the_time_frame() {
        let mut a = Automation {
            id: 1,
            name: "n".into(),
            description: String::new(),
            owner_id: 1,
            owner_name: "o".into(),
            event: EventType::NewPasswordRequested,
            filter: EventFilter::Any,
            selection: vec![],
            job: Some(JobKind::SendNewPasswordToContact),
            target: Some(Target::EventParameter),
            delay: None,
            start_at: Some(1_000),
            time_zone: "UTC".into(),
            end_at: Some(2_000),
            days: ALL_DAYS,
            holidays: HolidayRule::Always,
            notify: vec![],
            notify_days_before: 30,
            state: State::Inactive,
            activated_at: None,
            created_at: 0,
        };
        assert_eq!(a.status(1_500), Status::Inactive);
        a.state = State::Active;
        assert_eq!(a.status(999), Status::Scheduled);
        assert_eq!(a.status(1_000), Status::Running);
        assert_eq!(a.status(1_999), Status::Running);
        assert_eq!(a.status(2_000), Status::Done);
        a.end_at = None;
        assert_eq!(a.status(i64::MAX), Status::Running);
        a.state = State::Deactivated;
        assert_eq!(a.status(1_500), Status::Deactivated);
    }

    #[test]
    fn delay_values_are_checked() {
        let base = [
            ("job", "send_new_password_to_contact"),
            ("use_event_parameter", "on"),
            ("delay", "yes"),
            ("delay_unit", "minutes"),
        ];
        for (value, ok) in [
            ("", false),
            ("0", false),
            ("-1", false),
            ("1e9", false),
            ("abc", false),
            ("1.5", false),
            ("10", true),
            ("525600", true),
            ("525601", false),
        ] {
            let mut f = fields(&base);
            f.set("delay_value", value);
            let r = parse_job(EventType::NewPasswordRequested, &f);
            assert_eq!(r.is_ok(), ok, "{value:?}: {r:?}");
            if !ok {
                assert!(r.unwrap_err().contains_key("delay_value"), "{value:?}");
            }
        }
        let mut f = fields(&base);
        f.set("delay_unit", "fortnights");
        f.set("delay_value", "1");
        assert!(
            parse_job(EventType::NewPasswordRequested, &f)
                .unwrap_err()
                .contains_key("delay_unit")
        );
        let mut f = fields(&base);
        f.set("delay", "no");
        f.set("delay_value", "garbage");
        assert_eq!(
            parse_job(EventType::NewPasswordRequested, &f)
                .unwrap()
                .delay,
            None,
            "values are ignored with Delay No"
        );
    }
}
