//! The audit log: who did what, when (UTC). Entries never hold a secret.

use serde::Serialize;
use sqlx::AnyConnection;

use crate::db::Db;

/// What happened. The stored code is stable; the label is what admins read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    SignInSucceeded,
    SignInFailed,
    SignedOut,
    PasswordChanged,
    UserCreated,
    UserRoleChanged,
    UserDisabled,
    UserEnabled,
    UserPasswordReset,
    AccountChanged,
    AccountEmailRequested,
    AccountEmailChanged,
    SettingsChanged,
    CsrfRejected,
    AccessDenied,
    ContactBlocked,
    ContactUnblocked,
    ContactDeleted,
    ContactExported,
    ContactsImported,
    AutomationCreated,
    AutomationChanged,
    AutomationActivated,
    AutomationDeactivated,
    AutomationDeleted,
    PasswordDelivered,
    MessageSaved,
    MessageDeleted,
    ContactChangedByAutomation,
    ApiKeyCreated,
    ApiKeyRevoked,
    SuppressionAdded,
    SuppressionRemoved,
    SuppressionsImported,
    DkimKeyCreated,
    PasswordRequestLimited,
    AutomationTried,
}

impl Action {
    pub fn code(self) -> &'static str {
        match self {
            Self::SignInSucceeded => "signin.succeeded",
            Self::SignInFailed => "signin.failed",
            Self::SignedOut => "signout",
            Self::PasswordChanged => "password.changed",
            Self::UserCreated => "user.created",
            Self::UserRoleChanged => "user.role_changed",
            Self::UserDisabled => "user.disabled",
            Self::UserEnabled => "user.enabled",
            Self::UserPasswordReset => "user.password_reset",
            Self::AccountChanged => "account.changed",
            Self::AccountEmailRequested => "account.email_requested",
            Self::AccountEmailChanged => "account.email_changed",
            Self::SettingsChanged => "settings.changed",
            Self::CsrfRejected => "security.csrf_rejected",
            Self::AccessDenied => "security.access_denied",
            Self::ContactBlocked => "contact.blocked",
            Self::ContactUnblocked => "contact.unblocked",
            Self::ContactDeleted => "contact.deleted",
            Self::ContactExported => "contact.exported",
            Self::ContactsImported => "contacts.imported",
            Self::AutomationCreated => "automation.created",
            Self::AutomationChanged => "automation.changed",
            Self::AutomationActivated => "automation.activated",
            Self::AutomationDeactivated => "automation.deactivated",
            Self::AutomationDeleted => "automation.deleted",
            Self::PasswordDelivered => "password.delivered",
            Self::MessageSaved => "message.saved",
            Self::MessageDeleted => "message.deleted",
            Self::ContactChangedByAutomation => "contact.changed_by_automation",
            Self::ApiKeyCreated => "api_key.created",
            Self::ApiKeyRevoked => "api_key.revoked",
            Self::SuppressionAdded => "suppression.added",
            Self::SuppressionRemoved => "suppression.removed",
            Self::SuppressionsImported => "suppressions.imported",
            Self::DkimKeyCreated => "dkim.key_created",
            Self::PasswordRequestLimited => "password.request_limited",
            Self::AutomationTried => "automation.tried",
        }
    }

    pub fn label_of(code: &str) -> &'static str {
        ALL.iter()
            .find(|a| a.code() == code)
            .map_or("Other", |a| a.label())
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::SignInSucceeded => "Signed in",
            Self::SignInFailed => "Sign-in failed",
            Self::SignedOut => "Signed out",
            Self::PasswordChanged => "Password changed",
            Self::UserCreated => "System user created",
            Self::UserRoleChanged => "Role changed",
            Self::UserDisabled => "System user disabled",
            Self::UserEnabled => "System user enabled",
            Self::UserPasswordReset => "Temporary password issued",
            Self::AccountChanged => "Own account changed",
            Self::AccountEmailRequested => "New email address asked for",
            Self::AccountEmailChanged => "Own email address changed",
            Self::SettingsChanged => "Settings changed",
            Self::CsrfRejected => "Form rejected (CSRF)",
            Self::AccessDenied => "Access denied",
            Self::ContactBlocked => "Contact blocked",
            Self::ContactUnblocked => "Contact unblocked",
            Self::ContactDeleted => "Contact deleted",
            Self::ContactExported => "Contact's data exported",
            Self::ContactsImported => "Contacts imported",
            Self::AutomationCreated => "Automation created",
            Self::AutomationChanged => "Automation changed",
            Self::AutomationActivated => "Automation activated",
            Self::AutomationDeactivated => "Automation deactivated",
            Self::AutomationDeleted => "Automation deleted",
            Self::PasswordDelivered => "New password emailed",
            Self::MessageSaved => "Message saved",
            Self::MessageDeleted => "Message deleted",
            Self::ContactChangedByAutomation => "Contact changed by an automation",
            Self::ApiKeyCreated => "API key created",
            Self::ApiKeyRevoked => "API key revoked",
            Self::SuppressionAdded => "Address suppressed",
            Self::SuppressionRemoved => "Address taken off the suppression list",
            Self::SuppressionsImported => "Suppression list imported",
            Self::DkimKeyCreated => "DKIM key made",
            Self::PasswordRequestLimited => "Password request limited",
            Self::AutomationTried => "Automation tried",
        }
    }
}

