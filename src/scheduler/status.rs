//! A run's status (one string per status, the same on both engines) and what
//! the run was for.

use serde::{Deserialize, Serialize};

/// A status as the SQL literal its statements compare with — `'pending'` for
/// `run_status!(Pending)` — written into the statement text, not bound: a bound
/// status would keep PostgreSQL from using the partial indexes on one status.
/// A test holds each literal to [`RunStatus::code`].
#[macro_export]
macro_rules! run_status {
    (Pending) => {
        "'pending'"
    };
    (Running) => {
        "'running'"
    };
    (Done) => {
        "'done'"
    };
    (Failed) => {
        "'failed'"
    };
    (Skipped) => {
        "'skipped'"
    };
    (Cancelled) => {
        "'cancelled'"
    };
    (Expired) => {
        "'expired'"
    };
}

/// Where a run is in its life. One string per status, the same on both engines.
/// A run is created *pending* (or *skipped*, when no allowed day is left) and
/// ends in one of *done*, *failed*, *skipped*, *cancelled* or *expired*; staff
/// may put a failed or expired run back to *pending*.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for its due time (or for the next attempt after a transient
    /// failure, with `last_error` set). Enters at enqueue, by staff's Retry, or
    /// when its lease is given back at shutdown; leaves when a worker claims it
    /// (→ running) or staff cancel it (→ cancelled).
    Pending,
    /// Claimed by a worker holding a lease. Leaves with the job's outcome, back to
    /// pending for another attempt, or to another worker when the lease expires.
    Running,
    /// The job did its work (sent the email, changed the contact). Final.
    Done,
    /// The job cannot do its work (a permanent refusal, or every attempt used).
    /// Leaves only by staff's Retry (→ pending).
    Failed,
    /// Nothing to do: the selection was not met, the contact is gone or opted out,
    /// a limit applies, or no allowed day was left. Final; the outcome says why.
    Skipped,
    /// Staff cancelled it while pending, or the reminder it was is no longer
    /// wanted. Final (a re-triggered reminder may reuse the row).
    Cancelled,
    /// It could not start in time for its work to mean anything (a password older
    /// than the limit in Settings). Leaves only by staff's Retry (→ pending).
    Expired,
}

impl RunStatus {
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Pending,
        RunStatus::Running,
        RunStatus::Done,
        RunStatus::Failed,
        RunStatus::Skipped,
        RunStatus::Cancelled,
        RunStatus::Expired,
    ];

    pub fn code(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Done => "done",
            RunStatus::Failed => "failed",
            RunStatus::Skipped => "skipped",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Expired => "expired",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Whether the run has ended (and may be pruned after the retention period).
    pub fn is_finished(self) -> bool {
        !matches!(self, RunStatus::Pending | RunStatus::Running)
    }
}

impl TryFrom<String> for RunStatus {
    type Error = String;
    fn try_from(code: String) -> Result<Self, String> {
        Self::from_code(&code).ok_or_else(|| format!("unknown run status {code:?}"))
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// What a run was for, as `job_runs.target_kind` stores it: a person (the kinds a
/// job may be for, an automation's target kind), or the
/// automation itself (a reminder, a message to fixed addresses), or an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunFor {
    Contact,
    SystemUser,
    Automation,
    Import,
}

impl RunFor {
    pub fn code(self) -> &'static str {
        match self {
            RunFor::Contact => "contact",
            RunFor::SystemUser => "system_user",
            RunFor::Automation => "automation",
            RunFor::Import => "import",
        }
    }
}

/// Whom a run was for, once resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub kind: RunFor,
    pub id: i64,
}

impl Target {
    /// The contact it is, if it is one.
    pub fn contact(&self) -> Option<i64> {
        (self.kind == RunFor::Contact).then_some(self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The literals the statements are written with are the codes stored.
    #[test]
    fn each_sql_literal_is_its_status_code() {
        let literals = [
            (RunStatus::Pending, run_status!(Pending)),
            (RunStatus::Running, run_status!(Running)),
            (RunStatus::Done, run_status!(Done)),
            (RunStatus::Failed, run_status!(Failed)),
            (RunStatus::Skipped, run_status!(Skipped)),
            (RunStatus::Cancelled, run_status!(Cancelled)),
            (RunStatus::Expired, run_status!(Expired)),
        ];
        assert_eq!(literals.len(), RunStatus::ALL.len());
        for (status, literal) in literals {
            assert_eq!(literal, format!("'{}'", status.code()));
        }
    }
}
