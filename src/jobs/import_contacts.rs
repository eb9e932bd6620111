//! The CSV import as a queued run: durable like every other run, so an import cut
//! short by a restart is taken up again where its last batch ended.

use std::time::Duration;

use crate::contacts::import::store::{self, Ended, JOB_KIND};
use crate::events::catalogue::Scope;
use crate::jobs::registry::{Choices, Execution, Job};
use crate::scheduler::queue::{Claimed, Outcome, Target};
use crate::state::JobContext;
use crate::types::ImportId;

/// Imports an uploaded file (Herald's own run, never offered in Define Job).
pub struct ImportContacts;

impl Job for ImportContacts {
    type Settings = ();
    fn kind(&self) -> &'static str {
        JOB_KIND
    }
    fn label(&self) -> &'static str {
        "Import contacts (S)"
    }
    fn scopes(&self) -> &'static [Scope] {
        &[Scope::System]
    }
    fn offered(&self) -> bool {
        false
    }
    fn explain(&self, _: &(), _names: &Choices) -> String {
        "Imports an uploaded CSV file into the contacts.".into()
    }
    /// A million rows take about a minute; the lease, renewed meanwhile, is what
    /// detects a crash.
    fn timeout(&self, _default: Duration) -> Duration {
        Duration::from_secs(6 * 3600)
    }
    fn execute<'a>(&'a self, ctx: &'a JobContext, run: &'a Claimed) -> Execution<'a> {
        Box::pin(async move {
            // An import's run carries the import's id where others carry an event's.
            let id = ImportId(run.event_id.0);
            let target = Target {
                kind: crate::scheduler::queue::RunFor::Import,
                id: id.0,
            };
            match store::run(&ctx.db, ctx.clock.as_ref(), id).await {
                Ok(Ended::Done) => Outcome::done(target),
                Ok(Ended::Failed(error)) => Outcome::Failed {
                    target: Some(target),
                    error,
                },
                Ok(Ended::AlreadyOver) => Outcome::skip(Some(target), "the import had ended"),
                Err(e) => Outcome::database(Some(target), "importing the file", e),
            }
        })
    }
}
