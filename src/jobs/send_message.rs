//! Send Prepared Message to Contact (C) and to Address (S): a message staff wrote,
//! personalised at send time. To a contact it carries the one-click unsubscribe
//! link (optionally for one group), respects the contact's opt-out and the
//! frequency cap; to addresses (ops, say) it carries the event's values.

use askama::Template;

use crate::automations::model::TargetKind;
use crate::events::catalogue::{EventType, Scope};
use crate::jobs::common;
use crate::jobs::registry::{Choices, Execution, Job, JobForm};
use crate::mail::SendError;
use crate::messages::compose::{self, Unsubscribe};
use crate::messages::template::Personal;
use crate::scheduler::queue::{Claimed, Outcome, Target};
use crate::state::JobContext;
use crate::web::form::{FieldErrors, Fields};

/// The kinds that count towards the frequency cap.
pub const MESSAGE_KINDS: [&str; 1] = [TO_CONTACT];
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

impl Job for ToContact {
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
    ) -> Result<serde_json::Value, FieldErrors> {
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
            Ok(serde_json::json!({ "message_id": message, "group_id": group }))
        } else {
            Err(errors)
        }
    }
    fn fill(&self, config: &serde_json::Value, f: &mut Fields) {
        f.set("message", config["message_id"].to_string());
        if let Some(g) = config["group_id"].as_i64() {
            f.set("message_group", g.to_string());
        }
    }
    fn explain(&self, config: &serde_json::Value, names: &Choices) -> String {
        let message = names.message_name(config["message_id"].as_i64());
        match config["group_id"].as_i64() {
            Some(g) => format!(
                "Emails the contact the prepared message {message}; its unsubscribe link removes them from {} (or, for a contact not in it, offers to stop all prepared messages).",
                names.group_name(Some(g))
            ),
            None => format!(
                "Emails the contact the prepared message {message}; its unsubscribe link stops all prepared messages to them."
            ),
        }
    }
    fn message(&self, config: &serde_json::Value) -> Option<i64> {
        config["message_id"].as_i64()
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
    let now = ctx.clock.now_ms();
    let settings = match ctx.settings().await {
        Ok(s) => s,
        Err(e) => return Outcome::database(target, e),
    };
    match crate::contacts::find(&ctx.db, to.target.id).await {
        Ok(Some(c)) if c.is_opted_out() => {
            return Outcome::skip(target, "the contact unsubscribed from all messages");
        }
        Ok(_) => {}
        Err(e) => return Outcome::database(target, e),
    }
    let since = now - 24 * 3_600_000;
    match crate::scheduler::runs::done_of_kinds_for_target_since(
        &ctx.db,
        &MESSAGE_KINDS,
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
        Err(e) => return Outcome::database(target, e),
    }
    let Some(message) = load_message(ctx, &a.job_config, target).await else {
        return Outcome::Failed {
            target,
            error: "the message was deleted: choose another one in Define Job".into(),
        };
    };
    let values = match compose::contact_values(&ctx.db, to.target.id).await {
        Ok(Some(v)) => v,
        Ok(None) => return Outcome::skip(target, "the contact no longer exists"),
        Err(e) => return Outcome::database(target, e),
    };
    let unsubscribe =
        match Unsubscribe::of(&ctx.db, to.target.id, a.job_config["group_id"].as_i64()).await {
            Ok(Some(u)) => u.link(&ctx.links, &ctx.base_url),
            Ok(None) => return Outcome::skip(target, "the contact no longer exists"),
            Err(e) => return Outcome::database(target, e),
        };
    let personal = Personal {
        contact: values,
        event: event.params_json(),
        preferences_url: compose::preferences_url(&settings, &ctx.base_url),
        unsubscribe_url: unsubscribe.clone(),
    };
    send(
        ctx,
        &message,
        &settings,
        &to.email,
        &personal,
        Some(unsubscribe),
        to.target,
    )
    .await
}

async fn load_message(
    ctx: &JobContext,
    config: &serde_json::Value,
    target: Option<Target>,
) -> Option<crate::messages::store::Message> {
    let id = config["message_id"].as_i64()?;
    match crate::messages::store::find(&ctx.db, id).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, ?target, "loading a message failed");
            None
        }
    }
}

async fn send(
    ctx: &JobContext,
    message: &crate::messages::store::Message,
    settings: &crate::settings::Settings,
    to: &str,
    personal: &Personal,
    unsubscribe: Option<String>,
    target: Target,
) -> Outcome {
    let email = match compose::email(message, settings, to, personal, unsubscribe) {
        Ok(e) => e,
        Err(e) => {
            return Outcome::Failed {
                target: Some(target),
                error: format!("the message cannot be rendered: {e}"),
            };
        }
    };
    match ctx.mailer.send(&email).await {
        Ok(id) => Outcome::sent(target, id),
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

/// Send Prepared Message to Address (S).
pub struct ToAddress;

impl Job for ToAddress {
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
    ) -> Result<serde_json::Value, FieldErrors> {
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
            Ok(serde_json::json!({ "message_id": message, "addresses": addresses }))
        } else {
            Err(errors)
        }
    }
    fn fill(&self, config: &serde_json::Value, f: &mut Fields) {
        f.set("message", config["message_id"].to_string());
        let addresses: Vec<&str> = config["addresses"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        f.set("addresses", addresses.join(", "));
    }
    fn explain(&self, config: &serde_json::Value, names: &Choices) -> String {
        let addresses: Vec<&str> = config["addresses"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        format!(
            "Emails the prepared message {} to {}.",
            names.message_name(config["message_id"].as_i64()),
            addresses.join(", ")
        )
    }
    fn message(&self, config: &serde_json::Value) -> Option<i64> {
        config["message_id"].as_i64()
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
        kind: "automation",
        id: a.id.0,
    };
    let settings = match ctx.settings().await {
        Ok(s) => s,
        Err(e) => return Outcome::database(Some(target), e),
    };
    let Some(message) = load_message(ctx, &a.job_config, Some(target)).await else {
        return Outcome::Failed {
            target: Some(target),
            error: "the message was deleted: choose another one in Define Job".into(),
        };
    };
    let personal = Personal {
        event: event.params_json(),
        preferences_url: compose::preferences_url(&settings, &ctx.base_url),
        ..Personal::default()
    };
    let addresses: Vec<String> = a.job_config["addresses"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut last = Outcome::skip(Some(target), "no address to send to");
    for address in &addresses {
        last = send(ctx, &message, &settings, address, &personal, None, target).await;
        if !matches!(last, Outcome::Done { .. }) {
            return last;
        }
    }
    last
}
