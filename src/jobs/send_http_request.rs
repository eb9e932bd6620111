//! Send HTTP Request (S/C): POSTs the event (and, for a contact event, the
//! contact) as JSON — or a body staff wrote with the message placeholders — to a
//! URL, signed like Standard Webhooks with the automation's own secret.
//!
//! The secret is never stored: the automation keeps a random salt and the secret
//! is derived from it under Herald's secret key. 2xx is done (the answer's start
//! kept on the run), 5xx, 408, 429, a timeout or a failed connection are retried
//! with the scheduler's backoff, anything else fails the run. Where requests may
//! go is `crate::webhook`'s rule.

use askama::Template;

use crate::automations::model::Automation;
use crate::events::catalogue::{EventType, Scope};
use crate::intake::events::Event;
use crate::jobs::common;
use crate::jobs::registry::{Choices, Execution, Job, JobForm, settings_of};
use crate::links::LinkSigner;
use crate::messages::compose;
use crate::messages::template::{self, ContactValues, Personal};
use crate::scheduler::queue::{Claimed, Outcome, Target};
use crate::state::JobContext;
use crate::web::form::{FieldErrors, Fields};
use crate::webhook::{self, SendError};

crate::job_form!(HttpForm, "automations/jobs/send_http_request.html");

/// The longest body template.
const MAX_TEMPLATE_BYTES: usize = 64 * 1024;
/// Hex digits of a salt (128 bits).
const SALT_HEX: usize = 32;

/// Send HTTP Request (S/C).
pub struct SendHttpRequest;

/// What the request carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// The event, its contact and the automation as JSON.
    #[default]
    Event,
    /// The body staff wrote (a template).
    Template,
}

/// Where the request goes, what it carries, and the salt its signing secret is
/// made from (the secret itself is never stored).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct HttpSettings {
    pub url: String,
    pub body: Body,
    #[serde(default)]
    pub template: String,
    pub salt: String,
}

impl HttpSettings {
    /// The signing secret made from the salt.
    fn secret(&self, keys: &LinkSigner) -> Option<[u8; 32]> {
        (self.salt.len() == SALT_HEX).then(|| keys.derive(&self.salt))
    }
}

impl Job for SendHttpRequest {
    type Settings = HttpSettings;
    fn kind(&self) -> &'static str {
        "send_http_request"
    }
    fn label(&self) -> &'static str {
        "Send HTTP Request (S/C)"
    }
    fn scopes(&self) -> &'static [Scope] {
        &[Scope::System, Scope::Contact]
    }
    fn form(&self, view: &JobForm<'_>) -> Result<String, askama::Error> {
        HttpForm(view).render()
    }
    fn parse(
        &self,
        _event: EventType,
        f: &Fields,
        choices: &Choices,
    ) -> Result<HttpSettings, FieldErrors> {
        let mut errors = FieldErrors::new();
        let url = webhook::check_url(f.get("webhook_url"), &choices.webhook_hosts)
            .map_err(|e| errors.insert("webhook_url", e))
            .ok();
        let body = match f.get("webhook_body") {
            "" | "event" => Body::Event,
            "template" => Body::Template,
            _ => {
                errors.insert("webhook_body", "Choose one of the options offered.".into());
                Body::Event
            }
        };
        let text = f.get("webhook_template").trim().to_string();
        if body == Body::Template {
            if text.is_empty() {
                errors.insert(
                    "webhook_template",
                    "Write the body, or send the event as JSON.".into(),
                );
            } else if text.len() > MAX_TEMPLATE_BYTES {
                errors.insert("webhook_template", "The body has at most 64 KiB.".into());
            } else if let Err(e) = template::check(&text) {
                errors.insert("webhook_template", e.to_string());
            }
        }
        // The salt the form carried (not secret: the secret needs Herald's key), or
        // a new one when there is none or staff asked for a new secret.
        let kept = f.get("webhook_salt");
        let salt = if f.get("webhook_new_secret").is_empty()
            && kept.len() == SALT_HEX
            && kept.bytes().all(|b| b.is_ascii_hexdigit())
        {
            kept.to_ascii_lowercase()
        } else {
            crate::types::random_hex(SALT_HEX / 2)
        };
        match url {
            Some(url) if errors.is_empty() => Ok(HttpSettings {
                url: url.to_string(),
                body,
                template: if body == Body::Template {
                    text
                } else {
                    String::new()
                },
                salt,
            }),
            _ => Err(errors),
        }
    }
    fn fill(&self, settings: &HttpSettings, f: &mut Fields) {
        f.set("webhook_url", &settings.url);
        f.set(
            "webhook_body",
            match settings.body {
                Body::Event => "event",
                Body::Template => "template",
            },
        );
        f.set("webhook_template", &settings.template);
        f.set("webhook_salt", &settings.salt);
    }
    fn explain(&self, settings: &HttpSettings, _names: &Choices) -> String {
        let url = &settings.url;
        match settings.body {
            Body::Template => format!("POSTs the body you wrote, signed, to {url}."),
            Body::Event => format!("POSTs the event and its contact as JSON, signed, to {url}."),
        }
    }
    fn secret(&self, settings: &HttpSettings, keys: &LinkSigner) -> Option<String> {
        settings.secret(keys).map(|s| webhook::secret_text(&s))
    }
    fn execute<'a>(&'a self, ctx: &'a JobContext, run: &'a Claimed) -> Execution<'a> {
        Box::pin(send(ctx, run))
    }
}

