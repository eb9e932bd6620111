//! The suppression list: what it stops (prepared messages; a contact's password
//! email only after a hard bounce), its admin page (add, search, export, import,
//! take off — audited) and its API.

use herald::auth::users::Role;
use herald::suppressions::{self, Reason};
use herald::types::EmailAddress;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, location, text_of};
use crate::messages::{automation, new_contact, runs, welcome_automation, write_message};
use crate::smtp::SmtpServer;

/// Puts `address` on the list with `reason`, as the mail system's reports will.
async fn suppress(app: &TestApp, address: &str, reason: Reason) {
    let mut tx = app.state.db.begin().await.unwrap();
    let address = EmailAddress::parse(address).unwrap();
    suppressions::add(
        &mut tx,
        &address,
        reason,
        "bounce",
        "550 5.1.1",
        app.now_ms(),
    )
    .await
    .unwrap();
    app.state.db.commit(tx).await.unwrap();
}

async fn a_prepared_message_to_a_suppressed_address_is_skipped_and_says_why(
    app: TestApp,
    smtp: SmtpServer,
) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let message = write_message(&app, &client, "Welcome", "Welcome", "Hello", "").await;
    let welcome = welcome_automation(&app, &client, message).await;
    suppress(&app, "Ada@Example.com", Reason::HardBounce).await;
    new_contact(&app, &client, "ada@example.com", "Ada").await;
    new_contact(&app, &client, "bob@example.com", "Bob").await;
    app.drain_due_runs().await;
    let all = runs(&app, welcome).await;
    let ada = all
        .iter()
        .find(|r| r.target().contains("ada@"))
        .or(all.last())
        .unwrap();
    let outcomes: Vec<(&str, Option<&str>)> = all
        .iter()
        .map(|r| (r.status.code(), r.outcome.as_deref()))
        .collect();
    assert!(
        outcomes.iter().any(|(s, o)| *s == "skipped"
            && o.is_some_and(|o| o.starts_with("address suppressed: hard bounce on "))),
        "{outcomes:?} {ada:?}"
    );
    assert!(outcomes.iter().any(|(s, _)| *s == "done"), "{outcomes:?}");
    assert!(smtp.last_to("ada@example.com").is_none());
    assert!(smtp.last_to("bob@example.com").is_some());
}

async fn a_suppression_outlives_the_contact(app: TestApp, smtp: SmtpServer) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let message = write_message(&app, &client, "Welcome", "Welcome", "Hello", "").await;
    let welcome = welcome_automation(&app, &client, message).await;
    let ada = new_contact(&app, &client, "ada@example.com", "Ada").await;
    app.drain_due_runs().await;
    assert!(smtp.last_to("ada@example.com").is_some(), "sent before");
    suppress(&app, "ada@example.com", Reason::Complaint).await;
    let mut tx = app.state.db.begin().await.unwrap();
    herald::contacts::delete(&mut tx, ada).await.unwrap();
    app.state.db.commit(tx).await.unwrap();
    new_contact(&app, &client, "ada@example.com", "Ada").await;
    app.drain_due_runs().await;
    let latest = &runs(&app, welcome).await[0];
    assert_eq!(latest.status.code(), "skipped", "{latest:?}");
    assert_eq!(smtp.count(), 1, "nothing more was sent");
}

async fn a_password_email_stops_only_after_a_hard_bounce(app: TestApp, smtp: SmtpServer) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let automation = crate::scheduler::password_automation(&app, &client, &[], &[]).await;
    let cleo = crate::scheduler::contact(&app, "cleo@example.com", "cleo's own password").await;
    suppress(&app, "cleo@example.com", Reason::Complaint).await;
    crate::scheduler::request_password(&app, cleo).await;
    app.drain_due_runs().await;
    assert!(
        smtp.last_to("cleo@example.com").is_some(),
        "a complaint does not stop a transactional email"
    );
    let mut tx = app.state.db.begin().await.unwrap();
    suppressions::remove(&mut tx, "cleo@example.com")
        .await
        .unwrap();
    app.state.db.commit(tx).await.unwrap();
    suppress(&app, "cleo@example.com", Reason::HardBounce).await;
    app.advance(std::time::Duration::from_secs(3600));
    crate::scheduler::request_password(&app, cleo).await;
    app.drain_due_runs().await;
    let latest = &crate::scheduler::runs(&app, automation).await[0];
    assert_eq!(latest.status.code(), "skipped", "{latest:?}");
    assert!(
        latest
            .outcome
            .as_deref()
            .unwrap()
            .starts_with("address suppressed: hard bounce"),
        "{latest:?}"
    );
    assert_eq!(smtp.count(), 1);
}

