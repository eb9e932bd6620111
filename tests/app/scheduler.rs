//! The scheduler and the Send New Password jobs, with a real SMTP server over TCP.

use std::time::{Duration, Instant};

use herald::auth::users::Role;
use herald::auth::{Plaintext, Priority};
use herald::clock::Clock;
use herald::contacts::{self, ContactForm};
use herald::events::catalogue::{EventType, NewEvent, Source};
use reqwest::{Client, StatusCode};

use crate::automations::{define_job, define_time_frame, new_automation};
use crate::helpers::TestApp;
use crate::smtp::{SmtpServer, password_in};

/// Creates and activates "New Password Requested (C) → Send New Password to
/// Contact (C), Use Event Parameter" with the given extra job/time-frame fields.
pub(crate) async fn password_automation(
    app: &TestApp,
    client: &Client,
    job: &[(&str, &str)],
    frame: &[(&str, &str)],
) -> i64 {
    let id = new_automation(app, client, "Password on request", "new_password_requested").await;
    let mut values = vec![
        ("job", "send_new_password_to_contact"),
        ("use_event_parameter", "on"),
        ("action", "time_frame"),
    ];
    values.extend_from_slice(job);
    assert_eq!(
        define_job(app, client, id, &values).await.status(),
        StatusCode::SEE_OTHER
    );
    let mut values = vec![
        ("start", "2026-01-01T00:00"),
        ("time_zone", "UTC"),
        ("action", "activate"),
    ];
    values.extend_from_slice(frame);
    let r = define_time_frame(app, client, id, &values).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap_or_default()
    );
    id
}

