//! A job kind that exists only here, registered by this test's own registry and
//! never in the product: proof that a job is one implementation of the trait plus
//! one registry line. It notes a text of its Define Job form on the contact.

use askama::Template;
use herald::automations::model::TargetKind;
use herald::events::catalogue::Scope;
use herald::jobs::common;
use herald::jobs::registry::{Execution, Job, JobForm, Registry, settings_of};
use herald::scheduler::queue::{Claimed, Outcome};
use herald::state::JobContext;
use herald::web::form::{FieldErrors, Fields};
use reqwest::StatusCode;

use crate::automations::{define_job, define_time_frame, new_automation};
use crate::helpers::{Engine, TestApp};

#[derive(Template)]
#[template(
    source = r#"<div class="mb-3"><label class="form-label" for="note">Note</label>
<input class="form-control" id="note" name="note" value="{{ self.v("note") }}">
{% if let Some(e) = self.error("note") %}<div class="invalid-feedback" id="note-error">{{ e }}</div>{% endif %}</div>"#,
    ext = "html"
)]
struct NoteForm<'a>(&'a JobForm<'a>);

impl<'a> std::ops::Deref for NoteForm<'a> {
    type Target = JobForm<'a>;
    fn deref(&self) -> &Self::Target {
        self.0
    }
}

struct NoteOnContact;

/// What the job writes on the contact.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Note {
    note: String,
}

impl Job for NoteOnContact {
    type Settings = Note;
    fn kind(&self) -> &'static str {
        "test_note_on_contact"
    }
    fn label(&self) -> &'static str {
        "Note on Contact (C), tests only"
    }
    fn scopes(&self) -> &'static [Scope] {
        &[Scope::Contact]
    }
    fn target(&self) -> Option<TargetKind> {
        Some(TargetKind::Contact)
    }
    fn form(&self, view: &JobForm<'_>) -> Result<String, askama::Error> {
        NoteForm(view).render()
    }
    fn parse(
        &self,
        _event: herald::events::catalogue::EventType,
        f: &Fields,
        _choices: &herald::jobs::registry::Choices,
    ) -> Result<Note, FieldErrors> {
        match f.get("note").trim() {
            "" => Err(FieldErrors::from([("note", "Write the note.".to_string())])),
            note => Ok(Note { note: note.into() }),
        }
    }
    fn fill(&self, settings: &Note, f: &mut Fields) {
        f.set("note", &settings.note);
    }
    fn execute<'a>(&'a self, ctx: &'a JobContext, run: &'a Claimed) -> Execution<'a> {
        Box::pin(async move {
            let (a, _, to) = match common::live_target(ctx, run, TargetKind::Contact).await {
                Ok(parts) => parts,
                Err(outcome) => return outcome,
            };
            let Note { note } = match settings_of(&a, Some(to.target)) {
                Ok(s) => s,
                Err(outcome) => return outcome,
            };
            let noted = sqlx::query(
                "INSERT INTO contact_attributes (contact_id, name, value) VALUES ($1, 'note', $2)",
            )
            .bind(to.target.id)
            .bind(note)
            .execute(ctx.db.write())
            .await;
            match noted {
                Ok(_) => Outcome::done(to.target),
                Err(e) => Outcome::database(Some(to.target), "writing the note", e),
            }
        })
    }
}

async fn a_job_registered_by_a_test_runs_end_to_end(app: TestApp) {
    let (client, _) = app.signed_in(herald::auth::users::Role::Marketer).await;
    let id = new_automation(&app, &client, "Note new contacts", "registered_to_system").await;
    // Define Job offers it, with its own field.
    let (_, html) = app
        .page_with(&client, &format!("/automations/{id}/job"))
        .await;
    assert!(html.contains("Note on Contact (C), tests only") && html.contains("id=\"note\""));
    let r = define_job(
        &app,
        &client,
        id,
        &[
            ("job", "test_note_on_contact"),
            ("use_event_parameter", "on"),
            ("note", ""),
            ("action", "time_frame"),
        ],
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "its parser's message"
    );
    assert!(r.text().await.unwrap().contains("Write the note."));
    let r = define_job(
        &app,
        &client,
        id,
        &[
            ("job", "test_note_on_contact"),
            ("use_event_parameter", "on"),
            ("note", "met at the fair"),
            ("action", "time_frame"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, html) = app
        .page_with(&client, &format!("/automations/{id}/job"))
        .await;
    assert!(
        html.contains("value=\"met at the fair\""),
        "its stored fields come back"
    );
    let r = define_time_frame(
        &app,
        &client,
        id,
        &[
            ("start", "2026-01-01T00:00"),
            ("time_zone", "UTC"),
            ("action", "activate"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // A contact is created: the event's run executes the test job.
    let r = app
        .submit_with(
            &client,
            "/contacts/new",
            "/contacts",
            &[("email", "lena@example.com"), ("first_name", "Lena")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    app.drain_due_runs().await;
    let note: Option<String> = sqlx::query_scalar(
        "SELECT a.value FROM contact_attributes a JOIN contacts c ON c.id = a.contact_id WHERE c.email = 'lena@example.com' AND a.name = 'note'",
    )
    .fetch_optional(app.state.db.read())
    .await
    .unwrap();
    assert_eq!(note.as_deref(), Some("met at the fair"));
    let runs = herald::scheduler::runs::runs_of(&app.state.db, herald::types::AutomationId(id), 10)
        .await
        .unwrap();
    assert_eq!(
        (
            runs.len(),
            runs[0].status.code(),
            runs[0].outcome.as_deref()
        ),
        (1, "done", Some("done"))
    );
    let (_, html) = app.page_with(&client, "/automations").await;
    assert!(
        html.contains("Note on Contact (C), tests only"),
        "the overview names it"
    );
}

fn registry() -> Registry {
    herald::jobs::catalogue::standard().with(NoteOnContact)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_registered_by_a_test_runs_end_to_end_sqlite() {
    TestApp::on(Engine::Sqlite)
        .jobs(registry())
        .run(a_job_registered_by_a_test_runs_end_to_end)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_registered_by_a_test_runs_end_to_end_postgres() {
    TestApp::on(Engine::Postgres)
        .jobs(registry())
        .run(a_job_registered_by_a_test_runs_end_to_end)
        .await
}

#[test]
fn the_product_does_not_offer_the_test_job() {
    assert!(
        herald::jobs::catalogue::standard()
            .get("test_note_on_contact")
            .is_none()
    );
}
