//! Send Prepared Message to Contact (C) and to Address (S): a message staff wrote,
//! personalised at send time. To a contact it carries the one-click unsubscribe
//! link (optionally for one group), respects the contact's opt-out and the
//! frequency cap; to addresses (ops, say) it carries the event's values.

use askama::Template;

use crate::automations::model::TargetKind;
use crate::deliveries::{Kind, Sent};
use crate::events::catalogue::{EventType, Scope};
use crate::jobs::common;
use crate::jobs::registry::{Choices, Execution, Job, JobForm, Limit, settings_of};
use crate::mail::SendError;
use crate::messages::compose::{self, Unsubscribe};
use crate::messages::template::Personal;
use crate::scheduler::queue::{Claimed, Outcome, Target};
use crate::state::JobContext;
use crate::web::form::{FieldErrors, Fields};

const TO_CONTACT: &str = "send_message_to_contact";
const MAX_ADDRESSES: usize = 10;

crate::job_form!(ContactForm, "automations/jobs/send_message_to_contact.html");
crate::job_form!(AddressForm, "automations/jobs/send_message_to_address.html");

/// The message chosen in `f`'s `message` field.
fn parse_message(f: &Fields, choices: &Choices, errors: &mut FieldErrors) -> i64 {
    match f.get("message").parse::<i64>() {
        Ok(id) if choices.has_message(id) => id,
        _ => {
            errors.insert("message", "Choose a message.".into());
            0
        }
    }
}

/// Send Prepared Message to Contact (C).
pub struct ToContact;

/// The message a contact gets, and the group its unsubscribe link leaves (none:
/// the link stops all prepared messages).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ToContactSettings {
    pub message_id: i64,
    #[serde(default)]
    pub group_id: Option<i64>,
}

/// The message and the addresses it goes to.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ToAddressSettings {
    pub message_id: i64,
    pub addresses: Vec<String>,
}

impl Job for ToContact {
    type Settings = ToContactSettings;
    fn kind(&self) -> &'static str {
        TO_CONTACT
    }
    fn label(&self) -> &'static str {
        "Send Prepared Message to Contact (C)"
    }
    fn scopes(&self) -> &'static [Scope] {
        &[Scope::Contact]
    }
    fn target(&self) -> Option<TargetKind> {
        Some(TargetKind::Contact)
    }
    fn form(&self, view: &JobForm<'_>) -> Result<String, askama::Error> {
        ContactForm(view).render()
    }
    fn parse(
        &self,
        _event: EventType,
        f: &Fields,
        choices: &Choices,
    ) -> Result<ToContactSettings, FieldErrors> {
        let mut errors = FieldErrors::new();
        let message = parse_message(f, choices, &mut errors);
        let group = match f.get("message_group") {
            "" => None,
            raw => match raw.parse::<i64>() {
                Ok(id) if choices.has_group(id) => Some(id),
                _ => {
                    errors.insert("message_group", "Choose one of the groups.".into());
                    None
                }
            },
        };
        if errors.is_empty() {
            Ok(ToContactSettings {
                message_id: message,
                group_id: group,
            })
        } else {
            Err(errors)
        }
    }
    fn fill(&self, settings: &ToContactSettings, f: &mut Fields) {
        f.set("message", settings.message_id.to_string());
        if let Some(g) = settings.group_id {
            f.set("message_group", g.to_string());
        }
    }
    fn explain(&self, settings: &ToContactSettings, names: &Choices) -> String {
        let message = names.message_name(Some(settings.message_id));
        match settings.group_id {
            Some(g) => format!(
                "Emails the contact the prepared message {message}; its unsubscribe link removes them from {} (or, for a contact not in it, offers to stop all prepared messages).",
                names.group_name(Some(g))
            ),
            None => format!(
                "Emails the contact the prepared message {message}; its unsubscribe link stops all prepared messages to them."
            ),
        }
    }
    fn message(&self, settings: &ToContactSettings) -> Option<i64> {
        Some(settings.message_id)
    }
    fn limit(&self) -> Option<Limit> {
        Some(Limit::MessagesPerDay)
    }
    fn execute<'a>(&'a self, ctx: &'a JobContext, run: &'a Claimed) -> Execution<'a> {
        Box::pin(to_contact(ctx, run))
    }
}

