//! Prepared messages and the jobs that change contacts, through the HTML forms, with
//! a real SMTP server: the welcome email with one-click unsubscribe, template
//! checks, the preview, group and attribute jobs, loop protection, the frequency
//! cap, and a message to ops when an import finishes.

use std::time::Duration;

use herald::auth::users::Role;
use reqwest::{Client, StatusCode};

use crate::automations::{define_job, define_time_frame, new_automation};
use crate::helpers::{TestApp, location, text_of};
use crate::smtp::{SmtpServer, text_part};

/// "Welcome new contacts": prepared message `message` to every new contact.
pub(crate) async fn welcome_automation(app: &TestApp, client: &Client, message: i64) -> i64 {
    automation(
        app,
        client,
        "Welcome new contacts",
        "registered_to_system",
        &[
            ("job", "send_message_to_contact"),
            ("use_event_parameter", "on"),
            ("message", &message.to_string()),
        ],
    )
    .await
}

/// Writes a message through the form; returns its id.
pub(crate) async fn write_message(
    app: &TestApp,
    client: &Client,
    name: &str,
    subject: &str,
    text: &str,
    html: &str,
) -> i64 {
    let r = app
        .submit_with(
            client,
            "/messages/new",
            "/messages",
            &[
                ("name", name),
                ("subject", subject),
                ("text_body", text),
                ("html_body", html),
            ],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap_or_default()
    );
    location(&r)
        .trim_start_matches("/messages/")
        .parse()
        .unwrap()
}

