//! Subscribe Contact to Group (C) and Unsubscribe Contact from Group (C): the change
//! a person could make, made by an automation — with the same event (so automations
//! chain, one link deeper) and an audit entry, in one transaction. A contact
//! already (or not) in the group changes nothing and fires nothing.

use askama::Template;

use crate::audit::{self, Action, Actor};
use crate::automations::model::TargetKind;
use crate::events::catalogue::{EventType, Scope};
use crate::jobs::common;
use crate::jobs::registry::{Choices, Execution, Job, JobForm};
use crate::scheduler::queue::{Claimed, Outcome};
use crate::state::JobContext;
use crate::web::form::{FieldErrors, Fields};

crate::job_form!(JoinForm, "automations/jobs/subscribe_to_group.html");
crate::job_form!(LeaveForm, "automations/jobs/unsubscribe_from_group.html");

fn parse_group(
    field: &'static str,
    f: &Fields,
    choices: &Choices,
) -> Result<serde_json::Value, FieldErrors> {
    match f.get(field).parse::<i64>() {
        Ok(id) if choices.has_group(id) => Ok(serde_json::json!({ "group_id": id })),
        _ => Err(FieldErrors::from([(field, "Choose a group.".to_string())])),
    }
}

/// Subscribe Contact to Group (C).
pub struct Subscribe;

impl Job for Subscribe {
    fn kind(&self) -> &'static str {
        "subscribe_to_group"
    }
    fn label(&self) -> &'static str {
        "Subscribe Contact to Group (C)"
    }
    fn scopes(&self) -> &'static [Scope] {
        &[Scope::Contact]
    }
    fn target(&self) -> Option<TargetKind> {
        Some(TargetKind::Contact)
    }
    fn form(&self, view: &JobForm<'_>) -> Result<String, askama::Error> {
        JoinForm(view).render()
    }
    fn parse(
        &self,
        _: EventType,
        f: &Fields,
        choices: &Choices,
    ) -> Result<serde_json::Value, FieldErrors> {
        parse_group("join_group", f, choices)
    }
    fn fill(&self, config: &serde_json::Value, f: &mut Fields) {
        f.set("join_group", config["group_id"].to_string());
    }
    fn explain(&self, _config: &serde_json::Value) -> String {
        "Adds the contact to the group.".into()
    }
    fn execute<'a>(&'a self, ctx: &'a JobContext, run: &'a Claimed) -> Execution<'a> {
        Box::pin(change(ctx, run, true))
    }
}

/// Unsubscribe Contact from Group (C).
pub struct Unsubscribe;

impl Job for Unsubscribe {
    fn kind(&self) -> &'static str {
        "unsubscribe_from_group"
    }
    fn label(&self) -> &'static str {
        "Unsubscribe Contact from Group (C)"
    }
    fn scopes(&self) -> &'static [Scope] {
        &[Scope::Contact]
    }
    fn target(&self) -> Option<TargetKind> {
        Some(TargetKind::Contact)
    }
    fn form(&self, view: &JobForm<'_>) -> Result<String, askama::Error> {
        LeaveForm(view).render()
    }
    fn parse(
        &self,
        _: EventType,
        f: &Fields,
        choices: &Choices,
    ) -> Result<serde_json::Value, FieldErrors> {
        parse_group("leave_group", f, choices)
    }
    fn fill(&self, config: &serde_json::Value, f: &mut Fields) {
        f.set("leave_group", config["group_id"].to_string());
    }
    fn explain(&self, _config: &serde_json::Value) -> String {
        "Removes the contact from the group.".into()
    }
    fn execute<'a>(&'a self, ctx: &'a JobContext, run: &'a Claimed) -> Execution<'a> {
        Box::pin(change(ctx, run, false))
    }
}

async fn change(ctx: &JobContext, run: &Claimed, join: bool) -> Outcome {
    let (a, event, to) = match common::live_target(ctx, run, TargetKind::Contact).await {
        Ok(parts) => parts,
        Err(outcome) => return outcome,
    };
    let target = Some(to.target);
    let Some(group_id) = a.job_config["group_id"].as_i64() else {
        return Outcome::Failed {
            target,
            error: "no group is chosen in Define Job".into(),
        };
    };
    let group = match crate::contacts::groups::find(&ctx.db, group_id).await {
        Ok(Some(g)) => g,
        Ok(None) => {
            return Outcome::Failed {
                target,
                error: "the group was deleted: choose another one in Define Job".into(),
            };
        }
        Err(e) => return Outcome::database(target, e),
    };
    let now = ctx.clock.now_ms();
    let depth = event.chain_depth() + 1;
    let changed: Result<bool, sqlx::Error> = async {
        let mut tx = ctx.db.begin().await?;
        let changed = if join {
            crate::contacts::join_group_at_depth(&mut tx, to.target.id, group_id, now, depth)
                .await?
        } else {
            crate::contacts::leave_group_at_depth(&mut tx, to.target.id, group_id, now, depth)
                .await?
        };
        if changed {
            let entry = audit::Entry {
                actor: &Actor::named(format!("automation: {}", a.name)),
                action: Action::ContactChangedByAutomation,
                target: &to.email,
                detail: &format!("{} {}", if join { "joined" } else { "left" }, group.name),
                ip: "",
            };
            audit::record(&mut tx, now, entry).await?;
        }
        ctx.db.commit(tx).await?;
        Ok(changed)
    }
    .await;
    match changed {
        Ok(true) => Outcome::Done {
            target: to.target,
            message_id: None,
        },
        Ok(false) => Outcome::skip(
            target,
            if join {
                format!("already a member of {}", group.name)
            } else {
                format!("not a member of {}", group.name)
            },
        ),
        Err(e) => Outcome::database(target, e),
    }
}
