//! The wizard's windows parsed at the boundary: Edit Event, the generic part of
//! Define Job (the target and the delay; a job's own fields are its parser's), and
//! Define Time Frame. Every message lands next to its field.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use crate::auth::users::Role;
use crate::automations::model::{
    Condition, EventFilter, MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, MAX_NOTIFY_USERS, Target,
    TargetKind,
};
use crate::automations::time_frame::{
    DAY_MINUTES, Delay, DelayUnit, HolidayRule, Hours, WEEKDAYS, day_bit,
};
use crate::events::catalogue::{EventType, FilterKind, Response, Source};
use crate::web::form::{FieldErrors, Fields};

/// Step 1, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPart {
    pub name: String,
    pub description: String,
    pub event: EventType,
    pub filter: EventFilter,
    pub selection: Vec<Condition>,
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
                name => match crate::types::parse_attribute_name(name) {
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
            FilterKind::Response => match f.get("filter_response") {
                "" => EventFilter::Any,
                raw => Response::from_code(raw).map_or_else(
                    || {
                        bad("filter_response");
                        EventFilter::Any
                    },
                    |response| EventFilter::Response { response },
                ),
            },
            FilterKind::Opened | FilterKind::Clicked => {
                let message_id = match f.get("filter_message") {
                    "" => None,
                    raw => match raw.parse::<i64>() {
                        Ok(id) => Some(id),
                        Err(_) => {
                            bad("filter_message");
                            None
                        }
                    },
                };
                let link = if event.filter_kind() == FilterKind::Clicked {
                    f.get("filter_link").trim().to_string()
                } else {
                    String::new()
                };
                if link.chars().count() > 200 {
                    errors.insert(
                        "filter_link",
                        "At most 200 characters of the link's address.".into(),
                    );
                }
                let first_only = !f.get("filter_first").is_empty();
                if message_id.is_none() && link.is_empty() && !first_only {
                    EventFilter::Any
                } else {
                    EventFilter::Engagement {
                        message_id,
                        link,
                        first_only,
                    }
                }
            }
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
        match crate::types::parse_attribute_name(attr_name) {
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

/// Step 2's generic part, parsed (a fixed contact still named by email, resolved
/// by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPart {
    pub target: Option<JobTarget>,
    pub delay: Option<Delay>,
}

/// The target as entered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobTarget {
    EventParameter,
    ContactEmail(String),
    SystemUser(i64),
}

/// Define Job, resolved and ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct JobChoice {
    pub kind: String,
    pub target: Option<Target>,
    pub config: serde_json::Value,
    pub delay: Option<Delay>,
}

/// The refusal for a (C)/(S) mismatch: a contact event needs a (C) job, a system event an (S) job.
pub fn mismatch_message(event: EventType) -> &'static str {
    match event.scope() {
        crate::events::catalogue::Scope::Contact => "Combine a (C) event with a (C) job.",
        crate::events::catalogue::Scope::System => "Combine an (S) event with an (S) job.",
    }
}

/// The message for a job select that holds nothing offered.
pub fn job_choice_message(raw: &str) -> &'static str {
    if raw.is_empty() {
        "Choose a job."
    } else {
        FORGED
    }
}

/// Parses the generic part of Define Job for an automation whose event is `event`
/// and whose job is for `target` (if anyone), adding messages to `errors`.
pub fn parse_job(
    event: EventType,
    target: Option<TargetKind>,
    f: &Fields,
    errors: &mut FieldErrors,
) -> JobPart {
    let target = target.and_then(|kind| {
        if f.has("use_event_parameter") {
            if kind.carried_by(event) {
                return Some(JobTarget::EventParameter);
            }
            let what = kind.noun();
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
            TargetKind::Contact => match f.get("contact").trim() {
                "" => {
                    errors.insert(
                        "contact",
                        "Choose the contact, or tick Use Event Parameter.".into(),
                    );
                    None
                }
                email => Some(JobTarget::ContactEmail(email.to_string())),
            },
            TargetKind::SystemUser => match f.get("system_user") {
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
    let delay = parse_delay(f, errors);
    JobPart { target, delay }
}

/// Define Delay: none, or a unit and a whole number within 365 days.
fn parse_delay(f: &Fields, errors: &mut FieldErrors) -> Option<Delay> {
    match f.get("delay") {
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
    }
}

/// Step 3, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeFramePart {
    pub start_at: i64,
    pub time_zone: String,
    pub end_at: Option<i64>,
    pub days: u8,
    pub hours: Hours,
    pub holidays: HolidayRule,
    pub notify: Vec<i64>,
    pub notify_days_before: i64,
}

/// A time of day from a `time` input (`HH:MM`, seconds allowed and dropped) as
/// minutes after 00:00.
fn parse_clock(raw: &str) -> Option<u16> {
    let t: jiff::civil::Time = raw.trim().parse().ok()?;
    Some(t.hour() as u16 * 60 + t.minute() as u16)
}

/// Execution hours from `hours_from` and `hours_to`: empty From is 00:00, empty
/// To (or 00:00) is midnight at the end of the day.
fn parse_hours(f: &Fields, errors: &mut FieldErrors) -> Hours {
    const SHAPE: &str = "Enter a time like 09:00, or leave it empty.";
    let from = match f.get("hours_from").trim() {
        "" => Some(0),
        raw => parse_clock(raw).or_else(|| {
            errors.insert("hours_from", SHAPE.into());
            None
        }),
    };
    let to = match f.get("hours_to").trim() {
        "" => Some(DAY_MINUTES),
        raw => match parse_clock(raw) {
            Some(0) => Some(DAY_MINUTES),
            Some(m) => Some(m),
            None => {
                errors.insert("hours_to", SHAPE.into());
                None
            }
        },
    };
    match (from, to) {
        (Some(from), Some(to)) => Hours::new(from, to).unwrap_or_else(|| {
            errors.insert(
                "hours_to",
                "The hours end after they start on the same day (like 09:00 to 17:00); \
                 a window over midnight needs two automations."
                    .into(),
            );
            Hours::ALL_DAY
        }),
        _ => Hours::ALL_DAY,
    }
}

/// The `datetime-local` form of a stored time in `zone`.
pub fn local_input(ms: Option<i64>, zone: &str) -> String {
    let tz = TimeZone::get(zone).unwrap_or(TimeZone::UTC);
    ms.and_then(|m| Timestamp::from_millisecond(m).ok())
        .map(|t| t.to_zoned(tz).strftime("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

/// A `datetime-local` value read in `tz` (a time skipped by a daylight-saving change
/// moves forward, as the scheduler reads it).
pub fn parse_local(raw: &str, tz: &TimeZone) -> Option<Timestamp> {
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
    let hours = parse_hours(f, &mut errors);
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
            hours,
            holidays,
            notify,
            notify_days_before,
        }),
        _ => Err(errors),
    }
}

#[cfg(test)]
#[path = "wizard_tests.rs"]
mod tests;