/// The default body: `{type, timestamp, data: {event, contact, automation}}`.
fn event_body(
    a: &Automation,
    event: &Event,
    contact: Option<(i64, &ContactValues)>,
) -> serde_json::Value {
    let mut params = event.params_json();
    if let Some(p) = params.as_object_mut() {
        // Herald's own bookkeeping, not the event's.
        p.remove("chain_depth");
    }
    serde_json::json!({
        "type": event.kind,
        "timestamp": jiff::Timestamp::from_millisecond(event.occurred_at)
            .map(|t| t.to_string())
            .unwrap_or_default(),
        "data": {
            "event": {
                "id": event.id.0,
                "type": event.kind,
                "label": event.label(),
                "occurred_at": crate::clock::format_utc(event.occurred_at),
                "system_user_id": event.system_user_id,
                "group_id": event.group_id,
                "params": params,
            },
            "contact": contact.map(|(id, c)| serde_json::json!({
                "id": id,
                "email": c.email,
                "first_name": c.first_name,
                "last_name": c.last_name,
                "attributes": c.attributes,
            })),
            "automation": { "id": a.id.0, "name": a.name },
        },
    })
}

async fn send(ctx: &JobContext, run: &Claimed) -> Outcome {
    let (a, caused) = match common::live_run(ctx, run).await {
        Ok(found) => found,
        Err(outcome) => return outcome,
    };
    let event = &caused.event;
    // A contact event is about its contact, who must still meet the selection.
    let (target, contact) = if event.contact_id.is_some() {
        let to = match common::event_contact(ctx, &a, &caused).await {
            Ok(to) => to,
            Err(outcome) => return outcome,
        };
        match compose::contact_values(&ctx.db, to.target.id).await {
            Ok(Some(values)) => (to.target, Some(values)),
            Ok(None) => return Outcome::skip(Some(to.target), "the contact no longer exists"),
            Err(e) => return Outcome::database(Some(to.target), "reading the contact's values", e),
        }
    } else {
        let target = Target {
            kind: crate::scheduler::queue::RunFor::Automation,
            id: a.id.0,
        };
        (target, None)
    };
    let failed = |error: String| Outcome::Failed {
        target: Some(target),
        error,
    };
    let settings = match ctx.settings().await {
        Ok(s) => s,
        Err(e) => return Outcome::database(Some(target), "reading the settings", e),
    };
    let chosen: HttpSettings = match settings_of(&a, Some(target)) {
        Ok(s) => s,
        Err(outcome) => return outcome,
    };
    let allowed = settings.webhook_hosts();
    let url = match webhook::check_url(&chosen.url, &allowed) {
        Ok(url) => url,
        Err(e) => return failed(format!("the URL is refused now: {e}")),
    };
    let Some(secret) = chosen.secret(&ctx.webhook_keys) else {
        return failed("the signing secret is missing: save Define Job again".into());
    };
    let (content_type, body) = if chosen.body == Body::Template {
        let personal = Personal {
            contact: contact.clone().unwrap_or_default(),
            event: event.params_json(),
            preferences_url: compose::preferences_url(&settings, &ctx.base_url),
            ..Personal::default()
        };
        match template::render_json(&chosen.template, &personal) {
            Ok(text) if serde_json::from_str::<serde_json::Value>(&text).is_ok() => {
                ("application/json", text.into_bytes())
            }
            Ok(text) => ("text/plain; charset=utf-8", text.into_bytes()),
            Err(e) => return failed(format!("the body cannot be written: {e}")),
        }
    } else {
        let body = event_body(&a, event, contact.as_ref().map(|c| (target.id, c)));
        ("application/json", body.to_string().into_bytes())
    };
    let id = format!("msg_herald_run_{}", run.id);
    let request = webhook::Request {
        url: &url,
        id: &id,
        timestamp: ctx.clock.now_ms().div_euclid(1000),
        secret: &secret,
        content_type,
        body,
    };
    match ctx.http.send(request, &allowed).await {
        Ok(answer) if (200..300).contains(&answer.status) => Outcome::Done {
            target,
            sent: Vec::new(),
            detail: Some(answer.summary),
            audit: None,
        },
        Ok(answer) if answer.status >= 500 || answer.status == 408 || answer.status == 429 => {
            Outcome::Retry {
                target: Some(target),
                error: answer.summary,
            }
        }
        Ok(answer) if (300..400).contains(&answer.status) => {
            failed(format!("{} (redirects are not followed)", answer.summary))
        }
        Ok(answer) => failed(answer.summary),
        Err(SendError::Refused(reason)) => failed(reason),
        Err(e) => Outcome::Retry {
            target: Some(target),
            error: e.to_string(),
        },
    }
}