/// A contact with a permanent password.
pub(crate) async fn contact(app: &TestApp, email: &str, password: &str) -> i64 {
    let input = ContactForm {
        email: email.into(),
        first_name: "Cleo".into(),
        ..Default::default()
    }
    .parse()
    .unwrap();
    let mut tx = app.state.db.begin().await.unwrap();
    let id = contacts::create(&mut tx, &input, Source::Ui, app.now_ms())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let hash = app
        .state
        .hasher
        .hash(&Plaintext::new(password), Priority::Interactive)
        .await
        .unwrap();
    sqlx::query("UPDATE contacts SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(id)
        .execute(app.state.db.write())
        .await
        .unwrap();
    id
}

/// Records New Password Requested (C) for the contact, as the preference center will.
pub(crate) async fn request_password(app: &TestApp, contact_id: i64) -> i64 {
    let mut tx = app.state.db.begin().await.unwrap();
    let id = herald::intake::events::record(
        &mut tx,
        app.now_ms(),
        &NewEvent::contact(EventType::NewPasswordRequested, contact_id),
    )
    .await
    .unwrap();
    app.state.db.commit(tx).await.unwrap();
    id.0
}

/// (permanent hash, temporary hash) of a contact.
pub(crate) async fn credentials(app: &TestApp, id: i64) -> (Option<String>, Option<String>) {
    sqlx::query_as("SELECT password_hash, temp_hash FROM contacts WHERE id = $1")
        .bind(id)
        .fetch_one(app.state.db.read())
        .await
        .unwrap()
}

async fn verifies(app: &TestApp, password: &str, hash: Option<&str>) -> bool {
    app.state
        .hasher
        .verify(&Plaintext::new(password), hash, Priority::Interactive)
        .await
}

pub(crate) async fn runs(app: &TestApp, automation: i64) -> Vec<herald::scheduler::runs::RunRow> {
    herald::scheduler::runs::runs_of(&app.state.db, herald::types::AutomationId(automation), 100)
        .await
        .unwrap()
}

async fn password_length_and_rate_limit_come_from_the_settings(app: TestApp, smtp: SmtpServer) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let r = app
        .submit_with(
            &admin,
            "/admin/settings",
            "/admin/settings",
            &[("password_length", "11")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "at least 12");
    let r = app
        .submit_with(
            &admin,
            "/admin/settings",
            "/admin/settings",
            &[
                ("password_length", "24"),
                ("password_emails_per_hour", "1"),
                ("default_time_zone", "Asia/Tokyo"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    password_automation(&app, &admin, &[], &[]).await;
    let cleo = contact(&app, "cleo@example.com", "cleo's own password").await;
    request_password(&app, cleo).await;
    app.drain_due_runs().await;
    request_password(&app, cleo).await;
    app.drain_due_runs().await;
    assert_eq!(smtp.count(), 1, "one per hour");
    assert_eq!(password_in(&smtp.messages()[0].data).chars().count(), 24);
    // Its expiry is in the business's zone (Settings), not the automation's UTC.
    assert!(
        smtp.messages()[0].data.contains(" JST."),
        "{}",
        smtp.messages()[0].data
    );
}

/// The groups Newsletter and Offers (shown in the preference center) and VIP
/// (not shown), by name.
async fn three_groups(
    app: &TestApp,
    staff: &reqwest::Client,
) -> std::collections::HashMap<&'static str, i64> {
    let mut groups = std::collections::HashMap::new();
    for (name, visible) in [("Newsletter", true), ("Offers", true), ("VIP", false)] {
        let mut values = vec![("name", name), ("description", "About things")];
        if visible {
            values.push(("visible_in_preference_center", "on"));
        }
        let id = app.new_group(staff, &values, false).await;
        groups.insert(name, id);
    }
    groups
}

async fn an_emailed_password_forces_a_change_then_only_the_new_one_signs_in(
    app: TestApp,
    smtp: SmtpServer,
) {
    let (staff, _) = app.signed_in(Role::Marketer).await;
    password_automation(&app, &staff, &[], &[]).await;
    let input = ContactForm {
        email: "cleo@example.com".into(),
        first_name: "Cleo".into(),
        ..Default::default()
    }
    .parse()
    .unwrap();
    let mut tx = app.state.db.begin().await.unwrap();
    contacts::create(&mut tx, &input, Source::Api, app.now_ms())
        .await
        .unwrap();
    app.state.db.commit(tx).await.unwrap();
    let contact = crate::helpers::browser();
    let r = app
        .submit_with(
            &contact,
            "/preferences/forgot",
            "/preferences/forgot",
            &[("email", "Cleo@Example.com")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.events_of("new_password_requested", 1).await,
        1,
        "recorded after the answer"
    );
    app.drain_due_runs().await;
    let password = password_in(&smtp.last_to("cleo@example.com").expect("the email").data);
    let r = app
        .contact_sign_in(&contact, "cleo@example.com", &password)
        .await;
    assert_eq!(
        crate::helpers::location(&r),
        "/preferences/password",
        "the emailed password forces a change"
    );
    assert_eq!(
        crate::helpers::location(&app.get_with(&contact, "/preferences").await),
        "/preferences/password"
    );
    let r = app
        .submit_with(
            &contact,
            "/preferences/password",
            "/preferences/password",
            &[
                ("new_password", "cleo chose this one"),
                ("confirm_password", "cleo chose this one"),
            ],
        )
        .await;
    assert_eq!(crate::helpers::location(&r), "/preferences");
    let fresh = crate::helpers::browser();
    let r = app
        .contact_sign_in(&fresh, "cleo@example.com", "cleo chose this one")
        .await;
    assert_eq!(
        crate::helpers::location(&r),
        "/preferences",
        "the new password signs in"
    );
    let r = app
        .submit_with(
            &crate::helpers::browser(),
            "/preferences/login",
            "/preferences/login",
            &[("email", "cleo@example.com"), ("password", &password)],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the emailed one no longer does"
    );
    // Signing out ends the session on the server.
    let r = app
        .submit_with(&fresh, "/preferences", "/preferences/logout", &[])
        .await;
    assert_eq!(
        crate::helpers::location(&r),
        "/preferences/login?signed_out=1"
    );
    assert_eq!(
        crate::helpers::location(&app.get_with(&fresh, "/preferences").await),
        "/preferences/login"
    );
}

async fn a_contact_changes_only_their_visible_groups_and_their_name(
    app: TestApp,
    _smtp: SmtpServer,
) {
    let (staff, _) = app.signed_in(Role::Marketer).await;
    let groups = three_groups(&app, &staff).await;
    let cleo = contact(&app, "cleo@example.com", "cleo chose this one").await;
    let mut tx = app.state.db.begin().await.unwrap();
    for group in ["VIP", "Offers"] {
        contacts::join_group(&mut tx, cleo, groups[group], app.now_ms())
            .await
            .unwrap();
    }
    app.state.db.commit(tx).await.unwrap();
    let before = app.events().await.len();
    let fresh = crate::helpers::browser();
    let r = app
        .contact_sign_in(&fresh, "cleo@example.com", "cleo chose this one")
        .await;
    assert_eq!(crate::helpers::location(&r), "/preferences");
    let (_, html) = app.page_with(&fresh, "/preferences").await;
    let mut form = crate::helpers::find_form(&html, "/preferences");
    assert_eq!(
        form.get("group"),
        Some(groups["Offers"].to_string().as_str()),
        "only the visible membership is shown"
    );
    assert!(!html.contains("VIP"));
    form.remove("group");
    form.fields
        .push(("group".into(), groups["Newsletter"].to_string()));
    form.set("first_name", "Cleopatra");
    let r = app.post_form_with(&fresh, &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let events = app.events().await;
    let new: Vec<(&str, Option<i64>)> = events[before..]
        .iter()
        .map(|e| (e.0.as_str(), e.2))
        .collect();
    assert_eq!(
        new,
        [
            ("subscribed_to_group", Some(groups["Newsletter"])),
            ("unsubscribed_from_group", Some(groups["Offers"])),
            ("profile_data_changed", None),
        ]
    );
    assert_eq!(
        events.last().unwrap().3["changed"],
        serde_json::json!(["first_name"])
    );
    let mine: Vec<String> = contacts::groups::of_contact(&app.state.db, cleo)
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.name)
        .collect();
    assert_eq!(
        mine,
        ["Newsletter", "VIP"],
        "the hidden membership survives"
    );
}

async fn a_system_user_gets_a_password_that_forces_a_change(app: TestApp, smtp: SmtpServer) {
    let (client, _) = app.signed_in(Role::Admin).await;
    let id = new_automation(&app, &client, "Password on sign-in", "logged_on_to_system").await;
    let (_, html) = app
        .page_with(&client, &format!("/automations/{id}/job"))
        .await;
    assert!(
        html.contains("value=\"send_new_password_to_system_user\"")
            && !html.contains("value=\"send_new_password_to_contact\""),
        "only (S) jobs"
    );
    assert_eq!(
        define_job(
            &app,
            &client,
            id,
            &[
                ("job", "send_new_password_to_system_user"),
                ("use_event_parameter", "on"),
                ("action", "time_frame")
            ]
        )
        .await
        .status(),
        StatusCode::SEE_OTHER
    );
    define_time_frame(
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
    app.create_user("sam@example.com", Role::Marketer, "sam's long password")
        .await;
    let sam = crate::helpers::browser();
    assert_eq!(
        app.sign_in_with(&sam, "sam@example.com", "sam's long password")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    app.drain_due_runs().await;
    let mail = smtp
        .last_to("sam@example.com")
        .expect("an email to the system user");
    let password = password_in(&mail.data);
    let text = crate::smtp::text_part(&mail.data);
    assert!(
        text.contains(&format!("{}login", app.state.config.base_url)),
        "the staff sign-in link:\n{text}"
    );
    // The emailed password is a temporary one: it leads to choosing a new password.
    let fresh = crate::helpers::browser();
    let r = app.sign_in_with(&fresh, "sam@example.com", &password).await;
    assert_eq!(crate::helpers::location(&r), "/password");
    // (That sign-in fired the event again: the rate limit allows 3 an hour.)
    assert_eq!(
        app.sign_in_with(
            &crate::helpers::browser(),
            "sam@example.com",
            "sam's long password"
        )
        .await
        .status(),
        StatusCode::SEE_OTHER,
        "the old password still works until changed"
    );
}

async fn the_reminder_goes_out_days_before_the_end(app: TestApp, smtp: SmtpServer) {
    let (client, email) = app.signed_in(Role::Marketer).await;
    let me = herald::auth::users::find_by_email(&app.state.db, &email)
        .await
        .unwrap()
        .unwrap();
    let end = app
        .clock
        .now()
        .checked_add(jiff::SignedDuration::from_hours(40 * 24))
        .unwrap();
    let end = end
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%Y-%m-%dT%H:%M")
        .to_string();
    let automation = password_automation(
        &app,
        &client,
        &[],
        &[
            ("end", &end),
            ("notify", &me.id.to_string()),
            ("notify_days", "30"),
        ],
    )
    .await;
    app.drain_due_runs().await;
    assert!(smtp.messages().is_empty(), "not yet");
    app.advance(Duration::from_secs(9 * 24 * 3600));
    app.drain_due_runs().await;
    assert!(smtp.messages().is_empty(), "not 31 days before the end");
    app.advance(Duration::from_secs(24 * 3600 + 120));
    app.drain_due_runs().await;
    let mail = smtp.last_to(&email).expect("the reminder");
    assert!(
        mail.data
            .contains("Subject: Automation \"Password on request\" ends on"),
        "{}",
        mail.data
    );
    assert!(
        crate::smtp::text_part(&mail.data)
            .contains(&format!("automations/{automation}/time-frame"))
    );
    assert_eq!(smtp.count(), 1, "one reminder");
}

async fn the_emailed_password_signs_in_and_the_old_one_still_works(app: TestApp, smtp: SmtpServer) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let automation = password_automation(&app, &client, &[], &[]).await;
    let cleo = contact(&app, "cleo@example.com", "cleo's own password").await;
    let started = Instant::now();
    request_password(&app, cleo).await;
    // A run due now starts because intake wakes the worker, which otherwise sleeps for
    // an hour with nothing queued. (How late it starts is measured by the benchmarks,
    // not here: a millisecond bound fails on a busy machine.)
    loop {
        let r = runs(&app, automation).await;
        if r.first().is_some_and(|r| r.status.code() != "pending") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the run did not start: the worker was not woken"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    app.drain_due_runs().await;
    let run = &runs(&app, automation).await[0];
    assert_eq!(run.status.code(), "done", "{run:?}");
    assert_eq!(run.target(), "contact #".to_string() + &cleo.to_string());
    let mail = smtp.last_to("cleo@example.com").expect("the email arrived");
    assert!(
        mail.data.contains(run.message_id.as_deref().unwrap()),
        "Message-ID stored"
    );
    assert!(mail.data.contains("Subject: Your new password for Herald"));
    assert!(mail.data.to_lowercase().contains("multipart/alternative"));
    let password = password_in(&mail.data);
    assert_eq!(password.len(), 16, "{password:?}");
    let (permanent, temporary) = credentials(&app, cleo).await;
    assert!(
        temporary
            .as_deref()
            .unwrap()
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
    );
    assert!(
        verifies(&app, &password, temporary.as_deref()).await,
        "the emailed password is the temporary credential"
    );
    assert!(
        verifies(&app, "cleo's own password", permanent.as_deref()).await,
        "the old password still works"
    );
    assert!(
        !app.all_stored_text().await.contains(&password),
        "no plaintext stored"
    );
    let stored: Vec<(String,)> = sqlx::query_as(
        "SELECT errors || COALESCE(outcome, '') || COALESCE(message_id, '') FROM job_runs",
    )
    .fetch_all(app.state.db.read())
    .await
    .unwrap();
    assert!(!stored.iter().any(|(s,)| s.contains(&password)));
    // The delivery is audited once, with the run's completion.
    let audited: Vec<(String, String, String, Option<i64>, String)> = sqlx::query_as(
            "SELECT actor, target, detail, actor_id, ip FROM audit_log WHERE action = 'password.delivered'",
        )
        .fetch_all(app.state.db.read())
        .await
        .unwrap();
    assert_eq!(audited.len(), 1, "{audited:?}");
    let (actor, target, detail, actor_id, ip) = &audited[0];
    assert_eq!(
        (actor.as_str(), target.as_str(), *actor_id, ip.as_str()),
        ("scheduler", "cleo@example.com", None, "")
    );
    assert!(
        detail.starts_with(&format!("run #{}, automation #{automation} (", run.id)),
        "{detail}"
    );
    let text = crate::smtp::text_part(&mail.data);
    let link = format!("{}preferences/login", app.state.config.base_url);
    assert!(
        text.contains(&link),
        "link from the configured base URL {link}:\n{text}"
    );
    // The detail page lists the run.
    let (_, html) = app
        .page_with(&client, &format!("/automations/{automation}"))
        .await;
    assert!(html.contains("delivered"));
}

async fn a_done_run_is_counted_on_the_dashboard_and_in_the_metrics(app: TestApp, smtp: SmtpServer) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    password_automation(&app, &client, &[], &[]).await;
    let cleo = contact(&app, "cleo@example.com", "cleo's own password").await;
    request_password(&app, cleo).await;
    app.drain_due_runs().await;
    let password = password_in(&smtp.last_to("cleo@example.com").expect("the email").data);
    // The dashboard counts it and charts it (server-rendered SVG).
    let (_, html) = app.page_with(&client, "/dashboard").await;
    assert_eq!(crate::helpers::text_of(&html, "#done-24h").unwrap(), "1");
    assert_eq!(
        crate::helpers::text_of(&html, "#active-automations").unwrap(),
        "1"
    );
    assert!(
        html.contains("<svg class=\"herald-chart\"") && html.contains(": 1 done</title>"),
        "chart bar"
    );
    assert!(
        crate::helpers::text_of(&html, "#chart-legend")
            .unwrap()
            .contains("Done (1)")
    );
    // Prometheus metrics: runs by status and the latency histograms, no secret.
    let metrics = reqwest::Client::new()
        .get(app.url("/metrics"))
        .bearer_auth(crate::helpers::METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("herald_runs{status=\"done\"} 1"),
        "{metrics}"
    );
    for name in [
        "herald_run_lateness_seconds_count",
        "herald_smtp_send_seconds_count",
        "herald_http_request_seconds_bucket",
        "herald_run_attempts_total",
    ] {
        assert!(metrics.contains(name), "{name} missing");
    }
    assert!(!metrics.contains(&password));
    crate::helpers::assert_promtool_accepts(&metrics);
}

async fn a_delay_runs_later_and_excluded_days_move_to_midnight(app: TestApp, smtp: SmtpServer) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let automation = password_automation(
        &app,
        &client,
        &[
            ("delay", "yes"),
            ("delay_unit", "minutes"),
            ("delay_value", "10"),
        ],
        &[],
    )
    .await;
    let cleo = contact(&app, "cleo@example.com", "cleo's own password").await;
    request_password(&app, cleo).await;
    app.drain_due_runs().await;
    app.advance(Duration::from_secs(9 * 60));
    app.drain_due_runs().await;
    assert!(smtp.messages().is_empty(), "not before the delay");
    assert_eq!(runs(&app, automation).await[0].status.code(), "pending");
    // Waiting, the run already names whom it is for (the event's contact), linked.
    let (_, html) = app
        .page_with(&client, &format!("/automations/{automation}"))
        .await;
    let row = crate::helpers::text_of(&html, "#runs tbody tr").unwrap();
    assert!(
        row.contains("cleo@example.com") && !row.contains('—'),
        "{row}"
    );
    assert!(html.contains(&format!("href=\"/contacts/{cleo}\"")));
    app.advance(Duration::from_secs(60));
    app.drain_due_runs().await;
    assert_eq!(runs(&app, automation).await[0].status.code(), "done");
    assert_eq!(smtp.count(), 1);
    // A pending run can be cancelled from the automation's page.
    request_password(&app, cleo).await;
    let pending = runs(&app, automation).await[0].id;
    let page = format!("/automations/{automation}");
    let r = app
        .submit_with(
            &client,
            &page,
            &format!("{page}/runs/{pending}/cancel"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    app.advance(Duration::from_secs(11 * 60));
    app.drain_due_runs().await;
    assert_eq!(runs(&app, automation).await[0].status.code(), "cancelled");
    assert_eq!(smtp.count(), 1, "nothing sent for the cancelled run");

    // A run that could not start within 24 h of its due time expires instead of
    // sending an old password.
    request_password(&app, cleo).await;
    app.clock.advance(Duration::from_secs(25 * 3600));
    app.drain_due_runs().await;
    let run = &runs(&app, automation).await[0];
    assert_eq!(run.status.code(), "expired", "{run:?}");
    assert_eq!(smtp.count(), 1);
    let (client, _) = app.signed_in(Role::Marketer).await;

    // Today excluded (in Europe/Berlin): due at 00:00 of the next allowed day there.
    let zone = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
    let today = app.clock.now().to_zoned(zone.clone()).date();
    let day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        [today.weekday().to_monday_zero_offset() as usize];
    let other = new_automation(&app, &client, "Not today", "new_password_requested").await;
    define_job(
        &app,
        &client,
        other,
        &[
            ("job", "send_new_password_to_contact"),
            ("use_event_parameter", "on"),
            ("action", "time_frame"),
        ],
    )
    .await;
    let page = format!("/automations/{other}/time-frame");
    let mut form = app.form_with(&client, &page, &page).await;
    form.remove(&format!("day_{day}"))
        .set("start", "2026-01-01T00:00")
        .set("time_zone", "Europe/Berlin")
        .set("action", "activate");
    assert_eq!(
        app.post_form_with(&client, &form).await.status(),
        StatusCode::SEE_OTHER
    );
    request_password(&app, cleo).await;
    let expected = today
        .tomorrow()
        .unwrap()
        .to_zoned(zone)
        .unwrap()
        .timestamp()
        .as_millisecond();
    let run = &runs(&app, other).await[0];
    assert_eq!((run.status.code(), run.due_at), ("pending", expected));
}

async fn the_selection_is_calculated_when_the_job_executes(app: TestApp, smtp: SmtpServer) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let r = app
        .submit_with(&client, "/groups/new", "/groups", &[("name", "Members")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let group = contacts::groups::list(&app.state.db).await.unwrap()[0].id;
    let id = new_automation(&app, &client, "Selective", "new_password_requested").await;
    let page = format!("/automations/{id}/event");
    app.submit_with(&client, &page, &page, &[("sel_group", &group.to_string())])
        .await;
    define_job(
        &app,
        &client,
        id,
        &[
            ("job", "send_new_password_to_contact"),
            ("use_event_parameter", "on"),
            ("delay", "yes"),
            ("delay_unit", "minutes"),
            ("delay_value", "5"),
            ("action", "time_frame"),
        ],
    )
    .await;
    define_time_frame(
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
    let mut people = Vec::new();
    for name in ["blocked", "deleted", "left", "stays"] {
        let c = contact(&app, &format!("{name}@example.com"), "a long password!").await;
        let mut tx = app.state.db.begin().await.unwrap();
        contacts::join_group(&mut tx, c, group, app.now_ms())
            .await
            .unwrap();
        app.state.db.commit(tx).await.unwrap();
        request_password(&app, c).await;
        people.push(c);
    }
    // During the delay: block one, delete one, remove one from the group.
    let mut tx = app.state.db.begin().await.unwrap();
    contacts::set_status(&mut tx, people[0], contacts::Status::Blocked, app.now_ms())
        .await
        .unwrap();
    contacts::delete(&mut tx, people[1]).await.unwrap();
    contacts::leave_group(&mut tx, people[2], group, app.now_ms())
        .await
        .unwrap();
    app.state.db.commit(tx).await.unwrap();
    app.advance(Duration::from_secs(5 * 60));
    app.drain_due_runs().await;
    let mut outcomes: Vec<(String, String)> = runs(&app, id)
        .await
        .into_iter()
        .map(|r| (r.status.code().to_string(), r.outcome.unwrap_or_default()))
        .collect();
    outcomes.reverse();
    assert_eq!(
        outcomes[0],
        ("skipped".into(), "the contact is blocked".into())
    );
    assert_eq!(
        outcomes[1],
        ("skipped".into(), "the contact no longer exists".into())
    );
    assert_eq!(outcomes[2].0, "skipped");
    assert!(
        outcomes[2].1.contains("does not meet the selection"),
        "{:?}",
        outcomes[2]
    );
    assert_eq!(outcomes[3], ("done".into(), "delivered".into()));
    let recipients: Vec<String> = smtp.messages().iter().flat_map(|m| m.to.clone()).collect();
    assert_eq!(recipients, ["stays@example.com"]);

    // Deactivated during the delay: no email.
    let stays = people[3];
    request_password(&app, stays).await;
    let mut form = app
        .form_with(&client, "/automations", "/automations/state")
        .await;
    form.fields.push(("ids".into(), id.to_string()));
    form.set("action", "deactivate");
    app.post_form_with(&client, &form).await;
    app.advance(Duration::from_secs(5 * 60));
    app.drain_due_runs().await;
    assert_eq!(
        runs(&app, id).await[0].outcome.as_deref(),
        Some("the automation is not active")
    );
    assert_eq!(smtp.count(), 1);
}

async fn a_mail_server_outage_is_retried_and_only_the_delivered_password_works(
    app: TestApp,
    mut smtp: SmtpServer,
) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let automation = password_automation(&app, &client, &[], &[]).await;
    let cleo = contact(&app, "cleo@example.com", "cleo's own password").await;
    smtp.stop();
    request_password(&app, cleo).await;
    app.drain_due_runs().await;
    let run = &runs(&app, automation).await[0];
    assert_eq!((run.status.code(), run.attempts), ("pending", 1), "{run:?}");
    assert!(
        run.last_error.as_deref().unwrap().contains("mail server"),
        "{run:?}"
    );
    assert!(run.due_at > app.now_ms(), "retried later, not at once");
    // Staff see the outage: the dashboard counts the run retrying and names the
    // cause and since when; the overview counts the failed attempt.
    let (_, html) = app.page_with(&client, "/dashboard").await;
    assert_eq!(
        crate::helpers::text_of(&html, "#retrying-runs").unwrap(),
        "1"
    );
    let note = crate::helpers::text_of(&html, "#retry-note").unwrap();
    assert!(
        note.contains("1 run is waiting to be tried again")
            && note.contains("mail server")
            && note.contains("failing since"),
        "{note}"
    );
    let (_, html) = app.page_with(&client, "/automations").await;
    let row = crate::helpers::text_of(&html, &format!("tr[data-id=\"{automation}\"]")).unwrap();
    assert!(
        row.contains('1') && row.contains("mail server"),
        "the overview's errors count the attempt: {row}"
    );
    let (_, html) = app
        .page_with(&client, &format!("/automations/{automation}"))
        .await;
    assert!(
        crate::helpers::text_of(&html, "#runs")
            .unwrap()
            .contains("retrying — mail server")
    );
    let (_, first_temp) = credentials(&app, cleo).await;
    smtp.restart().await;
    app.advance(Duration::from_secs(120));
    app.drain_due_runs().await;
    let run = &runs(&app, automation).await[0];
    assert_eq!((run.status.code(), run.attempts), ("done", 2), "{run:?}");
    // Delivered now: the outcome is the last attempt's, the earlier one below it.
    let (_, html) = app
        .page_with(&client, &format!("/automations/{automation}"))
        .await;
    let runs_text = crate::helpers::text_of(&html, "#runs").unwrap();
    assert!(
        runs_text.contains("after 1 failed attempt; the last: mail server"),
        "{runs_text}"
    );
    assert!(!runs_text.contains("— mail server"), "{runs_text}");
    let (_, html) = app.page_with(&client, "/dashboard").await;
    assert_eq!(
        crate::helpers::text_of(&html, "#retrying-runs").unwrap(),
        "0"
    );
    assert!(crate::helpers::text_of(&html, "#retry-note").is_none());
    let password = password_in(&smtp.last_to("cleo@example.com").unwrap().data);
    let (_, temp) = credentials(&app, cleo).await;
    assert_ne!(temp, first_temp, "a fresh password per attempt");
    assert!(verifies(&app, &password, temp.as_deref()).await);
    // Every attempt's error is kept.
    let errors: String = sqlx::query_scalar("SELECT errors FROM job_runs WHERE automation_id = $1")
        .bind(automation)
        .fetch_one(app.state.db.read())
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&errors)
            .unwrap()
            .len(),
        1
    );
}

async fn a_refused_recipient_fails_at_once_and_the_page_shows_why(app: TestApp, smtp: SmtpServer) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let automation = password_automation(&app, &client, &[], &[]).await;
    let cleo = contact(&app, "cleo@example.com", "cleo's own password").await;
    smtp.refuse("cleo@example.com");
    request_password(&app, cleo).await;
    app.drain_due_runs().await;
    let run = &runs(&app, automation).await[0];
    assert_eq!((run.status.code(), run.attempts), ("failed", 1), "{run:?}");
    let (_, html) = app
        .page_with(&client, &format!("/automations/{automation}"))
        .await;
    assert!(
        html.contains("No such user here"),
        "the error is shown on the detail page"
    );
    // The overview counts failed runs since the activation and shows the latest cause.
    let (_, html) = app.page_with(&client, "/automations").await;
    let row = crate::helpers::text_of(&html, &format!("tr[data-id=\"{automation}\"]")).unwrap();
    assert!(
        row.contains('1') && row.contains("No such user here"),
        "{row}"
    );
    // Retry puts it back in the queue (and it fails again, kept as a second error).
    let page = format!("/automations/{automation}");
    let r = app
        .submit_with(
            &client,
            &page,
            &format!("/automations/{automation}/runs/{}/retry", run.id),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    app.drain_due_runs().await;
    let errors: String = sqlx::query_scalar("SELECT errors FROM job_runs WHERE id = $1")
        .bind(run.id)
        .fetch_one(app.state.db.read())
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&errors)
            .unwrap()
            .len(),
        2
    );
    // The contact's timeline lists the run, by the automation's name, in words.
    let (_, html) = app.page_with(&client, &format!("/contacts/{cleo}")).await;
    let runs = crate::helpers::text_of(&html, "#contact-runs").unwrap();
    assert!(
        runs.contains("Failed")
            && runs.contains("Password on request")
            && runs.contains("New Password Requested (C)"),
        "{runs}"
    );
    assert!(!runs.contains('#'), "no database ids: {runs}");
    // So does the automation's page: the contact by name and email, linked.
    let (_, html) = app
        .page_with(&client, &format!("/automations/{automation}"))
        .await;
    let runs = crate::helpers::text_of(&html, "#runs").unwrap();
    assert!(
        runs.contains("cleo@example.com") && runs.contains("Failed") && !runs.contains("contact #"),
        "{runs}"
    );
    assert!(html.contains(&format!("href=\"/contacts/{cleo}\"")));
}

async fn the_fourth_password_email_within_an_hour_is_rate_limited(app: TestApp, smtp: SmtpServer) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let automation = password_automation(&app, &client, &[], &[]).await;
    let cleo = contact(&app, "cleo@example.com", "cleo's own password").await;
    for _ in 0..4 {
        request_password(&app, cleo).await;
        app.drain_due_runs().await;
        app.advance(Duration::from_secs(60));
    }
    let statuses: Vec<String> = runs(&app, automation)
        .await
        .into_iter()
        .rev()
        .map(|r| r.status.code().to_string() + " " + &r.outcome.unwrap_or_default())
        .collect();
    assert_eq!(
        statuses[..3],
        ["done delivered", "done delivered", "done delivered"]
    );
    assert!(
        statuses[3].starts_with("skipped rate limited"),
        "{statuses:?}"
    );
    assert_eq!(smtp.count(), 3);
    // An hour later, one more is allowed.
    app.advance(Duration::from_secs(3600));
    request_password(&app, cleo).await;
    app.drain_due_runs().await;
    assert_eq!(smtp.count(), 4);
    // A replayed event enqueues nothing twice.
    let event: i64 = sqlx::query_scalar("SELECT MAX(id) FROM events")
        .fetch_one(app.state.db.read())
        .await
        .unwrap();
    let mut tx = app.state.db.begin().await.unwrap();
    let n = herald::intake::runs::intake(
        &mut tx,
        herald::types::EventId(event),
        app.now_ms(),
        &NewEvent::contact(EventType::NewPasswordRequested, cleo),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(n, 0);
}

with_smtp!(
    password_length_and_rate_limit_come_from_the_settings,
    an_emailed_password_forces_a_change_then_only_the_new_one_signs_in,
    a_contact_changes_only_their_visible_groups_and_their_name,
    a_system_user_gets_a_password_that_forces_a_change,
    the_reminder_goes_out_days_before_the_end,
    the_emailed_password_signs_in_and_the_old_one_still_works,
    a_done_run_is_counted_on_the_dashboard_and_in_the_metrics,
    a_delay_runs_later_and_excluded_days_move_to_midnight,
    the_selection_is_calculated_when_the_job_executes,
    a_mail_server_outage_is_retried_and_only_the_delivered_password_works,
    a_refused_recipient_fails_at_once_and_the_page_shows_why,
    the_fourth_password_email_within_an_hour_is_rate_limited
);
