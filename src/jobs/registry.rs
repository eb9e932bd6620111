//! A job is a type implementing [`Job`]; the [`Registry`] lists the jobs Herald
//! offers. The wizard, the overview, intake and the worker know jobs only through
//! the registry: adding a job is one file, its form partial and one registry line.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::users::SystemUser;
use crate::automations::model::TargetKind;
use crate::events::catalogue::{EventType, Scope};
use crate::links::LinkSigner;
use crate::scheduler::queue::{Claimed, Outcome};
use crate::state::JobContext;
use crate::web::form::{FieldErrors, Fields};

/// What a job's execution returns.
pub type Execution<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// What Define Job offers to choose from: system users, groups and messages (by id
/// and name).
#[derive(Debug, Clone, Default)]
pub struct Choices {
    pub users: Vec<SystemUser>,
    pub groups: Vec<(i64, String)>,
    pub messages: Vec<(i64, String)>,
    /// The hosts an admin allowed webhooks to reach on a private network.
    pub webhook_hosts: Vec<String>,
}

impl Choices {
    /// Everything Define Job offers, as stored now.
    pub async fn load(db: &crate::db::Db) -> Result<Self, sqlx::Error> {
        Ok(Self {
            users: crate::auth::users::list(db).await?,
            groups: crate::contacts::groups::list(db)
                .await?
                .into_iter()
                .map(|g| (g.id, g.name))
                .collect(),
            messages: crate::messages::store::list(db)
                .await?
                .into_iter()
                .map(|(m, _)| (m.id, m.name))
                .collect(),
            webhook_hosts: crate::settings::Settings::load(db).await?.webhook_hosts(),
        })
    }
    pub fn has_group(&self, id: i64) -> bool {
        self.groups.iter().any(|(g, _)| *g == id)
    }
    pub fn has_message(&self, id: i64) -> bool {
        self.messages.iter().any(|(m, _)| *m == id)
    }
    /// A group's name in words: `"Newsletter"`, or "a deleted group".
    pub fn group_name(&self, id: Option<i64>) -> String {
        named(&self.groups, id, "a deleted group")
    }
    /// A message's name in words: `"Welcome"`, or "a deleted message".
    pub fn message_name(&self, id: Option<i64>) -> String {
        named(&self.messages, id, "a deleted message")
    }
}

fn named(list: &[(i64, String)], id: Option<i64>, gone: &str) -> String {
    id.and_then(|id| list.iter().find(|(i, _)| *i == id))
        .map_or_else(|| gone.to_string(), |(_, n)| format!("\"{n}\""))
}

/// What a job's Define Job partial may show: the form as entered, its messages, and
/// the choices pages offer.
pub struct JobForm<'a> {
    pub f: &'a Fields,
    pub errors: &'a FieldErrors,
    pub choices: &'a Choices,
    pub event: EventType,
}

impl JobForm<'_> {
    pub fn v(&self, name: &str) -> &str {
        self.f.get(name)
    }
    pub fn error(&self, field: &str) -> Option<&String> {
        self.errors.get(field)
    }
}

/// Declares the askama template of a job's Define Job partial: a struct over
/// [`JobForm`] (its methods and fields are reachable from the template).
#[macro_export]
macro_rules! job_form {
    ($name:ident, $path:literal) => {
        #[derive(askama::Template)]
        #[template(path = $path)]
        struct $name<'a>(&'a $crate::jobs::registry::JobForm<'a>);

        impl<'a> std::ops::Deref for $name<'a> {
            type Target = $crate::jobs::registry::JobForm<'a>;
            fn deref(&self) -> &Self::Target {
                self.0
            }
        }
    };
}

/// One kind of job.
pub trait Job: Send + Sync + 'static {
    /// The stable code stored on automations and runs.
    fn kind(&self) -> &'static str;
    /// The name staff read, with its scope, e.g. "Send New Password to Contact (C)".
    fn label(&self) -> &'static str;
    /// The scopes of the events it combines with; a job may serve both.
    fn scopes(&self) -> &'static [Scope];
    /// Offered in Define Job. Herald's own runs (the end reminder) are not.
    fn offered(&self) -> bool {
        true
    }
    /// Whom it is for, if anyone: Define Job asks for one, or Use Event Parameter.
    fn target(&self) -> Option<TargetKind> {
        None
    }
    /// Whether it combines with `event`.
    fn combines_with(&self, event: EventType) -> bool {
        self.scopes().contains(&event.scope())
    }
    /// Its Define Job fields (the partial), as HTML; none by default.
    fn form(&self, _view: &JobForm<'_>) -> Result<String, askama::Error> {
        Ok(String::new())
    }
    /// Parses its own fields into the configuration stored on the automation.
    fn parse(
        &self,
        _event: EventType,
        _f: &Fields,
        _choices: &Choices,
    ) -> Result<serde_json::Value, FieldErrors> {
        Ok(serde_json::Value::Null)
    }
    /// Puts a stored configuration back into the form's fields.
    fn fill(&self, _config: &serde_json::Value, _f: &mut Fields) {}
    /// What it would do, in words, without doing it; `names` names the groups and
    /// messages its settings choose.
    fn explain(&self, _config: &serde_json::Value, _names: &Choices) -> String {
        self.label().to_string()
    }
    /// The prepared message it sends, if it sends one (the automation's page links
    /// it).
    fn message(&self, _config: &serde_json::Value) -> Option<i64> {
        None
    }
    /// A secret its configuration makes (a signing key, say), shown to staff once
    /// when Define Job is saved with a new one; `None` for jobs without one.
    fn secret(&self, _config: &serde_json::Value, _keys: &LinkSigner) -> Option<String> {
        None
    }
    /// The longest one attempt may take (`default`: the configured job timeout).
    fn timeout(&self, default: Duration) -> Duration {
        default
    }
    /// Executes one claimed run.
    fn execute<'a>(&'a self, ctx: &'a JobContext, run: &'a Claimed) -> Execution<'a>;
}

/// The jobs Herald knows, by kind.
#[derive(Clone, Default)]
pub struct Registry {
    jobs: BTreeMap<&'static str, Arc<dyn Job>>,
}

impl Registry {
    /// This registry and `job` (replacing one of the same kind).
    pub fn with(mut self, job: impl Job) -> Self {
        self.jobs.insert(job.kind(), Arc::new(job));
        self
    }

    pub fn get(&self, kind: &str) -> Option<&dyn Job> {
        self.jobs.get(kind).map(|j| j.as_ref())
    }

    /// The label of `kind`, or a dash for none.
    pub fn label(&self, kind: Option<&str>) -> &'static str {
        kind.and_then(|k| self.get(k)).map_or("—", Job::label)
    }

    /// The jobs Define Job offers for `event`, in registry order.
    pub fn offered_for(&self, event: EventType) -> Vec<&dyn Job> {
        self.jobs
            .values()
            .map(|j| j.as_ref())
            .filter(|j| j.offered() && j.combines_with(event))
            .collect()
    }

    /// Whether a stored job (and its target) still fits `event`.
    pub fn fits(&self, kind: &str, uses_event_parameter: bool, event: EventType) -> bool {
        self.get(kind).is_some_and(|job| {
            job.combines_with(event)
                && (!uses_event_parameter || job.target().is_none_or(|t| t.carried_by(event)))
        })
    }
}
