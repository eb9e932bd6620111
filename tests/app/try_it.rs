//! Try it, on both engines: for a table of cases the due time it shows equals one
//! written by hand and the due time of the run the scheduler really creates for
//! the same event; its selection verdict equals the run's outcome once drained;
//! and trying records nothing but an audit entry.

use herald::auth::users::Role;
use herald::events::catalogue::{EventType, NewEvent};
use reqwest::{Client, StatusCode};

use crate::automations::{define_job, new_automation};
use crate::helpers::{TestApp, text_of};

/// One case: the automation's time frame, the event's local moment, and the due
/// time expected (UTC), or `None` when the run would be skipped.
struct Case {
    name: &'static str,
    zone: &'static str,
    days: &'static [&'static str],
    holidays: &'static str,
    /// Execution hours From and To, as typed ("" = the default).
    hours: (&'static str, &'static str),
    delay: Option<(&'static str, &'static str)>,
    end: &'static str,
    event_at: &'static str,
    due: Option<&'static str>,
}

const WEEKDAYS: &[&str] = &["mon", "tue", "wed", "thu", "fri"];
const EVERY_DAY: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const ALL_DAY: (&str, &str) = ("", "");
const OFFICE: (&str, &str) = ("09:00", "17:00");

const CASES: &[Case] = &[
    Case {
        name: "weekend excluded",
        zone: "Europe/Berlin",
        days: WEEKDAYS,
        holidays: "always",
        hours: ALL_DAY,
        delay: Some(("days", "2")),
        end: "",
        event_at: "2026-12-04T16:00",
        due: Some("2026-12-06T23:00:00Z"),
    },
    Case {
        name: "never on holidays",
        zone: "Europe/Berlin",
        days: EVERY_DAY,
        holidays: "never",
        hours: ALL_DAY,
        delay: None,
        end: "",
        event_at: "2026-12-25T10:00",
        due: Some("2026-12-25T23:00:00Z"),
    },
    Case {
        name: "only on holidays",
        zone: "Europe/Berlin",
        days: EVERY_DAY,
        holidays: "only",
        hours: ALL_DAY,
        delay: None,
        end: "",
        event_at: "2026-12-23T10:00",
        due: Some("2026-12-24T23:00:00Z"),
    },
    Case {
        name: "Berlin spring forward, a day keeps the time",
        zone: "Europe/Berlin",
        days: EVERY_DAY,
        holidays: "always",
        hours: ALL_DAY,
        delay: Some(("days", "1")),
        end: "",
        event_at: "2026-03-28T12:00",
        due: Some("2026-03-29T10:00:00Z"),
    },
    Case {
        name: "Berlin fall back, 24 hours are elapsed time",
        zone: "Europe/Berlin",
        days: EVERY_DAY,
        holidays: "always",
        hours: ALL_DAY,
        delay: Some(("hours", "24")),
        end: "",
        event_at: "2026-10-24T12:00",
        due: Some("2026-10-25T10:00:00Z"),
    },
    Case {
        name: "New York spring forward",
        zone: "America/New_York",
        days: EVERY_DAY,
        holidays: "always",
        hours: ALL_DAY,
        delay: Some(("days", "1")),
        end: "",
        event_at: "2026-03-07T12:00",
        due: Some("2026-03-08T16:00:00Z"),
    },
    Case {
        name: "New York fall back",
        zone: "America/New_York",
        days: EVERY_DAY,
        holidays: "always",
        hours: ALL_DAY,
        delay: Some(("days", "1")),
        end: "",
        event_at: "2026-10-31T12:00",
        due: Some("2026-11-01T17:00:00Z"),
    },
    Case {
        name: "a Saturday sign-up on weekdays 09:00–17:00 waits for Monday 09:00",
        zone: "Europe/Berlin",
        days: WEEKDAYS,
        holidays: "always",
        hours: OFFICE,
        delay: None,
        end: "",
        event_at: "2026-12-05T10:00",
        due: Some("2026-12-07T08:00:00Z"),
    },
    Case {
        name: "before the hours: From the same day",
        zone: "Europe/Berlin",
        days: WEEKDAYS,
        holidays: "always",
        hours: OFFICE,
        delay: None,
        end: "",
        event_at: "2026-12-08T06:15",
        due: Some("2026-12-08T08:00:00Z"),
    },
    Case {
        name: "after the hours, across the fall change: From the next day",
        zone: "Europe/Berlin",
        days: EVERY_DAY,
        holidays: "always",
        hours: OFFICE,
        delay: Some(("hours", "3")),
        end: "",
        event_at: "2026-10-24T15:00",
        due: Some("2026-10-25T08:00:00Z"),
    },
    Case {
        name: "inside the hours: unchanged",
        zone: "America/New_York",
        days: EVERY_DAY,
        holidays: "always",
        hours: ("08:30", ""),
        delay: Some(("minutes", "1")),
        end: "",
        event_at: "2026-12-08T23:58",
        due: Some("2026-12-09T04:59:00Z"),
    },
    Case {
        name: "the end comes first",
        zone: "Europe/Berlin",
        days: WEEKDAYS,
        holidays: "always",
        hours: ALL_DAY,
        delay: Some(("days", "2")),
        end: "2026-12-06T12:00",
        event_at: "2026-12-04T16:00",
        due: None,
    },
];

