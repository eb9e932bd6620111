//! Opens and clicks: a prepared message's links go through Herald to where they
//! pointed, its image counts an open, and machines are told apart.

use herald::auth::users::Role;
use reqwest::StatusCode;

use crate::helpers::TestApp;
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
        "Hello: https://shop.example/b and https://shop.example/d.",
        HTML,
    )
    .await;
    welcome_automation(&app, &admin, message).await;
    new_contact(&app, &admin, "ada@example.com", "Ada").await;
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
    assert_eq!(text_links.len(), 2, "{text}");
    assert_eq!(
        text_links[0], links[1],
        "one link, one token, in both parts"
    );
    let images = paths(&html, "o");
    assert_eq!(images.len(), 1, "{html}");
    assert!(paths(&text, "o").is_empty());

    let client = no_redirects();
    // Within 2 seconds of the send: followed, but a machine's.
    let r = client.get(app.url(&links[0])).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(
        r.headers()["location"],
        "https://shop.example/a?x=1&y=2",
        "to where the email pointed"
    );
    app.advance(std::time::Duration::from_secs(3));
    for (i, target) in [
        "https://shop.example/a?x=1&y=2",
        "https://shop.example/b",
        "https://shop.example/c",
    ]
    .iter()
    .enumerate()
    {
        let r = client.get(app.url(&links[i])).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FOUND);
        assert_eq!(r.headers()["location"], *target);
        assert_eq!(r.headers()["cache-control"], "no-store");
    }
    // A HEAD is a machine's; a scanner's user agent too.
    let r = client.head(app.url(&links[1])).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let r = client
        .get(app.url(&links[2]))
        .header("user-agent", "Mozilla/5.0 (compatible; Barracuda Sentinel)")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
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
    written(&app, "SELECT COUNT(*) FROM clicks", 6).await;
    written(&app, "SELECT COUNT(*) FROM opens", 1).await;
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM clicks WHERE machine = ''").await,
        3,
        "one person's click per link"
    );
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
            "a link scanner"
        ]
    );
    let ada: i64 = count(&app, "SELECT contact_id FROM opens").await;
    assert!(ada > 0, "kept with the contact (per contact, the default)");
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

with_smtp!(
    links_lead_where_the_email_pointed_and_clicks_and_opens_are_recorded,
    tracking_off_sends_the_links_as_written
);
