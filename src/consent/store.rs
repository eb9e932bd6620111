//! Consent's store: subscriptions, withdrawals, confirmations and their
//! records, in the caller's transaction (see the folder's note).

use crate::links::ConfirmToken;

use crate::db::{Db, Tx};
use crate::events::catalogue::NewEvent;

use super::model::{Action, How, Method};

/// How long a pending membership waits when the sender has not said yet (it sets
/// the lifetime from Settings once it sends).
pub const FIRST_LIFETIME_MS: i64 = 7 * 86_400_000;
/// A contact asking again gets a new confirmation email at most this often.
pub const RESEND_AFTER_MS: i64 = 3_600_000;

// The memberships themselves, below every way in and out ([`subscribe`],
// [`unsubscribe`], [`confirm`]); tests and the demo data use them directly.

/// Adds a membership and records *Subscribed to Group (C)*; `false` when the
/// contact already was a member (nothing recorded).
pub async fn join_group(
    tx: &mut Tx,
    contact_id: i64,
    group_id: i64,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    join_group_at_depth(tx, contact_id, group_id, now_ms, 0).await
}

/// [`join_group`] by a run `depth` links down an automation chain.
pub async fn join_group_at_depth(
    tx: &mut Tx,
    contact_id: i64,
    group_id: i64,
    now_ms: i64,
    depth: u64,
) -> Result<bool, sqlx::Error> {
    let added = sqlx::query(
        "INSERT INTO group_members (group_id, contact_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(group_id)
    .bind(contact_id)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if added {
        crate::intake::events::record(
            tx,
            now_ms,
            &NewEvent::membership(contact_id, group_id, true).at_depth(depth),
        )
        .await?;
    }
    Ok(added)
}

/// Ends a membership and records *Unsubscribed from Group (C)*; `false` when the
/// contact was not a member.
pub async fn leave_group(
    tx: &mut Tx,
    contact_id: i64,
    group_id: i64,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    leave_group_at_depth(tx, contact_id, group_id, now_ms, 0).await
}

/// [`leave_group`] by a run `depth` links down an automation chain.
pub async fn leave_group_at_depth(
    tx: &mut Tx,
    contact_id: i64,
    group_id: i64,
    now_ms: i64,
    depth: u64,
) -> Result<bool, sqlx::Error> {
    let removed = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND contact_id = $2")
        .bind(group_id)
        .bind(contact_id)
        .execute(&mut **tx)
        .await?
        .rows_affected()
        == 1;
    if removed {
        crate::intake::events::record(
            tx,
            now_ms,
            &NewEvent::membership(contact_id, group_id, false).at_depth(depth),
        )
        .await?;
    }
    Ok(removed)
}

/// A group's name and whether it asks for double opt-in (non-zero), read in the
/// caller's transaction.
async fn group_of(tx: &mut Tx, group_id: i64) -> Result<Option<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT name, double_opt_in FROM contact_groups WHERE id = $1")
        .bind(group_id)
        .fetch_optional(&mut **tx)
        .await
}

/// Whether the contact is a member, read in the caller's transaction (what
/// [`crate::contacts::groups::is_member`] reads outside one).
async fn is_member(tx: &mut Tx, group_id: i64, contact_id: i64) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM group_members WHERE group_id = $1 AND contact_id = $2",
    )
    .bind(group_id)
    .bind(contact_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(n > 0)
}

/// What [`subscribe`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscribed {
    /// A member now (*Subscribed to Group (C)* recorded).
    Joined,
    /// Pending; a confirmation email is on its way.
    Pending,
    /// Pending already; `resent` when a new confirmation email is on its way
    /// (at most one an hour).
    StillPending { resent: bool },
    /// A member already: nothing changed.
    AlreadyMember,
    /// The group does not exist.
    NoGroup,
}

