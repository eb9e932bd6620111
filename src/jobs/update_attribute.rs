//! Update Contact Attribute (C): sets one attribute to a value that may use the
//! event's values (`{{ event.name }}`); records *Profile Data Changed (C)* (one
//! link deeper in the chain) and an audit entry when the value changes.

use askama::Template;

use crate::automations::model::TargetKind;
use crate::events::catalogue::{EventType, Scope};
use crate::jobs::common;
use crate::jobs::registry::{Choices, Execution, Job, JobForm, settings_of};
use crate::messages::template::{self, Personal};
use crate::scheduler::queue::{Claimed, Outcome};
use crate::state::JobContext;
use crate::web::form::{FieldErrors, Fields};

crate::job_form!(
    AttributeForm,
    "automations/jobs/update_contact_attribute.html"
);

/// Update Contact Attribute (C).
pub struct UpdateAttribute;

/// The attribute to set and its value (a template over the event's values).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct AttributeSettings {
    pub name: String,
    pub value: String,
}

impl Job for UpdateAttribute {
    type Settings = AttributeSettings;
    fn kind(&self) -> &'static str {
        "update_contact_attribute"
    }
    fn label(&self) -> &'static str {
        "Update Contact Attribute (C)"
    }
    fn scopes(&self) -> &'static [Scope] {
        &[Scope::Contact]
    }
    fn target(&self) -> Option<TargetKind> {
        Some(TargetKind::Contact)
    }
    fn form(&self, view: &JobForm<'_>) -> Result<String, askama::Error> {
        AttributeForm(view).render()
    }
    fn parse(
        &self,
        _: EventType,
        f: &Fields,
        _: &Choices,
    ) -> Result<AttributeSettings, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = crate::types::parse_attribute_name(f.get("attribute_name"))
            .map_err(|e| errors.insert("attribute_name", e.0))
            .unwrap_or_default();
        let value = f.get("attribute_value").trim().to_string();
        if value.chars().count() > crate::contacts::MAX_ATTRIBUTE_VALUE_CHARS
            || value.contains(['\r', '\n'])
        {
            errors.insert(
                "attribute_value",
                "The value is one line of at most 1,000 characters.".into(),
            );
        } else if let Err(e) = template::check(&value) {
            errors.insert("attribute_value", e.to_string());
        }
        if errors.is_empty() {
            Ok(AttributeSettings { name, value })
        } else {
            Err(errors)
        }
    }
    fn fill(&self, settings: &AttributeSettings, f: &mut Fields) {
        f.set("attribute_name", &settings.name);
        f.set("attribute_value", &settings.value);
    }
    fn explain(&self, settings: &AttributeSettings, _names: &Choices) -> String {
        format!(
            "Sets the contact's attribute \"{}\" to \"{}\".",
            settings.name, settings.value
        )
    }
    fn execute<'a>(&'a self, ctx: &'a JobContext, run: &'a Claimed) -> Execution<'a> {
        Box::pin(update(ctx, run))
    }
}

async fn update(ctx: &JobContext, run: &Claimed) -> Outcome {
    let (a, event, to) = match common::live_target(ctx, run, TargetKind::Contact).await {
        Ok(parts) => parts,
        Err(outcome) => return outcome,
    };
    let target = Some(to.target);
    let AttributeSettings { name, value } = match settings_of(&a, target) {
        Ok(s) => s,
        Err(outcome) => return outcome,
    };
    let personal = Personal {
        event: event.params_json(),
        ..Personal::default()
    };
    let value = match template::render(&value, &personal, false) {
        // Checked like a value typed in or sent to the API, never cut silently.
        Ok(v) => match crate::contacts::parse_attribute_value(&v) {
            Ok(v) => v,
            Err(e) => {
                return Outcome::Failed {
                    target,
                    error: format!("the rendered value cannot be stored: {}", e.0),
                };
            }
        },
        Err(e) => {
            return Outcome::Failed {
                target,
                error: format!("the value cannot be rendered: {e}"),
            };
        }
    };
    let depth = event.chain_depth() + 1;
    let contact = to.target.id;
    let detail = format!("set {name}");
    let now = ctx.clock.now_ms();
    let changed: Result<bool, sqlx::Error> = async {
        let mut tx = ctx.db.begin().await?;
        let changed =
            crate::contacts::set_attribute(&mut tx, contact, &name, &value, now, depth).await?;
        common::audit_and_commit(ctx, tx, now, &a, &to, &detail, changed).await
    }
    .await;
    match changed {
        Ok(true) => Outcome::done(to.target),
        Ok(false) => Outcome::skip(target, format!("{name} already has this value")),
        Err(e) => Outcome::database(target, "setting the attribute", e),
    }
}