async fn to_contact(ctx: &JobContext, run: &Claimed) -> Outcome {
    let (a, event, to) = match common::live_target(ctx, run, TargetKind::Contact).await {
        Ok(parts) => parts,
        Err(outcome) => return outcome,
    };
    let target = Some(to.target);
    let chosen: ToContactSettings = match settings_of(&a, target) {
        Ok(s) => s,
        Err(outcome) => return outcome,
    };
    let now = ctx.clock.now_ms();
    let settings = match ctx.settings().await {
        Ok(s) => s,
        Err(e) => return Outcome::database(target, "reading the settings", e),
    };
    match crate::contacts::find(&ctx.db, to.target.id).await {
        Ok(Some(c)) if c.is_opted_out() => {
            return Outcome::skip(target, "the contact unsubscribed from all messages");
        }
        Ok(_) => {}
        Err(e) => return Outcome::database(target, "reading the contact", e),
    }
    // A contact who asked for the group and has not confirmed it (double
    // opt-in) has not consented to its messages yet.
    if let Some(group) = chosen.group_id {
        match crate::consent::pending_for(&ctx.db, to.target.id, group).await {
            Ok(Some(name)) => {
                return Outcome::skip(
                    target,
                    format!("waiting for the contact to confirm {name} (double opt-in)"),
                );
            }
            Ok(None) => {}
            Err(e) => return Outcome::database(target, "reading the contact's consent", e),
        }
    }
    let since = now - 24 * 3_600_000;
    match crate::scheduler::runs::done_of_kinds_for_target_since(
        &ctx.db,
        &[TO_CONTACT],
        to.target,
        since,
    )
    .await
    {
        Ok(n) if n >= settings.messages_per_day => {
            return Outcome::skip(
                target,
                format!("frequency cap: {n} prepared messages to this contact in 24 hours"),
            );
        }
        Ok(_) => {}
        Err(e) => {
            return Outcome::database(target, "counting the messages of the last 24 hours", e);
        }
    }
    let message = match load_message(ctx, chosen.message_id, target).await {
        Ok(m) => m,
        Err(outcome) => return outcome,
    };
    let values = match compose::contact_values(&ctx.db, to.target.id).await {
        Ok(Some(v)) => v,
        Ok(None) => return Outcome::skip(target, "the contact no longer exists"),
        Err(e) => return Outcome::database(target, "reading the contact's values", e),
    };
    // The email's reference, made here: its unsubscribe link names it (an
    // unsubscribe counts for the message) and its tracked links do.
    let reference = crate::deliveries::new_reference();
    let unsubscribe = match Unsubscribe::of(&ctx.db, to.target.id, chosen.group_id).await {
        Ok(Some(u)) => u.in_delivery(&reference).link(&ctx.links, &ctx.base_url),
        Ok(None) => return Outcome::skip(target, "the contact no longer exists"),
        Err(e) => return Outcome::database(target, "making the unsubscribe link", e),
    };
    let personal = Personal {
        contact: values,
        event: event.params_json(),
        preferences_url: compose::preferences_url(&settings, &ctx.base_url),
        unsubscribe_url: unsubscribe.clone(),
    };
    let email = Recipient {
        address: &to.email,
        reference,
        unsubscribe: Some(unsubscribe),
        target: to.target,
    };
    send(ctx, &message, &settings, &personal, email).await
}

/// Whom one email goes to, under which reference, with which unsubscribe link.
struct Recipient<'a> {
    address: &'a str,
    reference: String,
    unsubscribe: Option<String>,
    target: Target,
}

/// The message the job sends; a deleted one fails the run, naming Define Job.
async fn load_message(
    ctx: &JobContext,
    id: i64,
    target: Option<Target>,
) -> Result<crate::messages::store::Message, Outcome> {
    match crate::messages::store::find(&ctx.db, id).await {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err(Outcome::Failed {
            target,
            error: "the message was deleted: choose another one in Define Job".into(),
        }),
        Err(e) => Err(Outcome::database(target, "loading the message", e)),
    }
}

async fn send(
    ctx: &JobContext,
    message: &crate::messages::store::Message,
    settings: &crate::settings::Settings,
    personal: &Personal,
    recipient: Recipient<'_>,
) -> Outcome {
    let Recipient {
        address: to,
        reference,
        unsubscribe,
        target,
    } = recipient;
    match ctx.suppressed.find(&ctx.db, to).await {
        Ok(Some(suppressed)) => return Outcome::skip(Some(target), suppressed.skip_reason()),
        Ok(None) => {}
        Err(e) => return Outcome::database(Some(target), "checking the suppression list", e),
    }
    let mut email = match compose::email(message, settings, to, personal, unsubscribe) {
        Ok(e) => e,
        Err(e) => {
            return Outcome::Failed {
                target: Some(target),
                error: format!("the message cannot be rendered: {e}"),
            };
        }
    };
    email.reference = Some(reference);
    let links = track(ctx, message, settings, personal, &mut email);
    match ctx.mailer.send(&email).await {
        Ok(id) => {
            let sent = Sent::new(Kind::Message, id.message_id, to)
                .queued_as(id.queued_as)
                .of_message(message.id)
                .to_contact(target.contact());
            Outcome::sent(
                target,
                match &links {
                    Some(links) => sent.tracked(links),
                    None => sent,
                },
            )
        }
        Err(SendError::Transient(error)) => Outcome::Retry {
            target: Some(target),
            error,
        },
        Err(SendError::Permanent(error)) => Outcome::Failed {
            target: Some(target),
            error,
        },
    }
}

