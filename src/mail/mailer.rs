//! The mailer: builds a message (sender name included) and hands it to the mail
//! server over its own SMTP pool, or to the outbox folder.

use super::{pool, tls};
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// An email to send.
#[derive(Clone, Default)]
pub struct Email {
    pub from_name: String,
    pub from_address: String,
    /// The recipient's name for the `To:` header; empty for none.
    pub to_name: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The one-click unsubscribe link (RFC 8058), for prepared messages.
    pub unsubscribe: Option<String>,
    /// The domain of its bounce address (see [`crate::deliveries::BounceAddresses`]);
    /// none: bounces go to the sender address.
    pub bounce_domain: Option<String>,
    /// The list it belongs to (the brand), for its `List-Id`.
    pub list_name: Option<String>,
    /// The delivery's reference when the caller made it (its tracked links name
    /// it); none: the mailer makes one.
    pub reference: Option<String>,
}

/// What the mail server took: the Message-ID the email carries and, when the
/// server named it in its answer, its own id for the email (Postfix's "queued as
/// 4Xyz", Amazon SES's "Ok 0100…-000000"), which a provider's webhooks use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub message_id: String,
    pub queued_as: Option<String>,
}

/// The id a mail server gave an email in its last answer line: the word after
/// "queued as", else a last word that looks like an id (letters, digits and
/// `.-_@`, with a digit, 6 to 100 long) — not "OK" or "success".
pub fn queued_as<'a>(lines: impl Iterator<Item = &'a str>) -> Option<String> {
    let last = lines.last()?;
    let (word, named) = match last.find("queued as ") {
        Some(at) => (
            last[at + "queued as ".len()..].split_whitespace().next()?,
            true,
        ),
        None => (last.split_whitespace().last()?, false),
    };
    let word = word.trim_matches(|c| matches!(c, '<' | '>' | '[' | ']' | '(' | ')' | ',' | ';'));
    (word.len() >= if named { 4 } else { 6 }
        && word.len() <= 100
        && (named || word.bytes().any(|b| b.is_ascii_digit()))
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'@')))
    .then(|| word.to_string())
}

impl std::fmt::Debug for Email {
    // The body may hold a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl Email {
    /// A system email (a password, a confirmation, a reminder) from the
    /// configured sender: its subject, text and HTML as rendered.
    pub fn system(
        settings: &crate::settings::Settings,
        to_name: &str,
        to: &str,
        (subject, text, html): (String, String, String),
    ) -> Self {
        Self {
            from_name: settings.sender_name.clone(),
            from_address: settings.sender_address.clone(),
            to_name: to_name.to_string(),
            to: to.to_string(),
            subject,
            text,
            html,
            bounce_domain: settings.bounce_domain().map(str::to_string),
            ..Self::default()
        }
    }
}

/// A mailbox of `address` with `name` when there is one (control characters and
/// surrounding spaces left out).
fn mailbox(name: &str, address: &str) -> Result<Mailbox, lettre::address::AddressError> {
    let name: String = name.chars().filter(|c| !c.is_control()).collect();
    let name = name.trim();
    Ok(Mailbox::new(
        (!name.is_empty()).then(|| name.to_string()),
        address.trim().parse()?,
    ))
}

/// `List-Id: "Brand" <brand.domain>` (RFC 2919): the brand as a phrase (its
/// quotes and controls left out) and, as the id, its letters and digits.
fn list_id(name: &str, domain: &str) -> String {
    let phrase: String = name
        .chars()
        .filter(|c| (c.is_ascii_graphic() || *c == ' ') && !matches!(c, '"' | '\\'))
        .collect();
    let mut id: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    id = id.trim_matches('-').to_string();
    if id.is_empty() {
        id = "list".into();
    }
    format!("\"{}\" <{id}.{domain}>", phrase.trim())
}

/// Why a send failed: worth retrying, or not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Connection trouble, a timeout, a 4xx reply: retry later (with a fresh password).
    #[error("{0}")]
    Transient(String),
    /// A 5xx reply (recipient rejected) or a malformed address: do not retry.
    #[error("{0}")]
    Permanent(String),
}

