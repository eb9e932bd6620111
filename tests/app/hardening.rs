//! The findings of the outside security probe, each proven closed on both engines:
//! the sign-in redirect, control characters at the boundary, equal-cost sign-ins,
//! the metrics token, contact sign-ins in the audit log, a mail server that never
//! answers, retention and backup.

use std::time::{Duration, Instant};

use herald::auth::users::{self, Role};
use herald::auth::{Plaintext, Priority};
use herald::config::{Config, Secret};
use reqwest::StatusCode;

use crate::helpers::{Engine, METRICS_TOKEN, TestApp, browser, location};
use crate::scheduler::{contact, password_automation, request_password, runs};
use crate::smtp::{BlackHole, SmtpServer};

/// Runs each `name => configure;` — `async fn name(app: TestApp, smtp: SmtpServer)`
/// — on both engines with an SMTP server behind the app and the configuration
/// adjusted by `configure` (given the SMTP server's URL).
macro_rules! configured {
    ($($name:ident => $configure:expr;)+) => {
        $(
            mod $name {
                // The configuration is written in the test's file: its names.
                #[allow(unused_imports)]
                use super::*;
                use herald::config::Config;

                async fn run(engine: crate::helpers::Engine) {
                    let smtp = crate::smtp::SmtpServer::start().await;
                    let url = smtp.url();
                    let configure: fn(&mut Config, String) = $configure;
                    crate::helpers::TestApp::on(engine)
                        .configure(move |c| configure(c, url))
                        .run(|app| super::$name(app, smtp))
                        .await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    run(crate::helpers::Engine::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    run(crate::helpers::Engine::Postgres).await
                }
            }
        )+
    };
}

const ANN: &str = "ann@example.com";
const ANN_PASSWORD: &str = "ann's long password";

/// Signs in through a form loaded from `page` with `next` forced into the form.
async fn sign_in_with_next(app: &TestApp, page: &str, next: &str) -> reqwest::Response {
    let client = browser();
    let mut form = app.form_with(&client, page, "/login").await;
    form.set("email", ANN)
        .set("password", ANN_PASSWORD)
        .set("next", next);
    app.post_form_with(&client, &form).await
}

async fn next_never_leads_off_the_site_nor_breaks_the_redirect(app: TestApp) {
    app.create_user(ANN, Role::Admin, ANN_PASSWORD).await;
    // The probe's addresses: a tab (or backslash) browsers drop, making `//evil`.
    for query in [
        "%2F%09%2Fevil.example%2F",
        "%2F%09%5Cevil.example",
        "%2F%5Cevil.example",
        "https%3A%2F%2Fevil.example",
    ] {
        let (status, html) = app
            .page_with(&browser(), &format!("/login?next={query}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{query}");
        let form = crate::helpers::find_form(&html, "/login");
        assert_eq!(
            form.get("next"),
            Some(""),
            "{query}: the page does not carry it on"
        );
    }
    for next in [
        "/\t/evil.example/",
        "/\t\\evil.example",
        "//evil.example",
        "/\\evil.example",
        "/\n/evil.example",
        "/a\rb",
        "/a\u{7f}b",
        "https://evil.example/",
        "/.//evil.example/p",
        "/..//evil.example/p",
        "/%2e%2e//evil.example/p",
    ] {
        let r = sign_in_with_next(&app, "/login", next).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(
            location(&r),
            "/dashboard",
            "{next:?} falls back to the dashboard"
        );
    }
    // A local page is kept, query and all.
    let r = sign_in_with_next(&app, "/login", "/contacts?q=ann").await;
    assert_eq!(location(&r), "/contacts?q=ann");
    // A page asked for before signing in whose dot segments lead off the site is
    // not carried to the sign-in page.
    let r = browser()
        .get(app.url("/.//evil.example/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login");
    // NUL and other C0 controls are refused at the boundary: a 400, never a 500.
    for next in ["/a\u{0}b", "/a\u{b}b"] {
        let r = sign_in_with_next(&app, "/login", next).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{next:?}");
    }
}

async fn control_characters_are_refused_at_the_boundary_on_every_form_and_query(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    for path in [
        "/contacts?q=a%00b",
        "/automations?q=a%00b",
        "/contacts/picker?q=a%00b",
        "/contacts?q=a%1Bb",
        "/contacts/%00",
    ] {
        let (status, html) = app.page_with(&client, path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert!(html.contains("control character"), "{path}: {html}");
    }
    // Without signing in: the staff and preference-center sign-in, forgot password.
    for (page, action) in [
        ("/login", "/login"),
        ("/preferences/login", "/preferences/login"),
        ("/preferences/forgot", "/preferences/forgot"),
    ] {
        let visitor = browser();
        let r = app
            .submit_with(
                &visitor,
                page,
                action,
                &[
                    ("email", "ann\u{0}@example.com"),
                    ("password", "whatever it is"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{action}");
        assert!(
            r.text().await.unwrap().contains("control character"),
            "{action}"
        );
    }
    // Contact attributes, group and automation descriptions: refused, nothing stored.
    let r = app
        .submit_with(
            &client,
            "/contacts/new",
            "/contacts",
            &[
                ("email", "nul@example.com"),
                ("attr_name_0", "city"),
                ("attr_value_0", "Ber\u{0}lin"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = app
        .submit_with(
            &client,
            "/groups/new",
            "/groups",
            &[("name", "News"), ("description", "weekly\u{0}")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = app
        .submit_with(
            &client,
            "/automations/new",
            "/automations",
            &[("name", "Welcome"), ("description", "line one\u{0}")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    for table in ["contacts", "contact_groups", "automations"] {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(app.state.db.read())
                .await
                .unwrap();
        assert_eq!(n, 0, "{table}");
    }
    // Multi-line text keeps its line breaks and tabs.
    let r = app
        .submit_with(
            &client,
            "/groups/new",
            "/groups",
            &[("name", "News"), ("description", "weekly\r\n\tnews")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

async fn every_staff_sign_in_costs_two_argon2_verifications_whatever_the_account(app: TestApp) {
    app.create_user(ANN, Role::Marketer, ANN_PASSWORD).await;
    let pending = app
        .create_user(
            "pending@example.com",
            Role::Marketer,
            "pending's long password",
        )
        .await;
    // An unused temporary password waits for this one (as after a reset).
    let temp = app
        .state
        .hasher
        .hash(&Plaintext::new("the emailed one 1!"), Priority::Interactive)
        .await
        .unwrap();
    let mut tx = app.state.db.begin().await.unwrap();
    users::set_temp_password(
        &mut tx,
        pending,
        &temp,
        app.now_ms() + 3_600_000,
        app.now_ms(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut costs = Vec::new();
    for (email, password) in [
        ("nobody@example.com", "wrong password!!"),
        (ANN, "wrong password!!"),
        ("pending@example.com", "wrong password!!"),
        (ANN, ANN_PASSWORD),
    ] {
        let before = app.state.hasher.verifications();
        let r = app.sign_in_with(&browser(), email, password).await;
        assert!(matches!(
            r.status(),
            StatusCode::UNAUTHORIZED | StatusCode::SEE_OTHER
        ));
        costs.push(app.state.hasher.verifications() - before);
    }
    assert_eq!(
        costs,
        [2, 2, 2, 2],
        "unknown, known, pending temporary, success"
    );
}

async fn every_contact_sign_in_costs_two_argon2_verifications_whatever_the_account(app: TestApp) {
    let known = contact(&app, "cleo@example.com", "cleo's own password").await;
    let pending = contact(&app, "dora@example.com", "dora's own password").await;
    let temp = app
        .state
        .hasher
        .hash(&Plaintext::new("the emailed one 1!"), Priority::Interactive)
        .await
        .unwrap();
    sqlx::query("UPDATE contacts SET temp_hash = $1, temp_expires_at = $2 WHERE id = $3")
        .bind(temp)
        .bind(app.now_ms() + 3_600_000)
        .bind(pending)
        .execute(app.state.db.write())
        .await
        .unwrap();
    assert_ne!(known, pending);
    let mut costs = Vec::new();
    for (email, password) in [
        ("nobody@example.com", "wrong password!!"),
        ("cleo@example.com", "wrong password!!"),
        ("dora@example.com", "wrong password!!"),
        ("cleo@example.com", "cleo's own password"),
    ] {
        let before = app.state.hasher.verifications();
        let r = app
            .submit_with(
                &browser(),
                "/preferences/login",
                "/preferences/login",
                &[("email", email), ("password", password)],
            )
            .await;
        assert!(matches!(
            r.status(),
            StatusCode::UNAUTHORIZED | StatusCode::SEE_OTHER
        ));
        costs.push(app.state.hasher.verifications() - before);
    }
    assert_eq!(
        costs,
        [2, 2, 2, 2],
        "unknown, known, pending temporary, success"
    );
}

async fn metrics_are_off_without_a_token(app: TestApp) {
    let r = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = reqwest::Client::new()
        .get(app.url("/metrics"))
        .bearer_auth("anything at all here")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

async fn contact_sign_ins_are_audited_and_filtered_apart_from_staff(app: TestApp) {
    contact(&app, "cleo@example.com", "cleo's own password").await;
    let visitor = browser();
    let r = app
        .contact_sign_in(&visitor, "cleo@example.com", "not her password")
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = app
        .contact_sign_in(&visitor, "Cleo@Example.com", "cleo's own password")
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT actor, action, ip FROM audit_log WHERE actor LIKE 'contact:%' ORDER BY id",
    )
    .fetch_all(app.state.db.read())
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            (
                "contact:cleo@example.com".to_string(),
                "signin.failed".to_string(),
                "127.0.0.1".to_string()
            ),
            (
                "contact:cleo@example.com".to_string(),
                "signin.succeeded".to_string(),
                "127.0.0.1".to_string()
            ),
        ]
    );
    let (admin, admin_email) = app.signed_in(Role::Admin).await;
    let (_, contacts_only) = app.page_with(&admin, "/admin/audit?who=contact").await;
    assert_eq!(
        contacts_only.matches("<tr data-action=").count(),
        2,
        "{contacts_only}"
    );
    assert!(
        contacts_only.contains("contact:cleo@example.com") && !contacts_only.contains(&admin_email)
    );
    let (_, staff_only) = app.page_with(&admin, "/admin/audit?who=staff").await;
    assert!(staff_only.contains(&admin_email) && !staff_only.contains("contact:cleo@example.com"));
    let (_, everyone) = app.page_with(&admin, "/admin/audit").await;
    assert!(everyone.contains(&admin_email) && everyone.contains("contact:cleo@example.com"));
}

on_both_engines!(
    next_never_leads_off_the_site_nor_breaks_the_redirect,
    control_characters_are_refused_at_the_boundary_on_every_form_and_query,
    every_staff_sign_in_costs_two_argon2_verifications_whatever_the_account,
    every_contact_sign_in_costs_two_argon2_verifications_whatever_the_account,
    metrics_are_off_without_a_token,
    contact_sign_ins_are_audited_and_filtered_apart_from_staff
);

async fn metrics_need_the_bearer_token(app: TestApp, _smtp: SmtpServer) {
    let client = reqwest::Client::new();
    let r = client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get("www-authenticate").is_some());
    let r = client
        .get(app.url("/metrics"))
        .bearer_auth("test-metrics-token-0123456788")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = client
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("herald_runs{status=\"done\"} 0")
    );
    // HEAD answers like GET: refused without the token, not sent to the sign-in page.
    assert_eq!(
        client
            .head(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        client
            .head(app.url("/metrics"))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

async fn an_attempt_past_the_job_deadline_is_abandoned_while_other_runs_flow(
    app: TestApp,
    smtp: SmtpServer,
) {
    // The server goes silent after RCPT for one address only.
    smtp.hang_on("slow@example.com");
    let (client, _) = app.signed_in(Role::Marketer).await;
    let automation = password_automation(&app, &client, &[], &[]).await;
    let slow = contact(&app, "slow@example.com", "slow's own password").await;
    let fast = contact(&app, "fast@example.com", "fast's own password").await;
    let slow_event = request_password(&app, slow).await;
    wait_for(&app, automation, |r| {
        r.iter().any(|r| r.status.code() == "running")
    })
    .await;
    let started = Instant::now();
    request_password(&app, fast).await;
    // The other run is claimed and delivered while the first one hangs.
    while smtp.last_to("fast@example.com").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the second run waited for the hanging one"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let now = runs(&app, automation).await;
    let slow_run = now.iter().find(|r| r.event_id.0 == slow_event).unwrap();
    assert_eq!(slow_run.status.code(), "running", "still hanging: {now:?}");
    // At the deadline the attempt is abandoned and the run waits for its retry.
    wait_for(&app, automation, |r| {
        r.iter().all(|r| r.status.code() != "running")
    })
    .await;
    let after = runs(&app, automation).await;
    let retried = after.iter().find(|r| r.id == slow_run.id).unwrap();
    assert_eq!(
        (retried.status.code(), retried.attempts),
        ("pending", 1),
        "{retried:?}"
    );
    assert!(
        retried
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("took longer than 3 s"),
        "{retried:?}"
    );
    assert!(retried.due_at > app.now_ms(), "retried later, with backoff");
    assert_eq!(
        after.iter().filter(|r| r.status.code() == "done").count(),
        1
    );
}

configured! {
    metrics_need_the_bearer_token => |c, _| c.metrics_token = Some(Secret::from(METRICS_TOKEN));
    an_attempt_past_the_job_deadline_is_abandoned_while_other_runs_flow => |c, url| {
        c.smtp_url = Some(Secret::from(url));
        c.smtp_timeout = Duration::from_secs(60);
        c.job_timeout = Duration::from_secs(3);
    };
}

/// Waits (in real time, at most 20 s) until the automation's runs satisfy `done`.
async fn wait_for(
    app: &TestApp,
    automation: i64,
    done: impl Fn(&[herald::scheduler::runs::RunRow]) -> bool,
) {
    let started = Instant::now();
    loop {
        app.state.db.wake_scheduler();
        let now = runs(app, automation).await;
        if !now.is_empty() && done(&now) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "runs stayed {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn silent_mail_server(engine: Engine) {
    let hole = BlackHole::start().await;
    let url = hole.url.clone();
    let configure = |c: &mut Config| {
        c.smtp_url = Some(Secret::from(url));
        c.smtp_timeout = Duration::from_secs(1);
    };
    TestApp::on(engine)
        .configure(configure)
        .run(|app| async move {
            let (client, _) = app.signed_in(Role::Marketer).await;
            let automation = password_automation(&app, &client, &[], &[]).await;
            let cleo = contact(&app, "cleo@example.com", "cleo's own password").await;
            request_password(&app, cleo).await;
            let started = Instant::now();
            wait_for(&app, automation, |r| {
                r[0].attempts == 1 && r[0].status.code() == "pending"
            })
            .await;
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "bounded by the SMTP deadline"
            );
            let run = &runs(&app, automation).await[0];
            let error = run.last_error.as_deref().unwrap_or_default();
            assert!(
                error.contains("did not answer within 1 s") && error.contains("greeting"),
                "{run:?}"
            );
            assert!(
                run.due_at > app.now_ms(),
                "a transient error: retried with backoff"
            );
            drop(hole);
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_server_that_never_greets_times_out_and_the_run_is_retried_sqlite() {
    silent_mail_server(Engine::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_server_that_never_greets_times_out_and_the_run_is_retried_postgres() {
    silent_mail_server(Engine::Postgres).await
}

const DAY: Duration = Duration::from_secs(86_400);

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(app.state.db.read())
        .await
        .unwrap()
}

async fn retention_prunes_old_runs_events_and_audit_entries_in_batches(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let automation = password_automation(&app, &client, &[], &[]).await;
    let cleo = contact(&app, "cleo@example.com", "cleo's own password").await;
    // Day 0: a delivered run, its event, 2,500 more finished runs of old events
    // (more than two batches), and a run still pending far in the future.
    let old_event = request_password(&app, cleo).await;
    app.drain_due_runs().await;
    assert_eq!(runs(&app, automation).await[0].status.code(), "done");
    let t0 = app.now_ms();
    // And a bounce that matched nothing, kept since day 0.
    sqlx::query("INSERT INTO mail_reports (received_at, kind, raw) VALUES ($1, 'unreadable', 'x')")
        .bind(t0)
        .execute(app.state.db.write())
        .await
        .unwrap();
    for i in 0..2_500i64 {
        sqlx::query("INSERT INTO events (type, scope, contact_id, params, occurred_at) VALUES ('new_password_requested', 'C', $1, '{}', $2)")
                .bind(cleo).bind(t0).execute(app.state.db.write()).await.unwrap();
        sqlx::query("INSERT INTO job_runs (automation_id, event_id, job_kind, status, due_at, created_at, finished_at) \
                         VALUES ($1, (SELECT MAX(id) FROM events), 'send_new_password_to_contact', $2, $3, $3, $3)")
                .bind(automation).bind(if i % 2 == 0 { "done" } else { "skipped" }).bind(t0)
                .execute(app.state.db.write()).await.unwrap();
    }
    sqlx::query("INSERT INTO events (type, scope, contact_id, params, occurred_at) VALUES ('new_password_requested', 'C', $1, '{}', $2)")
            .bind(cleo).bind(t0).execute(app.state.db.write()).await.unwrap();
    let pending_event: i64 = sqlx::query_scalar("SELECT MAX(id) FROM events")
        .fetch_one(app.state.db.read())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO job_runs (automation_id, event_id, job_kind, status, due_at, created_at) \
                     VALUES ($1, $2, 'send_new_password_to_contact', 'pending', $3, $4)",
    )
    .bind(automation)
    .bind(pending_event)
    .bind(t0 + 400 * 86_400_000)
    .bind(t0)
    .execute(app.state.db.write())
    .await
    .unwrap();
    // Day 60: one more delivered run.
    app.advance(60 * DAY);
    let recent_event = request_password(&app, cleo).await;
    app.drain_due_runs().await;
    let audit_at_start = count(&app, "SELECT COUNT(*) FROM audit_log").await;
    assert!(audit_at_start > 0);

    // Day 91: the day-0 runs and their events go; the rest stays.
    app.advance(31 * DAY);
    let pruned = herald::retention::prune(&app.state.db, app.now_ms())
        .await
        .unwrap();
    assert_eq!(pruned.runs, 2_501, "{pruned:?}");
    assert!(pruned.events >= 2_501, "{pruned:?}");
    assert_eq!(pruned.audit_entries, 0, "the audit log keeps a year");
    assert_eq!(
        pruned.deliveries, 2,
        "the day-0 email and the kept report go with the runs: {pruned:?}"
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM deliveries").await,
        1,
        "day 60's stays"
    );
    let left: Vec<(i64, String)> =
        sqlx::query_as("SELECT event_id, status FROM job_runs ORDER BY id")
            .fetch_all(app.state.db.read())
            .await
            .unwrap();
    assert_eq!(
        left,
        [
            (pending_event, "pending".to_string()),
            (recent_event, "done".to_string())
        ]
    );
    let events: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM events WHERE type = 'new_password_requested' ORDER BY id",
    )
    .fetch_all(app.state.db.read())
    .await
    .unwrap();
    assert_eq!(
        events,
        [pending_event, recent_event],
        "events of kept runs stay; {old_event} went"
    );
    // Nothing more to do: a second pass removes nothing.
    let again = herald::retention::prune(&app.state.db, app.now_ms())
        .await
        .unwrap();
    assert_eq!(again, herald::retention::Pruned::default());
}

async fn shorter_retention_periods_from_settings_apply_and_pending_runs_stay(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let automation = password_automation(&app, &client, &[], &[]).await;
    let cleo = contact(&app, "cleo@example.com", "cleo's own password").await;
    request_password(&app, cleo).await;
    app.drain_due_runs().await;
    // A run of another event, due in 400 days.
    let event = request_password(&app, cleo).await;
    sqlx::query("DELETE FROM job_runs WHERE event_id = $1")
        .bind(event)
        .execute(app.state.db.write())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO job_runs (automation_id, event_id, job_kind, status, due_at, created_at) \
         VALUES ($1, $2, 'send_new_password_to_contact', 'pending', $3, $4)",
    )
    .bind(automation)
    .bind(event)
    .bind(app.now_ms() + 400 * 86_400_000)
    .bind(app.now_ms())
    .execute(app.state.db.write())
    .await
    .unwrap();
    let audit_at_start = count(&app, "SELECT COUNT(*) FROM audit_log").await;
    app.advance(21 * DAY);
    // Shorter periods from Settings apply; after a year the audit entries go too.
    let (admin, _) = app.signed_in(Role::Admin).await;
    let r = app
        .submit_with(
            &admin,
            "/admin/settings",
            "/admin/settings",
            &[("run_retention_days", "20")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = app
        .submit_with(
            &admin,
            "/admin/settings",
            "/admin/settings",
            &[("audit_retention_days", "0")],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "at least one day"
    );
    let pruned = herald::retention::prune(&app.state.db, app.now_ms())
        .await
        .unwrap();
    assert_eq!(pruned.runs, 1, "the day-0 run is 21 days old");
    app.advance(366 * DAY);
    herald::retention::prune(&app.state.db, app.now_ms())
        .await
        .unwrap();
    assert!(
        count(&app, "SELECT COUNT(*) FROM audit_log").await < audit_at_start,
        "audit entries older than a year are gone"
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM job_runs WHERE status = 'pending'"
        )
        .await,
        1,
        "pending runs are never pruned"
    );
}

async fn a_backup_taken_while_the_scheduler_writes_holds_every_finished_run(app: TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("backup.db");
    if app.state.db.backend == herald::db::Backend::Postgres {
        let e = app.state.db.backup_to(&to).await.unwrap_err();
        assert!(
            matches!(e, herald::db::BackupError::Postgres) && e.to_string().contains("pg_dump"),
            "{e}"
        );
        assert!(!to.exists());
        return;
    }
    let (client, _) = app.signed_in(Role::Marketer).await;
    let automation = password_automation(&app, &client, &[], &[]).await;
    let cleo = contact(&app, "cleo@example.com", "cleo's own password").await;
    for _ in 0..3 {
        request_password(&app, cleo).await;
    }
    app.drain_due_runs().await;
    let finished: Vec<(i64, String, Option<String>)> =
        sqlx::query_as("SELECT id, status, message_id FROM job_runs ORDER BY id")
            .fetch_all(app.state.db.read())
            .await
            .unwrap();
    assert_eq!(finished.len(), 3);
    // Events keep arriving and the scheduler keeps writing during the backup.
    let busy = {
        let (db, now) = (app.state.db.clone(), app.now_ms());
        tokio::spawn(async move {
            for _ in 0..200 {
                let mut tx = db.begin().await.unwrap();
                herald::intake::events::record(
                    &mut tx,
                    now,
                    &herald::events::catalogue::NewEvent::contact(
                        herald::events::catalogue::EventType::NewPasswordRequested,
                        cleo,
                    ),
                )
                .await
                .unwrap();
                db.commit(tx).await.unwrap();
            }
        })
    };
    app.state.db.backup_to(&to).await.unwrap();
    busy.await.unwrap();
    let e = app.state.db.backup_to(&to).await.unwrap_err();
    assert!(matches!(e, herald::db::BackupError::Exists(_)), "{e}");
    use sqlx::Connection;
    let mut copy = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", to.display()))
        .await
        .unwrap();
    for (id, status, message_id) in &finished {
        let row: (String, Option<String>) =
            sqlx::query_as("SELECT status, message_id FROM job_runs WHERE id = ?1")
                .bind(id)
                .fetch_one(&mut copy)
                .await
                .unwrap();
        assert_eq!((&row.0, &row.1), (status, message_id));
    }
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut copy)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    let _ = automation;
}

on_both_engines!(
    retention_prunes_old_runs_events_and_audit_entries_in_batches,
    shorter_retention_periods_from_settings_apply_and_pending_runs_stay,
    a_backup_taken_while_the_scheduler_writes_holds_every_finished_run
);

/// A body that trickles in (a large `Content-Length`, then a byte every 2 s) is cut
/// once its deadline passes: the connection gets a 400 and is closed, instead of
/// staying open for as long as the client likes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_body_is_cut_at_its_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    crate::helpers::TestApp::on(Engine::Sqlite).run(async |app: TestApp| {
        let address = app.address.trim_start_matches("http://").to_string();
        let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
        let head = format!(
            "POST /login HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        let (mut read, mut write) = socket.into_split();
        let trickle = tokio::spawn(async move {
            // At most 90 s of trickling; the deadline is 30 s.
            for _ in 0..45 {
                if write.write_all(b"a").await.is_err() {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        });
        let mut answer = Vec::new();
        let read_all = read.read_to_end(&mut answer);
        let read = tokio::time::timeout(std::time::Duration::from_secs(90), read_all).await;
        trickle.abort();
        let answer = String::from_utf8_lossy(&answer);
        assert!(read.is_ok(), "still open after 90 s");
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("did not arrive in time"), "{answer}");
    })
    .await;
}

/// What a raw HTTP/1.1 request gets back: the status line and everything after the
/// headers.
async fn raw(address: &str, request: &str) -> (String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).await.unwrap();
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block")
        + 4;
    let head = String::from_utf8_lossy(&answer[..end]).to_string();
    (head, answer[end..].to_vec())
}

/// HEAD answers as GET would, with no body, wherever GET is allowed: health checks
/// that use HEAD saw `/healthz` redirect to the sign-in page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_answers_like_get_without_a_body() {
    crate::helpers::TestApp::on(Engine::Sqlite)
        .run(async |app: TestApp| {
            let address = app.address.trim_start_matches("http://").to_string();
            for (path, status) in [
                ("/healthz", "200"),
                ("/readyz", "200"),
                ("/login", "200"),
                ("/preferences/login", "200"),
                ("/dashboard", "303"),
            ] {
                let (get, get_body) = raw(
                    &address,
                    &format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"),
                )
                .await;
                let (head, head_body) = raw(
                    &address,
                    &format!(
                        "HEAD {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
                    ),
                )
                .await;
                assert!(
                    head.starts_with(&format!("HTTP/1.1 {status}")),
                    "HEAD {path}: {head}"
                );
                assert!(
                    get.starts_with(&format!("HTTP/1.1 {status}")),
                    "GET {path}: {get}"
                );
                assert!(
                    head_body.is_empty(),
                    "HEAD {path} sent a body of {} bytes",
                    head_body.len()
                );
                if status == "200" {
                    assert!(!get_body.is_empty(), "GET {path} has a body");
                }
            }
            // Where GET is not allowed, neither is HEAD.
            let (head, _) = raw(
                &address,
                &format!("HEAD /logout HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"),
            )
            .await;
            assert!(!head.starts_with("HTTP/1.1 200"), "{head}");
        })
        .await
}
