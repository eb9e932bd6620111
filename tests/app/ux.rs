//! The rough edges a marketer met after the first automation, over HTTP on both
//! engines: the contact list's total and Previous, a group's members, the contact
//! picker by name, Activate on the automation's own page.

use herald::auth::users::Role;
use herald::config::ExposeSecret;
use reqwest::StatusCode;

use crate::helpers::{TestApp, location, text_of};

/// The href of the link whose text is `label`.
fn link(html: &str, label: &str) -> Option<String> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse("a").unwrap();
    doc.select(&sel)
        .find(|a| a.text().collect::<String>().trim() == label)
        .and_then(|a| a.value().attr("href"))
        .map(str::to_string)
}

async fn the_contact_list_counts_and_pages_both_ways(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    herald::contacts::demo::seed(&app.state.db, app.now_ms(), 220)
        .await
        .unwrap();
    let (_, page1) = app.page_with(&client, "/contacts").await;
    assert_eq!(
        text_of(&page1, "#total").unwrap(),
        "220 contacts; showing 1–50."
    );
    assert!(
        link(&page1, "Previous").is_none(),
        "no Previous on the first page"
    );
    // Forward to the last page: from the third on, Previous carries a trail.
    let mut pages = vec![page1];
    for (n, shown) in ["51–100", "101–150", "151–200", "201–220"]
        .iter()
        .enumerate()
    {
        let next = link(pages.last().unwrap(), "Next").unwrap();
        let (status, page) = app.page_with(&client, &next).await;
        assert_eq!(status, StatusCode::OK, "page {}: {next}", n + 2);
        assert_eq!(
            text_of(&page, "#total").unwrap(),
            format!("220 contacts; showing {shown}.")
        );
        pages.push(page);
    }
    assert!(link(pages.last().unwrap(), "Next").is_none());
    // And back, one page at a time, to the first.
    let mut back = pages.last().unwrap().clone();
    for page in pages.iter().rev().skip(1) {
        let previous = link(&back, "Previous").unwrap();
        let (status, html) = app.page_with(&client, &previous).await;
        assert_eq!(status, StatusCode::OK, "{previous}");
        assert_eq!(
            text_of(&html, "table").unwrap(),
            text_of(page, "table").unwrap(),
            "Previous goes back one page"
        );
        back = html;
    }
    assert!(link(&back, "Previous").is_none());
    let (_, none) = app.page_with(&client, "/contacts?q=zzzz").await;
    assert_eq!(text_of(&none, "#total").unwrap(), "None match.");
}

