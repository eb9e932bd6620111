//! The event catalogue (README, What works today): what can happen, its scope, its Define Event
//! filter, and an event as it is about to be recorded. No database here.

use serde::Serialize;

/// Contact-related (C) or system (S).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Scope {
    Contact,
    System,
}

impl Scope {
    pub fn code(self) -> &'static str {
        match self {
            Scope::Contact => "C",
            Scope::System => "S",
        }
    }
}

/// Every kind of event Herald knows. A closed list: adding one is a new variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventType {
    RegisteredToSystem,
    SubscribedToGroup,
    UnsubscribedFromGroup,
    ProfileDataChanged,
    NewPasswordRequested,
    ExternalEventReceived,
    LoggedOnToSystem,
    SystemUserCreated,
    ContactImportFinished,
    ExternalHttpRequestReceived,
    ResponseReceived,
    MessageOpened,
    LinkClicked,
}

impl EventType {
    pub const ALL: [EventType; 13] = [
        EventType::RegisteredToSystem,
        EventType::SubscribedToGroup,
        EventType::UnsubscribedFromGroup,
        EventType::ProfileDataChanged,
        EventType::NewPasswordRequested,
        EventType::ExternalEventReceived,
        EventType::LoggedOnToSystem,
        EventType::SystemUserCreated,
        EventType::ContactImportFinished,
        EventType::ExternalHttpRequestReceived,
        EventType::ResponseReceived,
        EventType::MessageOpened,
        EventType::LinkClicked,
    ];

    /// The stable code stored in the database.
    pub fn code(self) -> &'static str {
        match self {
            EventType::RegisteredToSystem => "registered_to_system",
            EventType::SubscribedToGroup => "subscribed_to_group",
            EventType::UnsubscribedFromGroup => "unsubscribed_from_group",
            EventType::ProfileDataChanged => "profile_data_changed",
            EventType::NewPasswordRequested => "new_password_requested",
            EventType::ExternalEventReceived => "external_event_received",
            EventType::LoggedOnToSystem => "logged_on_to_system",
            EventType::SystemUserCreated => "system_user_created",
            EventType::ContactImportFinished => "contact_import_finished",
            EventType::ExternalHttpRequestReceived => "external_http_request_received",
            EventType::ResponseReceived => "response_received",
            EventType::MessageOpened => "message_opened",
            EventType::LinkClicked => "link_clicked",
        }
    }

    /// The label staff see, with its (C)/(S) suffix.
    pub fn label(self) -> &'static str {
        match self {
            EventType::RegisteredToSystem => "Registered to System (C)",
            EventType::SubscribedToGroup => "Subscribed to Group (C)",
            EventType::UnsubscribedFromGroup => "Unsubscribed from Group (C)",
            EventType::ProfileDataChanged => "Profile Data Changed (C)",
            EventType::NewPasswordRequested => "New Password Requested (C)",
            EventType::ExternalEventReceived => "External Event Received (C)",
            EventType::LoggedOnToSystem => "Logged on to System (S)",
            EventType::SystemUserCreated => "System User Created (S)",
            EventType::ContactImportFinished => "Contact Import Finished (S)",
            EventType::ExternalHttpRequestReceived => "External HTTP Request Received (S)",
            EventType::ResponseReceived => "Response Received (C)",
            EventType::MessageOpened => "Message Opened (C)",
            EventType::LinkClicked => "Link Clicked (C)",
        }
    }

    pub fn scope(self) -> Scope {
        match self {
            EventType::RegisteredToSystem
            | EventType::SubscribedToGroup
            | EventType::UnsubscribedFromGroup
            | EventType::ProfileDataChanged
            | EventType::NewPasswordRequested
            | EventType::ExternalEventReceived
            | EventType::ResponseReceived
            | EventType::MessageOpened
            | EventType::LinkClicked => Scope::Contact,
            EventType::LoggedOnToSystem
            | EventType::SystemUserCreated
            | EventType::ContactImportFinished
            | EventType::ExternalHttpRequestReceived => Scope::System,
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.code() == code)
    }

    /// The heading the Event select groups it under.
    pub fn category(self) -> &'static str {
        match self {
            EventType::RegisteredToSystem | EventType::ProfileDataChanged => "Contact data",
            EventType::SubscribedToGroup | EventType::UnsubscribedFromGroup => "Groups",
            EventType::NewPasswordRequested => "Preference center",
            EventType::ResponseReceived => "Deliverability",
            EventType::MessageOpened | EventType::LinkClicked => "Opens and clicks",
            EventType::ExternalEventReceived | EventType::ExternalHttpRequestReceived => {
                "Integration"
            }
            EventType::LoggedOnToSystem
            | EventType::SystemUserCreated
            | EventType::ContactImportFinished => "System",
        }
    }

    /// The filter Define Event offers for this event.
    pub fn filter_kind(self) -> FilterKind {
        match self {
            EventType::RegisteredToSystem => FilterKind::Source,
            EventType::SubscribedToGroup | EventType::UnsubscribedFromGroup => FilterKind::Group,
            EventType::ProfileDataChanged => FilterKind::Attribute,
            EventType::NewPasswordRequested => FilterKind::None,
            EventType::ExternalEventReceived | EventType::ExternalHttpRequestReceived => {
                FilterKind::Name
            }
            EventType::LoggedOnToSystem => FilterKind::SystemUser,
            EventType::SystemUserCreated => FilterKind::Role,
            EventType::ContactImportFinished => FilterKind::Success,
            EventType::ResponseReceived => FilterKind::Response,
            EventType::MessageOpened => FilterKind::Opened,
            EventType::LinkClicked => FilterKind::Clicked,
        }
    }

    /// Whether the event names a contact (for "Use Event Parameter").
    pub fn carries_contact(self) -> bool {
        self.scope() == Scope::Contact
    }

    /// Whether the event names a system user (for "Use Event Parameter").
    pub fn carries_system_user(self) -> bool {
        matches!(
            self,
            EventType::LoggedOnToSystem
                | EventType::SystemUserCreated
                | EventType::ContactImportFinished
        )
    }

    /// The categories in display order, each with its events.
    pub fn grouped() -> Vec<(&'static str, Vec<EventType>)> {
        let mut out: Vec<(&'static str, Vec<EventType>)> = Vec::new();
        for e in Self::ALL {
            match out.iter_mut().find(|(c, _)| *c == e.category()) {
                Some((_, list)) => list.push(e),
                None => out.push((e.category(), vec![e])),
            }
        }
        out
    }
}

