//! Consent (issue: double opt-in, consent records, editable system emails): a
//! group with double opt-in makes every way in pending until the emailed link is
//! confirmed; consent records say how; system emails are edited and checked.

use std::time::Duration;

use herald::auth::users::Role;
use herald::contacts;
use reqwest::StatusCode;

use crate::helpers::{TestApp, browser, find_form, location, text_of};
use crate::smtp::{Received, SmtpServer, text_part};

/// The confirmation email to `address`, once it came (the sender runs beside
/// the scheduler, woken at once).
pub(crate) async fn confirmation_to(smtp: &SmtpServer, address: &str, n: usize) -> Received {
    let started = std::time::Instant::now();
    loop {
        let mails: Vec<Received> = smtp
            .messages()
            .into_iter()
            .filter(|m| {
                m.to.iter().any(|t| t == address) && text_part(&m.data).contains("/confirm/")
            })
            .collect();
        if mails.len() >= n {
            return mails[n - 1].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no confirmation email #{n} to {address}: {:?}",
            smtp.messages()
                .iter()
                .map(|m| (m.to.clone(), m.data.len()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The confirmation link's path (`/preferences/confirm/…`) in an email.
pub(crate) fn confirm_path(mail: &Received) -> String {
    let text = text_part(&mail.data);
    let at = text
        .find("/preferences/confirm/")
        .expect("a confirmation link");
    text[at..].split_whitespace().next().unwrap().to_string()
}

async fn is_member(app: &TestApp, group: i64, contact: i64) -> bool {
    contacts::groups::is_member(&app.state.db, group, contact)
        .await
        .unwrap()
}

async fn pending_groups(app: &TestApp, contact: i64) -> Vec<i64> {
    herald::consent::pending_of(&app.state.db, contact)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.group_id)
        .collect()
}

/// (action, method) of the contact's consent records, oldest first.
async fn records(app: &TestApp, contact: i64) -> Vec<(String, String, String)> {
    let mut all: Vec<_> = herald::consent::records_of(&app.state.db, contact)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.action, r.method, r.detail))
        .collect();
    all.reverse();
    all
}

fn subscribed_events(
    events: &[(String, Option<i64>, Option<i64>, serde_json::Value)],
    group: i64,
) -> usize {
    events
        .iter()
        .filter(|e| e.0 == "subscribed_to_group" && e.2 == Some(group))
        .count()
}

async fn a_preference_center_subscription_waits_for_the_emailed_link(
    app: TestApp,
    smtp: SmtpServer,
) {
    let (staff, _) = app.signed_in(Role::Marketer).await;
    let news = app
        .new_group(
            &staff,
            &[
                ("name", "Newsletter"),
                ("visible_in_preference_center", "on"),
            ],
            true,
        )
        .await;
    let cleo = crate::scheduler::contact(&app, "cleo@example.com", "cleo's own password").await;
    let contact = browser();
    app.contact_sign_in(&contact, "cleo@example.com", "cleo's own password")
        .await;
    let (_, page) = app.page_with(&contact, "/preferences").await;
    assert!(
        text_of(&page, &format!("#group-{news}-help"))
            .unwrap()
            .contains("We will email you a link to confirm"),
        "the preference center says a confirmation will be asked"
    );
    let r = app
        .submit_with(
            &contact,
            "/preferences",
            "/preferences",
            &[("group", &news.to_string()), ("receive_messages", "on")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = app.page_with(&contact, "/preferences").await;
    assert!(page.contains("emailed you a link to confirm"), "{page}");
    assert!(
        text_of(&page, &format!("#group-{news}-pending"))
            .unwrap()
            .contains("Waiting for your confirmation")
    );
    // Pending is not member: not in the group, no event, counted apart.
    assert!(!is_member(&app, news, cleo).await);
    assert_eq!(pending_groups(&app, cleo).await, vec![news]);
    assert_eq!(subscribed_events(&app.events().await, news), 0);
    let g = contacts::groups::find(&app.state.db, news)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((g.members, g.pending), (0, 1));
    let (_, members) = app
        .page_with(&staff, &format!("/groups/{news}/members"))
        .await;
    assert!(
        text_of(&members, "#pending")
            .unwrap()
            .contains("cleo@example.com")
    );
    assert!(
        !text_of(&members, "#members")
            .unwrap()
            .contains("cleo@example.com")
    );

    let mail = confirmation_to(&smtp, "cleo@example.com", 1).await;
    assert!(text_part(&mail.data).contains("Newsletter"));
    let path = confirm_path(&mail);
    // A scanner opening the link confirms nobody.
    let scanner = browser();
    let (status, shown) = app.page_with(&scanner, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(shown.contains("Yes, subscribe me to Newsletter"), "{shown}");
    assert!(!is_member(&app, news, cleo).await);
    // An altered link is refused with what to do.
    let last = if path.ends_with('0') { '1' } else { '0' };
    let altered = format!("{}{last}", &path[..path.len() - 1]);
    let (status, refused) = app.page_with(&scanner, &altered).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(text_of(&refused, "#refused").unwrap().contains("not valid"));
    assert!(refused.contains("tick the list again"));
    // The button confirms.
    let form = find_form(&shown, &path);
    let r = app.post_form_with(&scanner, &form).await;
    assert_eq!(r.status(), StatusCode::OK);
    let done = r.text().await.unwrap();
    assert!(
        text_of(&done, "#confirmed")
            .unwrap()
            .contains("cleo@example.com now receives Newsletter"),
        "{done}"
    );
    assert!(is_member(&app, news, cleo).await);
    assert!(pending_groups(&app, cleo).await.is_empty());
    assert_eq!(subscribed_events(&app.events().await, news), 1);
    // Again: nothing more happens.
    let r = app.post_form_with(&scanner, &form).await;
    assert!(
        text_of(&r.text().await.unwrap(), "#confirmed")
            .unwrap()
            .contains("already subscribed")
    );
    assert_eq!(subscribed_events(&app.events().await, news), 1);
    // The records: asked in the preference center (from the client's address),
    // confirmed with the link, with the email's version.
    let stored = herald::consent::records_of(&app.state.db, cleo)
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(
        (stored[1].action.as_str(), stored[1].method.as_str()),
        ("requested", "preference_center")
    );
    assert_eq!(stored[1].ip, "127.0.0.1");
    assert_eq!(
        (stored[0].action.as_str(), stored[0].method.as_str()),
        ("confirmed", "confirmation_link")
    );
    assert_eq!(stored[0].email_version, Some(0), "the shipped text");
    let (_, contact_page) = app.page_with(&staff, &format!("/contacts/{cleo}")).await;
    let consent = text_of(&contact_page, "#consent").unwrap();
    assert!(
        consent.contains("Confirmed") && consent.contains("with the emailed confirmation link"),
        "{consent}"
    );
    assert!(consent.contains("in the preference center"));
    // The confirmation is a delivery of its own.
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM deliveries WHERE contact_id = $1")
            .bind(cleo)
            .fetch_all(app.state.db.read())
            .await
            .unwrap();
    assert_eq!(kinds, vec!["confirmation".to_string()]);
    // Unticking leaves the group, recorded the same way.
    let mut form = app
        .form_with(&contact, "/preferences", "/preferences")
        .await;
    form.remove("group");
    app.post_form_with(&contact, &form).await;
    assert!(!is_member(&app, news, cleo).await);
    assert_eq!(records(&app, cleo).await.last().unwrap().0, "withdrawn");
}

async fn every_way_in_ends_pending_or_active_as_the_group_says(app: TestApp, smtp: SmtpServer) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let asks = app.new_group(&admin, &[("name", "Letters")], true).await;
    let open = app.new_group(&admin, &[("name", "Open")], false).await;
    let key = crate::api::new_key(&app, &admin, "Shop").await;
    // The API: pending for the double opt-in group, a member of the other.
    let r = reqwest::Client::new()
        .post(app.url("/api/v1/contacts"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"email": "ann@example.com", "groups": [asks, open]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["groups"],
        serde_json::json!([{"id": open, "name": "Open"}])
    );
    assert_eq!(
        body["pending_groups"],
        serde_json::json!([{"id": asks, "name": "Letters"}])
    );
    let methods: Vec<(&str, &str, &str)> = body["consent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["group"].as_str().unwrap(),
                c["action"].as_str().unwrap(),
                c["detail"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        methods.contains(&("Letters", "requested", "API key Shop")),
        "{methods:?}"
    );
    assert!(
        methods.contains(&("Open", "subscribed", "API key Shop")),
        "{methods:?}"
    );
    let ann = body["id"].as_i64().unwrap();
    confirmation_to(&smtp, "ann@example.com", 1).await;
    // The same request again within the hour sends no second email.
    reqwest::Client::new()
        .post(app.url("/api/v1/contacts"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"email": "ann@example.com", "groups": [asks]}))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        smtp.messages()
            .iter()
            .filter(|m| m.to.contains(&"ann@example.com".to_string()))
            .count(),
        1,
        "no second email within the hour"
    );

    // Staff on the contact page: pending, said so.
    let bob = crate::messages::new_contact(&app, &admin, "bob@example.com", "Bob").await;
    let page = format!("/contacts/{bob}");
    let r = app
        .submit_with(
            &admin,
            &page,
            &format!("{page}/groups"),
            &[("group_id", &asks.to_string())],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, html) = app.page_with(&admin, &page).await;
    assert!(
        html.contains("asks for double opt-in"),
        "the flash says what happens"
    );
    assert!(
        text_of(&html, &format!("#pending-{asks}"))
            .unwrap()
            .contains("Pending")
    );
    assert_eq!(pending_groups(&app, bob).await, vec![asks]);
    let staff = &records(&app, bob).await[0];
    assert_eq!((staff.0.as_str(), staff.1.as_str()), ("requested", "staff"));
    assert!(staff.2.contains("@"), "names the staff member: {}", staff.2);

    // The job: Subscribe Contact to Group makes a pending membership too.
    crate::messages::automation(
        &app,
        &admin,
        "Join letters",
        "registered_to_system",
        &[
            ("job", "subscribe_to_group"),
            ("use_event_parameter", "on"),
            ("join_group", &asks.to_string()),
        ],
    )
    .await;
    let cy = crate::messages::new_contact(&app, &admin, "cy@example.com", "Cy").await;
    app.drain_due_runs().await;
    assert_eq!(pending_groups(&app, cy).await, vec![asks]);
    assert!(!is_member(&app, asks, cy).await);
    assert_eq!(records(&app, cy).await[0].1, "automation");

    // An import without the assertion waits, saying how many emails it sends.
    let csv = "email\ndee@example.com\nbob@example.com\neli@example.com\nnot-an-address\n";
    let r = app
        .upload_csv_with(
            &admin,
            csv.as_bytes().to_vec(),
            &[("group_id", &asks.to_string())],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let import_page = location(&r);
    let (_, html) = app.page_with(&admin, &import_page).await;
    assert!(
        text_of(&html, "#import-confirmations")
            .unwrap()
            .contains("send 2 confirmation emails"),
        "bob waits already: {html}"
    );
    assert!(
        contacts::find_by_email(&app.state.db, "dee@example.com")
            .await
            .unwrap()
            .is_none(),
        "not started"
    );
    let r = app
        .submit_with(&admin, &import_page, &format!("{import_page}/start"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    app.drain_due_runs().await;
    let (_, html) = app.page_with(&admin, &import_page).await;
    assert!(
        text_of(&html, "#report-pending")
            .unwrap()
            .starts_with("2 asked to confirm"),
        "{html}"
    );
    assert_eq!(
        text_of(&html, "#report-group").unwrap(),
        "0 joined the group Letters (1 was a member or waiting to confirm already)"
    );
    let dee = contacts::find_by_email(&app.state.db, "dee@example.com")
        .await
        .unwrap()
        .unwrap()
        .id;
    assert_eq!(pending_groups(&app, dee).await, vec![asks]);
    confirmation_to(&smtp, "dee@example.com", 1).await;
    assert_eq!(
        subscribed_events(&app.events().await, asks),
        0,
        "nobody joined yet"
    );
    // With the assertion: members at once, with Subscribed to Group (C), and the
    // records name the file and who asserted consent.
    let csv = "email\nfay@example.com\ndee@example.com\n";
    let r = app
        .upload_csv_with(
            &admin,
            csv.as_bytes().to_vec(),
            &[("group_id", &asks.to_string()), ("consent_asserted", "on")],
        )
        .await;
    let import_page = location(&r);
    app.drain_due_runs().await;
    let (_, html) = app.page_with(&admin, &import_page).await;
    assert_eq!(
        text_of(&html, "#report-group").unwrap(),
        "2 joined the group Letters"
    );
    assert!(
        text_of(&html, "#report-consent")
            .unwrap()
            .starts_with("Consent asserted by")
    );
    assert!(
        text_of(&html, "#report-events")
            .unwrap()
            .contains("2 × Subscribed to Group (C)")
    );
    assert!(is_member(&app, asks, dee).await && pending_groups(&app, dee).await.is_empty());
    assert_eq!(subscribed_events(&app.events().await, asks), 2);
    let fay = contacts::find_by_email(&app.state.db, "fay@example.com")
        .await
        .unwrap()
        .unwrap()
        .id;
    let (action, method, detail) = records(&app, fay).await.remove(0);
    assert_eq!((action.as_str(), method.as_str()), ("subscribed", "import"));
    assert!(
        detail.contains("contacts.csv") && detail.contains("consent asserted by"),
        "{detail}"
    );
    // A cancelled waiting import imports nothing.
    let r = app
        .upload_csv_with(
            &admin,
            b"email\ngus@example.com\n".to_vec(),
            &[("group_id", &asks.to_string())],
        )
        .await;
    let import_page = location(&r);
    app.submit_with(&admin, &import_page, &format!("{import_page}/cancel"), &[])
        .await;
    app.drain_due_runs().await;
    let (_, html) = app.page_with(&admin, &import_page).await;
    assert!(
        text_of(&html, "#import-status")
            .unwrap()
            .contains("Cancelled")
    );
    assert!(
        contacts::find_by_email(&app.state.db, "gus@example.com")
            .await
            .unwrap()
            .is_none()
    );
    // A message naming the group skips a contact who has not confirmed it.
    let message = crate::messages::write_message(&app, &admin, "Letter", "News", "Hello", "").await;
    let letter = crate::messages::automation(
        &app,
        &admin,
        "Letter on change",
        "profile_data_changed",
        &[
            ("job", "send_message_to_contact"),
            ("use_event_parameter", "on"),
            ("message", &message.to_string()),
            ("message_group", &asks.to_string()),
        ],
    )
    .await;
    let mut tx = app.state.db.begin().await.unwrap();
    contacts::set_attribute(&mut tx, cy, "city", "Oslo", app.now_ms(), 0)
        .await
        .unwrap();
    app.state.db.commit(tx).await.unwrap();
    app.drain_due_runs().await;
    let outcomes: Vec<Option<String>> =
        sqlx::query_scalar("SELECT outcome FROM job_runs WHERE automation_id = $1")
            .bind(letter)
            .fetch_all(app.state.db.read())
            .await
            .unwrap();
    assert_eq!(
        outcomes,
        vec![Some(
            "waiting for the contact to confirm Letters (double opt-in)".to_string()
        )]
    );
    assert!(
        smtp.last_to("cy@example.com")
            .is_none_or(|m| !m.data.contains("Subject: News"))
    );
    // Pending members receive nothing sent to the group: a selection by group
    // leaves them out.
    let members: Vec<i64> = sqlx::query_scalar(
        "SELECT contact_id FROM group_members WHERE group_id = $1 ORDER BY contact_id",
    )
    .bind(asks)
    .fetch_all(app.state.db.read())
    .await
    .unwrap();
    assert_eq!(members, vec![dee, fay]);
    // An hour later it does (the link in it works too).
    app.advance(Duration::from_secs(3601));
    reqwest::Client::new()
        .post(app.url("/api/v1/contacts"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"email": "ann@example.com", "groups": [asks]}))
        .send()
        .await
        .unwrap();
    let second = confirmation_to(&smtp, "ann@example.com", 2).await;
    assert!(!is_member(&app, asks, ann).await);
    let r = browser()
        .post(app.url(&confirm_path(&second)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "no CSRF token: not from the page"
    );
}

async fn an_expired_link_is_refused_and_a_suppressed_address_gets_no_confirmation(
    app: TestApp,
    smtp: SmtpServer,
) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let asks = app.new_group(&admin, &[("name", "Letters")], true).await;
    let ann = crate::messages::new_contact(&app, &admin, "ann@example.com", "Ann").await;
    let page = format!("/contacts/{ann}");
    app.submit_with(
        &admin,
        &page,
        &format!("{page}/groups"),
        &[("group_id", &asks.to_string())],
    )
    .await;
    let mail = confirmation_to(&smtp, "ann@example.com", 1).await;
    let path = confirm_path(&mail);
    // Eight days on (the link works seven): refused, and the pending membership goes.
    app.advance(Duration::from_secs(8 * 86_400));
    let visitor = browser();
    let (status, html) = app.page_with(&visitor, &path).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(text_of(&html, "#refused").unwrap().contains("expired"));
    assert!(html.contains("we will email you a new link"));
    let started = std::time::Instant::now();
    while !pending_groups(&app, ann).await.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the expired request stays"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(records(&app, ann).await.last().unwrap().0, "expired");
    assert!(!is_member(&app, asks, ann).await);
    // A suppressed address is pending, but sent no confirmation (staff sign in
    // again: their session ended while the days passed).
    let (admin, _) = app.signed_in(Role::Admin).await;
    let bob = crate::messages::new_contact(&app, &admin, "bob@example.com", "Bob").await;
    let mut conn = app.state.db.write().acquire().await.unwrap();
    herald::suppressions::add(
        &mut conn,
        &herald::types::EmailAddress::parse("bob@example.com").unwrap(),
        herald::suppressions::Reason::Manual,
        "test",
        "",
        app.now_ms(),
    )
    .await
    .unwrap();
    drop(conn);
    let page = format!("/contacts/{bob}");
    app.submit_with(
        &admin,
        &page,
        &format!("{page}/groups"),
        &[("group_id", &asks.to_string())],
    )
    .await;
    let started = std::time::Instant::now();
    loop {
        let p = herald::consent::pending_of(&app.state.db, bob)
            .await
            .unwrap();
        if p[0].email_state == "skipped" {
            assert!(
                p[0].email_note.contains("suppressed"),
                "{}",
                p[0].email_note
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not skipped: {}",
            p[0].email_state
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(smtp.last_to("bob@example.com").is_none());
    let (_, html) = app.page_with(&admin, &page).await;
    assert!(
        text_of(&html, &format!("#pending-{asks}"))
            .unwrap()
            .contains("no confirmation email")
    );
}

async fn a_system_email_that_would_break_is_refused_next_to_the_field(
    app: TestApp,
    smtp: SmtpServer,
) {
    let (staff, _) = app.signed_in(Role::Marketer).await;
    let (_, list) = app.page_with(&staff, "/messages/system").await;
    for label in [
        "New password for a contact",
        "Subscription confirmation (double opt-in)",
        "Reminder before an automation ends",
    ] {
        assert!(
            text_of(&list, "#system-emails").unwrap().contains(label),
            "{label}"
        );
    }
    let page = "/messages/system/contact_password";
    let (_, html) = app.page_with(&staff, page).await;
    assert!(
        text_of(&html, "#preview-text")
            .unwrap()
            .contains("x7Qp-Rt2m-Lk9w"),
        "previewed with sample values"
    );
    // Refused next to the field, nothing saved: without the password, without the
    // link in the HTML part, with a name it does not have, a confirmation without
    // its link.
    let confirmation = "/messages/system/confirmation";
    for (page, field, value, said) in [
        (
            page,
            "text",
            "Hello {{ name }}, sign in at {{ sign_in_url }}",
            "{{ password }}",
        ),
        (page, "html", "<p>{{ password }}</p>", "{{ sign_in_url }}"),
        (
            page,
            "subject",
            "For {{ contact.first_name }}",
            "\"contact\"",
        ),
        (
            confirmation,
            "text",
            "Hi {{ name }}, welcome!",
            "{{ confirm_url }}",
        ),
    ] {
        let r = app.submit_with(&staff, page, page, &[(field, value)]).await;
        assert_eq!(
            r.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{page} {field}"
        );
        let html = r.text().await.unwrap();
        let error = text_of(&html, &format!("#{field}-error")).unwrap_or_default();
        assert!(error.contains(said), "{page} {field}: {error:?}");
    }
    assert_eq!(
        herald::messages::system::current(
            &app.state.db,
            herald::messages::system::SystemEmail::ContactPassword
        )
        .await
        .unwrap()
        .version,
        0,
        "nothing saved"
    );
    // A good edit is what contacts receive from now on; restoring brings Herald's back.
    let r = app
        .submit_with(
            &staff,
            page,
            page,
            &[
                ("subject", "Your key to {{ brand }}"),
                (
                    "text",
                    "Psst {{ name }}: {{ password }} — {{ sign_in_url }}",
                ),
                ("html", ""),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    crate::scheduler::password_automation(&app, &staff, &[], &[]).await;
    crate::scheduler::contact(&app, "cleo@example.com", "cleo's own password").await;
    app.submit_with(
        &browser(),
        "/preferences/forgot",
        "/preferences/forgot",
        &[("email", "cleo@example.com")],
    )
    .await;
    app.events_of("new_password_requested", 1).await;
    app.drain_due_runs().await;
    let mail = smtp
        .last_to("cleo@example.com")
        .expect("the password email");
    assert!(
        mail.data.contains("Subject: Your key to Herald"),
        "{}",
        mail.data
    );
    assert!(
        text_part(&mail.data).starts_with("Psst Cleo"),
        "{}",
        text_part(&mail.data)
    );
    let r = app
        .submit_with(&staff, page, &format!("{page}/restore"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let now = herald::messages::system::current(
        &app.state.db,
        herald::messages::system::SystemEmail::ContactPassword,
    )
    .await
    .unwrap();
    assert!(
        now.is_default() && now.version == 2,
        "restored as a new version"
    );
    assert!(
        app.all_stored_text()
            .await
            .contains("system email: New password for a contact")
    );
}

with_smtp!(
    a_preference_center_subscription_waits_for_the_emailed_link,
    every_way_in_ends_pending_or_active_as_the_group_says,
    an_expired_link_is_refused_and_a_suppressed_address_gets_no_confirmation,
    a_system_email_that_would_break_is_refused_next_to_the_field,
);

/// The right of access: staff, the API and the contact herself download one JSON
/// document with everything Herald holds about her, and nothing about anyone else.
async fn a_contacts_data_is_exported_whole_and_alone(app: TestApp, smtp: SmtpServer) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let news = app
        .new_group(
            &admin,
            &[
                ("name", "Newsletter"),
                ("visible_in_preference_center", "on"),
            ],
            true,
        )
        .await;
    crate::scheduler::password_automation(&app, &admin, &[], &[]).await;
    let cleo = crate::scheduler::contact(&app, "cleo@example.com", "cleo's own password").await;
    let bob = crate::scheduler::contact(&app, "bob@example.com", "bob's own password").await;
    for (id, city) in [(cleo, "Lisbon"), (bob, "Bergen")] {
        let mut tx = app.state.db.begin().await.unwrap();
        contacts::set_attribute(&mut tx, id, "city", city, app.now_ms(), 0)
            .await
            .unwrap();
        herald::contacts::join_group(&mut tx, id, news, app.now_ms())
            .await
            .unwrap();
        app.state.db.commit(tx).await.unwrap();
    }
    let page = format!("/contacts/{cleo}");
    app.submit_with(&admin, &page, &format!("{page}/groups/{news}/remove"), &[])
        .await;
    app.submit_with(
        &admin,
        &page,
        &format!("{page}/groups"),
        &[("group_id", &news.to_string())],
    )
    .await;
    confirmation_to(&smtp, "cleo@example.com", 1).await;
    app.submit_with(
        &browser(),
        "/preferences/forgot",
        "/preferences/forgot",
        &[("email", "cleo@example.com")],
    )
    .await;
    app.events_of("new_password_requested", 1).await;
    app.drain_due_runs().await;
    for table in ["opens", "clicks"] {
        let (columns, values) = if table == "opens" {
            ("at, contact_id", "$1, $2")
        } else {
            (
                "at, contact_id, position, target",
                "$1, $2, 0, 'https://shop.example/cleo'",
            )
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} ({columns}) VALUES ({values})"
        )))
        .bind(app.now_ms())
        .bind(cleo)
        .execute(app.state.db.write())
        .await
        .unwrap();
    }

    let staff = admin
        .get(app.url(&format!("/contacts/{cleo}/export")))
        .send()
        .await
        .unwrap();
    assert_eq!(staff.status(), StatusCode::OK);
    assert!(
        staff.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let staff: serde_json::Value = staff.json().await.unwrap();
    let key = crate::api::new_key(&app, &admin, "Privacy desk").await;
    let api: serde_json::Value = reqwest::Client::new()
        .get(app.url(&format!("/api/v1/contacts/{cleo}/export")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let herself = browser();
    app.contact_sign_in(&herself, "cleo@example.com", "cleo's own password")
        .await;
    let (_, prefs) = app.page_with(&herself, "/preferences").await;
    assert!(
        text_of(&prefs, "#my-data").is_some(),
        "Download my data is offered"
    );
    let own: serde_json::Value = herself
        .get(app.url("/preferences/my-data"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for doc in [&staff, &api, &own] {
        assert_eq!(doc["contact"]["email"], "cleo@example.com");
        assert_eq!(doc["attributes"]["city"], "Lisbon");
        assert_eq!(doc["pending_groups"][0]["name"], "Newsletter");
        let actions: Vec<&str> = doc["consent"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["requested", "withdrawn"], "newest first");
        let events: Vec<&str> = doc["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        assert!(
            events.contains(&"unsubscribed_from_group")
                && events.contains(&"new_password_requested"),
            "{events:?}"
        );
        assert!(
            doc["runs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["status"] == "done")
        );
        let kinds: Vec<&str> = doc["emails"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert!(
            kinds.contains(&"confirmation") && kinds.contains(&"password"),
            "{kinds:?}"
        );
        assert_eq!(doc["opens"].as_array().unwrap().len(), 1);
        assert_eq!(doc["clicks"][0]["target"], "https://shop.example/cleo");
        let text = doc.to_string();
        assert!(
            !text.contains("bob@example.com") && !text.contains("Bergen"),
            "nobody else's data"
        );
        assert!(
            !text.contains("password_hash") && !text.contains("$argon2"),
            "no credential"
        );
    }
    assert!(app.all_stored_text().await.contains("contact.exported"));
    let r = admin
        .get(app.url("/contacts/999999/export"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

with_smtp!(a_contacts_data_is_exported_whole_and_alone);
