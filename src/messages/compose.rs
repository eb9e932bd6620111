//! A prepared message made into an email for one contact: the personal values, the
//! rendered subject and parts (the HTML made from the text when there is none), and
//! the signed one-click unsubscribe link.

use std::collections::BTreeMap;

use crate::db::Db;
use crate::links::LinkSigner;
use crate::mail::Email;
use crate::messages::store::Message;
use crate::messages::template::{self, ContactValues, Personal, TemplateError};
use crate::settings::Settings;

/// What an unsubscribe link undoes: every prepared message, or one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsubscribe {
    pub contact: i64,
    pub group: Option<i64>,
}

impl Unsubscribe {
    fn payload(self) -> String {
        match self.group {
            Some(g) => format!("c{}g{g}", self.contact),
            None => format!("c{}", self.contact),
        }
    }

    /// Reads a payload made by [`payload`](Self::payload).
    pub fn parse(payload: &str) -> Option<Self> {
        let rest = payload.strip_prefix('c')?;
        let (contact, group) = match rest.split_once('g') {
            Some((c, g)) => (c.parse().ok()?, Some(g.parse().ok()?)),
            None => (rest.parse().ok()?, None),
        };
        Some(Self { contact, group })
    }

    /// The signed link, on the configured base URL.
    pub fn link(self, signer: &LinkSigner, base_url: &url::Url) -> String {
        format!("{base_url}u/{}", signer.sign(&self.payload()))
    }
}

/// The preference center's address, from Settings or the base URL.
pub fn preferences_url(settings: &Settings, base_url: &url::Url) -> String {
    if settings.preference_center_url.is_empty() {
        format!("{base_url}preferences")
    } else {
        settings
            .preference_center_url
            .trim_end_matches('/')
            .to_string()
    }
}

/// The personal values of contact `id` (`None` when it no longer exists).
pub async fn contact_values(db: &Db, id: i64) -> Result<Option<ContactValues>, sqlx::Error> {
    let Some(c) = crate::contacts::find(db, id).await? else {
        return Ok(None);
    };
    let attributes: BTreeMap<String, String> = crate::contacts::attributes(db, id)
        .await?
        .into_iter()
        .collect();
    Ok(Some(ContactValues {
        email: c.email,
        first_name: c.first_name,
        last_name: c.last_name,
        attributes,
    }))
}

/// The rendered subject, text and HTML of `message` for `values`.
pub fn render(
    message: &Message,
    values: &Personal,
) -> Result<(String, String, String), TemplateError> {
    let subject = template::render(&message.subject, values, false)?.replace(['\r', '\n'], " ");
    let text = template::render(&message.text_body, values, false)?;
    let html = if message.html_body.trim().is_empty() {
        template::html_from_text(&text)
    } else {
        template::render(&message.html_body, values, true)?
    };
    Ok((subject, text, html))
}

/// The email of `message` to `to`.
pub fn email(
    message: &Message,
    settings: &Settings,
    to: &str,
    values: &Personal,
    unsubscribe: Option<String>,
) -> Result<Email, TemplateError> {
    let (subject, text, html) = render(message, values)?;
    Ok(Email {
        from_name: message.sender_name.clone(),
        from_address: settings.sender_address.clone(),
        to: to.to_string(),
        subject,
        text,
        html,
        unsubscribe,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsubscribe_payloads_read_back() {
        for u in [
            Unsubscribe {
                contact: 42,
                group: None,
            },
            Unsubscribe {
                contact: 7,
                group: Some(3),
            },
        ] {
            assert_eq!(Unsubscribe::parse(&u.payload()), Some(u));
        }
        assert_eq!(Unsubscribe::parse("x1"), None);
        assert_eq!(Unsubscribe::parse("c1gx"), None);
    }
}