/// Creates and activates an automation on `event` with `job` and its fields.
pub(crate) async fn automation(
    app: &TestApp,
    client: &Client,
    name: &str,
    event: &str,
    job: &[(&str, &str)],
) -> i64 {
    let id = new_automation(app, client, name, event).await;
    let mut values = vec![("action", "time_frame")];
    values.extend_from_slice(job);
    let r = define_job(app, client, id, &values).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let r = define_time_frame(
        app,
        client,
        id,
        &[
            ("start", "2026-01-01T00:00"),
            ("time_zone", "UTC"),
            ("action", "activate"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    id
}

async fn group(app: &TestApp, client: &Client, name: &str) -> i64 {
    app.new_group(client, &[("name", name)], false).await
}

pub(crate) async fn new_contact(
    app: &TestApp,
    client: &Client,
    email: &str,
    first_name: &str,
) -> i64 {
    let r = app
        .submit_with(
            client,
            "/contacts/new",
            "/contacts",
            &[("email", email), ("first_name", first_name)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    herald::contacts::find_by_email(&app.state.db, email)
        .await
        .unwrap()
        .unwrap()
        .id
}

/// A header's value in a raw message.
fn header<'a>(data: &'a str, name: &str) -> Option<&'a str> {
    data.lines()
        .take_while(|l| !l.is_empty())
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        })
        .map(|l| l[name.len() + 1..].trim())
}

pub(crate) async fn runs(app: &TestApp, automation: i64) -> Vec<herald::scheduler::runs::RunRow> {
    herald::scheduler::runs::runs_of(&app.state.db, herald::types::AutomationId(automation), 100)
        .await
        .unwrap()
}

async fn a_welcome_message_arrives_personalised_with_one_click_unsubscribe(
    app: TestApp,
    smtp: SmtpServer,
) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let message = write_message(&app, &client, "Welcome", "Welcome, {{ contact.first_name | default(\"there\") }}", "Hello {{ contact.first_name | default(\"there\") }}\n\nYour preferences: {{ preferences_url }}\nUnsubscribe: {{ unsubscribe_url }}", "").await;
    let (_, list) = app.page_with(&client, "/messages").await;
    assert!(list.contains("Welcome") && list.contains("0 automations"));
    let welcome = welcome_automation(&app, &client, message).await;
    let (_, list) = app.page_with(&client, "/messages").await;
    assert!(list.contains("1 automation"), "used by");
    new_contact(&app, &client, "ada@example.com", "Ada").await;
    app.drain_due_runs().await;
    assert_eq!(runs(&app, welcome).await[0].status.code(), "done");
    let mail = smtp.last_to("ada@example.com").expect("the welcome email");
    assert!(mail.data.contains("Subject: Welcome, Ada"), "{}", mail.data);
    assert!(text_part(&mail.data).starts_with("Hello Ada"));
    assert!(
        mail.data.to_lowercase().contains("multipart/alternative")
            && mail.data.contains("text/html")
    );
    let link = header(&mail.data, "List-Unsubscribe")
        .expect("List-Unsubscribe")
        .trim_matches(['<', '>'])
        .to_string();
    assert_eq!(
        header(&mail.data, "List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(
        link.starts_with(&format!("{}u/", app.state.config.base_url)),
        "{link}"
    );
    assert!(
        text_part(&mail.data).contains(&link),
        "the same link in the text"
    );
    let path = link
        .trim_start_matches(app.state.config.base_url.as_str())
        .to_string();
    // A GET (a link scanner) only asks.
    let (status, page) = app
        .page_with(&crate::helpers::browser(), &format!("/{path}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Stop sending messages") && page.contains("ada@example.com"));
    let ada = herald::contacts::find_by_email(&app.state.db, "ada@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(!ada.is_opted_out());
    // A tampered link is nobody's.
    assert_eq!(
        app.get(&format!("/{path}0")).await.status(),
        StatusCode::NOT_FOUND
    );
    // One-click: a POST without session or token unsubscribes at once.
    let r = reqwest::Client::new()
        .post(app.url(&format!("/{path}")))
        .form(&[("List-Unsubscribe", "One-Click")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ada = herald::contacts::find_by_email(&app.state.db, "ada@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(ada.is_opted_out());
    let (_, page) = app
        .page_with(&client, &format!("/contacts/{}", ada.id))
        .await;
    assert!(
        text_of(&page, "#opted-out").is_some(),
        "shown on the contact page"
    );
    // Opted out: no more prepared messages; the password job still works.
    let mut tx = app.state.db.begin().await.unwrap();
    herald::intake::events::record(
        &mut tx,
        app.now_ms(),
        &herald::events::catalogue::NewEvent::registered(
            ada.id,
            herald::events::catalogue::Source::Ui,
        ),
    )
    .await
    .unwrap();
    app.state.db.commit(tx).await.unwrap();
    app.drain_due_runs().await;
    let latest = &runs(&app, welcome).await[0];
    assert_eq!(
        (latest.status.code(), latest.outcome.as_deref()),
        (
            "skipped",
            Some("the contact unsubscribed from all messages")
        )
    );
    assert_eq!(smtp.count(), 1);
}

async fn an_unsubscribe_link_naming_a_group_leaves_that_group(app: TestApp, _smtp: SmtpServer) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let news = group(&app, &client, "Newsletter").await;
    // A link naming a group leaves that group and records the event.
    let vip = new_contact(&app, &client, "vip@example.com", "Vic").await;
    let mut tx = app.state.db.begin().await.unwrap();
    herald::contacts::join_group(&mut tx, vip, news, app.now_ms())
        .await
        .unwrap();
    app.state.db.commit(tx).await.unwrap();
    let link = herald::messages::compose::Unsubscribe::of(&app.state.db, vip, Some(news))
        .await
        .unwrap()
        .unwrap()
        .link(&app.state.links, &app.state.config.base_url);
    let path = link
        .trim_start_matches(app.state.config.base_url.as_str())
        .to_string();
    let r = reqwest::Client::new()
        .post(app.url(&format!("/{path}")))
        .send()
        .await
        .unwrap();
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("no longer receives Newsletter")
    );
    assert!(
        !herald::contacts::groups::is_member(&app.state.db, news, vip)
            .await
            .unwrap()
    );
    assert!(
        app.events()
            .await
            .iter()
            .any(|e| e.0 == "unsubscribed_from_group" && e.1 == Some(vip) && e.2 == Some(news))
    );
}

async fn a_contact_not_in_the_links_group_is_offered_to_stop_all_messages(
    app: TestApp,
    _smtp: SmtpServer,
) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let news = group(&app, &client, "Newsletter").await;
    // A contact not in the link's group (the job sent to her all the same): the
    // page says leaving would change nothing and offers to stop all messages,
    // which the button then does — it never answers "no longer receives" for nothing.
    let mia = new_contact(&app, &client, "mia.lange@example.com", "Mia").await;
    let link = herald::messages::compose::Unsubscribe::of(&app.state.db, mia, Some(news))
        .await
        .unwrap()
        .unwrap()
        .link(&app.state.links, &app.state.config.base_url);
    let path = link
        .trim_start_matches(app.state.config.base_url.as_str())
        .to_string();
    let (_, page) = app
        .page_with(&crate::helpers::browser(), &format!("/{path}"))
        .await;
    let effect = text_of(&page, "#unsubscribe-effect").unwrap();
    assert!(
        effect.contains("is not on the Newsletter list")
            && effect.contains("Stop all messages like this"),
        "{effect}"
    );
    let r = reqwest::Client::new()
        .post(app.url(&format!("/{path}")))
        .send()
        .await
        .unwrap();
    let page = r.text().await.unwrap();
    assert!(
        page.contains("receives no more messages")
            && !page.contains("no longer receives Newsletter"),
        "{page}"
    );
    assert!(
        herald::contacts::find(&app.state.db, mia)
            .await
            .unwrap()
            .unwrap()
            .is_opted_out()
    );
}

async fn an_opt_out_is_taken_back_in_the_preference_center_only(app: TestApp, _smtp: SmtpServer) {
    // The contact takes the opt-out back in the preference center only.
    let carl = crate::scheduler::contact(&app, "carl@example.com", "carl's own password").await;
    let link = herald::messages::compose::Unsubscribe::of(&app.state.db, carl, None)
        .await
        .unwrap()
        .unwrap()
        .link(&app.state.links, &app.state.config.base_url);
    let path = link
        .trim_start_matches(app.state.config.base_url.as_str())
        .to_string();
    reqwest::Client::new()
        .post(app.url(&format!("/{path}")))
        .send()
        .await
        .unwrap();
    let browser = crate::helpers::browser();
    let r = app
        .contact_sign_in(&browser, "carl@example.com", "carl's own password")
        .await;
    assert_eq!(location(&r), "/preferences");
    let (_, page) = app.page_with(&browser, "/preferences").await;
    assert!(page.contains("You unsubscribed from all messages"));
    let r = app
        .submit_with(
            &browser,
            "/preferences",
            "/preferences",
            &[("receive_messages", "on")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        !herald::contacts::find(&app.state.db, carl)
            .await
            .unwrap()
            .unwrap()
            .is_opted_out()
    );
}

/// The message "Offer", with markup and script to be made safe, and the contact
/// Lena (whose name is markup) to preview it for.
async fn offer(app: &TestApp, client: &reqwest::Client) -> i64 {
    let id = write_message(app, client, "Offer", "For {{ contact.first_name }}", "Hi {{ contact.first_name }}", "<p>Hi {{ contact.first_name }}</p><script>alert(1)</script><a href=\"javascript:alert(2)\">x</a>").await;
    new_contact(app, client, "lena@example.com", "<b>Lena</b>").await;
    id
}

async fn a_template_that_does_not_parse_is_refused_next_to_its_field(
    app: TestApp,
    _smtp: SmtpServer,
) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let r = app
        .submit_with(
            &client,
            "/messages/new",
            "/messages",
            &[
                ("name", "Broken"),
                ("subject", "Hi"),
                ("text_body", "Hello\n{{ contact.first_name }\n"),
                ("html_body", "<p>{{ customer.name }}</p>"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(
        text_of(&html, "#text_body-error")
            .unwrap()
            .starts_with("Line 2:"),
        "{html}"
    );
    assert!(
        text_of(&html, "#html_body-error")
            .unwrap()
            .contains("customer")
    );
    assert!(
        html.contains("Hello\n{{ contact.first_name }"),
        "what was typed is kept"
    );
    let r = app
        .submit_with(
            &client,
            "/messages/new",
            "/messages",
            &[
                ("name", "Unknown field"),
                ("subject", "{{ contact.phone }}"),
                ("text_body", "x"),
            ],
        )
        .await;
    assert!(
        text_of(&r.text().await.unwrap(), "#subject-error")
            .unwrap()
            .contains("contact.phone")
    );
}

async fn a_template_that_could_take_gigabytes_is_refused_at_save(app: TestApp, _smtp: SmtpServer) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    // A template that could take gigabytes is refused at save, next to its
    // field, before it is ever rendered.
    let bomb = "{% set a = \"x\" * 100000000 %}{% set b = a ~ a %}{% set c = b ~ b %}{% set d = c ~ c %}{{ d|length }}";
    let r = app
        .submit_with(
            &client,
            "/messages/new",
            "/messages",
            &[("name", "Bomb"), ("subject", "Hi"), ("text_body", bomb)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error = text_of(&r.text().await.unwrap(), "#text_body-error").unwrap();
    assert!(
        error.starts_with("Line 1:") && error.contains("more than 1 MiB"),
        "{error}"
    );
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM messages")
            .fetch_one(app.state.db.read())
            .await
            .unwrap(),
        0
    );
}

async fn the_preview_renders_for_a_chosen_contact_and_runs_nothing(
    app: TestApp,
    _smtp: SmtpServer,
) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let id = offer(&app, &client).await;
    let (status, page) = app
        .page_with(
            &client,
            &format!("/messages/{id}/preview?contact=lena%40example.com"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        text_of(&page, "#preview-subject").unwrap(),
        "For <b>Lena</b>"
    );
    let doc = scraper::Html::parse_document(&page);
    let frame = doc
        .select(&scraper::Selector::parse("iframe").unwrap())
        .next()
        .expect("a frame");
    assert_eq!(
        frame.value().attr("sandbox"),
        Some(""),
        "a sandbox that allows nothing"
    );
    let srcdoc = frame.value().attr("srcdoc").unwrap();
    assert!(
        srcdoc.contains("&lt;b&gt;Lena&lt;/b&gt;"),
        "values escaped in HTML: {srcdoc}"
    );
    assert!(
        !srcdoc.contains("<script") && !srcdoc.contains("javascript:"),
        "sanitised: {srcdoc}"
    );
    assert!(
        !page.contains("<script>alert"),
        "nothing runs in the admin page"
    );
    let r = app
        .get_with(&client, &format!("/messages/{id}/preview"))
        .await;
    let csp = r
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(!csp.contains("unsafe-inline"), "{csp}");
}

async fn a_test_send_goes_to_the_marketer_or_to_the_addresses_given(
    app: TestApp,
    smtp: SmtpServer,
) {
    let (client, me) = app.signed_in(Role::Marketer).await;
    let id = offer(&app, &client).await;
    // Send test: to the signed-in marketer's own address.
    let r = app
        .submit_with(
            &client,
            &format!("/messages/{id}/preview"),
            &format!("/messages/{id}/test"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let mail = smtp.last_to(&me).expect("the test email");
    assert!(
        mail.data.contains("Subject: [Test] For Ada"),
        "{}",
        mail.data
    );
    // To several addresses, as the chosen contact gets it; back on the same
    // preview (the contact kept), the addresses remembered for next time.
    let lena_page = format!("/messages/{id}/preview?contact=lena%40example.com");
    let r = app
        .submit_with(
            &client,
            &lena_page,
            &format!("/messages/{id}/test"),
            &[("to", "ops@example.com; Boss@Example.com")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let back = location(&r);
    assert!(back.contains("contact=lena%40example.com"), "{back}");
    for to in ["ops@example.com", "boss@example.com"] {
        let mail = smtp
            .last_to(to)
            .unwrap_or_else(|| panic!("a test for {to}"));
        assert!(
            mail.data.contains("Subject: [Test] For <b>Lena</b>"),
            "{}",
            mail.data
        );
    }
    let (_, page) = app.page_with(&client, &back).await;
    assert_eq!(
        text_of(&page, "#preview-subject").unwrap(),
        "For <b>Lena</b>",
        "the preview keeps the contact"
    );
    assert!(
        page.contains("A test was sent to ops@example.com, boss@example.com."),
        "{page}"
    );
    assert!(
        page.contains("value=\"ops@example.com, boss@example.com\""),
        "remembered: {page}"
    );
    // Too many, or not addresses: refused next to the field, nothing sent.
    let before = smtp.count();
    for (to, says) in [
        (
            "ops@example.com, nobody",
            "\"nobody\" is not an email address",
        ),
        (
            "a@x.de b@x.de c@x.de d@x.de e@x.de f@x.de",
            "at most 5 addresses",
        ),
        ("", "at least one"),
    ] {
        let r = app
            .submit_with(
                &client,
                &lena_page,
                &format!("/messages/{id}/test"),
                &[("to", to)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{to}");
        let html = r.text().await.unwrap();
        assert!(
            text_of(&html, "#to-error").unwrap().contains(says),
            "{to}: {html}"
        );
        assert_eq!(
            text_of(&html, "#preview-subject").unwrap(),
            "For <b>Lena</b>"
        );
    }
    assert_eq!(smtp.count(), before);
}

async fn a_message_in_use_is_named_on_its_automation_and_not_deleted(
    app: TestApp,
    _smtp: SmtpServer,
) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let id = offer(&app, &client).await;
    // Copy, and delete refused while an active automation uses it.
    let r = app
        .submit_with(
            &client,
            &format!("/messages/{id}"),
            &format!("/messages/{id}/copy"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let offer = automation(
        &app,
        &client,
        "Offer to new contacts",
        "registered_to_system",
        &[
            ("job", "send_message_to_contact"),
            ("use_event_parameter", "on"),
            ("message", &id.to_string()),
        ],
    )
    .await;
    // Its page names the message, linked, and says what the job does in words.
    let (_, page) = app
        .page_with(&client, &format!("/automations/{offer}"))
        .await;
    assert!(
        page.contains(&format!("<a href=\"/messages/{id}/preview\">Offer</a>")),
        "{page}"
    );
    let words = text_of(&page, "#job-words").unwrap();
    assert_eq!(
        words,
        "Emails the contact the prepared message \"Offer\"; its unsubscribe link stops all prepared messages to them."
    );
    // Delete says so before asking to confirm: no confirmation page while in use.
    let r = app
        .get_with(&client, &format!("/messages/{id}/delete"))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = app.page_with(&client, &location(&r)).await;
    assert!(
        page.contains("is not deleted: active automations use it (Offer to new contacts)"),
        "{page}"
    );
    // And a delete posted anyway is refused the same way.
    let mut form = crate::helpers::find_form(&page, &format!("/messages/{id}/copy"));
    form.action = format!("/messages/{id}/delete");
    let r = app.post_form_with(&client, &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = app.page_with(&client, &location(&r)).await;
    assert!(
        page.contains("is not deleted: active automations use it"),
        "{page}"
    );
    assert!(
        herald::messages::store::find(&app.state.db, id)
            .await
            .unwrap()
            .is_some()
    );
}

async fn group_and_attribute_jobs_change_the_contact(app: TestApp, _smtp: SmtpServer) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let x = group(&app, &client, "X").await;
    let y = group(&app, &client, "Y").await;
    // When a contact joins Y, set their attribute "source" from the event; join X.
    automation(
        &app,
        &client,
        "Tag Y",
        "subscribed_to_group",
        &[
            ("job", "update_contact_attribute"),
            ("use_event_parameter", "on"),
            ("attribute_name", "source"),
            (
                "attribute_value",
                "group {{ event.group_name | default(\"y\") }}",
            ),
        ],
    )
    .await;
    let page = format!(
        "/automations/{}/event",
        automation(
            &app,
            &client,
            "Y → X",
            "subscribed_to_group",
            &[
                ("job", "subscribe_to_group"),
                ("use_event_parameter", "on"),
                ("join_group", &x.to_string())
            ]
        )
        .await
    );
    app.submit_with(&client, &page, &page, &[("filter_group", &y.to_string())])
        .await;
    let ada = new_contact(&app, &client, "ada@example.com", "Ada").await;
    let mut tx = app.state.db.begin().await.unwrap();
    herald::contacts::join_group(&mut tx, ada, y, app.now_ms())
        .await
        .unwrap();
    app.state.db.commit(tx).await.unwrap();
    app.drain_due_runs().await;
    assert!(
        herald::contacts::groups::is_member(&app.state.db, x, ada)
            .await
            .unwrap(),
        "joined X by the job"
    );
    assert_eq!(
        herald::contacts::attribute(&app.state.db, ada, "source")
            .await
            .unwrap()
            .as_deref(),
        Some("group y")
    );
    let events = app.events().await;
    assert!(
        events
            .iter()
            .any(|e| e.0 == "subscribed_to_group" && e.2 == Some(x) && e.3["chain_depth"] == 1),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.0 == "profile_data_changed" && e.3["changed"][0] == "source")
    );
    let stored = app.all_stored_text().await;
    assert!(stored.contains("contact.changed_by_automation"));
}

async fn automation_chains_stop_by_themselves(app: TestApp, smtp: SmtpServer) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let x = group(&app, &client, "X").await;
    // A loop: joining X unsubscribes from X, leaving X subscribes to X.
    let off = automation(
        &app,
        &client,
        "X off",
        "subscribed_to_group",
        &[
            ("job", "unsubscribe_from_group"),
            ("use_event_parameter", "on"),
            ("leave_group", &x.to_string()),
        ],
    )
    .await;
    let on = automation(
        &app,
        &client,
        "X on",
        "unsubscribed_from_group",
        &[
            ("job", "subscribe_to_group"),
            ("use_event_parameter", "on"),
            ("join_group", &x.to_string()),
        ],
    )
    .await;
    let bob = new_contact(&app, &client, "bob@example.com", "Bob").await;
    let mut tx = app.state.db.begin().await.unwrap();
    herald::contacts::join_group(&mut tx, bob, x, app.now_ms())
        .await
        .unwrap();
    app.state.db.commit(tx).await.unwrap();
    for _ in 0..20 {
        app.drain_due_runs().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let changes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE contact_id = $1 AND type IN ('subscribed_to_group', 'unsubscribed_from_group') AND params LIKE '%chain_depth%'")
            .bind(bob).fetch_one(app.state.db.read()).await.unwrap();
    assert_eq!(changes, 5, "five changes by runs, then the chain stops");
    let mut all = runs(&app, off).await;
    all.extend(runs(&app, on).await);
    let deep: Vec<_> = all
        .iter()
        .filter(|r| r.outcome.as_deref() == Some("automation chain too deep"))
        .collect();
    assert_eq!(deep.len(), 1, "{all:?}");
    assert_eq!(deep[0].status.code(), "skipped");
    // A subscribe to a group the contact is in changes nothing and fires nothing.
    assert!(all.iter().filter(|r| r.status.code() == "done").count() == 5);
    assert!(smtp.messages().is_empty());
}

async fn the_frequency_cap_skips_messages_beyond_the_daily_limit(app: TestApp, smtp: SmtpServer) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let r = app
        .submit_with(
            &admin,
            "/admin/settings",
            "/admin/settings",
            &[("messages_per_day", "2")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let message = write_message(
        &app,
        &admin,
        "Note",
        "Note",
        "A note for {{ contact.email }}",
        "",
    )
    .await;
    let id = automation(
        &app,
        &admin,
        "Note on every change",
        "profile_data_changed",
        &[
            ("job", "send_message_to_contact"),
            ("use_event_parameter", "on"),
            ("message", &message.to_string()),
        ],
    )
    .await;
    let ada = new_contact(&app, &admin, "ada@example.com", "Ada").await;
    for i in 0..3 {
        let mut tx = app.state.db.begin().await.unwrap();
        herald::contacts::set_attribute(&mut tx, ada, "n", &i.to_string(), app.now_ms(), 0)
            .await
            .unwrap();
        app.state.db.commit(tx).await.unwrap();
        app.drain_due_runs().await;
    }
    let all = runs(&app, id).await;
    assert_eq!(all.iter().filter(|r| r.status.code() == "done").count(), 2);
    assert!(
        all[0]
            .outcome
            .as_deref()
            .unwrap()
            .starts_with("frequency cap"),
        "{:?}",
        all[0]
    );
    assert_eq!(smtp.count(), 2);
    // A day later the cap has room again.
    app.advance(Duration::from_secs(25 * 3600));
    let mut tx = app.state.db.begin().await.unwrap();
    herald::contacts::set_attribute(&mut tx, ada, "n", "later", app.now_ms(), 0)
        .await
        .unwrap();
    app.state.db.commit(tx).await.unwrap();
    app.drain_due_runs().await;
    assert_eq!(smtp.count(), 3);
}

async fn attribute_values_with_control_characters_are_refused_by_every_way_in(
    app: TestApp,
    smtp: SmtpServer,
) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    // The API: refused with the field named, the same on both engines.
    let key = crate::api::new_key(&app, &admin, "Shop").await;
    let r = Client::new().post(app.url("/api/v1/contacts")).bearer_auth(&key)
            .json(&serde_json::json!({"email": "nul@example.com", "attributes": {"a": "x\u{0}y", "b": "\u{1b}[31m"}}))
            .send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: serde_json::Value = r.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("control characters"),
        "{problem}"
    );
    // Update Contact Attribute: a rendered value with ESC fails the run, saying why.
    let id = automation(
        &app,
        &admin,
        "Colour",
        "registered_to_system",
        &[
            ("job", "update_contact_attribute"),
            ("use_event_parameter", "on"),
            ("attribute_name", "colour"),
            ("attribute_value", "x{{ \"\\u001b[31m\" }}"),
        ],
    )
    .await;
    let ada = new_contact(&app, &admin, "ada@example.com", "Ada").await;
    app.drain_due_runs().await;
    let run = &runs(&app, id).await[0];
    assert_eq!(run.status.code(), "failed", "{run:?}");
    assert!(
        run.last_error
            .as_deref()
            .unwrap()
            .contains("control characters"),
        "{run:?}"
    );
    assert_eq!(
        herald::contacts::attribute(&app.state.db, ada, "colour")
            .await
            .unwrap(),
        None
    );
    // A CSV import: the row is rejected with the reason.
    let report = app
        .import_csv(
            &admin,
            "email,city\nbel@example.com,Ber\u{1b}lin\n",
            None,
            false,
        )
        .await;
    assert_eq!(report.rejected, 1, "{report:?}");
    assert!(smtp.count() == 0);
}

async fn a_link_made_for_a_deleted_contact_or_group_never_acts_on_the_next_one(
    app: TestApp,
    smtp: SmtpServer,
) {
    use herald::messages::compose::Unsubscribe;
    let (client, _) = app.signed_in(Role::Admin).await;
    let path_of = |link: String| {
        format!(
            "/{}",
            link.trim_start_matches(app.state.config.base_url.as_str())
        )
    };
    let news = group(&app, &client, "Newsletter").await;
    let ada = new_contact(&app, &client, "ada@example.com", "Ada").await;
    let link = path_of(
        Unsubscribe::of(&app.state.db, ada, Some(news))
            .await
            .unwrap()
            .unwrap()
            .link(&app.state.links, &app.state.config.base_url),
    );
    // A link of an older version (ids only), sent to a contact who still exists.
    sqlx::query("UPDATE contacts SET created_at = 0 WHERE id = $1")
        .bind(ada)
        .execute(app.state.db.write())
        .await
        .unwrap();
    let old = path_of(
        Unsubscribe {
            contact: ada,
            contact_since: None,
            group: None,
            group_since: None,
            delivery: None,
        }
        .link(&app.state.links, &app.state.config.base_url),
    );
    let (status, page) = app.page_with(&reqwest::Client::new(), &old).await;
    assert_eq!(status, StatusCode::OK, "links already sent keep working");
    assert!(page.contains("ada@example.com"));
    // Ada and the group are deleted; a new contact and group come (on SQLite with
    // the same ids: the highest id is reused).
    let mut tx = app.state.db.begin().await.unwrap();
    sqlx::query("DELETE FROM contacts WHERE id = $1")
        .bind(ada)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("DELETE FROM contact_groups WHERE id = $1")
        .bind(news)
        .execute(&mut *tx)
        .await
        .unwrap();
    app.state.db.commit(tx).await.unwrap();
    app.advance(Duration::from_secs(60));
    let offers = group(&app, &client, "Offers").await;
    let bea = new_contact(&app, &client, "bea@example.com", "Bea").await;
    let mut tx = app.state.db.begin().await.unwrap();
    herald::contacts::join_group(&mut tx, bea, offers, app.now_ms())
        .await
        .unwrap();
    app.state.db.commit(tx).await.unwrap();
    for path in [&link, &old] {
        assert_eq!(
            app.page_with(&reqwest::Client::new(), path).await.0,
            StatusCode::NOT_FOUND,
            "{path}"
        );
        let r = reqwest::Client::new()
            .post(app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert!(
        herald::contacts::groups::is_member(&app.state.db, offers, bea)
            .await
            .unwrap(),
        "Bea is still in Offers"
    );
    assert!(
        !herald::contacts::find(&app.state.db, bea)
            .await
            .unwrap()
            .unwrap()
            .is_opted_out()
    );
    // Bea's own link works.
    let own = path_of(
        Unsubscribe::of(&app.state.db, bea, Some(offers))
            .await
            .unwrap()
            .unwrap()
            .link(&app.state.links, &app.state.config.base_url),
    );
    let r = reqwest::Client::new()
        .post(app.url(&own))
        .send()
        .await
        .unwrap();
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("no longer receives Offers")
    );
    assert_eq!(smtp.count(), 0);
}

async fn a_deleted_contacts_preference_center_session_ends_with_them(
    app: TestApp,
    _smtp: SmtpServer,
) {
    // A preference-center session of a deleted contact ends with the contact.
    let carl = crate::scheduler::contact(&app, "carl@example.com", "carl's own password").await;
    let carls = crate::helpers::browser();
    let r = app
        .contact_sign_in(&carls, "carl@example.com", "carl's own password")
        .await;
    assert_eq!(location(&r), "/preferences");
    let mut tx = app.state.db.begin().await.unwrap();
    herald::contacts::delete(&mut tx, carl).await.unwrap();
    app.state.db.commit(tx).await.unwrap();
    app.advance(Duration::from_secs(60));
    crate::scheduler::contact(&app, "dan@example.com", "dan's own password").await;
    let r = app.get_with(&carls, "/preferences").await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "not signed in as whoever has Carl's id now"
    );
}

async fn ops_get_the_counts_when_an_import_finishes(app: TestApp, smtp: SmtpServer) {
    let (client, _) = app.signed_in(Role::Admin).await;
    let message = write_message(
        &app,
        &client,
        "Import report",
        "Import finished",
        "Created {{ event.created }}, updated {{ event.updated }}, rejected {{ event.rejected }}.",
        "",
    )
    .await;
    let r = define_job(
        &app,
        &client,
        new_automation(&app, &client, "Tell ops", "contact_import_finished").await,
        &[
            ("job", "send_message_to_address"),
            ("message", &message.to_string()),
            ("addresses", "not an address"),
            ("action", "time_frame"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        text_of(&r.text().await.unwrap(), "#addresses-error")
            .unwrap()
            .contains("not an email address")
    );
    automation(
        &app,
        &client,
        "Tell ops too",
        "contact_import_finished",
        &[
            ("job", "send_message_to_address"),
            ("message", &message.to_string()),
            ("addresses", "ops@example.com, lead@example.com"),
        ],
    )
    .await;
    let report = app
        .import_csv(
            &client,
            "email,first_name\na@example.com,A\nb@example.com,B\nnot-an-email,C\n",
            None,
            false,
        )
        .await;
    assert_eq!(report.created, 2);
    app.drain_due_runs().await;
    for to in ["ops@example.com", "lead@example.com"] {
        let mail = smtp
            .last_to(to)
            .unwrap_or_else(|| panic!("no report to {to}"));
        assert!(
            text_part(&mail.data).contains("Created 2, updated 0, rejected 1."),
            "{}",
            mail.data
        );
        assert!(
            header(&mail.data, "List-Unsubscribe").is_none(),
            "ops are no contacts"
        );
    }
}

async fn staff_change_their_own_name_and_confirm_a_new_email_by_link(
    app: TestApp,
    smtp: SmtpServer,
) {
    let (client, me) = app.signed_in(Role::Admin).await;
    let (_, page) = app.page_with(&client, "/dashboard").await;
    assert!(
        page.contains("href=\"/account\""),
        "the name in the header leads to the account"
    );
    // The name changes at once; the email only through the link sent to it.
    let r = app
        .submit_with(
            &client,
            "/account",
            "/account",
            &[
                ("name", "Ada Admin"),
                ("email", "Ada.New@example.com"),
                ("test_addresses", "qa@example.com"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = app.page_with(&client, "/account").await;
    assert!(
        page.contains("We sent a link to ada.new@example.com. Your email stays"),
        "{page}"
    );
    assert!(
        page.contains("value=\"Ada Admin\"") && page.contains(&format!("value=\"{me}\"")),
        "{page}"
    );
    let user = herald::auth::users::find_by_email(&app.state.db, &me)
        .await
        .unwrap()
        .expect("still the old email");
    assert_eq!(user.name, "Ada Admin");
    let mail = smtp
        .last_to("ada.new@example.com")
        .expect("the link goes to the new address");
    let body = text_part(&mail.data);
    let link = body
        .lines()
        .map(str::trim)
        .find(|l| l.contains("/account/email?token="))
        .expect("a link")
        .to_string();
    let path = link[link.find("/account").unwrap()..].to_string();
    // Signed out, the link leads through the sign-in and back, token and all.
    let r = app.get_with(&crate::helpers::browser(), &path).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to_login = location(&r);
    let next: String = url::form_urlencoded::parse(to_login.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "next")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(next, path);
    // A changed link is refused; so is the link for another user.
    let r = app.get_with(&client, &format!("{path}0")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (other, _) = app.signed_in(Role::Marketer).await;
    let r = app.get_with(&other, &path).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.unwrap();
    assert!(page.contains("another system user"), "{page}");
    // Opening it asks; confirming changes it, tells the old address, and signs
    // in with the new one from now on.
    let (status, page) = app.page_with(&client, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("ada.new@example.com instead of"), "{page}");
    let form = app.form_with(&client, &path, &path).await;
    let r = app.post_form_with(&client, &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        herald::auth::users::find_by_email(&app.state.db, "ada.new@example.com")
            .await
            .unwrap()
            .is_some()
    );
    let notice = smtp.last_to(&me).expect("a notice to the old address");
    assert!(text_part(&notice.data).contains("ada.new@example.com instead of this address"));
    let r = app.post_form_with(&client, &form).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "the link works once");
    let fresh = crate::helpers::browser();
    let r = app
        .sign_in_with(&fresh, "ada.new@example.com", "a good long password")
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The link expires after a day.
    app.submit_with(
        &client,
        "/account",
        "/account",
        &[("email", "later@example.com")],
    )
    .await;
    let mail = smtp.last_to("later@example.com").expect("a second link");
    let body = text_part(&mail.data);
    let link = body
        .lines()
        .map(str::trim)
        .find(|l| l.contains("/account/email?token="))
        .unwrap()
        .to_string();
    let path = link[link.find("/account").unwrap()..].to_string();
    app.clock.advance(Duration::from_secs(25 * 3600));
    let fresh = crate::helpers::browser();
    let r = app
        .sign_in_with(&fresh, "ada.new@example.com", "a good long password")
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = app.get_with(&fresh, &path).await;
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(page.text().await.unwrap().contains("expired"));
}

async fn an_email_another_user_has_is_refused_on_your_account(app: TestApp, _smtp: SmtpServer) {
    let (client, _) = app.signed_in(Role::Admin).await;
    app.signed_in(Role::Marketer).await;
    // An address another user has is refused at once, next to the field.
    let other_email = herald::auth::users::list(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.email.starts_with("marketer"))
        .unwrap()
        .email;
    let r = app
        .submit_with(&client, "/account", "/account", &[("email", &other_email)])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        text_of(&r.text().await.unwrap(), "#email-error")
            .unwrap()
            .contains("already exists")
    );
}

async fn a_database_error_names_its_step_in_a_page_and_in_a_job(app: TestApp, smtp: SmtpServer) {
    crate::logs::capture();
    let (client, _) = app.signed_in(Role::Marketer).await;
    let id = write_message(&app, &client, "Step test", "Hello", "Hi", "").await;
    automation(
        &app,
        &client,
        "Steps",
        "registered_to_system",
        &[
            ("job", "send_message_to_contact"),
            ("use_event_parameter", "on"),
            ("message", &id.to_string()),
        ],
    )
    .await;
    // A table gone: not an outage (the database answers), an unexpected error.
    let drop = if app.state.db.backend == herald::db::Backend::Postgres {
        "DROP TABLE messages CASCADE"
    } else {
        "DROP TABLE messages"
    };
    sqlx::query(drop)
        .execute(app.state.db.write())
        .await
        .unwrap();
    // A page: the calm 500, and a log line naming the step before the cause.
    let r = app.get_with(&client, &format!("/messages/{id}")).await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.text().await.unwrap().contains("Something went wrong"));
    let logged =
        crate::logs::lines_with(&["unexpected error", "while loading the message", "messages"]);
    assert!(!logged.is_empty(), "no log line names the step");
    // A job: the attempt's error and the log line name the step too.
    let mut tx = app.state.db.begin().await.unwrap();
    let input = herald::contacts::ContactForm {
        email: "step@example.com".into(),
        ..Default::default()
    }
    .parse()
    .unwrap();
    herald::contacts::create(
        &mut tx,
        &input,
        herald::events::catalogue::Source::Api,
        app.now_ms(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    app.drain_due_runs().await;
    let (error,): (Option<String>,) =
        sqlx::query_as("SELECT last_error FROM job_runs ORDER BY id DESC LIMIT 1")
            .fetch_one(app.state.db.read())
            .await
            .unwrap();
    let error = error.expect("the attempt's error");
    assert!(
        error.starts_with("database error while loading the message: "),
        "{error}"
    );
    let logged = crate::logs::lines_with(&[
        "run will be retried",
        "database error while loading the message",
    ]);
    assert!(!logged.is_empty(), "no log line names the job's step");
    assert_eq!(smtp.count(), 0);
}

with_smtp!(
    a_welcome_message_arrives_personalised_with_one_click_unsubscribe,
    an_unsubscribe_link_naming_a_group_leaves_that_group,
    a_contact_not_in_the_links_group_is_offered_to_stop_all_messages,
    an_opt_out_is_taken_back_in_the_preference_center_only,
    a_template_that_does_not_parse_is_refused_next_to_its_field,
    a_template_that_could_take_gigabytes_is_refused_at_save,
    the_preview_renders_for_a_chosen_contact_and_runs_nothing,
    a_test_send_goes_to_the_marketer_or_to_the_addresses_given,
    a_message_in_use_is_named_on_its_automation_and_not_deleted,
    group_and_attribute_jobs_change_the_contact,
    automation_chains_stop_by_themselves,
    the_frequency_cap_skips_messages_beyond_the_daily_limit,
    attribute_values_with_control_characters_are_refused_by_every_way_in,
    a_link_made_for_a_deleted_contact_or_group_never_acts_on_the_next_one,
    a_deleted_contacts_preference_center_session_ends_with_them,
    ops_get_the_counts_when_an_import_finishes,
    staff_change_their_own_name_and_confirm_a_new_email_by_link,
    an_email_another_user_has_is_refused_on_your_account,
    a_database_error_names_its_step_in_a_page_and_in_a_job
);
