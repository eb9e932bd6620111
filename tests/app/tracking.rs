//! Opens and clicks: a prepared message's links go through Herald to where they
//! pointed, its image counts an open, and machines are told apart.

use herald::auth::users::Role;
use reqwest::StatusCode;

use crate::helpers::{TestApp, text_of};
use crate::messages::{new_contact, welcome_automation, write_message};
use crate::smtp::SmtpServer;

const HTML: &str = r#"<p>Hello</p><p><a href="https://shop.example/a?x=1&amp;y=2">A</a> <a href="https://shop.example/b">B</a> <a href="https://shop.example/c">C</a> <a href="mailto:help@shop.example">Write to us</a> <a href="{{ unsubscribe_url }}">Unsubscribe</a></p>"#;

/// The HTML and text parts of the email to `to`.
fn parts(smtp: &SmtpServer, to: &str) -> (String, String) {
    let mail = smtp.last_to(to).expect("the email went out");
    let parsed = mail_parser::MessageParser::default()
        .parse(mail.data.as_bytes())
        .expect("a message");
    (
        parsed.body_html(0).unwrap_or_default().to_string(),
        parsed.body_text(0).unwrap_or_default().to_string(),
    )
}

/// The paths (`/l/…` or `/o/…`) of the tracked links in `body`, in order.
fn paths(body: &str, kind: &str) -> Vec<String> {
    body.match_indices(&format!("/{kind}/"))
        .map(|(at, _)| {
            body[at..]
                .split(|c: char| c == '"' || c.is_whitespace())
                .next()
                .unwrap()
                .trim_end_matches(['.', ','])
                .to_string()
        })
        .collect()
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(app.state.db.read())
        .await
        .unwrap()
}

