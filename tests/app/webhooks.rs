//! Send HTTP Request, end to end on both engines: an API event reaches a real HTTP
//! receiver on 127.0.0.1 (allowed by an admin in Settings), signed so that a
//! Standard Webhooks check passes with the secret shown once; 5xx answers are
//! retried into one done run; 4xx, redirects and refused addresses fail the run.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use herald::auth::users::Role;
use hmac::{Hmac, Mac};
use reqwest::{Client, StatusCode};
use serde_json::json;
use sha2::Sha256;

use crate::automations::{define_job, define_time_frame, new_automation};
use crate::helpers::{TestApp, text_of};

/// A request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// An HTTP server on 127.0.0.1 answering each request with the next scripted
/// status (200 when the script is used up), recording what it got.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    async fn start(script: &[(u16, &str)]) -> Self {
        let script: Arc<Mutex<VecDeque<(u16, String)>>> = Arc::new(Mutex::new(
            script.iter().map(|(s, b)| (*s, b.to_string())).collect(),
        ));
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let (s, g) = (script.clone(), got.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = actix_web::HttpServer::new(move || {
            let (script, got) = (s.clone(), g.clone());
            actix_web::App::new().default_service(actix_web::web::to(
                move |req: actix_web::HttpRequest, body: actix_web::web::Bytes| {
                    let (script, got) = (script.clone(), got.clone());
                    async move {
                        got.lock().unwrap().push(Received {
                            path: req.path().to_string(),
                            headers: req
                                .headers()
                                .iter()
                                .map(|(n, v)| {
                                    (n.to_string(), v.to_str().unwrap_or_default().to_string())
                                })
                                .collect(),
                            body: body.to_vec(),
                        });
                        let (status, text) = script
                            .lock()
                            .unwrap()
                            .pop_front()
                            .unwrap_or((200, "ok".into()));
                        let mut answer = actix_web::HttpResponse::build(
                            actix_web::http::StatusCode::from_u16(status).unwrap(),
                        );
                        if status == 302 {
                            answer.insert_header(("location", "/elsewhere"));
                        }
                        answer.body(text)
                    }
                },
            ))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { port, got, handle }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

/// Checks a request as a receiver would with a Standard Webhooks library:
/// `v1,` + base64 HMAC-SHA256 of `id.timestamp.body` under the secret's bytes.
fn signature_holds(secret: &str, r: &Received) -> bool {
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(
        format!(
            "{}.{}.",
            r.header("webhook-id"),
            r.header("webhook-timestamp")
        )
        .as_bytes(),
    );
    mac.update(&r.body);
    let expected = format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()));
    r.header("webhook-signature")
        .split(' ')
        .any(|s| s == expected)
}

/// Lets webhooks reach `hosts` (Settings, as an admin does it).
async fn allow_hosts(app: &TestApp, admin: &Client, hosts: &str) {
    let r = app
        .submit_with(
            admin,
            "/admin/settings",
            "/admin/settings",
            &[("webhook_hosts", hosts)],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap_or_default()
    );
}

/// Defines Send HTTP Request on a new automation for `event` (refused when
/// `Err`); returns the automation and the secret shown once.
async fn webhook_automation(
    app: &TestApp,
    client: &Client,
    event: &str,
    job: &[(&str, &str)],
) -> Result<(i64, String), String> {
    let id = new_automation(app, client, "Tell the shop", event).await;
    let mut values = vec![("job", "send_http_request"), ("action", "time_frame")];
    values.extend_from_slice(job);
    let r = define_job(app, client, id, &values).await;
    if r.status() != StatusCode::SEE_OTHER {
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let html = r.text().await.unwrap();
        return Err(text_of(&html, "#webhook_url-error")
            .or_else(|| text_of(&html, "#webhook_template-error"))
            .expect("a message next to the field"));
    }
    let (_, html) = app
        .page_with(client, &format!("/automations/{id}/time-frame"))
        .await;
    let secret = secret_on(&html).expect("the secret, shown once");
    let (_, again) = app
        .page_with(client, &format!("/automations/{id}/time-frame"))
        .await;
    assert_eq!(secret_on(&again), None, "shown once only");
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
    Ok((id, secret))
}

fn secret_on(html: &str) -> Option<String> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse("#secret-value").unwrap();
    doc.select(&sel)
        .next()
        .and_then(|e| e.value().attr("value"))
        .map(str::to_string)
}

