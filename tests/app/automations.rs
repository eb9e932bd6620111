use std::time::Duration;

use herald::auth::users::Role;
use herald::automations;
use herald::automations::model::Status;
use herald::clock::Clock;
use reqwest::{Client, StatusCode};

use crate::helpers::{TestApp, find_form, location, text_of};

/// Runs Edit Event for a new automation; returns its id.
pub async fn new_automation(app: &TestApp, client: &Client, name: &str, event: &str) -> i64 {
    let r = app
        .submit_with(
            client,
            "/automations/new",
            "/automations",
            &[
                ("name", name),
                ("description", "Made by a test"),
                ("event", event),
            ],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "Edit Event refused: {}",
        r.text().await.unwrap_or_default()
    );
    let to = location(&r);
    to.trim_start_matches("/automations/")
        .trim_end_matches("/job")
        .parse()
        .unwrap()
}

pub async fn define_job(
    app: &TestApp,
    client: &Client,
    id: i64,
    values: &[(&str, &str)],
) -> reqwest::Response {
    let page = format!("/automations/{id}/job");
    app.submit_with(client, &page, &page, values).await
}

pub async fn define_time_frame(
    app: &TestApp,
    client: &Client,
    id: i64,
    values: &[(&str, &str)],
) -> reqwest::Response {
    let page = format!("/automations/{id}/time-frame");
    app.submit_with(client, &page, &page, values).await
}

/// A complete, activated automation "new password" on New Password Requested.
async fn active_automation(
    app: &TestApp,
    client: &Client,
    name: &str,
    start: &str,
    end: &str,
) -> i64 {
    let id = new_automation(app, client, name, "new_password_requested").await;
    let r = define_job(
        app,
        client,
        id,
        &[
            ("job", "send_new_password_to_contact"),
            ("use_event_parameter", "on"),
            ("action", "time_frame"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = define_time_frame(
        app,
        client,
        id,
        &[
            ("start", start),
            ("end", end),
            ("time_zone", "UTC"),
            ("action", "activate"),
        ],
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap_or_default()
    );
    id
}

/// A validation case: the fields sent, the field whose message is expected, and a
/// part of that message.
type Case<'a, V> = (Vec<(&'a str, V)>, &'a str, &'a str);
/// The same for one of several automations.
type JobCase<'a> = (i64, Vec<(&'a str, &'a str)>, &'a str, &'a str);

/// Checks that `r` is the form again (422) with `message` next to `field`, for
/// the answers `values`; returns the page.
async fn refused_at(
    r: reqwest::Response,
    field: &str,
    message: &str,
    values: &impl std::fmt::Debug,
) -> String {
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "{field} {values:?}"
    );
    let html = r.text().await.unwrap();
    let shown = error_of(&html, field);
    assert!(shown.contains(message), "{field} {values:?}: {shown}");
    html
}

fn error_of(html: &str, field: &str) -> String {
    text_of(html, &format!("#{field}-error"))
        .unwrap_or_else(|| panic!("no message for {field} in:\n{html}"))
}

/// Define Job's answers: the contact's new password, ten minutes after the event.
const PASSWORD_IN_TEN_MINUTES: &[(&str, &str)] = &[
    ("job", "send_new_password_to_contact"),
    ("use_event_parameter", "on"),
    ("delay", "yes"),
    ("delay_unit", "minutes"),
    ("delay_value", "10"),
    ("action", "time_frame"),
];

