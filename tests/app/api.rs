//! The integration API's first endpoint and its keys, on both engines: keys are
//! created on the admin page and shown once, open `/api/…` only, and revoking one
//! shuts it; `POST /api/v1/events` fires automations end to end; bad input is a 4xx
//! problem naming the field.

use herald::auth::users::Role;
use reqwest::{Client, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, text_of};
use crate::smtp::{SmtpServer, password_in};

/// Creates a key on the admin page; returns it as shown (once).
pub(crate) async fn new_key(app: &TestApp, admin: &Client, name: &str) -> String {
    let r = app
        .submit_with(
            admin,
            "/admin/api-keys",
            "/admin/api-keys",
            &[("name", name)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    text_of(&html, "#new-key-value").expect("the key, shown once")
}

async fn post(
    app: &TestApp,
    key: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let r = Client::new()
        .post(app.url("/api/v1/events"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    if status.is_client_error() {
        assert_eq!(
            r.headers().get("content-type").unwrap(),
            "application/problem+json"
        );
    }
    (status, r.json().await.unwrap_or_default())
}

/// An admin and the key "Shop" they created.
async fn shop_key(app: &TestApp) -> (Client, String) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let key = new_key(app, &admin, "Shop").await;
    (admin, key)
}

/// Events recorded so far.
async fn event_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(app.state.db.read())
        .await
        .unwrap()
}

/// A key is shown once on the page that creates it; afterwards only its prefix, and
/// the database holds a fingerprint.
async fn an_api_key_is_shown_once_and_stored_as_a_fingerprint(app: TestApp) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let key = new_key(&app, &admin, "Shop").await;
    assert!(key.starts_with("hk_") && key.len() == 67, "{key}");
    let (_, page) = app.page_with(&admin, "/admin/api-keys").await;
    assert!(
        page.contains("Shop") && page.contains(&key[..11]) && !page.contains(&key),
        "only the prefix afterwards"
    );
    assert!(!app.all_stored_text().await.contains(&key));
    let stored: Vec<String> = sqlx::query_scalar("SELECT key_hash FROM api_keys")
        .fetch_all(app.state.db.read())
        .await
        .unwrap();
    assert!(
        stored.iter().all(|h| !h.contains(&key[3..])),
        "a fingerprint, not the key"
    );
}

/// A website asks for a contact's password: the email arrives, the password signs
/// in, the event says it came from the API, and the run reads back as done.
async fn a_password_requested_over_the_api_is_emailed_and_its_run_read_back(
    app: TestApp,
    smtp: SmtpServer,
) {
    let (_admin, key) = shop_key(&app).await;
    // A website's own sign-in page asks for a password for a contact.
    let (client, _) = app.signed_in(Role::Marketer).await;
    let automation = crate::scheduler::password_automation(&app, &client, &[], &[]).await;
    let cleo = crate::scheduler::contact(&app, "cleo@example.com", "cleo's own password").await;
    let (status, body) = post(
        &app,
        &key,
        json!({ "type": "new_password_requested", "contact": { "email": "Cleo@Example.com" } }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["runs"][0]["automation"], "Password on request");
    assert_eq!(body["runs"][0]["automation_id"], automation);
    app.drain_due_runs().await;
    let mail = smtp
        .last_to("cleo@example.com")
        .expect("the password email");
    let password = password_in(&mail.data);
    let r = app
        .submit_with(
            &crate::helpers::browser(),
            "/preferences/login",
            "/preferences/login",
            &[("email", "cleo@example.com"), ("password", &password)],
        )
        .await;
    assert_eq!(
        crate::helpers::location(&r),
        "/preferences/password",
        "the emailed password works"
    );
    let events = app.events().await;
    assert!(
        events.iter().any(|e| e.0 == "new_password_requested"
            && e.1 == Some(cleo)
            && e.3["source"] == "api")
    );
    // Runs: the one the password request scheduled, as done.
    let run = body_of_first_run(&app).await;
    let got: serde_json::Value = Client::new()
        .get(app.url(&format!("/api/v1/runs/{run}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (got["status"].as_str(), got["attempts"].as_i64()),
        (Some("done"), Some(1)),
        "{got}"
    );
}

/// An event for an unknown address is refused, unless it asks to create the contact.
async fn an_unknown_contact_is_404_unless_create_contact_is_asked(app: TestApp) {
    let (_admin, key) = shop_key(&app).await;
    // Unknown contact: 404, unless asked to create it.
    let (status, body) = post(&app, &key, json!({ "type": "external_event_received", "contact": { "email": "new@example.com" }, "name": "order_shipped" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = post(&app, &key, json!({ "type": "external_event_received", "contact": { "email": "new@example.com" }, "create_contact": true, "name": "order_shipped", "data": { "order": 42 } })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let created = herald::contacts::find_by_email(&app.state.db, "new@example.com")
        .await
        .unwrap()
        .expect("created");
    let events = app.events().await;
    assert!(events.iter().any(|e| e.0 == "registered_to_system"
        && e.1 == Some(created.id)
        && e.3["source"] == "api"));
    assert!(events.iter().any(|e| e.0 == "external_event_received"
        && e.3["data"]["order"] == 42
        && e.3["name"] == "order_shipped"));
    let (status, _) = post(
        &app,
        &key,
        json!({ "type": "external_http_request_received", "name": "ping" }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

/// Contacts over the API: created, then updated by email, with the same events as
/// the admin UI; unknown ids and bad input are problems.
async fn contacts_are_created_then_updated_by_email(app: TestApp) {
    let (_admin, key) = shop_key(&app).await;
    // Contacts: created, then updated by email (the same events as the admin UI).
    let (marketer, _) = app.signed_in(Role::Marketer).await;
    let vip = app.new_group(&marketer, &[("name", "VIP")], false).await;
    let api = |method: reqwest::Method, path: &str| {
        Client::new()
            .request(method, app.url(path))
            .bearer_auth(&key)
    };
    let r = api(reqwest::Method::POST, "/api/v1/contacts")
        .json(&json!({ "email": "Dora@Example.com", "first_name": "Dora" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let dora: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (dora["email"].as_str(), dora["first_name"].as_str()),
        (Some("dora@example.com"), Some("Dora"))
    );
    let r = api(reqwest::Method::POST, "/api/v1/contacts").json(&json!({ "email": "dora@example.com", "attributes": { "city": "Berlin" }, "groups": [vip] })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let again: serde_json::Value = r.json().await.unwrap();
    assert_eq!(again["id"], dora["id"]);
    assert_eq!(
        (
            again["first_name"].as_str(),
            again["attributes"]["city"].as_str(),
            again["groups"][0]["name"].as_str()
        ),
        (Some("Dora"), Some("Berlin"), Some("VIP"))
    );
    let id = dora["id"].as_i64().unwrap();
    let events = app.events().await;
    for kind in [
        "registered_to_system",
        "profile_data_changed",
        "subscribed_to_group",
    ] {
        assert!(
            events.iter().any(|e| e.0 == kind && e.1 == Some(id)),
            "{kind}"
        );
    }
    let got: serde_json::Value = api(reqwest::Method::GET, &format!("/api/v1/contacts/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, again);
    for path in [
        "/api/v1/contacts/999999",
        "/api/v1/contacts/abc",
        "/api/v1/runs/999999",
    ] {
        let r = api(reqwest::Method::GET, path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            r.headers().get("content-type").unwrap(),
            "application/problem+json",
            "{path}"
        );
    }
    let r = api(reqwest::Method::POST, "/api/v1/contacts")
        .json(&json!({ "email": "not an email" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["field"],
        "email"
    );
}

/// The same call with the same Idempotency-Key records one event and answers the
/// same; another body is a conflict; another key has its own keys.
async fn a_replayed_idempotency_key_returns_the_first_answer(app: TestApp) {
    let (admin, key) = shop_key(&app).await;
    let cleo = crate::scheduler::contact(&app, "cleo@example.com", "cleo's own password").await;
    // Idempotency-Key: the same call twice records one event and answers the same.
    let before = event_count(&app).await;
    let call = |body: serde_json::Value| {
        Client::new()
            .post(app.url("/api/v1/events"))
            .bearer_auth(&key)
            .header("Idempotency-Key", "order-42-shipped")
            .json(&body)
            .send()
    };
    let shipped = json!({ "type": "external_event_received", "contact": { "id": cleo }, "name": "order_shipped", "data": { "order": 42 } });
    let first = call(shipped.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: serde_json::Value = first.json().await.unwrap();
    let again = call(shipped.clone()).await.unwrap();
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    assert_eq!(
        again.json::<serde_json::Value>().await.unwrap(),
        first,
        "the first answer again"
    );
    assert_eq!(event_count(&app).await, before + 1, "one event");
    let other = call(json!({ "type": "external_event_received", "contact": { "id": cleo }, "name": "order_cancelled" })).await.unwrap();
    assert_eq!(other.status(), StatusCode::CONFLICT);
    assert_eq!(event_count(&app).await, before + 1);
    // Scoped per key: another key may use the same Idempotency-Key.
    let other_key = new_key(&app, &admin, "Website").await;
    let r = Client::new()
        .post(app.url("/api/v1/events"))
        .bearer_auth(&other_key)
        .header("Idempotency-Key", "order-42-shipped")
        .json(&shipped)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(event_count(&app).await, before + 2);
}

/// A batch is recorded whole or not at all, names the wrong item by its index, keeps
/// the order given, and holds at most 1,000 events.
async fn a_batch_is_all_or_nothing_and_holds_at_most_1000_events(app: TestApp) {
    let (_admin, key) = shop_key(&app).await;
    let cleo = crate::scheduler::contact(&app, "cleo@example.com", "cleo's own password").await;
    // A batch: all or nothing, the wrong one named by its index; at most 1,000.
    let before = event_count(&app).await;
    let item = |i: usize| json!({ "type": "external_event_received", "contact": { "id": cleo }, "name": format!("page_view_{i}") });
    let mut events: Vec<serde_json::Value> = (0..5).map(item).collect();
    events[3] = json!({ "type": "registered_to_system", "contact": { "id": cleo } });
    let r = Client::new()
        .post(app.url("/api/v1/events/batch"))
        .bearer_auth(&key)
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: serde_json::Value = r.json().await.unwrap();
    assert_eq!(problem["field"], "events[3].type", "{problem}");
    assert_eq!(
        event_count(&app).await,
        before,
        "nothing of the batch recorded"
    );
    let events: Vec<serde_json::Value> = (0..1000).map(item).collect();
    let r = Client::new()
        .post(app.url("/api/v1/events/batch"))
        .bearer_auth(&key)
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let answer: serde_json::Value = r.json().await.unwrap();
    let ids: Vec<i64> = answer["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 1000);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in the order given");
    assert_eq!(event_count(&app).await, before + 1000);
    let names: Vec<String> =
        sqlx::query_scalar("SELECT params FROM events WHERE id >= $1 ORDER BY id LIMIT 2")
            .bind(ids[0])
            .fetch_all(app.state.db.read())
            .await
            .unwrap();
    assert!(
        names[0].contains("page_view_0") && names[1].contains("page_view_1"),
        "{names:?}"
    );
    let events: Vec<serde_json::Value> = (0..1001).map(item).collect();
    let r = Client::new()
        .post(app.url("/api/v1/events/batch"))
        .bearer_auth(&key)
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(event_count(&app).await, before + 1000);
}

/// One new address twice in a batch: created once, both events recorded.
async fn one_new_address_twice_in_a_batch_is_created_once(app: TestApp) {
    let (_admin, key) = shop_key(&app).await;
    // One new address twice in a batch: created once, both events recorded.
    let before = event_count(&app).await;
    let new = json!({ "type": "external_event_received", "contact": { "email": "Newbie@Example.com" }, "create_contact": true, "name": "signup" });
    let r = Client::new()
        .post(app.url("/api/v1/events/batch"))
        .bearer_auth(&key)
        .json(&json!({ "events": [new.clone(), new] }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "{}",
        r.text().await.unwrap()
    );
    assert_eq!(
        event_count(&app).await,
        before + 3,
        "its registration and the two events"
    );
    let newbies: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM contacts WHERE email = 'newbie@example.com'")
            .fetch_all(app.state.db.read())
            .await
            .unwrap();
    assert_eq!(newbies.len(), 1, "one contact");
}

/// Bad input is a problem naming the field, never a 500.
async fn bad_input_is_a_problem_naming_the_field(app: TestApp) {
    let (_admin, key) = shop_key(&app).await;
    let cleo = crate::scheduler::contact(&app, "cleo@example.com", "cleo's own password").await;
    // Bad input: a problem naming the field, never a 500.
    for (body, field) in [
        (
            json!({ "type": "registered_to_system", "contact": { "id": cleo } }),
            "type",
        ),
        (json!({ "type": "new_password_requested" }), "contact"),
        (
            json!({ "type": "external_http_request_received", "contact": { "id": cleo } }),
            "contact",
        ),
        (
            json!({ "type": "external_event_received", "contact": { "email": "a\u{0}b@example.com" } }),
            "contact.email",
        ),
        (
            json!({ "type": "external_http_request_received", "name": "x\u{0}y" }),
            "name",
        ),
        (
            json!({ "type": "external_http_request_received", "data": { "big": "x".repeat(20_000) } }),
            "data",
        ),
        (
            json!({ "type": "external_http_request_received", "group_id": 999 }),
            "group_id",
        ),
    ] {
        let (status, problem) = post(&app, &key, body.clone()).await;
        assert_eq!(
            (status, problem["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{body}: {problem}"
        );
    }
    let (status, problem) = post(
        &app,
        &key,
        json!({ "type": "registered_to_system", "contact": { "id": cleo } }),
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("external_event_received"),
        "names the allowed types: {status} {problem}"
    );
    for (content_type, body, expected) in [
        ("application/json", "{not json", StatusCode::BAD_REQUEST),
        ("application/json", "{\"type\": 5}", StatusCode::BAD_REQUEST),
        (
            "application/json",
            "{\"type\": \"x\", \"surprise\": 1}",
            StatusCode::BAD_REQUEST,
        ),
        ("text/plain", "{}", StatusCode::UNSUPPORTED_MEDIA_TYPE),
    ] {
        let r = Client::new()
            .post(app.url("/api/v1/events"))
            .bearer_auth(&key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), expected, "{content_type} {body}");
    }
    let r = Client::new()
        .post(app.url("/api/v1/events"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(vec![b' '; 70_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

/// No key, a wrong key or a staff session cookie gets 401; a key opens no page.
async fn only_a_key_opens_the_api_and_a_key_opens_no_page(app: TestApp) {
    let (admin, key) = shop_key(&app).await;
    // Keys only: no key, a wrong key, a staff session cookie — 401.
    let (status, _) = post(
        &app,
        "hk_wrong",
        json!({ "type": "external_http_request_received" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let r = admin
        .post(app.url("/api/v1/events"))
        .json(&json!({ "type": "external_http_request_received" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "a session cookie does not open the API"
    );
    // And a key opens no page.
    let r = crate::helpers::browser()
        .get(app.url("/admin/api-keys"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        crate::helpers::location(&r),
        "/login?next=%2Fadmin%2Fapi-keys"
    );
}

/// A revoked key is refused from then on; the page showed its last use, and the
/// audit log has both.
async fn a_revoked_key_is_refused_and_its_last_use_shown(app: TestApp) {
    let (admin, key) = shop_key(&app).await;
    let (status, _) = post(
        &app,
        &key,
        json!({ "type": "external_http_request_received" }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // Revoked: 401 from then on; the last use is shown.
    let (_, page) = app.page_with(&admin, "/admin/api-keys").await;
    assert!(!page.contains(">never<"), "last used is recorded");
    let id: i64 = sqlx::query_scalar("SELECT id FROM api_keys WHERE name = 'Shop'")
        .fetch_one(app.state.db.read())
        .await
        .unwrap();
    let r = app
        .submit_with(
            &admin,
            &format!("/admin/api-keys/{id}/revoke"),
            &format!("/admin/api-keys/{id}/revoke"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let revoked: Vec<(i64, String, Option<i64>)> =
        sqlx::query_as("SELECT id, name, revoked_at FROM api_keys ORDER BY id")
            .fetch_all(app.state.db.read())
            .await
            .unwrap();
    let (status, _) = post(
        &app,
        &key,
        json!({ "type": "external_http_request_received" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{revoked:?} {id}");
    let stored = app.all_stored_text().await;
    assert!(stored.contains("api_key.created") && stored.contains("api_key.revoked"));
}

/// Past the rate limit per key (Settings): 429 with Retry-After.
async fn past_the_rate_limit_a_key_gets_429_with_retry_after(app: TestApp) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    // The rate limit per key (Settings): past it, 429 with Retry-After.
    let r = app
        .submit_with(
            &admin,
            "/admin/settings",
            "/admin/settings",
            &[("api_calls_per_minute", "2")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let limited = new_key(&app, &admin, "Busy").await;
    let ping = json!({ "type": "external_http_request_received" });
    for _ in 0..2 {
        assert_eq!(
            post(&app, &limited, ping.clone()).await.0,
            StatusCode::ACCEPTED
        );
    }
    let r = Client::new()
        .post(app.url("/api/v1/events"))
        .bearer_auth(&limited)
        .json(&ping)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: i64 = r
        .headers()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
}

/// The OpenAPI document is generated from the code and open to all.
async fn the_openapi_document_is_open_to_all(app: TestApp) {
    // The OpenAPI document: generated from the code, open to all.
    let doc = openapi(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/v1/events",
        "/api/v1/contacts",
        "/api/v1/contacts/{id}",
        "/api/v1/runs/{id}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

/// A marketer cannot open the keys page.
async fn a_marketer_cannot_open_the_keys_page(app: TestApp) {
    let (marketer, _) = app.signed_in(Role::Marketer).await;
    // A marketer cannot open the keys page.
    assert_eq!(
        app.get_with(&marketer, "/admin/api-keys").await.status(),
        StatusCode::FORBIDDEN
    );
}

on_both_engines!(
    an_api_key_is_shown_once_and_stored_as_a_fingerprint,
    an_unknown_contact_is_404_unless_create_contact_is_asked,
    contacts_are_created_then_updated_by_email,
    a_replayed_idempotency_key_returns_the_first_answer,
    a_batch_is_all_or_nothing_and_holds_at_most_1000_events,
    one_new_address_twice_in_a_batch_is_created_once,
    bad_input_is_a_problem_naming_the_field,
    only_a_key_opens_the_api_and_a_key_opens_no_page,
    a_revoked_key_is_refused_and_its_last_use_shown,
    past_the_rate_limit_a_key_gets_429_with_retry_after,
    the_openapi_document_is_open_to_all,
    a_marketer_cannot_open_the_keys_page,
);
with_smtp!(a_password_requested_over_the_api_is_emailed_and_its_run_read_back);

/// The OpenAPI document Herald serves, without an API key.
async fn openapi(app: &TestApp) -> serde_json::Value {
    reqwest::get(app.url("/api/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The id of the first run ever scheduled.
async fn body_of_first_run(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT MIN(id) FROM job_runs")
        .fetch_one(app.state.db.read())
        .await
        .unwrap()
}

/// 64 calls at once, more than the pool's connections: each finds its contact on
/// its own transaction, so none waits for a second connection (on PostgreSQL they
/// used to wait for ever once every connection was held by such a call).
async fn many_event_calls_at_once(app: TestApp) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let key = new_key(&app, &admin, "Load").await;
    let dana = crate::scheduler::contact(&app, "dana@example.com", "dana's own password").await;
    let calls = (0..64).map(|i| {
            let (url, key) = (app.url("/api/v1/events"), key.clone());
            async move {
                Client::new()
                    .post(url)
                    .bearer_auth(key)
                    .json(&json!({ "type": "external_event_received", "contact": { "id": dana }, "name": "page_view", "data": { "n": i } }))
                    .send()
                    .await
                    .map(|r| r.status())
            }
        });
    let answers = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        futures_util::future::join_all(calls),
    )
    .await
    .expect("64 calls answered within 20 s");
    for answer in answers {
        assert_eq!(answer.unwrap(), StatusCode::ACCEPTED);
    }
    let recorded = app.events().await;
    assert_eq!(
        recorded
            .iter()
            .filter(|e| e.0 == "external_event_received" && e.1 == Some(dana))
            .count(),
        64
    );
}

on_both_engines!(many_event_calls_at_once);

/// Calls that arrive together are written in one transaction, yet each keeps its
/// own answer: its own event and runs, its own 404, one contact for one new email
/// sent by several calls, one event for one `Idempotency-Key` sent by several.
async fn calls_written_together_keep_their_own_answers(app: TestApp) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let key = new_key(&app, &admin, "Load").await;
    let (client, _) = app.signed_in(Role::Marketer).await;
    let automation = crate::scheduler::password_automation(&app, &client, &[], &[]).await;
    let dana = crate::scheduler::contact(&app, "dana@example.com", "dana's own password").await;
    let body = |i: usize| match i {
        0..32 => {
            json!({ "type": "new_password_requested", "contact": { "id": dana }, "data": { "n": i } })
        }
        32..40 => json!({ "type": "new_password_requested", "contact": { "id": 999_999 } }),
        40..48 => {
            json!({ "type": "new_password_requested", "contact": { "email": "newbie@example.com" }, "create_contact": true })
        }
        _ => json!({ "type": "external_http_request_received", "name": "once" }),
    };
    let calls = (0..56).map(|i| {
        let mut request = Client::new()
            .post(app.url("/api/v1/events"))
            .bearer_auth(&key)
            .json(&body(i));
        if i >= 48 {
            request = request.header("Idempotency-Key", "once");
        }
        async move {
            let r = request.send().await.unwrap();
            (r.status(), r.json::<serde_json::Value>().await.unwrap())
        }
    });
    let answers = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        futures_util::future::join_all(calls),
    )
    .await
    .expect("56 calls answered within 20 s");
    let run_event = async |run: &serde_json::Value| -> i64 {
        sqlx::query_scalar("SELECT event_id FROM job_runs WHERE id = $1")
            .bind(run["id"].as_i64().unwrap())
            .fetch_one(app.state.db.read())
            .await
            .unwrap()
    };
    let mut events = std::collections::HashSet::new();
    for (status, answer) in &answers[..32] {
        assert_eq!(*status, StatusCode::ACCEPTED, "{answer}");
        let runs = answer["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1, "{answer}");
        assert_eq!(runs[0]["automation_id"], automation);
        assert_eq!(
            run_event(&runs[0]).await,
            answer["event_id"].as_i64().unwrap(),
            "the run of this call's own event"
        );
        assert!(events.insert(answer["event_id"].as_i64().unwrap()));
    }
    for (status, answer) in &answers[32..40] {
        assert_eq!(*status, StatusCode::NOT_FOUND, "{answer}");
    }
    for (status, answer) in &answers[40..48] {
        assert_eq!(*status, StatusCode::ACCEPTED, "{answer}");
    }
    let newbies: Vec<i64> = sqlx::query_scalar("SELECT id FROM contacts WHERE email = $1")
        .bind("newbie@example.com")
        .fetch_all(app.state.db.read())
        .await
        .unwrap();
    assert_eq!(newbies.len(), 1, "one contact for one email");
    let accepted: Vec<&serde_json::Value> = answers[48..]
        .iter()
        .filter(|(s, _)| *s == StatusCode::ACCEPTED)
        .map(|(_, a)| a)
        .collect();
    assert!(
        answers[48..]
            .iter()
            .all(|(s, _)| [StatusCode::ACCEPTED, StatusCode::CONFLICT].contains(s)),
        "{:?}",
        &answers[48..]
    );
    assert!(!accepted.is_empty());
    assert!(
        accepted.iter().all(|a| *a == accepted[0]),
        "one answer, replayed"
    );
    let recorded = app.events().await;
    let count = |kind: &str, contact: Option<i64>| {
        recorded
            .iter()
            .filter(|e| e.0 == kind && e.1 == contact)
            .count()
    };
    assert_eq!(count("new_password_requested", Some(dana)), 32);
    assert_eq!(count("new_password_requested", Some(newbies[0])), 8);
    assert_eq!(
        count("external_http_request_received", None),
        1,
        "one event for one Idempotency-Key"
    );
}

on_both_engines!(calls_written_together_keep_their_own_answers);

/// The OpenAPI document gives generated clients what they need: the server to call,
/// operations grouped by resource, enums for event types and statuses, times as
/// date-time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_names_its_server_tags_enums_and_times() {
    crate::helpers::TestApp::on(crate::helpers::Engine::Sqlite)
        .run(async |app: TestApp| {
            let doc = openapi(&app).await;
            let base = app
                .state
                .config
                .base_url
                .as_str()
                .trim_end_matches('/')
                .to_string();
            assert_eq!(doc["servers"][0]["url"], base.as_str());
            for (path, method, tag) in [
                ("/api/v1/events", "post", "events"),
                ("/api/v1/events/batch", "post", "events"),
                ("/api/v1/contacts", "post", "contacts"),
                ("/api/v1/contacts/{id}", "get", "contacts"),
                ("/api/v1/runs/{id}", "get", "runs"),
                ("/api/v1/suppressions", "get", "suppressions"),
                ("/api/v1/suppressions/{address}", "delete", "suppressions"),
                ("/api/v1/automations/{id}/try", "get", "automations"),
                ("/api/v1/feedback/{provider}", "post", "feedback"),
                ("/api/v1/messages/{id}/stats", "get", "statistics"),
                ("/api/v1/automations/{id}/stats", "get", "statistics"),
            ] {
                assert_eq!(
                    doc["paths"][path][method]["tags"][0], tag,
                    "{method} {path}"
                );
            }
            // A path parameter is in its path; every other is a query's.
            for (path, operations) in doc["paths"].as_object().unwrap() {
                for (method, operation) in operations.as_object().unwrap() {
                    for p in operation["parameters"].as_array().into_iter().flatten() {
                        let name = p["name"].as_str().unwrap();
                        let in_path = path.contains(&format!("{{{name}}}"));
                        let place = if in_path { "path" } else { "query" };
                        if p["in"] != "header" {
                            assert_eq!(p["in"], place, "{method} {path}: {name}");
                        }
                    }
                }
            }
            let tags: Vec<&str> = doc["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap())
                .collect();
            assert_eq!(
                tags,
                [
                    "events",
                    "contacts",
                    "runs",
                    "suppressions",
                    "automations",
                    "statistics",
                    "feedback"
                ]
            );
            let schemas = &doc["components"]["schemas"];
            let values = |schema: &str, field: &str| -> Vec<String> {
                schemas[schema]["properties"][field]["enum"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{schema}.{field} has no enum: {}", schemas[schema]))
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect()
            };
            assert_eq!(
                values("EventRequest", "type"),
                [
                    "external_event_received",
                    "external_http_request_received",
                    "new_password_requested"
                ]
            );
            assert_eq!(
                values("RunView", "status"),
                [
                    "pending",
                    "running",
                    "done",
                    "failed",
                    "skipped",
                    "cancelled",
                    "expired"
                ]
            );
            assert_eq!(values("ContactView", "status"), ["active", "blocked"]);
            assert_eq!(
                schemas["RunView"]["properties"]["due_at"]["format"],
                "date-time"
            );
            assert_eq!(
                schemas["ScheduledRun"]["properties"]["due_at"]["format"],
                "date-time"
            );
        })
        .await
}