async fn a_test_send_to_a_suppressed_address_goes_and_warns(app: TestApp, smtp: SmtpServer) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let id = write_message(&app, &client, "Offer", "Offer", "Hello", "").await;
    suppress(&app, "qa@example.com", Reason::HardBounce).await;
    let r = app
        .submit_with(
            &client,
            &format!("/messages/{id}/preview"),
            &format!("/messages/{id}/test"),
            &[("to", "qa@example.com")],
        )
        .await;
    let (_, page) = app.page_with(&client, &location(&r)).await;
    assert!(
        page.contains("qa@example.com is on the suppression list (hard bounce)"),
        "{page}"
    );
    assert!(
        smtp.last_to("qa@example.com").is_some(),
        "a test is sent all the same"
    );
}

with_smtp!(
    a_test_send_to_a_suppressed_address_goes_and_warns,
    a_prepared_message_to_a_suppressed_address_is_skipped_and_says_why,
    a_suppression_outlives_the_contact,
    a_password_email_stops_only_after_a_hard_bounce
);

async fn an_admin_adds_searches_and_takes_off_an_address_with_an_audit_trail(app: TestApp) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let page = "/admin/suppressions";
    let r = app
        .submit_with(&admin, page, page, &[("address", "not an address")])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(text_of(&html, "#address-error").is_some(), "{html}");
    let r = app
        .submit_with(
            &admin,
            page,
            page,
            &[("address", "Zed@Example.com"), ("note", "asked by phone")],
        )
        .await;
    assert_eq!(location(&r), page);
    let (_, html) = app.page_with(&admin, "/admin/suppressions?q=zed").await;
    assert_eq!(text_of(&html, "#total").unwrap(), "1 address holds “zed”.");
    let row = text_of(&html, "tr[data-address=\"zed@example.com\"]").unwrap();
    assert!(
        row.contains("added by hand") && row.contains("asked by phone"),
        "{row}"
    );
    let (_, html) = app.page_with(&admin, "/admin/suppressions?q=nobody").await;
    assert!(html.contains("No suppressed address holds “nobody”."));
    let remove = "/admin/suppressions/remove?address=zed%40example.com";
    let (status, confirm) = app.page_with(&admin, remove).await;
    assert_eq!(status, StatusCode::OK);
    assert!(confirm.contains("Take zed@example.com off the suppression list?"));
    let r = app.submit_with(&admin, remove, remove, &[]).await;
    assert_eq!(location(&r), page);
    assert!(
        suppressions::find(&app.state.db, "zed@example.com")
            .await
            .unwrap()
            .is_none()
    );
    let stored = app.all_stored_text().await;
    assert!(stored.contains("suppression.added") && stored.contains("suppression.removed"));
    let (marketer, _) = app.signed_in(Role::Marketer).await;
    assert_eq!(
        app.get_with(&marketer, page).await.status(),
        StatusCode::FORBIDDEN
    );
}

