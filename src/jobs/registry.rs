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
use serde::Deserialize;

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
                .map(|m| (m.id, m.name))
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

/// A limit Herald puts on a job's runs per person, which Try it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Password emails per contact per hour (Settings).
    PasswordsPerHour,
    /// Prepared messages per contact per 24 hours (Settings).
    MessagesPerDay,
}

/// One kind of job, with its own typed settings: what Define Job's fields of the
/// job parse into, stored on the automation as JSON and read back into the same
/// type — no other code reads them.
pub trait Job: Send + Sync + 'static {
    /// Its settings: `()` for a job without fields (the default is what a job
    /// without fields of its own parses into).
    type Settings: serde::Serialize + serde::de::DeserializeOwned + Default + Send + Sync;
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
    /// Parses its own fields into its settings.
    fn parse(
        &self,
        _event: EventType,
        _f: &Fields,
        _choices: &Choices,
    ) -> Result<Self::Settings, FieldErrors> {
        Ok(Self::Settings::default())
    }
    /// Puts its settings back into the form's fields.
    fn fill(&self, _settings: &Self::Settings, _f: &mut Fields) {}
    /// What it would do, in words, without doing it; `names` names the groups and
    /// messages its settings choose.
    fn explain(&self, _settings: &Self::Settings, _names: &Choices) -> String {
        self.label().to_string()
    }
    /// The prepared message it sends, if it sends one (the automation's page links
    /// it; a message in use is not deleted).
    fn message(&self, _settings: &Self::Settings) -> Option<i64> {
        None
    }
    /// A secret its settings make (a signing key, say), shown to staff once when
    /// Define Job is saved with a new one; `None` for jobs without one.
    fn secret(&self, _settings: &Self::Settings, _keys: &LinkSigner) -> Option<String> {
        None
    }
    /// The per-person limit on its runs, if any (Try it reports it).
    fn limit(&self) -> Option<Limit> {
        None
    }
    /// Whether it is the job the preference center's forgotten-password link needs.
    fn sends_preference_center_password(&self) -> bool {
        false
    }
    /// The longest one attempt may take (`default`: the configured job timeout).
    fn timeout(&self, default: Duration) -> Duration {
        default
    }
    /// Executes one claimed run.
    fn execute<'a>(&'a self, ctx: &'a JobContext, run: &'a Claimed) -> Execution<'a>;
}

/// A job as the registry holds it: its settings as the stored JSON. Implemented
/// for every [`Job`]; the JSON is read into the job's own type here, once.
pub trait AnyJob: Send + Sync {
    fn kind(&self) -> &'static str;
    fn label(&self) -> &'static str;
    fn offered(&self) -> bool;
    fn target(&self) -> Option<TargetKind>;
    fn combines_with(&self, event: EventType) -> bool;
    fn form(&self, view: &JobForm<'_>) -> Result<String, askama::Error>;
    /// Parses the fields, and stores the settings as JSON.
    fn parse(
        &self,
        event: EventType,
        f: &Fields,
        choices: &Choices,
    ) -> Result<serde_json::Value, FieldErrors>;
    fn fill(&self, stored: &serde_json::Value, f: &mut Fields);
    fn explain(&self, stored: &serde_json::Value, names: &Choices) -> String;
    fn message(&self, stored: &serde_json::Value) -> Option<i64>;
    fn secret(&self, stored: &serde_json::Value, keys: &LinkSigner) -> Option<String>;
    fn limit(&self) -> Option<Limit>;
    fn sends_preference_center_password(&self) -> bool;
    fn timeout(&self, default: Duration) -> Duration;
    fn execute<'a>(&'a self, ctx: &'a JobContext, run: &'a Claimed) -> Execution<'a>;
}

/// The settings stored as `stored`, read as the job's own type; `None` when they
/// do not read (then the job acts as unconfigured).
fn read<J: Job>(stored: &serde_json::Value) -> Option<J::Settings> {
    J::Settings::deserialize(stored).ok()
}

impl<J: Job> AnyJob for J {
    fn kind(&self) -> &'static str {
        Job::kind(self)
    }
    fn label(&self) -> &'static str {
        Job::label(self)
    }
    fn offered(&self) -> bool {
        Job::offered(self)
    }
    fn target(&self) -> Option<TargetKind> {
        Job::target(self)
    }
    fn combines_with(&self, event: EventType) -> bool {
        Job::combines_with(self, event)
    }
    fn form(&self, view: &JobForm<'_>) -> Result<String, askama::Error> {
        Job::form(self, view)
    }
    fn parse(
        &self,
        event: EventType,
        f: &Fields,
        choices: &Choices,
    ) -> Result<serde_json::Value, FieldErrors> {
        let settings = Job::parse(self, event, f, choices)?;
        // Plain data (numbers, strings, lists): serialising cannot fail.
        Ok(serde_json::to_value(settings).unwrap_or_default())
    }
    fn fill(&self, stored: &serde_json::Value, f: &mut Fields) {
        if let Some(s) = read::<J>(stored) {
            Job::fill(self, &s, f);
        }
    }
    fn explain(&self, stored: &serde_json::Value, names: &Choices) -> String {
        match read::<J>(stored) {
            Some(s) => Job::explain(self, &s, names),
            None => format!("{} (not set up: open Define Job)", Job::label(self)),
        }
    }
    fn message(&self, stored: &serde_json::Value) -> Option<i64> {
        Job::message(self, &read::<J>(stored)?)
    }
    fn secret(&self, stored: &serde_json::Value, keys: &LinkSigner) -> Option<String> {
        Job::secret(self, &read::<J>(stored)?, keys)
    }
    fn limit(&self) -> Option<Limit> {
        Job::limit(self)
    }
    fn sends_preference_center_password(&self) -> bool {
        Job::sends_preference_center_password(self)
    }
    fn timeout(&self, default: Duration) -> Duration {
        Job::timeout(self, default)
    }
    fn execute<'a>(&'a self, ctx: &'a JobContext, run: &'a Claimed) -> Execution<'a> {
        Job::execute(self, ctx, run)
    }
}