const ALL: [Action; 37] = [
    Action::SignInSucceeded,
    Action::SignInFailed,
    Action::SignedOut,
    Action::PasswordChanged,
    Action::UserCreated,
    Action::UserRoleChanged,
    Action::UserDisabled,
    Action::UserEnabled,
    Action::UserPasswordReset,
    Action::AccountChanged,
    Action::AccountEmailRequested,
    Action::AccountEmailChanged,
    Action::SettingsChanged,
    Action::CsrfRejected,
    Action::AccessDenied,
    Action::ContactBlocked,
    Action::ContactUnblocked,
    Action::ContactDeleted,
    Action::ContactExported,
    Action::ContactsImported,
    Action::AutomationCreated,
    Action::AutomationChanged,
    Action::AutomationActivated,
    Action::AutomationDeactivated,
    Action::AutomationDeleted,
    Action::PasswordDelivered,
    Action::MessageSaved,
    Action::MessageDeleted,
    Action::ContactChangedByAutomation,
    Action::ApiKeyCreated,
    Action::ApiKeyRevoked,
    Action::SuppressionAdded,
    Action::SuppressionRemoved,
    Action::SuppressionsImported,
    Action::DkimKeyCreated,
    Action::PasswordRequestLimited,
    Action::AutomationTried,
];

/// How many entries of `action` were written since `since_ms`.
pub async fn count_since(
    db: &crate::db::Db,
    action: Action,
    since_ms: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = $1 AND at >= $2")
        .bind(action.code())
        .bind(since_ms)
        .fetch_one(db.read())
        .await
}

/// Who acted: a system user, or a description such as "anonymous" or "system".
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: Option<i64>,
    pub label: String,
}

impl Actor {
    pub fn user(id: i64, email: &str) -> Self {
        Self {
            id: Some(id),
            label: email.to_string(),
        }
    }
    /// A contact acting in the preference center: `contact:<email>`.
    pub fn contact(email: &str) -> Self {
        Self::named(format!("{CONTACT_PREFIX}{email}"))
    }
    pub fn named(label: impl Into<String>) -> Self {
        Self {
            id: None,
            label: label.into(),
        }
    }
}

/// How the label of a contact actor starts.
pub const CONTACT_PREFIX: &str = "contact:";

/// Whose entries the audit page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ActorFilter {
    #[default]
    Everyone,
    /// System users and Herald itself.
    Staff,
    /// Contacts in the preference center.
    Contacts,
}

