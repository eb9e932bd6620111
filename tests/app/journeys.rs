//! What people do with Herald, in a real browser (see `browser.rs`): one test per
//! journey, each on a fresh SQLite database with a real SMTP server. Every page
//! passed is checked with axe-core and for console errors, and photographed.

use herald::auth::users::Role;
use herald::config::Secret;

use crate::browser::{Browser, NARROW, WIDE};
use crate::helpers::{Engine, TestApp};
use crate::smtp::{SmtpServer, password_in};

const PASSWORD: &str = "a good long password";

async fn app_with_mail() -> (TestApp, SmtpServer) {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let app = TestApp::on(Engine::Sqlite)
        .configure(|c| c.smtp_url = Some(Secret::from(url)))
        .spawn()
        .await
        .expect("SQLite always runs");
    (app, smtp)
}

/// Signs in through the staff sign-in page.
async fn sign_in(b: &mut Browser, email: &str, password: &str) {
    b.goto("/login").await;
    b.fill("#email", email).await;
    b.fill("#password", password).await;
    b.click_and_wait("button[type=submit]").await;
}

/// A staff member of `role` with a password, signed in in a new browser.
async fn staff(app: &TestApp, journey: &str, role: Role, width: u32) -> Option<Browser> {
    let email = format!("{}-{journey}@example.com", role.code());
    app.create_user(&email, role, PASSWORD).await;
    let mut b = Browser::start(&app.address, journey, width).await?;
    sign_in(&mut b, &email, PASSWORD).await;
    assert!(b.url().await.ends_with("/dashboard"), "{}", b.url().await);
    Some(b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_admin_signs_in_with_the_console_password_and_chooses_their_own() {
    let (app, _smtp) = app_with_mail().await;
    let (email, temporary) = app.first_admin.clone().expect("a first admin");
    let Some(mut b) = Browser::start(&app.address, "first-admin", WIDE).await else {
        return;
    };
    b.goto("/login").await;
    b.check("sign-in").await;
    sign_in(&mut b, &email, &temporary).await;
    assert!(
        b.url().await.ends_with("/password"),
        "{}: {}",
        b.url().await,
        b.text("main").await
    );
    b.check("forced-password-change").await;
    b.fill("#new_password", "my own admin password").await;
    b.fill("#confirm_password", "my own admin password").await;
    b.click_and_wait("#main button[type=submit]").await;
    assert!(
        b.url().await.ends_with("/dashboard"),
        "{}: {}",
        b.url().await,
        b.text("main").await
    );
    assert!(b.text("main").await.contains("Welcome"));
    b.check("dashboard").await;
    // On a phone the menu folds behind its button, and opens with it.
    b.width(NARROW).await;
    assert!(
        !b.is_displayed("a.nav-link[href='/automations']").await,
        "the menu is folded at 375 px"
    );
    b.click(".herald-menu > summary").await;
    assert!(
        b.is_displayed("a.nav-link[href='/automations']").await,
        "Menu opens it"
    );
    b.width(WIDE).await;
    assert!(
        b.is_displayed("a.nav-link[href='/automations']").await,
        "open again when wide"
    );
    // A keyboard user sees where the focus is: on the blue bar and on the page.
    b.goto("/dashboard").await;
    b.tab(3).await;
    let (focused, contrast) = b.focus_ring().await;
    assert_eq!(focused, "Dashboard");
    assert!(
        contrast >= 3.0,
        "the focus ring on the menu has {contrast:.2}:1"
    );
    b.check("focus-on-the-menu").await;
    b.goto("/admin/settings").await;
    b.click("#brand_name").await;
    b.tab(1).await;
    let (focused, contrast) = b.focus_ring().await;
    assert_eq!(focused, "sender_name");
    assert!(
        contrast >= 3.0,
        "the focus ring on a field has {contrast:.2}:1"
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marketer_defines_the_event_and_the_job_in_the_browser() {
    let (app, _smtp) = app_with_mail().await;
    crate::scheduler::contact(&app, "lena.vogel@example.com", "lena's own password").await;
    sqlx::query("UPDATE contacts SET first_name = 'Lena', last_name = 'Vogel'")
        .execute(app.state.db.write())
        .await
        .unwrap();
    let Some(mut b) = staff(&app, "automation", Role::Marketer, WIDE).await else {
        return;
    };
    b.goto("/automations").await;
    b.check("automations-empty").await;
    b.click_and_wait("a[href='/automations/new']").await;
    b.check("edit-event").await;
    b.fill("#name", "Password on request").await;
    b.find("#event")
        .await
        .select_by_value("new_password_requested")
        .await
        .unwrap();
    // Only what applies to the chosen event: no filter here, no system-user condition.
    assert!(
        b.is_displayed("#no-filter").await,
        "says the event has no filter"
    );
    assert!(
        !b.is_displayed("#sel_role").await,
        "a (C) automation offers no role condition"
    );
    assert!(b.is_displayed("#sel_group").await);
    assert!(!b.is_displayed("#filter_source").await);
    b.click_and_wait("#edit-event button[type=submit]").await;
    assert!(b.url().await.ends_with("/job"), "{}", b.url().await);
    b.find("#job")
        .await
        .select_by_value("send_new_password_to_contact")
        .await
        .unwrap();
    b.check("define-job").await;

    // A window with two mistakes names both at once, in a summary that has the focus.
    b.fill("#contact", "nobody@example.com").await;
    b.click("#delay-yes").await;
    b.click_and_wait("button[value=time_frame]").await;
    let summary = b.text("#error-summary").await;
    assert!(
        summary.contains("2 things to correct")
            && summary.contains("No contact has the email")
            && summary.contains("at least 1"),
        "{summary}"
    );
    assert_eq!(b.focused().await, "error-summary");
    b.check("define-job-errors").await;
    b.click("#delay-no").await;
    // The picker: three letters, then a suggestion.
    b.fill("#contact", "len").await;
    b.click("#contact-options [role=option]").await;
    assert_eq!(
        b.find("#contact")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("lena.vogel@example.com")
    );
    assert!(
        !b.find("#contact_id")
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
            .is_empty()
    );
    // Use Event Parameter disables the Contact field, and unticking enables it.
    b.click("#use_event_parameter").await;
    assert!(
        !b.is_enabled("#contact").await,
        "Use Event Parameter disables Contact"
    );
    b.click("#use_event_parameter").await;
    assert!(b.is_enabled("#contact").await, "and unticking enables it");
    // Delay: Yes enables Unit and Value, No disables them.
    b.click("#delay-yes").await;
    assert!(b.is_enabled("#delay_unit").await && b.is_enabled("#delay_value").await);
    b.click("#delay-no").await;
    assert!(!b.is_enabled("#delay_unit").await && !b.is_enabled("#delay_value").await);
    b.click("#use_event_parameter").await;
    b.click_and_wait("button[value=time_frame]").await;
    assert!(b.url().await.ends_with("/time-frame"), "{}", b.url().await);
    b.check("define-time-frame").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marketer_sets_the_time_frame_activates_and_tries_it_in_the_browser() {
    let (app, _smtp) = app_with_mail().await;
    crate::scheduler::contact(&app, "lena.vogel@example.com", "lena's own password").await;
    sqlx::query("UPDATE contacts SET first_name = 'Lena', last_name = 'Vogel'")
        .execute(app.state.db.write())
        .await
        .unwrap();
    // The first two windows answered over HTTP: Lena's password on request.
    let (http, _) = app.signed_in(Role::Marketer).await;
    let id = crate::automations::new_automation(
        &app,
        &http,
        "Password on request",
        "new_password_requested",
    )
    .await;
    let job = [
        ("job", "send_new_password_to_contact"),
        ("use_event_parameter", "on"),
        ("action", "time_frame"),
    ];
    crate::automations::define_job(&app, &http, id, &job).await;
    let Some(mut b) = staff(&app, "time-frame", Role::Marketer, WIDE).await else {
        return;
    };
    b.goto(&format!("/automations/{id}/time-frame")).await;
    // Start keeps its moment when the zone changes before it was touched.
    let utc_start = b.find("#start").await.prop("value").await.unwrap().unwrap();
    b.find("#time_zone")
        .await
        .select_by_value("Asia/Tokyo")
        .await
        .unwrap();
    let tokyo_start = b.find("#start").await.prop("value").await.unwrap().unwrap();
    let parse = |v: &str| jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M", v).unwrap();
    let shift = parse(&utc_start)
        .until(parse(&tokyo_start))
        .unwrap()
        .total(jiff::Unit::Hour)
        .unwrap();
    assert_eq!(shift, 9.0, "{utc_start} UTC is {tokyo_start} in Tokyo");
    assert!(b.text("label[for=start]").await.contains("Asia/Tokyo"));
    // Enter in a field presses Save, which stays here: never Save & Activate.
    b.press_enter_and_wait("#day_sat").await;
    assert!(
        b.url().await.ends_with("/automations/1/time-frame"),
        "{}",
        b.url().await
    );
    assert!(
        b.text(".alert").await.contains("is saved"),
        "{}",
        b.text(".alert").await
    );
    let state: String = sqlx::query_scalar("SELECT state FROM automations")
        .fetch_one(app.state.db.read())
        .await
        .unwrap();
    assert_ne!(state, "active", "Enter activated the automation");
    b.click_and_wait("button[value=activate]").await;
    assert!(
        b.url().await.ends_with("/automations/1"),
        "the automation it saved: {}",
        b.url().await
    );
    assert!(
        b.text(".alert").await.contains("is live"),
        "{}",
        b.text(".alert").await
    );
    b.goto("/automations").await;
    let row = b.text("table tbody tr").await;
    assert!(
        row.contains("Password on request") && row.contains("Running"),
        "{row}"
    );
    let (start_at, zone): (i64, String) =
        sqlx::query_as("SELECT start_at, time_zone FROM automations")
            .fetch_one(app.state.db.read())
            .await
            .unwrap();
    assert_eq!(zone, "Asia/Tokyo");
    assert!(
        (app.now_ms() - start_at).abs() < 120_000,
        "saved as now, not nine hours off"
    );
    b.check("automations").await;
    // Try it, for Lena, now.
    b.goto("/automations/1/try").await;
    b.check("try-it").await;
    b.fill("#contact", "len").await;
    b.click("#contact-options [role=option]").await;
    b.click_and_wait("#try-form button[type=submit]").await;
    let verdict = b.text("#verdict").await;
    assert!(verdict.starts_with("Would run"), "{verdict}");
    assert!(b.text("#target").await.contains("lena.vogel@example.com"));
    b.check("try-it-answered").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_gets_a_password_on_a_phone_and_chooses_groups() {
    let (app, smtp) = app_with_mail().await;
    let (marketer, _) = app.signed_in(Role::Marketer).await;
    let automation = crate::scheduler::password_automation(&app, &marketer, &[], &[]).await;
    app.new_group(
        &marketer,
        &[
            ("name", "Newsletter"),
            ("description", "News once a month"),
            ("visible_in_preference_center", "on"),
        ],
        false,
    )
    .await;
    let cleo = crate::scheduler::contact(&app, "cleo@example.com", "cleo's own password").await;
    let Some(mut b) = Browser::start(&app.address, "preference-center", NARROW).await else {
        return;
    };
    b.goto("/preferences/forgot").await;
    b.check("forgot").await;
    b.fill("#email", "cleo@example.com").await;
    b.click_and_wait("button[type=submit]").await;
    assert!(b.text("#forgot-answer").await.contains("on its way"));
    b.check("forgot-answered").await;
    app.events_of("new_password_requested", 1).await;
    app.drain_due_runs().await;
    let mail = smtp
        .last_to("cleo@example.com")
        .expect("the password email");
    let emailed = password_in(&mail.data);

    b.goto("/preferences/login").await;
    b.fill("#email", "cleo@example.com").await;
    b.fill("#password", &emailed).await;
    b.click_and_wait("button[type=submit]").await;
    assert!(
        b.url().await.ends_with("/preferences/password"),
        "{}",
        b.url().await
    );
    b.check("choose-password").await;
    b.fill("#new_password", "cleo's brand new password").await;
    b.fill("#confirm_password", "cleo's brand new password")
        .await;
    b.click_and_wait("form[action='/preferences/password'] button[type=submit]")
        .await;
    assert!(b.url().await.ends_with("/preferences"), "{}", b.url().await);
    b.click("input[name=group]").await;
    b.click_and_wait("form[action='/preferences'] button[type=submit]")
        .await;
    assert!(
        b.text("main").await.contains("saved"),
        "{}",
        b.text("main").await
    );
    let (page, window) = b.overflow().await;
    assert!(
        page <= window,
        "the page scrolls sideways at 375 px: {page} > {window}"
    );
    b.check("preferences-saved").await;
    let member: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM group_members WHERE contact_id = $1")
            .bind(cleo)
            .fetch_one(app.state.db.read())
            .await
            .unwrap();
    assert_eq!(member, 1, "joined the group");
    b.close().await;

    // Staff see the run on the automation page and the dashboard.
    let Some(mut staff) = staff(&app, "run-history", Role::Marketer, WIDE).await else {
        return;
    };
    assert_eq!(
        staff.text("#done-24h").await,
        "1",
        "the run counts on the dashboard"
    );
    staff.check("dashboard-with-a-run").await;
    staff.goto(&format!("/automations/{automation}")).await;
    assert!(
        staff.text("main").await.contains("cleo@example.com"),
        "the run names the contact"
    );
    staff.check("automation-runs").await;
    staff
        .goto(&format!("/automations/{automation}/stats"))
        .await;
    assert_eq!(staff.text("#fig-sent").await, "1", "its email counts");
    assert!(
        staff.is_displayed("svg.herald-chart").await,
        "the chart is drawn"
    );
    staff.check("automation-stats").await;
    staff.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_written_previewed_and_sent_as_a_test() {
    let (app, smtp) = app_with_mail().await;
    crate::scheduler::contact(&app, "ada@example.com", "ada's own password").await;
    sqlx::query("UPDATE contacts SET first_name = 'Ada'")
        .execute(app.state.db.write())
        .await
        .unwrap();
    let Some(mut b) = staff(&app, "message", Role::Marketer, WIDE).await else {
        return;
    };
    b.goto("/messages").await;
    b.check("messages-empty").await;
    b.goto("/messages/new").await;
    b.check("new-message").await;
    b.fill("#name", "Welcome").await;
    b.fill(
        "#subject",
        "Welcome, {{ contact.first_name | default(\"there\") }}",
    )
    .await;
    b.fill("#text_body", "Hello {{ contact.first_name }}!")
        .await;
    b.click_and_wait("#message-form button[type=submit]").await;
    b.check("messages").await;
    let id: i64 = sqlx::query_scalar("SELECT id FROM messages")
        .fetch_one(app.state.db.read())
        .await
        .unwrap();
    b.goto(&format!("/messages/{id}/preview")).await;
    b.fill("#contact", "ada").await;
    b.click("#contact-options [role=option]").await;
    b.click_and_wait("form[method=get] button[type=submit]")
        .await;
    assert_eq!(b.text("#preview-subject").await, "Welcome, Ada");
    b.check("preview").await;
    b.click_and_wait("form[action$='/test'] button[type=submit]")
        .await;
    b.check("test-sent").await;
    b.goto(&format!("/messages/{id}/stats")).await;
    assert_eq!(b.text("#fig-sent").await, "0", "test sends are left out");
    assert!(b.text("#chart-empty").await.contains("No one opened"));
    b.check("message-stats").await;
    let mail = smtp
        .last_to("marketer-message@example.com")
        .expect("the test email");
    assert!(mail.data.contains("[Test] Welcome, Ada"), "{}", mail.data);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_creates_an_api_key_and_visits_every_admin_page() {
    let (app, _smtp) = app_with_mail().await;
    crate::scheduler::contact(&app, "ada@example.com", "ada's own password").await;
    let Some(mut b) = staff(&app, "admin", Role::Admin, WIDE).await else {
        return;
    };
    b.goto("/admin/api-keys").await;
    b.check("api-keys-empty").await;
    b.fill("#name", "Shop").await;
    b.click_and_wait("form button[type=submit].btn-primary")
        .await;
    let key = b.text("#new-key-value").await;
    assert!(key.starts_with("hk_"), "{key}");
    b.check("api-key-shown").await;
    for (path, name) in [
        ("/contacts", "contacts"),
        ("/contacts/new", "new-contact"),
        ("/contacts/import", "import"),
        ("/groups", "groups"),
        ("/groups/new", "new-group"),
        ("/admin/users", "users"),
        ("/admin/users/new", "new-user"),
        ("/admin/settings", "settings"),
        ("/admin/preference-center", "preference-center-setup"),
        ("/admin/audit", "audit"),
        ("/admin/suppressions", "suppressions"),
        ("/admin/deliverability", "deliverability"),
        ("/admin/reports", "unmatched-reports"),
        ("/password", "change-password"),
        ("/account", "account"),
        ("/contacts?q=example.com", "contacts-found-inside-words"),
    ] {
        b.goto(path).await;
        b.check(name).await;
    }
    let ada: i64 = sqlx::query_scalar("SELECT id FROM contacts")
        .fetch_one(app.state.db.read())
        .await
        .unwrap();
    b.goto(&format!("/contacts/{ada}")).await;
    b.check("contact").await;
    b.close().await;
}

/// A contact on a phone signs up for a double opt-in group, reads the
/// confirmation email, confirms, and only then is a member; the automation on
/// Subscribed to Group (C) runs once, after the confirmation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_signs_up_on_a_phone_and_joins_only_once_confirmed() {
    let (app, smtp) = app_with_mail().await;
    let (admin, _) = app.signed_in(Role::Admin).await;
    app.submit_with(
        &admin,
        "/admin/settings",
        "/admin/settings",
        &[("self_signup", "on")],
    )
    .await;
    let news = app
        .new_group(
            &admin,
            &[
                ("name", "Newsletter"),
                ("description", "News once a month"),
                ("visible_in_preference_center", "on"),
            ],
            true,
        )
        .await;
    let welcome = crate::messages::automation(
        &app,
        &admin,
        "Welcome to the newsletter",
        "subscribed_to_group",
        &[
            ("job", "update_contact_attribute"),
            ("use_event_parameter", "on"),
            ("attribute_name", "welcomed"),
            ("attribute_value", "yes"),
        ],
    )
    .await;
    let Some(mut b) = Browser::start(&app.address, "double-opt-in", NARROW).await else {
        return;
    };
    b.goto("/preferences/signup").await;
    b.check("signup-with-groups").await;
    b.fill("#email", "lena@example.com").await;
    b.click(&format!("#group-{news}")).await;
    b.click("#consent").await;
    b.click_and_wait("form[action='/preferences/signup'] button[type=submit]")
        .await;
    assert!(
        b.text("#signup-answer")
            .await
            .contains("emailed you a link")
    );
    b.check("signup-answered").await;
    let lena = herald::contacts::find_by_email(&app.state.db, "lena@example.com")
        .await
        .unwrap()
        .expect("the new contact")
        .id;
    app.drain_due_runs().await;
    let member = async || {
        herald::contacts::groups::is_member(&app.state.db, news, lena)
            .await
            .unwrap()
    };
    assert!(!member().await, "pending is not member");
    let mail = crate::consent::confirmation_to(&smtp, "lena@example.com", 1).await;
    b.goto(&crate::consent::confirm_path(&mail)).await;
    assert!(!member().await, "opening the link confirms nobody");
    b.check("confirm").await;
    b.click_and_wait("main form button[type=submit]").await;
    assert!(
        b.text("#confirmed")
            .await
            .contains("now receives Newsletter")
    );
    let (page, window) = b.overflow().await;
    assert!(
        page <= window,
        "the page scrolls sideways at 375 px: {page} > {window}"
    );
    b.check("confirmed").await;
    b.close().await;
    assert!(member().await, "a member once confirmed");
    app.drain_due_runs().await;
    let runs: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM job_runs WHERE automation_id = $1 AND status = 'done'",
    )
    .bind(welcome)
    .fetch_one(app.state.db.read())
    .await
    .unwrap();
    assert_eq!(runs, 1, "the automation ran once, after the confirmation");
    assert_eq!(
        herald::contacts::attribute(&app.state.db, lena, "welcomed")
            .await
            .unwrap()
            .as_deref(),
        Some("yes")
    );
}
