//! What consent is made of: where a subscription came from ([`Method`]), what
//! happened ([`Action`]) and how ([`How`]).

/// Where a subscription or its withdrawal came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    PreferenceCenter,
    SignUp,
    Api,
    Import,
    Staff,
    Automation,
    ConfirmationLink,
    UnsubscribeLink,
    /// Nobody confirmed within the link's lifetime.
    Expiry,
}

impl Method {
    pub const ALL: [Method; 9] = [
        Method::PreferenceCenter,
        Method::SignUp,
        Method::Api,
        Method::Import,
        Method::Staff,
        Method::Automation,
        Method::ConfirmationLink,
        Method::UnsubscribeLink,
        Method::Expiry,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Method::PreferenceCenter => "preference_center",
            Method::SignUp => "sign_up",
            Method::Api => "api",
            Method::Import => "import",
            Method::Staff => "staff",
            Method::Automation => "automation",
            Method::ConfirmationLink => "confirmation_link",
            Method::UnsubscribeLink => "unsubscribe_link",
            Method::Expiry => "expiry",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.code() == code)
    }

    pub fn label(self) -> &'static str {
        match self {
            Method::PreferenceCenter => "in the preference center",
            Method::SignUp => "on the sign-up form",
            Method::Api => "through the API",
            Method::Import => "by an import",
            Method::Staff => "by staff",
            Method::Automation => "by an automation",
            Method::ConfirmationLink => "with the emailed confirmation link",
            Method::UnsubscribeLink => "with an unsubscribe link",
            Method::Expiry => "not confirmed in time",
        }
    }
}

/// What happened to a contact's consent to a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Asked to join a double opt-in group: pending, a confirmation email owed.
    Requested,
    /// Confirmed with the emailed link: a member now.
    Confirmed,
    /// A member at once (no confirmation asked, or consent asserted by staff).
    Subscribed,
    /// Left the group, or withdrew a pending request.
    Withdrawn,
    /// Not confirmed within the link's lifetime.
    Expired,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Requested,
        Action::Confirmed,
        Action::Subscribed,
        Action::Withdrawn,
        Action::Expired,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Action::Requested => "requested",
            Action::Confirmed => "confirmed",
            Action::Subscribed => "subscribed",
            Action::Withdrawn => "withdrawn",
            Action::Expired => "expired",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.code() == code)
    }

    pub fn label(self) -> &'static str {
        match self {
            Action::Requested => "Asked to subscribe (confirmation pending)",
            Action::Confirmed => "Confirmed",
            Action::Subscribed => "Subscribed",
            Action::Withdrawn => "Unsubscribed",
            Action::Expired => "Confirmation expired",
        }
    }

    pub fn badge(self) -> &'static str {
        match self {
            Action::Requested => "text-bg-warning",
            Action::Confirmed | Action::Subscribed => "text-bg-success",
            Action::Withdrawn | Action::Expired => "text-bg-secondary",
        }
    }
}

/// How one subscription or withdrawal came about, as its consent record keeps it.
#[derive(Debug, Clone)]
pub struct How {
    pub method: Method,
    /// The API key's name, the import file and the staff member who asserted
    /// consent, the staff member, the automation.
    pub detail: String,
    pub ip: String,
    pub user_agent: String,
    /// Consent given elsewhere and asserted (an import's "I have their
    /// consent"): no confirmation is asked.
    pub asserted: bool,
    /// A run this many links down an automation chain (0: a person).
    pub depth: u64,
}

impl How {
    pub fn new(method: Method) -> Self {
        Self {
            method,
            detail: String::new(),
            ip: String::new(),
            user_agent: String::new(),
            asserted: false,
            depth: 0,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// The client's address and user agent (its first 500 characters).
    pub fn from_client(mut self, ip: &str, user_agent: &str) -> Self {
        self.ip = ip.to_string();
        self.user_agent = user_agent
            .chars()
            .filter(|c| !c.is_control())
            .take(500)
            .collect();
        self
    }

    /// From a request: the client as [`crate::web::client_ip`] finds it, and its user agent.
    pub fn from_request(
        self,
        req: &actix_web::HttpRequest,
        trusted_proxies: &[std::net::IpAddr],
    ) -> Self {
        let agent = req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        self.from_client(&crate::web::client_ip(req, trusted_proxies), agent)
    }

    pub fn asserted(mut self) -> Self {
        self.asserted = true;
        self
    }

    pub fn at_depth(mut self, depth: u64) -> Self {
        self.depth = depth;
        self
    }
}