/// What Define Event can filter on, per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterKind {
    None,
    Source,
    Group,
    Attribute,
    Name,
    SystemUser,
    Role,
    Success,
    Response,
    /// Message Opened: the message (any or one), first time only.
    Opened,
    /// Link Clicked: the message, a text the link's target contains, first time only.
    Clicked,
}

/// What the mail system said of an email (the filter and a parameter of
/// Response Received): a delay notice is recorded, not an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    HardBounce,
    SoftBounce,
    Complaint,
}

impl Response {
    pub const ALL: [Response; 3] = [
        Response::HardBounce,
        Response::SoftBounce,
        Response::Complaint,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Response::HardBounce => "hard_bounce",
            Response::SoftBounce => "soft_bounce",
            Response::Complaint => "complaint",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Response::HardBounce => "Hard bounce",
            Response::SoftBounce => "Soft bounce",
            Response::Complaint => "Complaint",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }
}

/// The parameters of a Response Received event.
#[derive(Debug, Clone)]
pub struct ResponseParams<'a> {
    pub response: Response,
    /// The delivery (the email) it is about.
    pub delivery: i64,
    /// The prepared message, when the email was one.
    pub message: Option<i64>,
    pub status: &'a str,
    pub diagnostic: &'a str,
    /// Who said it: `smtp` (a report to the bounce address) or the provider.
    pub source: &'a str,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::Ui,
        Source::Import,
        Source::Api,
        Source::PreferenceCenter,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Source::Ui => "ui",
            Source::Import => "import",
            Source::Api => "api",
            Source::PreferenceCenter => "preference_center",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Source::Ui => "Admin UI",
            Source::Import => "CSV import",
            Source::Api => "API",
            Source::PreferenceCenter => "Preference center",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// Where a contact came from (the `source` parameter of Registered to System).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Ui,
    Import,
    Api,
    PreferenceCenter,
}

/// An event to record. Parameters beyond the ids go into `params` (JSON).
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: EventType,
    pub contact_id: Option<i64>,
    pub system_user_id: Option<i64>,
    pub group_id: Option<i64>,
    pub params: serde_json::Value,
}

impl NewEvent {
    pub fn contact(kind: EventType, contact_id: i64) -> Self {
        Self {
            kind,
            contact_id: Some(contact_id),
            system_user_id: None,
            group_id: None,
            params: serde_json::json!({}),
        }
    }

    pub fn registered(contact_id: i64, source: Source) -> Self {
        let mut e = Self::contact(EventType::RegisteredToSystem, contact_id);
        e.params = serde_json::json!({ "source": source });
        e
    }

    pub fn membership(contact_id: i64, group_id: i64, joined: bool) -> Self {
        let kind = if joined {
            EventType::SubscribedToGroup
        } else {
            EventType::UnsubscribedFromGroup
        };
        let mut e = Self::contact(kind, contact_id);
        e.group_id = Some(group_id);
        e
    }

    /// The same event, caused by a run `depth` links down an automation chain.
    pub fn at_depth(mut self, depth: u64) -> Self {
        if depth > 0 {
            self.params["chain_depth"] = depth.into();
        }
        self
    }

    /// How many runs led to this event (0: a person's change or an outside system).
    pub fn chain_depth(&self) -> u64 {
        self.params["chain_depth"].as_u64().unwrap_or(0)
    }

    /// Response Received: the mail system said `p` of an email to the contact.
    pub fn response(contact_id: i64, p: &ResponseParams<'_>) -> Self {
        let mut e = Self::contact(EventType::ResponseReceived, contact_id);
        e.params = serde_json::json!({
            "response": p.response.code(),
            "delivery": p.delivery,
            "message": p.message,
            "status": p.status,
            "diagnostic": p.diagnostic,
            "source": p.source,
        });
        e
    }

    /// Message Opened or Link Clicked (with `link`: its position and target): a
    /// person opened the email `delivery` of the message, or clicked its link.
    pub fn engaged(
        contact_id: i64,
        delivery: i64,
        message: (i64, &str),
        link: Option<(i64, &str)>,
        first: bool,
    ) -> Self {
        let kind = match link {
            Some(_) => EventType::LinkClicked,
            None => EventType::MessageOpened,
        };
        let mut e = Self::contact(kind, contact_id);
        e.params = serde_json::json!({
            "delivery": delivery,
            "message_id": message.0,
            "message": message.1,
            "first": first,
        });
        if let Some((position, target)) = link {
            e.params["link"] = target.into();
            e.params["position"] = position.into();
        }
        e
    }

    pub fn profile_changed(contact_id: i64, changed: &[String]) -> Self {
        let mut e = Self::contact(EventType::ProfileDataChanged, contact_id);
        e.params = serde_json::json!({ "changed": changed });
        e
    }
}
