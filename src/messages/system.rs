//! System emails: the emails Herald itself sends (a contact's and a staff
//! member's new password, the double opt-in confirmation, the reminder before an
//! automation ends), written in the same template language as prepared messages.
//! Herald ships a text for each; staff may edit it (Messages → System emails).
//! Every save is a new version, kept, so a consent record can name the text a
//! contact was sent; "restore default" saves the shipped text as a new version.

use serde::Serialize;

use super::template::{self, TemplateError};
use crate::db::Db;
use crate::web::form::FieldErrors;

/// One of Herald's own emails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemEmail {
    ContactPassword,
    StaffPassword,
    Confirmation,
    Reminder,
}

/// A value a system email may use, with what it holds.
pub struct Placeholder {
    pub name: &'static str,
    pub means: &'static str,
}

const fn p(name: &'static str, means: &'static str) -> Placeholder {
    Placeholder { name, means }
}

impl SystemEmail {
    pub const ALL: [SystemEmail; 4] = [
        SystemEmail::ContactPassword,
        SystemEmail::StaffPassword,
        SystemEmail::Confirmation,
        SystemEmail::Reminder,
    ];

    pub fn code(self) -> &'static str {
        match self {
            SystemEmail::ContactPassword => "contact_password",
            SystemEmail::StaffPassword => "staff_password",
            SystemEmail::Confirmation => "confirmation",
            SystemEmail::Reminder => "reminder",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    pub fn label(self) -> &'static str {
        match self {
            SystemEmail::ContactPassword => "New password for a contact",
            SystemEmail::StaffPassword => "New password for a staff member",
            SystemEmail::Confirmation => "Subscription confirmation (double opt-in)",
            SystemEmail::Reminder => "Reminder before an automation ends",
        }
    }

    pub fn explain(self) -> &'static str {
        match self {
            SystemEmail::ContactPassword => {
                "Sent by Send New Password to Contact (C): a temporary password for the preference center."
            }
            SystemEmail::StaffPassword => {
                "Sent by Send New Password to System User (S): a temporary password for Herald."
            }
            SystemEmail::Confirmation => {
                "Sent when a contact subscribes to a group that asks for double opt-in; its link makes them a member."
            }
            SystemEmail::Reminder => {
                "Sent to the staff an automation's time frame names, some days before it ends."
            }
        }
    }

    /// The values this email may use.
    pub fn placeholders(self) -> &'static [Placeholder] {
        const PASSWORD: &[Placeholder] = &[
            p("name", "the person's name (may be empty)"),
            p("brand", "the brand name (Settings)"),
            p("password", "the new temporary password — required"),
            p("expires", "when it stops working"),
            p("sign_in_url", "where to sign in with it — required"),
        ];
        const CONFIRMATION: &[Placeholder] = &[
            p("name", "the contact's name (may be empty)"),
            p("brand", "the brand name (Settings)"),
            p(
                "contact",
                "the contact: contact.email, contact.first_name, contact.last_name",
            ),
            p("group", "the group: group.name, group.description"),
            p("confirm_url", "the confirmation link — required"),
            p("expires", "when the link stops working"),
        ];
        const REMINDER: &[Placeholder] = &[
            p("name", "the staff member's name"),
            p("brand", "the brand name (Settings)"),
            p("automation", "the automation's name"),
            p("ends", "when it ends"),
            p("automation_url", "its Define Time Frame page"),
        ];
        match self {
            SystemEmail::ContactPassword | SystemEmail::StaffPassword => PASSWORD,
            SystemEmail::Confirmation => CONFIRMATION,
            SystemEmail::Reminder => REMINDER,
        }
    }

    /// The values every text of this email must use, and why.
    fn required(self) -> &'static [(&'static str, &'static str)] {
        match self {
            SystemEmail::ContactPassword | SystemEmail::StaffPassword => &[
                (
                    "password",
                    "It must show the new password: add {{ password }}.",
                ),
                (
                    "sign_in_url",
                    "It must say where to sign in: add {{ sign_in_url }}.",
                ),
            ],
            SystemEmail::Confirmation => &[(
                "confirm_url",
                "It must hold the confirmation link: add {{ confirm_url }}.",
            )],
            SystemEmail::Reminder => &[],
        }
    }

    /// The text Herald ships.
    pub fn shipped(self) -> Text {
        let (subject, text, html) = match self {
            SystemEmail::ContactPassword => (
                "Your new password for {{ brand }}",
                include_str!("../../templates/email/system/contact_password.txt"),
                include_str!("../../templates/email/system/contact_password.html"),
            ),
            SystemEmail::StaffPassword => (
                "Your new password for {{ brand }}",
                include_str!("../../templates/email/system/staff_password.txt"),
                include_str!("../../templates/email/system/staff_password.html"),
            ),
            SystemEmail::Confirmation => (
                "Please confirm: {{ group.name }} from {{ brand }}",
                include_str!("../../templates/email/system/confirmation.txt"),
                include_str!("../../templates/email/system/confirmation.html"),
            ),
            SystemEmail::Reminder => (
                "Automation \"{{ automation }}\" ends on {{ ends }}",
                include_str!("../../templates/email/system/reminder.txt"),
                include_str!("../../templates/email/system/reminder.html"),
            ),
        };
        Text {
            subject: subject.to_string(),
            text: text.to_string(),
            html: html.to_string(),
            version: 0,
            saved_at: None,
            saved_by: String::new(),
            restored: false,
        }
    }
}

