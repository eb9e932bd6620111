use crate::helpers::TestApp;
use herald::auth::users::Role;
use herald::contacts::{self, ContactForm};
use herald::events::catalogue::Source;
use reqwest::StatusCode;

use crate::helpers::{browser, location, text_of};

async fn unknown_and_known_addresses_get_the_same_answer(app: TestApp) {
    let input = ContactForm {
        email: "known@example.com".into(),
        ..Default::default()
    }
    .parse()
    .unwrap();
    let mut tx = app.state.db.begin().await.unwrap();
    contacts::create(&mut tx, &input, Source::Api, app.now_ms())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let client = browser();
    let known = app
        .submit_with(
            &client,
            "/preferences/forgot",
            "/preferences/forgot",
            &[("email", "known@example.com")],
        )
        .await;
    let known_status = known.status();
    let known_body = known.text().await.unwrap();
    let unknown = app
        .submit_with(
            &client,
            "/preferences/forgot",
            "/preferences/forgot",
            &[("email", "nobody@example.com")],
        )
        .await;
    assert_eq!(known_status, StatusCode::OK);
    assert_eq!(unknown.status(), known_status);
    assert_eq!(unknown.text().await.unwrap(), known_body);
    assert!(
        text_of(&known_body, "#forgot-answer")
            .unwrap()
            .contains("If this address belongs to an account")
    );
    assert_eq!(
        app.events_of("new_password_requested", 1).await,
        1,
        "only the existing contact's request is recorded"
    );
    // Limited per address: the 4th request in 15 minutes records nothing, answers the same.
    for _ in 0..3 {
        let r = app
            .submit_with(
                &client,
                "/preferences/forgot",
                "/preferences/forgot",
                &[("email", "known@example.com")],
            )
            .await;
        assert_eq!(r.text().await.unwrap(), known_body);
    }
    assert_eq!(app.events_of("new_password_requested", 3).await, 3);
    // Staff can see a limited request: it is in the audit log (written after the answer).
    let mut audited = false;
    for _ in 0..1500 {
        audited = app
            .all_stored_text()
            .await
            .contains("password.request_limited");
        if audited {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(audited);
    // A typing mistake is named (this says nothing about any account).
    for (typed, says) in [
        ("", "Enter your email address."),
        ("not an address", "name@example.com"),
    ] {
        let r = app
            .submit_with(
                &client,
                "/preferences/forgot",
                "/preferences/forgot",
                &[("email", typed)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let html = r.text().await.unwrap();
        assert!(
            text_of(&html, "#email-error").unwrap().contains(says),
            "{html}"
        );
        assert!(
            text_of(&html, "#forgot-answer").is_none(),
            "no promise of an email"
        );
    }
}

async fn staff_and_contact_sessions_do_not_mix(app: TestApp) {
    let (staff, _) = app.signed_in(Role::Admin).await;
    // A staff session does not open the preference center as a contact.
    let r = app.get_with(&staff, "/preferences").await;
    assert_eq!(location(&r), "/preferences/login");
    // A contact session does not open any admin page.
    crate::scheduler::contact(&app, "cleo@example.com", "cleo's long password").await;
    let contact = browser();
    let r = app
        .contact_sign_in(&contact, "cleo@example.com", "cleo's long password")
        .await;
    assert_eq!(location(&r), "/preferences");
    let cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.starts_with("herald_preferences=")
            && cookie.contains("Path=/preferences")
            && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    for path in ["/dashboard", "/admin/users", "/contacts", "/automations"] {
        let r = app.get_with(&contact, path).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(location(&r).starts_with("/login"), "{path}");
    }
}

async fn a_temporary_password_signs_in_once_and_ends_the_other_sessions(app: TestApp) {
    let id = crate::scheduler::contact(&app, "cleo@example.com", "cleo's long password").await;
    let contact = browser();
    let r = app
        .contact_sign_in(&contact, "cleo@example.com", "cleo's long password")
        .await;
    assert_eq!(location(&r), "/preferences");
    // Signing in with a temporary password ends the contact's other sessions.
    let temp = app
        .state
        .hasher
        .hash(
            &herald::auth::Plaintext::new("temporary pass 123"),
            herald::auth::Priority::Interactive,
        )
        .await
        .unwrap();
    sqlx::query("UPDATE contacts SET temp_hash = $1, temp_expires_at = $2 WHERE id = $3")
        .bind(temp)
        .bind(app.now_ms() + 3_600_000)
        .bind(id)
        .execute(app.state.db.write())
        .await
        .unwrap();
    let other = browser();
    let r = app
        .contact_sign_in(&other, "cleo@example.com", "temporary pass 123")
        .await;
    assert_eq!(location(&r), "/preferences/password");
    // The forced change can be left: the page offers Sign out.
    let (_, html) = app.page_with(&other, "/preferences/password").await;
    assert!(
        crate::helpers::find_form(&html, "/preferences/logout").action == "/preferences/logout"
    );
    assert_eq!(
        location(&app.get_with(&contact, "/preferences").await),
        "/preferences/login",
        "the older session ended"
    );
    let r = app
        .submit_with(
            &browser(),
            "/preferences/login",
            "/preferences/login",
            &[
                ("email", "cleo@example.com"),
                ("password", "temporary pass 123"),
            ],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "a temporary password works once"
    );
    let contact = browser();
    let r = app
        .contact_sign_in(&contact, "cleo@example.com", "cleo's long password")
        .await;
    assert_eq!(
        location(&r),
        "/preferences",
        "the permanent password still works"
    );
}

async fn a_wrong_password_or_a_blocked_contact_cannot_sign_in(app: TestApp) {
    let id = crate::scheduler::contact(&app, "cleo@example.com", "cleo's long password").await;
    let contact = browser();
    let r = app
        .contact_sign_in(&contact, "cleo@example.com", "cleo's long password")
        .await;
    assert_eq!(location(&r), "/preferences");
    // Wrong password: generic message; a blocked contact cannot sign in.
    let r = app
        .submit_with(
            &browser(),
            "/preferences/login",
            "/preferences/login",
            &[
                ("email", "cleo@example.com"),
                ("password", "nope nope nope"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let mut tx = app.state.db.begin().await.unwrap();
    contacts::set_status(&mut tx, id, contacts::Status::Blocked, app.now_ms())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let r = app
        .submit_with(
            &browser(),
            "/preferences/login",
            "/preferences/login",
            &[
                ("email", "cleo@example.com"),
                ("password", "cleo's long password"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        location(&app.get_with(&contact, "/preferences").await),
        "/preferences/login",
        "a blocked contact's session ends"
    );
}

async fn preference_center_forms_need_their_csrf_token(app: TestApp) {
    let _id = crate::scheduler::contact(&app, "cleo@example.com", "cleo's long password").await;
    let contact = browser();
    let r = app
        .contact_sign_in(&contact, "cleo@example.com", "cleo's long password")
        .await;
    assert_eq!(location(&r), "/preferences");
    // Forms need their CSRF token here too.
    let r = contact
        .post(app.url("/preferences/forgot"))
        .form(&[("email", "cleo@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

on_both_engines!(
    unknown_and_known_addresses_get_the_same_answer,
    staff_and_contact_sessions_do_not_mix,
    a_temporary_password_signs_in_once_and_ends_the_other_sessions,
    a_wrong_password_or_a_blocked_contact_cannot_sign_in,
    preference_center_forms_need_their_csrf_token,
);

async fn self_signup_is_off_by_default_and_creates_a_contact_when_on(app: TestApp) {
    assert_eq!(
        app.get("/preferences/signup").await.status(),
        StatusCode::NOT_FOUND
    );
    let (admin, _) = app.signed_in(Role::Admin).await;
    let r = app
        .submit_with(
            &admin,
            "/admin/settings",
            "/admin/settings",
            &[("self_signup", "on")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let visitor = browser();
    let r = app
        .submit_with(
            &visitor,
            "/preferences/signup",
            "/preferences/signup",
            &[("email", "new@example.com")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        text_of(&r.text().await.unwrap(), "#consent-error")
            .unwrap()
            .contains("agree")
    );
    let r = app
        .submit_with(
            &visitor,
            "/preferences/signup",
            "/preferences/signup",
            &[("email", "New@Example.com"), ("consent", "on")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.text().await.unwrap();
    assert!(
        contacts::find_by_email(&app.state.db, "new@example.com")
            .await
            .unwrap()
            .is_some()
    );
    let events = app.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].0.as_str(), &events[0].3["source"]),
        (
            "registered_to_system",
            &serde_json::json!("preference_center")
        )
    );
    // The same address again: the same answer, nothing new.
    let r = app
        .submit_with(
            &visitor,
            "/preferences/signup",
            "/preferences/signup",
            &[("email", "new@example.com"), ("consent", "on")],
        )
        .await;
    assert_eq!(r.text().await.unwrap(), body);
    assert_eq!(app.events().await.len(), 1);
}

on_both_engines!(self_signup_is_off_by_default_and_creates_a_contact_when_on);

/// The answer to "send me a new password" waits for the same statements whatever
/// the address (counting and storing the request); looking the address up and
/// recording the event come after the answer. Shown on PostgreSQL, where a lock on
/// `contacts` holds every look-up: the answer for a contact's address comes all the
/// same, and the event is recorded once the lock is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_request_is_answered_before_its_address_is_looked_up_postgres() {
    crate::helpers::TestApp::on(crate::helpers::Engine::Postgres)
        .run(|app| async move {
            let input = ContactForm {
                email: "known@example.com".into(),
                ..Default::default()
            }
            .parse()
            .unwrap();
            let mut tx = app.state.db.begin().await.unwrap();
            contacts::create(&mut tx, &input, Source::Api, app.now_ms())
                .await
                .unwrap();
            tx.commit().await.unwrap();
            let client = browser();
            let mut form = app
                .form_with(&client, "/preferences/forgot", "/preferences/forgot")
                .await;
            form.set("email", "known@example.com");
            let mut lock = app.state.db.begin().await.unwrap();
            sqlx::query("LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE")
                .execute(&mut *lock)
                .await
                .unwrap();
            let answer = tokio::time::timeout(
                std::time::Duration::from_secs(20),
                app.post_form_with(&client, &form),
            )
            .await
            .expect("answered while the contacts table is locked");
            assert_eq!(answer.status(), StatusCode::OK);
            assert_eq!(
                app.events()
                    .await
                    .iter()
                    .filter(|e| e.0 == "new_password_requested")
                    .count(),
                0,
                "not recorded yet"
            );
            lock.rollback().await.unwrap();
            assert_eq!(
                app.events_of("new_password_requested", 1).await,
                1,
                "recorded once the lock is gone"
            );
        })
        .await
}