/// Sends emails, signed with the DKIM key when one is kept.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    signer: crate::dkim::Signer,
    bounces: Option<crate::deliveries::BounceAddresses>,
}

/// Where emails go.
#[derive(Clone)]
enum Transport {
    /// `smtp://`: our pool of TCP_NODELAY connections (STARTTLS when asked).
    Pooled(std::sync::Arc<pool::SmtpPool>),
    /// `smtps://` (implicit TLS): lettre's own pooled transport, and the deadline
    /// of one send.
    Smtp(
        AsyncSmtpTransport<Tokio1Executor>,
        Duration,
        std::sync::Arc<tls::Trust>,
    ),
    Outbox(PathBuf),
}

impl From<Transport> for Mailer {
    fn from(transport: Transport) -> Self {
        Self {
            transport,
            signer: crate::dkim::Signer::default(),
            bounces: None,
        }
    }
}

impl Mailer {
    /// This mailer, signing every message with `signer`'s key (when one is kept).
    pub fn signing_with(mut self, signer: crate::dkim::Signer) -> Self {
        self.signer = signer;
        self
    }

    /// This mailer, giving an email with a bounce domain a bounce address made by
    /// `bounces`.
    pub fn bouncing_to(mut self, bounces: crate::deliveries::BounceAddresses) -> Self {
        self.bounces = Some(bounces);
        self
    }