async fn the_list_is_exported_and_imported_as_csv(app: TestApp) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    suppress(&app, "old@example.com", Reason::HardBounce).await;
    let (_, html) = app.page_with(&admin, "/admin/suppressions").await;
    let action = scraper::Html::parse_document(&html)
        .select(&scraper::Selector::parse("form[enctype=\"multipart/form-data\"]").unwrap())
        .next()
        .and_then(|f| f.value().attr("action").map(str::to_string))
        .expect("the import form");
    assert!(
        action.starts_with("/admin/suppressions/import?csrf_token="),
        "{action}"
    );
    let csv = "name,email\nAnn,Ann@Example.com\nBob,not an address\nOld,old@example.com\n";
    let file = reqwest::multipart::Part::bytes(csv.as_bytes().to_vec())
        .file_name("blacklist.csv")
        .mime_str("text/csv")
        .unwrap();
    let r = admin
        .post(app.url(&action))
        .multipart(reqwest::multipart::Form::new().part("file", file))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/admin/suppressions");
    let (_, html) = app.page_with(&admin, "/admin/suppressions").await;
    assert!(
        html.contains(
            "Imported 2 addresses: 1 new on the list. Not addresses, passed over: line 3."
        ),
        "{html}"
    );
    let old = suppressions::find(&app.state.db, "old@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        old.reason,
        Reason::HardBounce,
        "an import keeps a stronger reason"
    );
    let r = app.get_with(&admin, "/admin/suppressions.csv").await;
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let text = r.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "address,reason,source,detail,added_at");
    assert!(lines[1].starts_with("old@example.com,hard_bounce,bounce,550 5.1.1,"));
    assert!(lines[2].starts_with("ann@example.com,manual,import,,"));
    assert_eq!(lines.len(), 3);
}

async fn the_api_lists_adds_and_removes_suppressions(app: TestApp) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let key = crate::api::new_key(&app, &admin, "Shop").await;
    let api = reqwest::Client::new();
    let post = |body: serde_json::Value| {
        api.post(app.url("/api/v1/suppressions"))
            .bearer_auth(&key)
            .json(&body)
            .send()
    };
    let r = post(json!({ "address": "Eve@Example.com", "note": "left the company" }))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let eve: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (
            eve["address"].as_str(),
            eve["reason"].as_str(),
            eve["source"].as_str()
        ),
        (
            Some("eve@example.com"),
            Some("manual"),
            Some("API key Shop")
        )
    );
    let r = post(json!({ "address": "eve@example.com" })).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "already on the list");
    let r = post(json!({ "address": "nope" })).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["field"],
        "address"
    );
    let list: serde_json::Value = api
        .get(app.url("/api/v1/suppressions?q=eve"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 1);
    assert_eq!(list["suppressions"][0]["address"], "eve@example.com");
    let far = format!(
        "/api/v1/suppressions?offset={}&limit={}",
        i64::MAX,
        i64::MIN
    );
    let r = api
        .get(app.url(&far))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "hostile paging is a page, not a panic"
    );
    let delete = || {
        api.delete(app.url("/api/v1/suppressions/EVE@example.com"))
            .bearer_auth(&key)
            .send()
    };
    assert_eq!(delete().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(delete().await.unwrap().status(), StatusCode::NOT_FOUND);
    let stored = app.all_stored_text().await;
    assert!(stored.contains("suppression.added") && stored.contains("suppression.removed"));
    let doc: serde_json::Value = reqwest::get(app.url("/api/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/v1/suppressions"]["post"].is_object());
    assert!(doc["paths"]["/api/v1/suppressions/{address}"]["delete"].is_object());
}