/// The group "Newsletter" and the first window's answers posted: the new
/// automation's id, its Define Job page and the group.
async fn wizard_draft(app: &TestApp, client: &Client) -> (i64, String, i64) {
    let group = app
        .new_group(client, &[("name", "Newsletter")], false)
        .await;
    let r = app
        .submit_with(
            client,
            "/automations/new",
            "/automations",
            &[
                ("name", "Password on request"),
                ("description", "Sends a new password"),
                ("event", "new_password_requested"),
                ("sel_group", &group.to_string()),
                ("sel_attr_name", "city"),
                ("sel_attr_value", "Berlin"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let job_page = location(&r);
    let id: i64 = job_page
        .trim_start_matches("/automations/")
        .trim_end_matches("/job")
        .parse()
        .unwrap();
    (id, job_page, group)
}

/// A draft through all three windows (the job with a 10-minute delay; Berlin
/// time, no Sundays, `me` told 14 days before the end), activated: its id, its
/// Define Job page, its group and `me`'s id.
async fn wizard_saved(app: &TestApp, client: &Client, email: &str) -> (i64, String, i64, i64) {
    let (id, job_page, group) = wizard_draft(app, client).await;
    let r = define_job(app, client, id, PASSWORD_IN_TEN_MINUTES).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), format!("/automations/{id}/time-frame"));

    let page = format!("/automations/{id}/time-frame");
    let me = herald::auth::users::find_by_email(&app.state.db, email)
        .await
        .unwrap()
        .unwrap();
    let r = define_time_frame(
        app,
        client,
        id,
        &[
            ("start", "2026-01-01T00:00"),
            ("end", "2030-12-31T23:00"),
            ("time_zone", "Europe/Berlin"),
            ("day_sat", ""),
            ("holidays", "never"),
            ("notify", &me.id.to_string()),
            ("notify_days", "14"),
            ("action", "activate"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // Unticking a day: submit without it.
    let mut form = app.form_with(client, &page, &page).await;
    form.remove("day_sun").set("action", "close");
    assert_eq!(
        app.post_form_with(client, &form).await.status(),
        StatusCode::SEE_OTHER
    );
    (id, job_page, group, me.id)
}

async fn edit_event_opens_the_wizard_and_leaves_an_inactive_draft(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let (_, html) = app.page_with(&client, "/automations/new").await;
    assert!(
        html.contains("Edit Event")
            && html.contains("Define Job")
            && html.contains("Define Time Frame"),
        "stepper"
    );
    assert!(
        html.contains("<optgroup label=\"Preference center\">"),
        "events grouped by category"
    );
    let (id, _, _) = wizard_draft(&app, &client).await;
    // Leaving here leaves an Inactive draft in the overview.
    let (_, html) = app.page_with(&client, "/automations").await;
    assert!(
        text_of(&html, &format!("tr[data-id=\"{id}\"]"))
            .unwrap()
            .contains("Inactive")
    );
}

async fn define_job_offers_only_the_jobs_that_fit_the_event(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let (id, job_page, _) = wizard_draft(&app, &client).await;
    let (_, html) = app.page_with(&client, &job_page).await;
    assert_eq!(
        text_of(&html, "#event-label").unwrap(),
        "New Password Requested (C)"
    );
    let form = find_form(&html, &job_page);
    assert_eq!(
        form.get("job"),
        Some(""),
        "several jobs fit: none is chosen for you"
    );
    let offered: Vec<String> = scraper::Html::parse_document(&html)
        .select(&scraper::Selector::parse("#job option").unwrap())
        .filter_map(|o| o.value().attr("value").map(str::to_string))
        .collect();
    assert!(
        offered.contains(&"send_new_password_to_contact".to_string())
            && offered.contains(&"send_message_to_contact".to_string()),
        "{offered:?}"
    );
    assert!(
        !offered
            .iter()
            .any(|j| j.ends_with("system_user") || j.ends_with("address")),
        "only (C) jobs: {offered:?}"
    );
    assert!(html.contains("The selection is calculated when the job executes, after the delay."));
    let r = define_job(&app, &client, id, PASSWORD_IN_TEN_MINUTES).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), format!("/automations/{id}/time-frame"));
}

async fn define_time_frame_starts_from_the_defaults(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let (id, job_page, _) = wizard_draft(&app, &client).await;
    let r = define_job(
        &app,
        &client,
        id,
        &[
            ("job", "send_new_password_to_contact"),
            ("use_event_parameter", "on"),
            ("action", "time_frame"),
        ],
    )
    .await;
    assert_eq!(
        location(&r),
        format!("/automations/{id}/time-frame"),
        "{job_page}"
    );
    let page = format!("/automations/{id}/time-frame");
    let (_, html) = app.page_with(&client, &page).await;
    let form = find_form(&html, &page);
    assert!(
        form.get("start").is_some_and(|s| s.len() == 16),
        "start defaults to now"
    );
    assert_eq!(form.get("time_zone"), Some("UTC"), "zone from settings");
    assert_eq!(form.get("day_sun"), Some("on"), "every day by default");
    assert_eq!(form.get("notify_days"), Some("30"));
}

async fn the_three_windows_save_an_automation_the_overview_lists(app: TestApp) {
    let (client, email) = app.signed_in(Role::Marketer).await;
    let (id, _, _, _) = wizard_saved(&app, &client, &email).await;
    let (_, html) = app.page_with(&client, "/automations").await;
    let row = text_of(&html, &format!("tr[data-id=\"{id}\"]")).unwrap();
    for expected in [
        "Password on request",
        "New Password Requested (C)",
        "Send New Password to Contact (C)",
        "Marketer Test",
        "Running",
    ] {
        assert!(row.contains(expected), "{expected} missing from {row:?}");
    }
    let stored = app.all_stored_text().await;
    for action in [
        "automation.created",
        "automation.changed",
        "automation.activated",
    ] {
        assert!(stored.contains(action), "audit lacks {action}");
    }
}

async fn reopening_each_window_shows_the_saved_values(app: TestApp) {
    let (client, email) = app.signed_in(Role::Marketer).await;
    let (id, job_page, group, me) = wizard_saved(&app, &client, &email).await;
    let page = format!("/automations/{id}/time-frame");
    // Reopening each window shows the saved values.
    let form = app
        .form_with(
            &client,
            &format!("/automations/{id}/event"),
            &format!("/automations/{id}/event"),
        )
        .await;
    assert_eq!(form.get("name"), Some("Password on request"));
    assert_eq!(form.get("event"), Some("new_password_requested"));
    assert_eq!(form.get("sel_group"), Some(group.to_string().as_str()));
    assert_eq!(form.get("sel_attr_value"), Some("Berlin"));
    let form = app.form_with(&client, &job_page, &job_page).await;
    assert_eq!(
        (
            form.get("use_event_parameter"),
            form.get("delay"),
            form.get("delay_unit"),
            form.get("delay_value")
        ),
        (Some("on"), Some("yes"), Some("minutes"), Some("10"))
    );
    let form = app.form_with(&client, &page, &page).await;
    assert_eq!(form.get("start"), Some("2026-01-01T00:00"));
    assert_eq!(form.get("end"), Some("2030-12-31T23:00"));
    assert_eq!(form.get("time_zone"), Some("Europe/Berlin"));
    assert_eq!(form.get("holidays"), Some("never"));
    assert_eq!(form.get("day_sun"), None);
    assert_eq!(form.get("day_sat"), Some("on"));
    assert_eq!(form.get("notify"), Some(me.to_string().as_str()));
    assert_eq!(form.get("notify_days"), Some("14"));
    let a = automations::store::find(&app.state.db, herald::types::AutomationId(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        a.start_at,
        Some(
            jiff::Timestamp::from_second(1_767_222_000)
                .unwrap()
                .as_millisecond()
        ),
        "00:00 CET is 23:00 UTC"
    );
    let (_, html) = app.page_with(&client, &format!("/automations/{id}")).await;
    assert!(
        html.contains("2026-01-01 00:00 CET")
            && html.contains("Member of Newsletter")
            && html.contains("10 minutes")
    );
}

async fn edit_event_refuses_every_bad_field(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let cases: Vec<Case<String>> = vec![
        (
            vec![
                ("name", String::new()),
                ("event", "new_password_requested".into()),
            ],
            "name",
            "Enter a name",
        ),
        (
            vec![
                ("name", "x".repeat(101)),
                ("event", "new_password_requested".into()),
            ],
            "name",
            "at most 100",
        ),
        (
            vec![
                ("name", "ok".into()),
                ("description", "d".repeat(1001)),
                ("event", "new_password_requested".into()),
            ],
            "description",
            "at most 1,000",
        ),
        (
            vec![("name", "ok".into()), ("event", "bogus".into())],
            "event",
            "Choose one of the options",
        ),
        (
            vec![
                ("name", "ok".into()),
                ("event", "subscribed_to_group".into()),
                ("filter_group", "abc".into()),
            ],
            "filter_group",
            "Choose one of the options",
        ),
        (
            vec![
                ("name", "ok".into()),
                ("event", "subscribed_to_group".into()),
                ("filter_group", "4242".into()),
            ],
            "filter_group",
            "does not exist",
        ),
        (
            vec![
                ("name", "ok".into()),
                ("event", "registered_to_system".into()),
                ("filter_source", "fax".into()),
            ],
            "filter_source",
            "Choose one of the options",
        ),
        (
            vec![
                ("name", "ok".into()),
                ("event", "system_user_created".into()),
                ("sel_group", "1".into()),
            ],
            "sel_group",
            "condition for contacts",
        ),
        (
            vec![
                ("name", "ok".into()),
                ("event", "registered_to_system".into()),
                ("sel_role", "admin".into()),
            ],
            "sel_role",
            "condition for system users",
        ),
    ];
    for (values, field, message) in cases {
        let values: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = app
            .submit_with(&client, "/automations/new", "/automations", &values)
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        let html = r.text().await.unwrap();
        assert!(
            error_of(&html, field).contains(message),
            "{field}: {}",
            error_of(&html, field)
        );
        assert_eq!(
            find_form(&html, "/automations").get("name"),
            Some(values[0].1),
            "entered values kept"
        );
    }
    assert!(
        automations::store::list(&app.state.db, 0, None, "", 1, 50)
            .await
            .unwrap()
            .0
            .is_empty(),
        "nothing saved"
    );
}

async fn define_time_frame_refuses_every_bad_field(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let id = new_automation(&app, &client, "Frame", "new_password_requested").await;
    define_job(
        &app,
        &client,
        id,
        &[
            ("job", "send_new_password_to_contact"),
            ("use_event_parameter", "on"),
            ("action", "time_frame"),
        ],
    )
    .await;
    let mut users = Vec::new();
    for i in 0..11 {
        users.push(
            app.create_user(
                &format!("reminded{i}@example.com"),
                Role::Marketer,
                "a long password!",
            )
            .await
            .to_string(),
        );
    }
    let eleven: Vec<(&str, &str)> = users.iter().map(|u| ("notify", u.as_str())).collect();
    let cases: Vec<Case<&str>> = vec![
        (
            vec![("start", "2026-06-01T10:00"), ("end", "2026-05-01T10:00")],
            "end",
            "after the start",
        ),
        (
            vec![("start", "2026-06-01T10:00"), ("end", "2031-06-01T10:01")],
            "end",
            "at most 5 years",
        ),
        (vec![("start", "")], "start", "Enter the start"),
        (vec![("start", "tomorrow")], "start", "date and time like"),
        (
            vec![("time_zone", "Mars/Base")],
            "time_zone",
            "not a time zone",
        ),
        (
            vec![("holidays", "sometimes")],
            "holidays",
            "Choose one of the options",
        ),
        (eleven, "notify", "at most 10"),
        (vec![("notify", "999999")], "notify", "enabled system users"),
        (vec![("notify_days", "0")], "notify_days", "1 to 365"),
    ];
    let page = format!("/automations/{id}/time-frame");
    for (values, field, message) in cases {
        let r = define_time_frame(&app, &client, id, &values).await;
        let html = refused_at(r, field, message, &values).await;
        // Typed values are kept (a select can only show what it offers).
        if ["start", "end", "notify_days"].contains(&values[0].0) {
            let kept = find_form(&html, &page);
            assert_eq!(
                kept.get(values[0].0),
                Some(values[0].1),
                "entered value kept"
            );
        }
    }
    // No execution day at all.
    let mut form = app.form_with(&client, &page, &page).await;
    for d in ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] {
        form.remove(&format!("day_{d}"));
    }
    let r = app.post_form_with(&client, &form).await;
    assert!(error_of(&r.text().await.unwrap(), "days").contains("at least one"));
    // Exactly 5 years is fine.
    let r = define_time_frame(
        &app,
        &client,
        id,
        &[
            ("start", "2026-06-01T10:00"),
            ("end", "2031-06-01T10:00"),
            ("action", "close"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

/// The three automations Define Job is tried on: one per kind of event.
async fn three_sides(app: &TestApp, client: &Client) -> (i64, i64, i64) {
    (
        new_automation(app, client, "Contact side", "registered_to_system").await,
        new_automation(app, client, "System side", "logged_on_to_system").await,
        new_automation(app, client, "HTTP side", "external_http_request_received").await,
    )
}

const CONTACT_JOB: (&str, &str) = ("job", "send_new_password_to_contact");

/// Posts only `values` to automation `id`'s Define Job and checks that `field` is
/// refused with `message`, and nothing is saved.
async fn job_refused(app: &TestApp, client: &Client, (id, values, field, message): JobCase<'_>) {
    let mut values = values.clone();
    values.push(("action", "time_frame"));
    // Start from an empty form: only what the case sends.
    let mut form = app
        .form_with(
            client,
            &format!("/automations/{id}/job"),
            &format!("/automations/{id}/job"),
        )
        .await;
    form.fields.retain(|(k, _)| k == "csrf_token");
    for (k, v) in &values {
        form.fields.push((k.to_string(), v.to_string()));
    }
    let r = app.post_form_with(client, &form).await;
    refused_at(r, field, message, &values).await;
    assert!(
        automations::store::find(&app.state.db, herald::types::AutomationId(id))
            .await
            .unwrap()
            .unwrap()
            .job
            .is_none(),
        "nothing saved"
    );
}

async fn define_job_refuses_a_job_of_the_other_scope(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let (c_id, s_id, h_id) = three_sides(&app, &client).await;
    let system_job = ("job", "send_new_password_to_system_user");
    let from_event = ("use_event_parameter", "on");
    for case in [
        (
            c_id,
            vec![system_job, from_event],
            "job",
            "Combine a (C) event with a (C) job.",
        ),
        (
            s_id,
            vec![CONTACT_JOB, from_event],
            "job",
            "Combine an (S) event with an (S) job.",
        ),
        (
            h_id,
            vec![system_job, from_event],
            "use_event_parameter",
            "names no system user",
        ),
        (
            c_id,
            vec![("job", "bogus")],
            "job",
            "Choose one of the options",
        ),
    ] {
        job_refused(&app, &client, case).await;
    }
}

async fn define_job_refuses_a_target_it_cannot_reach(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let (c_id, s_id, _) = three_sides(&app, &client).await;
    let r = app
        .submit_with(
            &client,
            "/contacts/new",
            "/contacts",
            &[("email", "blocked@example.com")],
        )
        .await;
    let cid = location(&r).trim_start_matches("/contacts/").to_string();
    let block = format!("/contacts/{cid}/block");
    app.submit_with(&client, &format!("/contacts/{cid}"), &block, &[])
        .await;
    let system_job = ("job", "send_new_password_to_system_user");
    for case in [
        (
            c_id,
            vec![CONTACT_JOB, ("contact", "nobody@example.com")],
            "contact",
            "No contact has the email",
        ),
        (
            c_id,
            vec![CONTACT_JOB, ("contact", "blocked@example.com")],
            "contact",
            "is blocked",
        ),
        (c_id, vec![CONTACT_JOB], "contact", "Choose the contact"),
        (
            s_id,
            vec![system_job, ("system_user", "x")],
            "system_user",
            "Choose one of the options",
        ),
        (
            s_id,
            vec![system_job, ("system_user", "999999")],
            "system_user",
            "enabled system user",
        ),
    ] {
        job_refused(&app, &client, case).await;
    }
}

async fn define_job_refuses_a_delay_out_of_bounds(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let (c_id, _, _) = three_sides(&app, &client).await;
    for (delay, unit, value, field, message) in [
        ("yes", "minutes", "", "delay_value", "Enter the delay"),
        ("yes", "minutes", "0", "delay_value", "at least 1"),
        ("yes", "minutes", "-1", "delay_value", "at least 1"),
        ("yes", "minutes", "1e9", "delay_value", "at least 1"),
        ("yes", "minutes", "abc", "delay_value", "at least 1"),
        (
            "yes",
            "years",
            "1",
            "delay_unit",
            "Minutes, Hours, Days or Weeks",
        ),
        ("yes", "weeks", "53", "delay_value", "at most 365 days"),
        ("yes", "days", "366", "delay_value", "at most 365 days"),
        (
            "maybe",
            "minutes",
            "1",
            "delay",
            "Choose one of the options",
        ),
    ] {
        let values = vec![
            CONTACT_JOB,
            ("use_event_parameter", "on"),
            ("delay", delay),
            ("delay_unit", unit),
            ("delay_value", value),
        ];
        job_refused(&app, &client, (c_id, values, field, message)).await;
    }
}

async fn define_job_saves_a_fixed_contact_and_a_fixed_system_user(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let (c_id, s_id, _) = three_sides(&app, &client).await;
    let contact_job = CONTACT_JOB;
    // Valid: a fixed contact by email; the S job with a fixed system user; Edit Event goes back and saves.
    let r = app
        .submit_with(
            &client,
            "/contacts/new",
            "/contacts",
            &[("email", "fixed@example.com")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = define_job(
        &app,
        &client,
        c_id,
        &[
            contact_job,
            ("contact", "Fixed@Example.com"),
            ("action", "edit_event"),
        ],
    )
    .await;
    assert_eq!(location(&r), format!("/automations/{c_id}/event"));
    let a = automations::store::find(&app.state.db, herald::types::AutomationId(c_id))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        a.target,
        Some(automations::model::Target::Contact(_))
    ));
    let admin = herald::auth::users::list(&app.state.db).await.unwrap()[0]
        .id
        .to_string();
    let r = define_job(
        &app,
        &client,
        s_id,
        &[
            ("job", "send_new_password_to_system_user"),
            ("system_user", &admin),
            ("action", "time_frame"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

async fn cancel_leaves_define_job_without_saving(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let (_, _, h_id) = three_sides(&app, &client).await;
    // Cancel (its own button, which posts the window elsewhere) leaves without
    // saving, back to the automation.
    let page = format!("/automations/{h_id}/job");
    let (_, html) = app.page_with(&client, &page).await;
    assert!(
        html.contains(&format!(
            "formaction=\"/automations/{h_id}/cancel\" formnovalidate>Cancel<"
        )),
        "{html}"
    );
    let mut form = app.form_with(&client, &page, &page).await;
    form.set("job", "bogus");
    form.action = format!("/automations/{h_id}/cancel");
    let r = app.post_form_with(&client, &form).await;
    assert_eq!(location(&r), format!("/automations/{h_id}"));
    assert!(
        automations::store::find(&app.state.db, herald::types::AutomationId(h_id))
            .await
            .unwrap()
            .is_some()
    );
}

async fn changing_the_event_to_the_other_scope_clears_a_job_that_no_longer_fits(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let (c_id, _, _) = three_sides(&app, &client).await;
    let r = define_job(
        &app,
        &client,
        c_id,
        &[
            CONTACT_JOB,
            ("use_event_parameter", "on"),
            ("action", "time_frame"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        automations::store::find(&app.state.db, herald::types::AutomationId(c_id))
            .await
            .unwrap()
            .unwrap()
            .job
            .is_some()
    );
    // Changing the event to the other scope clears a job that no longer fits.
    let r = app
        .submit_with(
            &client,
            &format!("/automations/{c_id}/event"),
            &format!("/automations/{c_id}/event"),
            &[("event", "system_user_created")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        automations::store::find(&app.state.db, herald::types::AutomationId(c_id))
            .await
            .unwrap()
            .unwrap()
            .job
            .is_none()
    );
}

async fn status_follows_the_clock_and_activation(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let start = app
        .clock
        .now()
        .checked_add(jiff::SignedDuration::from_hours(24))
        .unwrap();
    let end = start
        .checked_add(jiff::SignedDuration::from_hours(24))
        .unwrap();
    let fmt = |t: jiff::Timestamp| {
        t.to_zoned(jiff::tz::TimeZone::UTC)
            .strftime("%Y-%m-%dT%H:%M")
            .to_string()
    };
    let id = active_automation(&app, &client, "Timed", &fmt(start), &fmt(end)).await;
    let draft = new_automation(&app, &client, "Draft", "new_password_requested").await;
    let status = |app: &TestApp, id: i64| {
        let db = app.state.db.clone();
        let now = app.now_ms();
        async move {
            automations::store::find(&db, herald::types::AutomationId(id))
                .await
                .unwrap()
                .unwrap()
                .status(now)
        }
    };
    assert_eq!(status(&app, id).await, Status::Scheduled);
    assert_eq!(status(&app, draft).await, Status::Inactive);
    let (_, html) = app
        .page_with(&client, "/automations?status=scheduled")
        .await;
    assert!(html.contains("Timed") && !html.contains(">Draft<"));
    app.clock.advance(Duration::from_secs(36 * 3600));
    // (Hours passed: the old session has ended; sign in again.)
    let (client, _) = app.signed_in(Role::Marketer).await;
    assert_eq!(status(&app, id).await, Status::Running);
    let (_, html) = app.page_with(&client, "/automations?status=running").await;
    assert!(
        text_of(&html, &format!("tr[data-id=\"{id}\"]"))
            .unwrap()
            .contains("Running")
    );
    app.clock.advance(Duration::from_secs(24 * 3600));
    let (client, _) = app.signed_in(Role::Marketer).await;
    assert_eq!(status(&app, id).await, Status::Done);
    let (_, html) = app.page_with(&client, "/automations?status=done").await;
    assert!(html.contains("Timed"));
    // Deactivate with the overview's checkbox and button.
    let mut form = app
        .form_with(&client, "/automations", "/automations/state")
        .await;
    form.fields.push(("ids".into(), id.to_string()));
    form.set("action", "deactivate");
    assert_eq!(
        app.post_form_with(&client, &form).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(status(&app, id).await, Status::Deactivated);
    // An incomplete draft is not activated, and says why.
    let mut form = app
        .form_with(&client, "/automations", "/automations/state")
        .await;
    form.fields.push(("ids".into(), draft.to_string()));
    form.fields.push(("ids".into(), id.to_string()));
    form.set("action", "activate");
    app.post_form_with(&client, &form).await;
    assert_eq!(status(&app, draft).await, Status::Inactive);
    assert_eq!(
        status(&app, id).await,
        Status::Done,
        "reactivated, past its end"
    );
    let (_, html) = app.page_with(&client, "/automations").await;
    assert!(html.contains("Not activated, because their job or time frame is missing: Draft."));
    let (_, html) = app.page_with(&client, "/automations?q=dra").await;
    assert!(
        html.contains(">Draft<") && !html.contains(">Timed<"),
        "search by name"
    );
    assert_eq!(
        app.get_with(&client, "/automations?page=x").await.status(),
        StatusCode::BAD_REQUEST
    );
}

async fn copy_and_delete_with_audit(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let id = active_automation(&app, &client, "Original", "2026-01-01T00:00", "").await;
    let r = app
        .submit_with(
            &client,
            &format!("/automations/{id}"),
            &format!("/automations/{id}/copy"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let copy_id: i64 = location(&r)
        .trim_start_matches("/automations/")
        .trim_end_matches("/event")
        .parse()
        .unwrap();
    let copy = automations::store::find(&app.state.db, herald::types::AutomationId(copy_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(copy.name, "Copy of Original");
    assert_eq!(copy.status(app.now_ms()), Status::Inactive);
    assert!(copy.is_complete());
    // Cancel on the copy's first window, nothing saved: the copy is discarded,
    // back to the original.
    let cancel = |copy_id: i64, window: &'static str| {
        let (app, client) = (&app, &client);
        async move {
            let page = format!("/automations/{copy_id}/{window}");
            let mut form = app.form_with(client, &page, &page).await;
            form.action = format!("/automations/{copy_id}/cancel");
            app.post_form_with(client, &form).await
        }
    };
    let r = cancel(copy_id, "event").await;
    assert_eq!(location(&r), format!("/automations/{id}"));
    assert!(
        automations::store::find(&app.state.db, herald::types::AutomationId(copy_id))
            .await
            .unwrap()
            .is_none()
    );
    let (_, page) = app.page_with(&client, &location(&r)).await;
    assert!(
        page.contains("Cancelled: the copy Copy of Original was discarded."),
        "{page}"
    );
    // Once a window of the copy is saved, Cancel keeps it (and what was saved).
    let r = app
        .submit_with(
            &client,
            &format!("/automations/{id}"),
            &format!("/automations/{id}/copy"),
            &[],
        )
        .await;
    let copy_id: i64 = location(&r)
        .trim_start_matches("/automations/")
        .trim_end_matches("/event")
        .parse()
        .unwrap();
    let page = format!("/automations/{copy_id}/event");
    let r = app
        .submit_with(&client, &page, &page, &[("name", "Renamed copy")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = cancel(copy_id, "job").await;
    assert_eq!(location(&r), format!("/automations/{copy_id}"));
    let kept = automations::store::find(&app.state.db, herald::types::AutomationId(copy_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.name, "Renamed copy");
    // Cancel on Define Time Frame drops what was changed there.
    let page = format!("/automations/{copy_id}/time-frame");
    let mut form = app.form_with(&client, &page, &page).await;
    form.set("time_zone", "Asia/Tokyo");
    form.action = format!("/automations/{copy_id}/cancel");
    let r = app.post_form_with(&client, &form).await;
    assert_eq!(location(&r), format!("/automations/{copy_id}"));
    let kept = automations::store::find(&app.state.db, herald::types::AutomationId(copy_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.time_zone, copy.time_zone);
    let r = app
        .submit_with(
            &client,
            &format!("/automations/{id}/delete"),
            &format!("/automations/{id}/delete"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        automations::store::find(&app.state.db, herald::types::AutomationId(id))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        app.get_with(&client, &format!("/automations/{id}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let stored = app.all_stored_text().await;
    assert!(stored.contains("automation.deleted"));
    // The audit entry names the copy and its original.
    let (target, detail): (String, String) = sqlx::query_as("SELECT target, detail FROM audit_log WHERE action = 'automation.created' AND detail LIKE 'copy of%'")
            .fetch_one(app.state.db.read()).await.unwrap();
    assert_eq!(
        (target.as_str(), detail.as_str()),
        ("Copy of Original", "copy of Original")
    );
}

async fn a_start_inside_a_dst_change_is_kept_in_its_zone(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let id = new_automation(&app, &client, "DST", "new_password_requested").await;
    define_job(
        &app,
        &client,
        id,
        &[
            ("job", "send_new_password_to_contact"),
            ("use_event_parameter", "on"),
            ("action", "time_frame"),
        ],
    )
    .await;
    // 2026-10-25 02:30 happens twice in Berlin: the first (CEST) is taken.
    let r = define_time_frame(
        &app,
        &client,
        id,
        &[
            ("start", "2026-10-25T02:30"),
            ("end", "2026-03-29T03:30"),
            ("time_zone", "Europe/Berlin"),
            ("action", "close"),
        ],
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "end before start"
    );
    let r = define_time_frame(
        &app,
        &client,
        id,
        &[
            ("start", "2026-10-25T02:30"),
            ("end", "2027-03-28T02:30"),
            ("time_zone", "Europe/Berlin"),
            ("action", "define_job"),
        ],
    )
    .await;
    assert_eq!(
        location(&r),
        format!("/automations/{id}/job"),
        "going back to Define Job saves too"
    );
    let a = automations::store::find(&app.state.db, herald::types::AutomationId(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        a.start_at,
        Some(
            "2026-10-25T00:30:00Z"
                .parse::<jiff::Timestamp>()
                .unwrap()
                .as_millisecond()
        )
    );
    // 2027-03-28 02:30 does not exist in Berlin: it becomes 03:30 CEST.
    assert_eq!(
        a.end_at,
        Some(
            "2027-03-28T01:30:00Z"
                .parse::<jiff::Timestamp>()
                .unwrap()
                .as_millisecond()
        )
    );
    let (_, html) = app.page_with(&client, &format!("/automations/{id}")).await;
    assert!(
        html.contains("2026-10-25 02:30 CEST") && html.contains("2027-03-28 03:30 CEST"),
        "{html}"
    );
}

async fn the_stepper_leads_to_saved_windows_and_an_active_automation_says_so(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    // A new automation: nothing saved, nothing to lead to.
    let (_, html) = app.page_with(&client, "/automations/new").await;
    let stepper = text_of(&html, "nav[aria-label=\"Wizard steps\"]").unwrap();
    assert!(
        stepper.contains("Edit Event") && !html.contains("href=\"/automations/new/"),
        "{stepper}"
    );
    // Saved without a job: Define Job is a link, the time frame not yet.
    let id = new_automation(&app, &client, "Steps", "new_password_requested").await;
    let (_, html) = app
        .page_with(&client, &format!("/automations/{id}/event"))
        .await;
    assert!(
        html.contains(&format!("href=\"/automations/{id}/job\"")),
        "Define Job is a link"
    );
    assert!(
        !html.contains(&format!("href=\"/automations/{id}/time-frame\"")),
        "no time frame before a job"
    );
    assert!(text_of(&html, "#live-note").is_none(), "not active");
    // Active: every other window is a link, and each window says changes apply from now on.
    let id = active_automation(&app, &client, "Live one", "2026-01-01T00:00", "").await;
    for (window, others) in [
        ("event", ["job", "time-frame"]),
        ("job", ["event", "time-frame"]),
        ("time-frame", ["event", "job"]),
    ] {
        let (_, html) = app
            .page_with(&client, &format!("/automations/{id}/{window}"))
            .await;
        for other in others {
            assert!(
                html.contains(&format!("href=\"/automations/{id}/{other}\"")),
                "{window} leads to {other}"
            );
        }
        assert!(
            text_of(&html, "#live-note")
                .unwrap()
                .contains("apply to events from now on"),
            "{window}"
        );
    }
}

async fn try_it_from_define_time_frame_answers_for_what_is_on_screen(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let id = new_automation(&app, &client, "Weekdays", "new_password_requested").await;
    define_job(
        &app,
        &client,
        id,
        &[
            ("job", "send_new_password_to_contact"),
            ("use_event_parameter", "on"),
            ("action", "time_frame"),
        ],
    )
    .await;
    // Berlin, no weekend — then Try it, without saving first.
    let page = format!("/automations/{id}/time-frame");
    let mut form = app.form_with(&client, &page, &page).await;
    form.remove("day_sat")
        .remove("day_sun")
        .set("time_zone", "Europe/Berlin")
        .set("action", "try");
    let r = app.post_form_with(&client, &form).await;
    assert_eq!(location(&r), format!("/automations/{id}/try"));
    let a = automations::store::find(&app.state.db, herald::types::AutomationId(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        a.time_zone, "Europe/Berlin",
        "what was on screen is what Try it sees"
    );
    assert_eq!(
        a.state,
        automations::model::State::Inactive,
        "saved, not activated"
    );
    let (_, html) = app.page_with(&client, &page).await;
    let doc = scraper::Html::parse_document(&html);
    let sat = doc
        .select(&scraper::Selector::parse("#day_sat").unwrap())
        .next()
        .unwrap();
    assert!(
        sat.value().attr("checked").is_none(),
        "Saturday stays unticked"
    );
    // Every wizard window marks itself for the warning before leaving unsaved changes.
    assert!(html.contains("id=\"define-time-frame\" data-unsaved-warning"));
}

on_both_engines!(
    edit_event_opens_the_wizard_and_leaves_an_inactive_draft,
    define_job_offers_only_the_jobs_that_fit_the_event,
    define_time_frame_starts_from_the_defaults,
    the_three_windows_save_an_automation_the_overview_lists,
    reopening_each_window_shows_the_saved_values,
    edit_event_refuses_every_bad_field,
    define_time_frame_refuses_every_bad_field,
    define_job_refuses_a_job_of_the_other_scope,
    define_job_refuses_a_target_it_cannot_reach,
    define_job_refuses_a_delay_out_of_bounds,
    define_job_saves_a_fixed_contact_and_a_fixed_system_user,
    cancel_leaves_define_job_without_saving,
    changing_the_event_to_the_other_scope_clears_a_job_that_no_longer_fits,
    status_follows_the_clock_and_activation,
    copy_and_delete_with_audit,
    a_start_inside_a_dst_change_is_kept_in_its_zone,
    the_stepper_leads_to_saved_windows_and_an_active_automation_says_so,
    try_it_from_define_time_frame_answers_for_what_is_on_screen
);
