//! Consent as pages, the API and the export read it: a contact's records and
//! pending memberships.

use crate::db::Db;

use super::model::{Action, Method};

/// A consent record as staff read it.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ConsentRecord {
    pub group_id: Option<i64>,
    pub group_name: String,
    pub action: String,
    pub method: String,
    pub detail: String,
    pub ip: String,
    pub user_agent: String,
    pub email_version: Option<i64>,
    pub at: i64,
}

impl ConsentRecord {
    pub fn action_label(&self) -> &'static str {
        Action::from_code(&self.action).map_or("Changed", Action::label)
    }
    pub fn badge(&self) -> &'static str {
        Action::from_code(&self.action).map_or("text-bg-secondary", Action::badge)
    }
    pub fn method_label(&self) -> &'static str {
        Method::from_code(&self.method).map_or("", Method::label)
    }
}

/// A contact's consent records, newest first.
pub async fn records_of(db: &Db, contact_id: i64) -> Result<Vec<ConsentRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT group_id, group_name, action, method, detail, ip, user_agent, email_version, at \
         FROM consent_records WHERE contact_id = $1 ORDER BY at DESC, id DESC LIMIT 500",
    )
    .bind(contact_id)
    .fetch_all(db.read())
    .await
}

/// A pending membership as staff and the contact see it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pending {
    pub group_id: i64,
    pub group_name: String,
    pub requested_at: i64,
    pub expires_at: i64,
    /// due, sending, sent, skipped or failed.
    pub email_state: String,
    pub sent_at: Option<i64>,
    pub email_note: String,
}

impl Pending {
    /// What became of the confirmation email, in words.
    pub fn email_said(&self) -> String {
        match self.email_state.as_str() {
            "sent" => "confirmation email sent".into(),
            "skipped" | "failed" => format!("no confirmation email: {}", self.email_note),
            _ => "confirmation email on its way".into(),
        }
    }
}

/// The contact's pending memberships, by group name.
pub async fn pending_of(db: &Db, contact_id: i64) -> Result<Vec<Pending>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.group_id, g.name AS group_name, p.requested_at, p.expires_at, p.email_state, p.sent_at, p.email_note \
         FROM pending_memberships p JOIN contact_groups g ON g.id = p.group_id \
         WHERE p.contact_id = $1 ORDER BY g.name",
    )
    .bind(contact_id)
    .fetch_all(db.read())
    .await
}
