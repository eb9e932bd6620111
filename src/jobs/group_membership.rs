//! Subscribe Contact to Group (C) and Unsubscribe Contact from Group (C): the change
//! a person could make, made by an automation — with the same event (so automations
//! chain, one link deeper) and an audit entry, in one transaction. A contact
//! already (or not) in the group changes nothing and fires nothing.

use askama::Template;

use crate::automations::model::TargetKind;
use crate::consent::{self, How, Method, Subscribed};
use crate::events::catalogue::{EventType, Scope};
use crate::jobs::common;
use crate::jobs::registry::{Choices, Execution, Job, JobForm, settings_of};
use crate::scheduler::queue::{Claimed, Outcome};
use crate::state::JobContext;
use crate::web::form::{FieldErrors, Fields};

crate::job_form!(JoinForm, "automations/jobs/subscribe_to_group.html");
crate::job_form!(LeaveForm, "automations/jobs/unsubscribe_from_group.html");

/// One of the two membership jobs.
pub struct Membership {
    join: bool,
}

/// Subscribe Contact to Group (C).
pub const SUBSCRIBE: Membership = Membership { join: true };
/// Unsubscribe Contact from Group (C).
pub const UNSUBSCRIBE: Membership = Membership { join: false };

impl Membership {
    /// The form field naming the group (each job its own: both may be offered).
    fn field(&self) -> &'static str {
        if self.join {
            "join_group"
        } else {
            "leave_group"
        }
    }
}

/// The group a membership job joins or leaves.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct GroupSettings {
    pub group_id: i64,
}

impl Job for Membership {
    type Settings = GroupSettings;
    fn kind(&self) -> &'static str {
        if self.join {
            "subscribe_to_group"
        } else {
            "unsubscribe_from_group"
        }
    }
    fn label(&self) -> &'static str {
        if self.join {
            "Subscribe Contact to Group (C)"
        } else {
            "Unsubscribe Contact from Group (C)"
        }
    }
    fn scopes(&self) -> &'static [Scope] {
        &[Scope::Contact]
    }
    fn target(&self) -> Option<TargetKind> {
        Some(TargetKind::Contact)
    }
    fn form(&self, view: &JobForm<'_>) -> Result<String, askama::Error> {
        if self.join {
            JoinForm(view).render()
        } else {
            LeaveForm(view).render()
        }
    }
    fn parse(
        &self,
        _: EventType,
        f: &Fields,
        choices: &Choices,
    ) -> Result<GroupSettings, FieldErrors> {
        match f.get(self.field()).parse::<i64>() {
            Ok(id) if choices.has_group(id) => Ok(GroupSettings { group_id: id }),
            _ => Err(FieldErrors::from([(
                self.field(),
                "Choose a group.".to_string(),
            )])),
        }
    }
    fn fill(&self, settings: &GroupSettings, f: &mut Fields) {
        f.set(self.field(), settings.group_id.to_string());
    }
    fn explain(&self, settings: &GroupSettings, names: &Choices) -> String {
        let group = names.group_name(Some(settings.group_id));
        if self.join {
            format!("Adds the contact to {group}.")
        } else {
            format!("Removes the contact from {group}.")
        }
    }
    fn execute<'a>(&'a self, ctx: &'a JobContext, run: &'a Claimed) -> Execution<'a> {
        Box::pin(change(ctx, run, self.join))
    }
}

async fn change(ctx: &JobContext, run: &Claimed, join: bool) -> Outcome {
    let (a, event, to) = match common::live_target(ctx, run, TargetKind::Contact).await {
        Ok(parts) => parts,
        Err(outcome) => return outcome,
    };
    let target = Some(to.target);
    let group_id = match settings_of::<GroupSettings>(&a, target) {
        Ok(s) => s.group_id,
        Err(outcome) => return outcome,
    };
    let group = match crate::contacts::groups::find(&ctx.db, group_id).await {
        Ok(Some(g)) => g,
        Ok(None) => {
            return Outcome::Failed {
                target,
                error: "the group was deleted: choose another one in Define Job".into(),
            };
        }
        Err(e) => return Outcome::database(target, "loading the group", e),
    };
    let depth = event.chain_depth() + 1;
    let contact = to.target.id;
    let now = ctx.clock.now_ms();
    let how = How::new(Method::Automation)
        .detail(a.name.clone())
        .at_depth(depth);
    let changed: Result<Change, sqlx::Error> = async {
        let mut tx = ctx.db.begin().await?;
        let change = if join {
            match consent::subscribe(&mut tx, contact, group_id, &how, now).await? {
                Subscribed::Joined => Change::Done(format!("joined {}", group.name)),
                Subscribed::Pending | Subscribed::StillPending { resent: true } => {
                    Change::Done(format!("asked to confirm {} (double opt-in)", group.name))
                }
                Subscribed::StillPending { resent: false } => Change::Not(format!(
                    "already waiting for the confirmation of {}",
                    group.name
                )),
                Subscribed::AlreadyMember | Subscribed::NoGroup => {
                    Change::Not(format!("already a member of {}", group.name))
                }
            }
        } else if consent::unsubscribe(&mut tx, contact, group_id, &how, now).await? {
            Change::Done(format!("left {}", group.name))
        } else {
            Change::Not(format!("not a member of {}", group.name))
        };
        let (changed, detail) = match &change {
            Change::Done(d) => (true, d.as_str()),
            Change::Not(d) => (false, d.as_str()),
        };
        common::audit_and_commit(ctx, tx, now, &a, &to, detail, changed).await?;
        Ok(change)
    }
    .await;
    match changed {
        Ok(Change::Done(_)) => Outcome::done(to.target),
        Ok(Change::Not(reason)) => Outcome::skip(target, reason),
        Err(e) => Outcome::database(target, "changing the membership", e),
    }
}

/// What a run did to the membership, in the words of its audit entry or skip reason.
enum Change {
    Done(String),
    Not(String),
}
