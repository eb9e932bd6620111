//! The contact: its model, its parsing at the boundary, and its store.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::db::{Db, Tx, is_unique_violation};
use crate::events::catalogue::{NewEvent, Source};

// Memberships are written where consent is: the store reads them.
pub use crate::consent::{join_group, join_group_at_depth, leave_group, leave_group_at_depth};
use crate::types::{EmailAddress, Invalid, parse_attribute_name};
use crate::web::form::FieldErrors;

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_ATTRIBUTE_VALUE_CHARS: usize = 1000;

/// Active contacts receive jobs; blocked ones are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    Active,
    Blocked,
}

impl Status {
    pub const ALL: [Status; 2] = [Status::Active, Status::Blocked];

    /// The status stored as `code` (anything but "blocked" is active).
    pub fn from_code(code: &str) -> Self {
        if code == "blocked" {
            Status::Blocked
        } else {
            Status::Active
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Blocked => "blocked",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Status::Active => "Active",
            Status::Blocked => "Blocked",
        }
    }
}

/// A contact as pages and jobs see it (no credentials).
#[derive(Debug, Clone, Serialize)]
pub struct Contact {
    pub id: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub status: Status,
    /// When the contact unsubscribed from every prepared message, if they did.
    pub opted_out_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Contact {
    /// Whether the contact unsubscribed from every prepared message.
    pub fn is_opted_out(&self) -> bool {
        self.opted_out_at.is_some()
    }
    pub fn name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
            .trim()
            .to_string()
    }
    pub fn is_blocked(&self) -> bool {
        self.status == Status::Blocked
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct Row {
    pub(super) id: i64,
    pub(super) email: String,
    pub(super) first_name: String,
    pub(super) last_name: String,
    pub(super) status: String,
    pub(super) opted_out_at: Option<i64>,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
}

impl From<Row> for Contact {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            email: r.email,
            first_name: r.first_name,
            last_name: r.last_name,
            status: Status::from_code(&r.status),
            opted_out_at: r.opted_out_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

pub(super) const COLUMNS: &str =
    "id, email, first_name, last_name, status, opted_out_at, created_at, updated_at";

/// The lower-case form names are searched by.
pub fn search_key(s: &str) -> String {
    s.trim().to_lowercase()
}

/// A first or last name: trimmed, at most 100 characters, may be empty.
pub fn parse_name_part(raw: &str, what: &str) -> Result<String, Invalid> {
    let s = raw.trim();
    if s.chars().count() > MAX_NAME_CHARS {
        return Err(Invalid::new(format!(
            "The {what} has at most {MAX_NAME_CHARS} characters."
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(Invalid::new(format!(
            "The {what} cannot contain control characters."
        )));
    }
    Ok(s.to_string())
}

pub fn parse_attribute_value(raw: &str) -> Result<String, Invalid> {
    let value = raw.trim();
    if value.chars().count() > MAX_ATTRIBUTE_VALUE_CHARS {
        return Err(Invalid::new(format!(
            "A value has at most {MAX_ATTRIBUTE_VALUE_CHARS} characters."
        )));
    }
    // Line breaks and tabs are text (a CSV field may have several lines); NUL,
    // escape codes and other control characters are not, on either engine.
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
    {
        return Err(Invalid::new(format!(
            "A value cannot hold control characters (found {:?}).",
            c
        )));
    }
    Ok(value.to_string())
}

/// A contact as entered, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactInput {
    pub email: EmailAddress,
    pub first_name: String,
    pub last_name: String,
    pub attributes: BTreeMap<String, String>,
}

/// The contact form as typed: fields plus attribute rows `attr_name_N` /
/// `attr_value_N`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContactForm {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub attributes: Vec<(String, String)>,
}

impl ContactForm {
    /// Reads the form from its URL-encoded pairs.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut form = ContactForm::default();
        let mut names: BTreeMap<usize, String> = BTreeMap::new();
        let mut values: BTreeMap<usize, String> = BTreeMap::new();
        for (k, v) in pairs {
            match k.as_str() {
                "email" => form.email = v,
                "first_name" => form.first_name = v,
                "last_name" => form.last_name = v,
                _ => {
                    if let Some(n) = k.strip_prefix("attr_name_").and_then(|n| n.parse().ok()) {
                        names.insert(n, v);
                    } else if let Some(n) =
                        k.strip_prefix("attr_value_").and_then(|n| n.parse().ok())
                    {
                        values.insert(n, v);
                    }
                }
            }
        }
        for (n, name) in names {
            let value = values.remove(&n).unwrap_or_default();
            if !name.trim().is_empty() || !value.trim().is_empty() {
                form.attributes.push((name, value));
            }
        }
        form
    }

    /// Parses every field, collecting a message per bad field (attribute rows are
    /// `attr_N`).
    pub fn parse(&self) -> Result<ContactInput, FieldErrors> {
        let mut errors = FieldErrors::new();
        let email = EmailAddress::parse(&self.email)
            .map_err(|e| errors.insert("email", e.0))
            .ok();
        let first_name = parse_name_part(&self.first_name, "first name")
            .map_err(|e| errors.insert("first_name", e.0))
            .ok();
        let last_name = parse_name_part(&self.last_name, "last name")
            .map_err(|e| errors.insert("last_name", e.0))
            .ok();
        let mut attributes = BTreeMap::new();
        for (name, value) in &self.attributes {
            match (parse_attribute_name(name), parse_attribute_value(value)) {
                (Ok(n), Ok(v)) => {
                    if attributes.insert(n.clone(), v).is_some() {
                        errors.insert(
                            "attributes",
                            format!("The attribute {n:?} is listed twice."),
                        );
                    }
                }
                (Err(e), _) | (_, Err(e)) => {
                    errors.insert("attributes", e.0);
                }
            }
        }
        match (email, first_name, last_name) {
            (Some(email), Some(first_name), Some(last_name)) if errors.is_empty() => {
                Ok(ContactInput {
                    email,
                    first_name,
                    last_name,
                    attributes,
                })
            }
            _ => Err(errors),
        }
    }
}

/// Why a contact could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("A contact with this email already exists.")]
    Duplicate,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn map_unique(e: sqlx::Error) -> SaveError {
    if is_unique_violation(&e) {
        SaveError::Duplicate
    } else {
        SaveError::Database(e)
    }
}

pub async fn find(db: &Db, id: i64) -> Result<Option<Contact>, sqlx::Error> {
    Ok(sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM contacts WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db.read())
    .await?
    .map(Contact::from))
}

pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<Contact>, sqlx::Error> {
    find_by_email_on(&mut *db.read().acquire().await?, email).await
}

/// [`find_by_email`] on `conn` — inside a transaction, it sees the contacts the
/// transaction created.
pub async fn find_by_email_on(
    conn: &mut sqlx::AnyConnection,
    email: &str,
) -> Result<Option<Contact>, sqlx::Error> {
    Ok(sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM contacts WHERE email = $1"
    )))
    .bind(email.trim().to_lowercase())
    .fetch_optional(conn)
    .await?
    .map(Contact::from))
}

