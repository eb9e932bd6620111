//! Send New Password to Contact (C) / to System User (S), as the preference center and staff need them: a fresh
//! CSPRNG password per attempt, only its argon2id hash stored as the target's
//! temporary credential (the old password keeps working until it is used), sent
//! by email; at most 3 per target per hour.

use crate::audit::Action;
use crate::auth::password::{self, Priority};
use crate::automations::model::{Automation, TargetKind};
use crate::deliveries::{Kind, Sent};
use crate::events::catalogue::Scope;
use crate::jobs::common::{self, Recipient};
use crate::jobs::registry::{Choices, Execution, Job, Limit};
use crate::mail::{Email, SendError};
use crate::messages::system::{self, SystemEmail};
use crate::scheduler::queue::{AuditNote, Claimed, Outcome, RunFor};
use crate::scheduler::runs;
use crate::settings::Settings;
use crate::state::JobContext;

/// The kind of Send New Password to Contact (C): the job that answers a contact's
/// "Send me a new password".
pub const TO_CONTACT_KIND: &str = "send_new_password_to_contact";

/// Send New Password to Contact (C).
pub struct ToContact;

impl Job for ToContact {
    type Settings = ();
    fn kind(&self) -> &'static str {
        TO_CONTACT_KIND
    }
    fn label(&self) -> &'static str {
        "Send New Password to Contact (C)"
    }
    fn scopes(&self) -> &'static [Scope] {
        &[Scope::Contact]
    }
    fn target(&self) -> Option<TargetKind> {
        Some(TargetKind::Contact)
    }
    fn explain(&self, _: &(), _names: &Choices) -> String {
        "Emails the contact a new temporary password for the preference center.".into()
    }
    fn limit(&self) -> Option<Limit> {
        Some(Limit::PasswordsPerHour)
    }
    fn sends_preference_center_password(&self) -> bool {
        true
    }
    fn execute<'a>(&'a self, ctx: &'a JobContext, run: &'a Claimed) -> Execution<'a> {
        Box::pin(send(ctx, run, TargetKind::Contact))
    }
}

/// Send New Password to System User (S).
pub struct ToSystemUser;

impl Job for ToSystemUser {
    type Settings = ();
    fn kind(&self) -> &'static str {
        "send_new_password_to_system_user"
    }
    fn label(&self) -> &'static str {
        "Send New Password to System User (S)"
    }
    fn scopes(&self) -> &'static [Scope] {
        &[Scope::System]
    }
    fn target(&self) -> Option<TargetKind> {
        Some(TargetKind::SystemUser)
    }
    fn explain(&self, _: &(), _names: &Choices) -> String {
        "Emails the system user a new temporary password for Herald.".into()
    }
    fn limit(&self) -> Option<Limit> {
        Some(Limit::PasswordsPerHour)
    }
    fn execute<'a>(&'a self, ctx: &'a JobContext, run: &'a Claimed) -> Execution<'a> {
        Box::pin(send(ctx, run, TargetKind::SystemUser))
    }
}

/// Both jobs: not stale, automation live, target resolved and selected now, within
/// the hourly limit; then a fresh password is made, stored and emailed.
async fn send(ctx: &JobContext, run: &Claimed, kind: TargetKind) -> Outcome {
    // Looked up only once the hashing threads are about to be free for this run.
    let turn = ctx.hasher.turn().await;
    let now = ctx.clock.now_ms();
    let settings = match ctx.settings().await {
        Ok(s) => s,
        Err(e) => return Outcome::database(None, "reading the settings", e),
    };
    if now - run.due_at > settings.stale_after_hours * 3_600_000 {
        return Outcome::Expired {
            reason: "could not start in time: the password would be stale (limit in Settings)",
        };
    }
    let (a, _event, recipient) = match common::live_target(ctx, run, kind).await {
        Ok(parts) => parts,
        Err(outcome) => return outcome,
    };
    let target = Some(recipient.target);
    // A password email is transactional: only a mailbox that does not exist stops
    // it, and only a contact's (staff are never suppressed).
    if recipient.target.kind == RunFor::Contact {
        match ctx.suppressed.find(&ctx.db, &recipient.email).await {
            Ok(Some(s)) if s.reason.stops_transactional() => {
                return Outcome::skip(target, s.skip_reason());
            }
            Ok(_) => {}
            Err(e) => return Outcome::database(target, "checking the suppression list", e),
        }
    }
    match runs::done_for_target_since(&ctx.db, recipient.target, now - 3_600_000).await {
        Ok(n) if n >= settings.password_emails_per_hour => {
            return Outcome::skip(
                target,
                format!("rate limited: {n} password emails to this address in the last hour"),
            );
        }
        Ok(_) => {}
        Err(e) => {
            return Outcome::database(target, "counting the password emails of the last hour", e);
        }
    }
    deliver(ctx, run, &a, recipient, &settings, turn).await
}