    /// SMTP when `smtp_url` is given (`smtp://`, `smtps://`, `smtp://…?tls=required`),
    /// else the outbox folder under `data_dir`. `timeout` bounds every SMTP step:
    /// connecting, the greeting, EHLO, STARTTLS, authentication, and the sending of
    /// one message (its commands and data); a step past it fails as transient.
    pub fn new(
        smtp_url: Option<&str>,
        ca_file: Option<&std::path::Path>,
        data_dir: &std::path::Path,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let Some(raw) = smtp_url else {
            return Ok(Transport::Outbox(data_dir.join("outbox")).into());
        };
        let parsed =
            crate::smtp_url::SmtpUrl::parse(raw).map_err(|e| anyhow::anyhow!("smtp_url: {e}"))?;
        let trust = tls::Trust::new(&parsed.host, ca_file)?;
        if parsed.tls != crate::smtp_url::SmtpTls::Wrapper {
            return Ok(
                Transport::Pooled(std::sync::Arc::new(pool::SmtpPool::from_url(
                    &parsed, trust, timeout,
                )?))
                .into(),
            );
        }
        // lettre applies the timeout to every read and write of the socket; the
        // deadline around `send` also covers connecting and TLS.
        let params = trust
            .parameters()
            .map_err(|e| anyhow::anyhow!("smtp_url: {e}"))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&parsed.host)
            .port(parsed.port())
            .tls(lettre::transport::smtp::client::Tls::Wrapper(params))
            .timeout(Some(timeout));
        if let Some((user, password)) = parsed.credentials() {
            builder = builder.credentials(
                lettre::transport::smtp::authentication::Credentials::new(user, password),
            );
        }
        Ok(Transport::Smtp(builder.build(), timeout * 3, std::sync::Arc::new(trust)).into())
    }

    /// Sends `email`; returns the Message-ID it carried and the server's id for it.
    #[tracing::instrument(name = "smtp", skip_all)]
    pub async fn send(&self, email: &Email) -> Result<Posted, SendError> {
        let started = std::time::Instant::now();
        let result = self.send_inner(email).await;
        crate::metrics::email_sent(started.elapsed());
        result
    }

    async fn send_inner(&self, email: &Email) -> Result<Posted, SendError> {
        let token = email
            .reference
            .clone()
            .unwrap_or_else(crate::deliveries::new_reference);
        let domain = email
            .from_address
            .rsplit('@')
            .next()
            .unwrap_or("herald.local");
        let message_id = format!("<{token}@{domain}>");
        // Each mailbox is built from its parts, never parsed from "name <address>":
        // lettre quotes a name or encodes it (RFC 2047) as it needs, so `Shop, Inc.`
        // or `Dr. Müller (Vertrieb)` keep their name instead of losing it.
        let from = mailbox(&email.from_name, &email.from_address)
            .map_err(|e| SendError::Permanent(format!("sender address: {e}")))?;
        let to = mailbox(&email.to_name, &email.to)
            .map_err(|e| SendError::Permanent(format!("recipient address {:?}: {e}", email.to)))?;
        let mut builder = Message::builder()
            .from(from)
            .to(to.clone())
            .subject(&email.subject)
            .message_id(Some(message_id.clone()));
        if let Some(link) = &email.unsubscribe {
            use lettre::message::header::{HeaderName, HeaderValue};
            builder = builder
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{link}>"),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".to_string(),
                ));
        }
        if let Some(name) = &email.list_name {
            use lettre::message::header::{HeaderName, HeaderValue};
            builder = builder.raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Id"),
                list_id(name, domain),
            ));
        }
        // The envelope: from the bounce address when there is one, else the sender.
        if let (Some(bounce_domain), Some(bounces)) = (&email.bounce_domain, &self.bounces) {
            let bounce = bounces
                .address(&token, bounce_domain)
                .parse()
                .map_err(|e| SendError::Permanent(format!("bounce address: {e}")))?;
            let envelope = lettre::address::Envelope::new(Some(bounce), vec![to.email.clone()])
                .map_err(|e| SendError::Permanent(format!("envelope: {e}")))?;
            builder = builder.envelope(envelope);
        }
        let message = builder
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(email.text.clone()),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(email.html.clone()),
                    ),
            )
            .map_err(|e| SendError::Permanent(format!("the message could not be built: {e}")))?;
        let mut message = message;
        if let Some(dkim) = self.signer.config() {
            message.sign(&dkim);
        }
        match &self.transport {
            Transport::Pooled(pool) => {
                let answer = pool.send(message.envelope(), &message.formatted()).await?;
                Ok(Posted {
                    message_id,
                    queued_as: queued_as(answer.message()),
                })
            }
            Transport::Smtp(transport, deadline, trust) => {
                let sent = tokio::time::timeout(*deadline, transport.send(message)).await;
                match sent {
                    Err(_) => Err(SendError::Transient(
                        "timed out talking to the mail server".into(),
                    )),
                    Ok(Ok(answer)) => Ok(Posted {
                        message_id,
                        queued_as: queued_as(answer.message()),
                    }),
                    Ok(Err(e)) => Err(trust.judge(e)),
                }
            }
            Transport::Outbox(dir) => {
                let written = async {
                    tokio::fs::create_dir_all(dir).await?;
                    let name = format!(
                        "{}-{token}.eml",
                        jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S")
                    );
                    let path = dir.join(name);
                    tokio::fs::write(&path, message.formatted()).await?;
                    Ok::<_, std::io::Error>(path)
                }
                .await;
                match written {
                    Ok(path) => {
                        // The console line names the file, never its content.
                        println!("Email to {} written to {}", email.to, path.display());
                        Ok(Posted {
                            message_id,
                            queued_as: None,
                        })
                    }
                    Err(e) => Err(SendError::Transient(format!(
                        "writing to the outbox failed: {e}"
                    ))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::queued_as;

    #[test]
    fn the_servers_id_is_read_from_its_answer() {
        let read = |line: &str| queued_as(std::iter::once(line));
        assert_eq!(
            read("2.0.0 Ok: queued as 4Xyz9PqR1"),
            Some("4Xyz9PqR1".into())
        );
        assert_eq!(
            read("Ok 0100018c2b9e7f1a-5c3d1e2f-aaaa-bbbb-cccc-1234567890ab-000000"),
            Some("0100018c2b9e7f1a-5c3d1e2f-aaaa-bbbb-cccc-1234567890ab-000000".into())
        );
        assert_eq!(
            read("Ok: queued as Lj5nXYZaRLeEqkMNrLzg"),
            Some("Lj5nXYZaRLeEqkMNrLzg".into()),
            "after 'queued as', no digit is needed"
        );
        assert_eq!(read("OK"), None);
        assert_eq!(read("Great success"), None);
        assert_eq!(read("2.0.0 Ok"), None, "a status code is not an id");
        assert_eq!(read("Ok: queued as"), None);
        assert_eq!(queued_as(std::iter::empty()), None);
    }
}
