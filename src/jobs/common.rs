//! Steps most jobs take before their own work: the automation must still be active
//! and inside its time frame, the event must still exist, and the target is
//! resolved now — the selection is calculated when the job executes (SPEC §6).

use crate::automations::model::{
    Automation, Condition, State, Status, Target as JobTarget, TargetKind,
};
use crate::contacts::Contact;
use crate::events::store::Event;
use crate::scheduler::queue::{Claimed, Outcome, Target};
use crate::state::JobContext;

/// The person a job is for, once resolved.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub target: Target,
    pub email: String,
    pub name: String,
}

/// The event that caused a run, with the contact it names as that contact was
/// read in the same statement: resolving it as the target needs no second look-up.
pub struct Caused {
    pub event: Event,
    contact: Option<Contact>,
}

/// The run's automation, if it is still active and inside its time frame, and the
/// event that caused the run (with the contact it names) — read in one statement.
pub async fn live_run(ctx: &JobContext, run: &Claimed) -> Result<(Automation, Caused), Outcome> {
    let (columns, joins) = crate::contacts::EVENT_AND_CONTACT;
    let found = crate::automations::store::find_joined::<crate::contacts::EventAndContact>(
        &ctx.db,
        run.automation_id,
        columns,
        joins,
        run.event_id.0,
    )
    .await;
    let (a, caused) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return Err(Outcome::skip(None, "the automation was deleted")),
        Err(e) => return Err(Outcome::database(None, e)),
    };
    if a.state != State::Active {
        return Err(Outcome::skip(None, "the automation is not active"));
    }
    if a.status(ctx.clock.now_ms()) != Status::Running {
        return Err(Outcome::skip(None, "outside the automation's time frame"));
    }
    let Some((event, contact)) = caused.parts() else {
        return Err(Outcome::skip(None, "the event no longer exists"));
    };
    Ok((a, Caused { event, contact }))
}

/// Ends a change a job made to the contact `to` in `tx`: when it `changed`
/// anything, the audit entry (`detail`, by automation `a`) joins it; then commits.
/// Returns `changed`.
pub async fn audit_and_commit(
    ctx: &JobContext,
    mut tx: crate::db::Tx,
    now_ms: i64,
    a: &Automation,
    to: &Recipient,
    detail: &str,
    changed: bool,
) -> Result<bool, sqlx::Error> {
    if changed {
        let entry = crate::audit::Entry {
            actor: &crate::audit::Actor::named(format!("automation: {}", a.name)),
            action: crate::audit::Action::ContactChangedByAutomation,
            target: &to.email,
            detail,
            ip: "",
        };
        crate::audit::record(&mut tx, now_ms, entry).await?;
    }
    ctx.db.commit(tx).await?;
    Ok(changed)
}

/// The three steps at once: the live automation, its event, and the target of
/// `kind` resolved and selected now.
pub async fn live_target(
    ctx: &JobContext,
    run: &Claimed,
    kind: TargetKind,
) -> Result<(Automation, Event, Recipient), Outcome> {
    let (a, caused) = live_run(ctx, run).await?;
    let to = resolve(ctx, &a, kind, &caused).await?;
    Ok((a, caused.event, to))
}

/// Resolves the target of `a`'s job now: the fixed one or the event's, which must
/// exist, be active and meet the automation's selection.
pub async fn resolve(
    ctx: &JobContext,
    a: &Automation,
    kind: TargetKind,
    caused: &Caused,
) -> Result<Recipient, Outcome> {
    match kind {
        TargetKind::Contact => {
            let id = match a.target {
                Some(JobTarget::EventParameter) => caused.event.contact_id,
                Some(JobTarget::Contact(id)) => Some(id),
                _ => None,
            };
            resolve_contact(ctx, a, id, caused).await
        }
        TargetKind::SystemUser => resolve_system_user(ctx, a, &caused.event).await,
    }
    .unwrap_or_else(|e| Err(Outcome::database(None, e)))
}

