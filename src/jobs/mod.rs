//! The job catalogue (SPEC §4): one closed enum. Adding a job is a new variant, its
//! form fields (a template partial), its executor and tests.

use serde::{Deserialize, Serialize};

use crate::events::{EventType, Scope};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobKind {
    SendNewPasswordToContact,
    SendNewPasswordToSystemUser,
}

impl JobKind {
    pub const ALL: [JobKind; 2] = [
        JobKind::SendNewPasswordToContact,
        JobKind::SendNewPasswordToSystemUser,
    ];

    pub fn code(self) -> &'static str {
        match self {
            JobKind::SendNewPasswordToContact => "send_new_password_to_contact",
            JobKind::SendNewPasswordToSystemUser => "send_new_password_to_system_user",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|j| j.code() == code)
    }

    pub fn label(self) -> &'static str {
        match self {
            JobKind::SendNewPasswordToContact => "Send New Password to Contact (C)",
            JobKind::SendNewPasswordToSystemUser => "Send New Password to System User (S)",
        }
    }

    pub fn scope(self) -> Scope {
        match self {
            JobKind::SendNewPasswordToContact => Scope::Contact,
            JobKind::SendNewPasswordToSystemUser => Scope::System,
        }
    }

    /// The jobs that combine with `event` (same scope).
    pub fn compatible_with(event: EventType) -> Vec<JobKind> {
        Self::ALL
            .into_iter()
            .filter(|j| j.scope() == event.scope())
            .collect()
    }

    /// Whether `event` names the target this job needs for Use Event Parameter.
    pub fn event_carries_target(self, event: EventType) -> bool {
        match self {
            JobKind::SendNewPasswordToContact => event.carries_contact(),
            JobKind::SendNewPasswordToSystemUser => event.carries_system_user(),
        }
    }
}

pub mod end_reminder;
mod send_new_password;

use crate::app::AppState;
use crate::scheduler::{Claimed, Outcome};

/// Executes one run of a job: re-checks the automation, calculates the selection
/// now, then does the job's work.
pub async fn execute(state: &AppState, run: &Claimed) -> Outcome {
    if run.job_kind == end_reminder::KIND {
        return end_reminder::execute(state, run).await;
    }
    match JobKind::from_code(&run.job_kind) {
        Some(kind) => send_new_password::execute(state, run, kind).await,
        None => Outcome::Failed {
            target: None,
            error: format!("unknown job {:?}", run.job_kind),
        },
    }
}
