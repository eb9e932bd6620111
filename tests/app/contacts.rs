use herald::auth::users::Role;
use herald::contacts::search::Cursor;
use herald::contacts::{self, ContactForm};
use herald::events::catalogue::Source;
use reqwest::StatusCode;

use crate::helpers::{TestApp, find_form, location, text_of};

/// Creates a contact through the form; returns its id.
async fn create_contact(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    first: &str,
    last: &str,
) -> i64 {
    let r = app
        .submit_with(
            client,
            "/contacts/new",
            "/contacts",
            &[("email", email), ("first_name", first), ("last_name", last)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "creating {email}");
    location(&r)
        .trim_start_matches("/contacts/")
        .parse()
        .unwrap()
}

/// A group without double opt-in (joining makes a member at once).
async fn create_group(app: &TestApp, client: &reqwest::Client, name: &str, visible: bool) -> i64 {
    let mut values = vec![("name", name), ("description", "A topic")];
    if visible {
        values.push(("visible_in_preference_center", "on"));
    }
    app.new_group(client, &values, false).await
}

async fn a_new_contact_is_checked_next_to_each_field_and_its_email_kept_unique(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    // Validation next to the field, values kept.
    let long = "x".repeat(101);
    for (values, field, message) in [
        (
            vec![("email", "not an email"), ("first_name", "Ann")],
            "email",
            "Enter an email address like",
        ),
        (
            vec![("email", "ann@example.com"), ("first_name", long.as_str())],
            "first_name",
            "at most 100",
        ),
        (
            vec![
                ("email", "ann@example.com"),
                ("attr_name_0", "email"),
                ("attr_value_0", "x"),
            ],
            "attributes",
            "contact field",
        ),
    ] {
        let r = app
            .submit_with(&client, "/contacts/new", "/contacts", &values)
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let html = r.text().await.unwrap();
        let shown = text_of(&html, &format!("#{field}-error"))
            .unwrap_or_else(|| panic!("no {field} message"));
        assert!(shown.contains(message), "{field}: {shown}");
        assert_eq!(
            find_form(&html, "/contacts").get("email"),
            Some(values[0].1)
        );
    }
    let id = create_contact(&app, &client, "Ann.Lee@Example.com", "Ann", "Lee").await;
    let (_, html) = app.page_with(&client, &format!("/contacts/{id}")).await;
    assert!(
        html.contains("ann.lee@example.com")
            && html.contains("Contact ann.lee@example.com created.")
    );
    // The same address in another case is a duplicate.
    let r = app
        .submit_with(
            &client,
            "/contacts/new",
            "/contacts",
            &[("email", "ANN.LEE@example.COM")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        text_of(&r.text().await.unwrap(), "#email-error")
            .unwrap()
            .contains("already exists")
    );
}

async fn editing_a_contact_records_what_changed_in_words(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let id = create_contact(&app, &client, "Ann.Lee@Example.com", "Ann", "Lee").await;
    // Edit: name and an attribute; Profile Data Changed names them.
    let r = app
        .submit_with(
            &client,
            &format!("/contacts/{id}/edit"),
            &format!("/contacts/{id}"),
            &[
                ("first_name", "Anna"),
                ("attr_name_0", "city"),
                ("attr_value_0", "Berlin"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let c = contacts::find(&app.state.db, id).await.unwrap().unwrap();
    assert_eq!(c.first_name, "Anna");
    assert_eq!(
        contacts::attributes(&app.state.db, id).await.unwrap(),
        vec![("city".to_string(), "Berlin".to_string())]
    );
    // Saving unchanged records nothing.
    app.submit_with(
        &client,
        &format!("/contacts/{id}/edit"),
        &format!("/contacts/{id}"),
        &[],
    )
    .await;
    // The timeline speaks words, not JSON.
    let (_, html) = app.page_with(&client, &format!("/contacts/{id}")).await;
    let timeline = text_of(&html, "#timeline").unwrap();
    assert!(
        timeline.contains("changed first name and city") && timeline.contains("from the Admin UI"),
        "{timeline}"
    );
    assert!(
        !timeline.contains('{') && !timeline.contains('['),
        "{timeline}"
    );
    let events = app.events().await;
    let kinds: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(kinds, ["registered_to_system", "profile_data_changed"]);
    assert_eq!(events[0].3["source"], "ui");
    assert_eq!(
        events[1].3["changed"],
        serde_json::json!(["first_name", "city"])
    );
}

async fn a_contact_is_blocked_unblocked_and_deleted_with_an_audit_trail(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let id = create_contact(&app, &client, "Ann.Lee@Example.com", "Ann", "Lee").await;
    let r = app
        .submit_with(
            &client,
            &format!("/contacts/{id}"),
            &format!("/contacts/{id}/block"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        contacts::find(&app.state.db, id)
            .await
            .unwrap()
            .unwrap()
            .is_blocked()
    );
    app.submit_with(
        &client,
        &format!("/contacts/{id}"),
        &format!("/contacts/{id}/unblock"),
        &[],
    )
    .await;
    assert!(
        !contacts::find(&app.state.db, id)
            .await
            .unwrap()
            .unwrap()
            .is_blocked()
    );
    let r = app
        .submit_with(
            &client,
            &format!("/contacts/{id}/delete"),
            &format!("/contacts/{id}/delete"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(contacts::find(&app.state.db, id).await.unwrap().is_none());
    assert_eq!(
        app.get_with(&client, &format!("/contacts/{id}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let stored = app.all_stored_text().await;
    for action in ["contact.blocked", "contact.unblocked", "contact.deleted"] {
        assert!(stored.contains(action), "audit lacks {action}");
    }
}

async fn group_membership_changes_record_events(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let r = app
        .submit_with(&client, "/groups/new", "/groups", &[("name", " ")])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let news = create_group(&app, &client, "Weekly newsletter", true).await;
    let r = app
        .submit_with(
            &client,
            "/groups/new",
            "/groups",
            &[("name", "Weekly newsletter")],
        )
        .await;
    assert!(
        text_of(&r.text().await.unwrap(), "#name-error")
            .unwrap()
            .contains("already exists")
    );
    let id = create_contact(&app, &client, "bob@example.com", "Bob", "Stone").await;
    let page = format!("/contacts/{id}");
    // A forged group id changes nothing.
    let r = app
        .submit_with(
            &client,
            &page,
            &format!("{page}/groups"),
            &[("group_id", "999999")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        app.page_with(&client, &page)
            .await
            .1
            .contains("Choose a group")
    );
    let r = app
        .submit_with(
            &client,
            &page,
            &format!("{page}/groups"),
            &[("group_id", &news.to_string())],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, html) = app.page_with(&client, &page).await;
    assert!(
        text_of(&html, "#memberships")
            .unwrap()
            .contains("Weekly newsletter")
    );
    let r = app
        .submit_with(&client, &page, &format!("{page}/groups/{news}/remove"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let events = app.events().await;
    let tail: Vec<(&str, Option<i64>, Option<i64>)> = events
        .iter()
        .skip(1)
        .map(|e| (e.0.as_str(), e.1, e.2))
        .collect();
    assert_eq!(
        tail,
        [
            ("subscribed_to_group", Some(id), Some(news)),
            ("unsubscribed_from_group", Some(id), Some(news))
        ]
    );
    // Visibility is edited on the group form.
    let r = app
        .submit_with(
            &client,
            &format!("/groups/{news}"),
            &format!("/groups/{news}"),
            &[("name", "Weekly news")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let g = contacts::groups::find(&app.state.db, news)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.name, "Weekly news");
    assert!(
        g.visible_in_preference_center,
        "the checkbox stays as loaded"
    );
    let r = app
        .submit_with(
            &client,
            &format!("/groups/{news}/delete"),
            &format!("/groups/{news}/delete"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        contacts::groups::find(&app.state.db, news)
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_change_that_fails_records_no_event(app: TestApp) {
    let input = ContactForm {
        email: "carl@example.com".into(),
        ..Default::default()
    }
    .parse()
    .unwrap();
    let mut tx = app.state.db.begin().await.unwrap();
    contacts::create(&mut tx, &input, Source::Api, app.now_ms())
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(app.events().await.is_empty());
    assert!(
        contacts::find_by_email(&app.state.db, "carl@example.com")
            .await
            .unwrap()
            .is_none()
    );
    // A duplicate fails inside the transaction: nothing of it is kept.
    let mut tx = app.state.db.begin().await.unwrap();
    contacts::create(&mut tx, &input, Source::Api, app.now_ms())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = app.state.db.begin().await.unwrap();
    assert!(matches!(
        contacts::create(&mut tx, &input, Source::Api, app.now_ms()).await,
        Err(contacts::SaveError::Duplicate)
    ));
    tx.rollback().await.unwrap();
    let events = app.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].3["source"], "api");
}

/// Five contacts whose emails and names share prefixes.
async fn five_contacts(app: &TestApp, client: &reqwest::Client) {
    for (email, first, last) in [
        ("ann.lee@example.com", "Ann", "Lee"),
        ("anna@acme.example", "Anna", "Berg"),
        ("zed@example.com", "Zed", "Annson"),
        ("bob@example.com", "Bob", "Stone"),
        ("leeroy@example.com", "Leeroy", "Jenkins"),
    ] {
        create_contact(app, client, email, first, last).await;
    }
}

/// The five, and two who hold the searched text inside words.
async fn seven_contacts(app: &TestApp, client: &reqwest::Client) {
    five_contacts(app, client).await;
    create_contact(app, client, "ben.mueller@example.com", "Ben", "Müller").await;
    create_contact(app, client, "jo.hannah@shop.example", "Johannah", "Ray").await;
}

/// The emails the search finds for `q` (its first 50).
async fn found(db: &herald::db::Db, q: &str) -> Vec<String> {
    let (page, _) = contacts::search::search(db, q, None, 50).await.unwrap();
    page.into_iter().map(|c| c.email).collect()
}

/// The emails the search finds for `q`, read two at a time to the end.
async fn two_at_a_time(db: &herald::db::Db, q: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let (page, next) = contacts::search::search(db, q, after.as_ref(), 2)
            .await
            .unwrap();
        seen.extend(page.into_iter().map(|c| c.email));
        match next {
            Some(c) => after = Some(c),
            None => return seen,
        }
    }
}

async fn search_finds_email_and_name_prefixes(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    five_contacts(&app, &client).await;
    let db = &app.state.db;
    let prefixes = found(db, "ANN").await;
    assert_eq!(
        prefixes,
        [
            "ann.lee@example.com",
            "anna@acme.example",
            "zed@example.com"
        ],
        "email, first and last name prefixes"
    );
    assert_eq!(
        found(db, "lee").await,
        ["ann.lee@example.com", "leeroy@example.com"]
    );
    assert_eq!(found(db, "ann le").await, ["ann.lee@example.com"]);
    assert_eq!(found(db, "bob@").await, ["bob@example.com"]);
    assert!(found(db, "nobody").await.is_empty());
}

async fn search_pages_two_at_a_time_each_contact_once(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    five_contacts(&app, &client).await;
    let db = &app.state.db;
    // Pages: two at a time, no contact twice, all of them in the end.
    let seen = two_at_a_time(db, "").await;
    assert_eq!(seen.len(), 5);
    seen.iter()
        .for_each(|e| assert_eq!(seen.iter().filter(|x| *x == e).count(), 1, "{e} once"));
}

async fn the_contact_list_and_the_picker_search_too(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    five_contacts(&app, &client).await;
    // Through the page and the picker.
    let (_, html) = app.page_with(&client, "/contacts?q=ann").await;
    assert!(html.contains("anna@acme.example") && !html.contains("bob@example.com"));
    let picked: serde_json::Value = client
        .get(app.url("/contacts/picker?q=Bo"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        picked,
        serde_json::json!([{"id": picked[0]["id"], "email": "bob@example.com", "name": "Bob Stone", "blocked": false}])
    );
}

async fn search_finds_text_inside_words_after_the_prefixes(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    seven_contacts(&app, &client).await;
    let db = &app.state.db;
    // Inside words: after the prefix matches, contacts holding the text further
    // in, oldest first ("mueller" in an email, a domain, a name's end).
    assert_eq!(found(db, "mueller").await, ["ben.mueller@example.com"]);
    assert_eq!(found(db, "MÜLLER").await, ["ben.mueller@example.com"]);
    assert_eq!(found(db, "nson").await, ["zed@example.com"]);
    assert_eq!(
        found(db, "ann").await,
        [
            "ann.lee@example.com",
            "anna@acme.example",
            "zed@example.com",
            "jo.hannah@shop.example"
        ],
        "prefix matches first, then the inner ones"
    );
    assert!(found(db, "50%").await.is_empty(), "LIKE wildcards are text");
    assert!(found(db, "e_a").await.is_empty());
    assert!(found(db, "\"x\" OR").await.is_empty(), "FTS syntax is text");
}

async fn search_pages_across_prefix_and_inner_matches(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    seven_contacts(&app, &client).await;
    let db = &app.state.db;
    // Paged across the border between prefix and inner matches, two at a time.
    let domain = [
        "ann.lee@example.com",
        "zed@example.com",
        "bob@example.com",
        "leeroy@example.com",
        "ben.mueller@example.com",
    ];
    let seen = two_at_a_time(db, "example.com").await;
    assert_eq!(seen, domain, "oldest first, each once");
    let (_, html) = app.page_with(&client, "/contacts?q=example.com").await;
    assert!(
        html.contains("5 match"),
        "the count holds inner matches: {html}"
    );
    let (_, html) = app.page_with(&client, "/contacts?q=ann").await;
    assert!(html.contains("jo.hannah@shop.example"));
}

async fn the_contact_list_filters_by_group(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    seven_contacts(&app, &client).await;
    let db = &app.state.db;
    // The list filters by group: its members only, oldest first, with or
    // without a search, paged; a group that does not exist is a clear 400.
    let vip = create_group(&app, &client, "VIP", false).await;
    for email in [
        "zed@example.com",
        "ben.mueller@example.com",
        "anna@acme.example",
    ] {
        let c = contacts::find_by_email(db, email).await.unwrap().unwrap();
        let mut tx = db.begin().await.unwrap();
        contacts::join_group(&mut tx, c.id, vip, app.now_ms())
            .await
            .unwrap();
        db.commit(tx).await.unwrap();
    }
    let (_, html) = app
        .page_with(&client, &format!("/contacts?group={vip}"))
        .await;
    assert_eq!(
        text_of(&html, "#total").unwrap(),
        "VIP: 3 members; showing 1–3."
    );
    assert!(
        html.contains("zed@example.com")
            && html.contains("anna@acme.example")
            && !html.contains("bob@example.com")
    );
    let (_, html) = app
        .page_with(&client, &format!("/contacts?q=example.com&group={vip}"))
        .await;
    assert_eq!(
        text_of(&html, "#total").unwrap(),
        "VIP: 2 match; showing 1–2."
    );
    assert!(html.contains("ben.mueller@example.com") && !html.contains("anna@acme.example"));
    let (_, html) = app
        .page_with(&client, &format!("/contacts?q=nobody&group={vip}"))
        .await;
    assert!(
        html.contains("No member of VIP has “nobody” in their email or name."),
        "{html}"
    );
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let (page, next) = contacts::search::search_in_group(db, vip, "", after, 2)
            .await
            .unwrap();
        seen.extend(page.into_iter().map(|c| c.email));
        match next {
            Some(c) => after = c.id,
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "anna@acme.example",
            "zed@example.com",
            "ben.mueller@example.com"
        ]
    );
    assert_eq!(
        app.get_with(&client, "/contacts?group=999999")
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get_with(&client, "/contacts?group=x").await.status(),
        StatusCode::BAD_REQUEST
    );
}

async fn every_search_branch_reads_an_index(app: TestApp) {
    // The inner search reads the trigram index.
    let plan = explain_inner(&app).await;
    assert!(
        plan.contains("contacts_words"),
        "no trigram index in:\n{plan}"
    );
    // The query plan of every branch uses an index.
    for sql in contacts::search::search_statements("ann")
        .into_iter()
        .chain(contacts::search::search_statements("ann le"))
    {
        let plan = explain(&app, &sql).await;
        assert!(
            plan.contains("INDEX") || plan.contains("Index"),
            "no index in the plan of {sql}:\n{plan}"
        );
        assert!(
            !plan.contains("SCAN contacts\n") && !plan.contains("Seq Scan"),
            "full scan in {sql}:\n{plan}"
        );
    }
}

async fn the_picker_answers_at_most_twenty_and_needs_a_session(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let db = &app.state.db;
    let mut tx = db.begin().await.unwrap();
    for i in 0..30 {
        let input = ContactForm {
            email: format!("pick{i:02}@example.com"),
            ..Default::default()
        }
        .parse()
        .unwrap();
        contacts::create(&mut tx, &input, Source::Ui, app.now_ms())
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let picked: Vec<serde_json::Value> = client
        .get(app.url("/contacts/picker?q=pick"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(picked.len(), 20);
    assert_eq!(picked[0]["email"], "pick00@example.com");
    let anonymous = crate::helpers::browser();
    let r = anonymous
        .get(app.url("/contacts/picker?q=pick"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

/// Six rows: three new contacts, one bad address, one repeated address, one row
/// short of fields.
const FIRST_IMPORT: &str = "email,first_name,last_name,city\n\
                   ann@example.com,Ann,Lee,Berlin\n\
                   BOB@example.com,Bob,,Paris\n\
                   not-an-email,Carl,Doe,Rome\n\
                   ann@example.com,Ann,Again,Oslo\n\
                   dora@example.com,Dora\n\
                   \"eve@example.com\",\"Eve, the second\",Long,\"Lisbon\"\n";

async fn an_import_reports_exactly_what_it_did(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let group = create_group(&app, &client, "Imported", false).await;
    let csv = FIRST_IMPORT;
    let report = app.import_csv(&client, csv, Some(group), false).await;
    assert_eq!(
        (report.status.as_str(), report.total_rows, report.rows_done),
        ("done", 6, 6)
    );
    assert_eq!((report.created, report.updated, report.rejected), (3, 0, 3));
    let (_, html) = app
        .page_with(&client, &format!("/contacts/imports/{}", report.id))
        .await;
    assert!(
        text_of(&html, "h1").unwrap().starts_with("Imported "),
        "no longer \"Importing\""
    );
    assert_eq!(
        text_of(&html, "#report-group").unwrap(),
        "3 joined the group Imported"
    );
    assert_eq!(
        text_of(&html, "#report-events").unwrap(),
        "3 × Subscribed to Group (C): no active automation"
    );
    let (_, list) = app.page_with(&client, "/contacts/import").await;
    let recent = text_of(&list, "table tbody").unwrap();
    assert!(
        recent.contains("Done") && recent.contains('3'),
        "created and rejected shown: {recent}"
    );
    assert!(
        list.contains(&format!(
            "href=\"/contacts/imports/{}#rejections\"",
            report.id
        )),
        "the rejected count leads to the rows"
    );
    let rejections = text_of(&html, "#rejections tbody").unwrap();
    for expected in [
        "4",
        "not-an-email",
        "5",
        "already appears on line 2",
        "6",
        "has 2 fields; the header row has 4",
    ] {
        assert!(
            rejections.contains(expected),
            "{expected} missing from:\n{rejections}"
        );
    }
    let eve = contacts::find_by_email(&app.state.db, "eve@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(eve.first_name, "Eve, the second");
    let bob = contacts::find_by_email(&app.state.db, "bob@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        contacts::attributes(&app.state.db, bob.id).await.unwrap(),
        vec![("city".into(), "Paris".into())]
    );
    assert_eq!(
        contacts::groups::find(&app.state.db, group)
            .await
            .unwrap()
            .unwrap()
            .members,
        3
    );
    // No Registered events unless asked; Subscribed to Group (C) for each who
    // joined, like every other way in; one Import Finished with the counts.
    let events = app.events().await;
    let kinds: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "subscribed_to_group",
            "subscribed_to_group",
            "subscribed_to_group",
            "contact_import_finished"
        ]
    );
    let finished = &events[3];
    assert_eq!(finished.3["success"], true);
    assert_eq!(
        (
            finished.3["created"].as_i64(),
            finished.3["rejected"].as_i64()
        ),
        (Some(3), Some(3))
    );
}

async fn the_same_file_again_updates_and_registers_only_new_rows(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let group = create_group(&app, &client, "Imported", false).await;
    let csv = FIRST_IMPORT;
    app.import_csv(&client, csv, Some(group), false).await;
    // The same file again: updates, no duplicates; a new row fires Registered when asked.
    let again = format!("{csv}fred@example.com,Fred,Nox,Kyiv\n");
    let report = app.import_csv(&client, &again, None, true).await;
    assert_eq!((report.created, report.updated, report.rejected), (1, 3, 3));
    assert_eq!(contacts::search::count(&app.state.db).await.unwrap(), 4);
    let events = app.events().await;
    let registered: Vec<_> = events
        .iter()
        .filter(|e| e.0 == "registered_to_system")
        .collect();
    assert_eq!(registered.len(), 1, "only the new contact");
    assert_eq!(registered[0].3["source"], "import");
    let (_, html) = app
        .page_with(&client, &format!("/contacts/imports/{}", report.id))
        .await;
    assert!(text_of(&html, "#report-group").is_none(), "no group chosen");
    assert_eq!(
        text_of(&html, "#report-events").unwrap(),
        "1 × Registered to System (C): no active automation"
    );
}

async fn an_import_report_names_the_automation_its_events_ran_and_members_already_in(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let group = create_group(&app, &client, "Imported", false).await;
    let csv = FIRST_IMPORT;
    app.import_csv(&client, csv, Some(group), false).await;
    // With an active automation on the event, the report names it and its runs;
    // rows already in the group count apart.
    let welcome =
        crate::automations::new_automation(&app, &client, "Welcome", "registered_to_system").await;
    crate::automations::define_job(
        &app,
        &client,
        welcome,
        &[
            ("job", "send_new_password_to_contact"),
            ("use_event_parameter", "on"),
            ("delay", "yes"),
            ("delay_unit", "days"),
            ("delay_value", "1"),
            ("action", "time_frame"),
        ],
    )
    .await;
    crate::automations::define_time_frame(
        &app,
        &client,
        welcome,
        &[
            ("start", "2026-01-01T00:00"),
            ("time_zone", "UTC"),
            ("action", "activate"),
        ],
    )
    .await;
    let third = "email\nann@example.com\ngina@example.com\nhal@example.com\n";
    let report = app.import_csv(&client, third, Some(group), true).await;
    let (_, html) = app
        .page_with(&client, &format!("/contacts/imports/{}", report.id))
        .await;
    assert_eq!(
        text_of(&html, "#report-group").unwrap(),
        "2 joined the group Imported (1 was a member already)"
    );
    assert_eq!(
        text_of(&html, "#report-events").unwrap(),
        "2 × Registered to System (C), 2 × Subscribed to Group (C): 2 runs of Welcome"
    );
    assert!(html.contains(&format!("<a href=\"/automations/{welcome}\">Welcome</a>")));
    assert!(app.all_stored_text().await.contains("contacts.imported"));
}

async fn a_semicolon_file_from_excel_imports_like_a_comma_file(app: TestApp) {
    // German Excel's "CSV UTF-8": a BOM, semicolons, CRLF, decimal commas in quotes.
    let (client, _) = app.signed_in(Role::Marketer).await;
    let csv = "\u{feff}email;first_name;last_name;Betrag\r\n\
                   anna@example.com;Anna;Schmidt;\"3,50\"\r\n\
                   jonas@example.com;Jonas;M\u{fc}ller;12\r\n";
    let report = app.import_csv(&client, csv, None, false).await;
    assert_eq!(
        (report.status.as_str(), report.created, report.rejected),
        ("done", 2, 0)
    );
    let jonas = contacts::find_by_email(&app.state.db, "jonas@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (jonas.first_name.as_str(), jonas.last_name.as_str()),
        ("Jonas", "M\u{fc}ller")
    );
    let anna = contacts::find_by_email(&app.state.db, "anna@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        contacts::attributes(&app.state.db, anna.id).await.unwrap(),
        vec![("Betrag".into(), "3,50".into())]
    );
}

async fn a_bad_file_changes_nothing(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let cases: Vec<(Vec<u8>, StatusCode, &str)> = vec![
        (
            b"email,first_name\nann@example.com,\xff\xfeAnn\n".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not UTF-8",
        ),
        (
            b"mail,first_name\nann@example.com,Ann\n".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "no \"email\" column",
        ),
        (Vec::new(), StatusCode::UNPROCESSABLE_ENTITY, "empty"),
        (
            b"email\n".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "no contacts below it",
        ),
        (
            vec![0x00, 0x01, 0x02, 0x89, 0x50, 0x4e, 0x47, 0x00, 0x10, 0xff],
            StatusCode::UNPROCESSABLE_ENTITY,
            "not UTF-8",
        ),
        (
            b"email,ok\0bin\nx@example.com,1\n".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "binary",
        ),
    ];
    for (file, status, message) in cases {
        let r = app.upload_csv(&client, file, None, false).await;
        assert_eq!(r.status(), status, "{message}");
        let shown = text_of(&r.text().await.unwrap(), "#import-error").unwrap();
        assert!(shown.contains(message), "{message}: {shown}");
    }
    // Over the limit: 50 MB and a bit.
    let mut big = b"email,note\n".to_vec();
    let line = format!("someone@example.com,{}\n", "x".repeat(1000));
    while big.len() <= 50 * 1024 * 1024 {
        big.extend_from_slice(line.as_bytes());
    }
    let r = app.upload_csv(&client, big, None, false).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        text_of(&r.text().await.unwrap(), "#import-error")
            .unwrap()
            .contains("larger than 50 MB")
    );
    assert_eq!(contacts::search::count(&app.state.db).await.unwrap(), 0);
    assert!(app.events().await.is_empty());
    assert!(
        contacts::import::store::recent(&app.state.db, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let leftovers = std::fs::read_dir(app.state.config.data_dir.join("imports"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(leftovers, 0, "uploads are deleted");
}

on_both_engines!(
    a_new_contact_is_checked_next_to_each_field_and_its_email_kept_unique,
    editing_a_contact_records_what_changed_in_words,
    a_contact_is_blocked_unblocked_and_deleted_with_an_audit_trail,
    group_membership_changes_record_events,
    a_change_that_fails_records_no_event,
    search_finds_email_and_name_prefixes,
    search_pages_two_at_a_time_each_contact_once,
    the_contact_list_and_the_picker_search_too,
    search_finds_text_inside_words_after_the_prefixes,
    search_pages_across_prefix_and_inner_matches,
    the_contact_list_filters_by_group,
    every_search_branch_reads_an_index,
    the_picker_answers_at_most_twenty_and_needs_a_session,
    an_import_reports_exactly_what_it_did,
    the_same_file_again_updates_and_registers_only_new_rows,
    an_import_report_names_the_automation_its_events_ran_and_members_already_in,
    a_semicolon_file_from_excel_imports_like_a_comma_file,
    a_bad_file_changes_nothing
);

/// The plan of finding "ann" inside words: the FTS5 table on SQLite; on
/// PostgreSQL (no scan of the tiny table allowed) the trigram index.
async fn explain_inner(app: &TestApp) -> String {
    use sqlx::{Acquire, Executor, Row};
    let db = &app.state.db;
    let mut conn = db.read().acquire().await.unwrap();
    let conn = conn.acquire().await.unwrap();
    let sql = match db.backend {
        herald::db::Backend::Sqlite => {
            "EXPLAIN QUERY PLAN SELECT rowid FROM contacts_words WHERE contacts_words MATCH '\"ann\"'"
        }
        herald::db::Backend::Postgres => {
            conn.execute("SET enable_seqscan = off").await.unwrap();
            "EXPLAIN SELECT id FROM contacts WHERE (email || ' ' || first_key || ' ' || last_key) LIKE '%ann%'"
        }
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    if db.backend == herald::db::Backend::Postgres {
        conn.execute("RESET enable_seqscan").await.unwrap();
    }
    let column = if db.backend == herald::db::Backend::Postgres {
        0
    } else {
        3
    };
    rows.iter()
        .map(|r| r.try_get::<String, _>(column).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The query plan of `sql` as text (PostgreSQL is told not to prefer a scan of
/// these tiny test tables, so the plan shows whether an index can serve).
async fn explain(app: &TestApp, sql: &str) -> String {
    use sqlx::{Acquire, Executor};
    let db = &app.state.db;
    let mut conn = db.read().acquire().await.unwrap();
    let conn = conn.acquire().await.unwrap();
    let postgres = db.backend == herald::db::Backend::Postgres;
    let prefix = if postgres {
        conn.execute("SET enable_seqscan = off").await.unwrap();
        "EXPLAIN "
    } else {
        "EXPLAIN QUERY PLAN "
    };
    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!("{prefix}{sql}")))
        .bind("ann")
        .bind("ann\u{10ffff}");
    let placeholders = sql.matches('$').count();
    if placeholders == 4 {
        q = q.bind("ann");
    }
    let rows = q.bind(51i64).fetch_all(&mut *conn).await.unwrap();
    if postgres {
        conn.execute("RESET enable_seqscan").await.unwrap();
    }
    use sqlx::Row;
    rows.iter()
        .map(|r| {
            r.try_get::<String, _>(if postgres { 0 } else { 3 })
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}
