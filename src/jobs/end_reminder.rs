//! The reminder before an automation's end (Define Time Frame's Notifications): a system run, durable like
//! the others, that emails the configured system users N days before the end.

use jiff::Timestamp;

use crate::automations::model::State;
use crate::events::catalogue::Scope;
use crate::jobs::registry::{Choices, Execution, Job};
use crate::mail::{Email, SendError};
use crate::messages::system::{self, SystemEmail};
use crate::scheduler::queue::{Claimed, END_REMINDER, Outcome, Target};
use crate::state::JobContext;

/// The reminder before an automation's end: Herald's own run, never offered in
/// Define Job.
pub struct EndReminder;

impl Job for EndReminder {
    type Settings = ();
    fn kind(&self) -> &'static str {
        END_REMINDER
    }
    fn label(&self) -> &'static str {
        "Reminder before the end (S)"
    }
    fn scopes(&self) -> &'static [Scope] {
        &[Scope::System]
    }
    fn offered(&self) -> bool {
        false
    }
    fn explain(&self, _: &(), _names: &Choices) -> String {
        "Emails the chosen system users before the automation ends.".into()
    }
    fn execute<'a>(&'a self, ctx: &'a JobContext, run: &'a Claimed) -> Execution<'a> {
        Box::pin(execute(ctx, run))
    }
}

async fn execute(ctx: &JobContext, run: &Claimed) -> Outcome {
    let target = Some(Target {
        kind: crate::scheduler::queue::RunFor::Automation,
        id: run.automation_id.0,
    });
    let a = match crate::automations::store::find(&ctx.db, run.automation_id).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return Outcome::Skipped {
                target,
                reason: "the automation was deleted".into(),
            };
        }
        Err(e) => return Outcome::database(target, "loading the automation", e),
    };
    if a.state != State::Active || a.end_at.is_none() {
        return Outcome::Skipped {
            target,
            reason: "the automation is not active or has no end".into(),
        };
    }
    let settings = match ctx.settings().await {
        Ok(s) => s,
        Err(e) => return Outcome::database(target, "reading the settings", e),
    };
    let ends = a
        .end_at
        .and_then(|e| Timestamp::from_millisecond(e).ok())
        .map(|t| {
            t.to_zoned(a.zone())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string()
        })
        .unwrap_or_default();
    let link = format!("{}automations/{}/time-frame", ctx.base_url, a.id);
    let text = match system::current(&ctx.db, SystemEmail::Reminder).await {
        Ok(t) => t,
        Err(e) => return Outcome::database(target, "reading the reminder email", e),
    };
    let mut sent = Vec::new();
    for user_id in &a.notify {
        let user = match crate::auth::users::find(&ctx.db, *user_id).await {
            Ok(Some(u)) if !u.disabled => u,
            Ok(_) => continue,
            Err(e) => return Outcome::database(target, "loading a system user to remind", e),
        };
        let values = serde_json::json!({
            "name": user.name,
            "brand": settings.brand_name,
            "automation": a.name,
            "ends": ends,
            "automation_url": link,
        });
        let rendered = match system::render(&text, &values) {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Failed {
                    target,
                    error: format!(
                        "the reminder could not be made (Messages → System emails): {e}"
                    ),
                };
            }
        };
        let email = Email::system(&settings, &user.name, &user.email, rendered.parts());
        match ctx.mailer.send(&email).await {
            Ok(id) => sent.push(
                crate::deliveries::Sent::new(
                    crate::deliveries::Kind::Reminder,
                    id.message_id,
                    &user.email,
                )
                .queued_as(id.queued_as),
            ),
            Err(SendError::Transient(error)) => return Outcome::Retry { target, error },
            Err(SendError::Permanent(error)) => {
                tracing::warn!(user = user.id, error, "reminder refused for one recipient")
            }
        }
    }
    if sent.is_empty() {
        return Outcome::Skipped {
            target,
            reason: "no enabled system user to remind".into(),
        };
    }
    Outcome::Done {
        target: Target {
            kind: crate::scheduler::queue::RunFor::Automation,
            id: a.id.0,
        },
        sent,
        detail: None,
        audit: None,
    }
}
