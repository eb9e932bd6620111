//! Add Contact to Blacklist (C): the contact's address goes on the suppression
//! list (the suite's system blacklist), so no prepared message reaches it again —
//! also after the contact is deleted and created anew. Audited as a change by the
//! automation; an address already on the list changes nothing.

use askama::Template;

use crate::automations::model::TargetKind;
use crate::events::catalogue::Scope;
use crate::jobs::common;
use crate::jobs::registry::{Choices, Execution, Job, JobForm};
use crate::scheduler::queue::{Claimed, Outcome};
use crate::state::JobContext;
use crate::suppressions::{self, Reason};
use crate::types::EmailAddress;

crate::job_form!(Form, "automations/jobs/add_contact_to_blacklist.html");

/// Add Contact to Blacklist (C).
pub struct AddToBlacklist;

impl Job for AddToBlacklist {
    type Settings = ();
    fn kind(&self) -> &'static str {
        "add_contact_to_blacklist"
    }
    fn label(&self) -> &'static str {
        "Add Contact to Blacklist (C)"
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
        "Puts the contact's address on the suppression list: no prepared message goes to it again."
            .into()
    }
    fn execute<'a>(&'a self, ctx: &'a JobContext, run: &'a Claimed) -> Execution<'a> {
        Box::pin(add(ctx, run))
    }
}

async fn add(ctx: &JobContext, run: &Claimed) -> Outcome {
    let (a, _event, to) = match common::live_target(ctx, run, TargetKind::Contact).await {
        Ok(parts) => parts,
        Err(outcome) => return outcome,
    };
    let target = Some(to.target);
    let Ok(address) = EmailAddress::parse(&to.email) else {
        return Outcome::skip(target, "the contact's address is not one");
    };
    let now = ctx.clock.now_ms();
    let source = format!("automation: {}", a.name);
    let added: Result<bool, sqlx::Error> = async {
        let mut tx = ctx.db.begin().await?;
        let added = suppressions::add(&mut tx, &address, Reason::Manual, &source, "", now).await?;
        let detail = "added to the suppression list";
        common::audit_and_commit(ctx, tx, now, &a, &to, detail, added).await
    }
    .await;
    match added {
        Ok(true) => Outcome::done(to.target),
        Ok(false) => Outcome::skip(target, "already on the suppression list"),
        Err(e) => Outcome::database(target, "adding the address to the suppression list", e),
    }
}