/// The settings of the automation a job runs for, read as the job's own type; a
/// run whose settings do not read fails, naming Define Job.
pub fn settings_of<S: serde::de::DeserializeOwned>(
    a: &crate::automations::model::Automation,
    target: Option<crate::scheduler::queue::Target>,
) -> Result<S, Outcome> {
    S::deserialize(&a.job_config).map_err(|e| Outcome::Failed {
        target,
        error: format!("the job's settings cannot be read ({e}): save Define Job again"),
    })
}

/// The jobs Herald knows, by kind.
#[derive(Clone, Default)]
pub struct Registry {
    jobs: BTreeMap<&'static str, Arc<dyn AnyJob>>,
}

impl Registry {
    /// This registry and `job` (replacing one of the same kind).
    pub fn with(mut self, job: impl Job) -> Self {
        self.jobs.insert(Job::kind(&job), Arc::new(job));
        self
    }

    pub fn get(&self, kind: &str) -> Option<&dyn AnyJob> {
        self.jobs.get(kind).map(|j| j.as_ref())
    }

    /// The label of `kind`, or a dash for none.
    pub fn label(&self, kind: Option<&str>) -> &'static str {
        kind.and_then(|k| self.get(k)).map_or("—", AnyJob::label)
    }

    /// The prepared message a job of `kind` with stored settings `stored` sends.
    pub fn message_of(&self, kind: &str, stored: &serde_json::Value) -> Option<i64> {
        self.get(kind)?.message(stored)
    }

    /// The kinds of the jobs under `limit` (the frequency cap counts them all).
    pub fn kinds_limited_by(&self, limit: Limit) -> Vec<&'static str> {
        self.jobs
            .values()
            .filter(|j| j.limit() == Some(limit))
            .map(|j| j.kind())
            .collect()
    }

    /// The kind of the job the preference center's forgotten-password link needs.
    pub fn preference_center_password(&self) -> Option<&'static str> {
        self.jobs
            .values()
            .find(|j| j.sends_preference_center_password())
            .map(|j| j.kind())
    }

    /// The jobs Define Job offers for `event`, in registry order.
    pub fn offered_for(&self, event: EventType) -> Vec<&dyn AnyJob> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::catalogue::standard as registry;

    /// Settings stored before they were typed read back as they were written.
    #[test]
    fn stored_settings_of_every_job_read_back() {
        let jobs = registry();
        let names = Choices {
            groups: vec![(7, "Newsletter".into())],
            messages: vec![(3, "Welcome".into())],
            ..Choices::default()
        };
        for (kind, stored, words) in [
            (
                "send_message_to_contact",
                serde_json::json!({"message_id": 3, "group_id": 7}),
                "the prepared message \"Welcome\"; its unsubscribe link removes them from \"Newsletter\"",
            ),
            (
                "send_message_to_contact",
                serde_json::json!({"message_id": 3, "group_id": null}),
                "stops all prepared messages",
            ),
            (
                "send_message_to_address",
                serde_json::json!({"message_id": 3, "addresses": ["ops@example.com"]}),
                "\"Welcome\" to ops@example.com",
            ),
            (
                "subscribe_to_group",
                serde_json::json!({"group_id": 7}),
                "Adds the contact to \"Newsletter\"",
            ),
            (
                "update_contact_attribute",
                serde_json::json!({"name": "city", "value": "Berlin"}),
                "\"city\" to \"Berlin\"",
            ),
            (
                "send_http_request",
                serde_json::json!({"url": "https://example.com/hook", "body": "event", "template": "", "salt": "0123456789abcdef0123456789abcdef"}),
                "as JSON, signed, to https://example.com/hook",
            ),
            (
                "send_new_password_to_contact",
                serde_json::Value::Null,
                "a new temporary password",
            ),
        ] {
            let job = jobs.get(kind).unwrap();
            let said = job.explain(&stored, &names);
            assert!(said.contains(words), "{kind}: {said}");
        }
        // What does not read is said, not guessed.
        let job = jobs.get("subscribe_to_group").unwrap();
        assert!(
            job.explain(&serde_json::json!({"group": "x"}), &names)
                .contains("not set up")
        );
        assert_eq!(
            job.message(&serde_json::json!({"group_id": 7})),
            None,
            "a membership job sends no message"
        );
        let sender = jobs.get("send_message_to_contact").unwrap();
        assert_eq!(
            sender.message(&serde_json::json!({"message_id": 3})),
            Some(3)
        );
        assert_eq!(
            jobs.preference_center_password(),
            Some("send_new_password_to_contact")
        );
        assert_eq!(
            jobs.kinds_limited_by(Limit::MessagesPerDay),
            ["send_message_to_contact"]
        );
    }
}
