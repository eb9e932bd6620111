//! What Herald does with a bounce or complaint: finds the email it is about (by
//! its bounce address, else the Message-ID it returns, else the latest email to
//! the address it names), records it, applies the rules of Settings — a hard
//! bounce suppresses the address, soft bounces after a number within days, a
//! complaint suppresses it for prepared messages and unsubscribes the contact —
//! and fires *Response Received (C)*. One transaction per message: all of it is
//! stored, or none (and the sender is told to try again).

use crate::db::Db;
use crate::deliveries::{self, BounceAddresses, Delivery, Fate};
use crate::events::catalogue::{NewEvent, Response, ResponseParams};
use crate::feedback::report::{self, Notice, Recipient};
use crate::feedback::store::{self, MatchedBy, NewReport};
use crate::settings::Settings;
use crate::suppressions::Reason;

/// A message as the inbound server received it.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// The envelope sender (`MAIL FROM`), empty for a bounce.
    pub sender: &'a str,
    /// The envelope recipients (`RCPT TO`).
    pub recipients: &'a [String],
    pub raw: &'a [u8],
}

/// What came of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Taken {
    /// Reports recorded (one per recipient a report names; one for a message
    /// that is no report).
    pub reports: usize,
    /// Of them, those that found their email.
    pub matched: usize,
    /// It names an email made moments ago that is not recorded yet (a mail
    /// server faster than the run's completion): nothing is stored, and the
    /// sender is asked to try again.
    pub too_early: bool,
}

/// How long a report may wait for the email it names to be recorded.
const WAIT_FOR_RECORD: std::time::Duration = std::time::Duration::from_secs(2);
/// An email made this recently may still be unrecorded: a report naming it is
/// refused for now (451) rather than kept as unmatched.
const RECENT_MS: i64 = 15 * 60_000;