/// An active New Password Requested (C) → Send New Password automation with the
/// case's time frame, built through the forms.
async fn automation(
    app: &TestApp,
    client: &Client,
    name: &str,
    case: &Case,
    selection: &[(&str, &str)],
) -> i64 {
    let id = new_automation(app, client, name, "new_password_requested").await;
    if !selection.is_empty() {
        let page = format!("/automations/{id}/event");
        let mut values = vec![("name", name), ("event", "new_password_requested")];
        values.extend_from_slice(selection);
        let r = app.submit_with(client, &page, &page, &values).await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{}",
            r.text().await.unwrap()
        );
    }
    let mut job = vec![
        ("job", "send_new_password_to_contact"),
        ("use_event_parameter", "on"),
        ("action", "time_frame"),
    ];
    if let Some((unit, value)) = case.delay {
        job.extend([
            ("delay", "yes"),
            ("delay_unit", unit),
            ("delay_value", value),
        ]);
    }
    let r = define_job(app, client, id, &job).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let page = format!("/automations/{id}/time-frame");
    let mut form = app.form_with(client, &page, &page).await;
    for day in EVERY_DAY {
        form.remove(&format!("day_{day}"));
    }
    for day in case.days {
        form.set(&format!("day_{day}"), "on");
    }
    form.set("start", "2026-01-01T00:00")
        .set("time_zone", case.zone)
        .set("end", case.end)
        .set("holidays", case.holidays)
        .set("hours_from", case.hours.0)
        .set("hours_to", case.hours.1)
        .set("action", "activate");
    let r = app.post_form_with(client, &form).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}: {}",
        case.name,
        r.text().await.unwrap()
    );
    id
}

pub(crate) async fn try_api(
    app: &TestApp,
    key: &str,
    automation: i64,
    query: &[(&str, &str)],
) -> serde_json::Value {
    let r = Client::new()
        .get(app.url(&format!("/api/v1/automations/{automation}/try")))
        .bearer_auth(key)
        .query(query)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// Records New Password Requested (C) for `contact` now, as the preference center
/// does; returns the event's id.
async fn request(app: &TestApp, contact: i64) -> i64 {
    let mut tx = app.state.db.begin().await.unwrap();
    let id = herald::intake::events::record(
        &mut tx,
        app.now_ms(),
        &NewEvent::contact(EventType::NewPasswordRequested, contact),
    )
    .await
    .unwrap();
    app.state.db.commit(tx).await.unwrap();
    id.0
}

async fn run_of_event(
    app: &TestApp,
    automation: i64,
    event: i64,
) -> herald::scheduler::runs::RunRow {
    crate::scheduler::runs(app, automation)
        .await
        .into_iter()
        .find(|r| r.event_id.0 == event)
        .expect("a run for the event")
}

fn instant(local: &str, zone: &str) -> jiff::Timestamp {
    jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M", local)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::get(zone).unwrap())
        .unwrap()
        .timestamp()
}

/// An API key, Cleo, a holiday on Christmas Day, and one deactivated automation
/// per case of `CASES` (built before any clock jump, which would end the staff
/// session): the key, Cleo's id and the automations' ids.
async fn cases_to_try(app: &TestApp) -> (String, i64, Vec<i64>) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let key = crate::api::new_key(app, &admin, "Try").await;
    let mut settings = herald::settings::Settings::load(&app.state.db)
        .await
        .unwrap();
    settings.holidays = "2026-12-25 Christmas Day".into();
    let mut tx = app.state.db.begin().await.unwrap();
    settings.save(&mut tx, app.now_ms()).await.unwrap();
    app.state.db.commit(tx).await.unwrap();
    let cleo = crate::scheduler::contact(app, "cleo@example.com", "cleo's own password").await;
    // Built first: the clock jumps below would end the staff session.
    let mut ids = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let id = automation(app, &admin, &format!("Case {i}"), case, &[]).await;
        sqlx::query("UPDATE automations SET state = 'deactivated' WHERE id = $1")
            .bind(id)
            .execute(app.state.db.write())
            .await
            .unwrap();
        ids.push(id);
    }
    (key, cleo, ids)
}

