//! Send New Password to Contact (C) / to System User (S), per SPEC §7: a fresh
//! CSPRNG password per attempt, only its argon2id hash stored as the target's
//! temporary credential (the old password keeps working until it is used), sent
//! by email; at most 3 per target per hour.

use askama::Template;
use jiff::Timestamp;

use super::JobKind;
use crate::app::AppState;
use crate::audit::{self, Action, Actor};
use crate::auth::password::{self, Priority};
use crate::automations::{self, Automation, Condition, State, Target as JobTarget};
use crate::mail::{Email, SendError};
use crate::scheduler::{Claimed, Outcome, Target};
use crate::settings::Settings;

#[derive(Template)]
#[template(path = "email/password.txt")]
struct TextBody<'a> {
    name: &'a str,
    brand: &'a str,
    password: &'a str,
    expires: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "email/password.html")]
struct HtmlBody<'a> {
    name: &'a str,
    brand: &'a str,
    password: &'a str,
    expires: &'a str,
    link: &'a str,
}

/// The person the password goes to.
struct Recipient {
    target: Target,
    email: String,
    name: String,
}

fn skip(target: Option<Target>, reason: impl Into<String>) -> Outcome {
    Outcome::Skipped {
        target,
        reason: reason.into(),
    }
}

fn unexpected(target: Option<Target>, e: impl std::fmt::Display) -> Outcome {
    // Database trouble: try again later.
    Outcome::Retry {
        target,
        error: format!("database: {e}"),
    }
}

pub async fn execute(state: &AppState, run: &Claimed, kind: JobKind) -> Outcome {
    let now = state.clock.now_ms();
    let settings = match Settings::load(&state.db).await {
        Ok(s) => s,
        Err(e) => return unexpected(None, e),
    };
    if now - run.due_at > settings.stale_after_hours * 3_600_000 {
        return Outcome::Expired;
    }
    let a = match automations::find(&state.db, run.automation_id).await {
        Ok(Some(a)) => a,
        Ok(None) => return skip(None, "the automation was deleted"),
        Err(e) => return unexpected(None, e),
    };
    if a.state != State::Active {
        return skip(None, "the automation is not active");
    }
    if a.status(now) != automations::Status::Running {
        return skip(None, "outside the automation's time frame");
    }
    let event = match crate::events::find(&state.db, run.event_id).await {
        Ok(Some(e)) => e,
        Ok(None) => return skip(None, "the event no longer exists"),
        Err(e) => return unexpected(None, e),
    };
    let recipient = match resolve(state, &a, kind, &event).await {
        Ok(Ok(r)) => r,
        Ok(Err(outcome)) => return outcome,
        Err(e) => return unexpected(None, e),
    };
    let target = Some(recipient.target);
    match recent_deliveries(state, recipient.target, now).await {
        Ok(n) if n >= settings.password_emails_per_hour => {
            return skip(
                target,
                format!("rate limited: {n} password emails to this address in the last hour"),
            );
        }
        Ok(_) => {}
        Err(e) => return unexpected(target, e),
    }
    deliver(state, run, &a, recipient, &settings).await
}

/// Resolves the target now (the selection is calculated when the job executes).
async fn resolve(
    state: &AppState,
    a: &Automation,
    kind: JobKind,
    event: &crate::events::Event,
) -> Result<Result<Recipient, Outcome>, sqlx::Error> {
    match kind {
        JobKind::SendNewPasswordToContact => {
            let id = match a.target {
                Some(JobTarget::EventParameter) => event.contact_id,
                Some(JobTarget::Contact(id)) => Some(id),
                _ => None,
            };
            let Some(id) = id else {
                return Ok(Err(skip(None, "the event names no contact")));
            };
            let target = Target {
                kind: "contact",
                id,
            };
            let Some(contact) = crate::contacts::find(&state.db, id).await? else {
                return Ok(Err(skip(Some(target), "the contact no longer exists")));
            };
            if contact.is_blocked() {
                return Ok(Err(skip(Some(target), "the contact is blocked")));
            }
            for condition in &a.selection {
                let met = match condition {
                    Condition::MemberOf { group_id } => {
                        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM group_members WHERE group_id = $1 AND contact_id = $2")
                            .bind(group_id)
                            .bind(id)
                            .fetch_one(state.db.read())
                            .await?;
                        n > 0
                    }
                    Condition::AttributeEquals { name, value } => {
                        let v: Option<String> =
                            sqlx::query_scalar("SELECT value FROM contact_attributes WHERE contact_id = $1 AND name = $2")
                                .bind(id)
                                .bind(name)
                                .fetch_optional(state.db.read())
                                .await?;
                        v.as_deref() == Some(value.as_str())
                    }
                    Condition::RoleIs { .. } => true,
                };
                if !met {
                    return Ok(Err(skip(
                        Some(target),
                        format!(
                            "the contact does not meet the selection ({})",
                            describe(condition)
                        ),
                    )));
                }
            }
            Ok(Ok(Recipient {
                target,
                name: contact.name(),
                email: contact.email,
            }))
        }
        JobKind::SendNewPasswordToSystemUser => {
            let id = match a.target {
                Some(JobTarget::EventParameter) => event.system_user_id,
                Some(JobTarget::SystemUser(id)) => Some(id),
                _ => None,
            };
            let Some(id) = id else {
                return Ok(Err(skip(None, "the event names no system user")));
            };
            let target = Target {
                kind: "system_user",
                id,
            };
            let Some(user) = crate::auth::users::find(&state.db, id).await? else {
                return Ok(Err(skip(Some(target), "the system user no longer exists")));
            };
            if user.disabled {
                return Ok(Err(skip(Some(target), "the system user is disabled")));
            }
            for condition in &a.selection {
                if let Condition::RoleIs { role } = condition
                    && user.role.code() != role
                {
                    return Ok(Err(skip(
                        Some(target),
                        format!(
                            "the system user does not meet the selection ({})",
                            describe(condition)
                        ),
                    )));
                }
            }
            Ok(Ok(Recipient {
                target,
                name: user.name,
                email: user.email,
            }))
        }
    }
}