impl ActorFilter {
    pub fn parse(raw: &str) -> Self {
        match raw {
            "staff" => Self::Staff,
            "contact" => Self::Contacts,
            _ => Self::Everyone,
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Self::Everyone => "",
            Self::Staff => "staff",
            Self::Contacts => "contact",
        }
    }
}

/// One entry to write.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub actor: &'a Actor,
    pub action: Action,
    pub target: &'a str,
    pub detail: &'a str,
    pub ip: &'a str,
}

/// Writes an entry on `conn` (pass a transaction to tie it to the change it records).
pub async fn record(conn: &mut AnyConnection, at_ms: i64, e: Entry<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor_id, actor, action, target, detail, ip) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(at_ms)
    .bind(e.actor.id)
    .bind(&e.actor.label)
    .bind(e.action.code())
    .bind(e.target)
    .bind(e.detail)
    .bind(e.ip)
    .execute(conn)
    .await?;
    traced(&e.actor.label, e.action, e.target, e.ip);
    Ok(())
}

/// The log line of a written entry.
pub fn traced(actor: &str, action: Action, target: &str, ip: &str) {
    tracing::info!(audit = action.code(), actor = %actor, target, ip, "audit");
}

/// Who the entries a done run leaves were written by.
pub const SCHEDULER: &str = "scheduler";

/// The INSERT of `rows` entries by the [`SCHEDULER`] (no actor id, no IP), all at
/// the time bound as `$at`, each entry's action, target and detail bound in turn
/// from `$first` on (see [`bind_note`]).
pub fn scheduler_entries_sql(rows: usize, at: usize, first: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let k = first + 3 * r;
            format!(
                "(${at}, NULL, '{SCHEDULER}', ${k}, ${}, ${}, '')",
                k + 1,
                k + 2
            )
        })
        .collect();
    format!(
        "INSERT INTO audit_log (at, actor_id, actor, action, target, detail, ip) VALUES {}",
        values.join(", ")
    )
}

/// Binds one entry of [`scheduler_entries_sql`].
pub fn bind_note<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    action: Action,
    target: &str,
    detail: &str,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    q.bind(action.code())
        .bind(target.to_string())
        .bind(detail.to_string())
}

/// Writes an entry in a transaction of its own.
pub async fn record_now(db: &Db, at_ms: i64, e: Entry<'_>) -> Result<(), sqlx::Error> {
    let mut conn = db.write().acquire().await?;
    record(&mut conn, at_ms, e).await
}

/// An entry as the audit page shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Row {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub ip: String,
}

impl Row {
    pub fn label(&self) -> &'static str {
        Action::label_of(&self.action)
    }
}

/// A page of entries by `who`, newest first, and whether an older page exists.
pub async fn page(
    db: &Db,
    who: ActorFilter,
    page: i64,
    per_page: i64,
) -> Result<(Vec<Row>, bool), sqlx::Error> {
    let offset = (page.max(1) - 1) * per_page;
    let contacts = format!("{CONTACT_PREFIX}%");
    let (condition, pattern) = match who {
        ActorFilter::Everyone => ("LIKE", "%"),
        ActorFilter::Staff => ("NOT LIKE", contacts.as_str()),
        ActorFilter::Contacts => ("LIKE", contacts.as_str()),
    };
    let sql = format!(
        "SELECT id, at, actor, action, target, detail, ip FROM audit_log WHERE actor {condition} $1 \
         ORDER BY id DESC LIMIT $2 OFFSET $3"
    );
    let query = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(pattern)
        .bind(per_page + 1)
        .bind(offset);
    let mut rows: Vec<Row> = query.fetch_all(db.read()).await?;
    let more = rows.len() as i64 > per_page;
    rows.truncate(per_page as usize);
    Ok((rows, more))
}

/// Deletes the entries written before `cutoff_ms` (retention); returns how many.
pub async fn prune(db: &Db, cutoff_ms: i64) -> Result<u64, sqlx::Error> {
    crate::db::delete_in_batches(
        db,
        "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < $1 LIMIT $2)",
        cutoff_ms,
    )
    .await
}
