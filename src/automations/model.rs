//! An automation as Herald holds it: its Define Event filter, its selection, its
//! job's target, its activation and the status the overview shows.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::automations::time_frame::{ALL_DAYS, Delay, HolidayRule, Hours, WEEKDAYS, day_bit};
use crate::events::catalogue::{EventType, Response, Source};
use crate::scheduler::status::RunFor;
use crate::types::AutomationId;

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 1000;
pub const MAX_NOTIFY_USERS: usize = 10;

/// The Define Event filter of an automation (`Any` = no filter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventFilter {
    Any,
    Source {
        source: Source,
    },
    Group {
        group_id: i64,
    },
    Attribute {
        name: String,
    },
    Name {
        name: String,
    },
    SystemUser {
        user_id: i64,
    },
    Role {
        role: String,
    },
    Success {
        success: bool,
    },
    Response {
        response: Response,
    },
    /// Message Opened / Link Clicked: of one message (none: any), a link whose
    /// target contains a text (empty: any), the first time only.
    Engagement {
        message_id: Option<i64>,
        #[serde(default)]
        link: String,
        #[serde(default)]
        first_only: bool,
    },
}

impl EventFilter {
    /// Whether `event` passes this Define Event filter.
    pub fn matches(&self, event: &crate::events::catalogue::NewEvent) -> bool {
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
            EventFilter::Response { response } => p["response"] == response.code(),
            EventFilter::Engagement {
                message_id,
                link,
                first_only,
            } => {
                message_id.is_none_or(|m| p["message_id"] == m)
                    && (link.is_empty()
                        || p["link"]
                            .as_str()
                            .is_some_and(|t| t.to_lowercase().contains(&link.to_lowercase())))
                    && (!first_only || p["first"] == true)
            }
        }
    }
}

/// The Message Opened / Link Clicked filter in words ("the message Welcome, a
/// link containing “pricing”, the first time"), `message` empty for any.
pub fn engagement_words(message: &str, link: &str, first_only: bool) -> String {
    let mut words = Vec::new();
    if !message.is_empty() {
        words.push(format!("the message {message}"));
    }
    if !link.is_empty() {
        words.push(format!("a link containing “{link}”"));
    }
    if first_only {
        words.push("the first time".to_string());
    }
    if words.is_empty() {
        "any message".into()
    } else {
        words.join(", ")
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

/// Whom a job is for, when it is for someone: what Define Job asks for, and what
/// Use Event Parameter takes from the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Contact,
    SystemUser,
}

impl TargetKind {
    /// Whether events of `event`'s type name such a target.
    pub fn carried_by(self, event: EventType) -> bool {
        match self {
            TargetKind::Contact => event.carries_contact(),
            TargetKind::SystemUser => event.carries_system_user(),
        }
    }

    /// The target in words: "contact", "system user".
    pub fn noun(self) -> &'static str {
        match self {
            TargetKind::Contact => "contact",
            TargetKind::SystemUser => "system user",
        }
    }
}

/// Activation as staff set it; the shown status also depends on the time frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Inactive,
    Active,
    Deactivated,
}

impl State {
    pub fn code(self) -> &'static str {
        match self {
            State::Inactive => "inactive",
            State::Active => "active",
            State::Deactivated => "deactivated",
        }
    }
}

/// The status the overview shows: from the activation and the time frame.
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
    pub fn condition(self) -> &'static str {
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
    pub id: AutomationId,
    pub name: String,
    pub description: String,
    pub owner_id: i64,
    pub owner_name: String,
    pub event: EventType,
    pub filter: EventFilter,
    pub selection: Vec<Condition>,
    /// The job's kind (its registry code), once Define Job was saved.
    pub job: Option<String>,
    /// The job's own fields, as its parser made them.
    pub job_config: serde_json::Value,
    pub target: Option<Target>,
    pub delay: Option<Delay>,
    pub start_at: Option<i64>,
    pub time_zone: String,
    pub end_at: Option<i64>,
    pub days: u8,
    /// The execution hours on those days, in the zone.
    pub hours: Hours,
    pub holidays: HolidayRule,
    pub notify: Vec<i64>,
    pub notify_days_before: i64,
    pub state: State,
    pub activated_at: Option<i64>,
    pub created_at: i64,
    /// The automation this one was copied from, until a window of it is saved.
    pub copied_from: Option<AutomationId>,
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

    /// Whether it is switched on (it may still wait for its start).
    pub fn is_active(&self) -> bool {
        self.state == State::Active
    }

    /// Whether every window was completed (a job and a time frame).
    pub fn is_complete(&self) -> bool {
        self.job.is_some() && self.start_at.is_some()
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

impl From<TargetKind> for RunFor {
    fn from(kind: TargetKind) -> Self {
        match kind {
            TargetKind::Contact => RunFor::Contact,
            TargetKind::SystemUser => RunFor::SystemUser,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_activation_and_the_time_frame() {
        let mut a = Automation {
            id: AutomationId(1),
            name: "n".into(),
            description: String::new(),
            owner_id: 1,
            owner_name: "o".into(),
            event: EventType::NewPasswordRequested,
            filter: EventFilter::Any,
            selection: vec![],
            job: Some("send_new_password_to_contact".into()),
            job_config: serde_json::Value::Null,
            target: Some(Target::EventParameter),
            delay: None,
            start_at: Some(1_000),
            time_zone: "UTC".into(),
            end_at: Some(2_000),
            days: ALL_DAYS,
            hours: Hours::ALL_DAY,
            holidays: HolidayRule::Always,
            notify: vec![],
            notify_days_before: 30,
            state: State::Inactive,
            activated_at: None,
            created_at: 0,
            copied_from: None,
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
}