/// One version of a system email's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// 0: as shipped, never edited.
    pub version: i64,
    pub saved_at: Option<i64>,
    pub saved_by: String,
    /// Saved by "restore default".
    pub restored: bool,
}

impl Text {
    /// Whether this is Herald's own text (never edited, or restored).
    pub fn is_default(&self) -> bool {
        self.version == 0 || self.restored
    }
}

/// The email rendered for one recipient.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Rendered {
    /// Subject, text and HTML, as [`crate::mail::Email::system`] takes them.
    pub fn parts(self) -> (String, String, String) {
        (self.subject, self.text, self.html)
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    subject: String,
    body_text: String,
    body_html: String,
    version: i64,
    restored: i64,
    saved_at: i64,
    saved_by: String,
}

impl From<Row> for Text {
    fn from(r: Row) -> Self {
        Text {
            subject: r.subject,
            text: r.body_text,
            html: r.body_html,
            version: r.version,
            saved_at: Some(r.saved_at),
            saved_by: r.saved_by,
            restored: r.restored != 0,
        }
    }
}

/// The text the email is sent with now: its latest saved version, or the shipped one.
pub async fn current(db: &Db, kind: SystemEmail) -> Result<Text, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT subject, body_text, body_html, version, restored, saved_at, saved_by \
         FROM system_email_versions WHERE kind = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(kind.code())
    .fetch_optional(db.read())
    .await?;
    Ok(row.map_or_else(|| kind.shipped(), Text::from))
}

/// Every system email with the text it is sent with now.
pub async fn all(db: &Db) -> Result<Vec<(SystemEmail, Text)>, sqlx::Error> {
    let mut all = Vec::new();
    for kind in SystemEmail::ALL {
        all.push((kind, current(db, kind).await?));
    }
    Ok(all)
}