async fn automations_blacklist_a_new_contact_and_deactivate_a_changed_one(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let blacklist = automation(
        &app,
        &client,
        "Blacklist sign-ups",
        "registered_to_system",
        &[
            ("job", "add_contact_to_blacklist"),
            ("use_event_parameter", "on"),
        ],
    )
    .await;
    let (_, page) = app
        .page_with(&client, &format!("/automations/{blacklist}"))
        .await;
    assert_eq!(
        text_of(&page, "#job-words").unwrap(),
        "Puts the contact's address on the suppression list: no prepared message goes to it again."
    );
    let ada = new_contact(&app, &client, "ada@example.com", "Ada").await;
    app.drain_due_runs().await;
    // Then, when her profile changes, she is deactivated.
    let deactivate = automation(
        &app,
        &client,
        "Deactivate on change",
        "profile_data_changed",
        &[("job", "deactivate_contact"), ("use_event_parameter", "on")],
    )
    .await;
    let r = app
        .submit_with(
            &client,
            &format!("/contacts/{ada}/edit"),
            &format!("/contacts/{ada}"),
            &[("first_name", "Adele")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    app.drain_due_runs().await;
    let entry = suppressions::find(&app.state.db, "ada@example.com")
        .await
        .unwrap()
        .expect("on the list");
    assert_eq!(
        (entry.reason, entry.source.as_str()),
        (Reason::Manual, "automation: Blacklist sign-ups")
    );
    let contact = herald::contacts::find(&app.state.db, ada)
        .await
        .unwrap()
        .unwrap();
    assert!(contact.is_blocked());
    for id in [blacklist, deactivate] {
        let run = &runs(&app, id).await[0];
        assert_eq!(run.status.code(), "done", "{run:?}");
    }
    let stored = app.all_stored_text().await;
    assert!(stored.contains("added to the suppression list") && stored.contains("blocked"));
}

async fn try_it_says_a_suppressed_address_would_be_skipped(app: TestApp) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let key = crate::api::new_key(&app, &admin, "Try").await;
    let message = write_message(&app, &admin, "Welcome", "Welcome", "Hello", "").await;
    let welcome = welcome_automation(&app, &admin, message).await;
    let ada = new_contact(&app, &admin, "ada@example.com", "Ada").await;
    let limits = async || {
        let answer =
            crate::try_it::try_api(&app, &key, welcome, &[("contact_id", &ada.to_string())]).await;
        answer["limits"].to_string()
    };
    assert!(!limits().await.contains("suppression list"));
    suppress(&app, "ada@example.com", Reason::Complaint).await;
    let said = limits().await;
    assert!(
        said.contains("The address is on the suppression list (complaint on ")
            && said.contains("): the run would be skipped."),
        "{said}"
    );
}

async fn a_stronger_reason_replaces_a_weaker_one_and_never_the_other_way(app: TestApp) {
    let reason = async || {
        suppressions::find(&app.state.db, "ada@example.com")
            .await
            .unwrap()
            .unwrap()
            .reason
    };
    suppress(&app, "ada@example.com", Reason::Manual).await;
    suppress(&app, "ada@example.com", Reason::SoftBounces).await;
    assert_eq!(
        reason().await,
        Reason::Manual,
        "soft bounces do not replace it"
    );
    suppress(&app, "ada@example.com", Reason::Complaint).await;
    assert_eq!(reason().await, Reason::Complaint);
    suppress(&app, "ada@example.com", Reason::Manual).await;
    assert_eq!(reason().await, Reason::Complaint, "a weaker one does not");
    suppress(&app, "ada@example.com", Reason::HardBounce).await;
    assert_eq!(reason().await, Reason::HardBounce);
    suppress(&app, "ada@example.com", Reason::Complaint).await;
    assert_eq!(reason().await, Reason::HardBounce);
}

/// The check before every send keeps a copy of the list: a change made here
/// counts at once; one another instance made (written straight to the database
/// here, as that instance would) within a second or so.
async fn the_check_before_a_send_sees_changes_here_at_once_and_from_elsewhere_soon(app: TestApp) {
    let checker = &app.state.suppressed;
    let db = &app.state.db;
    assert!(checker.find(db, "ada@example.com").await.unwrap().is_none());
    suppress(&app, "Ada@Example.com", Reason::HardBounce).await;
    let found = checker.find(db, "ada@example.com").await.unwrap();
    assert_eq!(found.map(|s| s.reason), Some(Reason::HardBounce), "at once");
    // Another instance lists Bob and takes Ada off.
    let mut tx = db.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO suppressions (address, reason, source, detail, created_at) \
         VALUES ('bob@example.com', 'complaint', 'elsewhere', '', 1)",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("DELETE FROM suppressions WHERE address = 'ada@example.com'")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE suppression_version SET version = version + 1 WHERE id = 1")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut seen = false;
    for _ in 0..50 {
        let bob = checker.find(db, "bob@example.com").await.unwrap();
        let ada = checker.find(db, "ada@example.com").await.unwrap();
        if bob.is_some() && ada.is_none() {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(seen, "the other instance's changes were never seen");
}

on_both_engines!(
    the_check_before_a_send_sees_changes_here_at_once_and_from_elsewhere_soon,
    a_stronger_reason_replaces_a_weaker_one_and_never_the_other_way,
    try_it_says_a_suppressed_address_would_be_skipped,
    automations_blacklist_a_new_contact_and_deactivate_a_changed_one,
    an_admin_adds_searches_and_takes_off_an_address_with_an_audit_trail,
    the_list_is_exported_and_imported_as_csv,
    the_api_lists_adds_and_removes_suppressions
);