/// Wakes the confirmation sender of this process (others look every second).
pub static CONFIRMATIONS_DUE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Subscribes the contact to the group as `how` says, in the caller's
/// transaction: a member at once, or pending when the group asks for double
/// opt-in and consent was not asserted. Recorded in the consent records.
pub async fn subscribe(
    tx: &mut Tx,
    contact_id: i64,
    group_id: i64,
    how: &How,
    now_ms: i64,
) -> Result<Subscribed, sqlx::Error> {
    let group = group_of(tx, group_id).await?;
    let Some((group_name, double_opt_in)) = group else {
        return Ok(Subscribed::NoGroup);
    };
    if is_member(tx, group_id, contact_id).await? {
        return Ok(Subscribed::AlreadyMember);
    }
    let record = Record {
        group_id,
        group_name: &group_name,
        how,
        email_version: None,
    };
    if double_opt_in == 0 || how.asserted {
        // Consent given now: any request still waiting is answered by this.
        sqlx::query("DELETE FROM pending_memberships WHERE contact_id = $1 AND group_id = $2")
            .bind(contact_id)
            .bind(group_id)
            .execute(&mut **tx)
            .await?;
        join_group_at_depth(tx, contact_id, group_id, now_ms, how.depth).await?;
        record
            .write(tx, &[contact_id], Action::Subscribed, now_ms)
            .await?;
        return Ok(Subscribed::Joined);
    }
    let added = sqlx::query(
        "INSERT INTO pending_memberships (contact_id, group_id, requested_at, expires_at, method, detail, email_due_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $3) ON CONFLICT (contact_id, group_id) DO NOTHING",
    )
    .bind(contact_id)
    .bind(group_id)
    .bind(now_ms)
    .bind(now_ms + FIRST_LIFETIME_MS)
    .bind(how.method.code())
    .bind(&how.detail)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if added {
        record
            .write(tx, &[contact_id], Action::Requested, now_ms)
            .await?;
        CONFIRMATIONS_DUE.notify_one();
        return Ok(Subscribed::Pending);
    }
    // Asked again: one more email, unless one went (or is going) within the hour.
    let resent = sqlx::query(
        "UPDATE pending_memberships SET email_state = 'due', email_due_at = $1, attempts = 0, email_note = '' \
         WHERE contact_id = $2 AND group_id = $3 AND email_state NOT IN ('due', 'sending') \
         AND (sent_at IS NULL OR sent_at <= $4)",
    )
    .bind(now_ms)
    .bind(contact_id)
    .bind(group_id)
    .bind(now_ms - RESEND_AFTER_MS)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if resent {
        CONFIRMATIONS_DUE.notify_one();
    }
    Ok(Subscribed::StillPending { resent })
}

/// Takes the contact out of the group, or withdraws its pending request, in the
/// caller's transaction (*Unsubscribed from Group (C)* for a member). Whether
/// anything changed.
pub async fn unsubscribe(
    tx: &mut Tx,
    contact_id: i64,
    group_id: i64,
    how: &How,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let Some((group_name, _)) = group_of(tx, group_id).await? else {
        return Ok(false);
    };
    let withdrawn =
        sqlx::query("DELETE FROM pending_memberships WHERE contact_id = $1 AND group_id = $2")
            .bind(contact_id)
            .bind(group_id)
            .execute(&mut **tx)
            .await?
            .rows_affected()
            > 0;
    let left = leave_group_at_depth(tx, contact_id, group_id, now_ms, how.depth).await?;
    if withdrawn || left {
        let record = Record {
            group_id,
            group_name: &group_name,
            how,
            email_version: None,
        };
        record
            .write(tx, &[contact_id], Action::Withdrawn, now_ms)
            .await?;
    }
    Ok(withdrawn || left)
}

/// What [`confirm`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    /// A member now, of the group named.
    Joined(String),
    /// A member already (the link was used before, or staff added them).
    AlreadyMember(String),
    /// Nothing waits for this link: withdrawn, expired and removed, or the
    /// contact or group deleted.
    NothingPending,
}

/// Confirms the pending membership the link names, in the caller's transaction:
/// the contact becomes a member and *Subscribed to Group (C)* is recorded — now,
/// not before.
pub async fn confirm(
    tx: &mut Tx,
    token: &ConfirmToken,
    how: &How,
    now_ms: i64,
) -> Result<Confirmed, sqlx::Error> {
    let pending: Option<(i64, Option<i64>)> = sqlx::query_as(
        "SELECT p.id, p.email_version FROM pending_memberships p \
         WHERE p.id = $1 AND p.contact_id = $2 AND p.group_id = $3",
    )
    .bind(token.pending)
    .bind(token.contact)
    .bind(token.group)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((group_name, _)) = group_of(tx, token.group).await? else {
        return Ok(Confirmed::NothingPending);
    };
    let Some((id, email_version)) = pending else {
        return Ok(if is_member(tx, token.group, token.contact).await? {
            Confirmed::AlreadyMember(group_name)
        } else {
            Confirmed::NothingPending
        });
    };
    sqlx::query("DELETE FROM pending_memberships WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    join_group_at_depth(tx, token.contact, token.group, now_ms, 0).await?;
    let record = Record {
        group_id: token.group,
        group_name: &group_name,
        how,
        email_version,
    };
    record
        .write(tx, &[token.contact], Action::Confirmed, now_ms)
        .await?;
    Ok(Confirmed::Joined(group_name))
}

/// Removes the pending memberships whose link expired, each with its consent
/// record; how many.
pub async fn expire(db: &Db, now_ms: i64) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let mut tx = db.begin().await?;
        let due: Vec<(i64, i64, i64, String)> = sqlx::query_as(
            "SELECT p.id, p.contact_id, p.group_id, g.name FROM pending_memberships p \
             JOIN contact_groups g ON g.id = p.group_id WHERE p.expires_at <= $1 \
             AND p.email_state <> 'sending' ORDER BY p.id LIMIT 500",
        )
        .bind(now_ms)
        .fetch_all(&mut *tx)
        .await?;
        let how = How::new(Method::Expiry);
        for (id, contact_id, group_id, group_name) in &due {
            sqlx::query("DELETE FROM pending_memberships WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let record = Record {
                group_id: *group_id,
                group_name,
                how: &how,
                email_version: None,
            };
            record
                .write(&mut tx, &[*contact_id], Action::Expired, now_ms)
                .await?;
        }
        tx.commit().await?;
        total += due.len() as u64;
        if due.len() < 500 {
            return Ok(total);
        }
    }
}

