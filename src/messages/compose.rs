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

/// What an unsubscribe link undoes: every prepared message, or one group. A link
/// names its rows with their creation times (`…_since`), so that a link made for
/// a deleted row never acts on a later row that got the same id (SQLite reuses the
/// highest id). Links made before this version name ids only (`None`); they count
/// for rows created before the version came (see [`Unsubscribe::names`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsubscribe {
    pub contact: i64,
    pub contact_since: Option<i64>,
    pub group: Option<i64>,
    pub group_since: Option<i64>,
    /// The email the link came in (its reference, 80 bits), so the unsubscribe
    /// counts for its message; links made before name none.
    pub delivery: Option<u128>,
}

impl Unsubscribe {
    /// The same link, naming the email `reference` it goes in.
    pub fn in_delivery(mut self, reference: &str) -> Self {
        self.delivery = u128::from_str_radix(reference, 16).ok();
        self
    }

    /// The reference of the email the link came in.
    pub fn reference(&self) -> Option<String> {
        self.delivery.map(|d| {
            format!(
                "{d:0width$x}",
                width = crate::deliveries::REFERENCE_BYTES * 2
            )
        })
    }

    /// The link for `contact` (and `group`), naming them as they are now; `None`
    /// when the contact no longer exists.
    pub async fn of(
        db: &Db,
        contact: i64,
        group: Option<i64>,
    ) -> Result<Option<Self>, sqlx::Error> {
        let row: Option<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT c.created_at, (SELECT g.created_at FROM contact_groups g WHERE g.id = $1) \
             FROM contacts c WHERE c.id = $2",
        )
        .bind(group.unwrap_or(0))
        .bind(contact)
        .fetch_optional(db.read())
        .await?;
        Ok(row.map(|(contact_since, group_since)| Self {
            contact,
            contact_since: Some(contact_since),
            // A group deleted meanwhile: the link undoes every prepared message.
            group: group.filter(|_| group_since.is_some()),
            group_since,
            delivery: None,
        }))
    }

    fn payload(self) -> String {
        let mut p = format!("c{}", self.contact);
        if let Some(t) = self.contact_since {
            p.push_str(&format!("t{t}"));
        }
        if let Some(g) = self.group {
            p.push_str(&format!("g{g}"));
            if let Some(t) = self.group_since {
                p.push_str(&format!("t{t}"));
            }
        }
        if let Some(reference) = self.reference() {
            p.push_str(&format!("r{reference}"));
        }
        p
    }

    /// Reads a payload made by [`payload`](Self::payload), or by a version before
    /// creation times (`c7`, `c7g3`).
    pub fn parse(payload: &str) -> Option<Self> {
        let (payload, delivery) = match payload.split_once('r') {
            Some((p, r)) => (p, Some(u128::from_str_radix(r, 16).ok()?)),
            None => (payload, None),
        };
        let rest = payload.strip_prefix('c')?;
        let (contact, group) = match rest.split_once('g') {
            Some((c, g)) => (c, Some(g)),
            None => (rest, None),
        };
        let id_and_since = |part: &str| -> Option<(i64, Option<i64>)> {
            match part.split_once('t') {
                Some((id, t)) => Some((id.parse().ok()?, Some(t.parse().ok()?))),
                None => Some((part.parse().ok()?, None)),
            }
        };
        let (contact, contact_since) = id_and_since(contact)?;
        let (group, group_since) = match group {
            Some(g) => {
                let (id, since) = id_and_since(g)?;
                (Some(id), since)
            }
            None => (None, None),
        };
        Some(Self {
            contact,
            contact_since,
            group,
            group_since,
            delivery,
        })
    }

    /// Whether a row created at `created_at` is the one a link names with `since`:
    /// the same creation time, or — for a link of an older version, which names an
    /// id only — a row created before `cutover` (when links began to name times).
    pub fn names(since: Option<i64>, created_at: i64, cutover: i64) -> bool {
        match since {
            Some(t) => t == created_at,
            None => created_at < cutover,
        }
    }

    /// The signed link, on the configured base URL.
    pub fn link(self, signer: &LinkSigner, base_url: &url::Url) -> String {
        format!("{base_url}u/{}", signer.sign(&self.payload()))
    }
}

/// When signed links began to name their rows' creation times (see [`Unsubscribe`]).
pub async fn link_cutover(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT at FROM signed_link_cutover WHERE id = 1")
        .fetch_one(db.read())
        .await
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
        to_name: format!("{} {}", values.contact.first_name, values.contact.last_name)
            .trim()
            .to_string(),
        to: to.to_string(),
        subject,
        text,
        html,
        unsubscribe,
        bounce_domain: settings.bounce_domain().map(str::to_string),
        reference: None,
        list_name: Some(if settings.brand_name.trim().is_empty() {
            settings.sender_name.clone()
        } else {
            settings.brand_name.clone()
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsubscribe_payloads_read_back() {
        let u = |contact, contact_since, group, group_since| Unsubscribe {
            contact,
            contact_since,
            group,
            group_since,
            delivery: None,
        };
        for link in [
            u(42, Some(1_700_000_000_000), None, None),
            u(7, Some(5), Some(3), Some(9)),
            // Made by an older version: ids only.
            u(42, None, None, None),
            u(7, None, Some(3), None),
            u(7, Some(5), Some(3), Some(9)).in_delivery("0a1b2c3d4e5f60718293"),
        ] {
            assert_eq!(Unsubscribe::parse(&link.payload()), Some(link));
        }
        assert_eq!(
            u(1, Some(2), None, None)
                .in_delivery("00000000000000000001")
                .reference()
                .as_deref(),
            Some("00000000000000000001")
        );
        assert_eq!(Unsubscribe::parse("c1t2rzz"), None);
        assert_eq!(
            Unsubscribe::parse("c7g3").unwrap(),
            u(7, None, Some(3), None)
        );
        assert_eq!(Unsubscribe::parse("x1"), None);
        assert_eq!(Unsubscribe::parse("c1gx"), None);
        assert_eq!(Unsubscribe::parse("c1tx"), None);
    }

    #[test]
    fn a_link_names_only_the_row_it_was_made_for() {
        assert!(Unsubscribe::names(Some(100), 100, 50));
        assert!(
            !Unsubscribe::names(Some(100), 101, 50),
            "a later row with the same id"
        );
        assert!(
            Unsubscribe::names(None, 40, 50),
            "an old link, a row from before"
        );
        assert!(
            !Unsubscribe::names(None, 60, 50),
            "an old link, a row made since"
        );
    }
}