/// The contact the event is about, resolved like a target (it must exist, be
/// active and meet the selection), for jobs that have no target of their own.
pub async fn event_contact(
    ctx: &JobContext,
    a: &Automation,
    caused: &Caused,
) -> Result<Recipient, Outcome> {
    resolve_contact(ctx, a, caused.event.contact_id, caused)
        .await
        .unwrap_or_else(|e| Err(Outcome::database(None, e)))
}

async fn resolve_contact(
    ctx: &JobContext,
    a: &Automation,
    id: Option<i64>,
    caused: &Caused,
) -> Result<Result<Recipient, Outcome>, sqlx::Error> {
    let Some(id) = id else {
        return Ok(Err(Outcome::skip(None, "the event names no contact")));
    };
    let target = Target {
        kind: "contact",
        id,
    };
    let skip = |reason: String| Ok(Err(Outcome::skip(Some(target), reason)));
    let known = caused.contact.as_ref().filter(|c| c.id == id).cloned();
    let found = match known {
        Some(c) => Some(c),
        None => crate::contacts::find(&ctx.db, id).await?,
    };
    let Some(contact) = found else {
        return skip("the contact no longer exists".into());
    };
    if contact.is_blocked() {
        return skip("the contact is blocked".into());
    }
    for condition in &a.selection {
        if !contact_meets(&ctx.db, condition, id).await? {
            return skip(format!(
                "the contact does not meet the selection ({})",
                describe(&ctx.db, condition).await?
            ));
        }
    }
    Ok(Ok(Recipient {
        target,
        name: contact.name(),
        email: contact.email,
    }))
}

async fn resolve_system_user(
    ctx: &JobContext,
    a: &Automation,
    event: &Event,
) -> Result<Result<Recipient, Outcome>, sqlx::Error> {
    let id = match a.target {
        Some(JobTarget::EventParameter) => event.system_user_id,
        Some(JobTarget::SystemUser(id)) => Some(id),
        _ => None,
    };
    let Some(id) = id else {
        return Ok(Err(Outcome::skip(None, "the event names no system user")));
    };
    let target = Target {
        kind: "system_user",
        id,
    };
    let skip = |reason: String| Ok(Err(Outcome::skip(Some(target), reason)));
    let Some(user) = crate::auth::users::find(&ctx.db, id).await? else {
        return skip("the system user no longer exists".into());
    };
    if user.disabled {
        return skip("the system user is disabled".into());
    }
    for condition in &a.selection {
        if !user_meets(condition, user.role.code()) {
            return skip(format!(
                "the system user does not meet the selection ({})",
                describe(&ctx.db, condition).await?
            ));
        }
    }
    Ok(Ok(Recipient {
        target,
        name: user.name,
        email: user.email,
    }))
}

/// Whether contact `id` meets `condition` now (a role condition is for system
/// users and does not apply). The scheduler and Try it both ask here.
pub async fn contact_meets(
    db: &crate::db::Db,
    condition: &Condition,
    id: i64,
) -> Result<bool, sqlx::Error> {
    Ok(match condition {
        Condition::MemberOf { group_id } => {
            crate::contacts::groups::is_member(db, *group_id, id).await?
        }
        Condition::AttributeEquals { name, value } => {
            crate::contacts::attribute(db, id, name).await?.as_deref() == Some(value.as_str())
        }
        Condition::RoleIs { .. } => true,
    })
}

/// Whether a system user with `role` meets `condition` (contact conditions do
/// not apply).
pub fn user_meets(condition: &Condition, role: &str) -> bool {
    match condition {
        Condition::RoleIs { role: wanted } => wanted == role,
        _ => true,
    }
}

/// A Define Selection condition in words, the group by its name.
pub async fn describe(db: &crate::db::Db, c: &Condition) -> Result<String, sqlx::Error> {
    Ok(match c {
        Condition::MemberOf { group_id } => {
            match crate::contacts::groups::find(db, *group_id).await? {
                Some(g) => format!("member of {}", g.name),
                None => "member of a deleted group".to_string(),
            }
        }
        Condition::AttributeEquals { name, value } => format!("attribute {name} is {value:?}"),
        Condition::RoleIs { role } => format!("role {role}"),
    })
}