async fn a_group_lists_its_members(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let r = app
        .submit_with(&client, "/groups/new", "/groups", &[("name", "Newsletter")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let group = herald::contacts::groups::list(&app.state.db).await.unwrap()[0].id;
    let ada = crate::scheduler::contact(&app, "ada@example.com", "ada's own password").await;
    crate::scheduler::contact(&app, "bob@example.com", "bob's own password").await;
    let mut tx = app.state.db.begin().await.unwrap();
    herald::contacts::join_group(&mut tx, ada, group, app.now_ms())
        .await
        .unwrap();
    app.state.db.commit(tx).await.unwrap();
    let (_, list) = app.page_with(&client, "/groups").await;
    assert!(list.contains(&format!("href=\"/groups/{group}/members\"")));
    let (status, html) = app
        .page_with(&client, &format!("/groups/{group}/members"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let members = text_of(&html, "#members").unwrap();
    assert!(
        members.contains("ada@example.com") && !members.contains("bob@example.com"),
        "{members}"
    );
    assert!(html.contains(&format!("href=\"/contacts/{ada}\"")));
    assert_eq!(
        app.get_with(&client, "/groups/999999/members")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

async fn the_contact_field_takes_a_picked_suggestion_or_a_unique_name(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    for (email, first, last) in [
        ("lena.vogel@example.com", "Lena", "Vogel"),
        ("lena.berg@example.com", "Lena", "Berg"),
        ("max@example.com", "Max", "Muster"),
    ] {
        let r = app
            .submit_with(
                &client,
                "/contacts/new",
                "/contacts",
                &[("email", email), ("first_name", first), ("last_name", last)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }
    let berg = herald::contacts::find_by_email(&app.state.db, "lena.berg@example.com")
        .await
        .unwrap()
        .unwrap()
        .id;
    let id =
        crate::automations::new_automation(&app, &client, "Password", "new_password_requested")
            .await;
    let job = |contact: &'static str, picked: String| {
        let client = client.clone();
        let app = &app;
        async move {
            crate::automations::define_job(
                app,
                &client,
                id,
                &[
                    ("job", "send_new_password_to_contact"),
                    ("contact", contact),
                    ("contact_id", &picked),
                    ("action", "time_frame"),
                ],
            )
            .await
        }
    };
    // Two contacts are called Lena: the message says so.
    let r = job("Lena", String::new()).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let message = text_of(&r.text().await.unwrap(), "#contact-error").unwrap();
    assert!(
        message.contains("2 contacts match") && message.contains("choose one from the list"),
        "{message}"
    );
    let r = job("Nobody Here", String::new()).await;
    assert!(
        text_of(&r.text().await.unwrap(), "#contact-error")
            .unwrap()
            .contains("No contact matches")
    );
    // A full name that one contact has, or a picked suggestion, is taken.
    let r = job("Lena Vogel", String::new()).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let r = job("Lena", berg.to_string()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let a = herald::automations::store::find(&app.state.db, herald::types::AutomationId(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        a.target,
        Some(herald::automations::model::Target::Contact(berg))
    );
}

async fn an_automation_is_switched_on_and_off_on_its_own_page(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let id = crate::scheduler::password_automation(&app, &client, &[], &[]).await;
    let page = format!("/automations/{id}");
    let r = app
        .submit_with(
            &client,
            &page,
            "/automations/state",
            &[("action", "deactivate")],
        )
        .await;
    assert_eq!(location(&r), page, "back to the automation's page");
    let (_, html) = app.page_with(&client, &page).await;
    assert_eq!(text_of(&html, "#status").unwrap(), "Deactivated");
    assert!(
        html.contains("deactivated: Password on request"),
        "the flash says so"
    );
    let r = app
        .submit_with(
            &client,
            &page,
            "/automations/state",
            &[("action", "activate")],
        )
        .await;
    assert_eq!(location(&r), page);
    let (_, html) = app.page_with(&client, &page).await;
    assert_eq!(text_of(&html, "#status").unwrap(), "Running");
}

async fn the_dashboard_chart_names_its_days_and_says_when_it_is_empty(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let (_, html) = app.page_with(&client, "/dashboard").await;
    assert!(
        text_of(&html, "#chart-empty")
            .unwrap()
            .contains("No run finished")
    );
    let doc = scraper::Html::parse_document(&html);
    let days: Vec<String> = doc
        .select(&scraper::Selector::parse("#chart-days span").unwrap())
        .map(|d| d.text().collect())
        .collect();
    assert_eq!(days.len(), 7, "{days:?}");
    let today = jiff::Timestamp::from_millisecond(app.now_ms())
        .unwrap()
        .strftime("%a %-d %b")
        .to_string();
    assert_eq!(days[6], today, "today last");
    let automation = crate::scheduler::password_automation(&app, &client, &[], &[]).await;
    let cleo = crate::scheduler::contact(&app, "cleo@example.com", "cleo's own password").await;
    crate::scheduler::request_password(&app, cleo).await;
    app.drain_due_runs().await;
    assert_eq!(
        crate::scheduler::runs(&app, automation).await[0]
            .status
            .code(),
        "done"
    );
    let (_, html) = app.page_with(&client, "/dashboard").await;
    assert!(text_of(&html, "#chart-empty").is_none());
    assert!(html.contains(": 1 done</title>"), "a bar for the run");
}

async fn a_window_with_several_mistakes_names_them_all_at_once(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let id =
        crate::automations::new_automation(&app, &client, "Password", "new_password_requested")
            .await;
    let r = crate::automations::define_job(
        &app,
        &client,
        id,
        &[
            ("job", "send_new_password_to_contact"),
            ("contact", "nobody@example.com"),
            ("delay", "yes"),
            ("delay_value", "0"),
            ("action", "time_frame"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    let summary = text_of(&html, "#error-summary").unwrap();
    assert!(
        summary.contains("2 things to correct")
            && summary.contains("No contact has the email")
            && summary.contains("at least 1"),
        "{summary}"
    );
    assert!(
        html.contains("href=\"#contact\"") && html.contains("href=\"#delay_value\""),
        "each message links to its field"
    );
}

async fn the_preference_center_page_warns_when_no_automation_sends_passwords(app: TestApp) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let (status, html) = app.page_with(&admin, "/admin/preference-center").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text_of(&html, "#password-warning")
            .unwrap()
            .contains("does nothing yet")
    );
    let events = text_of(&html, "#preference-center-events").unwrap();
    assert!(
        events.contains("New Password Requested (C)") && events.contains("None:"),
        "{events}"
    );
    // The button starts the automation in the wizard, prefilled.
    let r = app
        .submit_with(
            &admin,
            "/admin/preference-center",
            "/admin/preference-center/password-automation",
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let job_page = location(&r);
    assert!(job_page.ends_with("/job"), "{job_page}");
    let form = app.form_with(&admin, &job_page, &job_page).await;
    assert_eq!(form.get("job"), Some("send_new_password_to_contact"));
    assert_eq!(form.get("use_event_parameter"), Some("on"));
    let id: i64 = job_page
        .trim_start_matches("/automations/")
        .trim_end_matches("/job")
        .parse()
        .unwrap();
    let r = crate::automations::define_job(&app, &admin, id, &[("action", "time_frame")]).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let r = crate::automations::define_time_frame(
        &app,
        &admin,
        id,
        &[
            ("start", "2026-01-01T00:00"),
            ("time_zone", "UTC"),
            ("action", "activate"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, html) = app.page_with(&admin, "/admin/preference-center").await;
    assert!(text_of(&html, "#password-warning").is_none(), "handled now");
    assert!(
        text_of(&html, "#preference-center-events")
            .unwrap()
            .contains("New password from the preference center")
    );
    let (marketer, _) = app.signed_in(Role::Marketer).await;
    assert_eq!(
        app.get_with(&marketer, "/admin/preference-center")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
}

on_both_engines!(
    the_contact_list_counts_and_pages_both_ways,
    a_group_lists_its_members,
    the_contact_field_takes_a_picked_suggestion_or_a_unique_name,
    an_automation_is_switched_on_and_off_on_its_own_page,
    the_dashboard_chart_names_its_days_and_says_when_it_is_empty,
    a_window_with_several_mistakes_names_them_all_at_once,
    the_preference_center_page_warns_when_no_automation_sends_passwords
);

/// Reading a page needs no write: with another process holding SQLite's write
/// lock (an import, say), staff pages still answer at once instead of waiting out
/// the busy timeout (10 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_answer_while_another_process_holds_the_write_lock() {
    use sqlx::Connection;
    let app = TestApp::on(crate::helpers::Engine::Sqlite)
        .spawn()
        .await
        .unwrap();
    let (client, _) = app.signed_in(Role::Marketer).await;
    let (status, _) = app.page_with(&client, "/contacts").await;
    assert_eq!(status, StatusCode::OK);
    let url = app.state.config.database_url.expose_secret().to_string();
    let mut other = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    for page in ["/dashboard", "/contacts", "/automations", "/contacts/new"] {
        let started = std::time::Instant::now();
        let (status, _) = app.page_with(&client, page).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{page} waited {:?} for the write lock",
            started.elapsed()
        );
    }
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
}

/// The id of the first field a person types in (not hidden, not a button) and
/// whether it has the focus when the page opens.
fn first_field(html: &str) -> (String, bool) {
    let doc = scraper::Html::parse_document(html);
    let fields =
        scraper::Selector::parse("main input:not([type=hidden]), main select, main textarea")
            .unwrap();
    let first = doc.select(&fields).next().expect("a field");
    (
        first.value().attr("id").unwrap_or_default().to_string(),
        first.value().attr("autofocus").is_some(),
    )
}

/// Sign-in and password pages open with the focus in their first field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_password_pages_focus_their_first_field() {
    crate::helpers::TestApp::on(crate::helpers::Engine::Sqlite)
        .run(async |app: crate::helpers::TestApp| {
            for (path, field) in [
                ("/login", "email"),
                ("/preferences/login", "email"),
                ("/preferences/forgot", "email"),
            ] {
                let (status, html) = app.page_with(&crate::helpers::browser(), path).await;
                assert_eq!(status, StatusCode::OK);
                assert_eq!(first_field(&html), (field.to_string(), true), "{path}");
            }
            let (client, _) = app.signed_in(Role::Marketer).await;
            let (_, html) = app.page_with(&client, "/password").await;
            assert_eq!(first_field(&html), ("current_password".to_string(), true));
        })
        .await
}