/// A system email as entered, checked: each part's syntax and names, and the
/// values this email needs, with the message next to the field.
pub fn check(kind: SystemEmail, subject: &str, text: &str, html: &str) -> Result<(), FieldErrors> {
    let mut errors = FieldErrors::new();
    if subject.trim().is_empty() {
        errors.insert("subject", "Enter a subject.".into());
    } else if subject.chars().count() > 300 || subject.contains(['\r', '\n']) {
        errors.insert(
            "subject",
            "A subject is one line of at most 300 characters.".into(),
        );
    }
    if text.trim().is_empty() {
        errors.insert("text", "Enter the text of the email.".into());
    }
    let parts = [("subject", subject), ("text", text), ("html", html)];
    for (field, source) in parts {
        if errors.contains_key(field) || source.trim().is_empty() {
            continue;
        }
        if let Err(e) = check_part(kind, field, source) {
            errors.insert(field, e.to_string());
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn check_part(kind: SystemEmail, field: &str, source: &str) -> Result<(), TemplateError> {
    let names = template::used_names(source)?;
    let known: Vec<&str> = kind.placeholders().iter().map(|p| p.name).collect();
    for name in &names {
        let top = name.split('.').next().unwrap_or_default();
        if !known.contains(&top) {
            return Err(TemplateError {
                line: template::line_of(source, top),
                message: format!(
                    "{top:?} is not a value this email has: use {}.",
                    known.join(", ")
                ),
            });
        }
    }
    // The body must carry what the email is for (the subject need not).
    if field != "subject" {
        for (needed, why) in kind.required() {
            if !names.iter().any(|n| n.split('.').next() == Some(*needed)) {
                return Err(TemplateError {
                    line: 1,
                    message: (*why).to_string(),
                });
            }
        }
    }
    template::render(source, &sample(kind), field == "html").map(|_| ())
}

/// Values to render a system email with in its preview and its check.
pub fn sample(kind: SystemEmail) -> serde_json::Value {
    let person = serde_json::json!({
        "name": "Ada Lovelace",
        "brand": "Herald",
        "expires": "2026-12-31 18:00 UTC",
    });
    let mut v = person;
    let extra = match kind {
        SystemEmail::ContactPassword | SystemEmail::StaffPassword => serde_json::json!({
            "password": "x7Qp-Rt2m-Lk9w",
            "sign_in_url": "https://herald.example/preferences/login",
        }),
        SystemEmail::Confirmation => serde_json::json!({
            "contact": { "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace" },
            "group": { "name": "Weekly newsletter", "description": "The week's news, on Fridays." },
            "confirm_url": "https://herald.example/preferences/confirm/example",
        }),
        SystemEmail::Reminder => serde_json::json!({
            "automation": "Welcome series",
            "ends": "2026-12-31 18:00 CET",
            "automation_url": "https://herald.example/automations/1/time-frame",
        }),
    };
    if let (Some(v), serde_json::Value::Object(extra)) = (v.as_object_mut(), extra) {
        v.extend(extra);
    }
    v
}

/// Renders `text` with `values` (HTML escaped in the HTML part); an empty HTML
/// part is made from the text.
pub fn render(text: &Text, values: &impl Serialize) -> Result<Rendered, TemplateError> {
    let subject = template::render(&text.subject, values, false)?
        .replace(['\r', '\n'], " ")
        .trim()
        .to_string();
    let body = template::render(&text.text, values, false)?;
    let html = if text.html.trim().is_empty() {
        template::html_from_text(&body)
    } else {
        template::render(&text.html, values, true)?
    };
    Ok(Rendered {
        subject,
        text: body,
        html,
    })
}

/// A system email's text as staff enter it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Entered {
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub html: String,
}

/// Saves a new version of the email (checked by [`check`] first) in the
/// caller's transaction; `restored` marks the shipped text saved again.
pub async fn save(
    tx: &mut crate::db::Tx,
    kind: SystemEmail,
    entered: &Entered,
    by: &str,
    restored: bool,
    now_ms: i64,
) -> Result<i64, sqlx::Error> {
    let last: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM system_email_versions WHERE kind = $1")
            .bind(kind.code())
            .fetch_one(&mut **tx)
            .await?;
    let version = last.unwrap_or(0) + 1;
    sqlx::query(
        "INSERT INTO system_email_versions (kind, version, subject, body_text, body_html, restored, saved_at, saved_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(kind.code())
    .bind(version)
    .bind(entered.subject.trim())
    .bind(&entered.text)
    .bind(&entered.html)
    .bind(i64::from(restored))
    .bind(now_ms)
    .bind(by)
    .execute(&mut **tx)
    .await?;
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_text_passes_its_own_check_and_renders() {
        for kind in SystemEmail::ALL {
            let t = kind.shipped();
            assert_eq!(
                check(kind, &t.subject, &t.text, &t.html),
                Ok(()),
                "{kind:?}"
            );
            let r = render(&t, &sample(kind)).unwrap();
            assert!(!r.subject.is_empty() && !r.text.is_empty() && !r.html.is_empty());
        }
    }

    #[test]
    fn a_password_email_without_the_password_or_the_link_is_refused() {
        let kind = SystemEmail::ContactPassword;
        let errors = check(
            kind,
            "New password",
            "Hello {{ name }}, sign in at {{ sign_in_url }}",
            "",
        )
        .unwrap_err();
        assert!(
            errors.get("text").unwrap().contains("{{ password }}"),
            "{errors:?}"
        );
        let errors = check(kind, "New password", "Your password: {{ password }}", "").unwrap_err();
        assert!(errors.get("text").unwrap().contains("{{ sign_in_url }}"));
        let errors = check(
            kind,
            "New password",
            "{{ password }} {{ sign_in_url }}",
            "<p>{{ password }}</p>",
        )
        .unwrap_err();
        assert!(
            errors.get("html").unwrap().contains("sign_in_url"),
            "the HTML part too"
        );
        let errors =
            check(SystemEmail::Confirmation, "Confirm", "Hello {{ name }}", "").unwrap_err();
        assert!(errors.get("text").unwrap().contains("{{ confirm_url }}"));
        let errors = check(
            SystemEmail::Confirmation,
            "Hi {{ contact.phone }} {{ foo }}",
            "{{ confirm_url }}",
            "",
        )
        .unwrap_err();
        assert!(
            errors.get("subject").unwrap().contains("\"foo\""),
            "{errors:?}"
        );
        let errors = check(kind, "x", "{{ password }} {{ sign_in_url }", "").unwrap_err();
        assert!(
            errors.get("text").unwrap().starts_with("Line 1"),
            "{errors:?}"
        );
    }

    #[test]
    fn values_are_escaped_in_the_html_part_and_an_empty_one_is_made_from_the_text() {
        let t = Text {
            subject: "For {{ name }}".into(),
            text: "{{ name }}\n\n{{ confirm_url }}".into(),
            html: String::new(),
            ..SystemEmail::Confirmation.shipped()
        };
        let r = render(
            &t,
            &serde_json::json!({"name": "<b>Ada</b>", "confirm_url": "u"}),
        )
        .unwrap();
        assert_eq!(r.subject, "For <b>Ada</b>");
        assert_eq!(r.html, "<p>&#60;b&#62;Ada&#60;/b&#62;</p>\n<p>u</p>");
        let shipped = SystemEmail::Confirmation.shipped();
        let r = render(
            &shipped,
            &serde_json::json!({"name": "<b>", "group": {"name": "N"}, "confirm_url": "u"}),
        )
        .unwrap();
        assert!(r.html.contains("&lt;b&gt;") && !r.html.contains("<b>"));
    }
}
