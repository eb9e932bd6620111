//! Steps most jobs take before their own work: the automation must still be active
//! and inside its time frame, the event must still exist, and the target is
//! resolved now — the selection is calculated when the job executes.

use crate::automations::model::{
    Automation, Condition, State, Status, Target as JobTarget, TargetKind,
};
use crate::contacts::Contact;
use crate::intake::events::Event;
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

/// A run's event (bound as `$2`) and the contact it names, read in the statement
/// that reads the run's automation (`automations::store::find_joined`).
const EVENT_AND_CONTACT: (&str, &str) = (
    "e.id AS e_id, e.type AS e_type, e.contact_id AS e_contact_id, \
     e.system_user_id AS e_system_user_id, e.group_id AS e_group_id, e.params AS e_params, \
     e.occurred_at AS e_occurred_at, c.id AS c_id, c.email AS c_email, \
     c.first_name AS c_first_name, c.last_name AS c_last_name, c.status AS c_status, \
     c.opted_out_at AS c_opted_out_at, c.created_at AS c_created_at, c.updated_at AS c_updated_at",
    "LEFT JOIN events e ON e.id = $2 LEFT JOIN contacts c ON c.id = e.contact_id",
);

/// The columns of [`EVENT_AND_CONTACT`]: all empty when the event no longer
/// exists, the contact's when it names none or that contact no longer exists.
#[derive(sqlx::FromRow)]
struct EventAndContact {
    e_id: Option<crate::types::EventId>,
    e_type: Option<String>,
    e_contact_id: Option<i64>,
    e_system_user_id: Option<i64>,
    e_group_id: Option<i64>,
    e_params: Option<String>,
    e_occurred_at: Option<i64>,
    c_id: Option<i64>,
    c_email: Option<String>,
    c_first_name: Option<String>,
    c_last_name: Option<String>,
    c_status: Option<String>,
    c_opted_out_at: Option<i64>,
    c_created_at: Option<i64>,
    c_updated_at: Option<i64>,
}

impl EventAndContact {
    /// The event, if it still exists, and its contact, if that still exists.
    fn parts(self) -> Option<(Event, Option<Contact>)> {
        let event = Event {
            id: self.e_id?,
            kind: self.e_type?,
            contact_id: self.e_contact_id,
            system_user_id: self.e_system_user_id,
            group_id: self.e_group_id,
            params: self.e_params?,
            occurred_at: self.e_occurred_at?,
        };
        let contact = match (self.c_id, self.c_email, self.c_status) {
            (Some(id), Some(email), Some(status)) => Some(Contact {
                id,
                email,
                first_name: self.c_first_name.unwrap_or_default(),
                last_name: self.c_last_name.unwrap_or_default(),
                status: crate::contacts::Status::from_code(&status),
                opted_out_at: self.c_opted_out_at,
                created_at: self.c_created_at.unwrap_or_default(),
                updated_at: self.c_updated_at.unwrap_or_default(),
            }),
            _ => None,
        };
        Some((event, contact))
    }
}

/// The run's automation, if it is still active and inside its time frame, and the
/// event that caused the run (with the contact it names) — read in one statement.
pub async fn live_run(ctx: &JobContext, run: &Claimed) -> Result<(Automation, Caused), Outcome> {
    let (columns, joins) = EVENT_AND_CONTACT;
    let found = crate::automations::store::find_joined::<EventAndContact>(
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
        Err(e) => {
            return Err(Outcome::database(
                None,
                "loading the automation and its event",
                e,
            ));
        }
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
    .unwrap_or_else(|e| Err(Outcome::database(None, "resolving the target", e)))
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
        .unwrap_or_else(|e| Err(Outcome::database(None, "resolving the event's contact", e)))
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
        kind: crate::scheduler::queue::RunFor::Contact,
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
        kind: crate::scheduler::queue::RunFor::SystemUser,
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