/// Makes a fresh password, stores its hash as the temporary credential, emails it.
#[tracing::instrument(skip_all, fields(run = %run.id, to = to.target.id))]
async fn deliver(
    ctx: &JobContext,
    run: &Claimed,
    a: &Automation,
    to: Recipient,
    settings: &Settings,
    turn: password::Turn,
) -> Outcome {
    let target = Some(to.target);
    let plain = password::generate(settings.password_length as usize);
    let hash = match ctx.hasher.hash(&plain, Priority::Background).await {
        Ok(h) => h,
        Err(e) => {
            return Outcome::Retry {
                target,
                error: e.to_string(),
            };
        }
    };
    // Hashed: the next run may look its target up while this one is stored and sent.
    drop(turn);
    let now = ctx.clock.now_ms();
    let expires_at = now + settings.temp_password_lifetime_hours * 3_600_000;
    // Replace any older temporary credential; the permanent password stays.
    let table = if to.target.kind == RunFor::Contact {
        "contacts"
    } else {
        "system_users"
    };
    let stored = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {table} SET temp_hash = $1, temp_expires_at = $2, temp_used_at = NULL, updated_at = $3 WHERE id = $4"
    )))
    .bind(&hash)
    .bind(expires_at)
    .bind(now)
    .bind(to.target.id)
    .execute(ctx.db.write())
    .await;
    if let Err(e) = stored {
        return Outcome::database(target, "storing the new password", e);
    }
    // In the zone the business works in (Settings), like the rest of what people
    // read from Herald, not in the automation's scheduling zone.
    let expires = crate::clock::format_in(expires_at, &settings.default_time_zone);
    let link = sign_in_link(ctx, settings, to.target.kind);
    let kind = if to.target.kind == RunFor::Contact {
        SystemEmail::ContactPassword
    } else {
        SystemEmail::StaffPassword
    };
    let text = match system::current(&ctx.db, kind).await {
        Ok(t) => t,
        Err(e) => return Outcome::database(target, "reading the password email", e),
    };
    let values = serde_json::json!({
        "name": to.name,
        "brand": settings.brand_name,
        "password": plain.expose(),
        "expires": expires,
        "sign_in_url": link,
    });
    let rendered = match system::render(&text, &values) {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Failed {
                target,
                error: format!(
                    "the password email could not be made (Messages → System emails): {e}"
                ),
            };
        }
    };
    let email = Email::system(settings, &to.name, &to.email, rendered.parts());
    match ctx.mailer.send(&email).await {
        // The delivery is audited with the run's completion (no write of its own).
        Ok(message_id) => Outcome::sent(
            to.target,
            Sent::new(Kind::Password, message_id.message_id, &to.email)
                .queued_as(message_id.queued_as)
                .to_contact(to.target.contact()),
        )
        .noted(AuditNote {
            action: Action::PasswordDelivered,
            target: to.email.clone(),
            detail: format!(
                "run #{}, automation #{} ({}), {} #{}",
                run.id,
                a.id,
                a.name,
                to.target.kind.code(),
                to.target.id
            ),
        }),
        Err(SendError::Transient(error)) => Outcome::Retry { target, error },
        Err(SendError::Permanent(error)) => Outcome::Failed { target, error },
    }
}

/// The sign-in link, from settings and configuration — never from a request.
fn sign_in_link(ctx: &JobContext, settings: &Settings, kind: RunFor) -> String {
    if kind == RunFor::Contact {
        let base = if settings.preference_center_url.is_empty() {
            format!("{}preferences", ctx.base_url)
        } else {
            settings
                .preference_center_url
                .trim_end_matches('/')
                .to_string()
        };
        format!("{base}/login")
    } else {
        format!("{}login", ctx.base_url)
    }
}