/// The delivery named by `reference`, waiting up to [`WAIT_FOR_RECORD`] for one
/// made within [`RECENT_MS`]; `Err(())` when it is that recent and still missing.
async fn named_delivery(
    db: &Db,
    reference: &str,
    now_ms: i64,
) -> Result<Result<Option<Delivery>, ()>, sqlx::Error> {
    let recent = deliveries::reference_made_at(reference).is_some_and(|at| now_ms - at < RECENT_MS);
    let started = std::time::Instant::now();
    loop {
        if let Some(d) = deliveries::by_reference(db, reference).await? {
            return Ok(Ok(Some(d)));
        }
        if !recent {
            return Ok(Ok(None));
        }
        if started.elapsed() >= WAIT_FOR_RECORD {
            return Ok(Err(()));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

const DAY_MS: i64 = 86_400_000;

/// Takes one message in (see the module).
pub async fn take(
    db: &Db,
    bounces: &BounceAddresses,
    settings: &Settings,
    now_ms: i64,
    received: Received<'_>,
) -> Result<Taken, sqlx::Error> {
    let raw = received.raw.to_vec();
    let report = tokio::task::spawn_blocking(move || report::read(&raw))
        .await
        .unwrap_or_else(|_| report::Report {
            problem: Some("the message could not be read"),
            ..Default::default()
        });
    // The email the whole message is about, if it names one.
    let verp = received
        .recipients
        .iter()
        .find_map(|r| bounces.reference(r));
    let forged = verp.is_none()
        && received
            .recipients
            .iter()
            .any(|r| deliveries::is_bounce_address(r));
    // The email the whole message names: by its bounce address, else by the
    // Message-ID it returns (which must be the one recorded).
    let original = report.original_message_id.as_deref();
    let (reference, by) = match (&verp, original.and_then(deliveries::reference_of)) {
        (Some(r), _) => (Some(r.as_str()), MatchedBy::BounceAddress),
        (None, Some(r)) => (Some(r), MatchedBy::MessageId),
        (None, None) => (None, MatchedBy::Address),
    };
    let named = match reference {
        None => None,
        Some(reference) => match named_delivery(db, reference, now_ms).await? {
            Err(()) => {
                return Ok(Taken {
                    too_early: true,
                    ..Taken::default()
                });
            }
            Ok(found) => found
                .filter(|d| by == MatchedBy::BounceAddress || sent_as(d, original))
                .map(|d| (d, by)),
        },
    };
    let mut taken = Taken::default();
    let mut tx = db.begin().await?;
    if report.recipients.is_empty() || forged {
        let why = if forged {
            "the bounce address was not made by Herald (forged or altered)"
        } else {
            report.problem.unwrap_or("the report names no recipient")
        };
        let r = NewReport {
            kind: "unreadable",
            delivery: None,
            address: "",
            status: "",
            diagnostic: why,
            sender: received.sender,
            raw: received.raw,
        };
        store::insert(&mut tx, now_ms, &r).await?;
        db.commit(tx).await?;
        crate::metrics::mail_report("unreadable", false);
        return Ok(Taken {
            reports: 1,
            ..Taken::default()
        });
    }
    let mut counted = Vec::new();
    for recipient in &report.recipients {
        let found = match &named {
            Some((d, by)) => Some((d.clone(), *by)),
            None => by_address(db, &recipient.address).await?,
        };
        let heard = Heard {
            sender: received.sender,
            raw: received.raw,
            source: "smtp",
        };
        record(
            &mut tx, settings, now_ms, recipient, found, &heard, &mut taken,
        )
        .await?;
        counted.push((recipient.notice.code(), taken.matched));
    }
    db.commit(tx).await?;
    count(counted);
    Ok(taken)
}

/// Counts what was recorded: each kind, and whether the matched count grew.
fn count(counted: Vec<(&'static str, usize)>) {
    let mut before = 0;
    for (kind, matched) in counted {
        crate::metrics::mail_report(kind, matched > before);
        before = matched;
    }
}

/// Whether `d` went out with the Message-ID `original` (a returned header must
/// name the email itself, not merely share its reference).
fn sent_as(d: &Delivery, original: Option<&str>) -> bool {
    original.is_some_and(|id| id.eq_ignore_ascii_case(&d.smtp_message_id))
}

/// The latest delivery to `address`, as a match of last resort.
async fn by_address(db: &Db, address: &str) -> Result<Option<(Delivery, MatchedBy)>, sqlx::Error> {
    if address.is_empty() {
        return Ok(None);
    }
    Ok(deliveries::latest_to(db, address)
        .await?
        .map(|d| (d, MatchedBy::Address)))
}

/// Where a report came from.
struct Heard<'a> {
    /// The envelope sender, or the provider's name.
    sender: &'a str,
    /// The message, kept when it matches nothing.
    raw: &'a [u8],
    /// `smtp` or the provider's code, for the event.
    source: &'a str,
}

/// Stores one recipient's report and, when it found its email, applies the rules.
async fn record(
    tx: &mut crate::db::Tx,
    settings: &Settings,
    now_ms: i64,
    recipient: &Recipient,
    found: Option<(Delivery, MatchedBy)>,
    heard: &Heard<'_>,
    taken: &mut Taken,
) -> Result<(), sqlx::Error> {
    let r = NewReport {
        kind: recipient.notice.code(),
        delivery: found.as_ref().map(|(d, by)| (d.id, *by)),
        address: found
            .as_ref()
            .map_or(recipient.address.as_str(), |(d, _)| d.address.as_str()),
        status: &recipient.status,
        diagnostic: &recipient.diagnostic,
        sender: heard.sender,
        raw: heard.raw,
    };
    store::insert(tx, now_ms, &r).await?;
    taken.reports += 1;
    if let Some((delivery, _)) = found {
        taken.matched += 1;
        apply(tx, settings, now_ms, &delivery, recipient, heard.source).await?;
    }
    Ok(())
}

/// Takes a provider's notifications in, like a DSN's recipients: each found by
/// the provider's id for the email (as its SMTP answer named it), else by the
/// original Message-ID when the provider says it, else by the address. A
/// notification the provider sent before changes nothing.
pub async fn take_provider(
    db: &Db,
    settings: &Settings,
    now_ms: i64,
    provider: crate::feedback::providers::Provider,
    notices: &[crate::feedback::providers::ProviderNotice],
) -> Result<Taken, sqlx::Error> {
    let mut taken = Taken::default();
    let mut counted = Vec::new();
    let sender = provider.webhook_name();
    let mut tx = db.begin().await?;
    for n in notices {
        if !crate::feedback::providers::first_time(&mut tx, provider, &n.id, now_ms).await? {
            continue;
        }
        let by_provider = match n.provider_id.as_deref() {
            Some(id) => deliveries::by_queued_as(db, id)
                .await?
                .map(|d| (d, MatchedBy::ProviderId)),
            None => None,
        };
        let original = n.message_id.as_deref();
        let by_id = match (&by_provider, original.and_then(deliveries::reference_of)) {
            (None, Some(reference)) => deliveries::by_reference(db, reference)
                .await?
                .filter(|d| sent_as(d, original))
                .map(|d| (d, MatchedBy::MessageId)),
            _ => None,
        };
        let found = match by_provider.or(by_id) {
            Some(found) => Some(found),
            None => by_address(db, &n.address).await?,
        };
        let recipient = Recipient {
            notice: n.notice,
            address: n.address.clone(),
            status: n.status.clone(),
            diagnostic: n.diagnostic.clone(),
        };
        let heard = Heard {
            sender: &sender,
            raw: n.diagnostic.as_bytes(),
            source: provider.code(),
        };
        record(
            &mut tx, settings, now_ms, &recipient, found, &heard, &mut taken,
        )
        .await?;
        counted.push((n.notice.code(), taken.matched));
    }
    db.commit(tx).await?;
    count(counted);
    Ok(taken)
}

/// The rules, for a report that found its email `d`.
async fn apply(
    tx: &mut crate::db::Tx,
    settings: &Settings,
    now_ms: i64,
    d: &Delivery,
    r: &Recipient,
    source: &str,
) -> Result<(), sqlx::Error> {
    let (fate, response) = match r.notice {
        Notice::Delayed => (Fate::Delayed, None),
        Notice::SoftBounce => (Fate::SoftBounce, Some(Response::SoftBounce)),
        Notice::HardBounce => (Fate::HardBounce, Some(Response::HardBounce)),
        Notice::Complaint => (Fate::Complained, Some(Response::Complaint)),
    };
    let said = [r.status.as_str(), r.diagnostic.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    deliveries::set_fate(tx, d.id, fate, now_ms, &said).await?;
    let Some(response) = response else {
        return Ok(());
    };
    let address = crate::types::EmailAddress::parse(&d.address).ok();
    let suppress = match response {
        Response::HardBounce => Some(Reason::HardBounce),
        Response::Complaint => Some(Reason::Complaint),
        Response::SoftBounce => {
            let since = now_ms - settings.soft_bounce_days * DAY_MS;
            let fates = deliveries::fates_to(tx, &d.address, since, d.sent_at).await?;
            let soft = fates
                .iter()
                .filter(|f| **f != Fate::Delayed)
                .take_while(|f| **f == Fate::SoftBounce)
                .count() as i64;
            (soft >= settings.soft_bounce_limit).then_some(Reason::SoftBounces)
        }
    };
    if let (Some(reason), Some(address)) = (suppress, &address) {
        let source = if reason == Reason::Complaint {
            "complaint"
        } else {
            "bounce"
        };
        crate::suppressions::add(tx, address, reason, source, &said, now_ms).await?;
    }
    let contact = crate::contacts::find_by_email_on(tx, &d.address).await?;
    if let Some(contact) = contact {
        if response == Response::Complaint {
            crate::contacts::opt_out(tx, contact.id, now_ms).await?;
        }
        let params = ResponseParams {
            response,
            delivery: d.id,
            message: d.message_id,
            status: &r.status,
            diagnostic: &r.diagnostic,
            source,
        };
        crate::intake::events::record(tx, now_ms, &NewEvent::response(contact.id, &params)).await?;
    }
    Ok(())
}
