//! The confirmation emails pending memberships owe, sent beside the scheduler by
//! the process that holds it. Each is claimed (leased) before it is sent, and
//! marked sent with its delivery in one transaction after — tried again while the
//! database is away, so a restart does not send it twice. A suppressed address or
//! a blocked contact gets none; a mail server that refuses it for now is tried
//! again later, at most five times.

use std::time::Duration;

use crate::deliveries::{Kind, Sent};
use crate::mail::{Email, SendError};
use crate::messages::system::{self, SystemEmail};
use crate::state::JobContext;

use crate::consent::{CONFIRMATIONS_DUE, FIRST_LIFETIME_MS, expire};
use crate::links::ConfirmToken;

/// How long a claimed confirmation is this process's to send.
const LEASE_MS: i64 = 5 * 60_000;
/// Attempts before a confirmation is given up.
const ATTEMPTS: i64 = 5;
/// Confirmations claimed at once.
const AT_ONCE: i64 = 20;

/// Sends what is due, then waits for more (woken in this process, or every
/// second for what other instances asked), until dropped. Also removes the
/// pending memberships whose link expired, once a minute.
pub async fn run(ctx: JobContext) {
    let mut last_expiry: Option<i64> = None;
    loop {
        let now = ctx.clock.now_ms();
        if last_expiry.is_none_or(|at| now.saturating_sub(at) >= 60_000) {
            match expire(&ctx.db, now).await {
                Ok(n) if n > 0 => tracing::info!(n, "pending memberships expired unconfirmed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "removing expired pending memberships failed"),
            }
            last_expiry = Some(now);
        }
        match send_due(&ctx).await {
            Ok(n) if n as i64 == AT_ONCE => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "sending confirmation emails failed; trying again")
            }
        }
        tokio::select! {
            () = CONFIRMATIONS_DUE.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// One pending membership whose confirmation email is claimed.
#[derive(sqlx::FromRow)]
struct Due {
    id: i64,
    contact_id: i64,
    group_id: i64,
    attempts: i64,
    email: String,
    first_name: String,
    last_name: String,
    status: String,
    group_name: String,
    group_description: String,
}

/// Claims and sends the confirmations due now; how many were claimed.
pub async fn send_due(ctx: &JobContext) -> Result<usize, sqlx::Error> {
    let now = ctx.clock.now_ms();
    let candidates: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM pending_memberships WHERE (email_state = 'due' AND email_due_at <= $1) \
         OR (email_state = 'sending' AND lease_until <= $1) ORDER BY email_due_at LIMIT $2",
    )
    .bind(now)
    .bind(AT_ONCE)
    .fetch_all(ctx.db.read())
    .await?;
    let mut claimed = 0;
    for id in candidates {
        let took = sqlx::query(
            "UPDATE pending_memberships SET email_state = 'sending', lease_until = $1, attempts = attempts + 1 \
             WHERE id = $2 AND ((email_state = 'due' AND email_due_at <= $3) OR (email_state = 'sending' AND lease_until <= $3))",
        )
        .bind(now + LEASE_MS)
        .bind(id)
        .bind(now)
        .execute(ctx.db.write())
        .await?
        .rows_affected()
            == 1;
        if !took {
            continue;
        }
        claimed += 1;
        let due: Option<Due> = sqlx::query_as(
            "SELECT p.id, p.contact_id, p.group_id, p.attempts, c.email, c.first_name, c.last_name, c.status, \
             g.name AS group_name, g.description AS group_description FROM pending_memberships p \
             JOIN contacts c ON c.id = p.contact_id JOIN contact_groups g ON g.id = p.group_id WHERE p.id = $1",
        )
        .bind(id)
        .fetch_optional(ctx.db.read())
        .await?;
        if let Some(due) = due {
            let end = send_one(ctx, &due).await;
            store(ctx, id, end).await;
        }
    }
    Ok(claimed)
}

/// How one claimed confirmation ended.
enum End {
    Sent {
        sent: Sent,
        version: i64,
        expires_at: i64,
    },
    /// Not sent, and not to be (a suppressed address, a blocked contact); the
    /// pending membership still ends when its lifetime would have.
    Skipped {
        note: String,
        expires_at: i64,
    },
    /// Not sent this time; due again at the time given.
    Later {
        error: String,
        at: i64,
    },
    Failed {
        note: String,
        expires_at: i64,
    },
}

async fn send_one(ctx: &JobContext, due: &Due) -> End {
    let now = ctx.clock.now_ms();
    let settings = match ctx.settings().await {
        Ok(s) => s,
        Err(e) => return later(due, now, format!("reading the settings: {e}")),
    };
    let expires_at = now + settings.confirmation_lifetime_days * 86_400_000;
    if due.status == "blocked" {
        let note = "the contact is blocked".into();
        return End::Skipped { note, expires_at };
    }
    match ctx.suppressed.find(&ctx.db, &due.email).await {
        Ok(Some(s)) => {
            let note = s.skip_reason();
            return End::Skipped { note, expires_at };
        }
        Ok(None) => {}
        Err(e) => return later(due, now, format!("checking the suppression list: {e}")),
    }
    let text = match system::current(&ctx.db, SystemEmail::Confirmation).await {
        Ok(t) => t,
        Err(e) => return later(due, now, format!("reading the confirmation email: {e}")),
    };
    let token = ConfirmToken {
        pending: due.id,
        contact: due.contact_id,
        group: due.group_id,
        expires_s: expires_at / 1000,
    };
    let confirm_url = format!(
        "{}/confirm/{}",
        crate::messages::compose::preferences_url(&settings, &ctx.base_url),
        ctx.confirmations.sign(&token)
    );
    let name = format!("{} {}", due.first_name, due.last_name)
        .trim()
        .to_string();
    let values = serde_json::json!({
        "name": name,
        "brand": settings.brand_name,
        "contact": { "email": due.email, "first_name": due.first_name, "last_name": due.last_name },
        "group": { "name": due.group_name, "description": due.group_description },
        "confirm_url": confirm_url,
        "expires": crate::clock::format_in(expires_at, &settings.default_time_zone),
    });
    let rendered = match system::render(&text, &values) {
        Ok(r) => r,
        Err(e) => {
            let note = format!("the confirmation email could not be made: {e}");
            return End::Failed { note, expires_at };
        }
    };
    let email = Email::system(&settings, &name, &due.email, rendered.parts());
    match ctx.mailer.send(&email).await {
        Ok(posted) => End::Sent {
            sent: Sent::new(Kind::Confirmation, posted.message_id, &due.email)
                .queued_as(posted.queued_as)
                .to_contact(Some(due.contact_id)),
            version: text.version,
            expires_at,
        },
        Err(SendError::Transient(error)) => later(due, now, error),
        Err(SendError::Permanent(note)) => End::Failed { note, expires_at },
    }
}

/// Tried again after 1, 4, 9, 16 minutes; given up after [`ATTEMPTS`].
fn later(due: &Due, now: i64, error: String) -> End {
    if due.attempts >= ATTEMPTS {
        let expires_at = now + FIRST_LIFETIME_MS;
        return End::Failed {
            note: error,
            expires_at,
        };
    }
    End::Later {
        error,
        at: now + due.attempts * due.attempts * 60_000,
    }
}

/// Stores how the confirmation ended, trying again while the database is away
/// (for up to ten minutes — the lease is five: a stored "sent" is what keeps it
/// from going twice).
async fn store(ctx: &JobContext, id: i64, end: End) {
    let mut pause = Duration::from_millis(100);
    let started = std::time::Instant::now();
    loop {
        match write(ctx, id, &end).await {
            Ok(()) => return,
            Err(e) if started.elapsed() < Duration::from_secs(600) => {
                tracing::warn!(error = %e, "storing a confirmation email's outcome failed; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                tracing::error!(error = %e, "a confirmation email's outcome could not be stored");
                return;
            }
        }
    }
}

async fn write(ctx: &JobContext, id: i64, end: &End) -> Result<(), sqlx::Error> {
    let now = ctx.clock.now_ms();
    let failed = |state: &'static str, note: &str, expires: i64| {
        sqlx::query(
            "UPDATE pending_memberships SET email_state = $1, email_note = $2, lease_until = NULL, expires_at = $3 WHERE id = $4",
        )
        .bind(state)
        .bind(note.chars().take(500).collect::<String>())
        .bind(expires)
        .bind(id)
    };
    match end {
        End::Sent {
            sent,
            version,
            expires_at,
        } => {
            let mut tx = ctx.db.begin().await?;
            sqlx::query(
                "UPDATE pending_memberships SET email_state = 'sent', sent_at = $1, lease_until = NULL, \
                 expires_at = $2, email_version = $3, email_note = '' WHERE id = $4",
            )
            .bind(now)
            .bind(*expires_at)
            .bind(*version)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            let sql = crate::deliveries::insert_sql(1, 1, 2);
            let q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
            crate::deliveries::bind(q, None, sent).execute(&mut *tx).await?;
            tx.commit().await
        }
        End::Skipped { note, expires_at } => failed("skipped", note, *expires_at)
            .execute(ctx.db.write())
            .await
            .map(|_| ()),
        End::Failed { note, expires_at } => failed("failed", note, *expires_at)
            .execute(ctx.db.write())
            .await
            .map(|_| ()),
        End::Later { error, at } => sqlx::query(
            "UPDATE pending_memberships SET email_state = 'due', email_due_at = $1, email_note = $2, lease_until = NULL WHERE id = $3",
        )
        .bind(*at)
        .bind(error.chars().take(500).collect::<String>())
        .bind(id)
        .execute(ctx.db.write())
        .await
        .map(|_| ()),
    }
}