fn describe(c: &Condition) -> String {
    match c {
        Condition::MemberOf { group_id } => format!("member of group #{group_id}"),
        Condition::AttributeEquals { name, .. } => format!("attribute {name}"),
        Condition::RoleIs { role } => format!("role {role}"),
    }
}

async fn recent_deliveries(state: &AppState, target: Target, now: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM job_runs WHERE target_kind = $1 AND target_id = $2 AND status = 'done' AND finished_at > $3",
    )
    .bind(target.kind)
    .bind(target.id)
    .bind(now - 3_600_000)
    .fetch_one(state.db.read())
    .await
}

/// Makes a fresh password, stores its hash as the temporary credential, emails it.
async fn deliver(
    state: &AppState,
    run: &Claimed,
    a: &Automation,
    to: Recipient,
    settings: &Settings,
) -> Outcome {
    let target = Some(to.target);
    let plain = password::generate(settings.password_length as usize);
    let hash = match state.hasher.hash(&plain, Priority::Background).await {
        Ok(h) => h,
        Err(e) => {
            return Outcome::Retry {
                target,
                error: e.to_string(),
            };
        }
    };
    let now = state.clock.now_ms();
    let expires_at = now + settings.temp_password_lifetime_hours * 3_600_000;
    // Replace any older temporary credential; the permanent password stays.
    let table = if to.target.kind == "contact" {
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
    .execute(state.db.write())
    .await;
    if let Err(e) = stored {
        return unexpected(target, e);
    }
    let expires = Timestamp::from_millisecond(expires_at)
        .map(|t| {
            t.to_zoned(a.zone())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string()
        })
        .unwrap_or_default();
    let link = sign_in_link(state, settings, to.target.kind);
    let text = TextBody {
        name: &to.name,
        brand: &settings.brand_name,
        password: plain.expose(),
        expires: &expires,
        link: &link,
    };
    let html = HtmlBody {
        name: &to.name,
        brand: &settings.brand_name,
        password: plain.expose(),
        expires: &expires,
        link: &link,
    };
    let Ok(email) = Email::from_templates(
        settings,
        &to.email,
        format!("Your new password for {}", settings.brand_name),
        &text,
        &html,
    ) else {
        return Outcome::Failed {
            target,
            error: "the email template could not be rendered".into(),
        };
    };
    match state.mailer.send(&email).await {
        Ok(message_id) => {
            let entry = audit::Entry {
                actor: &Actor::named("scheduler"),
                action: Action::PasswordDelivered,
                target: &to.email,
                detail: &format!(
                    "run #{}, automation #{} ({}), {} #{}",
                    run.id, a.id, a.name, to.target.kind, to.target.id
                ),
                ip: "",
            };
            if let Err(e) = audit::record_now(&state.db, now, entry).await {
                tracing::warn!(run = run.id, error = %e, "auditing a delivery failed");
            }
            Outcome::Done {
                target: to.target,
                message_id,
            }
        }
        Err(SendError::Transient(error)) => Outcome::Retry { target, error },
        Err(SendError::Permanent(error)) => Outcome::Failed { target, error },
    }
}

/// The sign-in link, from settings and configuration — never from a request.
fn sign_in_link(state: &AppState, settings: &Settings, kind: &str) -> String {
    if kind == "contact" {
        let base = if settings.preference_center_url.is_empty() {
            format!("{}preferences", state.config.base_url)
        } else {
            settings
                .preference_center_url
                .trim_end_matches('/')
                .to_string()
        };
        format!("{base}/login")
    } else {
        format!("{}login", state.config.base_url)
    }
}