/// Waits for the writer: its records are written without the request waiting.
async fn written(app: &TestApp, sql: &str, n: i64) {
    for _ in 0..200 {
        if count(app, sql).await >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(count(app, sql).await, n, "{sql}");
}

async fn links_lead_where_the_email_pointed_and_clicks_and_opens_are_recorded(
    app: TestApp,
    smtp: SmtpServer,
) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let message = write_message(
        &app,
        &admin,
        "News",
        "News",
        "Hello: see https://shop.example/b.",
        HTML,
    )
    .await;
    let welcome = welcome_automation(&app, &admin, message).await;
    let clicked_b = on_click(&app, &admin, "/B", "clicked_b").await;
    let ada = new_contact(&app, &admin, "ada@example.com", "Ada").await;
    app.drain_due_runs().await;
    let (html, text) = parts(&smtp, "ada@example.com");
    let links = paths(&html, "l");
    assert_eq!(links.len(), 3, "{html}");
    assert!(!html.contains("shop.example/"), "{html}");
    assert!(html.contains("mailto:help@shop.example"));
    // (The template writes its slashes as &#x2f; in attributes.)
    assert!(
        html.contains("&#x2f;u&#x2f;"),
        "the unsubscribe link stays as it is: {html}"
    );
    let text_links = paths(&text, "l");
    assert_eq!(text_links.len(), 1, "{text}");
    assert_eq!(
        text_links[0], links[1],
        "one link, one token, in both parts"
    );
    let images = paths(&html, "o");
    assert_eq!(images.len(), 1, "{html}");
    assert!(paths(&text, "o").is_empty());

    let client = no_redirects();
    let get = |i: usize| client.get(app.url(&links[i])).send();
    let targets = [
        "https://shop.example/a?x=1&y=2",
        "https://shop.example/b",
        "https://shop.example/c",
    ];
    let later = |s| app.advance(std::time::Duration::from_secs(s));
    // Within 2 seconds of the send: followed, but a machine's.
    let r = get(0).await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(
        r.headers()["location"],
        targets[0],
        "to where the email pointed"
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    later(3);
    assert_eq!(get(0).await.unwrap().status(), StatusCode::FOUND);
    // A HEAD is a machine's; a scanner's user agent too.
    later(3);
    let r = client.head(app.url(&links[1])).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let r = client
        .get(app.url(&links[2]))
        .header("user-agent", "Mozilla/5.0 (compatible; Barracuda Sentinel)")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    // Single clicks 3 seconds apart are a person's.
    for i in [1, 2] {
        later(3);
        let r = get(i).await.unwrap();
        assert_eq!(r.headers()["location"], targets[i]);
    }
    // Every link within 2 seconds: a scanner's burst.
    later(3);
    for i in 0..3 {
        assert_eq!(get(i).await.unwrap().status(), StatusCode::FOUND);
    }
    // The image: a GIF that is never cached.
    let r = client.get(app.url(&images[0])).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/gif");
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("no-store")
    );
    // Altered or made up: a 404 page, no redirect.
    let mut altered = links[0].clone();
    let last = altered.pop().unwrap();
    altered.push(if last == '0' { '1' } else { '0' });
    for bad in [altered.as_str(), "/l/nothing", "/o/nothing.00"] {
        let r = client.get(app.url(bad)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{bad}");
        assert!(r.headers().get("location").is_none());
    }
    written(&app, "SELECT COUNT(*) FROM clicks", 9).await;
    written(&app, "SELECT COUNT(*) FROM opens", 1).await;
    let opens_contact: i64 = count(&app, "SELECT contact_id FROM opens").await;
    assert_eq!(
        opens_contact, ada,
        "kept with the contact (per contact, the default)"
    );
    // Settled: decided, counted and the persons' recorded as events.
    later(3);
    decided(&app).await;
    let machine: Vec<String> =
        sqlx::query_scalar("SELECT machine FROM clicks WHERE machine <> '' ORDER BY id")
            .fetch_all(app.state.db.read())
            .await
            .unwrap();
    assert_eq!(
        machine,
        [
            "within 2 seconds of the send",
            "a HEAD request",
            "a link scanner",
            herald::engagement::decide::BURST,
            herald::engagement::decide::BURST,
            herald::engagement::decide::BURST,
        ]
    );
    let per_link: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT target, clicks, unique_clicks, machine_clicks FROM link_clicks ORDER BY target",
    )
    .fetch_all(app.state.db.read())
    .await
    .unwrap();
    assert_eq!(
        per_link,
        targets
            .iter()
            .map(|t| (t.to_string(), 1, 1, 2))
            .collect::<Vec<_>>(),
        "one person's click per link; two machines' each"
    );
    let totals: (i64, i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT CAST(SUM(opens) AS BIGINT), CAST(SUM(unique_opens) AS BIGINT), CAST(SUM(machine_opens) AS BIGINT), CAST(SUM(clicks) AS BIGINT), CAST(SUM(unique_clicks) AS BIGINT), CAST(SUM(machine_clicks) AS BIGINT) FROM engagement_hourly",
    )
    .fetch_one(app.state.db.read())
    .await
    .unwrap();
    assert_eq!(
        totals,
        (1, 1, 0, 3, 1, 6),
        "the roll-ups count the raw rows (a unique click: an email clicked)"
    );
    let events = app.events().await;
    let clicked: Vec<&str> = events
        .iter()
        .filter(|e| e.0 == "link_clicked")
        .map(|e| e.3["link"].as_str().unwrap())
        .collect();
    assert_eq!(
        clicked.len(),
        3,
        "machines' clicks fire nothing: {clicked:?}"
    );
    let opened = events.iter().find(|e| e.0 == "message_opened").unwrap();
    assert_eq!(
        (opened.1, &opened.3["first"]),
        (Some(ada), &serde_json::json!(true))
    );
    // The automation on Link Clicked (a link containing "/b", the first time)
    // updated Ada's attribute, once.
    app.drain_due_runs().await;
    let attributes = herald::contacts::attributes(&app.state.db, ada)
        .await
        .unwrap();
    assert_eq!(
        attributes,
        [("clicked_b".to_string(), "yes".to_string())],
        "set by the automation on Link Clicked"
    );
    assert_eq!(
        count(
            &app,
            &format!("SELECT COUNT(*) FROM job_runs WHERE automation_id = {clicked_b}")
        )
        .await,
        1
    );
    // Ada unsubscribes with the email's link (twice: it counts once, for the message).
    let mail = smtp.last_to("ada@example.com").unwrap();
    let at = mail.data.find("List-Unsubscribe: <").unwrap();
    let link = &mail.data[at..];
    let path = &link[link.find("/u/").unwrap()..link.find('>').unwrap()];
    for _ in 0..2 {
        let r = app.client.post(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    statistics_show(&app, &admin, message, welcome).await;
    // The dashboard's week, and Ada's timeline.
    let (_, html) = app.page_with(&admin, "/dashboard").await;
    assert_eq!(text_of(&html, "#week-sent").as_deref(), Some("1"));
    assert_eq!(text_of(&html, "#week-clicked").as_deref(), Some("1"));
    let (_, html) = app.page_with(&admin, &format!("/contacts/{ada}")).await;
    let timeline = text_of(&html, "#timeline").unwrap();
    assert!(
        timeline.contains("Link Clicked (C)")
            && timeline.contains("the link https://shop.example/b; the first time")
            && timeline.contains("Message Opened (C)"),
        "{timeline}"
    );
    // Past their keeping period the opens and clicks go; their counts stay.
    app.advance(std::time::Duration::from_secs(181 * 86_400));
    let pruned = herald::retention::prune(&app.state.db, app.now_ms())
        .await
        .unwrap();
    assert_eq!(pruned.opens_and_clicks, 10);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM clicks").await, 0);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM link_clicks").await, 3);
}