/// A consent record about to be written, for one or many contacts.
struct Record<'a> {
    group_id: i64,
    group_name: &'a str,
    how: &'a How,
    email_version: Option<i64>,
}

impl Record<'_> {
    /// Writes the record for each of `contacts`, 100 to a statement.
    async fn write(
        &self,
        tx: &mut Tx,
        contacts: &[i64],
        action: Action,
        now_ms: i64,
    ) -> Result<(), sqlx::Error> {
        let backend = crate::db::Backend::of(tx);
        for chunk in contacts.chunks(100) {
            let sql = format!(
                "INSERT INTO consent_records (contact_id, group_id, group_name, action, method, detail, ip, \
                 user_agent, email_version, at) VALUES {}",
                crate::db::placeholders(chunk.len(), 10)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(backend.positional(sql)));
            for contact in chunk {
                q = q
                    .bind(*contact)
                    .bind(self.group_id)
                    .bind(self.group_name.to_string())
                    .bind(action.code())
                    .bind(self.how.method.code())
                    .bind(self.how.detail.clone())
                    .bind(self.how.ip.clone())
                    .bind(self.how.user_agent.clone())
                    .bind(self.email_version)
                    .bind(now_ms);
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }
}

/// What [`subscribe_many`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Many {
    /// Members now; the caller records their *Subscribed to Group (C)*.
    pub joined: Vec<i64>,
    /// Pending now, each owed a confirmation email.
    pub pending: i64,
}

/// [`subscribe`] for many contacts at once (an import's batch), with multi-row
/// statements; contacts already members or pending are left as they are. Unlike
/// [`subscribe`], the caller records the events of those who joined (with its
/// other events of the batch, so the runs they start are counted once).
pub async fn subscribe_many(
    tx: &mut Tx,
    group_id: i64,
    contacts: &[i64],
    how: &How,
    now_ms: i64,
) -> Result<Many, sqlx::Error> {
    const ROWS: usize = 100;
    let group = group_of(tx, group_id).await?;
    let Some((group_name, double_opt_in)) = group else {
        return Ok(Many::default());
    };
    let backend = crate::db::Backend::of(tx);
    let asks = double_opt_in != 0 && !how.asserted;
    let mut done = Many::default();
    for chunk in contacts.chunks(ROWS) {
        let sql = if asks {
            // Members stay members: only the others are asked.
            format!(
                "WITH v (g, c, t, e, m, d) AS (VALUES {}) \
                 INSERT INTO pending_memberships (group_id, contact_id, requested_at, email_due_at, expires_at, method, detail) \
                 SELECT v.g, v.c, v.t, v.t, v.e, v.m, v.d FROM v \
                 WHERE NOT EXISTS (SELECT 1 FROM group_members gm WHERE gm.group_id = v.g AND gm.contact_id = v.c) \
                 ON CONFLICT (contact_id, group_id) DO NOTHING RETURNING contact_id",
                crate::db::placeholders(chunk.len(), 6)
            )
        } else {
            format!(
                "INSERT INTO group_members (group_id, contact_id, created_at) VALUES {} \
                 ON CONFLICT DO NOTHING RETURNING contact_id",
                crate::db::placeholders(chunk.len(), 3)
            )
        };
        let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(backend.positional(sql)));
        for id in chunk {
            q = q.bind(group_id).bind(*id).bind(now_ms);
            if asks {
                q = q
                    .bind(now_ms + FIRST_LIFETIME_MS)
                    .bind(how.method.code())
                    .bind(how.detail.clone());
            }
        }
        let changed = q.fetch_all(&mut **tx).await?;
        if changed.is_empty() {
            continue;
        }
        let action = if asks {
            Action::Requested
        } else {
            // Consent asserted now answers any request still waiting.
            let sql = format!(
                "DELETE FROM pending_memberships WHERE group_id = $1 AND contact_id IN ({})",
                (2..changed.len() + 2)
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(group_id);
            for id in &changed {
                q = q.bind(*id);
            }
            q.execute(&mut **tx).await?;
            Action::Subscribed
        };
        let record = Record {
            group_id,
            group_name: &group_name,
            how,
            email_version: None,
        };
        record.write(tx, &changed, action, now_ms).await?;
        if asks {
            done.pending += changed.len() as i64;
        } else {
            done.joined.extend(changed);
        }
    }
    if done.pending > 0 {
        CONFIRMATIONS_DUE.notify_one();
    }
    Ok(done)
}

/// The group's name when the contact waits to confirm it; `None` otherwise.
pub async fn pending_for(
    db: &Db,
    contact_id: i64,
    group_id: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT g.name FROM pending_memberships p JOIN contact_groups g ON g.id = p.group_id \
         WHERE p.contact_id = $1 AND p.group_id = $2",
    )
    .bind(contact_id)
    .bind(group_id)
    .fetch_optional(db.read())
    .await
}