/// One attribute of a contact, if it has it.
pub async fn attribute(db: &Db, id: i64, name: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT value FROM contact_attributes WHERE contact_id = $1 AND name = $2")
        .bind(id)
        .bind(name)
        .fetch_optional(db.read())
        .await
}

pub async fn attributes(db: &Db, id: i64) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT name, value FROM contact_attributes WHERE contact_id = $1 ORDER BY name")
        .bind(id)
        .fetch_all(db.read())
        .await
}

async fn write_attributes(
    tx: &mut Tx,
    id: i64,
    attributes: &BTreeMap<String, String>,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM contact_attributes WHERE contact_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    for (name, value) in attributes {
        sqlx::query("INSERT INTO contact_attributes (contact_id, name, value) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(name)
            .bind(value)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Creates a contact and records *Registered to System (C)* in the same
/// transaction. Returns the contact id.
pub async fn create(
    tx: &mut Tx,
    input: &ContactInput,
    source: Source,
    now_ms: i64,
) -> Result<i64, SaveError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO contacts (email, first_name, last_name, first_key, last_key, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'active', $6, $6) RETURNING id",
    )
    .bind(input.email.as_str())
    .bind(&input.first_name)
    .bind(&input.last_name)
    .bind(search_key(&input.first_name))
    .bind(search_key(&input.last_name))
    .bind(now_ms)
    .fetch_one(&mut **tx)
    .await
    .map_err(map_unique)?;
    write_attributes(tx, id, &input.attributes).await?;
    crate::intake::events::record(tx, now_ms, &NewEvent::registered(id, source)).await?;
    Ok(id)
}

/// Saves changed fields and attributes; records *Profile Data Changed (C)* with the
/// names of what changed (when anything did). Returns those names.
pub async fn update(
    tx: &mut Tx,
    before: &Contact,
    input: &ContactInput,
    now_ms: i64,
) -> Result<Vec<String>, SaveError> {
    let old_attributes: BTreeMap<String, String> = sqlx::query_as::<_, (String, String)>(
        "SELECT name, value FROM contact_attributes WHERE contact_id = $1",
    )
    .bind(before.id)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .collect();
    let mut changed = Vec::new();
    for (name, old, new) in [
        ("email", before.email.as_str(), input.email.as_str()),
        ("first_name", &before.first_name, &input.first_name),
        ("last_name", &before.last_name, &input.last_name),
    ] {
        if old != new {
            changed.push(name.to_string());
        }
    }
    let attribute_names: std::collections::BTreeSet<&String> = old_attributes
        .keys()
        .chain(input.attributes.keys())
        .collect();
    for name in attribute_names {
        if old_attributes.get(name) != input.attributes.get(name) {
            changed.push(name.clone());
        }
    }
    if changed.is_empty() {
        return Ok(changed);
    }
    sqlx::query(
        "UPDATE contacts SET email = $1, first_name = $2, last_name = $3, first_key = $4, last_key = $5, \
         updated_at = $6 WHERE id = $7",
    )
    .bind(input.email.as_str())
    .bind(&input.first_name)
    .bind(&input.last_name)
    .bind(search_key(&input.first_name))
    .bind(search_key(&input.last_name))
    .bind(now_ms)
    .bind(before.id)
    .execute(&mut **tx)
    .await
    .map_err(map_unique)?;
    write_attributes(tx, before.id, &input.attributes).await?;
    crate::intake::events::record(tx, now_ms, &NewEvent::profile_changed(before.id, &changed))
        .await?;
    Ok(changed)
}

pub async fn set_status(
    tx: &mut Tx,
    id: i64,
    status: Status,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE contacts SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(status.code())
        .bind(now_ms)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes the contact with its attributes, memberships and preference-center
/// sessions (a session names the contact by id, which SQLite may give the next
/// contact). Its events stay, as history.
pub async fn delete(tx: &mut Tx, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE kind = $1 AND user_id = $2")
        .bind(crate::web::session_store::CONTACT_SESSIONS)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM contacts WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Sets one attribute and records *Profile Data Changed (C)* when its value changed
/// (by a run `depth` links down an automation chain); `false` when it had the value.
pub async fn set_attribute(
    tx: &mut Tx,
    contact_id: i64,
    name: &str,
    value: &str,
    now_ms: i64,
    depth: u64,
) -> Result<bool, sqlx::Error> {
    let old: Option<String> = sqlx::query_scalar(
        "SELECT value FROM contact_attributes WHERE contact_id = $1 AND name = $2",
    )
    .bind(contact_id)
    .bind(name)
    .fetch_optional(&mut **tx)
    .await?;
    if old.as_deref() == Some(value) {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO contact_attributes (contact_id, name, value) VALUES ($1, $2, $3) \
         ON CONFLICT (contact_id, name) DO UPDATE SET value = excluded.value",
    )
    .bind(contact_id)
    .bind(name)
    .bind(value)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE contacts SET updated_at = $1 WHERE id = $2")
        .bind(now_ms)
        .bind(contact_id)
        .execute(&mut **tx)
        .await?;
    let event = NewEvent::profile_changed(contact_id, &[name.to_string()]).at_depth(depth);
    crate::intake::events::record(tx, now_ms, &event).await?;
    Ok(true)
}

/// Opts the contact out of every prepared message (an unsubscribe link without a
/// group). Only the contact clears it, in the preference center.
pub async fn opt_out(tx: &mut Tx, id: i64, now_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE contacts SET opted_out_at = COALESCE(opted_out_at, $1), updated_at = $1 WHERE id = $2")
        .bind(now_ms)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Whether the contact asked that their opens and clicks are not kept with them.
pub async fn refuses_tracking(db: &Db, id: i64) -> Result<bool, sqlx::Error> {
    let n: Option<i64> = sqlx::query_scalar("SELECT untracked FROM contacts WHERE id = $1")
        .bind(id)
        .fetch_optional(db.read())
        .await?;
    Ok(n.unwrap_or(0) != 0)
}

/// Counts the contacts' changes of whether their opens and clicks are kept with
/// them (the clicks' cache of tracked emails trusts nothing read before one).
pub static TRACKING_CHOICES: crate::cache::Generation = crate::cache::Generation::new();

/// Records the contact's choice of whether their opens and clicks are kept with them.
pub async fn set_refuses_tracking(tx: &mut Tx, id: i64, refuses: bool) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE contacts SET untracked = $1 WHERE id = $2")
        .bind(i64::from(refuses))
        .bind(id)
        .execute(&mut **tx)
        .await?;
    TRACKING_CHOICES.bump();
    Ok(())
}

/// The contact receives prepared messages again.
pub async fn opt_in(tx: &mut Tx, id: i64, now_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE contacts SET opted_out_at = NULL, updated_at = $1 WHERE id = $2")
        .bind(now_ms)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