async fn api_event(app: &TestApp, key: &str, body: serde_json::Value) {
    let r = Client::new()
        .post(app.url("/api/v1/events"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "{}",
        r.text().await.unwrap()
    );
}

/// The run of `automation`: (status, outcome, last error).
async fn run_of(app: &TestApp, automation: i64) -> (String, String, String) {
    let runs = crate::scheduler::runs(app, automation).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let r = &runs[0];
    (
        r.status.to_string(),
        r.outcome.clone().unwrap_or_default(),
        r.last_error.clone().unwrap_or_default(),
    )
}

async fn a_signed_request_reaches_the_receiver_and_503s_are_retried_into_one_done_run(
    app: TestApp,
) {
    let receiver = Receiver::start(&[(503, "busy"), (503, "busy"), (200, "thanks")]).await;
    let (admin, _) = app.signed_in(Role::Admin).await;
    let key = crate::api::new_key(&app, &admin, "Shop").await;
    let url = receiver.url("/hooks/herald");

    // Plain http to 127.0.0.1 is refused until an admin allows the host.
    let refused = webhook_automation(
        &app,
        &admin,
        "external_http_request_received",
        &[("webhook_url", &url)],
    )
    .await;
    assert!(refused.unwrap_err().contains("Use https"));
    let refused = webhook_automation(
        &app,
        &admin,
        "external_http_request_received",
        &[("webhook_url", &url.replace("http:", "https:"))],
    )
    .await;
    assert!(refused.unwrap_err().contains("private network"));
    allow_hosts(&app, &admin, "127.0.0.1").await;
    let (automation, secret) = webhook_automation(
        &app,
        &admin,
        "external_http_request_received",
        &[("webhook_url", &url)],
    )
    .await
    .unwrap();
    assert!(
        secret.starts_with("whsec_") && secret.len() > 40,
        "{secret}"
    );
    let stored = app.all_stored_text().await;
    assert!(!stored.contains(&secret[6..]), "the secret is not stored");

    api_event(&app, &key, json!({ "type": "external_http_request_received", "name": "order.shipped", "data": { "order": 42, "note": "fragile \"glass\"" } })).await;
    app.drain_due_runs().await;
    assert_eq!(receiver.got().len(), 1);
    let (status, _, error) = run_of(&app, automation).await;
    assert_eq!(
        (status.as_str(), error.as_str()),
        ("pending", "HTTP 503 Service Unavailable: busy"),
        "retried later"
    );
    app.advance(Duration::from_secs(60));
    app.drain_due_runs().await;
    assert_eq!(receiver.got().len(), 2);
    app.advance(Duration::from_secs(120));
    app.drain_due_runs().await;
    let got = receiver.got();
    assert_eq!(got.len(), 3, "503, 503, then 200");
    let (status, outcome, _) = run_of(&app, automation).await;
    assert_eq!(
        (status.as_str(), outcome.as_str()),
        ("done", "HTTP 200 OK: thanks")
    );

    for r in &got {
        assert_eq!(r.path, "/hooks/herald");
        assert_eq!(r.header("content-type"), "application/json");
        assert!(
            signature_holds(&secret, r),
            "the signature checks out: {r:?}"
        );
        assert_eq!(
            r.header("webhook-id"),
            got[0].header("webhook-id"),
            "one id for every attempt"
        );
    }
    let mut forged = got[0].clone();
    forged.body = forged
        .body
        .iter()
        .map(|b| if *b == b'4' { b'5' } else { *b })
        .collect();
    assert!(
        !signature_holds(&secret, &forged),
        "a changed body does not check out"
    );
    let body = got[0].json();
    assert_eq!(body["type"], "external_http_request_received");
    assert_eq!(body["data"]["event"]["params"]["name"], "order.shipped");
    assert_eq!(body["data"]["event"]["params"]["data"]["order"], 42);
    assert_eq!(
        body["data"]["event"]["params"]["data"]["note"],
        "fragile \"glass\""
    );
    assert_eq!(body["data"]["contact"], serde_json::Value::Null);
    assert_eq!(body["data"]["automation"]["name"], "Tell the shop");
    let sent_at: i64 = got[0].header("webhook-timestamp").parse().unwrap();
    assert!(
        (sent_at - app.now_ms() / 1000).abs() < 600,
        "seconds since the epoch"
    );

    // The run's page shows the answer.
    let (_, page) = app
        .page_with(&admin, &format!("/automations/{automation}"))
        .await;
    assert!(page.contains("HTTP 200 OK: thanks"));
}

async fn a_contact_event_sends_the_body_staff_wrote_with_values_as_json(app: TestApp) {
    let receiver = Receiver::start(&[]).await;
    let (admin, _) = app.signed_in(Role::Admin).await;
    allow_hosts(&app, &admin, "127.0.0.1").await;
    let key = crate::api::new_key(&app, &admin, "Shop").await;
    let url = receiver.url("/crm");
    let broken = webhook_automation(
        &app,
        &admin,
        "external_event_received",
        &[
            ("webhook_url", &url),
            ("webhook_body", "template"),
            ("webhook_template", "{\"email\": {{ contact.emial }}}"),
        ],
    )
    .await;
    assert!(broken.unwrap_err().contains("not a contact field"));
    let template = "{\"email\": {{ contact.email }}, \"name\": {{ contact.first_name }}, \"order\": {{ event.data.order }}, \"coupon\": {{ contact.attributes.coupon }}}";
    let (automation, secret) = webhook_automation(
        &app,
        &admin,
        "external_event_received",
        &[
            ("webhook_url", &url),
            ("webhook_body", "template"),
            ("webhook_template", template),
        ],
    )
    .await
    .unwrap();
    let jo = crate::scheduler::contact(&app, "jo@example.com", "jo's own password").await;
    sqlx::query("UPDATE contacts SET first_name = $1 WHERE id = $2")
        .bind("Jo \"the\" Tester")
        .bind(jo)
        .execute(app.state.db.write())
        .await
        .unwrap();
    api_event(&app, &key, json!({ "type": "external_event_received", "contact": { "email": "jo@example.com" }, "name": "order", "data": { "order": 7 } })).await;
    app.drain_due_runs().await;
    let got = receiver.got();
    assert_eq!(got.len(), 1);
    assert!(signature_holds(&secret, &got[0]));
    assert_eq!(
        got[0].json(),
        json!({ "email": "jo@example.com", "name": "Jo \"the\" Tester", "order": 7, "coupon": null })
    );
    let runs = crate::scheduler::runs(&app, automation).await;
    assert_eq!(runs[0].status.code(), "done");
    assert_eq!(runs[0].target(), format!("contact #{jo}"));

    // A new secret on request: the old one no longer checks out.
    let page = format!("/automations/{automation}/job");
    let r = app
        .submit_with(
            &admin,
            &page,
            &page,
            &[("webhook_new_secret", "on"), ("action", "time_frame")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, html) = app
        .page_with(&admin, &format!("/automations/{automation}/time-frame"))
        .await;
    let renewed = secret_on(&html).expect("the new secret, shown once");
    assert_ne!(renewed, secret);
    // Saving without asking keeps the secret (and shows nothing).
    let r = app
        .submit_with(&admin, &page, &page, &[("action", "time_frame")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, html) = app
        .page_with(&admin, &format!("/automations/{automation}/time-frame"))
        .await;
    assert_eq!(secret_on(&html), None);
    api_event(&app, &key, json!({ "type": "external_event_received", "contact": { "email": "jo@example.com" }, "name": "order", "data": { "order": 8 } })).await;
    app.drain_due_runs().await;
    let got = receiver.got();
    assert_eq!(got.len(), 2);
    assert!(signature_holds(&renewed, &got[1]) && !signature_holds(&secret, &got[1]));
}

async fn client_errors_redirects_and_refused_addresses_fail_the_run(app: TestApp) {
    let receiver = Receiver::start(&[(404, "no such hook"), (302, "")]).await;
    let (admin, _) = app.signed_in(Role::Admin).await;
    allow_hosts(&app, &admin, "127.0.0.1").await;
    let key = crate::api::new_key(&app, &admin, "Shop").await;
    let event = json!({ "type": "external_http_request_received", "name": "ping" });

    let (a404, _) = webhook_automation(
        &app,
        &admin,
        "external_http_request_received",
        &[("webhook_url", &receiver.url("/gone"))],
    )
    .await
    .unwrap();
    api_event(&app, &key, event.clone()).await;
    app.drain_due_runs().await;
    let (status, _, error) = run_of(&app, a404).await;
    assert_eq!(
        (status.as_str(), error.as_str()),
        ("failed", "HTTP 404 Not Found: no such hook"),
        "a 4xx is not retried"
    );
    deactivate(&app, &admin, a404).await;

    let (a302, _) = webhook_automation(
        &app,
        &admin,
        "external_http_request_received",
        &[("webhook_url", &receiver.url("/moved"))],
    )
    .await
    .unwrap();
    api_event(&app, &key, event.clone()).await;
    app.drain_due_runs().await;
    let (status, _, error) = run_of(&app, a302).await;
    assert_eq!(status, "failed");
    assert!(error.contains("redirects are not followed"), "{error}");
    assert!(
        receiver.got().iter().all(|r| r.path != "/elsewhere"),
        "the redirect was not followed"
    );
    deactivate(&app, &admin, a302).await;

    // Nothing listens: retried later.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (down, _) = webhook_automation(
        &app,
        &admin,
        "external_http_request_received",
        &[("webhook_url", &format!("http://127.0.0.1:{closed}/"))],
    )
    .await
    .unwrap();
    api_event(&app, &key, event.clone()).await;
    app.drain_due_runs().await;
    let (status, _, error) = run_of(&app, down).await;
    assert_eq!(status, "pending");
    assert!(error.contains("could not connect"), "{error}");

    // The admin takes the host off the list: the next attempt is refused.
    allow_hosts(&app, &admin, "").await;
    app.advance(Duration::from_secs(60));
    app.drain_due_runs().await;
    let (status, _, error) = run_of(&app, down).await;
    assert_eq!(status, "failed");
    assert!(
        error.contains("refused") && error.contains("http"),
        "{error}"
    );
    assert_eq!(receiver.got().len(), 2, "no request to a refused address");
}

on_both_engines!(
    a_signed_request_reaches_the_receiver_and_503s_are_retried_into_one_done_run,
    a_contact_event_sends_the_body_staff_wrote_with_values_as_json,
    client_errors_redirects_and_refused_addresses_fail_the_run
);

async fn deactivate(app: &TestApp, client: &Client, id: i64) {
    let r = app
        .submit_with(
            client,
            "/automations",
            "/automations/state",
            &[("ids", &id.to_string()), ("action", "deactivate")],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap_or_default()
    );
}