/// Tracks the email's opens and clicks when Settings and the message allow it:
/// its links and image name its reference; returns the links' targets.
fn track(
    ctx: &JobContext,
    message: &crate::messages::store::Message,
    settings: &crate::settings::Settings,
    personal: &Personal,
    email: &mut crate::mail::Email,
) -> Option<Vec<String>> {
    if settings.tracking == crate::settings::Tracking::Off || message.track == 0 {
        return None;
    }
    let reference = email
        .reference
        .get_or_insert_with(crate::deliveries::new_reference)
        .clone();
    let tracked = crate::tracking::track(
        &email.html,
        &email.text,
        ctx.base_url.as_str(),
        &ctx.tracking,
        &reference,
        &[&personal.unsubscribe_url, &personal.preferences_url],
        true,
    );
    email.html = tracked.html;
    email.text = tracked.text;
    Some(tracked.links)
}

/// Send Prepared Message to Address (S).
pub struct ToAddress;

impl Job for ToAddress {
    type Settings = ToAddressSettings;
    fn kind(&self) -> &'static str {
        "send_message_to_address"
    }
    fn label(&self) -> &'static str {
        "Send Prepared Message to Address (S)"
    }
    fn scopes(&self) -> &'static [Scope] {
        &[Scope::System]
    }
    fn form(&self, view: &JobForm<'_>) -> Result<String, askama::Error> {
        AddressForm(view).render()
    }
    fn parse(
        &self,
        _event: EventType,
        f: &Fields,
        choices: &Choices,
    ) -> Result<ToAddressSettings, FieldErrors> {
        let mut errors = FieldErrors::new();
        let message = parse_message(f, choices, &mut errors);
        let mut addresses = Vec::new();
        for raw in f
            .get("addresses")
            .split([',', ';', '\n', ' '])
            .filter(|s| !s.trim().is_empty())
        {
            match crate::types::EmailAddress::parse(raw) {
                Ok(a) if !addresses.contains(&a.to_string()) => addresses.push(a.to_string()),
                Ok(_) => {}
                Err(_) => {
                    errors.insert(
                        "addresses",
                        format!("{:?} is not an email address.", raw.trim()),
                    );
                }
            }
        }
        if addresses.is_empty() && !errors.contains_key("addresses") {
            errors.insert("addresses", "Enter one to ten email addresses.".into());
        } else if addresses.len() > MAX_ADDRESSES {
            errors.insert(
                "addresses",
                format!("Enter at most {MAX_ADDRESSES} addresses."),
            );
        }
        if errors.is_empty() {
            Ok(ToAddressSettings {
                message_id: message,
                addresses,
            })
        } else {
            Err(errors)
        }
    }
    fn fill(&self, settings: &ToAddressSettings, f: &mut Fields) {
        f.set("message", settings.message_id.to_string());
        f.set("addresses", settings.addresses.join(", "));
    }
    fn explain(&self, settings: &ToAddressSettings, names: &Choices) -> String {
        format!(
            "Emails the prepared message {} to {}.",
            names.message_name(Some(settings.message_id)),
            settings.addresses.join(", ")
        )
    }
    fn message(&self, settings: &ToAddressSettings) -> Option<i64> {
        Some(settings.message_id)
    }
    fn execute<'a>(&'a self, ctx: &'a JobContext, run: &'a Claimed) -> Execution<'a> {
        Box::pin(to_address(ctx, run))
    }
}

async fn to_address(ctx: &JobContext, run: &Claimed) -> Outcome {
    let (a, event) = match common::live_run(ctx, run).await {
        Ok((a, caused)) => (a, caused.event),
        Err(outcome) => return outcome,
    };
    let target = Target {
        kind: crate::scheduler::queue::RunFor::Automation,
        id: a.id.0,
    };
    let settings = match ctx.settings().await {
        Ok(s) => s,
        Err(e) => return Outcome::database(Some(target), "reading the settings", e),
    };
    let chosen: ToAddressSettings = match settings_of(&a, Some(target)) {
        Ok(s) => s,
        Err(outcome) => return outcome,
    };
    let message = match load_message(ctx, chosen.message_id, Some(target)).await {
        Ok(m) => m,
        Err(outcome) => return outcome,
    };
    let personal = Personal {
        event: event.params_json(),
        preferences_url: compose::preferences_url(&settings, &ctx.base_url),
        ..Personal::default()
    };
    // A suppressed address is passed over; the others still get the message.
    let mut last = Outcome::skip(Some(target), "no address to send to");
    let mut all = Vec::new();
    for address in &chosen.addresses {
        let email = Recipient {
            address,
            reference: crate::deliveries::new_reference(),
            unsubscribe: None,
            target,
        };
        match send(ctx, &message, &settings, &personal, email).await {
            Outcome::Done { sent, .. } => all.extend(sent),
            skipped @ Outcome::Skipped { .. } => last = skipped,
            other => return other,
        }
    }
    if all.is_empty() {
        return last;
    }
    Outcome::Done {
        target,
        sent: all,
        detail: None,
        audit: None,
    }
}