/// The statistics of the message and of the automation that sent it, on their
/// pages, over the API and as CSV: they add up to the raw records.
async fn statistics_show(app: &TestApp, admin: &reqwest::Client, message: i64, welcome: i64) {
    let (status, html) = app
        .page_with(admin, &format!("/messages/{message}/stats"))
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    for (id, want) in [
        ("#fig-sent", "1"),
        ("#fig-delivered", "1"),
        ("#fig-unique-opens", "1"),
        ("#fig-unique-clicks", "1"),
        ("#fig-machine-clicks", "6"),
        ("#fig-ctor", "100.0 %"),
        ("#fig-unsubscribes", "1"),
    ] {
        assert_eq!(text_of(&html, id).as_deref(), Some(want), "{id}");
    }
    let links = text_of(&html, "#links").unwrap();
    assert!(links.contains("https://shop.example/b"), "{links}");
    assert!(
        text_of(&html, "#chart-legend")
            .unwrap()
            .contains("Unique clicks (1)")
    );
    let (status, html) = app
        .page_with(admin, &format!("/automations/{welcome}/stats?days=7"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text_of(&html, "#fig-unique-clicks").as_deref(), Some("1"));
    let (status, _) = app.page_with(admin, "/messages/999999/stats").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The API.
    let key = crate::api::new_key(app, admin, "stats").await;
    let r = app
        .client
        .get(app.url(&format!("/api/v1/messages/{message}/stats?days=7")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["figures"]["unique_clicks"], 1, "Ada clicked");
    assert_eq!(body["figures"]["clicks"], 3);
    assert_eq!(body["figures"]["machine_clicks"], 6);
    assert_eq!(body["rates"]["open_rate"], 100.0);
    assert_eq!(body["days"].as_array().unwrap().len(), 7);
    assert_eq!(body["links"].as_array().unwrap().len(), 3);
    let r = app
        .client
        .get(app.url(&format!("/api/v1/automations/{welcome}/stats?days=8")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // The CSV downloads.
    let csv = admin
        .get(app.url(&format!("/messages/{message}/clicks.csv")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "clicked_at,email,first_name,last_name,link");
    assert_eq!(lines.len(), 4, "one line per person's click: {csv}");
    assert!(lines[1].contains("ada@example.com"), "{csv}");
    let days = admin
        .get(app.url(&format!("/messages/{message}/stats.csv?days=7")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(days.trim_end().ends_with("all 7 days,1,1,1"), "{days}");
}

/// Decides every open and click that settled (as the scheduler's instance does).
async fn decided(app: &TestApp) {
    for _ in 0..100 {
        herald::engagement::decide::pass(&app.state.db, app.now_ms())
            .await
            .unwrap();
        let left = count(app, "SELECT COUNT(*) FROM clicks WHERE decided = 0").await
            + count(app, "SELECT COUNT(*) FROM opens WHERE decided = 0").await;
        if left == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("opens and clicks left undecided");
}

/// An automation on Link Clicked (a link containing `link`, the first time) that
/// sets the contact's attribute `name` to yes.
async fn on_click(app: &TestApp, client: &reqwest::Client, link: &str, name: &str) -> i64 {
    let r = app
        .submit_with(
            client,
            "/automations/new",
            "/automations",
            &[
                ("name", "Clicked"),
                ("description", "Tell sales"),
                ("event", "link_clicked"),
                ("filter_link", link),
                ("filter_first", "yes"),
            ],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let id: i64 = crate::helpers::location(&r)
        .trim_start_matches("/automations/")
        .trim_end_matches("/job")
        .parse()
        .unwrap();
    let r = crate::automations::define_job(
        app,
        client,
        id,
        &[
            ("action", "time_frame"),
            ("job", "update_contact_attribute"),
            ("use_event_parameter", "on"),
            ("attribute_name", name),
            ("attribute_value", "yes"),
        ],
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let r = crate::automations::define_time_frame(
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

async fn tracking_off_sends_the_links_as_written(app: TestApp, smtp: SmtpServer) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let r = app
        .submit_with(
            &admin,
            "/admin/settings",
            "/admin/settings",
            &[("tracking", "off")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let message = write_message(
        &app,
        &admin,
        "News",
        "News",
        "See https://shop.example/b",
        HTML,
    )
    .await;
    welcome_automation(&app, &admin, message).await;
    new_contact(&app, &admin, "ada@example.com", "Ada").await;
    app.drain_due_runs().await;
    let (html, text) = parts(&smtp, "ada@example.com");
    assert!(
        html.contains(r#"href="https://shop.example/a?x=1&amp;y=2""#),
        "{html}"
    );
    assert!(
        paths(&html, "l").is_empty() && paths(&html, "o").is_empty(),
        "{html}"
    );
    assert!(text.contains("https://shop.example/b"), "{text}");
    // Tracking on again, but the message turns it off for itself.
    let r = app
        .submit_with(
            &admin,
            "/admin/settings",
            "/admin/settings",
            &[("tracking", "per_contact")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = format!("/messages/{message}");
    let r = app
        .submit_with(&admin, &page, &page, &[("untracked", "on")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, form) = app.page_with(&admin, &page).await;
    assert!(
        form.contains(r#"name="untracked" checked"#),
        "the box stays ticked"
    );
    new_contact(&app, &admin, "bob@example.com", "Bob").await;
    app.drain_due_runs().await;
    let (html, _) = parts(&smtp, "bob@example.com");
    assert!(
        paths(&html, "l").is_empty() && paths(&html, "o").is_empty(),
        "{html}"
    );
    // Anonymous: the click is counted for the message, never kept with the contact.
    let r = app
        .submit_with(
            &admin,
            "/admin/settings",
            "/admin/settings",
            &[("tracking", "anonymous")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = app
        .submit_with(&admin, &page, &page, &[("untracked", "")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    new_contact(&app, &admin, "cy@example.com", "Cy").await;
    app.drain_due_runs().await;
    let (html, _) = parts(&smtp, "cy@example.com");
    let links = paths(&html, "l");
    assert_eq!(links.len(), 3, "{html}");
    app.advance(std::time::Duration::from_secs(3));
    let r = no_redirects().get(app.url(&links[1])).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    written(&app, "SELECT COUNT(*) FROM clicks", 1).await;
    assert_eq!(
        count(
            &app,
            &format!("SELECT COUNT(*) FROM clicks WHERE contact_id IS NULL AND delivery_id IS NULL AND message_id = {message} AND anonymous = 1")
        )
        .await,
        1
    );
}

async fn a_contact_who_refuses_tracking_is_counted_but_not_kept(app: TestApp, smtp: SmtpServer) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let message = write_message(&app, &admin, "News", "News", "Hello", HTML).await;
    welcome_automation(&app, &admin, message).await;
    let cleo = crate::scheduler::contact(&app, "cleo@example.com", "cleo's long password").await;
    app.drain_due_runs().await;
    let (html, _) = parts(&smtp, "cleo@example.com");
    let links = paths(&html, "l");
    // Cleo says so in the preference center, which says what applies.
    let contact = crate::helpers::browser();
    app.contact_sign_in(&contact, "cleo@example.com", "cleo's long password")
        .await;
    let (_, page) = app.page_with(&contact, "/preferences").await;
    assert!(
        text_of(&page, "#tracking")
            .unwrap()
            .contains("records when you open"),
        "{page}"
    );
    let r = app
        .submit_with(
            &contact,
            "/preferences",
            "/preferences",
            &[("untracked", "on")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = app.page_with(&contact, "/preferences").await;
    assert!(
        page.contains(r#"name="untracked" checked"#),
        "the choice is kept"
    );
    app.advance(std::time::Duration::from_secs(3));
    let r = no_redirects().get(app.url(&links[1])).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND, "the link still works");
    written(&app, "SELECT COUNT(*) FROM clicks", 1).await;
    assert_eq!(
        count(
            &app,
            &format!(
                "SELECT COUNT(*) FROM clicks WHERE contact_id = {cleo} OR delivery_id IS NOT NULL"
            )
        )
        .await,
        0,
        "not kept with Cleo or her email"
    );
    app.advance(std::time::Duration::from_secs(3));
    decided(&app).await;
    assert!(
        !app.events().await.iter().any(|e| e.0 == "link_clicked"),
        "and no event names her"
    );
    assert_eq!(
        count(
            &app,
            "SELECT CAST(SUM(clicks) AS BIGINT) FROM engagement_hourly"
        )
        .await,
        1,
        "counted"
    );
}

/// After sends, a bounce, people's and machines' opens and clicks and an
/// unsubscribe, the statistics equal a count of the raw records.
async fn the_numbers_add_up_to_the_raw_records(app: TestApp, smtp: SmtpServer) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let message = write_message(&app, &admin, "News", "News", "Hello", HTML).await;
    welcome_automation(&app, &admin, message).await;
    for (email, name) in [
        ("ada@example.com", "Ada"),
        ("bob@example.com", "Bob"),
        ("cy@example.com", "Cy"),
    ] {
        new_contact(&app, &admin, email, name).await;
    }
    app.drain_due_runs().await;
    let bob = smtp.last_to("bob@example.com").unwrap();
    let id = crate::bounces::message_id_in(&bob.data);
    let dsn = crate::bounces::dsn("bob@example.com", "failed", "5.1.1", &id);
    let r = crate::bounces::deliver(&app, "", &["postmaster@localhost"], dsn.as_bytes()).await;
    assert!(r[r.len() - 2].starts_with("250"), "{r:?}");
    let client = no_redirects();
    let (ada_html, _) = parts(&smtp, "ada@example.com");
    let (cy_html, _) = parts(&smtp, "cy@example.com");
    let (ada_links, cy_links) = (paths(&ada_html, "l"), paths(&cy_html, "l"));
    app.advance(std::time::Duration::from_secs(3));
    for path in [
        &paths(&ada_html, "o")[0],
        &paths(&ada_html, "o")[0],
        &ada_links[0],
    ] {
        client.get(app.url(path)).send().await.unwrap();
    }
    app.advance(std::time::Duration::from_secs(3));
    client.get(app.url(&ada_links[1])).send().await.unwrap();
    client.head(app.url(&cy_links[2])).send().await.unwrap();
    client
        .get(app.url(&paths(&cy_html, "o")[0]))
        .header("user-agent", "Mozilla/5.0 (via ggpht.com GoogleImageProxy)")
        .send()
        .await
        .unwrap();
    let mail = smtp.last_to("ada@example.com").unwrap();
    let at = mail.data.find("List-Unsubscribe: <").unwrap();
    let link = &mail.data[at..];
    let unsubscribe = &link[link.find("/u/").unwrap()..link.find('>').unwrap()];
    app.client.post(app.url(unsubscribe)).send().await.unwrap();
    written(&app, "SELECT COUNT(*) FROM clicks", 3).await;
    written(&app, "SELECT COUNT(*) FROM opens", 3).await;
    app.advance(std::time::Duration::from_secs(3));
    decided(&app).await;
    let raw = |sql: String| {
        let app = &app;
        async move { count(app, &sql).await }
    };
    let m = format!("message_id = {message}");
    let expected = herald::stats::Figures {
        sent: raw(format!("SELECT COUNT(*) FROM deliveries WHERE {m}")).await,
        delivered: raw(format!("SELECT COUNT(*) FROM deliveries WHERE {m} AND fate NOT IN ('hard_bounce', 'soft_bounce')")).await,
        hard_bounces: raw(format!("SELECT COUNT(*) FROM deliveries WHERE {m} AND fate = 'hard_bounce'")).await,
        soft_bounces: 0,
        complaints: 0,
        opens: raw(format!("SELECT COUNT(*) FROM opens WHERE {m} AND machine = ''")).await,
        unique_opens: raw(format!("SELECT COUNT(DISTINCT delivery_id) FROM opens WHERE {m} AND machine = ''")).await,
        machine_opens: raw(format!("SELECT COUNT(*) FROM opens WHERE {m} AND machine <> ''")).await,
        clicks: raw(format!("SELECT COUNT(*) FROM clicks WHERE {m} AND machine = ''")).await,
        unique_clicks: raw(format!("SELECT COUNT(DISTINCT delivery_id) FROM clicks WHERE {m} AND machine = ''")).await,
        machine_clicks: raw(format!("SELECT COUNT(*) FROM clicks WHERE {m} AND machine <> ''")).await,
        unsubscribes: raw(format!("SELECT COUNT(*) FROM deliveries WHERE {m} AND unsubscribed_at IS NOT NULL")).await,
    };
    assert_eq!(
        (
            expected.sent,
            expected.hard_bounces,
            expected.opens,
            expected.clicks,
            expected.machine_clicks,
            expected.unsubscribes
        ),
        (3, 1, 2, 2, 1, 1),
        "the scenario happened"
    );
    let figures = herald::stats::figures(
        &app.state.db,
        herald::stats::Scope::Message(message),
        0,
        app.now_ms() + 3_600_000,
    )
    .await
    .unwrap();
    assert_eq!(figures, expected);
}

with_smtp!(
    the_numbers_add_up_to_the_raw_records,
    a_contact_who_refuses_tracking_is_counted_but_not_kept,
    links_lead_where_the_email_pointed_and_clicks_and_opens_are_recorded,
    tracking_off_sends_the_links_as_written
);

/// An open from a network in `image_proxies_file` (here 127.0.0.1, the tests'
/// own address) is a machine's; a file that is not a list of networks is refused
/// at start, naming its line.
async fn opens_through_an_image_proxy_are_machines(app: TestApp, smtp: SmtpServer) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let message = write_message(&app, &admin, "News", "News", "Hello", HTML).await;
    welcome_automation(&app, &admin, message).await;
    new_contact(&app, &admin, "ada@example.com", "Ada").await;
    app.drain_due_runs().await;
    let (html, _) = parts(&smtp, "ada@example.com");
    app.advance(std::time::Duration::from_secs(3));
    let r = no_redirects()
        .get(app.url(&paths(&html, "o")[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    written(
        &app,
        "SELECT COUNT(*) FROM opens WHERE machine = 'an image proxy'",
        1,
    )
    .await;
    let bad = app.state.config.data_dir.join("proxies-bad.txt");
    std::fs::write(&bad, "17.0.0.0/8\nnot a network\n").unwrap();
    let refused = herald::config::Config::load([(
        "HERALD_IMAGE_PROXIES_FILE".to_string(),
        bad.display().to_string(),
    )])
    .unwrap_err()
    .to_string();
    assert!(
        refused.contains("IMAGE_PROXIES_FILE") && refused.contains("line 2"),
        "{refused}"
    );
}

mod opens_through_an_image_proxy_are_machines {
    async fn run(engine: crate::helpers::Engine) {
        let smtp = crate::smtp::SmtpServer::start().await;
        let url = smtp.url();
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("proxies.txt");
        std::fs::write(&list, "# the tests' own address\n127.0.0.1\n").unwrap();
        crate::helpers::TestApp::on(engine)
            .configure(move |c| {
                c.smtp_url = Some(herald::config::Secret::from(url));
                c.image_proxies_file = Some(list);
            })
            .run(|app| async move {
                super::opens_through_an_image_proxy_are_machines(app, smtp).await;
                drop(dir);
            })
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
