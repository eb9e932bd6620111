//! Deactivate Contact (C): the contact is blocked — no job acts on them again and
//! they cannot sign in to the preference center — as staff would block them on the
//! contact's page. Audited as a change by the automation.

use askama::Template;

use crate::automations::model::TargetKind;
use crate::contacts::{self, Status};
use crate::events::catalogue::Scope;
use crate::jobs::common;
use crate::jobs::registry::{Choices, Execution, Job, JobForm};
use crate::scheduler::queue::{Claimed, Outcome};
use crate::state::JobContext;

crate::job_form!(Form, "automations/jobs/deactivate_contact.html");

/// Deactivate Contact (C).
pub struct DeactivateContact;

impl Job for DeactivateContact {
    type Settings = ();
    fn kind(&self) -> &'static str {
        "deactivate_contact"
    }
    fn label(&self) -> &'static str {
        "Deactivate Contact (C)"
    }
    fn scopes(&self) -> &'static [Scope] {
        &[Scope::Contact]
    }
    fn target(&self) -> Option<TargetKind> {
        Some(TargetKind::Contact)
    }
    fn form(&self, view: &JobForm<'_>) -> Result<String, askama::Error> {
        Form(view).render()
    }
    fn explain(&self, _: &(), _names: &Choices) -> String {
        "Blocks the contact: no job acts on them again, and they cannot sign in to the preference center."
            .into()
    }
    fn execute<'a>(&'a self, ctx: &'a JobContext, run: &'a Claimed) -> Execution<'a> {
        Box::pin(deactivate(ctx, run))
    }
}

async fn deactivate(ctx: &JobContext, run: &Claimed) -> Outcome {
    // A blocked contact is no target: the run is skipped before it gets here.
    let (a, _event, to) = match common::live_target(ctx, run, TargetKind::Contact).await {
        Ok(parts) => parts,
        Err(outcome) => return outcome,
    };
    let target = Some(to.target);
    let now = ctx.clock.now_ms();
    let blocked: Result<bool, sqlx::Error> = async {
        let mut tx = ctx.db.begin().await?;
        contacts::set_status(&mut tx, to.target.id, Status::Blocked, now).await?;
        common::audit_and_commit(ctx, tx, now, &a, &to, "blocked", true).await
    }
    .await;
    match blocked {
        Ok(_) => Outcome::done(to.target),
        Err(e) => Outcome::database(target, "blocking the contact", e),
    }
}