/// Try it's steps, in words, for case `i` of `CASES`.
async fn steps_of(app: &TestApp, key: &str, cleo: i64, ids: &[i64], i: usize) -> String {
    let answer = try_api(
        app,
        key,
        ids[i],
        &[("contact_id", &cleo.to_string()), ("at", CASES[i].event_at)],
    )
    .await;
    answer["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join(" | ")
}

async fn try_it_gives_the_due_time_the_scheduler_gives(app: TestApp) {
    let (key, cleo, ids) = cases_to_try(&app).await;
    for (case, id) in CASES.iter().zip(&ids) {
        let answer = try_api(
            &app,
            &key,
            *id,
            &[("contact_id", &cleo.to_string()), ("at", case.event_at)],
        )
        .await;
        let expected = case
            .due
            .map(|d| d.parse::<jiff::Timestamp>().unwrap().as_millisecond());
        assert_eq!(
            answer["due_at_ms"].as_i64(),
            expected,
            "{}: Try it says {answer:#}",
            case.name
        );
        assert!(
            !answer["steps"].as_array().unwrap().is_empty(),
            "{}: steps",
            case.name
        );
        // The scheduler, for the same event at the same moment.
        sqlx::query("UPDATE automations SET state = 'active' WHERE id = $1")
            .bind(id)
            .execute(app.state.db.write())
            .await
            .unwrap();
        app.clock.set(instant(case.event_at, case.zone));
        let event = request(&app, cleo).await;
        let run = run_of_event(&app, *id, event).await;
        match expected {
            Some(ms) => assert_eq!(
                (run.status.code(), run.due_at),
                ("pending", ms),
                "{}: the real run",
                case.name
            ),
            None => assert_eq!(
                run.status.code(),
                "skipped",
                "{}: the real run {run:?}",
                case.name
            ),
        }
        sqlx::query("UPDATE automations SET state = 'deactivated' WHERE id = $1")
            .bind(id)
            .execute(app.state.db.write())
            .await
            .unwrap();
    }
}

async fn try_it_says_why_in_words(app: TestApp) {
    let (key, cleo, ids) = cases_to_try(&app).await;
    let steps = steps_of(&app, &key, cleo, &ids, 0).await;
    assert!(
        steps.contains("Event Fri 2026-12-04 16:00 CET + 2 days = Sun 2026-12-06 16:00 CET")
            && steps.contains("Sunday is not an execution day")
            && steps.contains("Mon 2026-12-07 00:00 CET"),
        "{steps}"
    );
    // The execution hours: a weekend, before the hours, after them.
    let steps = steps_of(&app, &key, cleo, &ids, 7).await;
    assert!(steps.contains("Saturday is not an execution day") && steps.contains("Sunday is not an execution day") && steps.contains("→ Mon 2026-12-07 09:00 CET (09:00, the start of the execution hours of the next allowed day)"), "{steps}");
    let steps = steps_of(&app, &key, cleo, &ids, 8).await;
    assert!(
        steps.contains("06:15 is before the execution hours (09:00–17:00)")
            && steps
                .contains("→ Tue 2026-12-08 09:00 CET (09:00, the start of the execution hours)."),
        "{steps}"
    );
    let steps = steps_of(&app, &key, cleo, &ids, 9).await;
    assert!(
        steps.contains("18:00 is after the execution hours (09:00–17:00) → the next day")
            && steps.contains("Due Sun 2026-10-25 09:00 CET"),
        "{steps}"
    );
}

async fn try_it_checks_the_selection_as_the_job_will(app: TestApp) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let key = crate::api::new_key(&app, &admin, "Try").await;
    let r = app
        .submit_with(&admin, "/groups/new", "/groups", &[("name", "VIP")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let vip = herald::contacts::groups::list(&app.state.db).await.unwrap()[0]
        .id
        .to_string();
    let now_case = Case {
        name: "now",
        zone: "UTC",
        days: EVERY_DAY,
        holidays: "always",
        hours: ALL_DAY,
        delay: None,
        end: "",
        event_at: "",
        due: None,
    };
    let in_group = automation(&app, &admin, "VIP only", &now_case, &[("sel_group", &vip)]).await;
    sqlx::query("UPDATE automations SET state = 'deactivated' WHERE id = $1")
        .bind(in_group)
        .execute(app.state.db.write())
        .await
        .unwrap();
    let gold = automation(
        &app,
        &admin,
        "Gold only",
        &now_case,
        &[("sel_attr_name", "plan"), ("sel_attr_value", "gold")],
    )
    .await;
    sqlx::query("UPDATE automations SET state = 'deactivated' WHERE id = $1")
        .bind(gold)
        .execute(app.state.db.write())
        .await
        .unwrap();
    let anyone = automation(&app, &admin, "Anyone", &now_case, &[]).await;
    sqlx::query("UPDATE automations SET state = 'deactivated' WHERE id = $1")
        .bind(anyone)
        .execute(app.state.db.write())
        .await
        .unwrap();
    let ada = crate::scheduler::contact(&app, "ada@example.com", "ada's own password").await;
    let bob = crate::scheduler::contact(&app, "bob@example.com", "bob's own password").await;
    let mut tx = app.state.db.begin().await.unwrap();
    herald::contacts::set_status(
        &mut tx,
        bob,
        herald::contacts::Status::Blocked,
        app.now_ms(),
    )
    .await
    .unwrap();
    app.state.db.commit(tx).await.unwrap();
    sqlx::query(
        "INSERT INTO contact_attributes (contact_id, name, value) VALUES ($1, 'plan', 'silver')",
    )
    .bind(ada)
    .execute(app.state.db.write())
    .await
    .unwrap();

    for (automation, contact, met, name) in [
        (in_group, ada, false, "not in the group"),
        (gold, ada, false, "attribute differs"),
        (anyone, bob, false, "blocked"),
        (anyone, ada, true, "no conditions"),
    ] {
        let before: (i64, i64) =
            sqlx::query_as("SELECT (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM job_runs)")
                .fetch_one(app.state.db.read())
                .await
                .unwrap();
        let answer = try_api(
            &app,
            &key,
            automation,
            &[("contact_id", &contact.to_string())],
        )
        .await;
        let after: (i64, i64) =
            sqlx::query_as("SELECT (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM job_runs)")
                .fetch_one(app.state.db.read())
                .await
                .unwrap();
        assert_eq!(before, after, "Try it records no event and no run");
        assert_eq!(answer["selection_met"], met, "{name}: {answer:#}");
        // The job's verdict once it runs.
        sqlx::query("UPDATE automations SET state = 'active' WHERE id = $1")
            .bind(automation)
            .execute(app.state.db.write())
            .await
            .unwrap();
        let event = request(&app, contact).await;
        app.drain_due_runs().await;
        let run = run_of_event(&app, automation, event).await;
        assert_eq!(run.status.code() == "done", met, "{name}: {run:?}");
        if !met {
            assert_eq!(run.status.code(), "skipped", "{name}");
        }
        if automation == in_group {
            // Both say it in words, the group by its name.
            assert_eq!(answer["selection"][0]["condition"], "member of VIP");
            assert_eq!(
                run.outcome.as_deref(),
                Some("the contact does not meet the selection (member of VIP)")
            );
        }
        sqlx::query("UPDATE automations SET state = 'deactivated' WHERE id = $1")
            .bind(automation)
            .execute(app.state.db.write())
            .await
            .unwrap();
    }
}

async fn the_try_it_page_answers_without_javascript(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let automation = crate::scheduler::password_automation(&app, &client, &[], &[]).await;
    crate::scheduler::contact(&app, "cleo@example.com", "cleo's own password").await;
    let (status, html) = app
        .page_with(&client, &format!("/automations/{automation}/try"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text_of(&html, "#answer").is_none(),
        "no answer before asking"
    );
    let (status, html) = app
        .page_with(
            &client,
            &format!("/automations/{automation}/try?try=1&contact=cleo%40example.com&at="),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text_of(&html, "#verdict").unwrap().starts_with("Would run"),
        "{html}"
    );
    assert!(
        text_of(&html, "#target")
            .unwrap()
            .contains("cleo@example.com")
    );
    let (status, html) = app
        .page_with(
            &client,
            &format!("/automations/{automation}/try?try=1&contact=nobody%40example.com"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        text_of(&html, "#contact-error")
            .unwrap()
            .contains("No contact has the email")
    );
    let (status, html) = app
        .page_with(
            &client,
            &format!("/automations/{automation}/try?try=1&contact=cleo%40example.com&at=tomorrow"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text_of(&html, "#at-error").unwrap().contains("YYYY-MM-DD"));
    // Only the audit entry "tried" is written.
    let tried: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'automation.tried'")
            .fetch_one(app.state.db.read())
            .await
            .unwrap();
    assert_eq!(tried, 1);
    let (_, detail) = app
        .page_with(&client, &format!("/automations/{automation}"))
        .await;
    assert!(detail.contains(&format!("href=\"/automations/{automation}/try\"")));
}

on_both_engines!(
    try_it_gives_the_due_time_the_scheduler_gives,
    try_it_says_why_in_words,
    try_it_checks_the_selection_as_the_job_will,
    the_try_it_page_answers_without_javascript
);
